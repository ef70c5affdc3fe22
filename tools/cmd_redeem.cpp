// buoni redeem: a shop's redemption, from the command line (as a POS would).
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/validate.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

std::string redeemed_text(const engine::Command&, const engine::Outcome& o) {
  return "redemption " + o.id + ": " + std::to_string(o.amount_cents) +
         " cents; card balance_cents " + std::to_string(o.balance_cents) + " (ledger seq " +
         std::to_string(o.ledger_seq) + ")";
}

struct Args {
  std::string merchant, card, amount, key, reference, pin;
};

}  // namespace

void register_redeem(CLI::App& app, Common& common, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("redeem", "redeem an amount from a card for a shop");
  cmd->add_option("--merchant", a->merchant, "shop id")->required();
  cmd->add_option("--card", a->card, "card number or id")->required();
  cmd->add_option("--amount-cents", a->amount, "amount in cents")->required();
  cmd->add_option("--idempotency-key", a->key,
                  "1-64 of [A-Za-z0-9_-]; a retry with the same "
                  "key is answered once")
      ->required();
  cmd->add_option("--reference", a->reference, "the shop's own reference (receipt number)");
  cmd->add_option("--pin", a->pin, "the card's 5-digit PIN, where the programme requires one");
  cmd->callback([a, &common, &exit_code] {
    if (!engine::valid_idempotency_key(a->key)) {
      throw UsageError{"--idempotency-key takes 1-64 characters of A-Z a-z 0-9 _ -"};
    }
    check_reference_arg("--reference", a->reference);
    engine::Redeem c{card_arg(common, a->card),
                     parse_cents("--amount-cents", a->amount, limits::amount_cents_max),
                     a->reference};
    if (!a->pin.empty() && !engine::valid_pin(a->pin)) throw UsageError{"--pin takes 5 digits"};
    auto node = Node::open(common.dir());
    if (!node.ok()) {
      exit_code = report_status(common, node.status());
      return;
    }
    if (!a->pin.empty()) c.pin_hash = engine::hash_pin((*node)->pin_pepper(), a->pin);
    auto result = (*node)->engine().execute({engine::Caller::merchant(a->merchant), a->key, c});
    exit_code = print_result(common, c, result, redeemed_text);
  });
}

}  // namespace buoni::tools
