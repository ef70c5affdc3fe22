// Cards end to end through the real `buoni` command (API.md, "The buoni
// command"): bulk issuance from a CSV into a printable PDF and a PINs file,
// the PDF's QR codes read back by a real scanner (pdftoppm + zbarimg),
// tokens verified offline with the public key set, redemptions by token and
// PIN, tampered tokens, CSV validation, single-card rendering, key rotation,
// and sealed signing keys.
//
// Each buoni call is a new process on a fresh temporary data directory, so
// every state shown here (a wrong-PIN count, a lock, a rotated key) survived
// a process exit.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/card_number.h"
#include "support.h"

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
using buoni::test::str_field;

// ---- processes -------------------------------------------------------------

std::string describe(const std::string& program, const std::vector<std::string>& args,
                     const Ran& r) {
  std::string s = "$ " + program;
  for (const auto& a : args) s += " '" + a + "'";
  std::string out = r.out.size() > 2000 ? r.out.substr(0, 2000) + "..." : r.out;
  s += "\n  exit " + std::to_string(r.rc) + "\n  stdout: " + out + "\n  stderr: " + r.err;
  return s;
}

// The environment of a child: ours without BUONI_KEY_PASSPHRASE (so the
// caller's shell cannot change a test), plus `extra` ("NAME=value").
std::vector<std::string> child_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view item(*e);
    if (item.starts_with("BUONI_KEY_PASSPHRASE=")) continue;
    env.emplace_back(item);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Runs `program args...` (found on PATH) with stdin /dev/null and
// stdout/stderr captured, in child_env(extra_env); a child still running after
// 60 s is killed.
Ran run_program(const std::string& program, const std::vector<std::string>& args,
                const std::vector<std::string>& extra_env = {}) {
  return buoni::test::run_program(program, args, {.env = child_env(extra_env)});
}

// ---- text and JSON ---------------------------------------------------------

// Lines without their '\n'; a final line without one counts too.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> parts(1);
  for (char c : line) {
    if (c == sep) {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

// One RFC 4180 record (no newline inside): quoted fields may hold commas
// and "" for a quote.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  return fields;
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  REQUIRE(out.good());
}

unsigned file_mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode & 07777);
}

bool valid_card_number(const std::string& text) {
  buoni::ParsedCard p = buoni::parse_card_number(text);
  return p.id.has_value() && buoni::format_card_number(*p.id) == text;
}

// The Base45 alphabet (RFC 9285) of QR tokens after "BS1:".
const std::string base45_alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

// The token with its character at `at` changed to the next Base45 character.
std::string tampered(const std::string& token, std::size_t at) {
  std::string bad = token;
  auto i = base45_alphabet.find(bad.at(at));
  REQUIRE(i != std::string::npos);
  bad[at] = base45_alphabet[(i + 1) % base45_alphabet.size()];
  REQUIRE(bad != token);
  return bad;
}

// ---- directories -----------------------------------------------------------

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir((fs::temp_directory_path() / "buoni-cards-XXXXXX").string()) {}
};

// A fresh data directory under its own temp dir; `env` goes to every call.
struct Data {
  TempDir tmp;
  std::string dir = tmp.path + "/data";
  std::vector<std::string> env;

  explicit Data(std::vector<std::string> environment = {}) : env(std::move(environment)) {
    must({"init"});
  }

  [[nodiscard]] std::string file(const std::string& name) const { return tmp.path + "/" + name; }

  Ran run(std::vector<std::string> args) const { return run_with(std::move(args), env); }
  Ran run_with(std::vector<std::string> args, const std::vector<std::string>& environment) const {
    args.insert(args.begin(), {"--data", dir});
    return run_program(BUONI_BIN, args, environment);
  }
  // Runs and requires exit 0.
  Ran must(const std::vector<std::string>& args) const {
    Ran r = run(args);
    INFO(describe("buoni", args, r));
    REQUIRE(r.rc == 0);
    return r;
  }
  json::object must_json(std::vector<std::string> args) const {
    args.push_back("--json");
    return parse_object(must(args).out);
  }

