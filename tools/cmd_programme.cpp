// buoni programme create | show | close
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

std::string programme_text(const engine::Programme& p) {
  std::string s = "programme " + p.id + " (" + p.name + "), " +
                  (p.status == engine::ProgrammeStatus::open ? "open" : "closed") + "\n";
  s += "  valid " + engine::format_day(p.valid_from_day) + " .. " +
       engine::format_day(p.valid_until_day) + "\n";
  s += "  budget_cents " + std::to_string(p.budget_cents) + ", issued " +
       std::to_string(p.issued_cents) + ", redeemed " + std::to_string(p.redeemed_cents) +
       ", refunded " + std::to_string(p.refunded_cents) + ", held " + std::to_string(p.held_cents) +
       ", expired " + std::to_string(p.expired_cents) + ", cards " + std::to_string(p.card_count);
  return s;
}

std::string created_text(const engine::Command& c, const engine::Outcome& o) {
  const auto& p = std::get<engine::CreateProgramme>(c);
  return "created programme " + p.id + " with budget_cents " + std::to_string(p.budget_cents) +
         " (ledger seq " + std::to_string(o.ledger_seq) + ")";
}

std::string closed_text(const engine::Command& c, const engine::Outcome& o) {
  return "closed programme " + std::get<engine::CloseProgramme>(c).id + "; expired " +
         std::to_string(o.amount_cents) + " cents left on its cards";
}

struct CreateArgs {
  std::string id, name, budget, from, until, max_redemption = "0", daily_limit = "0", key;
  bool require_pin = false;
};

void add_create(CLI::App& programme, Common& common, int& exit_code) {
  auto args = std::make_shared<CreateArgs>();
  auto* cmd = programme.add_subcommand("create", "create a programme (fund, budget, dates, rules)");
  cmd->add_option("--id", args->id, "programme id: letters, digits, _ . -")->required();
  cmd->add_option("--name", args->name, "display name")->required();
  cmd->add_option("--budget-cents", args->budget, "budget in cents")->required();
  cmd->add_option("--valid-from", args->from, "first day, YYYY-MM-DD")->required();
  cmd->add_option("--valid-until", args->until, "last day, YYYY-MM-DD")->required();
  cmd->add_flag("--require-pin", args->require_pin, "cards need a PIN (not available yet)");
  cmd->add_option("--max-redemption-cents", args->max_redemption, "per-redemption cap; 0 none");
  cmd->add_option("--daily-limit-cents", args->daily_limit, "per-card daily cap; 0 none");
  cmd->add_option("--idempotency-key", args->key, "makes a retry safe");
  cmd->callback([args, &common, &exit_code] {
    engine::CreateProgramme c;
    c.id = args->id;
    c.name = args->name;
    c.budget_cents = parse_cents("--budget-cents", args->budget, limits::budget_cents_max);
    c.valid_from_day = parse_date("--valid-from", args->from);
    c.valid_until_day = parse_date("--valid-until", args->until);
    if (c.valid_until_day < c.valid_from_day)
      throw UsageError{"--valid-until is before --valid-from"};
    c.require_pin = args->require_pin;
    c.max_redemption_cents =
        parse_cents("--max-redemption-cents", args->max_redemption, limits::amount_cents_max, true);
    c.daily_limit_cents =
        parse_cents("--daily-limit-cents", args->daily_limit, limits::amount_cents_max, true);
    exit_code = run_command(common, {engine::Caller::admin(), args->key, c}, created_text);
  });
}

void add_show(CLI::App& programme, Common& common, int& exit_code) {
  auto id = std::make_shared<std::string>();
  auto* cmd = programme.add_subcommand("show", "show a programme and its totals");
  cmd->add_option("--id", *id, "programme id")->required();
  cmd->callback([id, &common, &exit_code] {
    auto reader = Reader::open(common.dir());
    if (!reader.ok()) {
      exit_code = report_status(common, reader.status());
      return;
    }
    auto p = engine::find_programme((*reader)->store(), *id);
    if (!p.ok()) {
      exit_code = report_status(common, p.status());
    } else if (!p->has_value()) {
      exit_code = print_decline(common, engine::Code::not_found);
    } else {
      print(common, api::programme_json(**p), programme_text(**p));
      exit_code = exit_ok;
    }
  });
}

void add_close(CLI::App& programme, Common& common, int& exit_code) {
  auto args = std::make_shared<std::pair<std::string, std::string>>();
  auto* cmd = programme.add_subcommand("close", "after valid_until: expire what is left on cards");
  cmd->add_option("--id", args->first, "programme id")->required();
  cmd->add_option("--idempotency-key", args->second, "makes a retry safe");
  cmd->callback([args, &common, &exit_code] {
    exit_code = run_command(
        common, {engine::Caller::admin(), args->second, engine::CloseProgramme{args->first}},
        closed_text);
  });
}

}  // namespace

void register_programme(CLI::App& app, Common& common, int& exit_code) {
  auto* programme = app.add_subcommand("programme", "create, show and close programmes");
  programme->require_subcommand(1);
  add_create(*programme, common, exit_code);
  add_show(*programme, common, exit_code);
  add_close(*programme, common, exit_code);
}

}  // namespace buoni::tools
