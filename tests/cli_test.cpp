// The `buoni` command as users and their scripts run it (API.md, "The buoni
// command"): the real binary, on fresh temporary data directories, checked by
// exit code (0 ok, 1 declined / audit finding, 2 usage error, 3 could not
// run), by stderr (a failure is ONE line) and by the --json objects.
//
// Every bad input must change nothing: the test compares a snapshot (audit
// --json counts, card, programme, shop list) before and after.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/random.h"
#include "support.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using buoni::test::contains;
using buoni::test::count_of;
using buoni::test::day_string;
using buoni::test::error_code;
using buoni::test::int_field;
using buoni::test::one_line;
using buoni::test::parse_object;
using buoni::test::Ran;
using buoni::test::read_file;
using buoni::test::run_program;
using buoni::test::str_field;

std::string describe(const std::vector<std::string>& args, const Ran& r) {
  std::string s = "$ buoni";
  for (const auto& a : args) s += " '" + a + "'";
  s += "\n  exit " + std::to_string(r.rc) + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
  return s;
}

Ran run_buoni(const std::vector<std::string>& args) {
  return run_program(BUONI_BIN, args);
}

// Runs buoni and requires exit 0.
Ran ok(const std::vector<std::string>& args) {
  Ran r = run_buoni(args);
  INFO(describe(args, r));
  REQUIRE(r.rc == 0);
  return r;
}

std::string listing(const std::string& dir) {
  std::string s;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) s += e.path().filename().string() + "\n";
  return s;
}

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir((fs::temp_directory_path() / "buoni-cli-XXXXXX").string()) {}
};

constexpr std::int64_t budget_cents = 100'000;
constexpr std::int64_t card_cents = 5'000;
const std::string valid_vat = "01234567897";
const std::string other_valid_vat = "07654321012";

// A data directory with programme p1 (budget 100000), shop m1 and card 5000.
struct World {
  TempDir tmp;
  std::string dir = tmp.path + "/data";
  std::string card;  // its number, XXXX-XXXX-XXXX-XXXX-C
  std::string admin_key;

  World() {
    json::object init = parse_object(ok({"--data", dir, "--json", "init"}).out);
    admin_key = str_field(init, "admin_key");
    ok({"programme", "create", "--data", dir, "--id", "p1", "--name", "Buoni Test",
        "--budget-cents", std::to_string(budget_cents), "--valid-from", day_string(-1),
        "--valid-until", day_string(60), "--idempotency-key", "create-p1"});
    ok({"merchant", "add", "--data", dir, "--id", "m1", "--name", "Alimentari Uno", "--vat-number",
        valid_vat, "--programme", "p1"});
    json::object issued = parse_object(
        ok({"card", "issue", "--data", dir, "--json", "--programme", "p1", "--beneficiary-ref",
            "famiglia-1", "--amount-cents", std::to_string(card_cents)})
            .out);
    card = str_field(issued, "number");
  }

  Ran run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--data", dir});
    return run_buoni(args);
  }

  json::object card_json(const std::string& number) const {
    std::vector<std::string> args{"card", "show", "--card", number, "--json"};
    Ran r = run(args);
    INFO(describe(args, r));
    REQUIRE(r.rc == 0);
    return parse_object(r.out);
  }
  std::int64_t balance(const std::string& number) const {
    return int_field(card_json(number), "balance_cents");
  }
  std::int64_t balance() const { return balance(card); }

  json::object programme() const {
    std::vector<std::string> args{"programme", "show", "--id", "p1", "--json"};
    Ran r = run(args);
    INFO(describe(args, r));
    REQUIRE(r.rc == 0);
    return parse_object(r.out);
  }

  json::object audit() const {
    std::vector<std::string> args{"audit", "--json"};
    Ran r = run(args);
    INFO(describe(args, r));
    REQUIRE(r.rc == 0);
    return parse_object(r.out);
  }

  // Everything a bad command could have changed, as one comparable string.
  std::string snapshot() const {
    json::object a = audit();
    std::string s = "entries " + std::to_string(int_field(a, "entries")) + " checkpoints " +
                    std::to_string(int_field(a, "checkpoints")) + " cards " +
                    std::to_string(int_field(a, "cards")) + " programmes " +
                    std::to_string(int_field(a, "programmes")) + "\n";
    s += json::serialize(card_json(card)) + "\n" + json::serialize(programme()) + "\n";
    Ran shops = run({"merchant", "list", "--json"});
    REQUIRE(shops.rc == 0);
    return s + shops.out;
  }
};

