// The operator commands through a running server (API.md, "The buoni
// command": --server URL --key KEY): the real binary against a real `buoni
// serve` on 127.0.0.1, each answer compared with what local mode prints for
// the same operation on another data directory (the same JSON shape, the
// same text where nothing random is in it), exit codes (0 ok, 1 declined, 2
// usage, 3 could not run: bad key, server down), --server refused by the
// commands that need the data directory, and bulk issuance of 200 cards
// through the server, idempotent on re-run.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/random.h"
#include "support.h"
#include "tests/server_support.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
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

const std::string valid_vat = "01234567897";

std::string describe(const std::vector<std::string>& args, const Ran& r) {
  std::string s = "$ buoni";
  for (const auto& a : args) s += " '" + a + "'";
  return s + "\n  exit " + std::to_string(r.rc) + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
}

Ran run_buoni(const std::vector<std::string>& args, const buoni::test::RunOptions& options = {}) {
  return run_program(BUONI_BIN, args, options);
}

struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir((fs::temp_directory_path() / "buoni-remote-XXXXXX").string()) {}
};

// `buoni --data DIR serve --listen 127.0.0.1:0 extra...` (tests/server_support.h);
// stop() sends SIGTERM and answers the exit code, which must be 0.
struct Server {
  explicit Server(const std::string& dir, const std::vector<std::string>& extra = {})
      : served(BUONI_BIN, dir, extra), url(served.url) {}
  int stop() { return served.process->stop(); }
  buoni::test::ServedDir served;
  std::string url;
};

// A data directory with its admin key.
struct Data {
  TempDir tmp;
  std::string dir = tmp.path + "/data";
  std::string key;
  Data() {
    Ran r = run_buoni({"--data", dir, "--json", "init"});
    REQUIRE(r.rc == 0);
    key = str_field(parse_object(r.out), "admin_key");
    REQUIRE(key.starts_with("ak_"));
  }
  [[nodiscard]] std::string file(const std::string& name) const { return tmp.sub(name); }
};

// One local data directory and one served one, the same commands on both.
struct Pair {
  Data local, served;
  Server server{served.dir};
  mutable json::object local_answer;  // the local side's answer of the last both()

  [[nodiscard]] std::vector<std::string> remote_args(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--server", server.url, "--key", served.key});
    return args;
  }
  [[nodiscard]] Ran remote(const std::vector<std::string>& args) const {
    return run_buoni(remote_args(args));
  }
  [[nodiscard]] Ran in_local(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--data", local.dir});
    return run_buoni(args);
  }
  // The command with --json in both modes: both exit `rc`; the remote answer.
  json::object both(const std::vector<std::string>& args, int rc = 0) const {
    std::vector<std::string> with_json = args;
    with_json.push_back("--json");
    Ran l = in_local(with_json);
    Ran r = remote(with_json);
    INFO("local " << describe(with_json, l));
    INFO("remote " << describe(remote_args(with_json), r));
    REQUIRE(l.rc == rc);
    REQUIRE(r.rc == rc);
    json::object lo = parse_object(l.out), ro = parse_object(r.out);
    CHECK(shape(lo) == shape(ro));
    local_answer = lo;
    return ro;
  }

  // Every key path with its value's kind, sorted: what a script relies on.
  static std::string shape(const json::value& v, const std::string& at = "") {
    if (v.is_object()) {
      std::set<std::string> parts;
      for (const auto& kv : v.get_object())
        parts.insert(shape(kv.value(), at + "." + std::string(kv.key())));
      std::string s;
      for (const auto& p : parts) s += p;
      return s.empty() ? at + "={}\n" : s;
    }
    if (v.is_array()) {
      return v.get_array().empty() ? at + "=[]\n" : shape(v.get_array().front(), at + "[]");
    }
    const char* kind = v.is_string() ? "string"
                       : v.is_bool() ? "bool"
                       : v.is_null() ? "null"
                                     : "number";
    return at + "=" + kind + "\n";
  }
};

const std::vector<std::string> create_p1{
    "programme",      "create", "--id",         "p1",           "--name",        "Buoni Remoti",
    "--budget-cents", "100000", "--valid-from", day_string(-1), "--valid-until", day_string(60)};

Ran must(const Ran& r, const std::vector<std::string>& args, int rc = 0) {
  INFO(describe(args, r));
  REQUIRE(r.rc == rc);
  return r;
}

}  // namespace

