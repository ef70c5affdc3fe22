// buoni export --format jsonl|csv [--since SEQ] --out F
// buoni verify-export FILE --public-keys F
//
// export reads the ledger from a Reader (a secondary view, so it works while
// a server writes) and writes the file (format: engine/export.h,
// docs/export.md) atomically: F.tmp-XXXXXX in F's directory, fsync, rename
// over F, fsync of the directory. A failure leaves F as it was.
// verify-export needs no data directory: the public keys alone.
// Exit codes: 0 ok; 1 the export does not verify (or was cut short);
// 2 usage (bad flag, unreadable key file or export); 3 could not run.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/clock.h"
#include "engine/export.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kSinceMax = 999'999'999'999;  // parse_count takes up to 12 digits

struct ExportArgs {
  std::string format, out, since = "1";
};

struct VerifyExportArgs {
  std::string file, public_keys;
};

Status fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open " + path + " to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status() : io_error("fsync of " + path + " failed");
}

// Writes the export into a temp file beside `out`, then renames it over `out`.
StatusOr<engine::ExportSummary> write_export(const engine::Store& store, const ExportArgs& a,
                                             std::uint64_t since, engine::ExportFormat format) {
  fs::path target = fs::absolute(a.out);
  std::string tmp = (target.parent_path() / (target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return invalid_argument("--out: cannot create a file in " + target.parent_path().string());
  ::close(fd);
  auto summary = [&]() -> StatusOr<engine::ExportSummary> {
    std::ofstream out;
    std::vector<char> buffer(1 << 20);
    out.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.open(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return io_error("cannot write " + tmp);
    auto s = engine::export_ledger(
        store, since, format, engine::SystemClock().now_ms(), out,
        [](std::uint64_t done, std::uint64_t total) { progress_bar("export", done, total); });
    out.close();
    if (s.ok() && !out) return io_error("writing " + tmp + " failed");
    return s;
  }();
  Status synced = summary.ok() ? fsync_path(tmp, O_RDONLY) : summary.status();
  std::error_code ec;
  if (synced.ok()) fs::rename(tmp, target, ec);
  if (!synced.ok() || ec) {
    fs::remove(tmp, ec);
    return synced.ok() ? io_error("cannot rename the export to " + target.string()) : synced;
  }
  BUONI_RETURN_IF_ERROR(fsync_path(target.parent_path().string(), O_RDONLY | O_DIRECTORY));
  return summary;
}

int run_export(const Common& common, const ExportArgs& a) {
  engine::ExportFormat format = engine::ExportFormat::jsonl;
  if (a.format == "csv") {
    format = engine::ExportFormat::csv;
  } else if (a.format != "jsonl") {
    throw UsageError{"--format: \"" + a.format + "\" is not jsonl or csv"};
  }
  const auto since = static_cast<std::uint64_t>(parse_count("--since", a.since, kSinceMax));
  auto reader = Reader::open(common.dir());
  if (!reader.ok()) return report_status(common, reader.status());
  auto summary = write_export((*reader)->store(), a, since, format);
  if (!summary.ok()) return report_status(common, summary.status());
  const engine::ExportSummary& s = *summary;
  boost::json::object json{{"ok", true},
                           {"out", a.out},
                           {"format", std::string(engine::export_format_name(format))},
                           {"first_seq", s.first_seq},
                           {"last_seq", s.last_seq},
                           {"entries", s.entries},
                           {"checkpoints", s.checkpoints}};
  std::string text = "exported " + std::to_string(s.entries) + " entries (seq " +
                     std::to_string(s.first_seq) + ".." + std::to_string(s.last_seq) + ") and " +
                     std::to_string(s.checkpoints) + " checkpoints to " + a.out;
  print(common, json, text);
  return exit_ok;
}

boost::json::object verdict_json(const engine::ExportVerdict& v) {
  boost::json::array findings;
  for (const auto& f : v.findings) {
    findings.push_back(
        {{"check", f.check}, {"seq", f.seq}, {"where", f.object}, {"detail", f.detail}});
  }
  return {{"ok", v.ok()},
          {"format", std::string(engine::export_format_name(v.format))},
          {"first_seq", v.first_seq},
          {"entries", v.entries},
          {"checkpoints", v.checkpoints},
          {"verified_seq", v.verified_seq},
          {"verified_entries", v.verified_entries},
          {"complete", v.complete},
          {"findings_total", v.findings_total},
          {"findings", std::move(findings)},
          {"summary", v.summary()}};
}

std::string verdict_text(const engine::ExportVerdict& v) {
  std::string s;
  for (const auto& f : v.findings) s += "FINDING " + f.to_string() + "\n";
  if (v.findings_total > v.findings.size()) {
    s += "(" + std::to_string(v.findings_total - v.findings.size()) + " more findings)\n";
  }
  return s + (v.ok() ? "export ok: " : "export FAILED: ") + v.summary();
}

int run_verify_export(const Common& common, const VerifyExportArgs& a) {
  auto keys =
      parse_public_keys(read_input_file("--public-keys", a.public_keys, kPublicKeysBytesMax));
  if (!keys.ok()) throw UsageError{"--public-keys: " + keys.status().message()};
  std::error_code ec;
  if (fs::is_directory(a.file, ec)) throw UsageError{"cannot read " + a.file + ": it is a directory"};
  std::ifstream in(a.file, std::ios::binary);
  if (!in) throw UsageError{"cannot read " + a.file};
  std::uint64_t size = fs::file_size(a.file, ec);
  auto verdict = engine::verify_export(
      in, *keys, ec ? 0 : size,
      [](std::uint64_t done, std::uint64_t total) { progress_bar("verify", done, total); });
  if (!verdict.ok()) return report_status(common, verdict.status());
  print(common, verdict_json(*verdict), verdict_text(*verdict));
  return verdict->ok() ? exit_ok : exit_declined;
}

}  // namespace

void register_export(CLI::App& app, Common& common, int& exit_code) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export",
                                 "write the ledger with its hashes and signed checkpoints to a "
                                 "file anyone can verify (works while a server runs)");
  cmd->add_option("--format", args->format, "jsonl or csv")->required();
  cmd->add_option("--since", args->since, "the first entry's seq (default 1: the whole ledger)");
  cmd->add_option("--out", args->out, "the file to write (replaced atomically)")->required();
  cmd->callback([args, &common, &exit_code] { exit_code = run_export(common, *args); });

  auto verify_args = std::make_shared<VerifyExportArgs>();
  auto* verify = app.add_subcommand(
      "verify-export", "verify an export offline with the public keys (no data directory)");
  verify->add_option("FILE", verify_args->file, "the export file")->required();
  verify->add_option("--public-keys", verify_args->public_keys, "file printed by `buoni key show`")
      ->required();
  verify->callback(
      [verify_args, &common, &exit_code] { exit_code = run_verify_export(common, *verify_args); });
}

}  // namespace buoni::tools
