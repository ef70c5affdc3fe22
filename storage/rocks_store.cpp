// RocksStore: engine::Store on RocksDB. The contract is in storage/rocks_store.h.
//
// This file is the only place that sees RocksDB types. Every rocksdb::Status
// becomes a buoni::Status here, and every public entry point catches C++
// exceptions (std::bad_alloc from a string, say), so none crosses the module.
#include "storage/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

namespace buoni::storage {
namespace {

enum class Mode { primary, secondary, read_only };

constexpr std::string_view kBusyMessage =
    "data directory is in use by another process (a running `buoni serve`?)";

rocksdb::Slice to_slice(std::string_view s) {
  return {s.data(), s.size()};
}
std::string_view to_view(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// RocksDB reports a held LOCK file as an IOError, not as Busy:
//  - another process: "IO error: While lock file: <dir>/LOCK: Resource
//    temporarily unavailable" (fcntl F_SETLK fails with EAGAIN);
//  - this process:    "IO error: lock hold by current process, ...: <dir>/LOCK:
//    No locks available" (RocksDB keeps its own set of locked files).
// Matching a bare "lock" would also match "block", and a LOCK file that cannot
// even be opened ("While open a file for lock: ... Permission denied") is an
// I/O problem, not contention, so the markers are specific.
bool is_lock_error(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return contains(text, "While lock file") || contains(text, "lock hold by current process") ||
         contains(text, "Resource temporarily unavailable");
}

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsBusy() || s.IsTryAgain() || is_lock_error(s)) return busy(std::move(message));
  if (s.IsIOError()) return io_error(std::move(message));
  if (s.IsCorruption()) return corruption(std::move(message));
  if (s.IsNotFound()) return not_found(std::move(message));
  return internal_error(std::move(message));
}

// Converts an exception thrown inside f (by RocksDB or the standard library)
// into an internal Status, so that none escapes the store.
template <typename F>
auto guarded(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    return internal_error(std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return internal_error(std::string(what) + ": unknown exception");
  }
}

// The smallest string greater than every string that starts with prefix, or
// "" when there is none (prefix empty or all 0xff): then there is no bound.
std::string prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff) s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

// A database exists in dir iff RocksDB's CURRENT file (naming the live
// MANIFEST) does. Checked up front so "no database" is a clean not_found
// instead of RocksDB's InvalidArgument/IOError wording.
bool has_database(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec);
}

// Options shared by every mode. Mostly RocksDB's defaults, which suit a small
// OLTP store; each setting below is spelled out because we rely on it.
rocksdb::DBOptions base_db_options() {
  rocksdb::DBOptions o;
  // Verify checksums and file sizes on open and stop on any inconsistency
  // rather than serve possibly-wrong balances (already the default).
  o.paranoid_checks = true;
  // WAL replay after a crash: stop at the first record that does not verify
  // and recover to the consistent point just before it (the default). After a
  // power loss the WAL can end in a torn, half-written record; that record
  // belongs to a write() that never returned ok (every acknowledged write was
  // fsync'd whole), so dropping it loses nothing we promised. We do not use
  // kAbsoluteConsistency (refuses to open on such a normal torn tail) nor
  // kSkipAnyCorruptedRecords (would replay later batches after a hole and so
  // break the all-or-nothing order of WriteSets). RocksDB still fails the open
  // (paranoid_checks) when SST files are ahead of the point it stopped at.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Each write() hands its batch to the OS and fsyncs it before returning;
  // manual_wal_flush would keep it in RocksDB's buffer until FlushWAL().
  o.manual_wal_flush = false;
  // On close, flush memtables holding data that is not in the WAL. With the
  // WAL always on there is none, so this costs nothing; it is the safe value.
  o.avoid_flush_during_shutdown = false;
  // The meta and idempotency column families see few bytes, so their
  // memtables rarely fill; a WAL file is kept until every column family with
  // data in it is flushed. Bound the WALs (disk use and replay time on start)
  // by forcing those flushes once the WALs pass 256 MiB (default ~1.3 GiB).
  o.max_total_wal_size = std::uint64_t{256} << 20;
  // RocksDB's own info LOG rolls on every open; keep 10, not 1000.
  o.keep_log_file_num = 10;
  // Not IncreaseParallelism(): the default max_background_jobs = 2 (one flush,
  // one compaction) is ample for this write rate, and IncreaseParallelism
  // resizes the process-wide Env thread pools as a side effect.
  return o;
}

