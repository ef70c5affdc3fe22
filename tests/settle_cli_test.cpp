// `buoni reconcile` and `buoni settle` as users run them: a statement with
// every kind of mismatch (exit 1, each listed), a clean one (exit 0), a bad
// line (exit 2, named); a settlement's CSV, a second run ("already
// settled"), and the audit after; the same through a running server
// (settle --server, POST /v1/settlements) and the API's refusals.
#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/rocks_store.h"
#include "tests/server_support.h"
#include "tests/support.h"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using buoni::test::parse_object;
using buoni::test::Ran;
using buoni::test::read_file;
using buoni::test::str_field;

struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir((fs::temp_directory_path() / "buoni-settle-XXXXXX").string()) {}
};

Ran buoni_run(const std::vector<std::string>& args) {
  return buoni::test::run_program(BUONI_BIN, args);
}

Ran ok(const std::vector<std::string>& args) {
  Ran r = buoni_run(args);
  INFO("buoni exit " << r.rc << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.rc == 0);
  return r;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A data directory with p1, shop m1 and a card, and three redemptions today.
struct Shop {
  TempDir tmp;
  std::string dir = tmp.path + "/data";
  std::vector<std::string> sales;  // redemption ids: 1000, 2000, 3000 cents

  Shop() {
    ok({"--data", dir, "init"});
    ok({"programme", "create", "--data", dir, "--id", "p1", "--name", "Buoni", "--budget-cents",
        "100000", "--valid-from", buoni::test::day_string(-1), "--valid-until",
        buoni::test::day_string(30)});
    ok({"merchant", "add", "--data", dir, "--id", "m1", "--name", "Alimentari Uno", "--vat-number",
        "01234567897", "--programme", "p1"});
    json::object card = parse_object(ok({"card", "issue", "--data", dir, "--json", "--programme",
                                         "p1", "--beneficiary-ref", "f1", "--amount-cents", "9000"})
                                         .out);
    for (int i = 1; i <= 3; ++i) {
      json::object r =
          parse_object(ok({"redeem", "--data", dir, "--json", "--merchant", "m1", "--card",
                           str_field(card, "number"), "--amount-cents", std::to_string(i * 1000),
                           "--idempotency-key", "sale-" + std::to_string(i)})
                           .out);
      sales.push_back(str_field(r, "id"));
    }
  }
  Ran reconcile(const std::string& statement) const {
    const std::string today = buoni::test::day_string(0);
    return buoni_run({"reconcile", "--data", dir, "--json", "--from", today, "--to", today,
                      "--merchant", "m1", "--statement", statement});
  }
};

TEST_CASE("reconcile lists every kind of mismatch and exits 1; a clean statement exits 0") {
  Shop s;
  const std::string bad = s.tmp.sub("bad.csv");
  write(bad, "redemption_id,amount_cents,created_at\n" + s.sales[0] +
                 ",1000,2026-04-01T10:00:00Z\n" + s.sales[1] + ",2500,2026-04-01T10:00:00Z\n" +
                 "rd_NOTINTHELEDGER,700,2026-04-01\n");
  Ran r = s.reconcile(bad);
  INFO(r.out << r.err);
  CHECK(r.rc == 1);
  json::object out = parse_object(r.out);
  const json::object& st = out.at("statement").as_object();
  CHECK(st.at("matched").as_int64() == 1);
  std::map<std::string, std::string> kinds;  // redemption id -> kind
  for (const auto& m : st.at("mismatches").as_array()) {
    kinds[std::string(m.at("redemption_id").as_string())] = std::string(m.at("kind").as_string());
  }
  CHECK(kinds.size() == 3);
  CHECK(kinds[s.sales[1]] == "amount_differs");
  CHECK(kinds["rd_NOTINTHELEDGER"] == "missing_from_ledger");
  CHECK(kinds[s.sales[2]] == "missing_from_statement");
  const json::object& total = out.at("total").as_object();
  CHECK(total.at("net_cents").as_int64() == 6000);

  const std::string today = buoni::test::day_string(0);
  Ran text = buoni_run({"reconcile", "--data", s.dir, "--from", today, "--to", today, "--merchant",
                        "m1", "--statement", bad});
  CHECK(text.rc == 1);
  CHECK(buoni::test::contains(text.out, "missing from the ledger: rd_NOTINTHELEDGER"));
  CHECK(buoni::test::contains(text.out, "missing from the statement: " + s.sales[2]));
  CHECK(buoni::test::contains(text.out, "amount differs: " + s.sales[1]));

  const std::string clean = s.tmp.sub("clean.csv");
  write(clean, "redemption_id,amount_cents,created_at\n" + s.sales[0] + ",1000,2026-04-01\n" +
                   s.sales[1] + ",2000,2026-04-01\n" + s.sales[2] + ",3000,2026-04-01\n");
  Ran good = s.reconcile(clean);
  INFO(good.out << good.err);
  CHECK(good.rc == 0);
  CHECK(parse_object(good.out).at("clean").as_bool());

  const std::string broken = s.tmp.sub("broken.csv");
  write(broken, "redemption_id,amount_cents,created_at\n" + s.sales[0] +
                    ",1000,2026-04-01\nrd_X,12.50,2026-04-01\n");
  Ran usage = s.reconcile(broken);
  CHECK(usage.rc == 2);
  CHECK(buoni::test::contains(usage.err, "line 3"));
}

// Sales in March 2025 (two redemptions of shop m1, 1000 + 2500 cents), made
// in-process with a pinned clock on a fresh data directory; returns the
// admin key `init` printed.
std::string march_sales(const std::string& dir) {
  const std::string admin_key =
      str_field(parse_object(ok({"--data", dir, "--json", "init"}).out), "admin_key");
  auto key = buoni::load_signing_key(dir + "/keys/signing-1.key");
  REQUIRE(key.ok());
  buoni::storage::RocksOptions options;
  auto store = buoni::storage::open_primary(dir + "/db", options);
  REQUIRE(store.ok());
  const buoni::engine::Day mar10 = 20157;  // 2025-03-10
  buoni::engine::ManualClock clock(mar10 * buoni::engine::ms_per_day + 36'000'000);
  buoni::SystemRandom random;
  auto engine = buoni::engine::Engine::open(**store, *key, clock, random);
  REQUIRE(engine.ok());
  using namespace buoni::engine;  // NOLINT
  auto run = [&](Caller caller, Command command) {
    auto r = (*engine)->execute(Request{std::move(caller), "", std::move(command)});
    REQUIRE(r.ok());
    REQUIRE(r->outcome.ok());
    return r->outcome;
  };
  run(Caller::admin(), CreateProgramme{"p1", "Buoni", 100'000, mar10 - 9, mar10 + 300});
  AddMerchant m{"m1", "Alimentari, Uno", "01234567897", {"p1"}, {}};
  m.api_key_hash = buoni::blake2b_256("mk_test");
  run(Caller::admin(), m);
  buoni::CardId card =
      *buoni::parse_card_number(run(Caller::admin(), IssueCard{"p1", "f1", 9000}).card).id;
  run(Caller::merchant("m1"), Redeem{card, 1000});
  run(Caller::merchant("m1"), Redeem{card, 2500});
  (*engine)->stop();
  return admin_key;
}

const std::string expected_head =
    "merchant_id,name,vat_number,programme,amount_cents,count,first_seq,first_at,last_seq,"
    "last_at,ledger_seq\n";

TEST_CASE("settle writes the CSV, a second run says already settled, the audit passes") {
  TempDir tmp;
  const std::string dir = tmp.path + "/data";
  march_sales(dir);
  const std::string csv = tmp.sub("march.csv");
  Ran first = ok({"settle", "--data", dir, "--period", "2025-03", "--out", csv});
  CHECK(buoni::test::contains(first.out, "settled 2025-03"));
  std::string text = read_file(csv);
  CHECK(text.starts_with(expected_head));
  CHECK(buoni::test::contains(text, "m1,\"Alimentari, Uno\",01234567897,p1,3500,2,"));
  CHECK(buoni::test::count_of(text, "\n") == 2);
  fs::remove(csv);
  Ran again = ok({"settle", "--data", dir, "--from", "2025-03-01", "--to", "2025-03-31", "--out",
                  csv, "--json"});
  json::object j = parse_object(again.out);
  CHECK(str_field(j, "status") == "already_settled");
  CHECK(j.at("amount_cents").as_int64() == 3500);
  CHECK(read_file(csv) == text);
  ok({"audit", "--data", dir});
  Ran current = buoni_run({"settle", "--data", dir, "--from", buoni::test::day_string(0), "--to",
                           buoni::test::day_string(0)});
  CHECK(current.rc == 2);
}

TEST_CASE("settle --server: the same settlement through a running server; the API's refusals") {
  TempDir tmp;
  const std::string dir = tmp.path + "/data";
  const std::string admin_key = march_sales(dir);
  buoni::test::ServedDir served(BUONI_BIN, dir);
  const std::vector<std::string> remote = {"--server", served.url, "--key", admin_key};
  auto settle = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "settle");
    args.insert(args.end(), remote.begin(), remote.end());
    return buoni_run(args);
  };
  const std::string csv = tmp.sub("march.csv");
  Ran first = settle({"--period", "2025-03", "--out", csv});
  INFO("settle --server: exit " << first.rc << " " << first.out << first.err);
  REQUIRE(first.rc == 0);
  CHECK(buoni::test::contains(first.out, "settled 2025-03 (2025-03-01..2025-03-31)"));
  CHECK(buoni::test::contains(first.out, "m1 p1: 3500 cents, 2 operations"));
  const std::string text = read_file(csv);
  CHECK(text.starts_with(expected_head));
  CHECK(buoni::test::contains(text, "m1,\"Alimentari, Uno\",01234567897,p1,3500,2,"));

  Ran again = settle({"--from", "2025-03-01", "--to", "2025-03-31", "--out", csv, "--json"});
  REQUIRE(again.rc == 0);
  json::object j = parse_object(again.out);
  CHECK(str_field(j, "status") == "already_settled");
  CHECK(j.at("amount_cents").as_int64() == 3500);
  CHECK(read_file(csv) == text);
  // A period with no sales: settled, with no lines.
  Ran empty = settle({"--period", "2025-02", "--json"});
  REQUIRE(empty.rc == 0);
  CHECK(parse_object(empty.out).at("lines").as_array().empty());
  // The local mode cannot open a store the server holds: it says so (exit 3).
  CHECK(buoni_run({"settle", "--data", dir, "--period", "2025-04"}).rc == 3);

  buoni::test::HttpClient http(served.port);
  const std::vector<std::pair<std::string, std::string>> json_type = {
      {"Content-Type", "application/json"}};
  buoni::test::Reply r =
      http.call("POST", "/v1/settlements", R"({"from":"2025-03-31","to":"2025-03-01"})", admin_key,
                json_type);
  CHECK(r.status == 400);
  CHECK(buoni::test::contains(r.body, "invalid_field"));
  r = http.call("POST", "/v1/settlements", R"({"from":"2025-03-01","to":"2025-03-31"})", "mk_test",
                json_type);
  CHECK(r.status == 403);
  const std::string today = buoni::test::day_string(0);
  r = http.call("POST", "/v1/settlements", R"({"from":")" + today + R"(","to":")" + today + R"("})",
                admin_key, json_type);
  CHECK(r.status == 400);  // the period has not ended
  r = http.call("POST", "/v1/settlements", R"({"from":"2025-03-01","to":"2025-03-31","x":1})",
                admin_key, json_type);
  CHECK(r.status == 400);
  served.process->stop();
  ok({"audit", "--data", dir});
}

}  // namespace
