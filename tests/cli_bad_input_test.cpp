// Bad input everywhere, on the command line: every `buoni` command (the
// registrations of tools/main.cpp) with missing, malformed and hostile
// arguments -- huge and negative numbers, invalid UTF-8, control characters,
// empty strings, paths that do not exist or cannot be written -- run as the
// real binary on a data directory holding a programme, a shop and a card.
//
// Each row says the exit code (README: 1 declined, 2 usage error, 3 could
// not run) and the stable code its one line on stderr names ("usage" for
// "buoni: usage: ...", else the decline or status code, "buoni: declined:
// not_found: ..."); with --json a refusal that is not a usage error prints
// {"error": {"code": ...}} with that code. Nothing may crash (no signal, no
// timeout), and nothing may change: the test compares a snapshot of the data
// directory (audit totals, the programme, the card, the shops, every file
// outside the RocksDB directory) and of the scratch directory before and
// after each table.
#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support.h"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using buoni::test::contains;
using buoni::test::day_string;
using buoni::test::error_code;
using buoni::test::int_field;
using buoni::test::parse_object;
using buoni::test::Ran;
using buoni::test::read_file;
using buoni::test::run_program;
using buoni::test::str_field;

const std::string kVat = "01234567897";
const std::string kNotUtf8 = "\xff\xfe\xc3";
const std::string kHugeNumber = "99999999999999999999999999";

// How a row must be refused.
struct Row {
  std::vector<std::string> args;  // placeholders {card} {token} {tmp} {file} {dir} {pub} ...
  int rc;                         // 1, 2 or 3
  std::string code;               // "usage", or the decline / status code on stderr
  bool lines_per_problem = false;  // one stderr line per bad CSV line, then the usage line
};

std::string describe(const std::vector<std::string>& args, const Ran& r) {
  std::string s = "$ buoni";
  for (const auto& a : args) s += " '" + a + "'";
  return s + "\n  exit " + std::to_string(r.rc) + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
}

Ran run_buoni(const std::vector<std::string>& args) {
  buoni::test::RunOptions options;
  options.timeout = std::chrono::seconds(30);
  return run_program(BUONI_BIN, args, options);
}

// Every regular file under `root` (not under `skip`) with its bytes, and
// every directory, one per line: a comparable picture of a tree.
std::string tree(const fs::path& root, const fs::path& skip = {}) {
  std::map<std::string, std::string> items;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::end(it); it.increment(ec)) {
    if (!skip.empty() && it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    std::string name = fs::relative(it->path(), root).string();
    items[name] = it->is_directory() ? "<dir>" : read_file(it->path().string());
  }
  std::string s;
  for (const auto& [name, bytes] : items) {
    s += name + " " + std::to_string(bytes.size()) + " " + std::to_string(std::hash<std::string>{}(bytes)) + "\n";
  }
  return s;
}

// A data directory with programme p1, shop m1 and a card (5000 cents), and a
// scratch directory with the files the rows point at.
struct World {
  buoni::test::TempDir tmp{(fs::temp_directory_path() / "buoni-badcli-XXXXXX").string()};
  std::string dir = tmp.sub("data");
  std::string scratch = tmp.sub("scratch");
  std::map<std::string, std::string> vars;

  World();
  Ran run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--data", dir});
    return run_buoni(args);
  }
  std::string ok(const std::vector<std::string>& args) const {
    Ran r = run(args);
    INFO(describe(args, r));
    REQUIRE(r.rc == 0);
    return r.out;
  }
  std::string expand(const std::string& arg) const;
  std::string snapshot() const;
};