// Column family i+1 holds engine::Space i; 0 is RocksDB's unused "default".
std::vector<rocksdb::ColumnFamilyDescriptor> column_families() {
  const rocksdb::ColumnFamilyOptions cf_options;  // defaults: leveled compaction
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (int i = 0; i < engine::space_count; ++i) {
    cfs.emplace_back(engine::space_name(static_cast<engine::Space>(i)), cf_options);
  }
  return cfs;
}

}  // namespace

struct RocksStore::Impl {
  Mode mode = Mode::read_only;
  bool sync = true;
  // RocksOptions::env (tests): kept alive until db is closed (~Impl runs
  // before the members are destroyed).
  std::shared_ptr<rocksdb::Env> env;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // index = Space + 1
  std::mutex failure_mutex;
  std::string failure;  // non-empty once a write() failed: fail-stop

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Handles first (RocksDB requires it), then Close() so the DB shuts down
  // cleanly and reports nothing from a destructor, then free it. Errors here
  // cannot be reported and change nothing durable: every write was synced.
  ~Impl() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
    delete db;
  }

  [[nodiscard]] rocksdb::ColumnFamilyHandle* cf(engine::Space space) const {
    const auto index = static_cast<std::size_t>(space) + 1;
    BUONI_ASSERT(index < handles.size());
    return handles[index];
  }
};

namespace {

// Takes ownership of what a RocksDB Open* call produced, whatever its status.
StatusOr<std::unique_ptr<RocksStore>> adopt(const rocksdb::Status& s, rocksdb::DB* db,
                                            std::vector<rocksdb::ColumnFamilyHandle*> handles,
                                            Mode mode, bool sync,
                                            std::shared_ptr<rocksdb::Env> env = nullptr) {
  auto impl = std::make_unique<RocksStore::Impl>();
  impl->env = std::move(env);
  impl->db = db;
  impl->handles = std::move(handles);
  impl->mode = mode;
  impl->sync = sync;
  if (!s.ok()) return from_rocks(s, "open");  // impl frees whatever was opened
  BUONI_ASSERT(db != nullptr && impl->handles.size() == engine::space_count + 1);
  return std::make_unique<RocksStore>(std::move(impl));
}

Status no_database(const std::string& dir) {
  return not_found("no database in " + dir);
}

}  // namespace

StatusOr<std::unique_ptr<RocksStore>> open_primary(const std::string& dir,
                                                   const RocksOptions& options) {
  using Result = StatusOr<std::unique_ptr<RocksStore>>;
  return guarded("open_primary", [&]() -> Result {
    if (!options.create_if_missing && !has_database(dir)) return no_database(dir);
    rocksdb::DBOptions db_options = base_db_options();
    db_options.create_if_missing = options.create_if_missing;
    db_options.create_missing_column_families = options.create_if_missing;
    if (options.env) db_options.env = options.env.get();  // tests: fault injection
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    const rocksdb::Status s = rocksdb::DB::Open(db_options, dir, column_families(), &handles, &db);
    if (is_lock_error(s)) return busy(std::string(kBusyMessage) + ": " + s.ToString());
    if (s.IsInvalidArgument() && contains(s.ToString(), "does not exist")) {
      return no_database(dir);  // lost a race with a deletion since has_database()
    }
    return adopt(s, db, std::move(handles), Mode::primary, options.sync, options.env);
  });
}

StatusOr<std::unique_ptr<RocksStore>> open_secondary(const std::string& dir,
                                                     const std::string& secondary_dir) {
  using Result = StatusOr<std::unique_ptr<RocksStore>>;
  return guarded("open_secondary", [&]() -> Result {
    if (!has_database(dir)) return no_database(dir);
    std::error_code ec;
    std::filesystem::create_directories(secondary_dir, ec);
    if (ec) return io_error("cannot create " + secondary_dir + ": " + ec.message());
    rocksdb::DBOptions db_options = base_db_options();
    // Required by secondary instances: keep every SST file open, because the
    // primary may delete a file (after compaction) that we still read.
    db_options.max_open_files = -1;
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    const rocksdb::Status s = rocksdb::DB::OpenAsSecondary(db_options, dir, secondary_dir,
                                                           column_families(), &handles, &db);
    return adopt(s, db, std::move(handles), Mode::secondary, false);
  });
}

