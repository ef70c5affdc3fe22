// FaultFs and FaultEnv: the contract is in tests/fault_fs.h.
//
// The file and directory wrappers below forward to the real objects through
// FaultFs's append/sync/truncate_file/change/dir_sync, which hold its mutex,
// count the call, refuse it when frozen or when an error is drawn, and keep
// the durable sizes.
#include "fault_fs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <system_error>
#include <utility>

namespace buoni::test {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

struct FaultFs::FileState {
  std::string path;
  std::uint64_t size_bytes = 0;    // appended so far (all on the real file)
  std::uint64_t synced_bytes = 0;  // durable: covered by a Sync/Fsync
};

namespace {

std::string normal(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string parent_of(const std::string& normal_path) {
  return std::filesystem::path(normal_path).parent_path().string();
}

std::string name_of(const std::string& normal_path) {
  return std::filesystem::path(normal_path).filename().string();
}

IOStatus frozen_error() {
  return IOStatus::IOError("fault_fs: power is off (frozen)");
}

std::optional<std::string> read_whole(const std::string& path, std::uint64_t limit_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() > limit_bytes) bytes.resize(limit_bytes);
  return bytes;
}

class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile>&& real, FaultFs& fs,
                    std::shared_ptr<FaultFs::FileState> state)
      : FSWritableFileOwnerWrapper(std::move(real)), fs_(fs), state_(std::move(state)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    return fs_.append(*state_, data, [&] { return target()->Append(data, o, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    return fs_.append(*state_, data, [&] { return target()->Append(data, o, info, dbg); });
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::NotSupported("fault_fs: PositionedAppend (direct I/O) is not modelled");
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&,
                            const rocksdb::DataVerificationInfo&, IODebugContext*) override {
    return IOStatus::NotSupported("fault_fs: PositionedAppend (direct I/O) is not modelled");
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    return fs_.truncate_file(*state_, size, [&] { return target()->Truncate(size, o, dbg); });
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    return fs_.sync(*state_, [&] { return target()->Sync(o, dbg); });
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return fs_.sync(*state_, [&] { return target()->Fsync(o, dbg); });
  }
  // sync_file_range(2) promises nothing across a power loss: not a sync.
  IOStatus RangeSync(uint64_t offset, uint64_t n, const IOOptions& o,
                     IODebugContext* dbg) override {
    return fs_.change([&] { return target()->RangeSync(offset, n, o, dbg); });
  }
  // Preallocation only reserves space; on tmpfs it would allocate RocksDB's
  // whole WAL size (~70 MiB) in memory for every new WAL. Skipped.
  void PrepareWrite(size_t, size_t, const IOOptions&, IODebugContext*) override {}
  IOStatus Allocate(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }
  // Close makes nothing durable. Frozen, the real file is still closed (its
  // descriptor released) but the call reports the error.
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    if (closed_) return IOStatus::OK();
    closed_ = true;
    return fs_.change([&] { return target()->Close(o, dbg); }, true);
  }

 private:
  FaultFs& fs_;
  std::shared_ptr<FaultFs::FileState> state_;
  bool closed_ = false;
};

class FaultSequentialFile final : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  FaultSequentialFile(std::unique_ptr<rocksdb::FSSequentialFile>&& real, FaultFs& fs)
      : FSSequentialFileOwnerWrapper(std::move(real)), fs_(fs) {}
  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    if (fs_.read_fails()) return IOStatus::IOError("fault_fs: injected read error");
    return FSSequentialFileOwnerWrapper::Read(n, o, result, scratch, dbg);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                          char* scratch, IODebugContext* dbg) override {
    if (fs_.read_fails()) return IOStatus::IOError("fault_fs: injected read error");
    return FSSequentialFileOwnerWrapper::PositionedRead(offset, n, o, result, scratch, dbg);
  }

 private:
  FaultFs& fs_;
};

class FaultRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile>&& real, FaultFs& fs)
      : FSRandomAccessFileOwnerWrapper(std::move(real)), fs_(fs) {}
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    if (fs_.read_fails()) return IOStatus::IOError("fault_fs: injected read error");
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t count, const IOOptions& o,
                     IODebugContext* dbg) override {
    if (fs_.read_fails()) {
      for (size_t i = 0; i < count; ++i) reqs[i].status = IOStatus::IOError("fault_fs: read");
      return IOStatus::IOError("fault_fs: injected read error");
    }
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, count, o, dbg);
  }

 private:
  FaultFs& fs_;
};

class FaultDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDirectory(std::unique_ptr<rocksdb::FSDirectory>&& real, FaultFs& fs, std::string path)
      : FSDirectoryWrapper(std::move(real)), fs_(fs), path_(std::move(path)) {}
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return fs_.dir_sync(path_, [&] { return FSDirectoryWrapper::Fsync(o, dbg); });
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& options) override {
    return fs_.dir_sync(path_,
                        [&] { return FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, options); });
  }

 private:
  FaultFs& fs_;
  std::string path_;
};

}  // namespace

