// buoni programme create | show | close
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"
#include "tools/commands.h"
#include "tools/remote.h"

namespace buoni::tools {

namespace {

namespace json = boost::json;

// The human forms, from the API's answers (local and --server mode alike).
std::string programme_text(const json::object& p) {
  return "programme " + field(p, "id") + " (" + field(p, "name") + "), " + field(p, "status") +
         "\n  valid " + field(p, "valid_from") + " .. " + field(p, "valid_until") +
         "\n  budget_cents " + field(p, "budget_cents") + ", issued " + field(p, "issued_cents") +
         ", redeemed " + field(p, "redeemed_cents") + ", refunded " + field(p, "refunded_cents") +
         ", held " + field(p, "held_cents") + ", expired " + field(p, "expired_cents") +
         ", cards " + field(p, "cards");
}

std::string created_text(const json::object& p) {
  return "created programme " + field(p, "id") + " with budget_cents " + field(p, "budget_cents") +
         " (ledger seq " + field(p, "ledger_seq") + ")";
}

std::string closed_text(const json::object& p) {
  return "closed programme " + field(p, "id") + "; expired " + field(p, "expired_cents") +
         " cents left on its cards";
}

// POST /v1/programmes's body for the command the flags made.
json::object create_body(const engine::CreateProgramme& c) {
  return {{"id", c.id},
          {"name", c.name},
          {"budget_cents", c.budget_cents},
          {"valid_from", engine::format_day(c.valid_from_day)},
          {"valid_until", engine::format_day(c.valid_until_day)},
          {"require_pin", c.require_pin},
          {"max_redemption_cents", c.max_redemption_cents},
          {"daily_limit_cents", c.daily_limit_cents}};
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
  cmd->add_flag("--require-pin", args->require_pin,
                "cards need a 5-digit PIN (shown once at issue)");
  cmd->add_option("--max-redemption-cents", args->max_redemption, "per-redemption cap; 0 none");
  cmd->add_option("--daily-limit-cents", args->daily_limit, "per-card daily cap; 0 none");
  cmd->add_option("--idempotency-key", args->key, "makes a retry safe");
  cmd->callback([args, &common, &exit_code] {
    if (!common.remote()) {  // the server names a bad field itself (400 invalid_field)
      check_id_arg("--id", args->id);
      check_name_arg("--name", args->name);
      check_idempotency_key_arg(args->key);
    }
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
    exit_code = common.remote()
                    ? run_remote(common, {"POST", "/v1/programmes", create_body(c), args->key},
                                 created_text)
                    : run_command(common, {engine::Caller::admin(), args->key, c}, created_text);
  });
  allow_server(cmd);
}

void add_show(CLI::App& programme, Common& common, int& exit_code) {
  auto id = std::make_shared<std::string>();
  auto* cmd = programme.add_subcommand("show", "show a programme and its totals");
  cmd->add_option("--id", *id, "programme id")->required();
  allow_server(cmd);
  cmd->callback([id, &common, &exit_code] {
    if (common.remote()) {
      exit_code =
          run_remote(common, {"GET", "/v1/programmes/" + path_segment(*id)}, programme_text);
      return;
    }
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
      exit_code = print_ok(common, api::programme_json(**p), programme_text, false);
    }
  });
}

void add_close(CLI::App& programme, Common& common, int& exit_code) {
  auto args = std::make_shared<std::pair<std::string, std::string>>();
  auto* cmd = programme.add_subcommand("close", "after valid_until: expire what is left on cards");
  cmd->add_option("--id", args->first, "programme id")->required();
  cmd->add_option("--idempotency-key", args->second, "makes a retry safe");
  allow_server(cmd);
  cmd->callback([args, &common, &exit_code] {
    if (common.remote()) {
      std::string target = "/v1/programmes/" + path_segment(args->first) + "/close";
      exit_code = run_remote(common, {"POST", target, std::nullopt, args->second}, closed_text);
      return;
    }
    check_idempotency_key_arg(args->second);
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