  void programme(const std::string& id, std::int64_t budget, bool require_pin) const {
    std::vector<std::string> args{
        "programme",    "create",       "--id",           id,
        "--name",       "Buoni " + id,  "--budget-cents", std::to_string(budget),
        "--valid-from", day_string(-1), "--valid-until",  day_string(90)};
    if (require_pin) args.push_back("--require-pin");
    must(args);
  }
  void merchant(const std::string& id, const std::string& programme_id) const {
    must({"merchant", "add", "--id", id, "--name", "Negozio " + id, "--vat-number", "01234567897",
          "--programme", programme_id});
  }
  json::object programme_json(const std::string& id) const {
    return must_json({"programme", "show", "--id", id});
  }
  json::object card_json(const std::string& card) const {
    return must_json({"card", "show", "--card", card});
  }
  std::int64_t balance(const std::string& card) const {
    return int_field(card_json(card), "balance_cents");
  }
  json::object audit() const {
    json::object a = must_json({"audit"});
    CHECK(a.at("ok") == json::value(true));
    return a;
  }
  // Writes `key show` to a file for --public-keys and returns its path.
  std::string public_keys(const std::string& name = "pub.txt") const {
    std::string path = file(name);
    write_file(path, must({"key", "show"}).out);
    return path;
  }
  // What a refused command could have changed in programme `id`.
  std::string snapshot(const std::string& id) const {
    json::object a = audit();
    return json::serialize(programme_json(id)) + "\nentries " +
           std::to_string(int_field(a, "entries")) + " cards " +
           std::to_string(int_field(a, "cards"));
  }
};

// ---- QR codes --------------------------------------------------------------

// Every QR code zbarimg finds in an image, one token each (its stderr,
// D-Bus noise included, is ignored).
std::vector<std::string> scan_image(const std::string& image) {
  std::vector<std::string> args{"--raw", "-q", image};
  Ran r = run_program("zbarimg", args);
  INFO(describe("zbarimg", args, r));
  REQUIRE(r.rc == 0);
  return lines_of(r.out);
}

// Rasterises one page of a PDF at 200 dpi and scans it.
std::vector<std::string> scan_pdf_page(const std::string& pdf, int page, const std::string& dir) {
  std::string prefix = dir + "/page-" + std::to_string(page);
  std::vector<std::string> args{
      "-r",          "200", "-png", "-f", std::to_string(page), "-l", std::to_string(page),
      "-singlefile", pdf,   prefix};
  Ran r = run_program("pdftoppm", args);
  INFO(describe("pdftoppm", args, r));
  REQUIRE(r.rc == 0);
  std::vector<std::string> tokens = scan_image(prefix + ".png");
  std::error_code ec;
  fs::remove(prefix + ".png", ec);
  return tokens;
}

int pdf_pages(const std::string& pdf) {
  Ran r = run_program("pdfinfo", {pdf});
  INFO(describe("pdfinfo", {pdf}, r));
  REQUIRE(r.rc == 0);
  for (const auto& line : lines_of(r.out)) {
    if (line.starts_with("Pages:")) return std::stoi(line.substr(6));
  }
  FAIL("pdfinfo printed no Pages: line");
  return -1;
}

// `buoni card verify TOKEN --public-keys F --json` (offline: no --data).
Ran verify(const std::string& token, const std::string& public_keys) {
  return run_program(BUONI_BIN, {"card", "verify", token, "--public-keys", public_keys, "--json"});
}

// Verifies a token that must be valid; returns its --json answer.
json::object verified(const std::string& token, const std::string& public_keys) {
  Ran r = verify(token, public_keys);
  INFO(describe("buoni card verify", {token}, r));
  REQUIRE(r.rc == 0);
  json::object o = parse_object(r.out);
  CHECK(o.at("valid") == json::value(true));
  return o;
}

// ---- the bulk world: 1,000 cards of a PIN programme -------------------------

constexpr int bulk_cards = 1000;
constexpr std::int64_t bulk_budget = 10'000'000;

struct Bulk {
  Data data;
  std::string csv = data.file("cards.csv");
  std::string pdf = data.file("cards.pdf");
  std::string pins = data.file("pins.csv");
  std::vector<std::string> refs;               // in file order
  std::map<std::string, std::int64_t> amount;  // by ref
  std::int64_t sum = 0;
  Ran first;                                  // the first `buoni issue`
  std::map<std::string, std::string> number;  // by ref, from pins.csv
  std::map<std::string, std::string> pin;     // by card number
  std::string pub;

  Bulk() {
    data.programme("bulk", bulk_budget, true);
    data.merchant("m1", "bulk");
    std::string text = "beneficiary_ref,amount_cents,household_size\n";
    for (int i = 0; i < bulk_cards; ++i) {
      char ref[32];
      std::snprintf(ref, sizeof ref, "FAM-%04d", i);
      std::int64_t cents = 1000 + (static_cast<std::int64_t>(i) * 7919) % 9000;
      refs.emplace_back(ref);
      amount[ref] = cents;
      sum += cents;
      text +=
          std::string(ref) + "," + std::to_string(cents) + "," + std::to_string(i % 6 + 1) + "\n";
    }
    write_file(csv, text);
    first = data.run(
        {"issue", "--programme", "bulk", "--csv", csv, "--out", pdf, "--pins-out", pins, "--json"});
    INFO(describe("buoni issue", {csv}, first));
    REQUIRE(first.rc == 0);
    for (const auto& line : lines_of(read_file(pins))) {
      auto f = split(line, ',');
      if (f.size() == 3 && f[0] != "beneficiary_ref") {
        number[f[0]] = f[1];
        pin[f[1]] = f[2];
      }
    }
    pub = data.public_keys();
  }