// ---------------------------------------------------------------------------
// FaultFs: bookkeeping

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

FaultFs::~FaultFs() = default;

void FaultFs::freeze() {
  std::lock_guard lock(mutex_);
  frozen_ = true;
}

bool FaultFs::frozen() const {
  std::lock_guard lock(mutex_);
  return frozen_;
}

void FaultFs::arm_cut_after(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  cut_at_ = n == 0 ? 0 : mutations_ + n;
}

std::uint64_t FaultFs::mutations() const {
  std::lock_guard lock(mutex_);
  return mutations_;
}

void FaultFs::set_faults(const FaultRates& rates, std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  rates_ = rates;
  fault_rng_.seed(seed);
}

FaultCounts FaultFs::injected() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

bool FaultFs::may_change() {
  ++mutations_;
  if (!frozen_ && cut_at_ != 0 && mutations_ >= cut_at_) {
    frozen_ = true;
    cut_at_ = 0;
  }
  return !frozen_;
}

bool FaultFs::draw(std::uint32_t one_in) {
  return one_in != 0 && fault_rng_() % one_in == 0;
}

bool FaultFs::read_fails() {
  std::lock_guard lock(mutex_);
  if (!draw(rates_.read_one_in)) return false;
  ++counts_.read_errors;
  return true;
}

// What `path` would hold after a power cut that undid every directory change
// not yet fsync'd: the recorded state if the name changed since, else the
// file's durable bytes (all of it when we never wrote it), else nothing.
std::optional<std::string> FaultFs::durable_bytes(const std::string& path) {
  auto dir = dirs_.find(parent_of(path));
  if (dir != dirs_.end()) {
    auto entry = dir->second.find(name_of(path));
    if (entry != dir->second.end()) return entry->second.previous;
  }
  auto file = files_.find(path);
  const std::uint64_t limit = file == files_.end() ? ~std::uint64_t{0} : file->second->synced_bytes;
  return read_whole(path, limit);
}

// Records, before a call creates or replaces `path`, what undoing it restores.
void FaultFs::note_new_name(const std::string& path, std::uint64_t group) {
  auto& entries = dirs_[parent_of(path)];
  if (entries.count(name_of(path))) return;  // the oldest durable state wins
  std::optional<std::string> previous = durable_bytes(path);
  entries[name_of(path)] = Pending{std::move(previous), group};
}

std::shared_ptr<FaultFs::FileState> FaultFs::track(const std::string& path,
                                                   std::uint64_t size_bytes,
                                                   std::uint64_t synced_bytes) {
  auto state = std::make_shared<FileState>();
  state->path = path;
  state->size_bytes = size_bytes;
  state->synced_bytes = synced_bytes;
  files_[path] = state;
  return state;
}

IOStatus FaultFs::append(FileState& file, const Slice& data,
                         const std::function<IOStatus()>& real) {
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  if (draw(rates_.write_one_in)) {
    ++counts_.write_errors;
    return IOStatus::IOError("fault_fs: injected write error");
  }
  IOStatus s = real();
  if (s.ok()) file.size_bytes += data.size();
  return s;
}

IOStatus FaultFs::sync(FileState& file, const std::function<IOStatus()>& real) {
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  if (draw(rates_.sync_one_in)) {
    ++counts_.sync_errors;
    return IOStatus::IOError("fault_fs: injected sync error");
  }
  const std::uint64_t covered_bytes = file.size_bytes;
  IOStatus s = real();
  if (s.ok()) file.synced_bytes = std::max(file.synced_bytes, covered_bytes);
  return s;
}

IOStatus FaultFs::truncate_file(FileState& file, std::uint64_t size_bytes,
                                const std::function<IOStatus()>& real) {
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  IOStatus s = real();
  if (s.ok()) {
    file.size_bytes = size_bytes;
    file.synced_bytes = std::min(file.synced_bytes, size_bytes);
  }
  return s;
}

IOStatus FaultFs::change(const std::function<IOStatus()>& real, bool run_when_frozen) {
  std::lock_guard lock(mutex_);
  if (!may_change()) {
    if (run_when_frozen) real().PermitUncheckedError();
    return frozen_error();
  }
  return real();
}

IOStatus FaultFs::dir_sync(const std::string& dir, const std::function<IOStatus()>& real) {
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  if (draw(rates_.sync_one_in)) {
    ++counts_.sync_errors;
    return IOStatus::IOError("fault_fs: injected directory sync error");
  }
  IOStatus s = real();
  if (s.ok()) dirs_.erase(dir);
  return s;
}

