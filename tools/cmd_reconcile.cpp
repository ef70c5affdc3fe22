// buoni reconcile --from D --to D [--merchant M] [--statement FILE] [--json]
//
// Read-only (a RocksDB secondary: works while a server runs). Per programme
// and shop, what the ledger holds for the period (UTC days, inclusive):
// redeemed, captured, refunded, net. With a shop's statement
// (redemption_id,amount_cents,created_at; needs --merchant) it matches the
// shop's redemptions and captures of the period line by line: matched,
// missing from the ledger, missing from the statement, amount differs.
// Exit 1 on any mismatch; 2 on a malformed statement line (named).
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"
#include "tools/commands.h"
#include "tools/csv.h"

namespace buoni::tools {

namespace json = boost::json;
using engine::Cents;
using engine::Entry;
using engine::EntryKind;

namespace {

struct ReconcileArgs {
  std::string from, to, merchant, statement;
};

struct Totals {
  Cents redeemed_cents = 0, captured_cents = 0, refunded_cents = 0;
  [[nodiscard]] Cents net_cents() const { return redeemed_cents + captured_cents - refunded_cents; }
};

struct LedgerSale {
  Cents amount_cents = 0;
  std::uint64_t seq = 0;
};

struct Period {
  std::map<std::pair<std::string, std::string>, Totals> totals;  // (programme, shop)
  std::map<std::string, LedgerSale> sales;  // redemption id -> the shop's sale (--merchant)
};

void take(Period& period, const Entry& e) {
  if (e.kind != EntryKind::redeem && e.kind != EntryKind::capture && e.kind != EntryKind::refund)
    return;
  Totals& t = period.totals[{e.programme, e.merchant}];
  if (e.kind == EntryKind::refund) {
    t.refunded_cents += e.amount_cents;
    return;
  }
  (e.kind == EntryKind::redeem ? t.redeemed_cents : t.captured_cents) += e.amount_cents;
  period.sales[e.ref] = {e.amount_cents, e.seq};
}

StatusOr<Period> read_period(const engine::Store& store, engine::TimeMs from_ms,
                             engine::TimeMs to_ms, const std::string& merchant) {
  Period period;
  if (!merchant.empty()) {
    std::uint64_t after = 0;
    do {
      BUONI_ASSIGN_OR_RETURN(auto page,
                             engine::merchant_entries(store, merchant, from_ms, to_ms, after,
                                                      limits::transactions_page_max));
      for (const Entry& e : page.entries) {
        if (e.merchant == merchant) take(period, e);
      }
      after = page.next_after;
    } while (after != 0);
    return period;
  }
  constexpr std::size_t page_entries = 4096;
  for (std::uint64_t from_seq = 1;;) {
    BUONI_ASSIGN_OR_RETURN(auto entries, engine::read_entries(store, from_seq, page_entries));
    for (const Entry& e : entries) {
      if (e.time_ms >= from_ms && e.time_ms < to_ms) take(period, e);
    }
    if (entries.size() < page_entries) break;
    from_seq = entries.back().seq + 1;
  }
  period.sales.clear();  // only a shop's sales are matched against its statement
  return period;
}

struct StatementLine {
  std::size_t line = 0;
  std::string redemption_id;
  Cents amount_cents = 0;
};

std::size_t column_of(const CsvFile& file, std::string_view name) {
  for (std::size_t i = 0; i < file.header.size(); ++i) {
    if (file.header[i] == name) return i;
  }
  throw UsageError{"--statement: line 1: the header has no '" + std::string(name) +
                   "' column (it needs redemption_id,amount_cents,created_at)"};
}

// "2026-04-01" or an RFC 3339 time starting with one.
bool valid_created_at(std::string_view text) {
  if (text.size() < 10 || !engine::parse_day(text.substr(0, 10))) return false;
  return text.size() == 10 || (text[10] == 'T' && text.size() >= 20);
}

std::vector<StatementLine> read_statement(const std::string& path) {
  const std::string text = read_input_file("--statement", path, limits::csv_bytes_max);
  CsvFile file = parse_csv(text, static_cast<std::size_t>(limits::settle_entries_max));
  if (!file.error.empty()) throw UsageError{"--statement: " + file.error};
  const std::size_t id_col = column_of(file, "redemption_id");
  const std::size_t amount_col = column_of(file, "amount_cents");
  const std::size_t time_col = column_of(file, "created_at");
  std::vector<StatementLine> lines;
  std::map<std::string, std::size_t> seen;  // id -> line
  for (const CsvRow& row : file.rows) {
    const std::string where = "--statement: line " + std::to_string(row.line) + ": ";
    if (row.fields.size() != file.header.size()) {
      throw UsageError{where + "expected " + std::to_string(file.header.size()) + " fields, got " +
                       std::to_string(row.fields.size())};
    }
    StatementLine line;
    line.line = row.line;
    line.redemption_id = row.fields[id_col];
    if (line.redemption_id.empty()) throw UsageError{where + "redemption_id is empty"};
    line.amount_cents =
        parse_cents(where + "amount_cents", row.fields[amount_col], limits::amount_cents_max);
    if (!valid_created_at(row.fields[time_col])) {
      throw UsageError{where + "created_at is not a date or an RFC 3339 time"};
    }
    auto [it, fresh] = seen.emplace(line.redemption_id, row.line);
    if (!fresh) {
      throw UsageError{where + "redemption " + line.redemption_id + " is listed twice (line " +
                       std::to_string(it->second) + ")"};
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

struct Mismatch {
  std::string kind;  // missing_from_ledger, missing_from_statement, amount_differs
  std::string redemption_id;
  std::size_t line = 0;  // statement line, 0: none
  Cents statement_cents = 0, ledger_cents = 0;
  std::uint64_t ledger_seq = 0;
};

struct Matching {
  std::size_t lines = 0, matched = 0;
  std::vector<Mismatch> mismatches;
};

Matching match(const std::vector<StatementLine>& statement, const Period& period) {
  Matching m;
  m.lines = statement.size();
  std::set<std::string> listed;
  for (const StatementLine& line : statement) {
    listed.insert(line.redemption_id);
    auto it = period.sales.find(line.redemption_id);
    if (it == period.sales.end()) {
      m.mismatches.push_back(
          {"missing_from_ledger", line.redemption_id, line.line, line.amount_cents, 0, 0});
    } else if (it->second.amount_cents != line.amount_cents) {
      m.mismatches.push_back({"amount_differs", line.redemption_id, line.line, line.amount_cents,
                              it->second.amount_cents, it->second.seq});
    } else {
      ++m.matched;
    }
  }
  for (const auto& [id, sale] : period.sales) {
    if (!listed.count(id)) {
      m.mismatches.push_back({"missing_from_statement", id, 0, 0, sale.amount_cents, sale.seq});
    }
  }
  return m;
}

json::object totals_json(const Totals& t) {
  return {{"redeemed_cents", t.redeemed_cents},
          {"captured_cents", t.captured_cents},
          {"refunded_cents", t.refunded_cents},
          {"net_cents", t.net_cents()}};
}

json::object mismatch_json(const Mismatch& x) {
  json::object j{{"kind", x.kind}, {"redemption_id", x.redemption_id}};
  if (x.line) j["line"] = x.line;
  if (x.kind != "missing_from_statement") j["statement_amount_cents"] = x.statement_cents;
  if (x.kind != "missing_from_ledger") {
    j["ledger_amount_cents"] = x.ledger_cents;
    j["ledger_seq"] = x.ledger_seq;
  }
  return j;
}

std::string mismatch_text(const Mismatch& x) {
  std::string where = x.line ? " (line " + std::to_string(x.line) + ")" : "";
  if (x.kind == "missing_from_ledger") {
    return "  missing from the ledger: " + x.redemption_id + where + ", " +
           std::to_string(x.statement_cents) + " cents\n";
  }
  if (x.kind == "missing_from_statement") {
    return "  missing from the statement: " + x.redemption_id + ", " +
           std::to_string(x.ledger_cents) + " cents (entry " + std::to_string(x.ledger_seq) + ")\n";
  }
  return "  amount differs: " + x.redemption_id + where + ": statement " +
         std::to_string(x.statement_cents) + ", ledger " + std::to_string(x.ledger_cents) +
         " cents\n";
}

int report(const Common& common, const ReconcileArgs& a, const Period& period,
           const std::optional<Matching>& matching) {
  json::object out{{"from", a.from}, {"to", a.to}};
  if (!a.merchant.empty()) out["merchant"] = a.merchant;
  std::string text = "period " + a.from + ".." + a.to + "\n";
  json::array lines;
  Totals all;
  for (const auto& [key, t] : period.totals) {
    json::object j = totals_json(t);
    j["programme"] = key.first;
    j["merchant"] = key.second;
    lines.push_back(std::move(j));
    all.redeemed_cents += t.redeemed_cents;
    all.captured_cents += t.captured_cents;
    all.refunded_cents += t.refunded_cents;
    text += "  " + key.first + " " + key.second + ": redeemed " + std::to_string(t.redeemed_cents) +
            ", captured " + std::to_string(t.captured_cents) + ", refunded " +
            std::to_string(t.refunded_cents) + ", net " + std::to_string(t.net_cents()) +
            " cents\n";
  }
  out["lines"] = std::move(lines);
  out["total"] = totals_json(all);
  text += "total: net " + std::to_string(all.net_cents()) + " cents\n";
  bool clean = true;
  if (matching) {
    json::array mismatches;
    for (const Mismatch& x : matching->mismatches) mismatches.push_back(mismatch_json(x));
    out["statement"] = json::object{{"file", a.statement},
                                    {"lines", matching->lines},
                                    {"matched", matching->matched},
                                    {"mismatches", std::move(mismatches)}};
    text += "statement " + a.statement + ": " + std::to_string(matching->lines) + " lines, " +
            std::to_string(matching->matched) + " matched, " +
            std::to_string(matching->mismatches.size()) + " mismatched\n";
    for (const Mismatch& x : matching->mismatches) text += mismatch_text(x);
    clean = matching->mismatches.empty();
  }
  out["clean"] = clean;
  print(common, out, text);
  return clean ? exit_ok : exit_declined;
}

int reconcile(const Common& common, const ReconcileArgs& a) {
  const engine::Day from_day = parse_date("--from", a.from), to_day = parse_date("--to", a.to);
  if (to_day < from_day) throw UsageError{"--to is before --from"};
  if (!a.statement.empty() && a.merchant.empty()) {
    throw UsageError{"--statement needs --merchant (the shop whose statement it is)"};
  }
  std::optional<std::vector<StatementLine>> statement;
  if (!a.statement.empty()) statement = read_statement(a.statement);
  auto reader = Reader::open(common.dir());
  if (!reader.ok()) return report_status(common, reader.status());
  const engine::Store& store = (*reader)->store();
  if (!a.merchant.empty()) {
    auto m = engine::find_merchant(store, a.merchant);
    if (!m.ok()) return report_status(common, m.status());
    if (!m->has_value()) return print_decline(common, engine::Code::not_found);
  }
  auto period = read_period(store, from_day * engine::ms_per_day, (to_day + 1) * engine::ms_per_day,
                            a.merchant);
  if (!period.ok()) return report_status(common, period.status());
  std::optional<Matching> matching;
  if (statement) matching = match(*statement, *period);
  return report(common, a, *period, matching);
}

}  // namespace

void register_reconcile(CLI::App& app, Common& common, int& exit_code) {
  auto args = std::make_shared<ReconcileArgs>();
  auto* cmd = app.add_subcommand("reconcile",
                                 "per programme and shop totals of a period; match a shop's "
                                 "statement (works while a server runs)");
  cmd->add_option("--from", args->from, "first day, YYYY-MM-DD (UTC)")->required();
  cmd->add_option("--to", args->to, "last day, YYYY-MM-DD (UTC, inclusive)")->required();
  cmd->add_option("--merchant", args->merchant, "only this shop");
  cmd->add_option("--statement", args->statement,
                  "the shop's statement CSV: redemption_id,amount_cents,created_at");
  cmd->callback([&common, &exit_code, args] { exit_code = reconcile(common, *args); });
}

}  // namespace buoni::tools