// The same number with its check symbol changed to another valid one.
std::string wrong_check(const std::string& number) {
  const std::string check_alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
  char last = number.back();
  auto at = check_alphabet.find(last);
  REQUIRE(at != std::string::npos);
  std::string bad = number;
  bad.back() = check_alphabet[(at + 1) % check_alphabet.size()];
  return bad;
}

// A well-formed number of a card that does not exist.
std::string unknown_card_number() {
  buoni::SystemRandom random;
  return buoni::format_card_number(buoni::CardId::random(random));
}

// Runs a command that must be refused as a usage error: exit 2, one line on
// stderr, and (checked by the caller) nothing changed.
void expect_usage_error(const World& w, const std::vector<std::string>& args) {
  Ran r = w.run(args);
  INFO(describe(args, r));
  CHECK(r.rc == 2);
  CHECK(one_line(r.err));
  CHECK(!contains(r.out, "mk_"));
}

}  // namespace

TEST_CASE("a programme, a shop and a card can be made; a redemption lowers the balance") {
  World w;
  CHECK(w.admin_key.starts_with("ak_"));
  CHECK(w.admin_key.size() == 3 + 64);

  json::object p = w.programme();
  CHECK(str_field(p, "id") == "p1");
  CHECK(int_field(p, "budget_cents") == budget_cents);
  CHECK(int_field(p, "issued_cents") == card_cents);
  CHECK(int_field(p, "cards") == 1);
  CHECK(str_field(p, "status") == "open");

  Ran shops = ok({"merchant", "list", "--data", w.dir, "--json"});
  CHECK(contains(shops.out, "\"m1\""));
  CHECK(!contains(shops.out, "mk_"));  // the key is never stored, never listed

  json::object c = w.card_json(w.card);
  CHECK(str_field(c, "number") == w.card);
  CHECK(str_field(c, "status") == "active");
  CHECK(int_field(c, "balance_cents") == card_cents);
  const std::int64_t entries_before = int_field(w.audit(), "entries");

  // --json and --data after the subcommand, as the help shows them.
  Ran r = ok({"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1250",
              "--idempotency-key", "sale-1", "--data", w.dir, "--json"});
  json::object answer = parse_object(r.out);
  CHECK(str_field(answer, "id").starts_with("rd_"));
  CHECK(int_field(answer, "amount_cents") == 1250);
  CHECK(int_field(answer, "balance_cents") == card_cents - 1250);
  CHECK(w.balance() == card_cents - 1250);
  CHECK(int_field(w.programme(), "redeemed_cents") == 1250);
  CHECK(int_field(w.audit(), "entries") == entries_before + 1);

  // The text form says what happened, in one line on stdout and nothing on stderr.
  Ran text = ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", w.card, "--amount-cents",
                 "250", "--idempotency-key", "sale-2"});
  CHECK(contains(text.out, "250"));
  CHECK(text.err.empty());
  CHECK(w.balance() == card_cents - 1500);

  // The card id (16 symbols, no check) is accepted as well as the number, and
  // a number typed lower-case with spaces instead of hyphens.
  const std::string id = str_field(c, "id");
  CHECK(w.balance(id) == card_cents - 1500);
  std::string typed = w.card;
  for (char& ch : typed) {
    ch = ch == '-' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  CHECK(w.balance(typed) == card_cents - 1500);

  Ran audit = ok({"--data", w.dir, "audit"});
  CHECK(contains(audit.out, "ok"));
  json::object a = w.audit();
  CHECK(a.at("ok") == json::value(true));
  CHECK(a.at("findings").as_array().empty());
}

