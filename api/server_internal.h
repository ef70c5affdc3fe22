// Internals of api/server.h: what the server does around handle_request
// (Front: rate limits, /metrics, logs, refusals) and the handler pool. Kept
// apart from the sessions so the per-request policy reads in one place.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "api/server.h"

namespace buoni::api::detail {

// One request as the log and the metrics see it.
struct Exchange {
  std::chrono::steady_clock::time_point start{};
  std::string remote;  // client address
  std::string method;
  std::string route;   // route pattern, "" when none matched
  std::string target;  // masked
  bool has_request = false;
  std::int64_t duration_us = 0;  // set by Front::answered: start to answer handed to the socket
};

// Runs jobs on a fixed set of threads; post() refuses past queue_max.
// stop() runs what is queued, then joins. Thread-safe.
class HandlerPool {
 public:
  HandlerPool(std::size_t threads, std::size_t queue_max);
  ~HandlerPool();
  [[nodiscard]] bool post(std::function<void()> job);
  void stop();
  [[nodiscard]] bool idle() const;

 private:
  void run();
  std::size_t queue_max_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The server's policy around handle_request. Thread-safe.
class Front {
 public:
  Front(ApiContext& ctx, const ServerOptions& options);
  ~Front();
  Front(const Front&) = delete;
  Front& operator=(const Front&) = delete;

  [[nodiscard]] Exchange begin(const Request& req, const std::string& remote) const;
  // An answer made on the I/O thread without the handler: /metrics, 429.
  [[nodiscard]] std::optional<Response> answer_early(const Request& req, const Exchange& ex);
  // handle_request, plus the failed-look-up accounting (on a pool thread).
  [[nodiscard]] Response answer(const Request& req, const Exchange& ex);
  // prepare_request (never waits for the writer: fit for an I/O thread),
  // with the same accounting when it is already the answer.
  [[nodiscard]] Prepared prepare(const Request& req, const Exchange& ex);
  // finish_request of a prepared command's result, with the same accounting.
  [[nodiscard]] Response render(const Request& req, const EngineStep& step,
                                const StatusOr<engine::Result>& result, const Exchange& ex);
  // Refusals of the server itself (JSON error bodies, Connection: close).
  [[nodiscard]] Response refusal(int status, std::string_view code, std::string_view message) const;
  // 503 unavailable with Retry-After: 1 (handler queue full, too many connections).
  [[nodiscard]] Response unavailable(std::string_view message) const;
  // When the answer is handed to the socket: its duration and the metrics.
  // Counted before any byte leaves, so whatever the client asks after
  // reading the answer (GET /metrics on the same connection) counts it.
  void answered(Exchange& ex, const Response& res);
  // After the answer was written (or failed to be): the access log line.
  void finish(const Exchange& ex, const Response& res, std::size_t bytes,
              const boost::system::error_code& ec);
  void connection_opened();
  void connection_closed();
  void log_event(std::string_view event, const boost::json::object& fields);

  struct State;

 private:
  [[nodiscard]] Response rate_limited(const Request& req, std::string_view limiter);
  // Failed card look-ups charge the client's bucket; approved redemptions count.
  void account(const Exchange& ex, const Response& res);
  ApiContext& ctx_;
  std::unique_ptr<State> state_;
};

}  // namespace buoni::api::detail