World::World() {
  fs::create_directories(scratch + "/empty-dir");
  ok({"init"});
  ok({"programme", "create", "--id", "p1", "--name", "Buoni Uno", "--budget-cents", "100000",
      "--valid-from", day_string(-1), "--valid-until", day_string(60)});
  ok({"merchant", "add", "--id", "m1", "--name", "Alimentari", "--vat-number", kVat,
      "--programme", "p1"});
  json::object card = parse_object(ok({"card", "issue", "--json", "--programme", "p1",
                                       "--beneficiary-ref", "fam-1", "--amount-cents", "5000"}));
  std::ofstream(scratch + "/file") << "a regular file\n";
  std::ofstream(scratch + "/garbage.txt") << "hello\n\x01\xff\n";
  std::ofstream(scratch + "/pub.txt") << ok({"key", "show"});
  std::ofstream(scratch + "/bad.csv") << "beneficiary_ref,amount_cents\nfam-2,abc\n,5\nfam-3,-1\n";
  std::ofstream(scratch + "/unclosed.csv") << "beneficiary_ref,amount_cents\n\"fam-2,5\n";
  std::ofstream(scratch + "/statement.csv") << "redemption_id,amount_cents,created_at\nrd_x,-5,no\n";
  vars = {{"{card}", str_field(card, "number")}, {"{token}", str_field(card, "token")},
          {"{link}", str_field(card, "link")},   {"{tmp}", scratch},
          {"{file}", scratch + "/file"},         {"{dir}", scratch + "/empty-dir"},
          {"{pub}", scratch + "/pub.txt"},       {"{garbage}", scratch + "/garbage.txt"},
          {"{data}", dir}};
}

std::string World::expand(const std::string& arg) const {
  std::string out = arg;
  for (const auto& [name, value] : vars) {
    for (auto at = out.find(name); at != std::string::npos; at = out.find(name, at + value.size())) {
      out.replace(at, name.size(), value);
    }
  }
  return out;
}

std::string World::snapshot() const {
  json::object audit = parse_object(ok({"audit", "--json"}));
  std::string s = "entries " + std::to_string(int_field(audit, "entries")) + " checkpoints " +
                  std::to_string(int_field(audit, "checkpoints")) + " cards " +
                  std::to_string(int_field(audit, "cards")) + "\n";
  s += ok({"card", "show", "--json", "--card", vars.at("{card}")});
  s += ok({"programme", "show", "--json", "--id", "p1"});
  s += ok({"merchant", "list", "--json"});
  return s + tree(dir, fs::path(dir) / "db") + tree(scratch);
}

// stderr: one line "buoni: ...: <code>: ..." (usage: "buoni: usage: ..."),
// or one line per bad CSV line before it.
void check_stderr(const Row& row, const Ran& r) {
  CHECK(!r.err.empty());
  CHECK(r.err.back() == '\n');
  std::string last = r.err.substr(0, r.err.size() - 1);
  if (row.lines_per_problem) {
    last = last.substr(last.rfind('\n') + 1);
  } else {
    CHECK(last.find('\n') == std::string::npos);  // one line, whatever the input held
  }
  CHECK(last.starts_with("buoni: "));
  if (row.code == "usage") {
    CHECK(last.starts_with("buoni: usage: "));
  } else {
    CHECK(contains(last, " " + row.code + ": "));
  }
}

// The code --json prints for a row's code: a Status prints its API code
// (api/error_table.h), a decline its own.
std::string json_code(const std::string& code) {
  if (code == "io_error" || code == "unavailable") return "unavailable";
  if (code == "invalid_argument") return "bad_request";
  return code;
}

// {"error": {"code": C}} -> C; `card verify` answers {"valid": false, "error": C}.
std::string json_error(const std::string& out) {
  std::string nested = error_code(out);
  if (!nested.empty()) return nested;
  boost::system::error_code ec;
  json::value v = json::parse(out, ec);
  if (ec || !v.is_object()) return "";
  const json::value* e = v.as_object().if_contains("error");
  return e && e->is_string() ? std::string(e->as_string()) : "";
}

void check_row(const World& w, const Row& row) {
  std::vector<std::string> args;
  for (const auto& a : row.args) args.push_back(w.expand(a));
  Ran r = w.run(args);
  INFO(describe(args, r));
  CHECK(r.rc == row.rc);  // a signal would be 128 + n; a timeout 137
  check_stderr(row, r);
  CHECK(!contains(r.out, "ak_"));
  CHECK(!contains(r.out + r.err, "mk_"));
  if (row.code == "usage") {
    CHECK(r.out.empty());
    return;
  }
  args.push_back("--json");
  Ran j = w.run(args);
  INFO(describe(args, j));
  CHECK(j.rc == row.rc);
  CHECK(json_error(j.out) == json_code(row.code));
}

void check_table(const std::vector<Row>& rows) {
  World w;
  const std::string before = w.snapshot();
  for (const Row& row : rows) check_row(w, row);
  CHECK(w.snapshot() == before);
}

}  // namespace

