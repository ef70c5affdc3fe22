// buoni report --html F [--programme P]: one self-contained HTML page of
// programme totals, money over time, top shops and cards by status. Reads a
// read-only secondary view (tools/data_dir.h Reader), so it works while a
// server runs; every figure comes from that one view (the ledger up to the
// head it read). The page itself is drawn by api/report.h.
#include <chrono>

#include "api/report.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/queries.h"
#include "storage/backup.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

constexpr std::size_t page_rows = 4096;  // entries / shops read per query

struct Gathered {
  api::Report report;
  std::uint64_t entries = 0;
  std::uint64_t cards = 0;
};

Status add_merchants(const engine::Store& store, api::ReportBuilder& builder) {
  std::string after;
  for (;;) {
    BUONI_ASSIGN_OR_RETURN(auto page, engine::list_merchants(store, after, page_rows));
    for (const auto& m : page) builder.add_merchant(m);
    if (page.size() < page_rows) return Status();
    after = page.back().id;
  }
}

// Every card of the store ("c/" rows of the state space).
Status add_cards(const engine::Store& store, api::ReportBuilder& builder, std::uint64_t& count,
                 std::uint64_t total) {
  Status failure;
  const std::string prefix = "c/";
  BUONI_RETURN_IF_ERROR(store.scan(engine::Space::state, prefix, prefix,
                                   [&](std::string_view, std::string_view value) {
                                     engine::Card card;
                                     failure = engine::decode(value, card);
                                     if (!failure.ok()) return false;
                                     builder.add_card(card);
                                     if (++count % page_rows == 0) {
                                       progress_bar("report", count, total);
                                     }
                                     return true;
                                   }));
  return failure;
}

Status add_entries(const engine::Store& store, api::ReportBuilder& builder, std::uint64_t head,
                   std::uint64_t done_before, std::uint64_t total, std::uint64_t& count) {
  std::uint64_t next = 1;
  while (next <= head) {
    BUONI_ASSIGN_OR_RETURN(auto page, engine::read_entries(store, next, page_rows));
    if (page.empty()) break;
    for (const auto& e : page) {
      if (e.seq > head) return Status();
      builder.add_entry(e);
      next = e.seq + 1;
      ++count;
    }
    progress_bar("report", done_before + count, total);
  }
  return Status();
}

StatusOr<Gathered> gather(const engine::Store& store, const std::string& only) {
  BUONI_ASSIGN_OR_RETURN(engine::ChainHead head, engine::read_head(store));
  BUONI_ASSIGN_OR_RETURN(auto programmes, engine::list_programmes(store, SIZE_MAX));
  if (!only.empty()) {
    std::erase_if(programmes, [&](const engine::Programme& p) { return p.id != only; });
    if (programmes.empty()) return not_found("no programme " + only);
  }
  std::uint64_t card_total = 0;
  for (const auto& p : programmes) card_total += static_cast<std::uint64_t>(p.card_count);
  const std::uint64_t total = card_total + head.seq;
  api::ReportBuilder builder(std::move(programmes));
  BUONI_RETURN_IF_ERROR(add_merchants(store, builder));
  Gathered g;
  BUONI_RETURN_IF_ERROR(add_cards(store, builder, g.cards, total));
  BUONI_RETURN_IF_ERROR(add_entries(store, builder, head.seq, g.cards, total, g.entries));
  progress_bar("report", total, total);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  g.report = builder.finish(now, head.seq);
  return g;
}

int run_report(const Common& common, const std::string& out, const std::string& programme) {
  auto reader = Reader::open(common.dir());
  if (!reader.ok()) return report_status(common, reader.status());
  auto gathered = gather((*reader)->store(), programme);
  if (!gathered.ok()) {
    if (gathered.status().code() == StatusCode::not_found && !programme.empty()) {
      return print_decline(common, engine::Code::not_found);
    }
    return report_status(common, gathered.status());
  }
  const std::string html = api::render_report_html(gathered->report);
  const Status written = storage::write_file_atomically(out, html);
  if (!written.ok()) return report_status(common, written);
  const auto& r = gathered->report;
  print(common,
        {{"html", out},
         {"programmes", r.programmes.size()},
         {"head_seq", r.head_seq},
         {"entries", gathered->entries},
         {"cards", gathered->cards},
         {"bytes", html.size()}},
        "report written to " + out + " (" + std::to_string(r.programmes.size()) +
            " programme(s), ledger up to seq " + std::to_string(r.head_seq) + ")");
  return exit_ok;
}

}  // namespace

void register_report(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand("report",
                                 "write a self-contained HTML report: totals, money over time, "
                                 "top shops, cards by status (works while a server runs)");
  auto out = std::make_shared<std::string>();
  auto programme = std::make_shared<std::string>();
  cmd->add_option("--html", *out, "the HTML file to write (replaced atomically)")->required();
  cmd->add_option("--programme", *programme, "only this programme (default: all)");
  cmd->callback(
      [&common, &exit_code, out, programme] { exit_code = run_report(common, *out, *programme); });
}

}  // namespace buoni::tools
