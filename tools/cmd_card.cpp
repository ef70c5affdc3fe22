// buoni card issue | show | load | block | unblock | replace
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "tools/card_ref.h"
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
  return card_line("replacement", fresh) + "; old card " +
         format_card_number(*parse_card_number(o.card).id) + " revoked";
}

struct Args {
  std::string programme, ref, amount, card, key;
};

// Runs a command that makes a card (issue, replace). When the card's
// programme requires a PIN, makes one here at the edge, passes only its hash,
// and shows it once with the answer (a replay shows none: it was never kept).
int run_card_maker(const Common& common, Node& node, engine::Request request,
                   const std::string& programme_id, TextOf text) {
  auto programme = engine::find_programme(node.store(), programme_id);
  if (!programme.ok()) return report_status(common, programme.status());
  if (!programme->has_value()) return print_decline(common, engine::Code::not_found);
  std::string pin;
  if ((*programme)->require_pin) {
    pin = engine::make_pin(node.random());
    Hash32 hash = engine::hash_pin(node.pin_pepper(), pin);
    std::visit(
        [&hash](auto& c) {
          if constexpr (requires { c.pin_hash; }) c.pin_hash = hash;
        },
        request.command);
  }
  engine::Command command = request.command;
  auto result = node.engine().execute(std::move(request));
  if (!result.ok() || !result->outcome.ok()) return print_result(common, command, result, text);
  const engine::Outcome& o = result->outcome;
  CardId made = *parse_card_number(o.new_card.empty() ? o.card : o.new_card).id;
  CardTokens tokens = card_tokens(node.signing_key(), made, (*programme)->valid_until_day);
  boost::json::object body = api::outcome_json(command, o);
  body["token"] = tokens.qr_text;
  body["link"] = tokens.link;
  std::string human = text(command, o) + "\ntoken " + tokens.qr_text;
  if (result->replayed)
    human += "\n(replayed: this idempotency key was used before; nothing changed)";
  if (!pin.empty() && !result->replayed) {
    body["pin"] = pin;
    human += "\npin " + pin + " (shown once: give it to the beneficiary; only its hash is kept)";
  }
  print(common, body, human);
  return exit_ok;
}

// Opens the data directory's node for a card-making command.
template <typename Fn>
int with_node(const Common& common, Fn fn) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  return fn(**node);
}

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
    exit_code = with_node(common, [&](Node& node) {
      return run_card_maker(common, node, {engine::Caller::admin(), a->key, c}, c.programme,
                            issued_text);
    });
  });
}

void add_load(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("load", "top a card up from the programme's budget");
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--amount-cents", a->amount, "amount to add")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    engine::LoadCard c{card_arg(common, a->card),
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
    exit_code = run_command(
        common, {engine::Caller::admin(), a->key, make(card_arg(common, a->card))}, text);
  });
}

void add_replace(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("replace",
                                  "revoke a (lost) card and move its balance to a "
                                  "new one (with a new PIN where PINs are required)");
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    engine::ReplaceCard c{card_arg(common, a->card)};
    exit_code = with_node(common, [&](Node& node) {
      auto old_card = engine::find_card(node.store(), c.card);
      if (!old_card.ok()) return report_status(common, old_card.status());
      if (!old_card->has_value()) return print_decline(common, engine::Code::unknown_card);
      return run_card_maker(common, node, {engine::Caller::admin(), a->key, c},
                            (*old_card)->programme, replaced_text);
    });
  });
}

void add_show(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("show", "show a card's status and balance");
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->callback([a, &common, &exit_code] {
    CardId id = card_arg(common, a->card);
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
        exit_code = report_status(
            common, p.ok() ? corruption("card names a missing programme") : p.status());
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
  add_card_action(
      *card, "block", "stop a card being used", common, exit_code,
      [](CardId id) -> engine::Command { return engine::BlockCard{id}; }, status_text);
  add_card_action(
      *card, "unblock", "let a blocked card be used again", common, exit_code,
      [](CardId id) -> engine::Command { return engine::UnblockCard{id}; }, status_text);
  add_card_action(
      *card, "unlock-pin", "clear a card's wrong-PIN count", common, exit_code,
      [](CardId id) -> engine::Command { return engine::UnlockPin{id}; }, status_text);
  add_replace(*card, common, exit_code);
  register_card_print(*card, common, exit_code);
}

}  // namespace buoni::tools
