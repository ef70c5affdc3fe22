// Batch: the writer's view of state while it applies one batch of commands.
//
// Reads see the committed Store plus every change made earlier in the same
// batch (an overlay), so later commands see the effects of earlier ones.
// A batch may be applied while the one before it is still being written
// (engine/engine.h): it is then made `above` that batch, and reads look in
// its own overlay, then in that batch's overlay, then in the Store. Only
// that one batch may still be unwritten: the one before it must be in the
// Store already, and `below` must outlive this Batch and not change.
// Ledger entries appended here get the next seq and their chain hash at once.
// Nothing reaches the Store until the writer takes write_set() and writes it
// as one durable write.
// Thread safety: owned by the writer thread only.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>

#include "engine/codec.h"
#include "engine/store.h"

namespace buoni::engine {

class Batch {
 public:
  Batch(const Store& store, const ChainHead& head) : store_(store), head_(head) {}
  // Continues the chain of `below` (its head), reading through its changes.
  Batch(const Store& store, const Batch& below)
      : store_(store), below_(&below), head_(below.head_) {}

  [[nodiscard]] StatusOr<std::optional<std::string>> get(Space space, std::string_view key) const;
  void put(Space space, std::string key, std::string value);
  void erase(Space space, std::string key);

  // Decoded read of a record; nullopt when absent, corruption when undecodable.
  template <typename T>
  [[nodiscard]] StatusOr<std::optional<T>> load(Space space, std::string_view key) const {
    auto raw = get(space, key);
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) return std::optional<T>();
    T value;
    BUONI_RETURN_IF_ERROR(decode(**raw, value));
    return std::optional<T>(std::move(value));
  }
  template <typename T>
  void save(Space space, std::string key, const T& value) {
    put(space, std::move(key), encode(value));
  }

  // The first `max_rows` keys (and values) with `prefix`, committed and in
  // this batch, in key order. `truncated` says more may follow.
  struct Rows {
    std::vector<std::pair<std::string, std::string>> rows;
    bool truncated = false;
  };
  [[nodiscard]] StatusOr<Rows> scan(Space space, std::string_view prefix,
                                    std::size_t max_rows) const {
    return scan(space, prefix, prefix, max_rows);
  }
  // The same from key `start` on (keys >= start with `prefix`).
  [[nodiscard]] StatusOr<Rows> scan(Space space, std::string_view prefix, std::string_view start,
                                    std::size_t max_rows) const;

  // Appends an entry: sets seq, hash, writes its ledger index rows
  // (engine/codec.h) in the state space; returns its seq.
  std::uint64_t append(Entry entry);

  [[nodiscard]] const ChainHead& head() const { return head_; }
  [[nodiscard]] WriteSet write_set() const;

 private:
  using Overlay = std::map<std::string, std::optional<std::string>, std::less<>>;
  // The overlay of `space` in the batch below, or null.
  [[nodiscard]] const Overlay* below_overlay(Space space) const {
    return below_ ? &below_->overlay_[static_cast<int>(space)] : nullptr;
  }
  const Store& store_;
  const Batch* below_ = nullptr;
  // What get() read from the Store, absent keys too: a batch of redemptions
  // at one shop reads the shop's record once. Valid for the batch's life,
  // since only the writer changes the Store's keys outside both overlays.
  mutable std::array<Overlay, space_count> store_reads_;
  ChainHead head_;
  std::array<Overlay, space_count> overlay_;
};

}  // namespace buoni::engine
