// buoni settle --period YYYY-MM | --from D --to D [--out F.csv] [--json]
//
// Settles a period through the engine (engine/settle.h): per shop and
// programme, the net of the redemptions, captures and refunds of the period
// that no settlement paid yet, as settle entries (payable -> settled), in one
// atomic batch. Settling a period again changes nothing and says "already
// settled"; the CSV for the accounting office is (re)written from the stored
// settlement: merchant_id,name,vat_number,programme,amount_cents,count,
// first_seq,first_at,last_seq,last_at,ledger_seq; written to F.tmp, fsynced,
// renamed over F.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/calendar.h"
#include "engine/queries.h"
#include "engine/validate.h"
#include "tools/commands.h"
#include "tools/csv.h"

namespace buoni::tools {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

struct SettleArgs {
  std::string period, from, to, out;
};

// The command for the flags: a month ("2026-04") or from/to (a whole month
// is named as the month, so both spellings are one period).
engine::Settle settle_command(const SettleArgs& a) {
  engine::Settle c;
  if (!a.period.empty()) {
    if (!a.from.empty() || !a.to.empty())
      throw UsageError{"give --period or --from/--to, not both"};
    auto first = engine::parse_day(a.period + "-01");
    if (a.period.size() != 7 || !first) throw UsageError{"--period must be YYYY-MM"};
    int year = std::stoi(a.period.substr(0, 4)), month = std::stoi(a.period.substr(5, 2));
    const int next_year = month == 12 ? year + 1 : year, next_month = month == 12 ? 1 : month + 1;
    const std::string next = std::to_string(next_year) + (next_month < 10 ? "-0" : "-") +
                             std::to_string(next_month) + "-01";
    c.from_day = *first;
    c.to_day = *engine::parse_day(next) - 1;
  } else {
    if (a.from.empty() || a.to.empty())
      throw UsageError{"give --period YYYY-MM or --from and --to"};
    c.from_day = parse_date("--from", a.from);
    c.to_day = parse_date("--to", a.to);
    if (c.to_day < c.from_day) throw UsageError{"--to is before --from"};
  }
  const std::string from = engine::format_day(c.from_day), to = engine::format_day(c.to_day);
  const bool whole_month = from.ends_with("-01") &&
                           engine::format_day(c.to_day + 1).ends_with("-01") &&
                           from.substr(0, 7) == to.substr(0, 7);
  c.period_id = whole_month ? from.substr(0, 7) : from + ".." + to;
  engine::SystemClock clock;
  if (c.to_day >= engine::day_of(clock.now_ms())) {
    throw UsageError{"the period has not ended: settle it from the day after " + to + " (UTC)"};
  }
  return c;
}

std::string idempotency_key(const std::string& period_id) {
  std::string key = "settle-" + period_id;
  for (char& ch : key) {
    if (ch == '.') ch = '_';
  }
  return key;
}

struct Shop {
  std::string name, vat_number;
};

StatusOr<std::map<std::string, Shop>> shops_of(const engine::Store& store,
                                               const engine::Settlement& s) {
  std::map<std::string, Shop> shops;
  for (const auto& line : s.lines) {
    if (shops.count(line.merchant)) continue;
    BUONI_ASSIGN_OR_RETURN(auto m, engine::find_merchant(store, line.merchant));
    if (!m) return corruption("settlement names unknown shop " + line.merchant);
    shops[line.merchant] = {m->name, m->vat_number};
  }
  return shops;
}

std::string csv_text(const engine::Settlement& s, const std::map<std::string, Shop>& shops) {
  std::string out =
      "merchant_id,name,vat_number,programme,amount_cents,count,first_seq,first_at,last_seq,"
      "last_at,ledger_seq\n";
  for (const auto& l : s.lines) {
    const Shop& shop = shops.at(l.merchant);
    out += csv_field(l.merchant) + "," + csv_field(shop.name) + "," + csv_field(shop.vat_number) +
           "," + csv_field(l.programme) + "," + std::to_string(l.net_cents) + "," +
           std::to_string(l.count) + "," + std::to_string(l.first_seq) + "," +
           engine::format_time(l.first_time_ms) + "," + std::to_string(l.last_seq) + "," +
           engine::format_time(l.last_time_ms) + "," + std::to_string(l.ledger_seq) + "\n";
  }
  return out;
}

Status fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return io_error("cannot open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status() : io_error("fsync of " + path + " failed");
}

// Writes `text` to F.tmp beside F, fsyncs it, renames it over F, fsyncs the directory.
Status write_atomically(const std::string& path, const std::string& text) {
  const fs::path target = fs::absolute(path);
  const std::string tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return io_error("cannot write " + tmp);
  }
  BUONI_RETURN_IF_ERROR(fsync_path(tmp, O_RDONLY));
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) return io_error("cannot rename " + tmp + " to " + target.string());
  return fsync_path(target.parent_path().string(), O_RDONLY | O_DIRECTORY);
}