  // The card numbers of CSV lines [first, first + n) (0-based rows).
  std::set<std::string> numbers_of_rows(std::size_t from, std::size_t n) const {
    std::set<std::string> out;
    for (std::size_t i = from; i < from + n && i < refs.size(); ++i) out.insert(number.at(refs[i]));
    return out;
  }
};

std::unique_ptr<Bulk>& bulk_ptr() {
  static std::unique_ptr<Bulk> b;
  return b;
}

Bulk& bulk() {
  if (!bulk_ptr()) bulk_ptr() = std::make_unique<Bulk>();
  return *bulk_ptr();
}

// Tokens decoded from the bulk PDF by page, shared by the QR and tamper tests.
std::map<int, std::vector<std::string>>& scanned_pages() {
  static std::map<int, std::vector<std::string>> pages;
  return pages;
}

const std::vector<std::string>& page_tokens(int page) {
  auto& pages = scanned_pages();
  auto it = pages.find(page);
  if (it == pages.end()) {
    it = pages.emplace(page, scan_pdf_page(bulk().pdf, page, bulk().data.tmp.path)).first;
  }
  return it->second;
}

std::size_t tokens_verified = 0;  // for the report line at the end

}  // namespace

TEST_CASE(
    "bulk issuance: 1,000 cards from a CSV, a 125-page PDF, a 0600 PINs file; a re-run "
    "issues nothing") {
  Bulk& b = bulk();
  json::object answer = parse_object(b.first.out);
  CHECK(int_field(answer, "issued") == bulk_cards);
  CHECK(int_field(answer, "existing") == 0);
  CHECK(int_field(answer, "declined") == 0);
  CHECK(int_field(answer, "issued_cents") == b.sum);
  CHECK(int_field(answer, "remaining_budget_cents") == bulk_budget - b.sum);

  json::object p = b.data.programme_json("bulk");
  CHECK(int_field(p, "issued_cents") == b.sum);
  CHECK(int_field(p, "cards") == bulk_cards);

  // PINs: mode 0600, the header, then one line per card with a valid
  // number and a 5-digit PIN; every reference of the file, each once.
  CHECK(file_mode(b.pins) == 0600);
  std::vector<std::string> pin_lines = lines_of(read_file(b.pins));
  REQUIRE(pin_lines.size() == bulk_cards + 1);
  CHECK(pin_lines[0] == "beneficiary_ref,card_number,pin");
  std::set<std::string> refs_seen, numbers_seen;
  for (std::size_t i = 1; i < pin_lines.size(); ++i) {
    auto f = split(pin_lines[i], ',');
    INFO("pins.csv line " << i + 1 << ": " << pin_lines[i]);
    REQUIRE(f.size() == 3);
    CHECK(b.amount.count(f[0]) == 1);
    CHECK(valid_card_number(f[1]));
    CHECK(f[2].size() == 5);
    CHECK(all_digits(f[2]));
    refs_seen.insert(f[0]);
    numbers_seen.insert(f[1]);
  }
  CHECK(refs_seen.size() == bulk_cards);
  CHECK(numbers_seen.size() == bulk_cards);

  // A few cards carry their line's reference and amount.
  for (std::size_t row : {std::size_t{0}, std::size_t{499}, std::size_t{999}}) {
    const std::string& ref = b.refs[row];
    json::object c = b.data.card_json(b.number.at(ref));
    CHECK(str_field(c, "beneficiary_ref") == ref);
    CHECK(str_field(c, "programme") == "bulk");
    CHECK(int_field(c, "balance_cents") == b.amount.at(ref));
  }

  CHECK(pdf_pages(b.pdf) == bulk_cards / 8);

  // Re-running the same file: nothing new, every reference reported existing.
  json::object audit_before = b.data.audit();
  const std::string programme_before = json::serialize(b.data.programme_json("bulk"));
  std::string pins2 = b.data.file("pins-rerun.csv");
  json::object again =
      b.data.must_json({"issue", "--programme", "bulk", "--csv", b.csv, "--pins-out", pins2});
  CHECK(int_field(again, "issued") == 0);
  CHECK(int_field(again, "existing") == bulk_cards);
  CHECK(int_field(again, "declined") == 0);
  CHECK(int_field(again, "issued_cents") == 0);
  CHECK(int_field(again, "remaining_budget_cents") == bulk_budget - b.sum);
  CHECK(again.at("existing_refs").as_array().size() == bulk_cards);
  json::object p2 = b.data.programme_json("bulk");
  CHECK(json::serialize(p2) == programme_before);
  CHECK(int_field(p2, "issued_cents") == b.sum);
  CHECK(int_field(p2, "cards") == bulk_cards);
  json::object audit_after = b.data.audit();
  CHECK(int_field(audit_after, "entries") == int_field(audit_before, "entries"));
  CHECK(int_field(audit_after, "cards") == int_field(audit_before, "cards"));
  CHECK(file_mode(pins2) == 0600);
  CHECK(lines_of(read_file(pins2)) == std::vector<std::string>{"beneficiary_ref,card_number,pin"});

  // The PINs file is never overwritten: naming an existing one is refused.
  const std::string pins_text = read_file(b.pins);
  Ran clobber = b.data.run({"issue", "--programme", "bulk", "--csv", b.csv, "--pins-out", b.pins});
  INFO(describe("buoni issue (existing --pins-out)", {}, clobber));
  CHECK(clobber.rc == 2);
  CHECK(one_line(clobber.err));
  CHECK(read_file(b.pins) == pins_text);
}

