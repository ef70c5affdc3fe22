// Audit tests: a small real history on RocksDB audits clean; then each kind of
// tampering with the raw store is found and named (check, seq, object).
// Every case tampers with a fresh copy of the history.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/audit.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/ledger.h"
#include "engine/queries.h"
#include "storage/rocks_store.h"
#include "support.h"

namespace {

using buoni::CardId;
using buoni::Hash32;
using buoni::SeededRandom;
using buoni::SigningKey;
using buoni::Status;
using buoni::VerifyKey;
using namespace buoni::engine;  // NOLINT: the engine is what this file tests
using buoni::storage::open_primary;
using buoni::storage::RocksOptions;
using buoni::storage::RocksStore;

constexpr TimeMs kDay = 86'400'000;
constexpr Day kMar1 = 20513;                       // 2026-03-01
constexpr Day kMar31 = 20543;                      // 2026-03-31
constexpr TimeMs kT0 = kMar1 * kDay + 36'000'000;  // 2026-03-01T10:00:00Z

// A fresh directory under /tmp, removed with everything in it at scope end.
struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir("/tmp/buoni_audit_test_XXXXXX") {}
};

// A small history on a real RocksDB: two programmes, a shop, cards, sales, a
// hold captured in part, a refund, a replacement, a top-up. The engine is
// stopped afterwards; the store stays open for tampering and auditing.
struct History {
  TempDir dir;
  std::unique_ptr<RocksStore> store;
  ManualClock clock{kT0};
  SeededRandom random{4242};
  SigningKey signing_key = SigningKey::generate(1);

  CardId c1, c1_new, c2, c3;
  std::uint64_t sale_seq = 0;     // the ledger entry of the first sale (c1, 2,000)
  std::uint64_t capture_seq = 0;  // the capture; capture_seq + 1 is its release
  std::string sale_id;