TEST_CASE("the same idempotency key replays the first answer; another request under it conflicts") {
  World w;
  const std::vector<std::string> sale{"redeem", "--merchant",     "m1",  "--card",
                                      w.card,   "--amount-cents", "700", "--idempotency-key",
                                      "pos-42", "--json"};
  Ran first = w.run(sale);
  INFO(describe(sale, first));
  REQUIRE(first.rc == 0);
  CHECK(w.balance() == card_cents - 700);
  const std::string snapshot = w.snapshot();

  Ran again = w.run(sale);
  INFO(describe(sale, again));
  CHECK(again.rc == 0);
  CHECK(again.out == first.out);  // byte for byte: same id, time, ledger seq
  CHECK(w.snapshot() == snapshot);

  std::vector<std::string> text_args(sale.begin(), sale.end() - 1);  // without --json
  Ran text = w.run(text_args);
  INFO(describe(text_args, text));
  CHECK(text.rc == 0);
  CHECK(contains(text.out + text.err, "replayed"));
  CHECK(contains(text.out, str_field(parse_object(first.out), "id")));
  CHECK(w.snapshot() == snapshot);

  // Same key, another amount: refused, nothing moves.
  std::vector<std::string> other = sale;
  other[6] = "701";
  Ran conflict = w.run(other);
  INFO(describe(other, conflict));
  CHECK(conflict.rc == 1);
  CHECK(error_code(conflict.out) == "idempotency_conflict");
  CHECK(one_line(conflict.err));
  CHECK(w.snapshot() == snapshot);

  // Same key, another card: also a conflict.
  std::string second_card =
      str_field(parse_object(ok({"card", "issue", "--data", w.dir, "--json", "--programme", "p1",
                                 "--beneficiary-ref", "famiglia-2", "--amount-cents", "900"})
                                 .out),
                "number");
  std::vector<std::string> other_card = sale;
  other_card[4] = second_card;
  Ran conflict2 = w.run(other_card);
  INFO(describe(other_card, conflict2));
  CHECK(conflict2.rc == 1);
  CHECK(error_code(conflict2.out) == "idempotency_conflict");
  CHECK(w.balance(second_card) == 900);

  // Admin commands replay too: the programme create of the setup, and a card
  // issue retried after a lost answer gives the same card, not a second one.
  const std::vector<std::string> create{"programme",
                                        "create",
                                        "--id",
                                        "p1",
                                        "--name",
                                        "Buoni Test",
                                        "--budget-cents",
                                        std::to_string(budget_cents),
                                        "--valid-from",
                                        day_string(-1),
                                        "--valid-until",
                                        day_string(60),
                                        "--idempotency-key",
                                        "create-p1"};
  Ran created = w.run(create);
  INFO(describe(create, created));
  CHECK(created.rc == 0);
  CHECK(contains(created.out + created.err, "replayed"));
  std::vector<std::string> bigger = create;
  bigger[7] = std::to_string(budget_cents + 1);
  Ran bigger_run = w.run(bigger);
  INFO(describe(bigger, bigger_run));
  CHECK(bigger_run.rc == 1);
  CHECK(int_field(w.programme(), "budget_cents") == budget_cents);
  const std::vector<std::string> issue{"card",
                                       "issue",
                                       "--programme",
                                       "p1",
                                       "--beneficiary-ref",
                                       "famiglia-3",
                                       "--amount-cents",
                                       "300",
                                       "--idempotency-key",
                                       "issue-f3",
                                       "--json"};
  Ran issued1 = w.run(issue);
  Ran issued2 = w.run(issue);
  INFO(describe(issue, issued1) << "\n" << describe(issue, issued2));
  CHECK(issued1.rc == 0);
  CHECK(issued2.rc == 0);
  CHECK(issued1.out == issued2.out);
  CHECK(int_field(w.programme(), "cards") == 3);

  // Keys are per shop: another shop may use the same key for its own sale.
  ok({"merchant", "add", "--data", w.dir, "--id", "m2", "--name", "Forno Due", "--vat-number",
      other_valid_vat, "--programme", "p1"});
  std::vector<std::string> m2_sale = sale;
  m2_sale[2] = "m2";
  Ran m2 = w.run(m2_sale);
  INFO(describe(m2_sale, m2));
  CHECK(m2.rc == 0);
  CHECK(str_field(parse_object(m2.out), "id") != str_field(parse_object(first.out), "id"));
  CHECK(w.balance() == card_cents - 1400);
  CHECK(w.audit().at("ok") == json::value(true));
}

