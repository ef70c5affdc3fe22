// Export tests: a real history (engine on RocksDB: programmes, shops, cards,
// sales, holds, captures, refunds, a replacement, a top-up, a burst of sales
// in shared batches) exports in both formats and verifies with the public
// keys alone; then each tampering of the file is found and named (check,
// seq, what differs); then the CLI end to end (`buoni export`,
// `buoni verify-export`: exit codes, messages, --json, atomic output).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/export.h"
#include "engine/export_format.h"
#include "engine/ledger.h"
#include "storage/rocks_store.h"
#include "support.h"

namespace {

using buoni::CardId;
using buoni::Hash32;
using buoni::SeededRandom;
using buoni::SigningKey;
using buoni::VerifyKey;
using namespace buoni::engine;  // NOLINT: the engine's export is what this file tests
using buoni::storage::open_primary;
using buoni::storage::RocksOptions;
using buoni::storage::RocksStore;
using buoni::test::contains;
using buoni::test::Ran;
using buoni::test::run_program;

constexpr TimeMs kDay = 86'400'000;
constexpr Day kMar1 = 20513;
constexpr Day kMar31 = 20543;
constexpr TimeMs kT0 = kMar1 * kDay + 36'000'000;
constexpr int kBurst = 24;  // sales submitted at once: several entries per checkpoint

struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir("/tmp/buoni_export_test_XXXXXX") {}
};

struct History {
  TempDir dir;
  std::unique_ptr<RocksStore> store;
  ManualClock clock{kT0};
  SeededRandom random{77};
  SigningKey signing_key = SigningKey::generate(1);
  std::uint64_t sale_seq = 0;
  CardId c1, c2;

