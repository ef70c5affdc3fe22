// AccessLog: structured log lines, one JSON object per line.
//
// A request line (event "http_request"):
//   {"ts":"2026-04-01T09:30:00.123Z","level":"info","event":"http_request",
//    "remote":"203.0.113.7","method":"GET","route":"/v1/cards/{card}",
//    "target":"/v1/cards/****-****-****-7K2M","status":200,"duration_us":812,
//    "bytes":341,"request_id":"r-42"}
// level is "info" below 500 and "error" from 500 on. route is "" when no
// route matched. target always goes through mask_target: card numbers and
// tokens never reach a log. Authorization headers and bodies are not
// parameters, so they cannot be logged.
// Other lines (startup, shutdown, failures): log_event(level, event, fields)
//   {"ts":...,"level":"info","event":"listening","address":"127.0.0.1:8080"}
// Fields named ts, level or event are dropped (those three are always first).
//
// Ownership: borrows the ostream (and the clock, when given); they must
// outlive the AccessLog. Thread safety: every member may be called from any
// thread; each line is formatted outside the lock and written whole, then
// flushed, under one mutex, so lines never interleave. Failure: a stream in
// a failed state drops lines silently (logging never fails a request).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "engine/clock.h"

namespace buoni::api {

enum class LogLevel : std::uint8_t { debug, info, warn, error };
[[nodiscard]] std::string_view log_level_name(LogLevel level);

// One answered request, as the server saw it. Views are read during the call only.
struct AccessRecord {
  std::string_view remote;       // client IP (no port)
  std::string_view method;       // "GET"
  std::string_view route;        // api::route_of(req); "" when none matched
  std::string_view target;       // raw request target; masked before writing
  unsigned status = 0;           // HTTP status sent
  std::int64_t duration_us = 0;  // request read -> answer handed to the socket
  std::uint64_t bytes = 0;       // body bytes sent
  std::string_view request_id;   // the server's id for this request
};

class AccessLog {
 public:
  // `clock` (nullptr: the system clock) stamps each line's ts.
  explicit AccessLog(std::ostream& out, const engine::Clock* clock = nullptr);
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void log_request(const AccessRecord& record);
  void log_event(LogLevel level, std::string_view event, const boost::json::object& fields = {});

  // The line log_request writes, without its newline (for tests).
  [[nodiscard]] std::string request_line(const AccessRecord& record) const;
  [[nodiscard]] std::string event_line(LogLevel level, std::string_view event,
                                       const boost::json::object& fields) const;

 private:
  void write(const std::string& line);
  [[nodiscard]] std::int64_t now_ms() const;

  std::ostream& out_;
  const engine::Clock* clock_;
  std::mutex mutex_;
};

// "2026-04-01T09:30:00.123Z" for Unix milliseconds (UTC).
[[nodiscard]] std::string format_rfc3339_ms(std::int64_t unix_ms);

// `target` (path and query, raw as received) with every card credential
// masked, so it can be logged:
//  - a QR token, "BS1:" or percent-encoded "BS1%3A" (any case) and its 119
//    Base45 symbols (a %XX escape counts as one) -> "BS1:***" + its last 4
//    characters as written;
//  - a link token: a segment of 100 or more base64url characters ->
//    "***" + its last 4;
//  - a card number or id: a segment that, percent-decoded, is 16 or 17
//    Crockford symbols (any case; hyphens and spaces between) -> every
//    symbol but the last 4 of the id (and the check symbol) as '*', hyphens
//    kept: "7K2M-9QXD-0B4T-RS1N-8" -> "****-****-****-RS1N-8";
//  - an API key segment (mk_..., ak_...) -> "mk_***".
// Segments are split at / ? & = #. Anything else is copied unchanged, so
// ordinary paths stay readable; a 16-character id of another kind (a
// programme id made of Crockford symbols) is masked too: masking too much
// is the safe error.
[[nodiscard]] std::string mask_target(std::string_view target);

}  // namespace buoni::api