TEST_CASE("no command, unknown commands and flags, global options") {
  check_table({
      {{}, 2, "usage"},
      {{"frobnicate"}, 2, "usage"},
      {{kNotUtf8}, 2, "usage"},
      {{"card"}, 2, "usage"},
      {{"card", "frobnicate"}, 2, "usage"},
      {{"audit", "--bogus"}, 2, "usage"},
      {{"audit", "--json", "extra"}, 2, "usage"},
      {{"--key", "ak_x", "audit"}, 2, "usage"},
      {{"--server", "http://127.0.0.1:1", "--key", "ak_x", "audit"}, 2, "usage"},
      {{"--server", "http://127.0.0.1:1", "--key", "ak_x", "init"}, 2, "usage"},
      {{"--server", "http://127.0.0.1:1", "programme", "show", "--id", "p1"}, 2, "usage"},
      {{"--server", "http://127.0.0.1:1", "--key", "ak_x", "--data", "{data}", "merchant", "list"},
       2, "usage"},
      {{"--server", "http://127.0.0.1:1", "--key", "ak_x", "card", "render", "--card", "{card}",
        "--out", "{tmp}/c.png"},
       2, "usage"},
      {{"init"}, 1, "already_exists"},
      {{"init", "now"}, 2, "usage"},
      {{"key", "show", "extra"}, 2, "usage"},
      {{"key", "rotate", "--bogus"}, 2, "usage"},
      {{"key", "frobnicate"}, 2, "usage"},
  });
}

TEST_CASE("programme create, show, close") {
  auto create = [](std::string id, std::string name, std::string budget, std::string from,
                   std::string until) {
    return std::vector<std::string>{"programme", "create", "--id", id, "--name", name,
                                    "--budget-cents", budget, "--valid-from", from,
                                    "--valid-until", until};
  };
  const std::string d0 = day_string(0), d9 = day_string(9);
  std::vector<Row> rows{
      {{"programme", "create", "--id", "p2"}, 2, "usage"},
      {create("p2", "P", "-1", d0, d9), 2, "usage"},
      {create("p2", "P", "0", d0, d9), 2, "usage"},
      {create("p2", "P", kHugeNumber, d0, d9), 2, "usage"},
      {create("p2", "P", "1e3", d0, d9), 2, "usage"},
      {create("p2", "P", "\xd9\xa1\xd9\xa2", d0, d9), 2, "usage"},  // Arabic-Indic digits
      {create("p2", "P", "100\n200", d0, d9), 2, "usage"},
      {create("", "P", "100", d0, d9), 2, "usage"},
      {create("p2 x", "P", "100", d0, d9), 2, "usage"},
      {create(std::string(65, 'p'), "P", "100", d0, d9), 2, "usage"},
      {create("p" + kNotUtf8, "P", "100", d0, d9), 2, "usage"},
      {create("p2", "", "100", d0, d9), 2, "usage"},
      {create("p2", kNotUtf8, "100", d0, d9), 2, "usage"},
      {create("p2", "a\nb", "100", d0, d9), 2, "usage"},
      {create("p2", "\x1b[31mred", "100", d0, d9), 2, "usage"},
      {create("p2", std::string(201, 'n'), "100", d0, d9), 2, "usage"},
      {create("p2", "P", "100", "", d9), 2, "usage"},
      {create("p2", "P", "100", "2026-02-30", d9), 2, "usage"},
      {create("p2", "P", "100", "99999-01-01", d9), 2, "usage"},
      {create("p2", "P", "100", d9, d0), 2, "usage"},
      {create("p1", "P", "100", d0, d9), 1, "already_exists"},
      {{"programme", "create", "--id", "p2", "--name", "P", "--budget-cents", "100", "--valid-from",
        d0, "--valid-until", d9, "--max-redemption-cents", "-5"},
       2, "usage"},
      {{"programme", "create", "--id", "p2", "--name", "P", "--budget-cents", "100", "--valid-from",
        d0, "--valid-until", d9, "--daily-limit-cents", kHugeNumber},
       2, "usage"},
      {{"programme", "create", "--id", "p2", "--name", "P", "--budget-cents", "100", "--valid-from",
        d0, "--valid-until", d9, "--idempotency-key", "bad key!"},
       2, "usage"},
      {{"programme", "show"}, 2, "usage"},
      {{"programme", "show", "--id", "nope"}, 1, "not_found"},
      {{"programme", "show", "--id", kNotUtf8}, 1, "not_found"},
      {{"programme", "close", "--id", "p1"}, 1, "programme_not_ended"},
      {{"programme", "close", "--id", "nope"}, 1, "not_found"},
      {{"programme", "close", "--id", ""}, 1, "not_found"},
  };
  check_table(rows);
}

