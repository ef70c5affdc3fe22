// Metrics: the server's Prometheus registry, rendered for GET /metrics in the
// text exposition format 0.0.4.
//
// Families (names are an interface: dashboards and alerts use them):
//   http_requests_total{route,status}            counter
//   http_request_duration_seconds{route}         histogram (http_duration_seconds_buckets)
//   buoni_redemptions_total                      counter: approved redemptions and captures
//   buoni_redeemed_cents_total                   counter: their cents
//   buoni_rate_limited_total{limiter}            counter: requests refused with 429
//   buoni_connections_open                       gauge
//   buoni_connections_total                      counter: connections accepted
//   buoni_writer_batch_size                      histogram (from engine::EngineStats)
//   buoni_writer_commit_seconds                  histogram (from engine::EngineStats)
//   buoni_engine_failed                          gauge: 1 once the engine failed stop
// `route` is the route pattern (api::route_of: "/v1/cards/{card}", never the
// raw path, so no card number or token can reach a label) or "unmatched";
// at most limits::metrics_routes_max distinct routes are kept, later ones
// count as "other". Limiter names are kept the same way (at most 8).
//
// Ownership: a Metrics owns its counters; render() takes the engine's stats
// as arguments, so the registry borrows nothing.
// Thread safety: every member may be called from any thread at once.
// Counters without labels are atomics; labelled ones take one short mutex
// (a map lookup without allocation once a route/status pair has been seen).
// Failure: none; nothing here can fail except allocation of a new label
// (std::bad_alloc, like any server allocation).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace buoni::api {

// Upper bounds (seconds) of http_request_duration_seconds: 0.5 ms to 10 s.
inline constexpr std::array<double, 14> http_duration_seconds_buckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One answered request: `route` from api::route_of ("" counts as
  // "unmatched"), the HTTP status, and the time from reading the request to
  // writing the answer.
  void record_request(std::string_view route, unsigned status, std::int64_t duration_us);
  // One approved redemption or capture (not declines, not replays).
  void record_redemption(std::int64_t amount_cents);
  // One request refused with 429 by the limiter named `limiter` ("public",
  // "failed_lookup").
  void record_rate_limited(std::string_view limiter);
  void connection_opened();
  void connection_closed();

  // The whole exposition (Content-Type: text/plain; version=0.0.4).
  [[nodiscard]] std::string render(const engine::EngineStats& engine_stats,
                                   bool engine_failed) const;

 private:
  struct StatusCount {
    unsigned status = 0;
    std::uint64_t count = 0;
  };
  struct RouteStats {
    std::vector<StatusCount> statuses;  // few: linear search
    engine::Histogram<http_duration_seconds_buckets.size()> duration{http_duration_seconds_buckets};
  };
  void render_requests(std::string& out) const;

  mutable std::mutex mutex_;
  std::map<std::string, RouteStats, std::less<>> routes_;            // guarded by mutex_
  std::vector<std::pair<std::string, std::uint64_t>> rate_limited_;  // guarded by mutex_
  std::atomic<std::uint64_t> redemptions_{0};
  std::atomic<std::uint64_t> redeemed_cents_{0};
  std::atomic<std::int64_t> connections_open_{0};
  std::atomic<std::uint64_t> connections_total_{0};
};

// Text format helpers (exposed for tests and other exporters).
// A label value with \ " and newline escaped as \\ \" \n.
[[nodiscard]] std::string escape_label_value(std::string_view value);
// A sample value: integers without a fraction, others in shortest round-trip
// form; +Inf, -Inf and NaN as Prometheus spells them.
[[nodiscard]] std::string format_metric_value(double value);

}  // namespace buoni::api
