// RocksStore: the engine's Store on RocksDB.
//
// Layout: one RocksDB database in <dir>, with one column family per
// engine::Space ("state", "ledger", "idempotency", "meta") plus RocksDB's
// "default" (unused). The engine's keys and values are stored as given.
//
// Durability: write() applies the whole WriteSet as ONE rocksdb::WriteBatch
// with WriteOptions::sync = true, so it is atomic across column families and
// on stable storage (WAL fsync'd) when write() returns ok. After a failed
// write the store refuses further writes (fail-stop): RocksDB may be in a
// background-error state and the caller cannot know what is durable.
//
// Modes:
//  - open_primary(): the single writer. RocksDB's LOCK file keeps a second
//    process out; that failure is Status busy ("in use by another process").
//  - open_secondary(): a read-only follower that works while a primary runs
//    (RocksDB secondary instance; its own info log goes to secondary_dir).
//    refresh() catches up with the primary. write() returns invalid_argument.
//  - open_read_only(): read-only when no primary runs (no catch-up needed).
//
// Test hook: RocksOptions::env, when set, is the rocksdb::Env open_primary()
// opens the database with (its FileSystem does all file I/O; its Schedule()
// runs flushes and compactions). Tests pass a fault-injecting one
// (tests/fault_fs.h) to simulate power loss and I/O errors; production
// leaves it null (RocksDB's default Env). The store keeps a reference to the
// Env until it is closed, so the caller may drop its own.
//
// Thread safety: get()/scan() from any thread; write() from one thread.
// Errors: every rocksdb::Status is converted here (io_error, corruption,
// busy, not_found, internal); none escapes as an exception.
#pragma once

#include <memory>
#include <string>

#include "engine/store.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace buoni::storage {

struct RocksOptions {
  bool create_if_missing = false;     // primary only
  bool sync = true;                   // false only in tests that prove sync matters
  std::shared_ptr<rocksdb::Env> env;  // null: RocksDB's default; tests only (see above)
};

class RocksStore;

[[nodiscard]] StatusOr<std::unique_ptr<RocksStore>> open_primary(const std::string& dir,
                                                                 const RocksOptions& options);
[[nodiscard]] StatusOr<std::unique_ptr<RocksStore>> open_secondary(
    const std::string& dir, const std::string& secondary_dir);
[[nodiscard]] StatusOr<std::unique_ptr<RocksStore>> open_read_only(const std::string& dir);

class RocksStore final : public engine::Store {
 public:
  ~RocksStore() override;  // flushes nothing extra: every write was already synced
  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  [[nodiscard]] StatusOr<std::optional<std::string>> get(engine::Space space,
                                                         std::string_view key) const override;
  [[nodiscard]] Status scan(engine::Space space, std::string_view prefix, std::string_view start,
                            const engine::ScanVisitor& visit) const override;
  [[nodiscard]] Status write(const engine::WriteSet& set) override;
  [[nodiscard]] Status refresh() override;

  struct Impl;
  explicit RocksStore(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace buoni::storage
