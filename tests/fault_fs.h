// FaultFs and FaultEnv: a RocksDB FileSystem and Env for tests that simulate
// power loss, crashes and I/O errors under a real RocksDB.
//
// FaultFs wraps the real (POSIX) file system. Every byte goes to the real
// file at once, so RocksDB reads back what it wrote, as it would from the
// page cache; what FaultFs adds is bookkeeping of what a power cut would
// keep, following POSIX and ext4 practice:
//  - file data: only what Sync()/Fsync() of that file covered is durable.
//    Append, Flush, Close and RangeSync (sync_file_range(2) guarantees
//    nothing after a power loss) are not. Sync covers the bytes appended
//    before it began.
//  - directory entries: a file created, or a name a rename made, is durable
//    only after an fsync of its directory (FSDirectory::Fsync or
//    FsyncWithDirOptions). Until then a power cut may undo it: a new file
//    vanishes, a renamed-over file gets its former durable bytes back.
//  - preallocation (PrepareWrite/Allocate) is skipped: it reserves space only.
//  - not modelled: deleted files reappearing (unlink not yet durable), a
//    truncation undone, ReuseWritableFile, NewRandomRWFile and LinkFile (RocksDB does not use
//    them with buoni's options; they answer NotSupported so a change shows).
// A power cut (power_cut()) then, for each file written since the last cut:
// keeps its durable bytes plus a random prefix of the rest (or none of the
// rest), and keeps or undoes each directory change not yet fsync'd. The
// choices come from the caller's random engine, in file-name order, so a
// seeded caller gets the same cut every time.
//
// The cut instant is freeze(): from then on every call that would change the
// disk (append, sync, create, rename, delete, truncate, close) fails with
// IOError and changes nothing (a close still releases the descriptor), so whatever RocksDB does
// while it is closed cannot become durable. arm_cut_after(n) freezes at the n-th such call from now
// (counted in the order they happen), for cuts in the middle of RocksDB's
// own work. The protocol is: freeze (or an armed cut fires), close the
// database, power_cut() or nothing (a process crash keeps every written
// byte), thaw(), reopen on the same FaultFs.
//
// I/O errors: set_faults() makes one in N writes (Append), syncs and reads
// (sequential and random-access Read/MultiRead) fail with IOError, drawn from
// the seed given; a failed write or sync changes nothing.
//
// FaultEnv is the Env to pass in storage::RocksOptions::env: the default
// Env's threads and clock over a FaultFs. With manual background work it
// does not run flushes and compactions on RocksDB's threads: they queue until
// run_background() runs them on the caller's thread, so a single-threaded
// test sees the same file operations in the same order every run (RocksDB's
// background threads are the nondeterminism of a run; the engine's writer is
// not, when one request at a time is executed). A database closing cancels
// what is queued (UnSchedule), as RocksDB's own thread pools do.
//
// Ownership: FaultEnv shares its FaultFs. Thread safety: every FaultFs
// method may be called from any thread (one mutex guards the bookkeeping; it
// is held across the real append or sync so a freeze is atomic with them).
// run_background() must not run concurrently with itself.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

namespace buoni::test {

// One in N of each kind of call fails; 0: never.
struct FaultRates {
  std::uint32_t write_one_in = 0;
  std::uint32_t sync_one_in = 0;
  std::uint32_t read_one_in = 0;
};

struct FaultCounts {
  std::uint64_t write_errors = 0, sync_errors = 0, read_errors = 0;
  [[nodiscard]] std::uint64_t total() const { return write_errors + sync_errors + read_errors; }
};

// What a power cut did.
struct CutReport {
  std::uint64_t files_truncated = 0;  // lost some unsynced bytes
  std::uint64_t bytes_dropped = 0;    // unsynced bytes lost
  std::uint64_t bytes_kept_unsynced = 0;
  std::uint64_t entries_undone = 0;  // new files removed, renames reverted
  std::uint64_t entries_kept = 0;    // unsynced directory changes that survived
};

enum class CutMode {
  drop_all,       // every unsynced byte and directory change is lost
  random_prefix,  // each file keeps a random prefix of its unsynced bytes; each
                  // unsynced directory change survives or not at random
};

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultFs() override;
  static const char* kClassName() { return "BuoniFaultFs"; }
  const char* Name() const override { return kClassName(); }