TEST_CASE(
    "the PDF's QR codes scan, verify offline, name the page's cards, and redeem with the "
    "PIN") {
  Bulk& b = bulk();
  // Page N holds CSV rows 8(N-1) .. 8N-1, in file order.
  for (int page : {1, 63, 125}) {
    CAPTURE(page);
    const std::vector<std::string>& tokens = page_tokens(page);
    CHECK(tokens.size() == 8);
    std::set<std::string> decoded;
    for (const auto& token : tokens) {
      CHECK(token.starts_with("BS1:"));
      CHECK(token.size() == 123);
      json::object v = verified(token, b.pub);
      ++tokens_verified;
      std::string number = str_field(v, "card_number");
      CHECK(b.pin.count(number) == 1);  // one of the issued cards
      CHECK(int_field(v, "key_id") == 1);
      decoded.insert(number);
    }
    CHECK(decoded == b.numbers_of_rows(static_cast<std::size_t>(page - 1) * 8, 8));
  }

  // Redeem with a scanned token and the card's PIN from pins.csv.
  const std::string token = page_tokens(1).at(0);
  const std::string number = str_field(verified(token, b.pub), "card_number");
  const std::string pin = b.pin.at(number);
  const std::int64_t start = b.data.balance(number);
  REQUIRE(start >= 2000);
  const std::vector<std::string> sale{
      "redeem", "--merchant",        "m1", "--card", token, "--pin", pin, "--amount-cents",
      "500",    "--idempotency-key", "k1", "--json"};
  Ran r = b.data.run(sale);
  INFO(describe("buoni", sale, r));
  REQUIRE(r.rc == 0);
  CHECK(int_field(parse_object(r.out), "balance_cents") == start - 500);
  CHECK(b.data.balance(number) == start - 500);

  std::string wrong = pin;
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  auto attempt = [&](const std::string& with_pin, const std::string& key) {
    std::vector<std::string> args{"redeem", "--merchant",     "m1",  "--card",
                                  token,    "--amount-cents", "500", "--idempotency-key",
                                  key,      "--json"};
    if (!with_pin.empty()) {
      args.push_back("--pin");
      args.push_back(with_pin);
    }
    Ran a = b.data.run(args);
    INFO(describe("buoni", args, a));
    CHECK(one_line(a.err) == (a.rc != 0));
    return a;
  };

  // Each attempt is a new process: the count lives in the store.
  for (int i = 1; i <= 3; ++i) {
    CAPTURE(i);
    Ran w = attempt(wrong, "w" + std::to_string(i));
    CHECK(w.rc == 1);
    CHECK(error_code(w.out) == "wrong_pin");
  }
  Ran fourth = attempt(wrong, "w4");
  CHECK(fourth.rc == 1);
  CHECK(error_code(fourth.out) == "pin_locked");
  Ran locked = attempt(pin, "k2");
  CHECK(locked.rc == 1);
  CHECK(error_code(locked.out) == "pin_locked");
  Ran no_pin = attempt("", "k3");
  CHECK(no_pin.rc == 1);
  CHECK(error_code(no_pin.out) == "pin_locked");
  CHECK(b.data.balance(number) == start - 500);

  b.data.must({"card", "unlock-pin", "--card", number});
  Ran unlocked = attempt(pin, "k4");  // a new key: k2's decline is recorded under k2
  REQUIRE(unlocked.rc == 0);
  CHECK(int_field(parse_object(unlocked.out), "balance_cents") == start - 1000);
  CHECK(b.data.balance(number) == start - 1000);
  Ran missing = attempt("", "k5");
  CHECK(missing.rc == 1);
  CHECK(error_code(missing.out) == "pin_required");

  // A right PIN clears the count: 3 wrong, right, then a wrong one is
  // wrong_pin again, not a lock.
  for (int i = 1; i <= 3; ++i) {
    CHECK(error_code(attempt(wrong, "x" + std::to_string(i)).out) == "wrong_pin");
  }
  CHECK(attempt(pin, "x4").rc == 0);
  CHECK(error_code(attempt(wrong, "x5").out) == "wrong_pin");
  CHECK(b.data.balance(number) == start - 1500);

  // A retried wrong PIN (same idempotency key) is answered again but not
  // counted again: five replays of x5 leave the count at 1, so three more
  // wrong tries are still wrong_pin and the fourth in all locks.
  for (int i = 0; i < 5; ++i) CHECK(error_code(attempt(wrong, "x5").out) == "wrong_pin");
  for (int i = 6; i <= 7; ++i) {
    CHECK(error_code(attempt(wrong, "x" + std::to_string(i)).out) == "wrong_pin");
  }
  CHECK(error_code(attempt(wrong, "x8").out) == "pin_locked");
  b.data.must({"card", "unlock-pin", "--card", number});
  b.data.audit();
}