TEST_CASE("merchant add, list") {
  auto add = [](std::string id, std::string name, std::string vat, std::string programme) {
    return std::vector<std::string>{"merchant", "add",         "--id", id,        "--name",
                                    name,       "--vat-number", vat,   "--programme", programme};
  };
  check_table({
      {{"merchant", "add", "--id", "m2"}, 2, "usage"},
      {add("m2", "Forno", "01234567890", "p1"), 2, "usage"},
      {add("m2", "Forno", "", "p1"), 2, "usage"},
      {add("m2", "Forno", kHugeNumber, "p1"), 2, "usage"},
      {add("m2", "Forno", kNotUtf8, "p1"), 2, "usage"},
      {add("m2", "Forno", kVat, "nope"), 1, "not_found"},
      {add("m2", "Forno", kVat, ""), 2, "usage"},
      {add("m2", "Forno", kVat, "p1" + kNotUtf8), 2, "usage"},
      {add("m2", kNotUtf8, kVat, "p1"), 2, "usage"},
      {add("m2", "", kVat, "p1"), 2, "usage"},
      {add("m 2", "Forno", kVat, "p1"), 2, "usage"},
      {add("m1", "Forno", kVat, "p1"), 1, "already_exists"},
      {{"merchant", "list", "extra"}, 2, "usage"},
      {{"merchant", "list", "--after", "x"}, 2, "usage"},
  });
}

TEST_CASE("card issue, show, load, block, unblock, unlock-pin, replace") {
  auto issue = [](std::string programme, std::string ref, std::string amount) {
    return std::vector<std::string>{"card",     "issue",           "--programme", programme,
                                    "--beneficiary-ref", ref, "--amount-cents", amount};
  };
  std::vector<Row> rows{
      {issue("p1", "fam-2", "-1"), 2, "usage"},
      {issue("p1", "fam-2", kHugeNumber), 2, "usage"},
      {issue("p1", "fam-2", "10000001"), 2, "usage"},
      {issue("p1", "fam-2", ""), 2, "usage"},
      {issue("p1", "", "10"), 2, "usage"},
      {issue("p1", kNotUtf8, "10"), 2, "usage"},
      {issue("p1", std::string(65, 'r'), "10"), 2, "usage"},
      {issue("p 1", "fam-2", "10"), 2, "usage"},
      {issue("nope", "fam-2", "10"), 1, "not_found"},
      {issue("p1", "fam-1", "10"), 1, "already_issued"},
      {issue("p1", "fam-2", "999999"), 1, "budget_exceeded"},
      {{"card", "issue", "--programme", "p1"}, 2, "usage"},
  };
  for (std::string action : {"show", "block", "unblock", "unlock-pin", "replace"}) {
    rows.push_back({{"card", action}, 2, "usage"});
    rows.push_back({{"card", action, "--card", ""}, 2, "usage"});
    rows.push_back({{"card", action, "--card", "0000-0000-0000-0000-1"}, 2, "usage"});  // check
    rows.push_back({{"card", action, "--card", "0000-0000-0000-0000-0"}, 1, "unknown_card"});
    rows.push_back({{"card", action, "--card", kNotUtf8}, 2, "usage"});
    rows.push_back({{"card", action, "--card", "BS1:" + std::string(119, 'A')}, 2, "usage"});
    rows.push_back({{"card", action, "--card", std::string(106, 'A')}, 2, "usage"});
    rows.push_back({{"card", action, "--card", "{card}", "--amount-cents", "5"}, 2, "usage"});
  }
  for (const std::string& amount : std::vector<std::string>{"0", "-5", "5.5", kHugeNumber, "0x10", " 5"}) {
    rows.push_back({{"card", "load", "--card", "{card}", "--amount-cents", amount}, 2, "usage"});
  }
  rows.push_back({{"card", "load", "--card", "{card}", "--amount-cents", "200000"}, 1,
                  "budget_exceeded"});
  rows.push_back({{"card", "load", "--card", "{card}", "--amount-cents", "5",
                   "--idempotency-key", std::string(65, 'k')},
                  2, "usage"});
  check_table(rows);
}