TEST_CASE("declines: exit 1, the --json error code, one line on stderr, nothing changes") {
  World w;
  ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1000",
      "--idempotency-key", "s1"});
  const std::int64_t balance = w.balance();
  REQUIRE(balance == card_cents - 1000);
  std::string snapshot = w.snapshot();

  {
    std::vector<std::string> args{"redeem",
                                  "--merchant",
                                  "m1",
                                  "--card",
                                  w.card,
                                  "--amount-cents",
                                  std::to_string(balance + 1),
                                  "--idempotency-key",
                                  "too-much",
                                  "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "insufficient_funds");
    CHECK(int_field(parse_object(r.out).at("error").as_object(), "balance_cents") == balance);
    CHECK(one_line(r.err));
    CHECK(w.balance() == balance);
    CHECK(w.snapshot() == snapshot);
  }
  {
    // Exactly the balance is fine.
    ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", w.card, "--amount-cents",
        std::to_string(balance), "--idempotency-key", "all-of-it"});
    CHECK(w.balance() == 0);
    snapshot = w.snapshot();
  }
  {
    const std::int64_t unissued = budget_cents - card_cents;
    std::vector<std::string> args{"card",
                                  "issue",
                                  "--programme",
                                  "p1",
                                  "--beneficiary-ref",
                                  "famiglia-9",
                                  "--amount-cents",
                                  std::to_string(unissued + 1),
                                  "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "budget_exceeded");
    CHECK(one_line(r.err));
    CHECK(w.snapshot() == snapshot);
    // Loading a card past the budget is refused the same way.
    std::vector<std::string> load{
        "card", "load", "--card", w.card, "--amount-cents", std::to_string(unissued + 1), "--json"};
    Ran l = w.run(load);
    INFO(describe(load, l));
    CHECK(l.rc == 1);
    CHECK(error_code(l.out) == "budget_exceeded");
    CHECK(w.snapshot() == snapshot);
    // The whole remaining budget still fits.
    ok({"--data", w.dir, "card", "issue", "--programme", "p1", "--beneficiary-ref", "famiglia-9",
        "--amount-cents", std::to_string(unissued)});
    CHECK(int_field(w.programme(), "unissued_cents") == 0);
    snapshot = w.snapshot();
  }
  {
    // One card per beneficiary and programme.
    std::vector<std::string> args{
        "card",       "issue",          "--programme", "p1",    "--beneficiary-ref",
        "famiglia-1", "--amount-cents", "0",           "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "already_issued");
    CHECK(w.snapshot() == snapshot);
  }
  {
    std::vector<std::string> args{"programme", "show", "--id", "no-such-programme", "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "not_found");
    CHECK(one_line(r.err));
  }
  {
    std::vector<std::string> args{"card", "show", "--card", unknown_card_number(), "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "unknown_card");
    CHECK(one_line(r.err));
    // And without --json: the one line names the reason.
    args.pop_back();
    Ran t = w.run(args);
    INFO(describe(args, t));
    CHECK(t.rc == 1);
    CHECK(one_line(t.err));
    CHECK(contains(t.err, "unknown_card"));
    CHECK(t.out.empty());
  }
  {
    std::vector<std::string> args{
        "redeem", "--merchant",        "m1",    "--card", unknown_card_number(), "--amount-cents",
        "1",      "--idempotency-key", "ghost", "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "unknown_card");
    CHECK(w.snapshot() == snapshot);
  }
  {
    // A shop that does not exist may not redeem.
    std::vector<std::string> args{"redeem", "--merchant",     "nobody", "--card",
                                  w.card,   "--amount-cents", "1",      "--idempotency-key",
                                  "x1",     "--json"};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(error_code(r.out) == "forbidden");
    CHECK(w.snapshot() == snapshot);
  }
  CHECK(w.audit().at("ok") == json::value(true));
}

TEST_CASE("blocked and replaced cards") {
  World w;
  ok({"--data", w.dir, "card", "load", "--card", w.card, "--amount-cents", "500"});
  CHECK(w.balance() == card_cents + 500);
  json::object blocked =
      parse_object(ok({"--data", w.dir, "--json", "card", "block", "--card", w.card}).out);
  CHECK(str_field(blocked, "status") == "blocked");
  Ran r = w.run({"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1",
                 "--idempotency-key", "b1", "--json"});
  CHECK(r.rc == 1);
  CHECK(error_code(r.out) == "card_blocked");
  CHECK(w.balance() == card_cents + 500);
  ok({"--data", w.dir, "card", "unblock", "--card", w.card});
  ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1",
      "--idempotency-key", "b2"});
  json::object replaced =
      parse_object(ok({"--data", w.dir, "--json", "card", "replace", "--card", w.card}).out);
  const std::string fresh = str_field(replaced, "number");
  CHECK(fresh != w.card);
  CHECK(w.balance(fresh) == card_cents + 499);
  CHECK(w.balance() == 0);
  CHECK(str_field(w.card_json(w.card), "status") == "revoked");
  Ran old = w.run({"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1",
                   "--idempotency-key", "b3", "--json"});
  CHECK(old.rc == 1);
  CHECK(error_code(old.out) == "card_revoked");
  ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", fresh, "--amount-cents", "1",
      "--idempotency-key", "b4"});
  CHECK(w.balance(fresh) == card_cents + 498);
  CHECK(w.audit().at("ok") == json::value(true));
}

