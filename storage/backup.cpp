// Backups of a live store. The contract (and why it is a logical copy from a
// secondary instance) is in storage/backup.h.
#include "storage/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

namespace buoni::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t batch_bytes_max = std::size_t{4} << 20;  // one WriteBatch of the copy
constexpr std::uint64_t progress_every = 4096;                 // keys between progress calls

Status from_rocks(const rocksdb::Status& s, const std::string& what) {
  std::string message = what + ": " + s.ToString();
  if (s.IsIOError()) return io_error(std::move(message));
  if (s.IsCorruption()) return corruption(std::move(message));
  if (s.IsNotFound()) return not_found(std::move(message));
  return internal_error(std::move(message));
}

Status from_errno(const std::string& what) {
  return io_error(what + ": " + std::strerror(errno));
}

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    return internal_error(std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return internal_error(std::string(what) + ": unknown exception");
  }
}

// One open database with its column family handles; closes it on scope end.
struct OpenDb {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  OpenDb() = default;
  OpenDb(const OpenDb&) = delete;
  OpenDb& operator=(const OpenDb&) = delete;
  ~OpenDb() {
    if (db == nullptr) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db->Close().PermitUncheckedError();
    delete db;
  }
  // Closes now, reporting what Close() says (the destination's last flush).
  Status close(const std::string& what) {
    if (db == nullptr) return Status();
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    handles.clear();
    const rocksdb::Status s = db->Close();
    delete db;
    db = nullptr;
    if (!s.ok()) return from_rocks(s, what);
    return Status();
  }
};

std::vector<rocksdb::ColumnFamilyDescriptor> descriptors(const std::vector<std::string>& names) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& name : names) cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  return cfs;
}

// The source as a secondary instance, caught up with its primary once.
Status open_source(const std::string& source_db, const std::string& work_dir, OpenDb& out,
                   std::vector<std::string>& names) {
  std::error_code ec;
  if (!fs::exists(fs::path(source_db) / "CURRENT", ec)) {
    return not_found("no database in " + source_db);
  }
  fs::create_directories(work_dir, ec);
  if (ec) return io_error("cannot create " + work_dir + ": " + ec.message());
  rocksdb::DBOptions options;
  options.max_open_files = -1;  // required by secondaries: keep deleted SSTs readable
  options.paranoid_checks = true;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, source_db, &names);
  if (!s.ok()) return from_rocks(s, "backup: list column families of " + source_db);
  s = rocksdb::DB::OpenAsSecondary(options, source_db, work_dir, descriptors(names), &out.handles,
                                   &out.db);
  if (!s.ok()) return from_rocks(s, "backup: open " + source_db);
  s = out.db->TryCatchUpWithPrimary();
  if (!s.ok()) return from_rocks(s, "backup: catch up with the primary");
  return Status();
}

Status open_dest(const std::string& dest_db, const std::vector<std::string>& names, OpenDb& out) {
  std::error_code ec;
  if (fs::exists(dest_db, ec)) return already_exists(dest_db + " already exists");
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.error_if_exists = true;
  options.paranoid_checks = true;
  const rocksdb::Status s =
      rocksdb::DB::Open(options, dest_db, descriptors(names), &out.handles, &out.db);
  if (!s.ok()) return from_rocks(s, "backup: create " + dest_db);
  return Status();
}

std::uint64_t estimate_keys(const OpenDb& source) {
  std::uint64_t total = 0;
  for (auto* h : source.handles) {
    std::uint64_t n = 0;
    if (source.db->GetIntProperty(h, "rocksdb.estimate-num-keys", &n)) total += n;
  }
  return total;
}

struct Copier {
  OpenDb& source;
  OpenDb& dest;
  const CopyProgress& progress;
  std::uint64_t total = 0;
  CopyStats stats;

  Status flush_batch(rocksdb::WriteBatch& batch) {
    if (batch.Count() == 0) return Status();
    rocksdb::WriteOptions options;
    options.disableWAL = true;  // the closing Flush() makes the copy durable
    const rocksdb::Status s = dest.db->Write(options, &batch);
    batch.Clear();
    if (!s.ok()) return from_rocks(s, "backup: write");
    return Status();
  }

