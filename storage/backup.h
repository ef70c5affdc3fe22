// Backups of a live store: a consistent copy of the RocksDB database that
// works while a primary (a running `buoni serve`) writes to it, plus a copy
// of a flat directory of small files that keeps their permission bits.
//
// Why not RocksDB's Checkpoint or BackupEngine: both take a DB handle and
// call DisableFileDeletions + GetLiveFiles(StorageInfo) on it, then copy or
// hard-link the live SST, MANIFEST and WAL files. That is consistent only on
// the primary, and the primary belongs to the server process (RocksDB's LOCK
// keeps every other process out). On a secondary the live-file list would
// name the primary's MANIFEST and WAL files, which the primary keeps
// appending to, so the copy would not be a defined point in time.
//
// What copy_database() does instead (a logical copy):
//  1. opens the source as a RocksDB secondary instance (no lock needed; its
//     own info log goes to a private work directory), with max_open_files =
//     -1 so SST files the primary deletes after a compaction stay readable;
//  2. calls TryCatchUpWithPrimary() ONCE. A secondary replays the primary's
//     MANIFEST and WAL a whole WAL record at a time, and a WAL record is one
//     WriteBatch; the engine commits each batch of commands (state, ledger
//     entries, indexes, idempotency records, chain head, signed checkpoint)
//     as ONE WriteBatch (storage/rocks_store.h). The secondary's view changes
//     only inside TryCatchUpWithPrimary, which nothing calls again;
//  3. reads every key of every column family from that frozen view and
//     writes it into a NEW database at dest_db (WAL off; every column family
//     flushed to SST files and fsync'd before it returns).
// Guarantee: dest_db holds exactly the primary's state after some whole
// number of its committed WriteBatches: the state the primary had at one
// instant between two commits, never part of a batch. Batches the primary
// commits after the catch-up are not in the copy. (Callers audit the copy:
// the audit proves the chain head, the last checkpoint, the balances and the
// indexes agree, which a torn batch would break.)
//
// Ownership and failure: every function returns a Status; none throws
// (RocksDB statuses and C++ exceptions are converted here). On failure the
// destination may hold a partial copy: callers write into a staging
// directory of their own and remove it. Nothing here touches the source.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "crypto/status.h"

namespace buoni::storage {

struct CopyStats {
  std::uint64_t keys = 0;   // key-value pairs copied, all column families
  std::uint64_t bytes = 0;  // key + value bytes copied
};

// progress(done, total): keys copied so far and RocksDB's estimate of the
// total (an estimate: done may pass it). Called now and then, and once at
// the end with done == total.
using CopyProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Copies a consistent snapshot of the database in `source_db` (see above)
// into a new database at `dest_db`, which must not exist (already_exists).
// `work_dir` is the secondary instance's private directory: created if
// missing, left for the caller to remove. not_found when source_db holds no
// database; io_error / corruption from RocksDB or the file system.
[[nodiscard]] StatusOr<CopyStats> copy_database(const std::string& source_db,
                                                const std::string& work_dir,
                                                const std::string& dest_db,
                                                const CopyProgress& progress = {});

// Copies the regular files directly in `source_dir` (no subdirectories;
// anything else is invalid_argument) into `dest_dir`, which is created with
// mode 0700 and must not exist. Each file is created 0600 (so a secret is
// never readable by others, even for a moment), written, fsync'd, then given
// its source's permission bits. Returns how many files were copied.
[[nodiscard]] StatusOr<std::uint64_t> copy_private_files(const std::string& source_dir,
                                                         const std::string& dest_dir);

// fsync(2) of a directory, so renames and new entries in it are durable.
[[nodiscard]] Status sync_directory(const std::string& dir);

// Replaces `path` with `contents` atomically: a temporary file in the same
// directory (mode `mode`), written and fsync'd, renamed over `path`, then
// the directory fsync'd. Readers see the old file or the new one, whole. On
// failure the temporary file is removed and `path` is unchanged.
[[nodiscard]] Status write_file_atomically(const std::string& path, std::string_view contents,
                                           unsigned mode = 0644);

}  // namespace buoni::storage