TEST_CASE("every operator command through the server prints what local mode prints") {
  Pair p;
  // programme create: the same JSON shape, the same text.
  json::object created = p.both(create_p1);
  CHECK(str_field(created, "id") == "p1");
  CHECK(int_field(created, "budget_cents") == 100000);
  std::vector<std::string> create_p2 = create_p1;
  create_p2[3] = "p2";
  Ran lt = must(p.in_local(create_p2), create_p2);
  Ran rt = must(p.remote(create_p2), create_p2);
  CHECK(lt.out == rt.out);
  CHECK(contains(rt.out, "created programme p2 with budget_cents 100000 (ledger seq 2)"));

  // programme show: same object apart from created_at, same text.
  json::object shown = p.both({"programme", "show", "--id", "p1"});
  CHECK(int_field(shown, "cards") == 0);
  std::vector<std::string> show{"programme", "show", "--id", "p2"};
  CHECK(must(p.in_local(show), show).out == must(p.remote(show), show).out);

  // merchant add (its key once) and list.
  json::object shop = p.both({"merchant", "add", "--id", "m1", "--name", "Forno", "--vat-number",
                              valid_vat, "--programme", "p1", "--programme", "p2"});
  CHECK(str_field(shop, "api_key").starts_with("mk_"));
  std::vector<std::string> add2{"merchant", "add",          "--id",    "m2",          "--name",
                                "Bottega",  "--vat-number", valid_vat, "--programme", "p1"};
  Ran added = must(p.remote(add2), add2);
  CHECK(contains(added.out, "added shop m2\napi_key mk_"));
  static_cast<void>(must(p.in_local(add2), add2));
  json::object shops = p.both({"merchant", "list"});
  CHECK(shops.at("merchants").as_array().size() == 2);
  std::vector<std::string> list{"merchant", "list"};
  CHECK(must(p.in_local(list), list).out == must(p.remote(list), list).out);

  // card issue: number, token, link; then show, load, block, unblock, unlock-pin.
  json::object card = p.both({"card", "issue", "--programme", "p1", "--beneficiary-ref", "FAM-1",
                              "--amount-cents", "5000"});
  const std::string number = str_field(card, "number");
  CHECK(str_field(card, "token").starts_with("BS1:"));
  std::vector<std::string> issue_text{
      "card", "issue", "--programme", "p1", "--beneficiary-ref", "FAM-2", "--amount-cents", "100"};
  Ran issued = must(p.remote(issue_text), issue_text);
  CHECK(contains(issued.out, "issued card "));
  CHECK(contains(issued.out, ": balance_cents 100, held_cents 0, active\ntoken BS1:"));

  static_cast<void>(must(p.in_local(issue_text), issue_text));
  // Local mode works on its own card (FAM-1 on its side).
  const std::string lnum = str_field(p.local_answer, "number");
  for (const std::vector<std::string>& op :
       {std::vector<std::string>{"card", "show", "--card"},
        std::vector<std::string>{"card", "load", "--amount-cents", "700", "--card"},
        std::vector<std::string>{"card", "block", "--card"},
        std::vector<std::string>{"card", "unblock", "--card"},
        std::vector<std::string>{"card", "unlock-pin", "--card"}}) {
    CAPTURE(op[1]);
    std::vector<std::string> l = op, r = op;
    l.push_back(lnum);
    r.push_back(number);
    l.push_back("--json");
    r.push_back("--json");
    Ran lr = p.in_local(l), rr = p.remote(r);
    INFO(describe(l, lr) << "\n" << describe(r, rr));
    REQUIRE(lr.rc == 0);
    REQUIRE(rr.rc == 0);
    CHECK(Pair::shape(parse_object(lr.out)) == Pair::shape(parse_object(rr.out)));
    l.pop_back();
    r.pop_back();
    Ran ltext = p.in_local(l), rtext = p.remote(r);
    REQUIRE(ltext.rc == 0);
    REQUIRE(rtext.rc == 0);
    // The same text but for the card's number.
    std::string masked = rtext.out;
    if (auto at = masked.find(number); at != std::string::npos)
      masked.replace(at, number.size(),
                     buoni::format_card_number(*buoni::parse_card_number(lnum).id));
    CHECK(ltext.out == masked);
  }
  json::object after = parse_object(
      must(p.remote({"--json", "card", "show", "--card", number}), {"card", "show"}).out);
  CHECK(int_field(after, "balance_cents") == 5000 + 700 + 700);
  CHECK(str_field(after, "status") == "active");

  // A card named by its token (the server verifies it).
  json::object by_token = parse_object(
      must(p.remote({"--json", "card", "show", "--card", str_field(card, "token")}), {"show"}).out);
  CHECK(str_field(by_token, "number") == number);

  // replace: a new card with the balance; the old one revoked.
  std::vector<std::string> lrep{"card", "replace", "--card", lnum, "--json"};
  std::vector<std::string> rrep{"card", "replace", "--card", number, "--json"};
  Ran lr = must(p.in_local(lrep), lrep), rr = must(p.remote(rrep), rrep);
  CHECK(Pair::shape(parse_object(lr.out)) == Pair::shape(parse_object(rr.out)));
  json::object fresh = parse_object(rr.out);
  CHECK(str_field(fresh, "number") != number);
  CHECK(int_field(fresh, "balance_cents") == 6400);
  Ran old_card = must(p.remote({"card", "show", "--card", number}), {"show"});
  CHECK(contains(old_card.out, ": revoked, balance_cents 0"));
  Ran rep_text = must(p.remote({"card", "replace", "--card", str_field(fresh, "number")}), {"r"});
  CHECK(contains(rep_text.out, "replacement card "));
  CHECK(
      contains(rep_text.out, "; old card " + str_field(fresh, "number") + " revoked\ntoken BS1:"));

  // programme close (after valid_until): same shape, text.
  std::vector<std::string> old{"programme",    "create",        "--id",           "old",
                               "--name",       "Old",           "--budget-cents", "1000",
                               "--valid-from", day_string(-30), "--valid-until",  day_string(-2)};
  static_cast<void>(p.both(old));
  json::object closed = p.both({"programme", "close", "--id", "old"});
  CHECK(str_field(closed, "status") == "closed");
  std::vector<std::string> close_again{"programme", "close", "--id", "old"};
  Ran lc = p.in_local(close_again), rc = p.remote(close_again);
  CHECK(lc.rc == rc.rc);
  CHECK(error_code(lc.out) == error_code(rc.out));

  // Idempotency keys become the header: a replay says so and changes nothing.
  json::object revoked = parse_object(
      must(p.remote({"--json", "card", "show", "--card", str_field(fresh, "number")}), {"show"})
          .out);
  const std::string newest = str_field(revoked, "replaced_by");
  std::vector<std::string> keyed{"card", "load", "--card", newest, "--amount-cents", "50"};
  keyed.insert(keyed.end(), {"--idempotency-key", "top-up-1"});
  Ran first = must(p.remote(keyed), keyed);
  CHECK(!contains(first.out, "replayed"));
  Ran again = must(p.remote(keyed), keyed);
  CHECK(contains(again.out, "(replayed: this idempotency key was used before; nothing changed)"));
  keyed[5] = "60";
  Ran conflict = p.remote(keyed);
  CHECK(conflict.rc == 1);
  CHECK(contains(conflict.err, "idempotency_conflict"));

  CHECK(p.server.stop() == 0);
}