  Status copy_family(std::size_t i) {
    rocksdb::ReadOptions read;
    read.fill_cache = false;
    read.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(source.db->NewIterator(read, source.handles[i]));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Status s = batch.Put(dest.handles[i], it->key(), it->value());
      if (!s.ok()) return from_rocks(s, "backup: batch");
      stats.keys += 1;
      stats.bytes += it->key().size() + it->value().size();
      if (batch.GetDataSize() >= batch_bytes_max) BUONI_RETURN_IF_ERROR(flush_batch(batch));
      if (progress && stats.keys % progress_every == 0) {
        progress(stats.keys, std::max(total, stats.keys));
      }
    }
    if (!it->status().ok()) return from_rocks(it->status(), "backup: read");
    return flush_batch(batch);
  }

  Status run() {
    total = estimate_keys(source);
    for (std::size_t i = 0; i < source.handles.size(); ++i) BUONI_RETURN_IF_ERROR(copy_family(i));
    rocksdb::FlushOptions flush;
    flush.wait = true;
    const rocksdb::Status s = dest.db->Flush(flush, dest.handles);
    if (!s.ok()) return from_rocks(s, "backup: flush");
    if (progress) progress(stats.keys, stats.keys);
    return Status();
  }
};

Status copy_one_file(const fs::path& from, const fs::path& to) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) return from_errno("cannot stat " + from.string());
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return from_errno("cannot open " + from.string());
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    ::close(in);
    return from_errno("cannot create " + to.string());
  }
  Status result;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = from_errno("cannot read " + from.string());
      break;
    }
    if (::write(out, buf, static_cast<std::size_t>(n)) != n) {
      result = from_errno("cannot write " + to.string());
      break;
    }
  }
  if (result.ok() && ::fchmod(out, st.st_mode & 07777) != 0) {
    result = from_errno("cannot chmod " + to.string());
  }
  if (result.ok() && ::fsync(out) != 0) result = from_errno("cannot fsync " + to.string());
  ::close(in);
  if (::close(out) != 0 && result.ok()) result = from_errno("cannot close " + to.string());
  return result;
}

}  // namespace

StatusOr<CopyStats> copy_database(const std::string& source_db, const std::string& work_dir,
                                  const std::string& dest_db, const CopyProgress& progress) {
  using Result = StatusOr<CopyStats>;
  return guarded("copy_database", [&]() -> Result {
    OpenDb source;
    std::vector<std::string> names;
    BUONI_RETURN_IF_ERROR(open_source(source_db, work_dir, source, names));
    OpenDb dest;
    BUONI_RETURN_IF_ERROR(open_dest(dest_db, names, dest));
    Copier copier{source, dest, progress};
    BUONI_RETURN_IF_ERROR(copier.run());
    BUONI_RETURN_IF_ERROR(dest.close("backup: close " + dest_db));
    BUONI_RETURN_IF_ERROR(sync_directory(dest_db));
    return copier.stats;
  });
}

StatusOr<std::uint64_t> copy_private_files(const std::string& source_dir,
                                           const std::string& dest_dir) {
  using Result = StatusOr<std::uint64_t>;
  return guarded("copy_private_files", [&]() -> Result {
    if (::mkdir(dest_dir.c_str(), 0700) != 0) return from_errno("cannot create " + dest_dir);
    std::uint64_t copied = 0;
    std::error_code ec;
    for (const auto& item : fs::directory_iterator(source_dir, ec)) {
      if (!item.is_regular_file()) {
        return invalid_argument(item.path().string() + " is not a regular file");
      }
      BUONI_RETURN_IF_ERROR(
          copy_one_file(item.path(), fs::path(dest_dir) / item.path().filename()));
      ++copied;
    }
    if (ec) return io_error("cannot read " + source_dir + ": " + ec.message());
    BUONI_RETURN_IF_ERROR(sync_directory(dest_dir));
    return copied;
  });
}

Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return from_errno("cannot open " + dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return from_errno("cannot fsync " + dir);
  return Status();
}

Status write_file_atomically(const std::string& path, std::string_view contents, unsigned mode) {
  return guarded("write_file_atomically", [&]() -> Status {
    const fs::path target = fs::absolute(path);
    std::string tmp = target.string() + ".tmp-XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) return from_errno("cannot create a file next to " + path);
    Status result;
    std::size_t written = 0;
    while (result.ok() && written < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) result = from_errno("cannot write " + tmp);
      if (n > 0) written += static_cast<std::size_t>(n);
    }
    if (result.ok() && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
      result = from_errno("cannot chmod " + tmp);
    }
    if (result.ok() && ::fsync(fd) != 0) result = from_errno("cannot fsync " + tmp);
    if (::close(fd) != 0 && result.ok()) result = from_errno("cannot close " + tmp);
    if (result.ok() && ::rename(tmp.c_str(), target.c_str()) != 0) {
      result = from_errno("cannot rename " + tmp + " to " + path);
    }
    if (!result.ok()) {
      ::unlink(tmp.c_str());
      return result;
    }
    return sync_directory(target.parent_path().string());
  });
}

}  // namespace buoni::storage
