#include "engine/memory_store.h"

namespace buoni::engine {

StatusOr<std::optional<std::string>> MemoryStore::get(Space space, std::string_view key) const {
  std::lock_guard lock(mutex_);
  const auto& map = spaces_[static_cast<int>(space)];
  auto it = map.find(key);
  if (it == map.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemoryStore::scan(Space space, std::string_view prefix, std::string_view start,
                         const ScanVisitor& visit) const {
  // Copy the matching range first so visit() may call back into the store.
  std::vector<std::pair<std::string, std::string>> rows;
  {
    std::lock_guard lock(mutex_);
    const auto& map = spaces_[static_cast<int>(space)];
    std::string_view from = start > prefix ? start : prefix;
    for (auto it = map.lower_bound(from); it != map.end(); ++it) {
      if (!std::string_view(it->first).starts_with(prefix)) break;
      rows.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [key, value] : rows) {
    if (!visit(key, value)) break;
  }
  return Status();
}

Status MemoryStore::write(const WriteSet& set) {
  std::unique_lock lock(mutex_);
  if (holding_) {
    ++writes_held_;
    released_.wait(lock, [this] { return !holding_; });
    --writes_held_;
  }
  if (fail_after_ >= 0 && writes_ >= fail_after_) return io_error("injected write failure");
  for (const auto& op : set.ops) {
    auto& map = spaces_[static_cast<int>(op.space)];
    if (op.value) {
      map.insert_or_assign(op.key, *op.value);
    } else {
      auto it = map.find(op.key);
      if (it != map.end()) map.erase(it);
    }
  }
  ++writes_;
  return Status();
}

void MemoryStore::fail_writes_after(int successful_writes) {
  std::lock_guard lock(mutex_);
  fail_after_ = writes_ + successful_writes;
}

void MemoryStore::hold_writes() {
  std::lock_guard lock(mutex_);
  holding_ = true;
}

void MemoryStore::release_writes() {
  {
    std::lock_guard lock(mutex_);
    holding_ = false;
  }
  released_.notify_all();
}

int MemoryStore::writes_held() const {
  std::lock_guard lock(mutex_);
  return writes_held_;
}

int MemoryStore::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

}  // namespace buoni::engine
