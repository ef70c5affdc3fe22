// RateLimiter: a token bucket per client (the remote IP as text).
//
// Each client's bucket holds up to `burst` tokens and refills at `rate_per_s`
// tokens a second; a request takes one token, and is refused (429
// rate_limited) when the bucket has less than one. A client seen for the
// first time starts with a full bucket. Time is an argument (now_ms: Unix
// milliseconds, or any monotonic milliseconds, the same source for every
// call), so tests pin it; time going backwards refills nothing.
//
// Two uses in the server (defaults and why in engine/limits.h):
//   - public calls: `if (!public_limit.allow(ip, now_ms)) 429;`
//   - failed card look-ups, charged only when a look-up fails:
//       if (!lookup_limit.would_allow(ip, now_ms)) 429;   // before the call
//       ... if the answer was unknown_card / invalid_card:
//       (void)lookup_limit.allow(ip, now_ms);               // take a token
//
// Memory is bounded: at most `clients_max` clients are tracked; a new client
// when the table is full evicts the one seen least recently (an O(1) LRU
// list). Failure: none (bad_alloc aside); a limiter never throws on input.
// Thread safety: all members may be called from any thread (one mutex; no
// allocation on the path of a client already tracked).
// Ownership: the limiter owns its table; nothing is borrowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/limits.h"

namespace buoni::api {

class RateLimiter {
 public:
  // rate_per_s > 0, burst >= 1, clients_max >= 1 (BUONI_ASSERT).
  RateLimiter(double rate_per_s, double burst,
              std::size_t clients_max = limits::rate_limit_clients_max);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token from `client`'s bucket: true if it had one.
  [[nodiscard]] bool allow(std::string_view client, std::int64_t now_ms);
  // True if `client` has a token now; takes none and tracks no new client.
  [[nodiscard]] bool would_allow(std::string_view client, std::int64_t now_ms) const;

  // Clients tracked now (<= clients_max).
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] double rate_per_s() const { return rate_per_s_; }
  [[nodiscard]] double burst() const { return burst_; }

 private:
  struct Bucket {
    std::string client;
    double tokens = 0;
    std::int64_t last_ms = 0;
  };
  using List = std::list<Bucket>;  // most recently seen first
  [[nodiscard]] double refilled(const Bucket& b, std::int64_t now_ms) const;

  const double rate_per_s_;
  const double burst_;
  const std::size_t clients_max_;
  mutable std::mutex mutex_;
  List lru_;                                                        // guarded by mutex_
  std::unordered_map<std::string_view, List::iterator> by_client_;  // keys view lru_ strings
};

}  // namespace buoni::api