StatusOr<std::unique_ptr<RocksStore>> open_read_only(const std::string& dir) {
  using Result = StatusOr<std::unique_ptr<RocksStore>>;
  return guarded("open_read_only", [&]() -> Result {
    if (!has_database(dir)) return no_database(dir);
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    const rocksdb::Status s =
        rocksdb::DB::OpenForReadOnly(base_db_options(), dir, column_families(), &handles, &db);
    return adopt(s, db, std::move(handles), Mode::read_only, false);
  });
}

RocksStore::RocksStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksStore::~RocksStore() = default;

StatusOr<std::optional<std::string>> RocksStore::get(engine::Space space,
                                                     std::string_view key) const {
  using Result = StatusOr<std::optional<std::string>>;
  return guarded("get", [&]() -> Result {
    rocksdb::PinnableSlice value;
    const rocksdb::Status s =
        impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(space), to_slice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return from_rocks(s, "get");
    return std::optional<std::string>(value.ToString());
  });
}

Status RocksStore::scan(engine::Space space, std::string_view prefix, std::string_view start,
                        const engine::ScanVisitor& visit) const {
  return guarded("scan", [&]() -> Status {
    // The upper bound lets RocksDB stop (and skip tombstones) at the end of
    // the prefix; the starts_with() check below stays as the definition.
    const std::string upper = prefix_successor(prefix);
    const rocksdb::Slice upper_slice = to_slice(upper);
    rocksdb::ReadOptions read_options;
    if (!upper.empty()) read_options.iterate_upper_bound = &upper_slice;
    // The iterator reads one implicit snapshot, so visit() may call back into
    // the store (even write()) without disturbing the scan.
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->cf(space)));
    for (it->Seek(to_slice(std::max(start, prefix))); it->Valid(); it->Next()) {
      const std::string_view key = to_view(it->key());
      if (!key.starts_with(prefix)) break;
      if (!visit(key, to_view(it->value()))) break;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "scan");
    return Status();
  });
}

Status RocksStore::write(const engine::WriteSet& set) {
  if (impl_->mode != Mode::primary) return invalid_argument("store is read-only");
  {
    std::lock_guard lock(impl_->failure_mutex);
    if (!impl_->failure.empty()) return unavailable("store failed earlier: " + impl_->failure);
  }
  if (set.empty()) return Status();
  Status result = guarded("write", [&]() -> Status {
    rocksdb::WriteBatch batch;
    for (const engine::WriteOp& op : set.ops) {
      const rocksdb::Status s =
          op.value ? batch.Put(impl_->cf(op.space), to_slice(op.key), to_slice(*op.value))
                   : batch.Delete(impl_->cf(op.space), to_slice(op.key));
      if (!s.ok()) return from_rocks(s, "write: batch");
    }
    rocksdb::WriteOptions write_options;
    write_options.sync = impl_->sync;  // fsync the WAL before returning
    const rocksdb::Status s = impl_->db->Write(write_options, &batch);
    if (!s.ok()) return from_rocks(s, "write");
    return Status();
  });
  if (!result.ok()) {
    // Whether the batch is durable is now unknown, and RocksDB may be in a
    // background-error state: refuse every later write (fail-stop).
    std::lock_guard lock(impl_->failure_mutex);
    impl_->failure = result.to_string();
  }
  return result;
}

Status RocksStore::refresh() {
  if (impl_->mode != Mode::secondary) return Status();  // primary/read-only: always current
  return guarded("refresh", [&]() -> Status {
    const rocksdb::Status s = impl_->db->TryCatchUpWithPrimary();
    if (!s.ok()) return from_rocks(s, "refresh");
    return Status();
  });
}

}  // namespace buoni::storage
