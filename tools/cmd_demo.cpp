// buoni demo: README's main job. On a data directory (fresh or not): a demo
// programme, two shops with real API keys, 20 cards (printable PDF in the
// directory), a short scripted tour (a redemption, a POS retry, a changed
// retry, an over-spend), an audit; then it serves the HTTP API and prints
// the URL, a shop key, a card token and a ready curl line, until Ctrl-C.
// --no-serve stops after the audit. Safe to re-run: every step has an
// idempotency key, and the shops' keys are kept in DIR/demo-shop-keys (0600).
#include <iostream>

#include "engine/audit.h"
#include "engine/calendar.h"
#include "engine/queries.h"
#include "tools/card_face.h"
#include "tools/commands.h"
#include "tools/serve.h"

namespace buoni::tools {

namespace {

using engine::Caller;
using engine::Outcome;

// The cards the demo issues.
constexpr std::size_t demo_cards = 20;

// Runs one request and prints a line about it (unless `what` is empty);
// false if it failed to run.
bool step(engine::Engine& engine, engine::Request request, const std::string& what,
          Outcome* out = nullptr) {
  auto r = engine.execute(std::move(request));
  if (!r.ok()) {
    std::cerr << "buoni demo: " << what << ": " << r.status().to_string() << "\n";
    return false;
  }
  const Outcome& o = r->outcome;
  if (out) *out = o;
  if (what.empty()) return true;
  std::cout << "  " << what << ": "
            << (o.ok() ? "ok" : "declined " + std::string(engine::code_name(o.code)))
            << (r->replayed ? " (replayed)" : "");
  if (!o.card.empty()) std::cout << ", balance_cents " << o.balance_cents;
  std::cout << "\n";
  return true;
}

struct DemoShop {
  std::string id, name, vat_number;
  std::string key;  // "" when this directory's demo predates the key file
};

// The shops, with their keys from DIR/demo-shop-keys ("id key" lines); keys
// are made for shops that do not exist yet.
StatusOr<std::vector<DemoShop>> demo_shops(Node& node, const DataDir& dir) {
  std::vector<DemoShop> shops{{"alimentari-rialto", "Alimentari Rialto", "01234567897", ""},
                              {"forno-cannaregio", "Forno Cannaregio", "07654321012", ""}};
  std::string path = dir.root + "/demo-shop-keys";
  auto saved = read_secret_file(path);
  std::string lines = saved.ok() ? *saved : std::string();
  bool made = false;
  for (auto& shop : shops) {
    auto at = lines.find(shop.id + " ");
    if (at != std::string::npos) {
      auto start = at + shop.id.size() + 1;
      shop.key = lines.substr(start, lines.find('\n', start) - start);
      continue;
    }
    BUONI_ASSIGN_OR_RETURN(auto existing, engine::find_merchant(node.store(), shop.id));
    if (existing) continue;  // added by an older demo: its key is unknown
    shop.key = make_api_key("mk_", node.random());
    lines += shop.id + " " + shop.key + "\n";
    made = true;
  }
  if (made) BUONI_RETURN_IF_ERROR(write_secret_file(path, lines));
  return shops;
}

bool seed(Node& node, const std::vector<DemoShop>& shops, std::vector<std::string>& cards) {
  engine::Engine& e = node.engine();
  engine::Day today = engine::day_of(engine::SystemClock().now_ms());
  std::cout << "programme, shops and cards:\n";
  bool ok = step(e,
                 {Caller::admin(), "demo-programme",
                  engine::CreateProgramme{"venezia-demo", "Buoni spesa Venezia (demo)", 500000,
                                          today, today + 90, false, 15000, 0}},
                 "programme venezia-demo, budget EUR 5000.00");
  for (const auto& shop : shops) {
    auto existing = engine::find_merchant(node.store(), shop.id);
    if (!existing.ok()) return false;
    if (*existing) continue;
    ok = ok &&
         step(e,
              {Caller::admin(), "demo-" + shop.id,
               engine::AddMerchant{
                   shop.id, shop.name, shop.vat_number, {"venezia-demo"}, api_key_hash(shop.key)}},
              "shop " + shop.id);
  }
  for (std::size_t i = 1; ok && i <= demo_cards; ++i) {
    Outcome o;
    std::string ref = "famiglia-" + std::to_string(i);
    ok = step(e,
              {Caller::admin(), "demo-card-" + std::to_string(i),
               engine::IssueCard{"venezia-demo", ref, 15000}},
              i == 1 ? "card for " + ref + ", EUR 150.00" : "", &o);
    if (ok && o.ok()) cards.push_back(o.card);
  }
  if (ok) std::cout << "  ... " << cards.size() << " cards of EUR 150.00\n";
  return ok && cards.size() == demo_cards;
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

// Writes the demo cards, printable, to DIR/demo-cards.pdf; their faces
// (token, balance link) go to `faces`.
bool print_cards(Node& node, const DataDir& dir, const std::vector<std::string>& cards,
                 const std::string& base_url, std::vector<api::CardFace>& faces) {
  auto programme = engine::find_programme(node.store(), "venezia-demo");
  if (!programme.ok() || !programme->has_value()) return false;
  for (const auto& id : cards) {
    auto card = engine::find_card(node.store(), *parse_card_number(id).id);
    if (!card.ok() || !card->has_value()) return false;
    faces.push_back(card_face(**card, **programme, node.signing_key(), base_url));
  }
  std::string pdf = dir.root + "/demo-cards.pdf";
  Status s = api::render_card_sheets(faces, pdf);
  if (!s.ok()) {
    std::cerr << "buoni demo: " << s.to_string() << "\n";
    return false;
  }
  std::cout << "printable cards: " << pdf << "\n";
  return true;
}

bool audit_ok(const Common& common, const DataDir& dir, int& exit_code) {
  auto reader = Reader::open(dir);
  if (!reader.ok()) {
    exit_code = report_status(common, reader.status());
    return false;
  }
  auto report = engine::audit((*reader)->store(), (*reader)->keys());
  if (!report.ok()) {
    exit_code = report_status(common, report.status());
    return false;
  }
  std::cout << "audit: " << (report->clean() ? "ok" : "FAILED") << ", " << report->entries
            << " ledger entries, " << report->checkpoints << " signed checkpoints, "
            << report->findings.size() << " findings\n";
  exit_code = report->clean() ? exit_ok : exit_declined;
  return report->clean();
}

// What a shop and a beneficiary can try against the running server.
void print_try(const std::string& url, const DemoShop& shop, const api::CardFace& face) {
  std::string auth = "-H 'Authorization: Bearer " + shop.key + "'";
  std::string redeem = "curl -s -X POST " + url + "/v1/redemptions " + auth +
                       " -H 'Idempotency-Key: try-'$RANDOM -d '{\"card\": \"" + face.qr_text +
                       "\", \"amount_cents\": ";
  std::cout << "\nserving " << url << "  (Ctrl-C stops)\n"
            << "shop " << shop.id << ", key " << shop.key << "\n"
            << "card " << face.card_number << ", token (its QR code): " << face.qr_text << "\n\n"
            << "redeem EUR 12.50 at the shop:\n  " << redeem << "1250}'\n"
            << "spend more than the balance (402 insufficient_funds):\n  " << redeem << "14000}'\n"
            << "the beneficiary's balance page:\n  " << face.balance_url << "\n"
            << "the shop's till in a browser (sign in with the key above, scan a card of "
            << "demo-cards.pdf):\n  " << url << "/pos" << std::endl;
}

void serve_demo(const Common& common, Node& node, api::ServerOptions options, const DemoShop& shop,
                api::CardFace face, int& exit_code) {
  Status served = serve_until_signal(node, std::move(options), [&](const std::string& url) {
    auto link_at = face.balance_url.find("/c/");
    face.balance_url = url + face.balance_url.substr(link_at);
    if (shop.key.empty()) {
      std::cout << "\nserving " << url << "; the demo shops of " << common.data
                << " predate demo-shop-keys, so their keys are unknown: use a fresh directory\n";
      return;
    }
    print_try(url, shop, face);
  });
  exit_code = served.ok() ? exit_ok : report_status(common, served);
}

}  // namespace

void register_demo(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "demo", "init if needed, seed a demo programme, shops and cards, audit, then serve");
  auto listen = std::make_shared<std::string>("127.0.0.1:8080");
  auto no_serve = std::make_shared<bool>(false);
  cmd->add_option("--listen", *listen, "HOST:PORT to serve on; port 0 picks a free one")
      ->capture_default_str();
  cmd->add_flag("--no-serve", *no_serve, "stop after the audit");
  cmd->callback([&common, &exit_code, listen, no_serve] {
    api::ServerOptions options;
    parse_listen(*listen, options);
    block_stop_signals();
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
    auto node = Node::open(dir);
    if (!node.ok()) {
      exit_code = report_status(common, node.status());
      return;
    }
    auto shops = demo_shops(**node, dir);
    if (!shops.ok()) {
      exit_code = report_status(common, shops.status());
      return;
    }
    std::vector<std::string> cards;
    std::vector<api::CardFace> faces;
    std::string base_url = "http://" + *listen;  // printed on the cards' balance line
    if (!seed(**node, *shops, cards) || !spend(**node, cards) ||
        !print_cards(**node, dir, cards, public_url_or(base_url), faces)) {
      exit_code = exit_failed;
      return;
    }
    if (!audit_ok(common, dir, exit_code) || *no_serve) return;
    serve_demo(common, **node, std::move(options), shops->front(), faces[1], exit_code);
  });
}

}  // namespace buoni::tools
