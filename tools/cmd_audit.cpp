// buoni audit: verify the chain and checkpoints, rebuild balances, check invariants.
#include <iostream>

#include "engine/audit.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

void show_progress(std::uint64_t done, std::uint64_t total) {
  progress_bar("audit", done, total);
}

boost::json::object report_json(const engine::AuditReport& r) {
  boost::json::array findings;
  for (const auto& f : r.findings) {
    findings.push_back(
        {{"check", f.check}, {"seq", f.seq}, {"object", f.object}, {"detail", f.detail}});
  }
  return {{"ok", r.clean()},  {"entries", r.entries},       {"checkpoints", r.checkpoints},
          {"cards", r.cards}, {"programmes", r.programmes}, {"findings", std::move(findings)}};
}

std::string report_text(const engine::AuditReport& r) {
  std::string s;
  for (const auto& f : r.findings) s += "FINDING " + f.to_string() + "\n";
  s += (r.clean() ? "audit ok: " : "audit FAILED: ") + std::to_string(r.entries) + " entries, " +
       std::to_string(r.checkpoints) + " checkpoints, " + std::to_string(r.cards) + " cards, " +
       std::to_string(r.programmes) + " programmes, " + std::to_string(r.findings.size()) +
       " findings";
  return s;
}

}  // namespace

void register_audit(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand("audit",
                                 "verify the ledger and rebuild every balance "
                                 "(works while a server runs)");
  cmd->callback([&common, &exit_code] {
    auto reader = Reader::open(common.dir());
    if (!reader.ok()) {
      exit_code = report_status(common, reader.status());
      return;
    }
    auto report = engine::audit((*reader)->store(), (*reader)->keys(), show_progress);
    if (!report.ok()) {
      exit_code = report_status(common, report.status());
      return;
    }
    print(common, report_json(*report), report_text(*report));
    exit_code = report->clean() ? exit_ok : exit_declined;
  });
}

}  // namespace buoni::tools