int report(const Common& common, const engine::Settlement& s,
           const std::map<std::string, Shop>& shops, bool already) {
  json::array lines;
  engine::Cents total_cents = 0;
  std::string text = std::string(already ? "already settled " : "settled ") + s.id + " (" +
                     engine::format_day(s.from_day) + ".." + engine::format_day(s.to_day) + ")" +
                     (already ? ": nothing changed\n" : "\n");
  for (const auto& l : s.lines) {
    total_cents += l.net_cents;
    lines.push_back(json::object{{"merchant", l.merchant},
                                 {"name", shops.at(l.merchant).name},
                                 {"vat_number", shops.at(l.merchant).vat_number},
                                 {"programme", l.programme},
                                 {"amount_cents", l.net_cents},
                                 {"redeemed_cents", l.redeemed_cents},
                                 {"refunded_cents", l.refunded_cents},
                                 {"count", l.count},
                                 {"first_seq", l.first_seq},
                                 {"last_seq", l.last_seq},
                                 {"ledger_seq", l.ledger_seq}});
    text += "  " + l.merchant + " " + l.programme + ": " + std::to_string(l.net_cents) +
            " cents, " + std::to_string(l.count) + " operations\n";
  }
  text += "total " + std::to_string(total_cents) + " cents to " + std::to_string(s.lines.size()) +
          " shop lines\n";
  json::object out{{"id", s.id},
                   {"from", engine::format_day(s.from_day)},
                   {"to", engine::format_day(s.to_day)},
                   {"status", already ? "already_settled" : "settled"},
                   {"amount_cents", total_cents},
                   {"created_at", engine::format_time(s.created_at_ms)},
                   {"lines", std::move(lines)}};
  print(common, out, text);
  return exit_ok;
}

int settle(const Common& common, const SettleArgs& a) {
  engine::Settle command = settle_command(a);
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  engine::Request request{engine::Caller::admin(), idempotency_key(command.period_id), command};
  auto result = (*node)->engine().execute(std::move(request));
  if (!result.ok()) return report_status(common, result.status());
  if (!result->outcome.ok()) return print_decline(common, result->outcome.code);
  const bool already = result->replayed || result->outcome.status == "already_settled";
  auto stored = engine::find_settlement((*node)->store(), command.period_id);
  if (!stored.ok()) return report_status(common, stored.status());
  if (!stored->has_value()) return report_status(common, internal_error("settlement not stored"));
  auto shops = shops_of((*node)->store(), **stored);
  if (!shops.ok()) return report_status(common, shops.status());
  if (!a.out.empty()) {
    Status written = write_atomically(a.out, csv_text(**stored, *shops));
    if (!written.ok()) return report_status(common, written);
  }
  return report(common, **stored, *shops, already);
}

}  // namespace

void register_settle(CLI::App& app, Common& common, int& exit_code) {
  auto args = std::make_shared<SettleArgs>();
  auto* cmd = app.add_subcommand("settle",
                                 "settle a period: per shop the net owed, marked settled in the "
                                 "ledger; CSV for the accounting office");
  cmd->add_option("--period", args->period, "a month, YYYY-MM");
  cmd->add_option("--from", args->from, "first day, YYYY-MM-DD (UTC)");
  cmd->add_option("--to", args->to, "last day, YYYY-MM-DD (UTC, inclusive)");
  cmd->add_option("--out", args->out, "write the settlement CSV here (atomically)");
  cmd->callback([&common, &exit_code, args] { exit_code = settle(common, *args); });
}

}  // namespace buoni::tools