TEST_CASE("declines exit 1, bad input exit 2, with one line and the error object") {
  Pair p;
  static_cast<void>(p.both(create_p1));
  static_cast<void>(p.both(
      {"card", "issue", "--programme", "p1", "--beneficiary-ref", "A", "--amount-cents", "100"}));
  // Declines, the same code both ways.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"programme", "show", "--id", "nope"},
        std::vector<std::string>{"card", "issue", "--programme", "p1", "--beneficiary-ref", "A",
                                 "--amount-cents", "100"},
        std::vector<std::string>{"card", "issue", "--programme", "nope", "--beneficiary-ref", "B",
                                 "--amount-cents", "100"},
        std::vector<std::string>{"card", "issue", "--programme", "p1", "--beneficiary-ref", "C",
                                 "--amount-cents", "200000"},
        std::vector<std::string>{"programme", "create", "--id", "p1", "--name", "Again",
                                 "--budget-cents", "5", "--valid-from", day_string(0),
                                 "--valid-until", day_string(1)}}) {
    std::vector<std::string> j = args;
    j.push_back("--json");
    Ran l = p.in_local(j), r = p.remote(j);
    INFO(describe(j, l) << "\n" << describe(p.remote_args(j), r));
    CHECK(r.rc == 1);
    CHECK(l.rc == 1);
    CHECK(!error_code(r.out).empty());
    CHECK(error_code(l.out) == error_code(r.out));
    CHECK(one_line(r.err));
    Ran text = p.remote(args);
    CHECK(text.rc == 1);
    CHECK(text.out.empty());
    CHECK(contains(text.err, "buoni: declined: " + error_code(r.out)));
  }
  // An unknown (well-formed) card: 404 unknown_card.
  buoni::SystemRandom random;
  std::string nobody = buoni::format_card_number(buoni::CardId::random(random));
  Ran unknown = p.remote({"--json", "card", "load", "--card", nobody, "--amount-cents", "5"});
  CHECK(unknown.rc == 1);
  CHECK(error_code(unknown.out) == "unknown_card");

  // Usage errors found before any request, and 400s of the server: exit 2.
  Ran bad_amount = p.remote({"card", "load", "--card", nobody, "--amount-cents", "12.5"});
  CHECK(bad_amount.rc == 2);
  CHECK(one_line(bad_amount.err));
  std::string typo = nobody;
  typo.back() = typo.back() == '0' ? '1' : '0';
  CHECK(p.remote({"card", "show", "--card", typo}).rc == 2);
  Ran bad_key =
      p.remote({"--json", "programme", "close", "--id", "p1", "--idempotency-key", "not a key!"});
  CHECK(bad_key.rc == 2);
  CHECK(error_code(bad_key.out) == "bad_request");
  Ran bad_token = p.remote({"card", "show", "--card", "BS1:NOTATOKEN"});
  CHECK(bad_token.rc == 2);
  CHECK(one_line(bad_token.err));
}