  History() {
    auto opened =
        open_primary(dir.path + "/db", RocksOptions{.create_if_missing = true, .sync = true});
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
    auto programme = [](std::string id, Cents budget) {
      CreateProgramme c;
      c.id = std::move(id);
      c.name = "Buoni " + c.id;
      c.budget_cents = budget;
      c.valid_from_day = kMar1;
      c.valid_until_day = kMar31;
      return c;
    };
    auto card_of = [](const Outcome& o, const std::string& which) {
      auto parsed = buoni::parse_card_number(which == "new" ? o.new_card : o.card);
      REQUIRE(parsed.id.has_value());
      return *parsed.id;
    };

    run(Caller::admin(), programme("p1", 100'000));
    run(Caller::admin(), programme("p2", 50'000));
    AddMerchant m;
    m.id = "m1";
    m.name = "Alimentari Rossi";
    m.vat_number = "01234567897";
    m.programmes = {"p1", "p2"};
    m.api_key_hash = buoni::blake2b_256("mk_m1");
    run(Caller::admin(), m);
    c1 = card_of(run(Caller::admin(), IssueCard{"p1", "ben-1", 10'000}), "card");
    c2 = card_of(run(Caller::admin(), IssueCard{"p1", "ben-2", 5'000}), "card");
    c3 = card_of(run(Caller::admin(), IssueCard{"p2", "ben-1", 7'000}), "card");
    Outcome sale = run(Caller::merchant("m1"), Redeem{c1, 2'000, "sale-1"});
    sale_seq = sale.ledger_seq;
    sale_id = sale.id;
    Outcome hold = run(Caller::merchant("m1"), Authorize{c2, 3'000, "delivery-1", 0});
    Outcome captured = run(Caller::merchant("m1"), Capture{hold.id, 2'000});
    capture_seq = captured.ledger_seq;
    run(Caller::merchant("m1"), RefundRedemption{sale.id, 500});
    c1_new = card_of(run(Caller::admin(), ReplaceCard{c1}), "new");
    run(Caller::merchant("m1"), Redeem{c1_new, 1'000, ""});
    run(Caller::admin(), LoadCard{c2, 1'000});
    run(Caller::merchant("m1"), Redeem{c3, 700, ""});
    run(Caller::merchant("m1"), Authorize{c3, 300, "", 0});  // left pending
    engine.reset();
  }
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  [[nodiscard]] std::vector<VerifyKey> keys() const { return {{1, signing_key.public_key}}; }

  AuditReport audit_with(const std::vector<VerifyKey>& verify_keys) {
    auto report = buoni::engine::audit(*store, verify_keys);
    REQUIRE_MESSAGE(report.ok(), report.status().to_string());
    return std::move(report).value();
  }
  AuditReport audit() { return audit_with(keys()); }

  ChainHead head() {
    auto h = read_head(*store);
    REQUIRE(h.ok());
    return *h;
  }
  std::string raw(Space space, const std::string& key) {
    auto v = store->get(space, key);
    REQUIRE(v.ok());
    REQUIRE_MESSAGE(v->has_value(), "missing key in " << space_name(space));
    return **v;
  }
  Entry entry(std::uint64_t seq) {
    Entry e;
    REQUIRE(decode(raw(Space::ledger, keys::ledger(seq)), e).ok());
    return e;
  }
  void write(const WriteSet& set) {
    Status s = store->write(set);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
  }
  // The seqs of every stored checkpoint.
  std::vector<std::uint64_t> checkpoint_seqs() {
    std::vector<std::uint64_t> seqs;
    Status s = store->scan(Space::meta, keys::checkpoint_prefix, keys::checkpoint_prefix,
                           [&](std::string_view, std::string_view value) {
                             Checkpoint c;
                             REQUIRE(decode(value, c).ok());
                             seqs.push_back(c.seq);
                             return true;
                           });
    REQUIRE(s.ok());
    return seqs;
  }
};

std::string describe(const AuditReport& report) {
  std::string s = std::to_string(report.findings.size()) + " findings:\n";
  for (const auto& f : report.findings) s += "  " + f.to_string() + "\n";
  return s;
}

std::size_t count(const AuditReport& report, const std::string& check) {
  std::size_t n = 0;
  for (const auto& f : report.findings) n += f.check == check ? 1 : 0;
  return n;
}

bool has_at(const AuditReport& report, const std::string& check, std::uint64_t seq) {
  for (const auto& f : report.findings) {
    if (f.check == check && f.seq == seq) return true;
  }
  return false;
}

bool has_object(const AuditReport& report, const std::string& check, const std::string& object) {
  for (const auto& f : report.findings) {
    if (f.check == check && f.object == object) return true;
  }
  return false;
}

std::string id_of(const CardId& id) {
  return buoni::format_card_id(id);
}

TEST_CASE("audit: an untouched history is clean") {
  History h;
  AuditReport report = h.audit();
  CHECK_MESSAGE(report.clean(), describe(report));
  CHECK(report.entries == h.head().seq);
  CHECK(report.entries >= 15);
  CHECK(report.checkpoints == h.checkpoint_seqs().size());
  CHECK(report.checkpoints >= 13);
  CHECK(report.cards == 4);  // c1 (revoked), its replacement, c2, c3
  CHECK(report.programmes == 2);
  CHECK(h.entry(h.sale_seq).kind == EntryKind::redeem);
  CHECK(h.entry(h.capture_seq).kind == EntryKind::capture);
  CHECK(h.entry(h.capture_seq + 1).kind == EntryKind::release);
}

TEST_CASE("audit (a): an edited amount with the old hash breaks the chain at that entry") {
  History h;
  Entry e = h.entry(h.sale_seq);
  REQUIRE(e.amount_cents == 2'000);
  e.amount_cents = 200;  // the hash is kept
  WriteSet set;
  set.put(Space::ledger, keys::ledger(h.sale_seq), encode(e));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_at(report, "chain", h.sale_seq));
  CHECK(count(report, "chain") == 1);  // only that entry: later ones chain to its stored hash
  // And the rebuilt balances no longer match stored state.
  CHECK(has_object(report, "balance", "p1"));
}

TEST_CASE(
    "audit (b): an edited amount with the chain rehashed contradicts the signed checkpoints") {
  History h;
  const ChainHead head = h.head();
  Hash32 prev = h.entry(h.sale_seq - 1).hash;
  WriteSet set;
  for (std::uint64_t seq = h.sale_seq; seq <= head.seq; ++seq) {
    Entry e = h.entry(seq);
    if (seq == h.sale_seq) e.amount_cents = 200;
    e.hash = chain_hash(prev, e);
    prev = e.hash;
    set.put(Space::ledger, keys::ledger(seq), encode(e));
  }
  set.put(Space::meta, std::string(keys::head), encode(ChainHead{head.seq, prev}));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(count(report, "chain") == 0);  // the chain itself is consistent again
  CHECK(count(report, "checkpoint") >= 1);
  for (const auto& f : report.findings) {
    if (f.check == "checkpoint") CHECK(f.seq >= h.sale_seq);
  }
  // Every checkpoint at or after the edit names the old hash.
  for (std::uint64_t seq : h.checkpoint_seqs()) {
    if (seq >= h.sale_seq) CHECK_MESSAGE(has_at(report, "checkpoint", seq), "checkpoint " << seq);
    if (seq < h.sale_seq) CHECK_FALSE(has_at(report, "checkpoint", seq));
  }
  // The money no longer adds up either.
  CHECK(has_object(report, "balance", "p1"));
  CHECK_FALSE(has_object(report, "balance", "p2"));
}

TEST_CASE("audit (c): a removed entry in the middle is a gap in the chain") {
  History h;
  const std::uint64_t removed = h.capture_seq;
  WriteSet set;
  set.erase(Space::ledger, keys::ledger(removed));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_at(report, "chain", removed + 1));
  bool gap_named = false;
  for (const auto& f : report.findings) {
    if (f.check == "chain" && f.seq == removed + 1 &&
        f.detail.find("expected seq " + std::to_string(removed)) != std::string::npos) {
      gap_named = true;
    }
  }
  CHECK(gap_named);
  CHECK_FALSE(report.clean());
}

TEST_CASE("audit (d): two swapped entries are found") {
  History h;
  const std::uint64_t a = h.capture_seq;
  const std::uint64_t b = h.capture_seq + 1;
  SUBCASE("raw values swapped") {
    const std::string ra = h.raw(Space::ledger, keys::ledger(a));
    const std::string rb = h.raw(Space::ledger, keys::ledger(b));
    WriteSet set;
    set.put(Space::ledger, keys::ledger(a), rb);
    set.put(Space::ledger, keys::ledger(b), ra);
    h.write(set);
  }
  SUBCASE("swapped and renumbered, hashes kept") {
    Entry ea = h.entry(a);
    Entry eb = h.entry(b);
    std::swap(ea.seq, eb.seq);
    WriteSet set;
    set.put(Space::ledger, keys::ledger(a), encode(eb));
    set.put(Space::ledger, keys::ledger(b), encode(ea));
    h.write(set);
  }
  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK((has_at(report, "chain", a) || has_at(report, "chain", b)));
  CHECK(has_at(report, "chain", a));
}

TEST_CASE("audit (e): a changed card balance in stored state names the card") {
  History h;
  const std::string key = keys::card(h.c2);
  Card c;
  REQUIRE(decode(h.raw(Space::state, key), c).ok());
  c.available_cents += 100;
  WriteSet set;
  set.put(Space::state, key, encode(c));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "balance", id_of(h.c2)));
  CHECK_FALSE(has_object(report, "balance", id_of(h.c1)));
  CHECK_FALSE(has_object(report, "balance", id_of(h.c3)));
  CHECK(count(report, "chain") == 0);
  CHECK(count(report, "checkpoint") == 0);
}

TEST_CASE("audit (e'): a changed held amount on a card is found too") {
  History h;
  const std::string key = keys::card(h.c3);
  Card c;
  REQUIRE(decode(h.raw(Space::state, key), c).ok());
  REQUIRE(c.held_cents == 300);
  c.held_cents = 0;
  c.available_cents += 300;
  WriteSet set;
  set.put(Space::state, key, encode(c));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "balance", id_of(h.c3)));
  CHECK(has_object(report, "hold", id_of(h.c3)));  // its pending hold is no longer covered
}

TEST_CASE("audit (f): a forged checkpoint signature is found at its seq") {
  History h;
  const std::vector<std::uint64_t> seqs = h.checkpoint_seqs();
  REQUIRE(seqs.size() >= 3);
  const std::uint64_t forged = seqs[seqs.size() / 2];
  const std::string key = keys::checkpoint(forged);
  Checkpoint c;
  REQUIRE(decode(h.raw(Space::meta, key), c).ok());
  c.signature[0] ^= 0xff;
  c.signature[63] ^= 0x01;
  WriteSet set;
  set.put(Space::meta, key, encode(c));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_at(report, "checkpoint", forged));
  CHECK(count(report, "checkpoint") == 1);
  CHECK(count(report, "chain") == 0);
}

TEST_CASE("audit (f'): a checkpoint re-signed over another hash by someone else is found") {
  History h;
  const std::vector<std::uint64_t> seqs = h.checkpoint_seqs();
  const std::uint64_t seq = seqs.back();
  const SigningKey impostor = SigningKey::generate(1);
  Hash32 other = h.entry(seq).hash;
  other[5] ^= 0x10;
  const Checkpoint c = sign_checkpoint(impostor, ChainHead{seq, other}, kT0);
  WriteSet set;
  set.put(Space::meta, keys::checkpoint(seq), encode(c));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_at(report, "checkpoint", seq));
  CHECK(count(report, "checkpoint") == 2);  // bad signature, and a hash the chain does not have
}

TEST_CASE("audit (g): with the wrong public key every checkpoint fails") {
  History h;
  std::vector<VerifyKey> wrong;
  SUBCASE("another key under the same key id") {
    wrong = {{1, SigningKey::generate(1).public_key}};
  }
  SUBCASE("the right key under another key id") {
    wrong = {{2, h.signing_key.public_key}};
  }
  SUBCASE("no keys at all") {
    wrong = {};
  }

  AuditReport report = h.audit_with(wrong);
  INFO(describe(report));
  REQUIRE(report.checkpoints >= 1);
  CHECK(count(report, "checkpoint") == report.checkpoints);
  for (std::uint64_t seq : h.checkpoint_seqs()) {
    CHECK_MESSAGE(has_at(report, "checkpoint", seq), "checkpoint " << seq);
  }
  CHECK(count(report, "chain") == 0);
  CHECK(count(report, "balance") == 0);
}

TEST_CASE("audit (h): a changed programme total names the programme") {
  History h;
  const std::string key = keys::programme("p1");
  Programme p;
  REQUIRE(decode(h.raw(Space::state, key), p).ok());
  p.redeemed_cents += 1;
  WriteSet set;
  set.put(Space::state, key, encode(p));
  h.write(set);

  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "balance", "p1"));
  CHECK_FALSE(has_object(report, "balance", "p2"));
  bool named_redeemed = false;
  for (const auto& f : report.findings) {
    if (f.check == "balance" && f.object == "p1" &&
        f.detail.find("redeemed") != std::string::npos) {
      named_redeemed = true;
    }
  }
  CHECK(named_redeemed);
  CHECK(count(report, "chain") == 0);
}

TEST_CASE("audit: other programme totals are checked as well") {
  History h;
  const std::string key = keys::programme("p2");
  Programme p;
  REQUIRE(decode(h.raw(Space::state, key), p).ok());
  SUBCASE("issued") {
    p.issued_cents -= 1;
  }
  SUBCASE("refunded") {
    p.refunded_cents += 1;
  }
  SUBCASE("held") {
    p.held_cents = 0;
  }
  SUBCASE("expired") {
    p.expired_cents = 5;
  }
  SUBCASE("budget") {
    p.budget_cents += 1;
  }
  WriteSet set;
  set.put(Space::state, key, encode(p));
  h.write(set);
  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "balance", "p2"));
  CHECK_FALSE(has_object(report, "balance", "p1"));
}

TEST_CASE("audit: a truncated ledger tail (entry removed, head left) is found") {
  History h;
  const ChainHead head = h.head();
  WriteSet set;
  set.erase(Space::ledger, keys::ledger(head.seq));
  h.write(set);
  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "chain", "head"));
  CHECK(has_at(report, "checkpoint", head.seq));  // a checkpoint past the end of the ledger
}

TEST_CASE("audit: a refund record that disagrees with its redemption is found") {
  History h;
  const std::string key = keys::redemption(h.sale_id);
  Redemption r;
  REQUIRE(decode(h.raw(Space::state, key), r).ok());
  REQUIRE(r.refunded_cents == 500);
  r.refunded_cents = 0;
  WriteSet set;
  set.put(Space::state, key, encode(r));
  h.write(set);
  AuditReport report = h.audit();
  INFO(describe(report));
  CHECK(has_object(report, "refund", h.sale_id));
}

}  // namespace

TEST_CASE("audit: the ledger indexes must list exactly what the entries call for") {
  History h;
  const std::string shop_row = keys::merchant_entry("m1", h.sale_seq);
  const std::string card_row = keys::card_entry(h.c1, h.sale_seq);
  SUBCASE("a missing shop row") {
    WriteSet set;
    set.erase(Space::state, shop_row);
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(count(report, "index") == 1);
    CHECK(has_at(report, "index", h.sale_seq));
    CHECK(has_object(report, "index", "m1"));
  }
  SUBCASE("a missing card row") {
    WriteSet set;
    set.erase(Space::state, card_row);
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(count(report, "index") == 1);
    CHECK(has_object(report, "index", id_of(h.c1)));
  }
  SUBCASE("a sale listed under another shop") {
    WriteSet set;
    set.put(Space::state, keys::merchant_entry("m2", h.sale_seq), h.raw(Space::state, shop_row));
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(count(report, "index") == 1);
    CHECK(has_object(report, "index", "m2"));
  }
  SUBCASE("a row moved to another card") {
    WriteSet set;
    set.erase(Space::state, card_row);
    set.put(Space::state, keys::card_entry(h.c2, h.sale_seq), h.raw(Space::state, card_row));
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(has_object(report, "index", id_of(h.c2)));  // listed where it does not belong
    CHECK(has_object(report, "index", id_of(h.c1)));  // and missing where it does
  }
  SUBCASE("a row with another time") {
    WriteSet set;
    set.put(Space::state, shop_row, encode_index_value(kT0 - 1));
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(count(report, "index") == 1);
    CHECK(has_at(report, "index", h.sale_seq));
  }
  SUBCASE("a row naming no entry") {
    WriteSet set;
    set.put(Space::state, keys::merchant_entry("m1", h.head().seq + 1), encode_index_value(kT0));
    h.write(set);
    AuditReport report = h.audit();
    INFO(describe(report));
    CHECK(count(report, "index") == 1);
    CHECK(has_at(report, "index", h.head().seq + 1));
  }
}

TEST_CASE("audit: an untouched history reads every index row") {
  History h;
  AuditReport report = h.audit();
  CHECK_MESSAGE(report.clean(), describe(report));
  // Every entry but the two funds names a card; shop entries name a shop too.
  CHECK(report.index_rows > report.entries);
  auto page = merchant_entries(*h.store, "m1", INT64_MIN, INT64_MAX, 0, 500);
  REQUIRE(page.ok());
  CHECK(page->entries.size() >= 8);
  for (const Entry& e : page->entries) CHECK(e.merchant == "m1");
}