TEST_CASE("card render and card verify") {
  check_table({
      {{"card", "render", "--card", "{card}"}, 2, "usage"},
      {{"card", "render", "--card", "{card}", "--format", "gif", "--out", "{tmp}/c.gif"}, 2,
       "usage"},
      {{"card", "render", "--card", "{card}", "--format", "", "--out", "{tmp}/c.png"}, 2, "usage"},
      {{"card", "render", "--card", "0000-0000-0000-0000-0", "--out", "{tmp}/c.png"}, 1,
       "unknown_card"},
      {{"card", "render", "--card", "{card}", "--out", "{tmp}/no/such/dir/c.png"}, 3, "io_error"},
      {{"card", "render", "--card", "{card}", "--out", "{file}/c.png"}, 3, "io_error"},
      {{"card", "render", "--card", "{card}", "--out", "{dir}"}, 3, "io_error"},
      {{"card", "render", "--card", "{card}", "--out", ""}, 3, "io_error"},
      {{"card", "verify", "{token}"}, 2, "usage"},
      {{"card", "verify", "--public-keys", "{pub}"}, 2, "usage"},
      {{"card", "verify", "{token}", "--public-keys", "{tmp}/nope.txt"}, 2, "usage"},
      {{"card", "verify", "{token}", "--public-keys", "{garbage}"}, 2, "usage"},
      {{"card", "verify", "{token}", "--public-keys", "{dir}"}, 2, "usage"},
      {{"card", "verify", "{token}", "--public-keys", "/dev/zero"}, 2, "usage"},
      {{"card", "verify", "garbage", "--public-keys", "{pub}"}, 1, "wrong_prefix"},
      {{"card", "verify", "", "--public-keys", "{pub}"}, 1, "wrong_prefix"},
      {{"card", "verify", "BS1:" + kNotUtf8, "--public-keys", "{pub}"}, 1, "bad_encoding"},
      {{"card", "verify", "{card}", "--public-keys", "{pub}"}, 1, "wrong_prefix"},
  });
}

TEST_CASE("redeem") {
  auto redeem = [](std::string merchant, std::string card, std::string amount, std::string key) {
    return std::vector<std::string>{"redeem",         "--merchant", merchant,           "--card",
                                    card,             "--amount-cents", amount, "--idempotency-key",
                                    key};
  };
  std::vector<Row> rows{
      {{"redeem", "--merchant", "m1", "--card", "{card}"}, 2, "usage"},
      {redeem("m1", "{card}", "10", ""), 2, "usage"},
      {redeem("m1", "{card}", "10", "bad key!"), 2, "usage"},
      {redeem("m1", "{card}", "10", kNotUtf8), 2, "usage"},
      {redeem("m1", "", "10", "k1"), 2, "usage"},
      {redeem("m1", "{card}-7", "10", "k1"), 2, "usage"},
      {redeem("nope", "{card}", "10", "k1"), 1, "forbidden"},
      {redeem("", "{card}", "10", "k2"), 1, "forbidden"},
      {redeem("m1", "0000-0000-0000-0000-0", "10", "k3"), 1, "unknown_card"},
      {redeem("m1", "{card}", "999999", "k4"), 1, "insufficient_funds"},
  };
  for (const std::string& amount : std::vector<std::string>{
           "0", "-1", "+1", "12.5", "1e9", kHugeNumber, "10000001", "", "\xef\xbc\x91"}) {
    rows.push_back({redeem("m1", "{card}", amount, "k5"), 2, "usage"});
  }
  auto with = [&](std::string flag, std::string value) {
    auto args = redeem("m1", "{card}", "10", "k6");
    args.insert(args.end(), {flag, value});
    return args;
  };
  rows.push_back({with("--pin", "12"), 2, "usage"});
  rows.push_back({with("--pin", "1234a"), 2, "usage"});
  rows.push_back({with("--pin", "123456"), 2, "usage"});
  rows.push_back({with("--reference", std::string(129, 'r')), 2, "usage"});
  rows.push_back({with("--reference", "a\tb"), 2, "usage"});
  rows.push_back({with("--reference", kNotUtf8), 2, "usage"});
  check_table(rows);
}

