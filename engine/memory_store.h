// MemoryStore: an in-memory Store for tests, with fault injection.
//
// Thread safety: all methods lock one mutex; safe from any thread.
// Fault injection: fail_writes_after(n) makes the (n+1)-th and every later
// write() fail with io_error and change nothing, as a dead disk would.
// hold_writes() makes later write() calls wait (a slow disk) until
// release_writes(); writes_held() counts those waiting. Tests use it to catch
// the engine with a batch being written.
#pragma once

#include <array>
#include <condition_variable>
#include <map>
#include <mutex>

#include "engine/store.h"

namespace buoni::engine {

class MemoryStore final : public Store {
 public:
  [[nodiscard]] StatusOr<std::optional<std::string>> get(Space space,
                                                         std::string_view key) const override;
  [[nodiscard]] Status scan(Space space, std::string_view prefix, std::string_view start,
                            const ScanVisitor& visit) const override;
  [[nodiscard]] Status write(const WriteSet& set) override;

  void fail_writes_after(int successful_writes);
  void hold_writes();
  void release_writes();
  [[nodiscard]] int writes_held() const;
  [[nodiscard]] int writes() const;

 private:
  mutable std::mutex mutex_;
  std::array<std::map<std::string, std::string, std::less<>>, space_count> spaces_;
  std::condition_variable released_;
  int writes_ = 0;
  int fail_after_ = -1;
  bool holding_ = false;
  int writes_held_ = 0;
};

}  // namespace buoni::engine
