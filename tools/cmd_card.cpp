// buoni card issue | show | load | block | unblock | replace
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

std::string card_line(std::string_view verb, const engine::Outcome& o) {
  CardId id = *parse_card_number(o.card).id;
  return std::string(verb) + " card " + format_card_number(id) + ": balance_cents " +
         std::to_string(o.balance_cents) + ", held_cents " + std::to_string(o.held_cents) +
         (o.status.empty() ? "" : ", " + o.status);
}

std::string issued_text(const engine::Command&, const engine::Outcome& o) {
  return card_line("issued", o);
}
std::string loaded_text(const engine::Command&, const engine::Outcome& o) {
  return card_line("loaded", o) + " (ledger seq " + std::to_string(o.ledger_seq) + ")";
}
std::string status_text(const engine::Command&, const engine::Outcome& o) {
  return card_line("updated", o);
}
std::string replaced_text(const engine::Command&, const engine::Outcome& o) {
  engine::Outcome fresh = o;
  fresh.card = o.new_card;
  return card_line("replacement", fresh) + "; old card " + o.card + " revoked";
}

struct Args {
  std::string programme, ref, amount, card, key;
};

void add_issue(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("issue", "issue one card (one per programme and beneficiary)");
  cmd->add_option("--programme", a->programme, "programme id")->required();
  cmd->add_option("--beneficiary-ref", a->ref, "the household's reference")->required();
  cmd->add_option("--amount-cents", a->amount, "amount put on the card")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    engine::IssueCard c{a->programme, a->ref,
                        parse_cents("--amount-cents", a->amount, limits::amount_cents_max, true)};
    exit_code = run_command(common, {engine::Caller::admin(), a->key, c}, issued_text);
  });
}

void add_load(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("load", "top a card up from the programme's budget");
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--amount-cents", a->amount, "amount to add")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    engine::LoadCard c{parse_card("--card", a->card),
                       parse_cents("--amount-cents", a->amount, limits::amount_cents_max)};
    exit_code = run_command(common, {engine::Caller::admin(), a->key, c}, loaded_text);
  });
}

void add_card_action(CLI::App& card, const char* name, const char* help, Common& common,
                     int& exit_code, engine::Command (*make)(CardId), TextOf text) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand(name, help);
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, make, text, &common, &exit_code] {
    exit_code = run_command(common, {engine::Caller::admin(), a->key,
                                     make(parse_card("--card", a->card))}, text);
  });
}

void add_show(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("show", "show a card's status and balance");
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->callback([a, &common, &exit_code] {
    CardId id = parse_card("--card", a->card);
    auto reader = Reader::open(common.dir());
    if (!reader.ok()) {
      exit_code = report_status(common, reader.status());
      return;
    }
    auto c = engine::find_card((*reader)->store(), id);
    if (!c.ok()) {
      exit_code = report_status(common, c.status());
    } else if (!c->has_value()) {
      exit_code = print_decline(common, engine::Code::unknown_card);
    } else {
      const engine::Card& k = **c;
      auto p = engine::find_programme((*reader)->store(), k.programme);
      if (!p.ok() || !p->has_value()) {
        exit_code = report_status(common, p.ok() ? corruption("card names a missing programme")
                                                 : p.status());
        return;
      }
      print(common, api::card_json(k, **p),
            "card " + format_card_number(k.id) + " (" + k.programme + ", " + k.beneficiary_ref +
                "): " + std::string(engine::card_status_name(k.status)) + ", balance_cents " +
                std::to_string(k.available_cents) + ", held_cents " + std::to_string(k.held_cents) +
                ", valid until " + engine::format_day((*p)->valid_until_day));
      exit_code = exit_ok;
    }
  });
}

}  // namespace

void register_card(CLI::App& app, Common& common, int& exit_code) {
  auto* card = app.add_subcommand("card", "issue, show, load, block, unblock, replace cards");
  card->require_subcommand(1);
  add_issue(*card, common, exit_code);
  add_show(*card, common, exit_code);
  add_load(*card, common, exit_code);
  add_card_action(*card, "block", "stop a card being used", common, exit_code,
      [](CardId id) -> engine::Command { return engine::BlockCard{id}; }, status_text);
  add_card_action(*card, "unblock", "let a blocked card be used again",
      common, exit_code, [](CardId id) -> engine::Command { return engine::UnblockCard{id}; },
      status_text);
  add_card_action(*card, "replace",
      "revoke a (lost) card and move its balance to a new one", common, exit_code,
      [](CardId id) -> engine::Command { return engine::ReplaceCard{id}; }, replaced_text);
}

}  // namespace buoni::tools