TEST_CASE("issue (bulk CSV)") {
  auto issue = [](std::vector<std::string> extra) {
    std::vector<std::string> args{"issue", "--programme", "p1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  check_table({
      {issue({}), 2, "usage"},
      {issue({"--csv", "{tmp}/nope.csv"}), 2, "usage"},
      {issue({"--csv", "{dir}"}), 2, "usage"},
      {issue({"--csv", "/dev/zero"}), 2, "usage"},
      {issue({"--csv", "{garbage}"}), 2, "usage"},
      {issue({"--csv", "{tmp}/unclosed.csv"}), 2, "usage"},
      {issue({"--csv", "{tmp}/bad.csv"}), 2, "usage", true},
      {issue({"--csv", "{tmp}/bad.csv", "--out", "{file}/cards.pdf"}), 2, "usage", true},
      {{"issue", "--programme", "nope", "--csv", "{tmp}/statement.csv"}, 2, "usage"},
      {{"issue", "--programme", kNotUtf8, "--csv", "{tmp}/bad.csv"}, 2, "usage", true},
  });
}

TEST_CASE("audit, demo, serve") {
  check_table({
      {{"audit", "--since", "1"}, 2, "usage"},
      {{"demo", "--listen", "bogus"}, 2, "usage"},
      {{"demo", "--listen", "127.0.0.1:99999"}, 2, "usage"},
      {{"serve", "--listen", "bogus"}, 2, "usage"},
      {{"serve", "--listen", ""}, 2, "usage"},
      {{"serve", "--listen", "127.0.0.1:-1"}, 2, "usage"},
      {{"serve", "--listen", "127.0.0.1:" + kHugeNumber}, 2, "usage"},
      {{"serve", "--threads", "0"}, 2, "usage"},
      {{"serve", "--threads", kHugeNumber}, 2, "usage"},
      {{"serve", "--handler-threads", "-1"}, 2, "usage"},
      {{"serve", "--read-timeout-ms", "0"}, 2, "usage"},
      {{"serve", "--write-timeout-ms", "0"}, 2, "usage"},
      {{"serve", "--write-timeout-ms", kHugeNumber}, 2, "usage"},
      {{"serve", "--tls-cert", "{tmp}/nope.pem"}, 2, "usage"},
      {{"serve", "--listen", "127.0.0.1:0", "--tls-cert", "{tmp}/nope.pem", "--tls-key",
        "{tmp}/nope.key"},
       2, "invalid_argument"},
      {{"serve", "--listen", "127.0.0.1:0", "--tls-cert", "{garbage}", "--tls-key", "{garbage}"},
       2, "invalid_argument"},
      {{"serve", "--listen", "192.0.2.1:80"}, 3, "unavailable"},  // not an address of this host
  });
}

TEST_CASE("reconcile and settle") {
  const std::string from = day_string(-5), to = day_string(1);
  check_table({
      {{"reconcile", "--from", from}, 2, "usage"},
      {{"reconcile", "--from", "2026-13-01", "--to", to}, 2, "usage"},
      {{"reconcile", "--from", kNotUtf8, "--to", to}, 2, "usage"},
      {{"reconcile", "--from", to, "--to", from}, 2, "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "nope"}, 1, "not_found"},
      {{"reconcile", "--from", from, "--to", to, "--statement", "{tmp}/statement.csv"}, 2, "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "m1", "--statement",
        "{tmp}/nope.csv"},
       2, "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "m1", "--statement", "{dir}"}, 2,
       "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "m1", "--statement", "/dev/zero"},
       2, "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "m1", "--statement", "{garbage}"},
       2, "usage"},
      {{"reconcile", "--from", from, "--to", to, "--merchant", "m1", "--statement",
        "{tmp}/statement.csv"},
       2, "usage"},
      {{"settle"}, 2, "usage"},
      {{"settle", "--period", "2026-13"}, 2, "usage"},
      {{"settle", "--period", "-2026-01"}, 2, "usage"},
      {{"settle", "--period", kHugeNumber}, 2, "usage"},
      {{"settle", "--period", "2099-01"}, 2, "usage"},
      {{"settle", "--period", "2026-01", "--from", from, "--to", to}, 2, "usage"},
      {{"settle", "--from", from}, 2, "usage"},
      {{"settle", "--from", to, "--to", from}, 2, "usage"},
      {{"settle", "--period", "2025-01", "--out", "{file}/x.csv"}, 3, "io_error"},
      {{"settle", "--period", "2025-01", "--out", "{tmp}/no/such/dir/x.csv"}, 3, "io_error"},
  });
}

