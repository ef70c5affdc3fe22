// buoni card issue | show | load | block | unblock | replace
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "tools/card_ref.h"
#include "tools/commands.h"
#include "tools/remote.h"

namespace buoni::tools {

namespace {

namespace json = boost::json;

// The human forms, from the API's answers (local and --server mode alike).
std::string card_line(std::string_view verb, const json::object& c) {
  std::string status = field(c, "status");
  return std::string(verb) + " card " + field(c, "number") + ": balance_cents " +
         field(c, "balance_cents") + ", held_cents " + field(c, "held_cents") +
         (status.empty() ? "" : ", " + status);
}

// The token, and the PIN of a new card (first answer only).
std::string made_lines(const json::object& c) {
  std::string text = "\ntoken " + field(c, "token");
  if (c.contains("pin")) {
    text += "\npin " + field(c, "pin") +
            " (shown once: give it to the beneficiary; only its hash is kept)";
  }
  return text;
}

std::string issued_text(const json::object& c) {
  return card_line("issued", c) + made_lines(c);
}
std::string loaded_text(const json::object& c) {
  return card_line("loaded", c) + " (ledger seq " + field(c, "ledger_seq") + ")";
}
std::string status_text(const json::object& c) {
  return card_line("updated", c);
}
std::string replaced_text(const json::object& c) {
  auto old_card = parse_card_number(field(c, "replaces"));
  std::string old_number = old_card.id ? format_card_number(*old_card.id) : field(c, "replaces");
  return card_line("replacement", c) + "; old card " + old_number + " revoked" + made_lines(c);
}
std::string shown_text(const json::object& c) {
  return "card " + field(c, "number") + " (" + field(c, "programme") + ", " +
         field(c, "beneficiary_ref") + "): " + field(c, "status") + ", balance_cents " +
         field(c, "balance_cents") + ", held_cents " + field(c, "held_cents") + ", valid until " +
         field(c, "expires_at");
}

struct Args {
  std::string programme, ref, amount, card, key;
};

// Runs a command that makes a card (issue, replace). When the card's
// programme requires a PIN, makes one here at the edge, passes only its hash,
// and shows it once with the answer (a replay shows none: it was never kept).
int run_card_maker(const Common& common, Node& node, engine::Request request,
                   const std::string& programme_id, JsonText text) {
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
  engine::Day expiry_day = (*programme)->valid_until_day;
  return print_result(
      common, command, result, text, [&](const engine::Result& r, json::object& body) {
        const engine::Outcome& o = r.outcome;
        CardId made = *parse_card_number(o.new_card.empty() ? o.card : o.new_card).id;
        CardTokens tokens = card_tokens(node.signing_key(), made, expiry_day);
        body["token"] = tokens.qr_text;
        body["link"] = tokens.link;
        if (!pin.empty() && !r.replayed) body["pin"] = pin;
      });
}

// Opens the data directory's node for a card-making command.
template <typename Fn>
int with_node(const Common& common, Fn fn) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  return fn(**node);
}

// POST /v1/cards/{card}/<action> through the server.
int card_post_remote(const Common& common, const std::string& card, std::string_view action,
                     std::optional<json::object> body, const std::string& key, JsonText text) {
  std::string target = "/v1/cards/" + card_segment(card) + "/" + std::string(action);
  return run_remote(common, {"POST", target, std::move(body), key}, text);
}

void add_issue(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("issue", "issue one card (one per programme and beneficiary)");
  allow_server(cmd);
  cmd->add_option("--programme", a->programme, "programme id")->required();
  cmd->add_option("--beneficiary-ref", a->ref, "the household's reference")->required();
  cmd->add_option("--amount-cents", a->amount, "amount put on the card")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    if (!common.remote()) {  // the server names a bad field itself (400 invalid_field)
      check_id_arg("--programme", a->programme);
      check_beneficiary_ref_arg("--beneficiary-ref", a->ref);
      check_idempotency_key_arg(a->key);
    }
    engine::IssueCard c{a->programme, a->ref,
                        parse_cents("--amount-cents", a->amount, limits::amount_cents_max, true)};
    if (common.remote()) {
      json::object body{{"programme", c.programme},
                        {"beneficiary_ref", c.beneficiary_ref},
                        {"amount_cents", c.amount_cents}};
      exit_code = run_remote(common, {"POST", "/v1/cards", std::move(body), a->key}, issued_text);
      return;
    }
    exit_code = with_node(common, [&](Node& node) {
      return run_card_maker(common, node, {engine::Caller::admin(), a->key, c}, c.programme,
                            issued_text);
    });
  });
}

void add_load(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("load", "top a card up from the programme's budget");
  allow_server(cmd);
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--amount-cents", a->amount, "amount to add")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    engine::Cents cents = parse_cents("--amount-cents", a->amount, limits::amount_cents_max);
    if (common.remote()) {
      exit_code = card_post_remote(common, a->card, "loads", json::object{{"amount_cents", cents}},
                                   a->key, loaded_text);
      return;
    }
    check_idempotency_key_arg(a->key);
    engine::LoadCard c{card_arg(common, a->card), cents};
    exit_code = run_command(common, {engine::Caller::admin(), a->key, c}, loaded_text);
  });
}

void add_card_action(CLI::App& card, const char* name, const char* help, Common& common,
                     int& exit_code, engine::Command (*make)(CardId), JsonText text) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand(name, help);
  allow_server(cmd);
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, name, make, text, &common, &exit_code] {
    if (common.remote()) {
      exit_code = card_post_remote(common, a->card, name, std::nullopt, a->key, text);
      return;
    }
    check_idempotency_key_arg(a->key);
    exit_code = run_command(
        common, {engine::Caller::admin(), a->key, make(card_arg(common, a->card))}, text);
  });
}

void add_replace(CLI::App& card, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = card.add_subcommand("replace",
                                  "revoke a (lost) card and move its balance to a "
                                  "new one (with a new PIN where PINs are required)");
  allow_server(cmd);
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--idempotency-key", a->key, "makes a retry safe");
  cmd->callback([a, &common, &exit_code] {
    if (common.remote()) {
      exit_code = card_post_remote(common, a->card, "replace", std::nullopt, a->key, replaced_text);
      return;
    }
    check_idempotency_key_arg(a->key);
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
  allow_server(cmd);
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->callback([a, &common, &exit_code] {
    if (common.remote()) {
      exit_code = run_remote(common, {"GET", "/v1/cards/" + card_segment(a->card)}, shown_text);
      return;
    }
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
      exit_code = print_ok(common, api::card_json(k, **p), shown_text, false);
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