// ---------------------------------------------------------------------------
// FaultFs: the cut

CutReport FaultFs::power_cut(std::mt19937_64& rng, CutMode mode) {
  std::lock_guard lock(mutex_);
  CutReport report;
  undo_entries(rng, mode, report);
  drop_unsynced(rng, mode, report);
  return report;
}

// Each unsynced directory change is undone (drop_all) or undone at random,
// one draw per group, in path order.
void FaultFs::undo_entries(std::mt19937_64& rng, CutMode mode, CutReport& report) {
  std::map<std::uint64_t, bool> undo_group;
  for (const auto& [dir, entries] : dirs_) {
    for (const auto& [name, pending] : entries) {
      auto decided = undo_group.find(pending.group);
      if (decided == undo_group.end()) {
        decided =
            undo_group.emplace(pending.group, mode == CutMode::drop_all || rng() % 2 == 0).first;
      }
      if (!decided->second) {
        ++report.entries_kept;
        continue;
      }
      ++report.entries_undone;
      const std::string path = dir + "/" + name;
      files_.erase(path);  // what is restored is durable as it stands
      std::error_code ec;
      if (!pending.previous) {
        std::filesystem::remove(path, ec);
      } else {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(pending.previous->data(), static_cast<std::streamsize>(pending.previous->size()));
      }
    }
  }
  dirs_.clear();
}

// Each written file keeps its synced bytes and a random prefix of the rest
// (none of it with drop_all).
void FaultFs::drop_unsynced(std::mt19937_64& rng, CutMode mode, CutReport& report) {
  for (const auto& [path, state] : files_) {
    std::error_code ec;
    const std::uint64_t size_bytes = std::filesystem::file_size(path, ec);
    if (ec) continue;  // deleted
    const std::uint64_t synced_bytes = std::min(state->synced_bytes, size_bytes);
    const std::uint64_t unsynced_bytes = size_bytes - synced_bytes;
    if (unsynced_bytes == 0) continue;
    const std::uint64_t kept_bytes = mode == CutMode::drop_all ? 0 : rng() % (unsynced_bytes + 1);
    report.bytes_kept_unsynced += kept_bytes;
    if (kept_bytes == unsynced_bytes) continue;
    std::filesystem::resize_file(path, synced_bytes + kept_bytes, ec);
    ++report.files_truncated;
    report.bytes_dropped += unsynced_bytes - kept_bytes;
  }
  files_.clear();
}

void FaultFs::thaw() {
  std::lock_guard lock(mutex_);
  files_.clear();
  dirs_.clear();
  frozen_ = false;
  cut_at_ = 0;
}

// ---------------------------------------------------------------------------
// FaultFs: the FileSystem calls

IOStatus FaultFs::NewSequentialFile(const std::string& f, const FileOptions& o,
                                    std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                    IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSSequentialFile> real;
  IOStatus s = target()->NewSequentialFile(f, o, &real, dbg);
  if (s.ok()) *r = std::make_unique<FaultSequentialFile>(std::move(real), *this);
  return s;
}

IOStatus FaultFs::NewRandomAccessFile(const std::string& f, const FileOptions& o,
                                      std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                      IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> real;
  IOStatus s = target()->NewRandomAccessFile(f, o, &real, dbg);
  if (s.ok()) *r = std::make_unique<FaultRandomAccessFile>(std::move(real), *this);
  return s;
}

IOStatus FaultFs::NewWritableFile(const std::string& f, const FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  IODebugContext* dbg) {
  const std::string path = normal(f);
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  note_new_name(path, ++groups_);
  std::unique_ptr<rocksdb::FSWritableFile> real;
  IOStatus s = target()->NewWritableFile(f, o, &real, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<FaultWritableFile>(std::move(real), *this, track(path, 0, 0));
  return s;
}

IOStatus FaultFs::ReopenWritableFile(const std::string& f, const FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                                     IODebugContext* dbg) {
  const std::string path = normal(f);
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) note_new_name(path, ++groups_);
  std::unique_ptr<rocksdb::FSWritableFile> real;
  IOStatus s = target()->ReopenWritableFile(f, o, &real, dbg);
  if (!s.ok()) return s;
  auto known = files_.find(path);
  std::shared_ptr<FileState> state;
  if (known != files_.end()) {
    state = known->second;
  } else {
    const std::uint64_t size_bytes = std::filesystem::file_size(path, ec);
    state = track(path, ec ? 0 : size_bytes, ec ? 0 : size_bytes);
  }
  *r = std::make_unique<FaultWritableFile>(std::move(real), *this, std::move(state));
  return s;
}

