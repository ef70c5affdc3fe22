// `buoni report --html` and `buoni backup` / `buoni restore` (docs/operations.md).
//
// Report: the page from api/report.h on its own (hostile names escaped, no
// script, no network resource, balanced tags) and end to end through the
// real binary (the totals and the shop ranking carry the right numbers).
// Backup: taken from a live `buoni serve` while a thread redeems through
// HTTP; restored into a new directory it audits clean and is a prefix of the
// source's ledger, and every card's balance is its issue minus its
// redemptions in that prefix. Restore refuses an existing store without
// --force and a store in use with it.
// Audit, export and verify-export run on the data directory of that live
// server while it writes (RocksDB secondary views): each is clean and sees
// every redemption acknowledged before it started.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "api/report.h"
#include "engine/engine.h"
#include "engine/queries.h"
#include "server_support.h"
#include "storage/rocks_store.h"
#include "support.h"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using buoni::test::contains;
using buoni::test::count_of;
using buoni::test::day_string;
using buoni::test::HttpClient;
using buoni::test::int_field;
using buoni::test::parse_object;
using buoni::test::Ran;
using buoni::test::read_file;
using buoni::test::Reply;
using buoni::test::run_program;
using buoni::test::ServedDir;
using buoni::test::str_field;

const std::string valid_vat = "01234567897";

Ran buoni_run(const std::vector<std::string>& args) {
  return run_program(BUONI_BIN, args);
}

Ran ok(const std::vector<std::string>& args) {
  Ran r = buoni_run(args);
  std::string line;
  for (const auto& a : args) line += " '" + a + "'";
  INFO("$ buoni" << line << "\n  exit " << r.rc << "\n  out: " << r.out << "\n  err: " << r.err);
  REQUIRE(r.rc == 0);
  return r;
}

// Every opening <tag ...> of these elements has its </tag>, in order of nesting
// (a stack check over the main structural tags).
bool balanced(const std::string& html) {
  static const std::regex tag(
      R"(<(/?)(html|head|body|header|main|footer|section|table|thead|tbody|tr|svg|figure|style|title|h1|h2|h3|p)\b[^>]*>)");
  std::vector<std::string> stack;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator();
       ++it) {
    const std::string name = (*it)[2];
    if ((*it)[1].length() == 0) {
      stack.push_back(name);
      continue;
    }
    if (stack.empty() || stack.back() != name) return false;
    stack.pop_back();
  }
  return stack.empty();
}

void check_self_contained(const std::string& html) {
  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(balanced(html));
  CHECK(contains(html, "<svg"));
  CHECK_FALSE(contains(html, "<script"));
  CHECK_FALSE(contains(html, "http://"));
  CHECK_FALSE(contains(html, "https://"));
  CHECK_FALSE(contains(html, "url("));
  CHECK_FALSE(contains(html, "@import"));
  CHECK_FALSE(contains(html, "src="));
  CHECK_FALSE(contains(html, "href="));
}

buoni::engine::Entry entry(std::uint64_t seq, buoni::engine::EntryKind kind, std::int64_t cents,
                           const std::string& merchant, buoni::engine::Day day) {
  buoni::engine::Entry e;
  e.seq = seq;
  e.kind = kind;
  e.programme = "p<1>";
  e.amount_cents = cents;
  e.merchant = merchant;
  e.time_ms = day * buoni::engine::ms_per_day + 3'600'000;
  return e;
}

}  // namespace

