// Clock: the injected source of time. The writer reads it once per batch, so
// every command of a batch sees the same `now`.
// Thread safety: now_ms() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>

#include "engine/model.h"

namespace buoni::engine {

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimeMs now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimeMs now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

// A clock that only moves when told to: tests pin time with it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start_ms) : now_ms_(start_ms) {}
  [[nodiscard]] TimeMs now_ms() const override { return now_ms_.load(); }
  void set(TimeMs t_ms) { now_ms_.store(t_ms); }
  void advance(TimeMs delta_ms) { now_ms_.fetch_add(delta_ms); }

 private:
  std::atomic<TimeMs> now_ms_;
};

}  // namespace buoni::engine