TEST_CASE("a token with one character changed does not verify and redeems nothing") {
  Bulk& b = bulk();
  const std::string token = page_tokens(63).at(3);
  const std::string number = str_field(verified(token, b.pub), "card_number");
  const std::string pin = b.pin.at(number);
  auto state = [&] {
    return b.data.snapshot("bulk") + "\n" + json::serialize(b.data.card_json(number));
  };
  const std::string before = state();
  const std::set<std::string> names{"wrong_prefix",    "bad_encoding", "wrong_length",
                                    "unknown_version", "unknown_key",  "bad_signature"};
  std::size_t n = 0;
  for (std::size_t at : {std::size_t{4}, std::size_t{5}, std::size_t{9}, std::size_t{30},
                         std::size_t{61}, std::size_t{90}, std::size_t{121}, std::size_t{122}}) {
    CAPTURE(at);
    const std::string bad = tampered(token, at);
    Ran v = verify(bad, b.pub);
    INFO(describe("buoni card verify", {bad}, v));
    CHECK(v.rc == 1);
    json::object o = parse_object(v.out);
    CHECK(o.at("valid") == json::value(false));
    CHECK(names.count(str_field(o, "error")) == 1);
    CHECK(one_line(v.err));

    std::vector<std::string> sale{"redeem",
                                  "--merchant",
                                  "m1",
                                  "--card",
                                  bad,
                                  "--pin",
                                  pin,
                                  "--amount-cents",
                                  "100",
                                  "--idempotency-key",
                                  "tamper-" + std::to_string(++n),
                                  "--json"};
    Ran r = b.data.run(sale);
    INFO(describe("buoni", sale, r));
    CHECK(r.rc == 2);
    CHECK(one_line(r.err));
  }
  CHECK(state() == before);
}