TEST_CASE("a wrong key, a server that is down: exit 3 with one clear line") {
  Data d;
  Server server(d.dir);
  std::vector<std::string> show{"--server", server.url, "programme", "show", "--id", "p1"};

  std::vector<std::string> wrong = show;
  wrong.insert(wrong.end(), {"--key", "ak_" + std::string(64, '0'), "--json"});
  Ran r = run_buoni(wrong);
  INFO(describe(wrong, r));
  CHECK(r.rc == 3);
  CHECK(one_line(r.err));
  CHECK(contains(r.err, "unauthorized"));
  CHECK(error_code(r.out) == "unauthorized");

  // A shop's key is not the admin key: 403, exit 3.
  Ran made = run_buoni({"--server", server.url, "--key", d.key, "--json", "programme", "create",
                        "--id", "p1", "--name", "P", "--budget-cents", "1000", "--valid-from",
                        day_string(0), "--valid-until", day_string(5)});
  REQUIRE(made.rc == 0);
  Ran shop = run_buoni({"--server", server.url, "--key", d.key, "--json", "merchant", "add", "--id",
                        "m1", "--name", "Forno", "--vat-number", valid_vat, "--programme", "p1"});
  REQUIRE(shop.rc == 0);
  std::vector<std::string> as_shop = show;
  as_shop.insert(as_shop.end(), {"--key", str_field(parse_object(shop.out), "api_key")});
  Ran forbidden = run_buoni(as_shop);
  CHECK(forbidden.rc == 3);
  CHECK(contains(forbidden.err, "forbidden"));

  // The key from BUONI_KEY.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.push_back("BUONI_KEY=" + d.key);
  Ran from_env = run_buoni(show, {env});
  INFO(describe(show, from_env));
  CHECK(from_env.rc == 0);
  CHECK(contains(from_env.out, "programme p1 (P), open"));

  const std::string url = server.url;
  CHECK(server.stop() == 0);
  std::vector<std::string> down{"--server", url, "--key", d.key, "programme", "show", "--id", "p1"};
  Ran gone = run_buoni(down);
  INFO(describe(down, gone));
  CHECK(gone.rc == 3);
  CHECK(one_line(gone.err));
  CHECK(contains(gone.err, "cannot reach " + url + ": connection refused"));
  down.push_back("--json");
  Ran gone_json = run_buoni(down);
  CHECK(gone_json.rc == 3);
  CHECK(error_code(gone_json.out) == "unavailable");
  // Nor can the data directory be used by the CLI meanwhile? It can: the server is gone.
  CHECK(run_buoni({"--data", d.dir, "programme", "show", "--id", "p1"}).rc == 0);
}