TEST_CASE("report page: sums, ranking, chart, escaping, nothing external") {
  using buoni::engine::EntryKind;
  buoni::engine::Programme p;
  p.id = "p<1>";
  p.name = "<script>alert('x')</script> & \"Co\"";
  p.budget_cents = 100'000;
  p.issued_cents = 10'000;
  p.redeemed_cents = 3'500;
  p.refunded_cents = 500;
  p.card_count = 2;
  buoni::api::ReportBuilder builder({p});
  builder.add_merchant({.id = "m1", .name = "Forno <b>Due</b>"});
  builder.add_merchant({.id = "m2", .name = "Alimentari Uno"});
  const buoni::engine::Day d0 = 20'000;
  builder.add_entry(entry(1, EntryKind::issue, 10'000, "", d0));
  builder.add_entry(entry(2, EntryKind::redeem, 1'000, "m2", d0));
  builder.add_entry(entry(3, EntryKind::redeem, 500, "m2", d0 + 1));
  builder.add_entry(entry(4, EntryKind::redeem, 2'000, "m1", d0 + 3));
  builder.add_entry(entry(5, EntryKind::refund, 500, "m1", d0 + 3));
  buoni::engine::Entry other = entry(6, EntryKind::redeem, 9'999, "m2", d0);
  other.programme = "other";  // not reported
  builder.add_entry(other);
  buoni::engine::Card card;
  card.programme = "p<1>";
  builder.add_card(card);  // active, zero balance
  card.status = buoni::engine::CardStatus::blocked;
  card.available_cents = 5;
  builder.add_card(card);
  const buoni::api::Report report = builder.finish(1'700'000'000'000, 6);
  REQUIRE(report.programmes.size() == 1);
  const auto& r = report.programmes[0];
  REQUIRE(r.top_shops.size() == 2);
  CHECK(r.top_shops[0].merchant == "m1");
  CHECK(r.top_shops[0].redeemed_cents == 2'000);
  CHECK(r.top_shops[0].refunds == 1);
  CHECK(r.top_shops[1].redeemed_cents == 1'500);
  CHECK(r.top_shops[1].redemptions == 2);
  CHECK(r.cards.active == 1);
  CHECK(r.cards.blocked == 1);
  CHECK(r.cards.zero_balance == 1);
  CHECK_FALSE(r.weekly);
  REQUIRE(r.series.size() == 5);  // the zero point, then days d0..d0+3
  CHECK(r.series.front().issued_cents == 0);
  CHECK(r.series.back().day == d0 + 3);
  CHECK(r.series.back().redeemed_cents == 3'500);
  CHECK(r.series.back().outstanding_cents == 10'000 - 3'500 + 500);

  const std::string html = buoni::api::render_report_html(report);
  check_self_contained(html);
  CHECK(contains(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;"));
  CHECK(contains(html, "Forno &lt;b&gt;Due&lt;/b&gt;"));
  CHECK(contains(html, "p&lt;1&gt;"));
  CHECK_FALSE(contains(html, "<b>Due"));
  CHECK(contains(html, "1.000,00 €"));                      // budget
  CHECK(contains(html, "70,00 €"));                         // outstanding: 100 - 35 + 5
  CHECK(html.find("Forno") < html.find("Alimentari Uno"));  // ranked by redeemed amount
  CHECK(count_of(html, "<polyline") == 4);
}

TEST_CASE("report series: per week past report_daily_days_max days") {
  std::map<buoni::engine::Day, buoni::api::DayFlow> days;
  days[20'000].issued = 100;
  days[20'000 + buoni::api::report_daily_days_max + 10].redeemed = 40;
  bool weekly = false;
  auto series = buoni::api::report_series(days, weekly);
  CHECK(weekly);
  REQUIRE(series.size() > 2);
  for (std::size_t i = 1; i < series.size(); ++i) CHECK(series[i].day - series[i - 1].day == 7);
  CHECK(series.back().redeemed_cents == 40);
  CHECK(series.back().outstanding_cents == 60);
  CHECK(buoni::api::format_euro(-123456) == "-1.234,56 €");
  CHECK(buoni::api::format_euro(5) == "0,05 €");
}

TEST_CASE("buoni report --html: the numbers of a real data directory") {
  buoni::test::TempDir tmp((fs::temp_directory_path() / "buoni-report-XXXXXX").string());
  const std::string dir = tmp.sub("data");
  ok({"--data", dir, "init"});
  ok({"--data", dir, "programme", "create", "--id", "p1", "--name", "Buoni <Comune> & Co",
      "--budget-cents", "100000", "--valid-from", day_string(-1), "--valid-until", day_string(60),
      "--idempotency-key", "create-p1"});
  ok({"--data", dir, "merchant", "add", "--id", "m1", "--name", "Alimentari Uno", "--vat-number",
      valid_vat, "--programme", "p1"});
  ok({"--data", dir, "merchant", "add", "--id", "m2", "--name", "Forno Due", "--vat-number",
      valid_vat, "--programme", "p1"});
  std::vector<std::string> cards;
  for (const char* ref : {"famiglia-1", "famiglia-2"}) {
    json::object c = parse_object(ok({"--data", dir, "--json", "card", "issue", "--programme", "p1",
                                      "--beneficiary-ref", ref, "--amount-cents", "5000"})
                                      .out);
    cards.push_back(str_field(c, "number"));
  }
  ok({"--data", dir, "redeem", "--merchant", "m1", "--card", cards[0], "--amount-cents", "1200",
      "--idempotency-key", "r1"});
  ok({"--data", dir, "redeem", "--merchant", "m1", "--card", cards[1], "--amount-cents", "300",
      "--idempotency-key", "r2"});
  ok({"--data", dir, "redeem", "--merchant", "m2", "--card", cards[0], "--amount-cents", "2000",
      "--idempotency-key", "r3"});
  ok({"--data", dir, "card", "block", "--card", cards[1]});

  const std::string out = tmp.sub("report.html");
  json::object answer = parse_object(ok({"--data", dir, "--json", "report", "--html", out}).out);
  CHECK(int_field(answer, "programmes") == 1);
  const std::string html = read_file(out);
  REQUIRE(!html.empty());
  check_self_contained(html);
  CHECK(contains(html, "Buoni &lt;Comune&gt; &amp; Co"));
  CHECK(contains(html, "1.000,00 €"));  // budget
  CHECK(contains(html, "100,00 €"));    // issued
  CHECK(contains(html, "35,00 €"));     // redeemed
  CHECK(contains(html, "65,00 €"));     // outstanding
  // Top shops: Forno Due (20,00 €, 1) above Alimentari Uno (15,00 €, 2).
  const auto forno = html.find("Forno Due");
  const auto alimentari = html.find("Alimentari Uno");
  REQUIRE(forno != std::string::npos);
  REQUIRE(alimentari != std::string::npos);
  CHECK(forno < alimentari);
  CHECK(contains(html.substr(forno, 200), "20,00 €"));
  CHECK(contains(html.substr(alimentari, 200), "15,00 €</td><td class=\"n\">2</td>"));
  CHECK(
      contains(html, "Ledger up to entry</span> " + std::to_string(int_field(answer, "head_seq"))));

  {  // --programme unknown: declined, exit 1; no file
    Ran r =
        buoni_run({"--data", dir, "report", "--html", tmp.sub("x.html"), "--programme", "nope"});
    CHECK(r.rc == 1);
    CHECK_FALSE(fs::exists(tmp.sub("x.html")));
  }
  {  // works while a server runs
    ServedDir served(BUONI_BIN, dir);
    ok({"--data", dir, "report", "--html", out, "--programme", "p1"});
    CHECK(contains(read_file(out), "Forno Due"));
    served.process->stop();
  }
}

// ---- backup and restore ---------------------------------------------------------

namespace {

struct Served {
  buoni::test::TempDir tmp{(fs::temp_directory_path() / "buoni-backup-test-XXXXXX").string()};
  std::string dir = tmp.sub("data");
  std::string admin_key;
  std::unique_ptr<ServedDir> served;
  std::unique_ptr<HttpClient> admin;

  Served() {
    admin_key = str_field(parse_object(ok({"--data", dir, "--json", "init"}).out), "admin_key");
    served = std::make_unique<ServedDir>(BUONI_BIN, dir);
    admin = std::make_unique<HttpClient>(served->port);
  }
  ~Served() {
    if (served) served->process->stop(9);
  }
  json::object post(const std::string& target, const json::object& body) {
    Reply r = admin->call("POST", target, json::serialize(body), admin_key,
                          {{"Content-Type", "application/json"}});
    INFO(target << " -> " << r.status << " " << r.body);
    REQUIRE(r.status == 201);
    return parse_object(r.body);
  }
};

struct Restored {
  std::map<std::string, std::int64_t> balance;   // card id -> available
  std::map<std::string, std::int64_t> issued;    // card id -> issued
  std::map<std::string, std::int64_t> redeemed;  // card id -> sum of its redeem entries
  std::uint64_t head = 0;
  std::uint64_t redemptions = 0;
  std::vector<std::string> hashes;  // entry hashes, seq 1..head
};

Restored read_store(const std::string& db) {
  auto store = buoni::storage::open_read_only(db);
  REQUIRE(store.ok());
  Restored r;
  auto head = buoni::engine::read_head(**store);
  REQUIRE(head.ok());
  r.head = head->seq;
  for (std::uint64_t from = 1;;) {
    auto page = buoni::engine::read_entries(**store, from, 1000);
    REQUIRE(page.ok());
    if (page->empty()) break;
    for (const auto& e : *page) {
      r.hashes.emplace_back(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
      if (e.kind == buoni::engine::EntryKind::redeem) {
        r.redeemed[e.card] += e.amount_cents;
        ++r.redemptions;
      }
      from = e.seq + 1;
    }
  }
  return r;
}

}  // namespace

// A programme, a shop and 8 cards on a live server, and a thread that
// redeems on them (a new idempotency key each time) until stopped.
struct RedeemingShop {
  Served& w;
  std::string mkey;
  std::vector<std::string> cards;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> acked{0};
  std::thread thread;

  explicit RedeemingShop(Served& served) : w(served) {
    w.post("/v1/programmes", {{"id", "p1"},
                              {"name", "Buoni Live"},
                              {"budget_cents", 100'000'000},
                              {"valid_from", day_string(-1)},
                              {"valid_until", day_string(60)}});
    mkey = str_field(w.post("/v1/merchants", {{"id", "m1"},
                                              {"name", "Alimentari"},
                                              {"vat_number", valid_vat},
                                              {"programmes", json::array{"p1"}}}),
                     "api_key");
    for (int i = 0; i < 8; ++i) {
      cards.push_back(str_field(w.post("/v1/cards", {{"programme", "p1"},
                                                     {"beneficiary_ref", "b" + std::to_string(i)},
                                                     {"amount_cents", 1'000'000}}),
                                "number"));
    }
    thread = std::thread([this] { redeem_until_stopped(); });
    while (acked < 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~RedeemingShop() { finish(); }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  void redeem_until_stopped() {
    HttpClient client(w.served->port);
    for (int i = 0; !stop; ++i) {
      const std::string body =
          json::serialize(json::object{{"card", cards[static_cast<std::size_t>(i) % cards.size()]},
                                       {"amount_cents", 1 + i % 7}});
      Reply r = client.call(
          "POST", "/v1/redemptions", body, mkey,
          {{"Content-Type", "application/json"}, {"Idempotency-Key", "k" + std::to_string(i)}});
      if (r.status == 201) ++acked;
    }
  }
};

TEST_CASE("audit, export and verify-export of a live server during redemptions") {
  Served w;
  RedeemingShop shop(w);
  const std::string file = w.tmp.path + "/ledger.jsonl";
  std::uint64_t last_entries = 0;
  for (int round = 0; round < 3; ++round) {
    const std::int64_t before = shop.acked;
    Ran a = buoni_run({"--data", w.dir, "--json", "audit"});
    INFO("audit: exit " << a.rc << " " << a.out << a.err);
    REQUIRE(a.rc == 0);
    json::object report = parse_object(a.out);
    CHECK(report.at("ok").as_bool());
    const auto entries = std::uint64_t(int_field(report, "entries"));
    CHECK(entries >= last_entries);  // each audit sees the ledger as of a later moment
    CHECK(entries >= std::uint64_t(before));
    last_entries = entries;

    Ran x = buoni_run({"--data", w.dir, "export", "--format", "jsonl", "--out", file});
    INFO("export: exit " << x.rc << " " << x.out << x.err);
    REQUIRE(x.rc == 0);
    Ran v = buoni_run({"verify-export", file, "--public-keys", w.dir + "/keys/public-keys"});
    INFO("verify-export: exit " << v.rc << " " << v.out << v.err);
    CHECK(v.rc == 0);
    CHECK(contains(v.out, "entries verified"));
  }
  const std::int64_t during = shop.acked;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(shop.acked > during);  // the server was still writing after the audits
  shop.finish();
  // Once the writes stop, the audit counts every acknowledged redemption.
  Ran a = ok({"--data", w.dir, "--json", "audit"});
  const Restored source = read_store(w.dir + "/db");
  CHECK(std::uint64_t(int_field(parse_object(a.out), "entries")) == source.head);
  CHECK(source.redemptions == std::uint64_t(shop.acked.load()));
}

TEST_CASE("backup of a live server during redemptions; restore; audit; prefix") {
  Served w;
  RedeemingShop shop(w);
  const std::vector<std::string>& cards = shop.cards;
  std::atomic<std::int64_t>& acked = shop.acked;
  const std::int64_t before = acked;
  const std::string backup = w.tmp.sub("backup");
  Ran b = buoni_run({"--data", w.dir, "--json", "backup", "--to", backup});
  const std::int64_t after = acked;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  shop.finish();
  INFO("backup: exit " << b.rc << " " << b.out << b.err);
  REQUIRE(b.rc == 0);
  CHECK(after > before);  // the server wrote while the backup ran
  json::object bj = parse_object(b.out);
  CHECK(bj.at("audit_ok").as_bool());

  // What a backup holds: the store, the keys (secrets stay 0600), BACKUP.
  CHECK(fs::exists(backup + "/db/CURRENT"));
  CHECK(fs::exists(backup + "/BACKUP"));
  CHECK(fs::exists(backup + "/keys/public-keys"));
  for (const char* secret : {"/keys/signing-1.key", "/keys/pin-pepper"}) {
    struct stat st {};
    REQUIRE(::stat((backup + secret).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  const std::string restored = w.tmp.sub("restored");
  ok({"--data", restored, "restore", "--from", backup});
  ok({"--data", restored, "audit"});
  w.served->process->stop();
  w.served.reset();

  const Restored r = read_store(restored + "/db");
  const Restored source = read_store(w.dir + "/db");
  // A consistent prefix: the restored ledger is the source's first r.head entries.
  CHECK(r.head == std::uint64_t(int_field(bj, "head_seq")));
  REQUIRE(r.hashes.size() == r.head);
  REQUIRE(r.head <= source.head);
  for (std::uint64_t i = 0; i < r.head; ++i) CHECK(r.hashes[i] == source.hashes[i]);
  CHECK(std::int64_t(r.redemptions) >= before);
  CHECK(std::int64_t(r.redemptions) <= after);
  CHECK(source.redemptions == std::uint64_t(acked.load()));
  // Every card: issued - its redemptions in the restored ledger = its restored balance.
  std::int64_t total_checked = 0;
  for (const std::string& number : cards) {
    Ran c = ok({"--data", restored, "--json", "card", "show", "--card", number});
    json::object card = parse_object(c.out);
    const std::string id = str_field(card, "id");
    auto it = r.redeemed.find(id);
    const std::int64_t spent = it == r.redeemed.end() ? 0 : it->second;
    CHECK(int_field(card, "balance_cents") == 1'000'000 - spent);
    total_checked += spent;
  }
  CHECK(total_checked > 0);

  {  // restore onto an existing store: refused without --force, done with it
    Ran again = buoni_run({"--data", restored, "restore", "--from", backup});
    CHECK(again.rc == 1);
    CHECK(contains(again.err, "--force"));
    ok({"--data", restored, "restore", "--from", backup, "--force"});
    ok({"--data", restored, "audit"});
    CHECK(read_store(restored + "/db").head == r.head);
  }
  {  // restore --force onto a store a server has open: exit 3

    ServedDir on_restored(BUONI_BIN, restored);
    Ran busy = buoni_run({"--data", restored, "restore", "--from", backup, "--force"});
    CHECK(busy.rc == 3);
    on_restored.process->stop();
  }
  {  // backup into a non-empty directory: refused, exit 1
    Ran again = buoni_run({"--data", w.dir, "backup", "--to", backup});
    CHECK(again.rc == 1);
    CHECK(fs::exists(backup + "/BACKUP"));
  }
  {  // restore from something that is not a backup: usage error, exit 2
    Ran bad = buoni_run({"--data", w.tmp.sub("x"), "restore", "--from", w.dir});
    CHECK(bad.rc == 2);
  }
}