IOStatus FaultFs::ReuseWritableFile(const std::string&, const std::string&, const FileOptions&,
                                    std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) {
  return IOStatus::NotSupported("fault_fs: ReuseWritableFile (WAL recycling) is not modelled");
}

IOStatus FaultFs::NewRandomRWFile(const std::string&, const FileOptions&,
                                  std::unique_ptr<rocksdb::FSRandomRWFile>*, IODebugContext*) {
  return IOStatus::NotSupported("fault_fs: NewRandomRWFile is not modelled");
}

IOStatus FaultFs::LinkFile(const std::string&, const std::string&, const IOOptions&,
                           IODebugContext*) {
  return IOStatus::NotSupported("fault_fs: LinkFile is not modelled");
}

IOStatus FaultFs::NewDirectory(const std::string& name, const IOOptions& o,
                               std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> real;
  IOStatus s = target()->NewDirectory(name, o, &real, dbg);
  if (s.ok()) *r = std::make_unique<FaultDirectory>(std::move(real), *this, normal(name));
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  const std::string path = normal(f);
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  IOStatus s = target()->DeleteFile(f, o, dbg);
  if (!s.ok()) return s;
  files_.erase(path);
  // A name created since the last directory sync is gone either way; one
  // that replaced durable bytes keeps its record (undoing restores them).
  auto dir = dirs_.find(parent_of(path));
  if (dir != dirs_.end()) {
    auto entry = dir->second.find(name_of(path));
    if (entry != dir->second.end() && !entry->second.previous) dir->second.erase(entry);
  }
  return s;
}

IOStatus FaultFs::Truncate(const std::string& f, size_t size, const IOOptions& o,
                           IODebugContext* dbg) {
  const std::string path = normal(f);
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  IOStatus s = target()->Truncate(f, size, o, dbg);
  auto known = files_.find(path);
  if (s.ok() && known != files_.end()) {
    known->second->size_bytes = size;
    known->second->synced_bytes = std::min<std::uint64_t>(known->second->synced_bytes, size);
  }
  return s;
}

IOStatus FaultFs::CreateDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  return change([&] { return target()->CreateDir(d, o, dbg); });
}

IOStatus FaultFs::CreateDirIfMissing(const std::string& d, const IOOptions& o,
                                     IODebugContext* dbg) {
  return change([&] { return target()->CreateDirIfMissing(d, o, dbg); });
}

IOStatus FaultFs::DeleteDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  return change([&] { return target()->DeleteDir(d, o, dbg); });
}

// Both names change in their directories; a power cut before the directory
// is fsync'd may undo either (the source reappears, the target gets back its
// former durable bytes or vanishes).
IOStatus FaultFs::RenameFile(const std::string& s, const std::string& t, const IOOptions& o,
                             IODebugContext* dbg) {
  const std::string from = normal(s);
  const std::string to = normal(t);
  std::lock_guard lock(mutex_);
  if (!may_change()) return frozen_error();
  const std::uint64_t group = ++groups_;
  note_new_name(from, group);
  note_new_name(to, group);
  IOStatus status = target()->RenameFile(s, t, o, dbg);
  if (!status.ok()) return status;
  files_.erase(to);
  auto moved = files_.find(from);
  if (moved != files_.end()) {
    moved->second->path = to;
    files_[to] = moved->second;
    files_.erase(from);
  }
  return status;
}

// ---------------------------------------------------------------------------
// FaultEnv

FaultEnv::FaultEnv(std::shared_ptr<FaultFs> fs, bool manual_background)
    : EnvWrapper(rocksdb::NewCompositeEnv(fs)), fs_(std::move(fs)), manual_(manual_background) {}

FaultEnv::~FaultEnv() = default;

void FaultEnv::Schedule(void (*function)(void* arg), void* arg, Priority pri, void* tag,
                        void (*unschedule)(void* arg)) {
  if (!manual_) return EnvWrapper::Schedule(function, arg, pri, tag, unschedule);
  std::lock_guard lock(mutex_);
  jobs_.push_back({function, arg, pri, tag, unschedule});
}

int FaultEnv::UnSchedule(void* tag, Priority pri) {
  if (!manual_) return EnvWrapper::UnSchedule(tag, pri);
  std::vector<Job> removed;
  {
    std::lock_guard lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->tag == tag && it->pri == pri) {
        removed.push_back(*it);
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const Job& job : removed) {
    if (job.unschedule != nullptr) job.unschedule(job.arg);
  }
  return static_cast<int>(removed.size());
}

int FaultEnv::run_background() {
  int ran = 0;
  for (;;) {
    Job job{};
    {
      std::lock_guard lock(mutex_);
      if (jobs_.empty()) return ran;
      job = jobs_.front();
      jobs_.pop_front();
    }
    job.function(job.arg);
    ++ran;
  }
}

}  // namespace buoni::test