TEST_CASE("commands that need the data directory refuse --server (exit 2)") {
  TempDir tmp;
  const std::string url = "http://127.0.0.1:9";  // nothing is asked of it
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"init"}, std::vector<std::string>{"key", "show"},
        std::vector<std::string>{"key", "rotate"}, std::vector<std::string>{"audit"},
        std::vector<std::string>{"demo"},
        std::vector<std::string>{"card", "render", "--card", "x", "--format", "png", "--out",
                                 tmp.sub("c.png")},
        std::vector<std::string>{"card", "verify", "BS1:X", "--public-keys", tmp.sub("k")},
        std::vector<std::string>{"redeem", "--merchant", "m", "--card", "x", "--amount-cents", "1",
                                 "--idempotency-key", "k"}}) {
    std::vector<std::string> all{"--server", url, "--key", "ak_x"};
    all.insert(all.end(), args.begin(), args.end());
    Ran r = run_buoni(all);
    INFO(describe(all, r));
    CHECK(r.rc == 2);
    CHECK(one_line(r.err));
    CHECK(contains(r.err, "does not take --server"));
  }
  CHECK(fs::is_empty(tmp.path));  // nothing was made

  // --key without --server, --server without a key, both --data and --server, a bad URL.
  std::vector<std::string> show{"programme", "show", "--id", "p"};
  auto usage = [&](std::vector<std::string> front, const std::vector<std::string>& env = {}) {
    front.insert(front.end(), show.begin(), show.end());
    buoni::test::RunOptions options;
    options.env = env;
    Ran r = run_buoni(front, options);
    INFO(describe(front, r));
    CHECK(r.rc == 2);
    CHECK(one_line(r.err));
  };
  usage({"--data", tmp.sub("d"), "--key", "ak_x"});
  usage({"--server", url}, {"PATH=/usr/bin:/bin"});
  usage({"--server", url, "--key", "ak_x", "--data", tmp.sub("d")});
  usage({"--server", "ftp://127.0.0.1", "--key", "ak_x"});
  usage({"--server", "http://127.0.0.1:99999", "--key", "ak_x"});
}