TEST_CASE("export and verify-export") {
  check_table({
      {{"export", "--format", "jsonl"}, 2, "usage"},
      {{"export", "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", "xml", "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", kNotUtf8, "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", "jsonl", "--since", "0", "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", "jsonl", "--since", "-1", "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", "jsonl", "--since", kHugeNumber, "--out", "{tmp}/x"}, 2, "usage"},
      {{"export", "--format", "jsonl", "--since", "1000", "--out", "{tmp}/x"}, 2,
       "invalid_argument"},
      {{"export", "--format", "csv", "--out", "{file}/x"}, 2, "invalid_argument"},
      {{"export", "--format", "csv", "--out", "{tmp}/no/such/dir/x"}, 2, "invalid_argument"},
      {{"export", "--format", "csv", "--out", "{dir}"}, 3, "io_error"},
      {{"verify-export", "{tmp}/x"}, 2, "usage"},
      {{"verify-export", "{tmp}/nope", "--public-keys", "{pub}"}, 2, "usage"},
      {{"verify-export", "{garbage}", "--public-keys", "{tmp}/nope"}, 2, "usage"},
      {{"verify-export", "{garbage}", "--public-keys", "{garbage}"}, 2, "usage"},
      {{"verify-export", "{dir}", "--public-keys", "{pub}"}, 2, "usage"},
      {{"verify-export", "{garbage}", "--public-keys", "/dev/zero"}, 2, "usage"},
  });
}

TEST_CASE("verify-export of a file that is not an export: exit 1, the finding on stdout") {
  World w;
  const std::string before = w.snapshot();
  for (const std::string& file : {w.vars.at("{garbage}"), w.vars.at("{file}")}) {
    std::vector<std::string> args{"verify-export", file, "--public-keys", w.vars.at("{pub}")};
    Ran r = w.run(args);
    INFO(describe(args, r));
    CHECK(r.rc == 1);
    CHECK(contains(r.out, "FINDING format (line 1)"));
  }
  CHECK(w.snapshot() == before);
}

TEST_CASE("report, backup, restore") {
  check_table({
      {{"report"}, 2, "usage"},
      {{"report", "--html", "{file}/r.html"}, 3, "io_error"},
      {{"report", "--html", "{tmp}/no/such/dir/r.html"}, 3, "io_error"},
      {{"report", "--html", "{tmp}/r.html", "--programme", "nope"}, 1, "not_found"},
      {{"report", "--html", "{tmp}/r.html", "--programme", kNotUtf8}, 1, "not_found"},
      {{"backup"}, 2, "usage"},
      {{"backup", "--to", "{file}/b"}, 3, "io_error"},
      {{"backup", "--to", "{tmp}"}, 1, "already_exists"},
      {{"backup", "--to", "{data}"}, 1, "already_exists"},
      {{"restore"}, 2, "usage"},
      {{"restore", "--from", "{dir}"}, 2, "not_found"},
      {{"restore", "--from", "{dir}", "--force"}, 2, "not_found"},
      {{"restore", "--from", "{tmp}/nope", "--force"}, 2, "not_found"},
      {{"restore", "--from", "{file}", "--force"}, 2, "not_found"},
      {{"restore", "--from", "{data}", "--force"}, 2, "not_found"},
  });
}

TEST_CASE("a data directory that is missing, empty, a file or unwritable") {
  buoni::test::TempDir tmp{(fs::temp_directory_path() / "buoni-badcli-XXXXXX").string()};
  std::ofstream(tmp.sub("file")) << "x";
  fs::create_directories(tmp.sub("empty"));
  for (const std::string& dir :
       {tmp.sub("missing"), tmp.sub("empty"), tmp.sub("file"), std::string(""), kNotUtf8}) {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"audit"}, {"merchant", "list"}, {"key", "show"},
          {"card", "show", "--card", "0000-0000-0000-0000-0"}}) {
      args.insert(args.begin(), {"--data", dir});
      Ran r = run_buoni(args);
      INFO(describe(args, r));
      CHECK(r.rc == 2);
      CHECK(r.err.starts_with("buoni: "));
      CHECK(r.err.find('\n') == r.err.size() - 1);
    }
  }
  Ran r = run_buoni({"--data", tmp.sub("file") + "/data", "init"});
  INFO(describe({"init"}, r));
  CHECK((r.rc == 2 || r.rc == 3));
  CHECK(r.err.find('\n') == r.err.size() - 1);
  CHECK(read_file(tmp.sub("file")) == "x");
}