  History() {
    auto opened =
        open_primary(dir.path + "/db", RocksOptions{.create_if_missing = true, .sync = false});
    REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
    store = std::move(opened).value();
    auto engine_or = Engine::open(*store, signing_key, clock, random);
    REQUIRE_MESSAGE(engine_or.ok(), engine_or.status().to_string());
    std::unique_ptr<Engine> engine = std::move(engine_or).value();
    auto run = [&](Caller caller, Command command) {
      clock.advance(1'000);
      auto r = engine->execute(Request{std::move(caller), "", std::move(command)});
      REQUIRE_MESSAGE(r.ok(), r.status().to_string());
      REQUIRE_MESSAGE(r->outcome.ok(), std::string(code_name(r->outcome.code)));
      return r->outcome;
    };
    auto card_of = [](const std::string& number) { return *buoni::parse_card_number(number).id; };
    CreateProgramme p;
    p.id = "p1";
    p.name = "Buoni p1";
    p.budget_cents = 1'000'000;
    p.valid_from_day = kMar1;
    p.valid_until_day = kMar31;
    run(Caller::admin(), p);
    AddMerchant m{"m1", "Alimentari Rossi", "01234567897", {"p1"}, buoni::blake2b_256("mk")};
    run(Caller::admin(), m);
    c1 = card_of(run(Caller::admin(), IssueCard{"p1", "ben-1", 50'000}).card);
    c2 = card_of(run(Caller::admin(), IssueCard{"p1", "ben-2", 50'000}).card);
    Outcome sale = run(Caller::merchant("m1"), Redeem{c1, 2'000, "sale-1"});
    sale_seq = sale.ledger_seq;
    Outcome hold = run(Caller::merchant("m1"), Authorize{c2, 3'000, "delivery-1", 0});
    run(Caller::merchant("m1"), Capture{hold.id, 2'000});
    run(Caller::merchant("m1"), RefundRedemption{sale.id, 500});
    CardId c1_new = card_of(run(Caller::admin(), ReplaceCard{c1}).new_card);
    run(Caller::admin(), LoadCard{c2, 1'000});
    std::atomic<int> done{0};
    for (int i = 0; i < kBurst; ++i) {
      engine->submit({Caller::merchant("m1"), "", Redeem{i % 2 ? c2 : c1_new, 10 + i, ""}},
                     [&done](buoni::StatusOr<Result>) { done.fetch_add(1); });
    }
    while (done.load() < kBurst) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    engine.reset();
  }

  [[nodiscard]] std::vector<VerifyKey> keys() const { return {{1, signing_key.public_key}}; }
  std::uint64_t head_seq() const { return read_head(*store).value().seq; }
  Entry entry(std::uint64_t seq) const {
    Entry e;
    auto raw = store->get(Space::ledger, keys::ledger(seq));
    REQUIRE((raw.ok() && raw->has_value()));
    REQUIRE(decode(**raw, e).ok());
    return e;
  }
  std::string exported(ExportFormat format, std::uint64_t since = 1) const {
    std::ostringstream out;
    auto s = export_ledger(*store, since, format, kT0, out);
    REQUIRE_MESSAGE(s.ok(), s.status().to_string());
    return out.str();
  }
};

// One History for the whole file: it is only read.
const History& history() {
  static History h;
  return h;
}

ExportVerdict verify(const std::string& text, const std::vector<VerifyKey>& keys) {
  std::istringstream in(text);
  auto v = verify_export(in, keys);
  REQUIRE_MESSAGE(v.ok(), v.status().to_string());
  return std::move(v).value();
}
ExportVerdict verify(const std::string& text) {
  return verify(text, history().keys());
}

std::string findings_of(const ExportVerdict& v) {
  std::string s;
  for (const auto& f : v.findings) s += f.to_string() + "\n";
  return s + v.summary();
}

// True when a finding of `check` at `seq` says `detail_part`.
bool has(const ExportVerdict& v, const std::string& check, std::uint64_t seq,
         const std::string& detail_part) {
  return std::any_of(v.findings.begin(), v.findings.end(), [&](const Finding& f) {
    return f.check == check && f.seq == seq && contains(f.detail, detail_part);
  });
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}
std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::size_t entry_line(const std::vector<std::string>& lines, std::uint64_t seq) {
  std::string mark = "{\"record\":\"entry\",\"seq\":" + std::to_string(seq) + ",";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].starts_with(mark)) return i;
  }
  FAIL("no line for entry " << seq);
  return 0;
}

// Replaces the first `from` in `line` by `to` (REQUIREs it is there).
void replace_in(std::string& line, const std::string& from, const std::string& to) {
  std::size_t at = line.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from << " not in " << line);
  line.replace(at, from.size(), to);
}

std::string field(const std::string& line, const std::string& name) {
  std::string mark = "\"" + name + "\":\"";
  std::size_t at = line.find(mark);
  REQUIRE(at != std::string::npos);
  at += mark.size();
  return line.substr(at, line.find('"', at) - at);
}

std::string body_hex(const Entry& e) {
  Writer w;
  write_entry_body(w, e);
  return buoni::to_hex(buoni::as_bytes(w.bytes()));
}

// Rewrites entry line `i` as `e` (readable fields, body, hash recomputed from `prev`).
void rewrite_entry(std::string& line, const Entry& old, const Entry& e, const Hash32& prev) {
  replace_in(line, "\"amount_cents\":" + std::to_string(old.amount_cents),
             "\"amount_cents\":" + std::to_string(e.amount_cents));
  replace_in(line, field(line, "body"), body_hex(e));
  replace_in(line, "\"prev_hash\":\"" + field(line, "prev_hash"),
             "\"prev_hash\":\"" + buoni::to_hex(prev));
  replace_in(line, "\"hash\":\"" + field(line, "hash"),
             "\"hash\":\"" + buoni::to_hex(chain_hash(prev, e)));
}

}  // namespace

TEST_CASE("an export in either format verifies with the public keys alone") {
  const History& h = history();
  std::uint64_t head = h.head_seq();
  REQUIRE(head >= 10 + kBurst);
  for (ExportFormat format : {ExportFormat::jsonl, ExportFormat::csv}) {
    CAPTURE(export_format_name(format));
    std::string text = h.exported(format);
    ExportVerdict v = verify(text);
    INFO(findings_of(v));
    CHECK(v.ok());
    CHECK(v.format == format);
    CHECK(v.entries == head);
    CHECK(v.first_seq == 1);
    CHECK(v.verified_seq == head);
    CHECK(v.verified_entries == head);
    CHECK(v.checkpoints >= 10);
    CHECK(v.checkpoints < head);  // the burst shared checkpoints
    CHECK(v.summary() == "all " + std::to_string(head) +
                             " entries verified, up to checkpoint seq " + std::to_string(head));
    for (const char* kind :
         {"fund", "issue", "redeem", "hold", "capture", "release", "refund", "transfer", "load"}) {
      CHECK_MESSAGE(contains(text, std::string(format == ExportFormat::csv ? "," : "\"") + kind +
                                       (format == ExportFormat::csv ? "," : "\"")),
                    kind);
    }
  }
}

TEST_CASE("odd text survives both formats") {
  namespace ef = buoni::engine::export_format;
  const std::string odd = "odd ,\"ref\\\" \x01 \xc3\xa9\nline";
  ef::LineWriter w(ExportFormat::jsonl);
  w.begin("entry");
  w.text(ef::f_ref, odd);
  w.number(ef::f_amount_cents, -5);
  std::string line = w.finish();
  CHECK(line ==
        "{\"record\":\"entry\",\"ref\":\"odd ,\\\"ref\\\\\\\" \\u0001 \xc3\xa9\\u000aline\","
        "\"amount_cents\":-5}\n");
  ef::Record r;
  std::string error;
  REQUIRE(ef::parse_json_line(line.substr(0, line.size() - 1), r, error));
  CHECK(r.value[ef::f_ref] == odd);
  CHECK(r.value[ef::f_amount_cents] == "-5");
  CHECK_FALSE(r.quoted[ef::f_amount_cents]);
  REQUIRE(ef::parse_json_line(R"({"ref":"\u00e9\ud83d\ude00\/"})", r, error));
  CHECK(r.value[ef::f_ref] == "\xc3\xa9\xf0\x9f\x98\x80/");
  CHECK_FALSE(ef::parse_json_line(R"({"ref":"x","ref":"y"})", r, error));
  CHECK(contains(error, "given twice"));
  CHECK_FALSE(ef::parse_json_line(R"({"amount_cents":1.5})", r, error));
  CHECK_FALSE(ef::parse_json_line(R"({"note":"x"})", r, error));
  CHECK(contains(error, "unknown field"));
  for (const char* bad : {R"({"ref":{"a":1}})", R"({"ref":[1]})", R"({"ref":true})",
                          R"({"ref":null})", R"({"amount_cents":1e5})"}) {
    CHECK_FALSE_MESSAGE(ef::parse_json_line(bad, r, error), bad);
    CHECK_MESSAGE(contains(error, "is not a JSON string or integer"), bad, " -> ", error);
  }
  for (const char* bad : {R"(["ref"])", R"("ref")", R"({"ref":"x"} {})", R"({"ref":"x")",
                          "{\"ref\":\"\xff\"}", R"({"ref":"x",})", ""}) {
    CHECK_FALSE_MESSAGE(ef::parse_json_line(bad, r, error), bad);
    CHECK_FALSE(error.empty());
  }
  REQUIRE(ef::parse_json_line(R"({})", r, error));
  REQUIRE(ef::parse_json_line(R"( {"seq" : 18446744073709551615, "ref":"a\"b"} )", r, error));
  CHECK(r.value[ef::f_seq] == "18446744073709551615");
  CHECK_FALSE(r.quoted[ef::f_seq]);
  CHECK(r.value[ef::f_ref] == "a\"b");

  ef::LineWriter c(ExportFormat::csv);
  c.begin("entry");
  c.text(ef::f_ref, odd);
  line = c.finish();
  std::vector<std::string> cells;
  REQUIRE(ef::split_csv_row(line.substr(0, line.size() - 1), cells, error));
  REQUIRE(cells.size() == ef::field_count);
  CHECK(cells[ef::f_record] == "entry");
  CHECK(cells[ef::f_ref] == odd);
}

TEST_CASE("split_csv_row: quoted runs, doubled quotes, reused cells, malformed rows") {
  namespace ef = buoni::engine::export_format;
  std::vector<std::string> cells;
  std::string error;
  REQUIRE(ef::split_csv_row("a,\"b,\"\"c\"\"\n\",,d", cells, error));
  CHECK(cells == std::vector<std::string>{"a", "b,\"c\"\n", "", "d"});
  REQUIRE(ef::split_csv_row("x", cells, error));  // fewer cells than the row before
  CHECK(cells == std::vector<std::string>{"x"});
  REQUIRE(ef::split_csv_row("", cells, error));
  CHECK(cells == std::vector<std::string>{""});
  error.clear();
  CHECK_FALSE(ef::split_csv_row("\"still open,", cells, error));
  CHECK(error.empty());  // not malformed: the row goes on past this line
  CHECK_FALSE(ef::split_csv_row("a\"b", cells, error));
  CHECK(contains(error, "inside an unquoted cell"));
  CHECK_FALSE(ef::split_csv_row("a\rb", cells, error));
  CHECK(contains(error, "carriage return"));
  CHECK_FALSE(ef::split_csv_row("\"a\"b", cells, error));
  CHECK(contains(error, "text after a quoted cell"));
}

TEST_CASE("chain_hash_encoded equals chain_hash of the decoded entry, for every entry") {
  const History& h = history();
  Hash32 prev{};
  for (std::uint64_t seq = 1; seq <= h.head_seq(); ++seq) {
    Entry e = h.entry(seq);
    CHECK(chain_hash_encoded(prev, encode(e)) == chain_hash(prev, e));
    CHECK(chain_hash(prev, e) == e.hash);
    prev = e.hash;
  }
}

TEST_CASE("each tampering of an export is found and named") {
  const History& h = history();
  const std::vector<std::string> clean = lines_of(h.exported(ExportFormat::jsonl));
  const std::uint64_t sale = h.sale_seq;
  const Entry sale_entry = h.entry(sale);
  auto lines = clean;

  SUBCASE("an edited amount in the readable fields") {
    replace_in(lines[entry_line(lines, sale)], "\"amount_cents\":2000", "\"amount_cents\":200");
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK_FALSE(v.ok());
    CHECK(v.findings_total == 1);
    CHECK(has(v, "entry", sale, "amount_cents is \"200\" in the readable fields but \"2000\""));
    CHECK(v.verified_seq == sale - 1);
  }
  SUBCASE("an edited amount in the encoded entry, hash kept") {
    Entry e = sale_entry;
    e.amount_cents = 200;
    std::string& line = lines[entry_line(lines, sale)];
    replace_in(line, "\"amount_cents\":2000", "\"amount_cents\":200");
    replace_in(line, field(line, "body"), body_hex(e));
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(v.findings_total == 1);
    CHECK(has(v, "chain", sale, "entry " + std::to_string(sale) + " was changed"));
  }
  SUBCASE("a re-hashed edit: the entry's own hash recomputed") {
    Entry e = sale_entry;
    e.amount_cents = 200;
    rewrite_entry(lines[entry_line(lines, sale)], sale_entry, e, h.entry(sale - 1).hash);
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(has(v, "checkpoint", sale, "signs another hash for entry " + std::to_string(sale)));
    CHECK(has(v, "chain", sale, "was changed and its hash recomputed"));
  }
  SUBCASE("a re-hashed edit with the whole chain after it recomputed") {
    Hash32 prev = h.entry(sale - 1).hash;
    std::uint64_t head = h.head_seq();
    for (std::uint64_t seq = sale; seq <= head; ++seq) {
      Entry old = h.entry(seq), e = old;
      if (seq == sale + 4) e.amount_cents += 1;  // inside a later batch: only the chain shows it
      rewrite_entry(lines[entry_line(lines, seq)], old, e, prev);
      prev = chain_hash(prev, e);
    }
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    std::uint64_t checked = 0;
    for (const auto& f : v.findings) {
      CHECK(f.check == "checkpoint");
      CHECK((contains(f.detail, "signs another hash") || contains(f.detail, "not covered")));
      checked += f.seq >= sale + 4;
    }
    CHECK(checked == v.findings.size());
    CHECK(has(v, "checkpoint", sale + 4,
              "entry " + std::to_string(sale + 4) + " changed (and re-hashed)"));
    CHECK(v.verified_seq == sale + 3);
  }
  SUBCASE("a removed entry") {
    lines.erase(lines.begin() + static_cast<long>(entry_line(lines, sale)));
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(has(v, "order", sale + 1, "entry " + std::to_string(sale) + " missing before entry"));
    CHECK(has(v, "end", 0, "records were removed or added"));
  }
  SUBCASE("an inserted entry: a repeated one, and a forged one at the end") {
    std::size_t at = entry_line(lines, sale);
    lines.insert(lines.begin() + static_cast<long>(at) + 1, lines[at]);
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(has(v, "order", sale, "entry " + std::to_string(sale) + " appears twice"));

    lines = clean;
    std::uint64_t head = h.head_seq();
    Entry last = h.entry(head), forged = last;
    forged.seq = head + 1;
    std::string line = lines[entry_line(lines, head)];
    replace_in(line, "\"seq\":" + std::to_string(head), "\"seq\":" + std::to_string(head + 1));
    rewrite_entry(line, last, forged, last.hash);
    lines.insert(lines.end() - 1, line);
    replace_in(lines.back(), "\"entries\":" + std::to_string(head),
               "\"entries\":" + std::to_string(head + 1));
    v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(has(v, "checkpoint", head + 1,
              "entry " + std::to_string(head + 1) + " not covered by a signed checkpoint"));
    CHECK(v.verified_seq == head);
  }
  SUBCASE("a swapped pair") {
    std::size_t i = 0;  // two adjacent entry lines (in one batch)
    while (!(lines[i].starts_with("{\"record\":\"entry\"") &&
             lines[i + 1].starts_with("{\"record\":\"entry\"")))
      ++i;
    std::uint64_t seq = std::stoull(lines[i].substr(lines[i].find("\"seq\":") + 6));
    std::swap(lines[i], lines[i + 1]);
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(v.findings_total == 1);
    CHECK(has(v, "order", seq,
              "entries " + std::to_string(seq) + " and " + std::to_string(seq + 1) +
                  " are in the wrong order (swapped)"));
  }
  SUBCASE("a forged checkpoint") {
    std::size_t i = entry_line(lines, sale) + 1;
    REQUIRE(lines[i].starts_with("{\"record\":\"checkpoint\",\"seq\":" + std::to_string(sale)));
    replace_in(lines[i], "\"time_ms\":", "\"time_ms\":1");
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(v.findings_total == 1);
    CHECK(has(v, "checkpoint", sale, "signature does not verify with the public key 1"));
    CHECK(v.verified_seq == sale - 1);
  }
  SUBCASE("a checkpoint naming another hash, re-signed with another key") {
    SigningKey other = SigningKey::generate(1);
    std::size_t i = entry_line(lines, sale) + 1;
    Checkpoint c = sign_checkpoint(other, {sale, h.entry(sale).hash}, kT0);
    lines[i] = "{\"record\":\"checkpoint\",\"seq\":" + std::to_string(sale) + ",\"hash\":\"" +
               buoni::to_hex(c.hash) + "\",\"time_ms\":" + std::to_string(kT0) +
               ",\"key_id\":1,\"signature\":\"" + buoni::to_hex(c.signature) + "\"}";
    ExportVerdict v = verify(join(lines));
    INFO(findings_of(v));
    CHECK(has(v, "checkpoint", sale, "signature does not verify"));
  }
  SUBCASE("a wrong public key") {
    ExportVerdict v = verify(join(lines), {SigningKey::generate(1).verify_key()});
    INFO(findings_of(v));
    CHECK_FALSE(v.ok());
    CHECK(v.findings_total == v.checkpoints + 1);  // each, and the entries left unsigned
    CHECK(has(v, "checkpoint", 1, "signature does not verify with the public key 1"));
    CHECK(v.verified_seq == 0);
    CHECK(contains(v.summary(), "no signed checkpoint verified"));
    v = verify(join(lines), {SigningKey::generate(2).verify_key()});
    CHECK(has(v, "checkpoint", 1, "key 1 is not among the public keys"));
  }
  SUBCASE("a file cut short") {
    std::size_t keep = entry_line(lines, sale + 3);
    lines.resize(keep + 1);
    std::string text = join(lines) + lines[keep].substr(0, 40);  // and half a line
    ExportVerdict v = verify(text);
    INFO(findings_of(v));
    CHECK_FALSE(v.ok());
    CHECK_FALSE(v.complete);
    CHECK(v.findings_total == 0);
    std::uint64_t last_checkpoint = sale + 2;  // sale, hold, capture+release each checkpointed
    while (!contains(join(lines),
                     "\"record\":\"checkpoint\",\"seq\":" + std::to_string(last_checkpoint) + ","))
      --last_checkpoint;
    CHECK(v.verified_seq == last_checkpoint);
    CHECK(contains(v.summary(), "file cut short"));
    CHECK(contains(v.summary(),
                   "verified only up to checkpoint seq " + std::to_string(last_checkpoint)));
  }
  SUBCASE("text after the end, and an empty file") {
    lines.push_back(lines[1]);
    CHECK(has(verify(join(lines)), "end", 0, "data after the end record"));
    ExportVerdict v = verify("");
    CHECK(has(v, "format", 0, "empty file"));
  }
}

TEST_CASE("csv tampering is found the same way") {
  const History& h = history();
  std::vector<std::string> lines = lines_of(h.exported(ExportFormat::csv));
  std::string mark = "entry,,,," + std::to_string(h.sale_seq) + ",";
  auto at = std::find_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.starts_with(mark); });
  REQUIRE(at != lines.end());
  replace_in(*at, ",2000,", ",2100,");
  ExportVerdict v = verify(join(lines));
  INFO(findings_of(v));
  CHECK(v.findings_total == 1);
  CHECK(has(v, "entry", h.sale_seq, "amount_cents is \"2100\""));
  std::swap(*at, *(at + 2));  // the entry and the next one (after its checkpoint)
  v = verify(join(lines));
  CHECK(has(v, "order", h.sale_seq + 1, "missing before entry"));
}

TEST_CASE("export --since starts from the previous hash") {
  const History& h = history();
  std::uint64_t head = h.head_seq();
  for (ExportFormat format : {ExportFormat::jsonl, ExportFormat::csv}) {
    std::string text = h.exported(format, 5);
    ExportVerdict v = verify(text);
    INFO(findings_of(v));
    CHECK(v.ok());
    CHECK(v.first_seq == 5);
    CHECK(v.prev_hash == h.entry(4).hash);
    CHECK(v.entries == head - 4);
    CHECK(contains(v.summary(), "all " + std::to_string(head - 4) + " entries verified"));
    CHECK(contains(v.summary(), "starts at seq 5"));
  }
  std::vector<std::string> lines = lines_of(h.exported(ExportFormat::jsonl, 5));
  replace_in(lines[0], buoni::to_hex(h.entry(4).hash), buoni::to_hex(h.entry(3).hash));
  ExportVerdict v = verify(join(lines));
  CHECK(has(v, "chain", 4, "entry 4's hash is not the one entry 5 is chained to"));
  std::ostringstream out;
  CHECK(export_ledger(*h.store, head + 2, ExportFormat::jsonl, kT0, out).status().code() ==
        buoni::StatusCode::invalid_argument);
  CHECK(verify(h.exported(ExportFormat::jsonl, head + 1)).ok());  // nothing new: empty, ok
}

// ---- the command -----------------------------------------------------------

namespace {

Ran buoni_cli(const std::vector<std::string>& args) {
  return run_program(BUONI_BIN, args);
}
Ran ok_cli(const std::vector<std::string>& args) {
  Ran r = buoni_cli(args);
  INFO("buoni exit " << r.rc << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.rc == 0);
  return r;
}

}  // namespace

TEST_CASE("buoni export and verify-export") {
  TempDir tmp;
  std::string dir = tmp.path + "/data", keys = dir + "/keys/public-keys";
  ok_cli({"--data", dir, "init"});
  ok_cli({"--data", dir, "programme", "create", "--id", "p1", "--name", "Buoni", "--budget-cents",
          "100000", "--valid-from", buoni::test::day_string(-1), "--valid-until",
          buoni::test::day_string(30), "--idempotency-key", "p1"});
  ok_cli({"--data", dir, "merchant", "add", "--id", "m1", "--name", "Uno", "--vat-number",
          "01234567897", "--programme", "p1"});
  auto issued =
      buoni::test::parse_object(ok_cli({"--data", dir, "--json", "card", "issue", "--programme",
                                        "p1", "--beneficiary-ref", "f-1", "--amount-cents", "5000"})
                                    .out);
  std::string card = buoni::test::str_field(issued, "number");
  ok_cli({"--data", dir, "redeem", "--merchant", "m1", "--card", card, "--amount-cents", "1250",
          "--idempotency-key", "sale-1"});
  ok_cli({"--data", dir, "card", "load", "--card", card, "--amount-cents", "500"});
  ok_cli({"--data", dir, "card", "replace", "--card", card});

  std::string out = tmp.sub("ledger.jsonl"), csv = tmp.sub("ledger.csv");
  Ran r = ok_cli({"--data", dir, "export", "--format", "jsonl", "--out", out});
  CHECK(contains(r.out, "exported 5 entries (seq 1..5) and 5 checkpoints to " + out));
  ok_cli({"--data", dir, "export", "--format", "csv", "--out", csv});
  for (const auto& e : std::filesystem::directory_iterator(tmp.path)) {
    CHECK_FALSE(contains(e.path().filename().string(), ".tmp-"));
  }
  r = ok_cli({"verify-export", out, "--public-keys", keys});
  CHECK(contains(r.out, "export ok: all 5 entries verified, up to checkpoint seq 5"));
  r = ok_cli({"verify-export", csv, "--public-keys", keys, "--json"});
  auto json = buoni::test::parse_object(r.out);
  CHECK(json.at("ok").as_bool());
  CHECK(buoni::test::int_field(json, "verified_seq") == 5);

  r = ok_cli(
      {"--data", dir, "--json", "export", "--format", "jsonl", "--since", "3", "--out", out});
  CHECK(buoni::test::int_field(buoni::test::parse_object(r.out), "entries") == 3);
  r = ok_cli({"verify-export", out, "--public-keys", keys});
  CHECK(
      contains(r.out, "all 3 entries verified, up to checkpoint seq 5 (the file starts at seq 3"));

  std::string text = buoni::test::read_file(csv);
  std::string cut = tmp.sub("cut.csv");
  {
    std::ofstream f(cut);
    f << text.substr(0, text.size() * 2 / 3);
  }
  r = buoni_cli({"verify-export", cut, "--public-keys", keys});
  CHECK(r.rc == 1);
  CHECK(contains(r.out, "export FAILED: file cut short"));
  CHECK(contains(r.out, "verified only up to checkpoint seq"));

  CHECK(buoni_cli({"--data", dir, "export", "--format", "xml", "--out", out}).rc == 2);
  CHECK(buoni_cli({"--data", dir, "export", "--format", "csv", "--since", "9", "--out", out}).rc ==
        2);
  CHECK(buoni_cli({"verify-export", tmp.sub("missing"), "--public-keys", keys}).rc == 2);
  CHECK(buoni_cli({"--data", dir, "export", "--format", "csv", "--out", "/nonexistent/x"}).rc != 0);
}