TEST_CASE(
    "bulk issue through the server: 200 cards, PDF and PINs written here; re-run issues none") {
  Data d;
  Server server(d.dir);
  auto remote = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server.url, "--key", d.key});
    return run_buoni(args);
  };
  std::vector<std::string> create{"programme",    "create",       "--id",           "bulk",
                                  "--name",       "Bulk",         "--budget-cents", "10000000",
                                  "--valid-from", day_string(-1), "--valid-until",  day_string(90),
                                  "--require-pin"};
  REQUIRE(remote(create).rc == 0);
  std::string csv = d.file("households.csv");
  {
    std::ofstream f(csv);
    f << "beneficiary_ref,amount_cents,household_size\n";
    for (int i = 0; i < 200; ++i) f << "FAM-" << i << "," << (1000 + i) << ",3\n";
  }
  const std::string pdf = d.file("cards.pdf"), pins = d.file("pins.csv");
  std::vector<std::string> issue{"--json", "issue", "--programme", "bulk",       "--csv",
                                 csv,      "--out", pdf,           "--pins-out", pins};
  auto t0 = std::chrono::steady_clock::now();
  Ran first = remote(issue);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(describe(issue, first));
  REQUIRE(first.rc == 0);
  json::object a = parse_object(first.out);
  CHECK(int_field(a, "issued") == 200);
  CHECK(int_field(a, "existing") == 0);
  CHECK(int_field(a, "declined") == 0);
  CHECK(int_field(a, "issued_cents") == 200 * 1000 + 199 * 200 / 2);
  CHECK(int_field(a, "remaining_budget_cents") == 10000000 - int_field(a, "issued_cents"));
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(took).count() < 30);
  CHECK(read_file(pdf).starts_with("%PDF"));
  std::string pin_lines = read_file(pins);
  CHECK(count_of(pin_lines, "\n") == 201);
  CHECK(contains(pin_lines, "FAM-199,"));
  struct stat st {};
  REQUIRE(stat(pins.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // Re-run: every line answered again (replays), nothing issued twice, the PDF again.
  const std::string pdf2 = d.file("cards2.pdf"), pins2 = d.file("pins2.csv");
  std::vector<std::string> rerun{"issue", "--programme", "bulk",       "--csv", csv,
                                 "--out", pdf2,          "--pins-out", pins2};
  Ran second = remote(rerun);
  INFO(describe(rerun, second));
  REQUIRE(second.rc == 0);
  CHECK(contains(second.out, "issued 0 cards (0 cents), 200 already existed, 0 declined"));
  CHECK(contains(second.out, "no new PINs"));
  CHECK(!contains(second.out, "not in the PDF"));
  CHECK(read_file(pdf2).size() > 1000);
  CHECK(count_of(read_file(pins2), "\n") == 1);
  Ran show = remote({"--json", "programme", "show", "--id", "bulk"});
  REQUIRE(show.rc == 0);
  CHECK(int_field(parse_object(show.out), "cards") == 200);

  // A card issued one by one before is counted as existing (and cannot be printed).
  REQUIRE(remote({"card", "issue", "--programme", "bulk", "--beneficiary-ref", "SOLO",
                  "--amount-cents", "500"})
              .rc == 0);
  std::string csv2 = d.file("more.csv");
  {
    std::ofstream f(csv2);
    f << "beneficiary_ref,amount_cents\nSOLO,500\nNEW-1,700\n";
  }
  Ran mixed = remote(
      {"--json", "issue", "--programme", "bulk", "--csv", csv2, "--pins-out", d.file("pins3.csv")});
  INFO(describe({"issue", csv2}, mixed));
  REQUIRE(mixed.rc == 0);
  json::object m = parse_object(mixed.out);
  CHECK(int_field(m, "issued") == 1);
  CHECK(int_field(m, "existing") == 1);

  // Bad files are refused before any request, as in local mode.
  std::string bad = d.file("bad.csv");
  {
    std::ofstream f(bad);
    f << "beneficiary_ref,amount_cents\nX,12.5\n";
  }
  Ran refused =
      remote({"issue", "--programme", "bulk", "--csv", bad, "--pins-out", d.file("pins4.csv")});
  CHECK(refused.rc == 2);
  CHECK(contains(refused.err, "line 2"));
  CHECK(server.stop() == 0);
}

TEST_CASE("https: the certificate is verified (BUONI_CA_FILE), and so is the host name") {
  Data d;
  const std::string cert = d.file("cert.pem"), key = d.file("key.pem");
  Ran made = run_program(
      "openssl", {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=buoni-test", "-addext",
                  "subjectAltName=IP:127.0.0.1"});
  INFO(made.err);
  REQUIRE(made.rc == 0);
  Server server(d.dir, {"--tls-cert", cert, "--tls-key", key});
  REQUIRE(server.url.starts_with("https://127.0.0.1:"));
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (!std::string(*e).starts_with("BUONI_CA_FILE=")) env.emplace_back(*e);
  }
  std::vector<std::string> create{"--server",     server.url,    "--key",          d.key,
                                  "programme",    "create",      "--id",           "tls",
                                  "--name",       "TLS",         "--budget-cents", "1000",
                                  "--valid-from", day_string(0), "--valid-until",  day_string(5)};
  // Not trusted by the system store: refused, nothing done.
  Ran untrusted = run_buoni(create, {env});
  INFO(describe(create, untrusted));
  CHECK(untrusted.rc == 3);
  CHECK(one_line(untrusted.err));
  CHECK(contains(untrusted.err, "certificate verify failed"));
  // Trusted through BUONI_CA_FILE.
  std::vector<std::string> trusting = env;
  trusting.push_back("BUONI_CA_FILE=" + cert);
  Ran ok = run_buoni(create, {trusting});
  INFO(describe(create, ok));
  CHECK(ok.rc == 0);
  CHECK(contains(ok.out, "created programme tls"));
  // The same server by a name the certificate does not carry.
  std::string by_name = "https://localhost:" + server.url.substr(server.url.rfind(':') + 1);
  std::vector<std::string> show{"--server",  by_name, "--key", d.key,
                                "programme", "show",  "--id",  "tls"};
  Ran wrong_name = run_buoni(show, {trusting});
  INFO(describe(show, wrong_name));
  CHECK(wrong_name.rc == 3);
  CHECK(one_line(wrong_name.err));
  CHECK(server.stop() == 0);
}
