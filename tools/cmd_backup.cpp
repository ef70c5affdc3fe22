// buoni backup --to DIR / buoni restore --from DIR [--force].
//
// A backup directory is itself a data directory plus a BACKUP file:
//   DIR/db/      a consistent copy of the store (storage/backup.h: a point
//                between two committed batches, taken from a secondary
//                instance, so it works while a server writes)
//   DIR/keys/    a copy of the data directory's keys/ (signing keys and
//                pin-pepper are SECRETS, kept mode 0600; public-keys)
//   DIR/BACKUP   what was copied: format, time, source, ledger head seq
// Both commands copy into a staging directory first, audit the copy, and
// only then rename it into place, so a failure leaves nothing half made.
// docs/operations.md is the user's guide.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "engine/audit.h"
#include "engine/calendar.h"
#include "engine/engine.h"
#include "storage/backup.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view info_file = "BACKUP";
constexpr std::string_view info_magic = "buoni-backup 1";

// A directory removed with everything in it at scope end, unless released.
struct Scratch {
  std::string path;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

Status make_scratch(const std::string& pattern, Scratch& out) {
  std::string p = pattern;
  if (!::mkdtemp(p.data())) return io_error("cannot create " + pattern);
  out.path = p;
  return Status();
}

struct Copied {
  storage::CopyStats stats;
  std::uint64_t key_files = 0;
  engine::AuditReport audit;
  std::uint64_t head_seq = 0;
};

// Copies the store and keys of `from` into the new data directory `to`,
// then audits the copy (read-only, with the copy's own public keys).
StatusOr<Copied> copy_and_audit(const DataDir& from, const DataDir& to, const char* label) {
  Scratch work;  // the secondary instance's private directory
  BUONI_RETURN_IF_ERROR(
      make_scratch((fs::temp_directory_path() / "buoni-backup-XXXXXX").string(), work));
  Copied c;
  auto progress = [label](std::uint64_t done, std::uint64_t total) {
    progress_bar(label, done, total);
  };
  BUONI_ASSIGN_OR_RETURN(c.stats, storage::copy_database(from.db(), work.path, to.db(), progress));
  BUONI_ASSIGN_OR_RETURN(c.key_files, storage::copy_private_files(from.keys(), to.keys()));
  BUONI_ASSIGN_OR_RETURN(auto keys, load_public_keys(to));
  BUONI_ASSIGN_OR_RETURN(auto store, storage::open_read_only(to.db()));
  BUONI_ASSIGN_OR_RETURN(engine::ChainHead head, engine::read_head(*store));
  c.head_seq = head.seq;
  auto audit_progress = [](std::uint64_t done, std::uint64_t total) {
    progress_bar("audit", done, total);
  };
  BUONI_ASSIGN_OR_RETURN(c.audit, engine::audit(*store, keys, audit_progress));
  return c;
}

std::string now_text() {
  return engine::format_time(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

std::string info_text(const Common& common, const Copied& c) {
  return std::string(info_magic) + "\ncreated_at " + now_text() + "\nsource " +
         fs::absolute(common.data).string() + "\nhead_seq " + std::to_string(c.head_seq) +
         "\nentries " + std::to_string(c.audit.entries) + "\nkeys_copied " +
         std::to_string(c.stats.keys) + "\nkey_files " + std::to_string(c.key_files) +
         "\ncontains_secrets yes (keys/signing-*.key, keys/pin-pepper)\n";
}

boost::json::object copied_json(const Copied& c) {
  return {{"head_seq", c.head_seq},
          {"entries", c.audit.entries},
          {"cards", c.audit.cards},
          {"programmes", c.audit.programmes},
          {"keys_copied", c.stats.keys},
          {"bytes_copied", c.stats.bytes},
          {"key_files", c.key_files},
          {"audit_ok", c.audit.clean()},
          {"findings", c.audit.findings.size()}};
}

// Prints an audit that found discrepancies in a copy; exit 1.
int audit_failed(const Common& common, const Copied& c, std::string_view what) {
  for (const auto& f : c.audit.findings) std::cerr << "FINDING " << f.to_string() << "\n";
  boost::json::object answer = copied_json(c);
  answer["error"] = {{"code", "audit_failed"},
                     {"message", std::string(what) + ": the audit of the copy found " +
                                     std::to_string(c.audit.findings.size()) + " discrepancies"}};
  print(common, answer, "");
  std::cerr << "buoni: " << what << ": the audit of the copy FAILED (" << c.audit.findings.size()
            << " findings); nothing was written\n";
  return exit_declined;
}

bool is_empty_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_empty(path, ec);
}

int run_backup(const Common& common, const std::string& to_arg) {
  const DataDir from = common.dir();
  if (!data_dir_exists(from)) {
    return report_status(common, not_found(from.root + " is not a buoni data directory"));
  }
  const fs::path to = fs::absolute(to_arg).lexically_normal();
  std::error_code ec;
  if (fs::exists(to, ec) && !is_empty_dir(to.string())) {
    report_status(common, already_exists(to.string() + " exists and is not empty; "
                                                       "a backup goes to a new directory"));
    return exit_declined;
  }
  fs::create_directories(to.parent_path(), ec);
  Scratch staging;
  Status s = make_scratch(
      (to.parent_path() / ("." + to.filename().string() + ".partial-XXXXXX")).string(), staging);
  if (!s.ok()) return report_status(common, s);
  auto copied = copy_and_audit(from, DataDir{staging.path}, "backup");
  if (!copied.ok()) return report_status(common, copied.status());
  if (!copied->audit.clean()) return audit_failed(common, *copied, "backup");
  s = storage::write_file_atomically(staging.path + "/" + std::string(info_file),
                                     info_text(common, *copied), 0600);
  if (s.ok() && fs::exists(to, ec)) fs::remove(to, ec);  // the empty directory
  if (s.ok() && ::rename(staging.path.c_str(), to.c_str()) != 0) {
    s = io_error("cannot rename " + staging.path + " to " + to.string());
  }
  if (s.ok()) staging.path.clear();
  if (s.ok()) s = storage::sync_directory(to.parent_path().string());
  if (!s.ok()) return report_status(common, s);
  boost::json::object answer = copied_json(*copied);
  answer["backup"] = to.string();
  print(common, answer,
        "backup written to " + to.string() + ": ledger up to seq " +
            std::to_string(copied->head_seq) + ", audit ok (" +
            std::to_string(copied->audit.entries) + " entries)\n" +
            "it holds the signing keys and the PIN pepper: keep it as secret as the data "
            "directory");
  return exit_ok;
}

// not_found unless `from` is a backup (a BACKUP file naming our format and a store).
Status check_backup(const DataDir& from) {
  std::error_code ec;
  const std::string info = from.root + "/" + std::string(info_file);
  if (!fs::exists(info, ec) || !data_dir_exists(from) || !fs::is_directory(from.keys(), ec)) {
    return not_found(from.root + " is not a buoni backup (no BACKUP, db/ or keys/)");
  }
  std::ifstream in(info);
  std::string first;
  std::getline(in, first);
  if (first != info_magic) return not_found(info + " is not a buoni backup description");
  return Status();
}

// Moves the restored db/ and keys/ into `target`; what was there goes into
// `staging` (removed with it). Two renames per directory: a crash between
// them leaves the old store in staging/old-*, and rerunning restore --force
// finishes the job.
Status swap_in(const DataDir& target, const std::string& staging) {
  std::error_code ec;
  const std::pair<std::string, std::string> moves[] = {
      {target.db(), staging + "/old-db"},
      {target.keys(), staging + "/old-keys"},
      {staging + "/db", target.db()},
      {staging + "/keys", target.keys()},
  };
  for (const auto& [from, to] : moves) {
    if (!fs::exists(from, ec)) continue;
    fs::rename(from, to, ec);
    if (ec) return io_error("cannot rename " + from + " to " + to + ": " + ec.message());
  }
  return storage::sync_directory(target.root);
}

// already_exists when `target` holds a store or keys and --force is not
// given; busy when a process (a server) has the store open.
Status check_target(const DataDir& target, bool force) {
  std::error_code ec;
  const bool occupied = data_dir_exists(target) || fs::exists(target.keys(), ec);
  if (!occupied) return Status();
  if (!force) {
    return already_exists(target.root +
                          " already holds a buoni store; `restore --force` replaces it");
  }
  if (!data_dir_exists(target)) return Status();
  auto store = storage::open_primary(target.db(), storage::RocksOptions{});  // fails if in use
  return store.ok() ? Status() : store.status();
}

int run_restore(const Common& common, const std::string& from_arg, bool force) {
  const DataDir from{fs::absolute(from_arg).lexically_normal().string()};
  const DataDir target{fs::absolute(common.data).lexically_normal().string()};
  Status s = check_backup(from);
  if (!s.ok()) return report_status(common, s);
  s = check_target(target, force);
  if (s.code() == StatusCode::already_exists) {
    report_status(common, s);
    return exit_declined;
  }
  if (!s.ok()) return report_status(common, s);
  std::error_code ec;
  fs::create_directories(target.root, ec);
  if (ec)
    return report_status(common, io_error("cannot create " + target.root + ": " + ec.message()));
  Scratch staging;
  s = make_scratch(target.root + "/.restore-XXXXXX", staging);
  if (!s.ok()) return report_status(common, s);
  auto copied = copy_and_audit(from, DataDir{staging.path}, "restore");
  if (!copied.ok()) return report_status(common, copied.status());
  if (!copied->audit.clean()) return audit_failed(common, *copied, "restore");
  s = swap_in(target, staging.path);
  if (!s.ok()) {
    staging.path.clear();  // it may hold the old store now: keep it for the operator
    return report_status(common, s);
  }
  boost::json::object answer = copied_json(*copied);
  answer["restored"] = target.root;
  answer["from"] = from.root;
  print(common, answer,
        "restored " + from.root + " into " + target.root + ": ledger up to seq " +
            std::to_string(copied->head_seq) + ", audit ok (" +
            std::to_string(copied->audit.entries) + " entries)");
  return exit_ok;
}

}  // namespace

void register_backup(CLI::App& app, Common& common, int& exit_code) {
  auto to = std::make_shared<std::string>();
  auto* backup = app.add_subcommand(
      "backup",
      "copy the store and keys to a new directory, consistently, while a server runs; "
      "the copy holds the signing keys and PIN pepper (secrets)");
  backup->add_option("--to", *to, "the backup directory (new, or empty)")->required();
  backup->callback([&common, &exit_code, to] { exit_code = run_backup(common, *to); });

  auto from = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* restore = app.add_subcommand(
      "restore",
      "restore a backup into --data DIR and audit it (refuses an existing store without --force)");
  restore->add_option("--from", *from, "a directory written by `buoni backup`")->required();
  restore->add_flag("--force", *force, "replace the store already in --data DIR");
  restore->callback(
      [&common, &exit_code, from, force] { exit_code = run_restore(common, *from, *force); });
}

}  // namespace buoni::tools
