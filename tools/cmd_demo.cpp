// buoni demo: a short scripted tour on a data directory: a programme, two
// shops, a few cards, redemptions (with an idempotent retry and a decline),
// then an audit. Safe to re-run: every step has an idempotency key.
#include <iostream>

#include "engine/audit.h"
#include "engine/calendar.h"
#include "engine/queries.h"
#include "tools/card_face.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

using engine::Caller;
using engine::Outcome;

// Runs one request and prints a line about it; false if it failed to run.
bool step(engine::Engine& engine, engine::Request request, const std::string& what,
          Outcome* out = nullptr) {
  auto r = engine.execute(std::move(request));
  if (!r.ok()) {
    std::cerr << "buoni demo: " << what << ": " << r.status().to_string() << "\n";
    return false;
  }
  const Outcome& o = r->outcome;
  std::cout << "  " << what << ": "
            << (o.ok() ? "ok" : "declined " + std::string(engine::code_name(o.code)))
            << (r->replayed ? " (replayed)" : "");
  if (!o.card.empty()) std::cout << ", balance_cents " << o.balance_cents;
  std::cout << "\n";
  if (out) *out = o;
  return true;
}

bool seed(Node& node, std::vector<std::string>& cards) {
  engine::Engine& e = node.engine();
  engine::Day today = engine::day_of(engine::SystemClock().now_ms());
  std::cout << "programme, shops and cards:\n";
  bool ok = step(e,
                 {Caller::admin(), "demo-programme",
                  engine::CreateProgramme{"venezia-demo", "Buoni spesa Venezia (demo)", 500000,
                                          today, today + 90, false, 15000, 0}},
                 "programme venezia-demo, budget EUR 5000.00");
  ok = ok && step(e,
                  {Caller::admin(), "demo-shop-1",
                   engine::AddMerchant{"alimentari-rialto",
                                       "Alimentari Rialto",
                                       "01234567897",
                                       {"venezia-demo"},
                                       api_key_hash("demo-not-a-key-1")}},
                  "shop alimentari-rialto");
  ok = ok && step(e,
                  {Caller::admin(), "demo-shop-2",
                   engine::AddMerchant{"forno-cannaregio",
                                       "Forno Cannaregio",
                                       "07654321012",
                                       {"venezia-demo"},
                                       api_key_hash("demo-not-a-key-2")}},
                  "shop forno-cannaregio");
  for (int i = 1; ok && i <= 5; ++i) {
    Outcome o;
    std::string ref = "famiglia-" + std::to_string(i);
    ok = step(e,
              {Caller::admin(), "demo-card-" + std::to_string(i),
               engine::IssueCard{"venezia-demo", ref, 15000}},
              "card for " + ref + ", EUR 150.00", &o);
    if (ok && o.ok()) cards.push_back(o.card);
  }
  return ok && !cards.empty();
}

bool spend(Node& node, const std::vector<std::string>& cards) {
  engine::Engine& e = node.engine();
  CardId card = *parse_card_number(cards[0]).id;
  std::cout << "redemptions at alimentari-rialto with card " << format_card_number(card) << ":\n";
  Caller shop = Caller::merchant("alimentari-rialto");
  bool ok =
      step(e, {shop, "demo-sale-1", engine::Redeem{card, 4250, "scontrino 1"}}, "redeem EUR 42.50");
  ok = ok && step(e, {shop, "demo-sale-1", engine::Redeem{card, 4250, "scontrino 1"}},
                  "same request again (a POS retry)");
  ok = ok && step(e, {shop, "demo-sale-1", engine::Redeem{card, 9999, "scontrino 1"}},
                  "same key, other amount");
  ok = ok && step(e, {shop, "demo-sale-2", engine::Redeem{card, 12000, "scontrino 2"}},
                  "redeem EUR 120.00 (more than the balance)");
  return ok;
}

// Writes the demo cards, printable, to DIR/demo-cards.pdf and shows the first
// card's token (what its QR code holds).
bool print_cards(Node& node, const DataDir& dir, const std::vector<std::string>& cards) {
  auto programme = engine::find_programme(node.store(), "venezia-demo");
  if (!programme.ok() || !programme->has_value()) return false;
  std::vector<api::CardFace> faces;
  for (const auto& id : cards) {
    auto card = engine::find_card(node.store(), *parse_card_number(id).id);
    if (!card.ok() || !card->has_value()) return false;
    faces.push_back(card_face(**card, **programme, node.signing_key(), public_url()));
  }
  std::string pdf = dir.root + "/demo-cards.pdf";
  Status s = api::render_card_sheets(faces, pdf);
  if (!s.ok()) {
    std::cerr << "buoni demo: " << s.to_string() << "\n";
    return false;
  }
  std::cout << "printable cards: " << pdf << "\n"
            << "first card's token (its QR code): '" << faces[0].qr_text << "'\n";
  return true;
}

}  // namespace

void register_demo(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand("demo",
                                 "init if needed, seed a demo programme, shops and "
                                 "cards, redeem, audit");
  cmd->callback([&common, &exit_code] {
    DataDir dir = common.dir();
    if (!data_dir_exists(dir)) {
      SystemRandom random;
      auto admin_key = init_data_dir(dir, random);
      if (!admin_key.ok()) {
        exit_code = report_status(common, admin_key.status());
        return;
      }
      std::cout << "initialised " << dir.root << "; admin_key " << *admin_key << " (shown once)\n";
    }
    std::vector<std::string> cards;
    {
      auto node = Node::open(dir);
      if (!node.ok()) {
        exit_code = report_status(common, node.status());
        return;
      }
      if (!seed(**node, cards) || !spend(**node, cards) || !print_cards(**node, dir, cards)) {
        exit_code = exit_failed;
        return;
      }
    }
    auto reader = Reader::open(dir);
    if (!reader.ok()) {
      exit_code = report_status(common, reader.status());
      return;
    }
    auto report = engine::audit((*reader)->store(), (*reader)->keys());
    if (!report.ok()) {
      exit_code = report_status(common, report.status());
      return;
    }
    std::cout << "audit: " << (report->clean() ? "ok" : "FAILED") << ", " << report->entries
              << " ledger entries, " << report->checkpoints << " signed checkpoints, "
              << report->findings.size() << " findings\n";
    std::cout << "try: buoni --data " << dir.root << " card show --card "
              << format_card_number(*parse_card_number(cards[0]).id) << "\n";
    exit_code = report->clean() ? exit_ok : exit_declined;
  });
}

}  // namespace buoni::tools
