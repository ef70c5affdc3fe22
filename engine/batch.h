// Batch: the writer's view of state while it applies one batch of commands.
//
// Reads see the committed Store plus every change made earlier in the same
// batch (an overlay), so later commands see the effects of earlier ones.
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
  const Store& store_;
  ChainHead head_;
  std::array<Overlay, space_count> overlay_;
};

}  // namespace buoni::engine
