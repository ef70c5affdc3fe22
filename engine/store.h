// Store: the persistence the engine needs, and nothing more.
//
// The engine owns the meaning of keys and values (see engine/keys.h); a Store
// only keeps bytes in four key spaces and writes a WriteSet atomically and
// durably. storage/ implements it over RocksDB (one column family per space);
// engine/memory_store.h implements it in memory for tests.
//
// Contract:
//  - write(): all puts and deletes of the set become visible and durable
//    together, or none does. It returns only after the data is on stable
//    storage (RocksDB: one WriteBatch, WriteOptions::sync = true). A non-ok
//    Status means the outcome is unknown to the caller: the engine fails stop.
//  - get()/scan() see every write() that returned ok before they started.
//  - Thread safety: get() and scan() may be called from any thread at any
//    time, concurrently with one thread calling write() (the engine's commit
//    thread).
//  - Keys and values are arbitrary bytes; keys order bytewise (memcmp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"

namespace buoni::engine {

// The key spaces, one RocksDB column family each.
enum class Space : std::uint8_t {
  state = 0,        // programmes, merchants, cards, holds, redemptions, indexes
  ledger = 1,       // the append-only, hash-chained ledger, keyed by seq
  idempotency = 2,  // first results of requests, keyed by caller + key
  meta = 3,         // chain head, checkpoints, admin key hash, format version
};
inline constexpr int space_count = 4;
[[nodiscard]] constexpr const char* space_name(Space s) {
  switch (s) {
    case Space::state:
      return "state";
    case Space::ledger:
      return "ledger";
    case Space::idempotency:
      return "idempotency";
    case Space::meta:
      return "meta";
  }
  return "?";
}

struct WriteOp {
  Space space = Space::state;
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
};

struct WriteSet {
  std::vector<WriteOp> ops;
  void put(Space space, std::string key, std::string value) {
    ops.push_back({space, std::move(key), std::move(value)});
  }
  void erase(Space space, std::string key) { ops.push_back({space, std::move(key), std::nullopt}); }
  [[nodiscard]] bool empty() const { return ops.empty(); }
};

// scan() calls visit(key, value) for keys >= start that begin with prefix, in
// key order, until visit returns false or the keys run out.
using ScanVisitor = std::function<bool(std::string_view key, std::string_view value)>;

class Store {
 public:
  virtual ~Store() = default;
  [[nodiscard]] virtual StatusOr<std::optional<std::string>> get(Space space,
                                                                 std::string_view key) const = 0;
  [[nodiscard]] virtual Status scan(Space space, std::string_view prefix, std::string_view start,
                                    const ScanVisitor& visit) const = 0;
  [[nodiscard]] virtual Status write(const WriteSet& set) = 0;
  // For a read-only follower (RocksDB secondary): catch up with the primary.
  // Stores that are always current return ok.
  [[nodiscard]] virtual Status refresh() { return Status(); }
};

}  // namespace buoni::engine
