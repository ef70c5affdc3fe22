#include "api/rate_limit.h"

#include <algorithm>

#include "crypto/status.h"

namespace buoni::api {

RateLimiter::RateLimiter(double rate_per_s, double burst, std::size_t clients_max)
    : rate_per_s_(rate_per_s), burst_(burst), clients_max_(clients_max) {
  BUONI_ASSERT(rate_per_s > 0 && burst >= 1 && clients_max >= 1);
  by_client_.reserve(std::min<std::size_t>(clients_max, 1024));
}

double RateLimiter::refilled(const Bucket& b, std::int64_t now_ms) const {
  if (now_ms <= b.last_ms) return b.tokens;
  const double elapsed_s = static_cast<double>(now_ms - b.last_ms) / 1000.0;
  return std::min(burst_, b.tokens + elapsed_s * rate_per_s_);
}

bool RateLimiter::allow(std::string_view client, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto found = by_client_.find(client);
  if (found != by_client_.end()) {
    List::iterator it = found->second;
    lru_.splice(lru_.begin(), lru_, it);
    it->tokens = refilled(*it, now_ms);
    it->last_ms = std::max(it->last_ms, now_ms);
    if (it->tokens < 1) return false;
    it->tokens -= 1;
    return true;
  }
  if (lru_.size() >= clients_max_) {
    // Reuse the stalest client's node for the new one.
    List::iterator stalest = std::prev(lru_.end());
    by_client_.erase(std::string_view(stalest->client));
    lru_.splice(lru_.begin(), lru_, stalest);
    lru_.front().client.assign(client);
  } else {
    lru_.push_front(Bucket{std::string(client), 0, 0});
  }
  Bucket& b = lru_.front();
  b.tokens = burst_ - 1;  // a new client starts full, and this call takes one
  b.last_ms = now_ms;
  by_client_.emplace(std::string_view(b.client), lru_.begin());
  return true;
}

bool RateLimiter::would_allow(std::string_view client, std::int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  auto found = by_client_.find(client);
  if (found == by_client_.end()) return true;  // unknown: a full bucket
  return refilled(*found->second, now_ms) >= 1;
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace buoni::api
