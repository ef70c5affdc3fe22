// buoni settle --period YYYY-MM | --from D --to D [--out F.csv] [--json]
//                [--server URL --key KEY]
//
// Settles a period through the engine (engine/settle.h): per shop and
// programme, the net of the redemptions, captures and refunds of the period
// that no settlement paid yet, as settle entries (payable -> settled), in one
// atomic batch. Locally it runs the engine on the data directory; with
// --server (while a server runs: the store is its) it is POST
// /v1/settlements. Both give the same answer (api/render.h settlement_json),
// printed the same way. Settling a period again changes nothing and says
// "already settled"; the CSV for the accounting office is (re)written from
// the answer: merchant_id,name,vat_number,programme,amount_cents,count,
// first_seq,first_at,last_seq,last_at,ledger_seq; written to F.tmp,
// fsynced, renamed over F.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "api/render.h"
#include "engine/calendar.h"
#include "engine/queries.h"
#include "engine/settle.h"
#include "tools/commands.h"
#include "tools/csv.h"
#include "tools/remote.h"

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
  c.period_id = engine::settlement_period_id(c.from_day, c.to_day);
  engine::SystemClock clock;
  if (c.to_day >= engine::day_of(clock.now_ms())) {
    throw UsageError{"the period has not ended: settle it from the day after " +
                     engine::format_day(c.to_day) + " (UTC)"};
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

// The accounting office's CSV, from the answer's lines.
std::string csv_text(const json::object& answer) {
  std::string out =
      "merchant_id,name,vat_number,programme,amount_cents,count,first_seq,first_at,last_seq,"
      "last_at,ledger_seq\n";
  const json::value* lines = answer.if_contains("lines");
  if (!lines || !lines->is_array()) return out;
  for (const json::value& item : lines->get_array()) {
    if (!item.is_object()) continue;
    const json::object& l = item.get_object();
    std::string row;
    for (const char* name : {"merchant", "name", "vat_number", "programme", "amount_cents", "count",
                             "first_seq", "first_at", "last_seq", "last_at", "ledger_seq"}) {
      if (!row.empty()) row += ",";
      row += csv_field(field(l, name));
    }
    out += row + "\n";
  }
  return out;
}

std::string settled_text(const json::object& answer) {
  const bool already = field(answer, "status") == "already_settled";
  std::string text = std::string(already ? "already settled " : "settled ") + field(answer, "id") +
                     " (" + field(answer, "from") + ".." + field(answer, "to") + ")" +
                     (already ? ": nothing changed\n" : "\n");
  std::size_t count = 0;
  if (const json::value* lines = answer.if_contains("lines"); lines && lines->is_array()) {
    for (const json::value& item : lines->get_array()) {
      if (!item.is_object()) continue;
      const json::object& l = item.get_object();
      ++count;
      text += "  " + field(l, "merchant") + " " + field(l, "programme") + ": " +
              field(l, "amount_cents") + " cents, " + field(l, "count") + " operations\n";
    }
  }
  return text + "total " + field(answer, "amount_cents") + " cents to " + std::to_string(count) +
         " shop lines";
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

// Writes the CSV (when asked) and prints the answer of a settlement.
int finish(const Common& common, const SettleArgs& a, json::object answer, bool replayed) {
  if (replayed) answer["status"] = "already_settled";  // an earlier run of this period settled it
  if (!a.out.empty()) {
    Status written = write_atomically(a.out, csv_text(answer));
    if (!written.ok()) return report_status(common, written);
  }
  print(common, answer, settled_text(answer));
  return exit_ok;
}

int settle_local(const Common& common, const SettleArgs& a, const engine::Settle& command) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  engine::Request request{engine::Caller::admin(), idempotency_key(command.period_id), command};
  auto result = (*node)->engine().execute(std::move(request));
  if (!result.ok()) return report_status(common, result.status());
  if (!result->outcome.ok()) return print_decline(common, result->outcome.code);
  auto stored = engine::find_settlement((*node)->store(), command.period_id);
  if (!stored.ok()) return report_status(common, stored.status());
  if (!stored->has_value()) return report_status(common, internal_error("settlement not stored"));
  auto shops = engine::settlement_merchants((*node)->store(), **stored);
  if (!shops.ok()) return report_status(common, shops.status());
  const bool already = result->outcome.status == "already_settled";
  return finish(common, a, api::settlement_json(**stored, *shops, already), result->replayed);
}

int settle_remote(const Common& common, const SettleArgs& a, const engine::Settle& command) {
  auto remote = Remote::open(common);
  if (!remote.ok()) return report_status(common, remote.status());
  json::object body{{"from", engine::format_day(command.from_day)},
                    {"to", engine::format_day(command.to_day)}};
  auto answer = (*remote)->call(
      {"POST", "/v1/settlements", std::move(body), idempotency_key(command.period_id)});
  if (!answer.ok()) return report_status(common, answer.status());
  if (!answer->ok()) return print_answer(common, *answer, settled_text);
  return finish(common, a, std::move(answer->body), answer->replayed);
}

int settle(const Common& common, const SettleArgs& a) {
  engine::Settle command = settle_command(a);
  return common.remote() ? settle_remote(common, a, command) : settle_local(common, a, command);
}

}  // namespace

void register_settle(CLI::App& app, Common& common, int& exit_code) {
  auto args = std::make_shared<SettleArgs>();
  auto* cmd = app.add_subcommand("settle",
                                 "settle a period: per shop the net owed, marked settled in the "
                                 "ledger; CSV for the accounting office");
  allow_server(cmd);
  cmd->add_option("--period", args->period, "a month, YYYY-MM");
  cmd->add_option("--from", args->from, "first day, YYYY-MM-DD (UTC)");
  cmd->add_option("--to", args->to, "last day, YYYY-MM-DD (UTC, inclusive)");
  cmd->add_option("--out", args->out, "write the settlement CSV here (atomically)");
  cmd->callback([&common, &exit_code, args] { exit_code = settle(common, *args); });
}

}  // namespace buoni::tools
