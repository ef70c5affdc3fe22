// Shared parts of the `buoni` command: argument parsing, output, exit codes.
//
// Exit codes (API.md): 0 success; 1 declined, or an audit found a discrepancy;
// 2 usage error (unknown flag, malformed value, missing data directory);
// 3 the operation could not run (storage failure, store in use).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <functional>

#include "crypto/card_number.h"
#include "crypto/status.h"
#include "engine/command.h"
#include "engine/model.h"
#include "tools/data_dir.h"

namespace buoni::tools {

inline constexpr int exit_ok = 0;
inline constexpr int exit_declined = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_failed = 3;

// Options every command takes. With --server URL (and --key KEY or
// $BUONI_KEY, the admin key), the operator commands that change state go
// through the server's admin API instead of opening the data directory
// (tools/remote.h); the others refuse --server.
struct Common {
  std::string data = "./data";
  bool json = false;
  std::string server;  // "" : local mode, on the data directory
  std::string key;     // the admin key for --server (--key, else $BUONI_KEY)
  [[nodiscard]] DataDir dir() const { return DataDir{data}; }
  [[nodiscard]] bool remote() const { return !server.empty(); }
};

// Marks a (sub)command as one that takes --server; main refuses --server
// (usage error) for every other command.
void allow_server(const CLI::App* command);
[[nodiscard]] bool takes_server(const CLI::App* command);

// A malformed argument: printed as one line, exit 2.
struct UsageError {
  std::string message;
};

// Strict whole cents: digits only, no sign, no decimal point, no exponent,
// at most `max_cents`. "12.5", "-3", "1e9" are usage errors.
[[nodiscard]] engine::Cents parse_cents(std::string_view flag, std::string_view text,
                                        engine::Cents max_cents, bool allow_zero = false);
[[nodiscard]] engine::Day parse_date(std::string_view flag, std::string_view text);
[[nodiscard]] CardId parse_card(std::string_view flag, std::string_view text);
// --card: a card number, its id, or a signed token (verified with the data
// directory's public keys).
[[nodiscard]] CardId card_arg(const Common& common, std::string_view text);
[[nodiscard]] std::int64_t parse_count(std::string_view flag, std::string_view text,
                                       std::int64_t max);

// Text flags checked with the engine's rules (engine/validate.h) before
// anything runs, so a bad one is a usage error naming the flag rather than
// the engine's generic invalid_field.
void check_id_arg(std::string_view flag, std::string_view id);      // programme, shop ids
void check_name_arg(std::string_view flag, std::string_view name);  // display names
void check_reference_arg(std::string_view flag, std::string_view reference);
void check_beneficiary_ref_arg(std::string_view flag, std::string_view ref);
// --idempotency-key: "" (none) or 1-64 of [A-Za-z0-9_-].
void check_idempotency_key_arg(std::string_view key);

// At most this many bytes in a --public-keys file (65535 keys of ~80 bytes).
inline constexpr std::size_t kPublicKeysBytesMax = 8 << 20;

// The whole of a small input file named by `flag` (a CSV, a public key set):
// a usage error when it cannot be read, is a directory, or holds more than
// `max_bytes` (read no further, so /dev/zero is refused too).
[[nodiscard]] std::string read_input_file(std::string_view flag, const std::string& path,
                                          std::size_t max_bytes);

// `text` fit for one line of a terminal and for a JSON string: control
// characters become '?', and so does every non-ASCII byte when the text is
// not valid UTF-8 (a message may quote a path or a value as the user gave it).
[[nodiscard]] std::string printable(std::string_view text);

// A one-line progress bar on stderr when it is a terminal; silent otherwise.
void progress_bar(std::string_view label, std::uint64_t done, std::uint64_t total);

// Prints a failure of the machinery (not a decline) and returns its exit code.
int report_status(const Common& common, const Status& status);
// Prints one JSON object (pretty) or the text lines, as --json says.
void print(const Common& common, const boost::json::object& json, std::string_view text);

// The human form of a success, made from the JSON answer the HTTP API gives
// (and --json prints), so local and --server mode print the same text.
using JsonText = std::function<std::string(const boost::json::object& answer)>;
// A field of an answer as text: a string as is, a number in decimal, a bool
// as true/false; "" when absent (answers from a server are not trusted to
// be complete).
[[nodiscard]] std::string field(const boost::json::object& answer, std::string_view name);

// Prints a successful answer: the object with --json, else text(answer)
// (plus a note when it is a replay of an idempotency key). Returns 0.
int print_ok(const Common& common, const boost::json::object& answer, JsonText text, bool replayed);
// Prints an error answer {"error": {"code", "message", ...}}: the object
// with --json; one line on stderr, "buoni: <what>: code: message". Returns
// exit_code.
int print_error(const Common& common, const boost::json::object& answer, int exit_code,
                std::string_view what = "declined");

// Prints a decline found outside the engine (e.g. a lookup of a missing object).
int print_decline(const Common& common, engine::Code code);

// Adds what the edge knows to an ok answer (a token, a PIN, a shop's key).
using Extend = std::function<void(const engine::Result&, boost::json::object&)>;

// Runs one command through the engine of a freshly opened Node and prints
// the answer: `text` makes the human form of a success.
int run_command(const Common& common, engine::Request request, JsonText text);
// The same with an engine already open (demo, bulk work).
int print_result(const Common& common, const engine::Command& command,
                 const StatusOr<engine::Result>& result, JsonText text, const Extend& extend = {});
// The older form, text made from the engine's outcome.
using TextOf = std::string (*)(const engine::Command&, const engine::Outcome&);
int print_result(const Common& common, const engine::Command& command,
                 const StatusOr<engine::Result>& result, TextOf text);

}  // namespace buoni::tools