TEST_CASE("bad input: exit 2, one line on stderr, nothing changes") {
  World w;
  ok({"--data", w.dir, "redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "100",
      "--idempotency-key", "s1"});
  const std::string snapshot = w.snapshot();
  const std::string bad_check = wrong_check(w.card);
  REQUIRE(bad_check != w.card);
  auto redeem = [&](const std::string& card, const std::string& amount, const std::string& key) {
    return std::vector<std::string>{"redeem", "--merchant",     "m1",   "--card",
                                    card,     "--amount-cents", amount, "--idempotency-key",
                                    key};
  };

  SUBCASE("unknown flags and commands") {
    std::vector<std::string> args = redeem(w.card, "10", "u1");
    args.push_back("--bogus");
    expect_usage_error(w, args);
    expect_usage_error(w, {"card", "show", "--card", w.card, "--frobnicate"});
    expect_usage_error(w, {"card", "issue", "--programme", "p1", "--beneficiary-ref", "x",
                           "--amount-cents", "10", "--amount", "10"});
    expect_usage_error(w, {"frobnicate"});
    expect_usage_error(w, {"card", "frobnicate"});
    expect_usage_error(w, {});
  }
  SUBCASE("malformed amounts") {
    for (const std::string amount : {"12.5", "-3", "1e9", "abc", "", "+5", " 12", "12 ", "0x10",
                                     "10000001", "0", "99999999999999999999"}) {
      CAPTURE(amount);
      expect_usage_error(w, redeem(w.card, amount, "a1"));
      expect_usage_error(w, {"card", "load", "--card", w.card, "--amount-cents", amount});
      if (amount != "0") {  // a card may be issued empty
        expect_usage_error(w, {"card", "issue", "--programme", "p1", "--beneficiary-ref",
                               "famiglia-2", "--amount-cents", amount});
      }
    }
    for (const std::string budget :
         {"12.5", "-3", "1e9", "abc", "", "+5", " 12", "0", "100000000001"}) {
      CAPTURE(budget);
      expect_usage_error(
          w, {"programme", "create", "--id", "p2", "--name", "P2", "--budget-cents", budget,
              "--valid-from", day_string(0), "--valid-until", day_string(10)});
    }
    // --flag=value spelling reaches the same check.
    expect_usage_error(w, {"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents=-3",
                           "--idempotency-key", "a2"});
  }
  SUBCASE("card numbers") {
    expect_usage_error(w, redeem(bad_check, "10", "c1"));
    expect_usage_error(w, {"card", "show", "--card", bad_check});
    expect_usage_error(w, {"card", "load", "--card", bad_check, "--amount-cents", "10"});
    expect_usage_error(w, {"card", "block", "--card", bad_check});
    // 15 symbols (16 without the check symbol would be the card's bare id: valid).
    expect_usage_error(w, redeem(w.card.substr(0, w.card.size() - 3), "10", "c2"));
    expect_usage_error(w, redeem(w.card + "7", "10", "c3"));  // too long
    expect_usage_error(w, redeem("", "10", "c4"));
    std::string with_bad_char = w.card;
    with_bad_char[0] = '!';
    expect_usage_error(w, redeem(with_bad_char, "10", "c5"));
  }
  SUBCASE("dates") {
    auto create = [&](const std::string& from, const std::string& until) {
      return std::vector<std::string>{"programme",    "create", "--id",           "p2",
                                      "--name",       "P2",     "--budget-cents", "1000",
                                      "--valid-from", from,     "--valid-until",  until};
    };
    expect_usage_error(w, create("2026-02-30", "2026-12-31"));
    expect_usage_error(w, create("2026-01-01", "2026-02-30"));
    expect_usage_error(w, create("2025-02-29", "2026-12-31"));  // not a leap year
    expect_usage_error(w, create("2026-13-01", "2026-12-31"));
    expect_usage_error(w, create("2026-1-1", "2026-12-31"));
    expect_usage_error(w, create("01/02/2026", "2026-12-31"));
    expect_usage_error(w, create("tomorrow", "2026-12-31"));
    expect_usage_error(w, create("", "2026-12-31"));
    expect_usage_error(w, create("2026-12-31", "2026-01-01"));  // ends before it starts
  }
  SUBCASE("VAT numbers") {
    auto add = [&](const std::string& vat) {
      return std::vector<std::string>{"merchant", "add",          "--id", "m9",          "--name",
                                      "Shop",     "--vat-number", vat,    "--programme", "p1"};
    };
    std::string wrong_digit = valid_vat;
    wrong_digit.back() =
        wrong_digit.back() == '0' ? '1' : static_cast<char>(wrong_digit.back() - 1);
    for (const std::string& vat :
         {wrong_digit, std::string("0123456789"), std::string("012345678971"),
          std::string("0123456789X"), std::string(""), std::string("IT0123456789")}) {
      CAPTURE(vat);
      expect_usage_error(w, add(vat));
    }
  }
  SUBCASE("other malformed values") {
    expect_usage_error(w, redeem(w.card, "10", "bad key!"));
    expect_usage_error(w, redeem(w.card, "10", std::string(65, 'k')));
    expect_usage_error(w, redeem(w.card, "10", ""));
    expect_usage_error(
        w, {"programme", "create", "--id", "bad id!", "--name", "P2", "--budget-cents", "1000",
            "--valid-from", day_string(0), "--valid-until", day_string(10)});
    expect_usage_error(
        w, {"card", "issue", "--programme", "p1", "--beneficiary-ref", "", "--amount-cents", "10"});
  }
  SUBCASE("missing required flags") {
    expect_usage_error(w, {"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "10"});
    expect_usage_error(w,
                       {"redeem", "--merchant", "m1", "--card", w.card, "--idempotency-key", "r1"});
    expect_usage_error(
        w, {"redeem", "--card", w.card, "--amount-cents", "10", "--idempotency-key", "r2"});
    expect_usage_error(w, {"card", "issue", "--programme", "p1", "--beneficiary-ref", "f"});
    expect_usage_error(w, {"card", "show"});
    expect_usage_error(w, {"programme", "create", "--id", "p2", "--name", "P2", "--valid-from",
                           day_string(0), "--valid-until", day_string(10)});
    expect_usage_error(w, {"programme", "show"});
    expect_usage_error(w, {"merchant", "add", "--id", "m9", "--name", "Shop", "--programme", "p1"});
    expect_usage_error(
        w, {"merchant", "add", "--id", "m9", "--name", "Shop", "--vat-number", other_valid_vat});
    expect_usage_error(w, {"programme"});
  }
  SUBCASE("--json does not turn a usage error into something else") {
    std::vector<std::string> args = redeem(w.card, "12.5", "j1");
    args.push_back("--json");
    expect_usage_error(w, args);
  }
  CHECK(w.snapshot() == snapshot);
}

TEST_CASE("a missing data directory is a usage error and is not created") {
  TempDir tmp;
  const std::string missing = tmp.path + "/missing";
  const std::string card = unknown_card_number();
  const std::vector<std::vector<std::string>> commands{
      {"card", "issue", "--programme", "p1", "--beneficiary-ref", "f", "--amount-cents", "10"},
      {"card", "show", "--card", card},
      {"card", "load", "--card", card, "--amount-cents", "10"},
      {"card", "block", "--card", card},
      {"redeem", "--merchant", "m1", "--card", card, "--amount-cents", "10", "--idempotency-key",
       "k1"},
      {"programme", "create", "--id", "p1", "--name", "P", "--budget-cents", "1000", "--valid-from",
       day_string(0), "--valid-until", day_string(10)},
      {"programme", "show", "--id", "p1"},
      {"merchant", "add", "--id", "m1", "--name", "Shop", "--vat-number", valid_vat, "--programme",
       "p1"},
      {"merchant", "list"},
      {"audit"},
      {"audit", "--json"},
  };
  for (const std::string& dir : {missing, tmp.path /* exists, but holds no store */}) {
    for (auto args : commands) {
      args.insert(args.begin(), {"--data", dir});
      Ran r = run_buoni(args);
      INFO(describe(args, r));
      CHECK(r.rc == 2);
      CHECK(one_line(r.err));
      CHECK(!fs::exists(missing));
      CHECK(listing(tmp.path).empty());
    }
  }
}

TEST_CASE("init twice: the second fails, changes nothing and prints no new admin key") {
  World w;
  const std::string key_file = w.dir + "/keys/signing-1.key";
  const std::string key_bytes = read_file(key_file);
  REQUIRE(!key_bytes.empty());
  const std::string keys_before = listing(w.dir + "/keys");
  const std::string snapshot = w.snapshot();
  for (bool as_json : {false, true}) {
    std::vector<std::string> args{"--data", w.dir, "init"};
    if (as_json) args.push_back("--json");
    Ran r = run_buoni(args);
    INFO(describe(args, r));
    CHECK(r.rc != 0);
    CHECK(r.rc != 3);
    CHECK(one_line(r.err));
    CHECK(!contains(r.out + r.err, "ak_"));
    CHECK(!contains(r.out, "admin_key"));
    if (as_json) CHECK(error_code(r.out) == "already_exists");
    CHECK(read_file(key_file) == key_bytes);
    CHECK(listing(w.dir + "/keys") == keys_before);
    CHECK(w.snapshot() == snapshot);
  }
}

TEST_CASE("merchant add prints the API key once; a replay does not print it again") {
  World w;
  Ran text = ok({"--data", w.dir, "merchant", "add", "--id", "m2", "--name", "Forno Due",
                 "--vat-number", other_valid_vat, "--programme", "p1"});
  CHECK(count_of(text.out, "mk_") == 1);
  {
    auto at = text.out.find("mk_");
    REQUIRE(at != std::string::npos);
    std::string key = text.out.substr(at, 3 + 64);
    CHECK(key.find_first_not_of("0123456789abcdef", 3) == std::string::npos);
  }

  const std::vector<std::string> add{
      "--data",      w.dir,    "merchant",          "add",          "--id",
      "m3",          "--name", "Macelleria Tre",    "--vat-number", "IT" + valid_vat,
      "--programme", "p1",     "--idempotency-key", "add-m3",       "--json"};
  Ran first = run_buoni(add);
  INFO(describe(add, first));
  REQUIRE(first.rc == 0);
  json::object created = parse_object(first.out);
  const std::string api_key = str_field(created, "api_key");
  CHECK(api_key.starts_with("mk_"));
  CHECK(api_key.size() == 3 + 64);
  CHECK(str_field(created, "id") == "m3");
  CHECK(count_of(first.out, "mk_") == 1);
  CHECK(first.err.empty());

  Ran shops = ok({"--data", w.dir, "merchant", "list", "--json"});
  CHECK(!contains(shops.out, "mk_"));
  CHECK(!contains(shops.out, "api_key"));
  const std::string snapshot = w.snapshot();

  // The POS-style retry of the same request: the key is not shown again
  // (only its hash exists), and per API.md the answer is the first one.
  for (bool as_json : {true, false}) {
    std::vector<std::string> args = add;
    if (!as_json) args.pop_back();
    Ran again = run_buoni(args);
    INFO(describe(args, again));
    CHECK(!contains(again.out + again.err, "mk_"));
    CHECK(!contains(again.out + again.err, api_key));
    CHECK(!contains(again.out, "api_key"));
    CHECK(again.rc == 0);  // a replay of an identical request is not a conflict
    if (as_json) {
      CHECK(error_code(again.out) == "");
    } else {
      CHECK(contains(again.out + again.err, "replayed"));
    }
    CHECK(w.snapshot() == snapshot);
  }

  // A different request under the same key is a conflict, and prints no key.
  std::vector<std::string> other = add;
  other[7] = "Macelleria Quattro";
  Ran conflict = run_buoni(other);
  INFO(describe(other, conflict));
  CHECK(conflict.rc == 1);
  CHECK(error_code(conflict.out) == "idempotency_conflict");
  CHECK(!contains(conflict.out + conflict.err, "mk_"));
  CHECK(w.snapshot() == snapshot);

  // A second shop with the same id: refused, no key printed.
  Ran dup = w.run({"merchant", "add", "--id", "m3", "--name", "Other", "--vat-number",
                   other_valid_vat, "--programme", "p1", "--json"});
  CHECK(dup.rc == 1);
  CHECK(error_code(dup.out) == "already_exists");
  CHECK(!contains(dup.out + dup.err, "mk_"));
  CHECK(w.snapshot() == snapshot);
}

TEST_CASE("demo --no-serve seeds a fresh directory, and again") {
  TempDir tmp;
  const std::string dir = tmp.path + "/demo";
  Ran first = run_buoni({"--data", dir, "demo", "--no-serve"});
  INFO(describe({"demo"}, first));
  CHECK(first.rc == 0);
  CHECK(contains(first.out, "20 cards"));
  Ran second = run_buoni({"demo", "--no-serve", "--data", dir});
  INFO(describe({"demo"}, second));
  CHECK(second.rc == 0);
  CHECK(!contains(second.out, "ak_"));  // no second init, no new admin key
  Ran audit = run_buoni({"--data", dir, "audit", "--json"});
  INFO(describe({"audit"}, audit));
  CHECK(audit.rc == 0);
  json::object a = parse_object(audit.out);
  CHECK(a.at("ok") == json::value(true));
  CHECK(int_field(a, "entries") > 0);
}

TEST_CASE("audit --json on a fresh store") {
  World w;
  Ran r = ok({"audit", "--json", "--data", w.dir});
  json::object a = parse_object(r.out);
  CHECK(a.at("ok") == json::value(true));
  CHECK(int_field(a, "programmes") == 1);
  CHECK(int_field(a, "cards") == 1);
  CHECK(int_field(a, "entries") == 2);  // fund the programme, issue the card
  CHECK(a.at("findings").as_array().empty());
}

TEST_CASE("a data directory held by another process: exit 3, one line, nothing changes") {
  World w;
  const std::string child =
      (fs::read_symlink("/proc/self/exe").parent_path() / "crash_child").string();
  INFO("crash_child expected at " << child);
  REQUIRE(fs::exists(child));
  // The child redeems from its own well-filled card.
  const std::string child_card =
      str_field(parse_object(ok({"--data", w.dir, "--json", "card", "issue", "--programme", "p1",
                                 "--beneficiary-ref", "crash-child", "--amount-cents", "90000"})
                                 .out),
                "number");
  const std::string cards_file = w.tmp.path + "/cards.txt";
  std::ofstream(cards_file) << child_card << "\n";

  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  // Quiet: should the card run dry, its declines are no concern here.
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> all{child, w.dir, "m1", cards_file, "1"};
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int spawned = posix_spawn(&pid, child.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  REQUIRE(spawned == 0);
  struct Reap {  // never leave the writer running, whatever fails below
    pid_t pid;
    int fd;
    ~Reap() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
      }
      close(fd);
    }
  } reap{pid, out[0]};

  // Wait for the first acknowledged redemption: the store is open for writing.
  std::string got;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!contains(got, "\n") && Clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  INFO("crash_child said: " << got);
  REQUIRE(got.starts_with("ack "));

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"card", "issue", "--programme", "p1", "--beneficiary-ref", "famiglia-2",
            "--amount-cents", "10"},
           {"redeem", "--merchant", "m1", "--card", w.card, "--amount-cents", "1",
            "--idempotency-key", "busy-1"},
           {"programme", "create", "--id", "p2", "--name", "P2", "--budget-cents", "1000",
            "--valid-from", day_string(0), "--valid-until", day_string(10)}}) {
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 3);
    CHECK(one_line(r.err));
    CHECK(contains(r.err, "in use"));
  }

  // Readers work while the writer runs (as they must beside `buoni serve`).
  {
    Ran r = w.run({"card", "show", "--card", w.card, "--json"});
    INFO(describe({"card", "show"}, r));
    CHECK(r.rc == 0);
  }
  {
    Ran r = w.run({"audit", "--json"});
    INFO(describe({"audit"}, r));
    CHECK(r.rc == 0);
  }

  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  reap.pid = 0;  // reaped already
  // The card issue refused above really did nothing: the beneficiary is free.
  ok({"--data", w.dir, "card", "issue", "--programme", "p1", "--beneficiary-ref", "famiglia-2",
      "--amount-cents", "10"});
  CHECK(w.audit().at("ok") == json::value(true));
}