TEST_CASE("bulk CSV validation: every bad line reported with its line number; nothing issued") {
  Data d;
  d.programme("q", 100'000, true);
  json::object first = d.must_json({"card", "issue", "--programme", "q", "--beneficiary-ref",
                                    "ALREADY", "--amount-cents", "1000"});
  CHECK(first.if_contains("pin") != nullptr);
  const std::string before = d.snapshot("q");
  int n = 0;

  // Runs `buoni issue` on `text`: exit 2, every `want` on stderr, no PINs file, nothing changed.
  auto refused = [&](const std::string& what, const std::string& text,
                     const std::vector<std::string>& want) {
    CAPTURE(what);
    std::string csv = d.file("bad-" + std::to_string(++n) + ".csv");
    std::string pins = d.file("pins-" + std::to_string(n) + ".csv");
    write_file(csv, text);
    std::vector<std::string> args{"issue", "--programme", "q", "--csv", csv, "--pins-out", pins};
    Ran r = d.run(args);
    INFO(describe("buoni", args, r));
    CHECK(r.rc == 2);
    for (const auto& w : want) CHECK_MESSAGE(contains(r.err, w), "stderr lacks: " << w);
    CHECK(!fs::exists(pins));
    CHECK(d.snapshot("q") == before);
    return r;
  };

  const std::string header = "beneficiary_ref,amount_cents,household_size\n";
  refused("too few fields", header + "A,100,1\nB,200\nC,300,2\n", {"line 3"});
  refused("too many fields", header + "A,100,1\nB,200,2\nC,300,2,x\n", {"line 4"});
  for (const std::string amount : {"12.5", "-3", "1e9", "abc", "", "1000000000", "+5", "0x10"}) {
    CAPTURE(amount);
    Ran r =
        refused("bad amount", header + "A,100,1\nB," + amount + ",2\n", {"line 3", "amount_cents"});
    CHECK(count_of(r.err, "line ") == 1);
  }
  refused("duplicate reference", header + "A,100,1\nB,200,1\nC,300,1\nB,400,1\n",
          {"line 5", "line 3"});
  refused("empty reference", header + "A,100,1\n,200,1\n", {"line 3", "beneficiary_ref"});
  refused("reference over 64 characters", header + "A,100,1\n" + std::string(65, 'R') + ",200,1\n",
          {"line 3", "beneficiary_ref"});
  refused("over the remaining budget (99,000)", header + "A,60000,1\nB,39001,1\n", {"budget"});
  refused("no amount_cents column", "beneficiary_ref,amount,household_size\nA,100,1\n",
          {"amount_cents"});
  refused("no beneficiary_ref column", "ref,amount_cents\nA,100\n", {"beneficiary_ref"});
  refused("unterminated quote", header + "A,100,1\n\"B,200,1\nC,300,1\n", {"line 3"});
  refused("empty file", "", {"empty"});
  refused("only blank lines", "\n\n\r\n", {"empty"});

  // Several bad lines at once: each reported on its own line, plus a total.
  Ran many = refused("five bad lines",
                     header +
                         "A,100,1\n"  // 2
                         "B,1.5,1\n"  // 3 bad amount
                         "C,300\n"    // 4 too few fields
                         "D,400,1\n"  // 5
                         ",500,1\n"   // 6 empty reference
                         "A,600,1\n"  // 7 repeats line 2
                         "\n"         // 8 blank, skipped
                         "E,-7,1\n",  // 9 bad amount
                     {"line 3", "line 4", "line 6", "line 7", "line 9"});
  CHECK(count_of(many.err, "\n") == 6);
  CHECK(count_of(many.err, "--csv line ") == 5);
  CHECK(contains(many.err, "5 problem"));
  CHECK(!contains(many.err, "line 5"));
  CHECK(!contains(many.err, "line 8"));

  // The boundary: exactly the remaining budget is accepted.
  std::string ok_csv = d.file("exact.csv");
  write_file(ok_csv, header + "A,60000,1\nB,39000,1\n");
  json::object exact = d.must_json(
      {"issue", "--programme", "q", "--csv", ok_csv, "--pins-out", d.file("pins-exact.csv")});
  CHECK(int_field(exact, "issued") == 2);
  CHECK(int_field(exact, "remaining_budget_cents") == 0);
  CHECK(int_field(d.programme_json("q"), "cards") == 3);
  d.audit();
}

TEST_CASE(
    "card render: the PNG's QR is the card's token; svg and pdf are written; a bad format "
    "is refused") {
  Data d;
  d.programme("r", 100'000, false);
  json::object issued = d.must_json(
      {"card", "issue", "--programme", "r", "--beneficiary-ref", "R-1", "--amount-cents", "2500"});
  const std::string number = str_field(issued, "number");
  const std::string token = str_field(issued, "token");
  CHECK(issued.if_contains("pin") == nullptr);  // the programme has no PINs

  const std::string png = d.file("c.png");
  json::object wrote =
      d.must_json({"card", "render", "--card", number, "--format", "png", "--out", png});
  CHECK(str_field(wrote, "card") == number);
  CHECK(scan_image(png) == std::vector<std::string>{token});

  const std::string svg = d.file("c.svg");
  d.must({"card", "render", "--card", number, "--format", "svg", "--out", svg});
  CHECK(contains(read_file(svg), "<svg"));

  const std::string pdf = d.file("c.pdf");
  d.must({"card", "render", "--card", token, "--format", "pdf", "--out", pdf});  // by token
  CHECK(read_file(pdf).starts_with("%PDF-"));
  CHECK(pdf_pages(pdf) == 1);
  CHECK(scan_pdf_page(pdf, 1, d.tmp.path) == std::vector<std::string>{token});

  const std::string gif = d.file("c.gif");
  Ran bad = d.run({"card", "render", "--card", number, "--format", "gif", "--out", gif});
  INFO(describe("buoni card render --format gif", {}, bad));
  CHECK(bad.rc == 2);
  CHECK(one_line(bad.err));
  CHECK(!fs::exists(gif));
}

TEST_CASE(
    "card issue --json: token, link and a PIN shown once; key rotation keeps old tokens "
    "valid") {
  Data d;
  d.programme("k", 100'000, true);
  d.merchant("m1", "k");
  const std::vector<std::string> issue{
      "card",           "issue", "--programme",       "k", "--beneficiary-ref", "K-1",
      "--amount-cents", "3000",  "--idempotency-key", "i1"};
  json::object a = d.must_json(issue);
  const std::string number = str_field(a, "number");
  const std::string token = str_field(a, "token");
  const std::string link = str_field(a, "link");
  const std::string pin = str_field(a, "pin");
  CHECK(token.size() == 123);
  CHECK(token.starts_with("BS1:"));
  CHECK(link.size() == 106);
  CHECK(pin.size() == 5);
  CHECK(all_digits(pin));

  json::object replay = d.must_json(issue);
  CHECK(str_field(replay, "number") == number);
  CHECK(str_field(replay, "token") == token);
  CHECK(str_field(replay, "link") == link);
  CHECK(replay.if_contains("pin") == nullptr);
  CHECK(int_field(d.programme_json("k"), "cards") == 1);

  const std::string pub1 = d.public_keys("pub1.txt");
  CHECK(lines_of(read_file(pub1)).size() == 1);
  CHECK(str_field(verified(token, pub1), "card_number") == number);
  CHECK(str_field(verified(link, pub1), "card_number") == number);  // the link form too

  json::object rotated = d.must_json({"key", "rotate"});
  CHECK(int_field(rotated, "key_id") == 2);
  json::object shown = d.must_json({"key", "show"});
  CHECK(shown.at("keys").as_array().size() == 2);
  const std::string pub2 = d.public_keys("pub2.txt");
  CHECK(lines_of(read_file(pub2)).size() == 2);

  json::object b = d.must_json({"card", "issue", "--programme", "k", "--beneficiary-ref", "K-2",
                                "--amount-cents", "4000", "--idempotency-key", "i2"});
  const std::string token2 = str_field(b, "token");
  json::object v2 = verified(token2, pub2);
  CHECK(str_field(v2, "card_number") == str_field(b, "number"));
  CHECK(int_field(v2, "key_id") == 2);
  // The old key set does not know key 2.
  Ran old_set = verify(token2, pub1);
  CHECK(old_set.rc == 1);
  CHECK(str_field(parse_object(old_set.out), "error") == "unknown_key");
  // The old card's token still verifies (key 1) and still redeems.
  json::object v1 = verified(token, pub2);
  CHECK(str_field(v1, "card_number") == number);
  CHECK(int_field(v1, "key_id") == 1);
  json::object sale = d.must_json({"redeem", "--merchant", "m1", "--card", token, "--pin", pin,
                                   "--amount-cents", "1000", "--idempotency-key", "s1"});
  CHECK(int_field(sale, "balance_cents") == 2000);
  json::object sale2 =
      d.must_json({"redeem", "--merchant", "m1", "--card", token2, "--pin", str_field(b, "pin"),
                   "--amount-cents", "1500", "--idempotency-key", "s2"});
  CHECK(int_field(sale2, "balance_cents") == 2500);
  d.audit();
}

TEST_CASE("bulk issuance: PINs file optional without require_pin, required with it") {
  Data d;
  d.programme("plain", 100'000, false);
  d.programme("pinned", 100'000, true);
  // As a spreadsheet saves it: a byte order mark, CRLF, quoted fields.
  std::string text = "\xEF\xBB\xBF\"beneficiary_ref\",\"amount_cents\"\r\n";
  for (int i = 0; i < 20; ++i) text += "\"P-" + std::to_string(i) + "\",100\r\n";
  const std::string csv = d.file("twenty.csv");
  write_file(csv, text);

  json::object plain = d.must_json({"issue", "--programme", "plain", "--csv", csv});
  CHECK(int_field(plain, "issued") == 20);
  CHECK(int_field(plain, "issued_cents") == 2000);
  CHECK(int_field(d.programme_json("plain"), "cards") == 20);

  const std::string before = d.snapshot("pinned");
  std::vector<std::string> args{"issue", "--programme", "pinned", "--csv", csv};
  Ran r = d.run(args);
  INFO(describe("buoni", args, r));
  CHECK(r.rc == 2);
  CHECK(one_line(r.err));
  CHECK(contains(r.err, "--pins-out"));
  CHECK(d.snapshot("pinned") == before);
  json::object p = d.programme_json("pinned");
  CHECK(int_field(p, "cards") == 0);
  CHECK(int_field(p, "issued_cents") == 0);

  json::object pinned = d.must_json(
      {"issue", "--programme", "pinned", "--csv", csv, "--pins-out", d.file("pins.csv")});
  CHECK(int_field(pinned, "issued") == 20);
  CHECK(lines_of(read_file(d.file("pins.csv"))).size() == 21);
}

// The PINs file goes to mail merges and spreadsheets: a reference may hold
// a comma or a quote (printable ASCII is allowed), so its fields must be
// quoted as RFC 4180 says or every later column shifts.
TEST_CASE("bulk issuance: the PINs file stays valid CSV for references with commas and quotes") {
  Data d;
  d.programme("c", 100'000, true);
  const std::string csv = d.file("quoted.csv");
  write_file(csv,
             "beneficiary_ref,amount_cents\n\"Rossi, Mario\",100\n\"say \"\"hi\"\"\",200\n"
             "plain,300\n");
  const std::string pins = d.file("pins.csv");
  json::object r = d.must_json({"issue", "--programme", "c", "--csv", csv, "--pins-out", pins});
  CHECK(int_field(r, "issued") == 3);
  INFO("pins.csv:\n" << read_file(pins));
  std::vector<std::string> lines = lines_of(read_file(pins));
  REQUIRE(lines.size() == 4);
  std::set<std::string> refs;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    std::vector<std::string> f = csv_fields(lines[i]);  // RFC 4180, as a spreadsheet reads it
    CHECK(f.size() == 3);
    if (f.size() != 3) continue;
    refs.insert(f[0]);
    CHECK(valid_card_number(f[1]));
    CHECK(f[2].size() == 5);
    CHECK(all_digits(f[2]));
  }
  CHECK(refs == std::set<std::string>{"Rossi, Mario", "say \"hi\"", "plain"});
}

// An --out that cannot be written is found only after every card is issued
// and acknowledged: the command then fails (exit 3, "unavailable") although
// its cards exist, and says nothing of them. It should be refused first, as
// an unwritable --pins-out is.
TEST_CASE("bulk issuance: an unwritable --out is refused before anything is issued") {
  Data d;
  d.programme("o", 100'000, true);
  const std::string csv = d.file("two.csv");
  write_file(csv, "beneficiary_ref,amount_cents\nA,100\nB,200\n");
  const std::string before = d.snapshot("o");
  std::vector<std::string> args{"issue",
                                "--programme",
                                "o",
                                "--csv",
                                csv,
                                "--pins-out",
                                d.file("pins.csv"),
                                "--out",
                                d.file("no-such-dir/cards.pdf")};
  Ran r = d.run(args);
  INFO(describe("buoni", args, r));
  CHECK((r.rc == 2 || r.rc == 3));
  CHECK(one_line(r.err));
  CHECK(d.snapshot("o") == before);
  CHECK(int_field(d.programme_json("o"), "cards") == 0);
}

TEST_CASE("sealed signing keys: BUONI_KEY_PASSPHRASE is needed to sign, a wrong one fails") {
  const std::string env = "BUONI_KEY_PASSPHRASE=secret1";
  Data d({env});
  const std::string key_file = d.dir + "/keys/signing-1.key";
  CHECK(read_file(key_file).starts_with("buoni-ed25519-sealed-v1"));
  CHECK(file_mode(key_file) == 0600);

  d.programme("s", 100'000, false);
  d.merchant("m1", "s");
  json::object card = d.must_json(
      {"card", "issue", "--programme", "s", "--beneficiary-ref", "S-1", "--amount-cents", "1000"});
  const std::string pub = d.public_keys();
  CHECK(str_field(verified(str_field(card, "token"), pub), "card_number") ==
        str_field(card, "number"));

  const std::vector<std::string> issue{
      "card", "issue", "--programme", "s", "--beneficiary-ref", "S-2", "--amount-cents", "1000"};
  Ran none = d.run_with(issue, {});
  INFO(describe("buoni (no passphrase)", issue, none));
  CHECK((none.rc == 2 || none.rc == 3));
  CHECK(one_line(none.err));
  CHECK(contains(none.err, "BUONI_KEY_PASSPHRASE"));

  Ran wrong = d.run_with(issue, {"BUONI_KEY_PASSPHRASE=secret2"});
  INFO(describe("buoni (wrong passphrase)", issue, wrong));
  CHECK((wrong.rc == 2 || wrong.rc == 3));
  CHECK(one_line(wrong.err));
  CHECK(contains(wrong.err, "passphrase"));

  json::object p = d.programme_json("s");
  CHECK(int_field(p, "cards") == 1);
  CHECK(int_field(p, "issued_cents") == 1000);
  json::object sale = d.must_json({"redeem", "--merchant", "m1", "--card", str_field(card, "token"),
                                   "--amount-cents", "250", "--idempotency-key", "s1"});
  CHECK(int_field(sale, "balance_cents") == 750);
  d.audit();
}

TEST_CASE("report") {
  // Figures for the log: how much the QR path exercised in this run.
  MESSAGE("cards issued in bulk " << (bulk_ptr() ? bulk_ptr()->pin.size() : 0)
                                  << ", PDF pages decoded " << scanned_pages().size()
                                  << ", tokens verified from the PDF " << tokens_verified);
}