  // ---- power cuts ----
  void freeze();
  [[nodiscard]] bool frozen() const;
  // Freezes at the n-th (n >= 1) disk-changing call from now; 0 disarms.
  void arm_cut_after(std::uint64_t n);
  // Requires frozen() and the database closed. Applies the loss (see above).
  CutReport power_cut(std::mt19937_64& rng, CutMode mode);
  // Forgets every record (what is on disk now is all durable) and unfreezes.
  void thaw();
  // Disk-changing calls so far (the clock arm_cut_after counts in).
  [[nodiscard]] std::uint64_t mutations() const;

  // ---- I/O errors ----
  void set_faults(const FaultRates& rates, std::uint64_t seed);
  void clear_faults() { set_faults({}, 0); }
  [[nodiscard]] FaultCounts injected() const;

  // ---- FileSystem ----
  rocksdb::IOStatus NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& s, const std::string& t,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;

  // ---- used by the file wrappers (fault_fs.cpp) ----
  struct FileState;
  rocksdb::IOStatus append(FileState& file, const rocksdb::Slice& data,
                           const std::function<rocksdb::IOStatus()>& real);
  rocksdb::IOStatus sync(FileState& file, const std::function<rocksdb::IOStatus()>& real);
  rocksdb::IOStatus truncate_file(FileState& file, std::uint64_t size_bytes,
                                  const std::function<rocksdb::IOStatus()>& real);
  // Any other disk-changing call (close, range sync, directories). Frozen:
  // fails, but runs `real` first when run_when_frozen (a close must still
  // release the descriptor; it writes nothing).
  rocksdb::IOStatus change(const std::function<rocksdb::IOStatus()>& real,
                           bool run_when_frozen = false);
  rocksdb::IOStatus dir_sync(const std::string& dir,
                             const std::function<rocksdb::IOStatus()>& real);
  [[nodiscard]] bool read_fails();

 private:
  // A directory change not yet fsync'd: undoing it restores `previous`
  // (the durable bytes the name had) or removes the name (nullopt). The two
  // names of one rename share a group: a cut undoes both or neither.
  struct Pending {
    std::optional<std::string> previous;
    std::uint64_t group = 0;
  };
  // Locked: counts a disk-changing call; false (and the FS frozen) when it
  // is the armed cut or the FS already is.
  [[nodiscard]] bool may_change();
  [[nodiscard]] bool draw(std::uint32_t one_in);
  void note_new_name(const std::string& path, std::uint64_t group);
  std::optional<std::string> durable_bytes(const std::string& path);
  std::shared_ptr<FileState> track(const std::string& path, std::uint64_t size_bytes,
                                   std::uint64_t synced_bytes);
  void undo_entries(std::mt19937_64& rng, CutMode mode, CutReport& report);
  void drop_unsynced(std::mt19937_64& rng, CutMode mode, CutReport& report);

  mutable std::mutex mutex_;
  bool frozen_ = false;
  std::uint64_t mutations_ = 0;
  std::uint64_t cut_at_ = 0;  // 0: none armed
  std::uint64_t groups_ = 0;
  std::map<std::string, std::shared_ptr<FileState>> files_;     // written since the last cut
  std::map<std::string, std::map<std::string, Pending>> dirs_;  // dir -> name -> change
  FaultRates rates_;
  std::mt19937_64 fault_rng_;
  FaultCounts counts_;
};

class FaultEnv final : public rocksdb::EnvWrapper {
 public:
  FaultEnv(std::shared_ptr<FaultFs> fs, bool manual_background);
  ~FaultEnv() override;
  static const char* kClassName() { return "BuoniFaultEnv"; }
  const char* Name() const override { return kClassName(); }

  [[nodiscard]] FaultFs& fs() { return *fs_; }
  void Schedule(void (*function)(void* arg), void* arg, Priority pri, void* tag,
                void (*unschedule)(void* arg)) override;
  int UnSchedule(void* tag, Priority pri) override;
  // Manual mode: runs queued jobs (and those they queue) on this thread until
  // none is left; returns how many ran. Call it only while no database
  // operation runs on another thread.
  int run_background();

 private:
  struct Job {
    void (*function)(void*);
    void* arg;
    Priority pri;
    void* tag;
    void (*unschedule)(void*);
  };
  std::shared_ptr<FaultFs> fs_;
  bool manual_;
  std::mutex mutex_;
  std::deque<Job> jobs_;
};

}  // namespace buoni::test
