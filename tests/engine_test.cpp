// Engine tests: every operation and every decline code, through Engine::execute
// on a MemoryStore with a pinned ManualClock (a few through apply() on a Batch
// where the writer's sweep would hide a path), plus fail-stop, batching,
// reopening, codecs, calendar and field validation.
//
// PINs (pin_required, wrong_pin, pin_locked, unlock) have their own cases at
// the end: a wrong PIN is a decline that does change the store (the count).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/token.h"
#include "engine/apply.h"
#include "engine/audit.h"
#include "engine/batch.h"
#include "engine/calendar.h"
#include "engine/clock.h"
#include "engine/code.h"
#include "engine/codec.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/ledger.h"
#include "engine/limits.h"
#include "engine/memory_store.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "engine/validate.h"

namespace doctest {
template <>
struct StringMaker<buoni::engine::Code> {
  static String convert(buoni::engine::Code code) {
    return String(std::string(buoni::engine::code_name(code)).c_str());
  }
};
template <>
struct StringMaker<buoni::StatusCode> {
  static String convert(buoni::StatusCode code) {
    return String(std::string(buoni::status_code_name(code)).c_str());
  }
};
}  // namespace doctest

namespace {

using buoni::CardId;
using buoni::Hash32;
using buoni::SeededRandom;
using buoni::SigningKey;
using buoni::Status;
using buoni::StatusCode;
using buoni::StatusOr;
using buoni::VerifyKey;
using namespace buoni::engine;  // NOLINT: the engine is what this file tests
namespace limits = buoni::limits;

// ---- time -----------------------------------------------------------------

constexpr TimeMs kSecond = 1000;
constexpr TimeMs kMinute = 60 * kSecond;
constexpr TimeMs kHour = 60 * kMinute;
constexpr TimeMs kDay = 24 * kHour;
constexpr Day kFeb1 = 20485;                       // 2026-02-01
constexpr Day kFeb28 = 20512;                      // 2026-02-28
constexpr Day kMar1 = 20513;                       // 2026-03-01
constexpr Day kMar2 = 20514;                       // 2026-03-02
constexpr Day kMar31 = 20543;                      // 2026-03-31
constexpr TimeMs kT0 = kMar1 * kDay + 10 * kHour;  // 2026-03-01T10:00:00Z
constexpr TimeMs kApr1 = (kMar31 + 1) * kDay;      // 2026-04-01T00:00:00Z

// ---- small helpers --------------------------------------------------------

Caller admin() {
  return Caller::admin();
}
Caller shop(std::string id) {
  return Caller::merchant(std::move(id));
}

CardId card_id(const std::string& text) {
  auto parsed = buoni::parse_card_number(text);
  REQUIRE_MESSAGE(parsed.id.has_value(), "not a card id: " << text);
  return *parsed.id;
}

Hash32 api_key_hash(const std::string& merchant) {
  return buoni::blake2b_256("mk_" + merchant);
}

CreateProgramme programme_cmd(std::string id, Cents budget_cents = 1'000'000, Day from = kMar1,
                              Day until = kMar31, Cents max_redemption_cents = 0,
                              Cents daily_limit_cents = 0) {
  CreateProgramme c;
  c.id = std::move(id);
  c.name = "Buoni spesa " + c.id;
  c.budget_cents = budget_cents;
  c.valid_from_day = from;
  c.valid_until_day = until;
  c.max_redemption_cents = max_redemption_cents;
  c.daily_limit_cents = daily_limit_cents;
  return c;
}

AddMerchant merchant_cmd(std::string id, std::vector<std::string> programmes,
                         std::string vat = "01234567897") {
  AddMerchant c;
  c.id = std::move(id);
  c.name = "Alimentari " + c.id;
  c.vat_number = std::move(vat);
  c.programmes = std::move(programmes);
  c.api_key_hash = api_key_hash(c.id);
  return c;
}

// A full copy of a store, space by space.
using Dump = std::array<std::map<std::string, std::string>, space_count>;

Dump dump(const Store& store) {
  Dump d;
  for (std::size_t s = 0; s < d.size(); ++s) {
    Status status =
        store.scan(static_cast<Space>(s), "", "", [&](std::string_view k, std::string_view v) {
          d[s].emplace(std::string(k), std::string(v));
          return true;
        });
    REQUIRE_MESSAGE(status.ok(), status.to_string());
  }
  return d;
}

// "" when equal; otherwise a list of the keys that differ.
std::string diff(const Dump& before, const Dump& after) {
  std::string out;
  for (std::size_t s = 0; s < before.size(); ++s) {
    const char* space = space_name(static_cast<Space>(s));
    for (const auto& [k, v] : before[s]) {
      auto it = after[s].find(k);
      if (it == after[s].end()) {
        out += std::string(space) + " removed " + buoni::to_hex(buoni::as_bytes(k)) + "\n";
      } else if (it->second != v) {
        out += std::string(space) + " changed " + buoni::to_hex(buoni::as_bytes(k)) + "\n";
      }
    }
    for (const auto& [k, v] : after[s]) {
      if (!before[s].count(k)) {
        out += std::string(space) + " added " + buoni::to_hex(buoni::as_bytes(k)) + "\n";
      }
    }
  }
  return out;
}

// ---- the fixture ----------------------------------------------------------

// A MemoryStore, a clock pinned at 2026-03-01T10:00:00Z, a seeded random
// source, a signing key and an Engine over them.
struct Fixture {
  MemoryStore store;
  ManualClock clock{kT0};
  SeededRandom random{20260301};
  SigningKey signing_key = SigningKey::generate(1);
  std::unique_ptr<Engine> engine;

  Fixture() { open(); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  // (Re)opens the engine over the same store.
  void open() {
    engine.reset();
    auto opened = Engine::open(store, signing_key, clock, random);
    REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
    engine = std::move(opened).value();
  }

  Result exec(Caller caller, Command command, std::string idem = {}) {
    auto r = engine->execute(Request{std::move(caller), std::move(idem), std::move(command)});
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return std::move(r).value();
  }
  Outcome run(Caller caller, Command command, std::string idem = {}) {
    return exec(std::move(caller), std::move(command), std::move(idem)).outcome;
  }
  // The request must succeed.
  Outcome ok(Caller caller, Command command, std::string idem = {}) {
    Result r = exec(std::move(caller), std::move(command), std::move(idem));
    REQUIRE_MESSAGE(r.outcome.ok(), "declined: " << std::string(code_name(r.outcome.code)));
    CHECK_FALSE(r.replayed);
    return r.outcome;
  }
  // The request (no idempotency key) must be declined with `code` and must
  // change nothing at all in the store.
  Outcome declined(Caller caller, Command command, Code code) {
    const Dump before = dump(store);
    const int writes_before = store.writes();
    const ChainHead head_before = engine->head();
    Result r = exec(std::move(caller), std::move(command));
    CHECK(r.outcome.code == code);
    CHECK_FALSE(r.replayed);
    const std::string changes = diff(before, dump(store));
    CHECK_MESSAGE(changes.empty(), "a decline changed the store:\n" << changes);
    CHECK(store.writes() == writes_before);
    CHECK(engine->head().seq == head_before.seq);
    return r.outcome;
  }
  // Runs one harmless request so the writer runs a batch (and its hold sweep).
  void settle() {
    CHECK(run(admin(), CloseProgramme{"no-such-programme"}).code == Code::not_found);
  }

  CardId issue(const std::string& programme, const std::string& ref, Cents amount_cents) {
    Outcome o = ok(admin(), IssueCard{programme, ref, amount_cents});
    return card_id(o.card);
  }

  Programme programme(const std::string& id) {
    auto p = find_programme(store, id);
    REQUIRE_MESSAGE(p.ok(), p.status().to_string());
    REQUIRE_MESSAGE(p->has_value(), "no programme " << id);
    return **p;
  }
  Card card(const CardId& id) {
    auto c = find_card(store, id);
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    REQUIRE_MESSAGE(c->has_value(), "no card " << buoni::format_card_id(id));
    return **c;
  }
  Hold hold(const std::string& id) {
    auto h = find_hold(store, id);
    REQUIRE(h.ok());
    REQUIRE_MESSAGE(h->has_value(), "no hold " << id);
    return **h;
  }
  Redemption redemption(const std::string& id) {
    auto r = find_redemption(store, id);
    REQUIRE(r.ok());
    REQUIRE_MESSAGE(r->has_value(), "no redemption " << id);
    return **r;
  }
  Entry entry(std::uint64_t seq) {
    auto raw = store.get(Space::ledger, keys::ledger(seq));
    REQUIRE(raw.ok());
    REQUIRE_MESSAGE(raw->has_value(), "no ledger entry " << seq);
    Entry e;
    REQUIRE(decode(**raw, e).ok());
    return e;
  }
  ChainHead head() {
    auto h = read_head(store);
    REQUIRE(h.ok());
    return *h;
  }
  // The auditor rebuilds every balance from the ledger: it must agree.
  void audit_clean() {
    auto report = audit(store, {VerifyKey{1, signing_key.public_key}});
    REQUIRE_MESSAGE(report.ok(), report.status().to_string());
    std::string findings;
    for (const auto& f : report->findings) findings += f.to_string() + "\n";
    CHECK_MESSAGE(report->clean(), findings);
    CHECK(report->entries == head().seq);
  }
};

// A fixture with programme p1 (budget 1,000,000; 2026-03-01..31, with the
// given limits), shops m1 and m2 taking p1, and card c1 holding 10,000.
struct World : Fixture {
  CardId c1;
  explicit World(Cents max_redemption_cents = 0, Cents daily_limit_cents = 0) {
    ok(admin(),
       programme_cmd("p1", 1'000'000, kMar1, kMar31, max_redemption_cents, daily_limit_cents));
    ok(admin(), merchant_cmd("m1", {"p1"}));
    ok(admin(), merchant_cmd("m2", {"p1"}));
    c1 = issue("p1", "ben-1", 10'000);
  }
};

std::string id_of(const CardId& id) {
  return buoni::format_card_id(id);
}

// ===========================================================================
// Success paths
// ===========================================================================

TEST_CASE("programme create funds the pool and starts the ledger") {
  Fixture fx;
  Outcome o = fx.ok(admin(), programme_cmd("p1", 500'000, kMar1, kMar31, 2'500, 6'000));
  CHECK(o.id == "p1");
  CHECK(o.amount_cents == 500'000);
  CHECK(o.time_ms == kT0);
  CHECK(o.ledger_seq == 1);

  Programme p = fx.programme("p1");
  CHECK(p.name == "Buoni spesa p1");
  CHECK(p.budget_cents == 500'000);
  CHECK(p.valid_from_day == kMar1);
  CHECK(p.valid_until_day == kMar31);
  CHECK(p.max_redemption_cents == 2'500);
  CHECK(p.daily_limit_cents == 6'000);
  CHECK(p.status == ProgrammeStatus::open);
  CHECK(p.created_at_ms == kT0);
  CHECK(p.issued_cents == 0);
  CHECK(p.redeemed_cents == 0);
  CHECK(p.refunded_cents == 0);
  CHECK(p.held_cents == 0);
  CHECK(p.expired_cents == 0);
  CHECK(p.card_count == 0);

  Entry e = fx.entry(1);
  CHECK(e.seq == 1);
  CHECK(e.kind == EntryKind::fund);
  CHECK(e.from == Account{AccountKind::budget, "p1"});
  CHECK(e.to == Account{AccountKind::pool, "p1"});
  CHECK(e.amount_cents == 500'000);
  CHECK(e.programme == "p1");
  CHECK(e.hash == chain_hash(Hash32{}, e));

  ChainHead head = fx.head();
  CHECK(head.seq == 1);
  CHECK(head.hash == e.hash);
  CHECK(fx.engine->head().seq == 1);

  // The batch wrote a checkpoint signed with the engine's key.
  auto raw = fx.store.get(Space::meta, keys::checkpoint(1));
  REQUIRE(raw.ok());
  REQUIRE(raw->has_value());
  Checkpoint cp;
  REQUIRE(decode(**raw, cp).ok());
  CHECK(cp.seq == 1);
  CHECK(cp.hash == e.hash);
  CHECK(cp.key_id == 1);
  CHECK(verify_checkpoint(cp, {VerifyKey{1, fx.signing_key.public_key}}));

  Outcome o2 = fx.ok(admin(), programme_cmd("p2", 1'000));
  CHECK(o2.ledger_seq == 2);
  CHECK(fx.entry(2).hash == chain_hash(e.hash, fx.entry(2)));
}

TEST_CASE("merchant add stores the shop, its programmes and its key hash") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1"));
  fx.ok(admin(), programme_cmd("p2"));
  const std::uint64_t seq = fx.head().seq;
  Outcome o = fx.ok(admin(), merchant_cmd("m1", {"p2", "p1", "p2"}, "IT01234567897"));
  CHECK(o.id == "m1");
  CHECK(o.ledger_seq == 0);  // creating a shop moves no money
  CHECK(fx.head().seq == seq);

  auto m = find_merchant(fx.store, "m1");
  REQUIRE(m.ok());
  REQUIRE(m->has_value());
  CHECK((*m)->name == "Alimentari m1");
  CHECK((*m)->vat_number == "01234567897");                         // stored without the IT prefix
  CHECK((*m)->programmes == std::vector<std::string>{"p1", "p2"});  // sorted, unique
  CHECK((*m)->api_key_hash == api_key_hash("m1"));
  CHECK((*m)->created_at_ms == kT0);

  auto by_key = find_merchant_by_key_hash(fx.store, api_key_hash("m1"));
  REQUIRE(by_key.ok());
  REQUIRE(by_key->has_value());
  CHECK((*by_key)->id == "m1");
}

TEST_CASE("card issue moves money from the pool onto a new card") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1", 100'000));
  Outcome o = fx.ok(admin(), IssueCard{"p1", "ben-1", 30'000});
  CHECK(o.card.size() == 16);
  CHECK(o.id == o.card);
  CHECK(o.amount_cents == 30'000);
  CHECK(o.balance_cents == 30'000);
  CHECK(o.status == "active");
  CHECK(o.ledger_seq == 2);

  const CardId id = card_id(o.card);
  Card c = fx.card(id);
  CHECK(c.programme == "p1");
  CHECK(c.beneficiary_ref == "ben-1");
  CHECK(c.status == CardStatus::active);
  CHECK(c.available_cents == 30'000);
  CHECK(c.held_cents == 0);
  CHECK(c.issued_cents == 30'000);
  CHECK(c.issued_at_ms == kT0);
  CHECK_FALSE(c.has_replacement);

  Programme p = fx.programme("p1");
  CHECK(p.issued_cents == 30'000);
  CHECK(p.card_count == 1);

  Entry e = fx.entry(2);
  CHECK(e.kind == EntryKind::issue);
  CHECK(e.from == Account{AccountKind::pool, "p1"});
  CHECK(e.to == Account{AccountKind::card, o.card});
  CHECK(e.amount_cents == 30'000);
  CHECK(e.card == o.card);

  // A card may be issued empty (to be loaded later): no ledger entry.
  Outcome empty = fx.ok(admin(), IssueCard{"p1", "ben-2", 0});
  CHECK(empty.ledger_seq == 0);
  CHECK(fx.head().seq == 2);
  CHECK(fx.programme("p1").card_count == 2);
  CHECK(fx.card(card_id(empty.card)).available_cents == 0);

  // Issuing up to exactly the budget is fine.
  Outcome rest = fx.ok(admin(), IssueCard{"p1", "ben-3", 70'000});
  CHECK(rest.ledger_seq == 3);
  CHECK(fx.programme("p1").issued_cents == 100'000);
  fx.audit_clean();
}

TEST_CASE("card load tops up from the budget, blocked cards too") {
  World w;
  Outcome o = w.ok(admin(), LoadCard{w.c1, 5'000});
  CHECK(o.card == id_of(w.c1));
  CHECK(o.amount_cents == 5'000);
  CHECK(o.balance_cents == 15'000);
  CHECK(o.ledger_seq == w.head().seq);
  CHECK(w.entry(o.ledger_seq).kind == EntryKind::load);
  CHECK(w.entry(o.ledger_seq).to == Account{AccountKind::card, id_of(w.c1)});
  CHECK(w.card(w.c1).available_cents == 15'000);
  CHECK(w.card(w.c1).issued_cents == 10'000);  // the printed amount stays
  CHECK(w.programme("p1").issued_cents == 15'000);

  Outcome blocked = w.ok(admin(), BlockCard{w.c1});
  CHECK(blocked.status == "blocked");
  CHECK(blocked.balance_cents == 15'000);
  CHECK(w.card(w.c1).status == CardStatus::blocked);

  Outcome loaded = w.ok(admin(), LoadCard{w.c1, 1'000});
  CHECK(loaded.balance_cents == 16'000);
  CHECK(loaded.ledger_seq > o.ledger_seq);
  CHECK(w.card(w.c1).status == CardStatus::blocked);  // still blocked
  CHECK(w.programme("p1").issued_cents == 16'000);

  Outcome unblocked = w.ok(admin(), UnblockCard{w.c1});
  CHECK(unblocked.status == "active");
  CHECK(w.card(w.c1).status == CardStatus::active);
  CHECK(unblocked.ledger_seq == 0);
  w.audit_clean();
}

TEST_CASE("block stops spending, unblock restores it") {
  World w;
  w.ok(admin(), BlockCard{w.c1});
  w.ok(admin(), BlockCard{w.c1});  // blocking twice is harmless
  w.declined(shop("m1"), Redeem{w.c1, 100, ""}, Code::card_blocked);
  w.declined(shop("m1"), Authorize{w.c1, 100, "", 0}, Code::card_blocked);
  w.ok(admin(), UnblockCard{w.c1});
  Outcome o = w.ok(shop("m1"), Redeem{w.c1, 100, ""});
  CHECK(o.balance_cents == 9'900);
}

TEST_CASE("redeem moves money from the card to the shop") {
  World w;
  const std::uint64_t before = w.head().seq;
  Outcome o = w.ok(shop("m1"), Redeem{w.c1, 2'500, "order-1"});
  CHECK(o.id.starts_with("rd_"));
  CHECK(o.card == id_of(w.c1));
  CHECK(o.amount_cents == 2'500);
  CHECK(o.balance_cents == 7'500);
  CHECK(o.held_cents == 0);
  CHECK(o.time_ms == kT0);
  CHECK(o.ledger_seq == before + 1);
  CHECK(w.head().seq == before + 1);

  Card c = w.card(w.c1);
  CHECK(c.available_cents == 7'500);
  CHECK(c.spent_day == kMar1);
  CHECK(c.spent_today_cents == 2'500);

  Programme p = w.programme("p1");
  CHECK(p.redeemed_cents == 2'500);
  CHECK(p.issued_cents == 10'000);

  Redemption r = w.redemption(o.id);
  CHECK(r.card == w.c1);
  CHECK(r.merchant == "m1");
  CHECK(r.programme == "p1");
  CHECK(r.reference == "order-1");
  CHECK(r.hold_id.empty());
  CHECK(r.amount_cents == 2'500);
  CHECK(r.refunded_cents == 0);
  CHECK(r.ledger_seq == o.ledger_seq);

  Entry e = w.entry(o.ledger_seq);
  CHECK(e.kind == EntryKind::redeem);
  CHECK(e.from == Account{AccountKind::card, id_of(w.c1)});
  CHECK(e.to == Account{AccountKind::payable, "m1:p1"});
  CHECK(e.merchant == "m1");
  CHECK(e.ref == o.id);

  // The whole remaining balance can be spent; then the card is at zero.
  Outcome all = w.ok(shop("m2"), Redeem{w.c1, 7'500, ""});
  CHECK(all.balance_cents == 0);
  CHECK(all.ledger_seq == o.ledger_seq + 1);
  CHECK(w.card(w.c1).available_cents == 0);
  CHECK(w.programme("p1").redeemed_cents == 10'000);
  Outcome none = w.declined(shop("m1"), Redeem{w.c1, 1, ""}, Code::insufficient_funds);
  CHECK(none.balance_cents == 0);
  w.audit_clean();
}

TEST_CASE("refund moves money from the shop back to the card") {
  World w;
  Outcome r = w.ok(shop("m1"), Redeem{w.c1, 4'000, ""});
  Outcome f = w.ok(shop("m1"), RefundRedemption{r.id, 1'500});
  CHECK(f.id.starts_with("rf_"));
  CHECK(f.card == id_of(w.c1));
  CHECK(f.amount_cents == 1'500);
  CHECK(f.balance_cents == 7'500);
  CHECK(f.ledger_seq == r.ledger_seq + 1);
  CHECK(w.card(w.c1).available_cents == 7'500);
  CHECK(w.redemption(r.id).refunded_cents == 1'500);
  Programme p = w.programme("p1");
  CHECK(p.redeemed_cents == 4'000);
  CHECK(p.refunded_cents == 1'500);

  Entry e = w.entry(f.ledger_seq);
  CHECK(e.kind == EntryKind::refund);
  CHECK(e.from == Account{AccountKind::payable, "m1:p1"});
  CHECK(e.to == Account{AccountKind::card, id_of(w.c1)});
  CHECK(e.ref == f.id);
  w.audit_clean();
}

// ===========================================================================
// Holds: authorize, capture, void, expiry
// ===========================================================================

TEST_CASE("authorize holds money; partial capture pays the shop and releases the rest") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "delivery-7", 0});
  CHECK(a.id.starts_with("au_"));
  CHECK(a.status == "pending");
  CHECK(a.amount_cents == 3'000);
  CHECK(a.balance_cents == 7'000);
  CHECK(a.held_cents == 3'000);
  CHECK(a.expires_at_ms == kT0 + limits::hold_expires_in_s_default * kSecond);
  CHECK(w.entry(a.ledger_seq).kind == EntryKind::hold);
  CHECK(w.entry(a.ledger_seq).to == Account{AccountKind::held, id_of(w.c1)});

  Card c = w.card(w.c1);
  CHECK(c.available_cents == 7'000);
  CHECK(c.held_cents == 3'000);
  CHECK(w.programme("p1").held_cents == 3'000);
  Hold h = w.hold(a.id);
  CHECK(h.status == HoldStatus::pending);
  CHECK(h.merchant == "m1");
  CHECK(h.reference == "delivery-7");
  CHECK(h.amount_cents == 3'000);

  w.clock.advance(kHour);
  Outcome cap = w.ok(shop("m1"), Capture{a.id, 2'000});
  CHECK(cap.id.starts_with("rd_"));
  CHECK(cap.status == "captured");
  CHECK(cap.amount_cents == 2'000);
  CHECK(cap.balance_cents == 8'000);  // 7,000 + the 1,000 not captured
  CHECK(cap.held_cents == 0);
  CHECK(cap.ledger_seq == a.ledger_seq + 1);
  CHECK(w.head().seq == a.ledger_seq + 2);  // capture, then release of the rest

  Entry capture = w.entry(a.ledger_seq + 1);
  CHECK(capture.kind == EntryKind::capture);
  CHECK(capture.from == Account{AccountKind::held, id_of(w.c1)});
  CHECK(capture.to == Account{AccountKind::payable, "m1:p1"});
  CHECK(capture.amount_cents == 2'000);
  Entry release = w.entry(a.ledger_seq + 2);
  CHECK(release.kind == EntryKind::release);
  CHECK(release.from == Account{AccountKind::held, id_of(w.c1)});
  CHECK(release.to == Account{AccountKind::card, id_of(w.c1)});
  CHECK(release.amount_cents == 1'000);

  c = w.card(w.c1);
  CHECK(c.available_cents == 8'000);
  CHECK(c.held_cents == 0);
  Programme p = w.programme("p1");
  CHECK(p.held_cents == 0);
  CHECK(p.redeemed_cents == 2'000);
  h = w.hold(a.id);
  CHECK(h.status == HoldStatus::captured);
  CHECK(h.captured_cents == 2'000);
  CHECK(h.redemption_id == cap.id);
  Redemption r = w.redemption(cap.id);
  CHECK(r.hold_id == a.id);
  CHECK(r.amount_cents == 2'000);
  CHECK(r.ledger_seq == cap.ledger_seq);
  auto x = w.store.get(Space::state, keys::hold_expiry(a.expires_at_ms, a.id));
  REQUIRE(x.ok());
  CHECK_FALSE(x->has_value());  // no longer in the pending-by-expiry index

  // A captured redemption can be refunded like any other.
  Outcome f = w.ok(shop("m1"), RefundRedemption{cap.id, 500});
  CHECK(f.balance_cents == 8'500);
  w.audit_clean();
}

TEST_CASE("capture of the whole hold writes no release") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 0});
  Outcome cap = w.ok(shop("m1"), Capture{a.id, 3'000});
  CHECK(cap.balance_cents == 7'000);
  CHECK(w.head().seq == a.ledger_seq + 1);
  CHECK(w.card(w.c1).held_cents == 0);
  CHECK(w.programme("p1").redeemed_cents == 3'000);
  w.audit_clean();
}

TEST_CASE("void releases the whole hold to the card") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 1'500, "", 0});
  Outcome v = w.ok(shop("m1"), Void{a.id});
  CHECK(v.id == a.id);
  CHECK(v.status == "voided");
  CHECK(v.amount_cents == 1'500);
  CHECK(v.balance_cents == 10'000);
  CHECK(v.held_cents == 0);
  CHECK(v.ledger_seq == a.ledger_seq + 1);
  Entry e = w.entry(v.ledger_seq);
  CHECK(e.kind == EntryKind::release);
  CHECK(e.amount_cents == 1'500);
  CHECK(w.card(w.c1).available_cents == 10'000);
  CHECK(w.card(w.c1).held_cents == 0);
  CHECK(w.programme("p1").held_cents == 0);
  CHECK(w.programme("p1").redeemed_cents == 0);
  CHECK(w.hold(a.id).status == HoldStatus::voided);
  w.audit_clean();
}

TEST_CASE("a hold can be captured until the instant it expires") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 60});
  CHECK(a.expires_at_ms == kT0 + 60 * kSecond);
  w.clock.set(a.expires_at_ms - 1);
  Outcome cap = w.ok(shop("m1"), Capture{a.id, 1'000});
  CHECK(cap.balance_cents == 9'000);
}

TEST_CASE("expired holds are swept by the next batch and the money returns") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 60});
  const std::uint64_t seq = w.head().seq;
  w.clock.set(a.expires_at_ms);  // expires_at is the first instant it is lapsed
  w.settle();                    // any request runs a batch, which sweeps first

  Card c = w.card(w.c1);
  CHECK(c.held_cents == 0);
  CHECK(c.available_cents == 10'000);
  CHECK(w.programme("p1").held_cents == 0);
  CHECK(w.hold(a.id).status == HoldStatus::expired);
  CHECK(w.head().seq == seq + 1);
  Entry e = w.entry(seq + 1);
  CHECK(e.kind == EntryKind::release);
  CHECK(e.amount_cents == 3'000);
  CHECK(e.ref == a.id);
  auto x = w.store.get(Space::state, keys::hold_expiry(a.expires_at_ms, a.id));
  REQUIRE(x.ok());
  CHECK_FALSE(x->has_value());

  // After the sweep, capture and void answer hold_expired and change nothing.
  w.declined(shop("m1"), Capture{a.id, 1'000}, Code::hold_expired);
  w.declined(shop("m1"), Void{a.id}, Code::hold_expired);
  // The money is spendable again.
  CHECK(w.ok(shop("m1"), Redeem{w.c1, 10'000, ""}).balance_cents == 0);
  w.audit_clean();
}

TEST_CASE("the sweep expires at most hold_expiries_per_batch_max holds per batch") {
  World w;
  constexpr int holds = 300;
  static_assert(holds > static_cast<int>(limits::hold_expiries_per_batch_max));
  std::string last_id;
  TimeMs expires_at = 0;
  for (int i = 0; i < holds; ++i) {
    Outcome a = w.ok(shop("m1"), Authorize{w.c1, 1, "", 60});
    expires_at = a.expires_at_ms;
    last_id = std::max(last_id, a.id);  // same expiry: swept in hold-id order
  }
  CHECK(w.programme("p1").held_cents == holds);
  w.clock.set(expires_at);
  // In this batch the sweep takes the first 256; the last hold in key order is
  // still pending but lapsed, so the capture releases it itself.
  Outcome late = w.run(shop("m1"), Capture{last_id, 1});
  CHECK(late.code == Code::hold_expired);
  CHECK(late.status == "expired");
  CHECK(late.ledger_seq == w.head().seq);
  CHECK(w.hold(last_id).status == HoldStatus::expired);
  const Cents left = holds - static_cast<Cents>(limits::hold_expiries_per_batch_max) - 1;
  CHECK(w.programme("p1").held_cents == left);
  CHECK(w.card(w.c1).held_cents == left);
  w.settle();
  CHECK(w.programme("p1").held_cents == 0);
  CHECK(w.card(w.c1).held_cents == 0);
  CHECK(w.card(w.c1).available_cents == 10'000);
  w.audit_clean();
}

TEST_CASE("apply: capture or void of a lapsed, unswept hold releases it and says hold_expired") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 60});
  const ChainHead head = w.engine->head();
  const Dump committed = dump(w.store);
  SeededRandom random(7);

  for (bool capture : {true, false}) {
    CAPTURE(capture);
    Batch batch(w.store, head);
    Command command = capture ? Command{Capture{a.id, 1'000}} : Command{Void{a.id}};
    auto r = apply(batch, Request{shop("m1"), "", command}, a.expires_at_ms + kSecond, random);
    REQUIRE(r.ok());
    CHECK(r->outcome.code == Code::hold_expired);
    CHECK(r->outcome.id == a.id);
    CHECK(r->outcome.status == "expired");
    CHECK(batch.head().seq - head.seq == 1);
    CHECK(r->outcome.ledger_seq == head.seq + 1);
    CHECK(batch.head().seq == head.seq + 1);

    auto card = batch.load<Card>(Space::state, keys::card(w.c1));
    REQUIRE(card.ok());
    CHECK((*card)->held_cents == 0);
    CHECK((*card)->available_cents == 10'000);
    auto hold = batch.load<Hold>(Space::state, keys::hold(a.id));
    REQUIRE(hold.ok());
    CHECK((*hold)->status == HoldStatus::expired);
    auto x = batch.get(Space::state, keys::hold_expiry(a.expires_at_ms, a.id));
    REQUIRE(x.ok());
    CHECK_FALSE(x->has_value());
    auto p = batch.load<Programme>(Space::state, keys::programme("p1"));
    REQUIRE(p.ok());
    CHECK((*p)->held_cents == 0);

    // Asked again in the same batch: already expired, nothing more happens.
    auto again = apply(batch, Request{shop("m1"), "", command}, a.expires_at_ms + kSecond, random);
    REQUIRE(again.ok());
    CHECK(again->outcome.code == Code::hold_expired);
    CHECK(batch.head().seq - head.seq == 1);
  }
  CHECK(diff(committed, dump(w.store)).empty());  // a Batch never writes by itself
}

TEST_CASE("apply: a decline without idempotency key leaves the batch empty") {
  World w;
  Batch batch(w.store, w.engine->head());
  SeededRandom random(3);
  auto r = apply(batch, Request{shop("m1"), "", Redeem{w.c1, 20'000, ""}}, kT0, random);
  REQUIRE(r.ok());
  CHECK(r->outcome.code == Code::insufficient_funds);
  CHECK(r->outcome.balance_cents == 10'000);
  CHECK(batch.write_set().empty());
  CHECK(batch.head().seq == w.engine->head().seq);

  // With a key, the decline is remembered (only the idempotency record).
  auto k = apply(batch, Request{shop("m1"), "k1", Redeem{w.c1, 20'000, ""}}, kT0, random);
  REQUIRE(k.ok());
  WriteSet set = batch.write_set();
  REQUIRE(set.ops.size() == 1);
  CHECK(set.ops[0].space == Space::idempotency);
  // And replayed within the same batch.
  auto again = apply(batch, Request{shop("m1"), "k1", Redeem{w.c1, 20'000, ""}}, kT0, random);
  REQUIRE(again.ok());
  CHECK(again->replayed);
  CHECK(again->outcome.code == Code::insufficient_funds);
}

// ===========================================================================
// Declines, operation by operation; each must change nothing.
// ===========================================================================

TEST_CASE("programme create declines") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1"));
  fx.ok(admin(), merchant_cmd("m1", {"p1"}));

  fx.declined(shop("m1"), programme_cmd("p2"), Code::forbidden);
  fx.declined(admin(), programme_cmd("p1"), Code::already_exists);
  fx.declined(admin(), programme_cmd(""), Code::invalid_field);
  fx.declined(admin(), programme_cmd("bad id"), Code::invalid_field);
  fx.declined(admin(), programme_cmd(std::string(limits::id_length_max + 1, 'p')),
              Code::invalid_field);
  CreateProgramme no_name = programme_cmd("p2");
  no_name.name = "";
  fx.declined(admin(), no_name, Code::invalid_field);
  CreateProgramme control = programme_cmd("p2");
  control.name = "line\nbreak";
  fx.declined(admin(), control, Code::invalid_field);
  fx.declined(admin(), programme_cmd("p2", 0), Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", -5), Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", limits::budget_cents_max + 1), Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar1, kMar31, -1), Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar1, kMar31, limits::amount_cents_max + 1),
              Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar1, kMar31, 0, -1), Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar1, kMar31, 0, limits::amount_cents_max + 1),
              Code::invalid_amount);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar31, kMar1), Code::invalid_field);
  fx.declined(admin(), programme_cmd("p2", 1'000, kMar1, kMar1 + limits::programme_days_max + 1),
              Code::invalid_field);
  // A card's token carries its last day in 16 bits (2149-06-06): a later one
  // would be committed and then abort the server rendering the card's token.
  fx.declined(
      admin(),
      programme_cmd("p2", 1'000, buoni::kTokenExpiryDayMax - 10, buoni::kTokenExpiryDayMax + 1),
      Code::invalid_field);
  fx.ok(admin(),
        programme_cmd("p-last", 1'000, buoni::kTokenExpiryDayMax - 10, buoni::kTokenExpiryDayMax));

  // Edges that are allowed.
  fx.ok(admin(), programme_cmd("p3", limits::budget_cents_max));
  fx.ok(admin(), programme_cmd("p4", 1, kMar1, kMar1 + limits::programme_days_max));
  fx.ok(admin(), programme_cmd("p5", 1, kMar1, kMar1));
}

TEST_CASE("programme close declines") {
  World w;
  w.declined(shop("m1"), CloseProgramme{"p1"}, Code::forbidden);
  w.declined(admin(), CloseProgramme{"nope"}, Code::not_found);
  w.declined(admin(), CloseProgramme{"p1"}, Code::programme_not_ended);
  w.clock.set(kApr1 - 1);  // the last millisecond of valid_until
  w.declined(admin(), CloseProgramme{"p1"}, Code::programme_not_ended);
  w.clock.set(kApr1);
  w.ok(admin(), CloseProgramme{"p1"});
  w.declined(admin(), CloseProgramme{"p1"}, Code::programme_closed);
}

TEST_CASE("programme close with too many pending holds is refused (limit_exceeded)") {
  World w;
  // Fake pending-hold index rows, far in the future so the sweep leaves them.
  WriteSet set;
  const TimeMs far = kT0 + 3650 * kDay;
  for (std::size_t i = 0; i <= limits::close_holds_max; ++i) {
    set.put(Space::state, keys::hold_expiry(far, "au_fake" + std::to_string(i)), "");
  }
  REQUIRE(w.store.write(set).ok());
  w.clock.set(kApr1);
  w.declined(admin(), CloseProgramme{"p1"}, Code::limit_exceeded);
}

TEST_CASE("merchant add declines") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1"));
  fx.ok(admin(), merchant_cmd("m1", {"p1"}));

  fx.declined(shop("m1"), merchant_cmd("m2", {"p1"}), Code::forbidden);
  fx.declined(admin(), merchant_cmd("m1", {"p1"}), Code::already_exists);
  fx.declined(admin(), merchant_cmd("m 2", {"p1"}), Code::invalid_field);
  fx.declined(admin(), merchant_cmd("", {"p1"}), Code::invalid_field);
  AddMerchant no_name = merchant_cmd("m2", {"p1"});
  no_name.name.clear();
  fx.declined(admin(), no_name, Code::invalid_field);
  fx.declined(admin(), merchant_cmd("m2", {"p1"}, "01234567898"), Code::invalid_field);
  fx.declined(admin(), merchant_cmd("m2", {"p1"}, "0123456789"), Code::invalid_field);
  fx.declined(admin(), merchant_cmd("m2", {}), Code::invalid_field);
  std::vector<std::string> too_many(limits::merchant_programmes_max + 1, "p1");
  fx.declined(admin(), merchant_cmd("m2", too_many), Code::invalid_field);
  fx.declined(admin(), merchant_cmd("m2", {"p1", "nope"}), Code::not_found);

  fx.ok(admin(), merchant_cmd("m2", {"p1"}, "IT12345678903"));
}

// BUG (engine/apply.cpp, Machine::run(const AddMerchant&)): a new merchant
// whose api_key_hash is already another merchant's is accepted, and the
// "k/" index is overwritten, so the first shop's API key now authenticates
// as the second (the first is locked out and its key pays the other shop).
// It should be refused (already_exists) and change nothing.
TEST_CASE("merchant add refuses an API key hash that another shop already has") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1"));
  fx.ok(admin(), merchant_cmd("m1", {"p1"}));
  AddMerchant same_key = merchant_cmd("m9", {"p1"});
  same_key.api_key_hash = api_key_hash("m1");
  const Dump before = dump(fx.store);
  Outcome o = fx.run(admin(), same_key);
  CHECK_FALSE(o.ok());  // fails: ok
  auto by_key = find_merchant_by_key_hash(fx.store, api_key_hash("m1"));
  REQUIRE(by_key.ok());
  REQUIRE(by_key->has_value());
  CHECK((*by_key)->id == "m1");  // fails: "m9"
  CHECK(diff(before, dump(fx.store)).empty());
}

TEST_CASE("card issue declines") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1", 50'000));
  fx.ok(admin(), programme_cmd("old", 50'000, kFeb1, kFeb28));  // already over
  fx.ok(admin(), programme_cmd("shut", 50'000, kFeb1, kFeb28));
  fx.ok(admin(), CloseProgramme{"shut"});
  fx.ok(admin(), merchant_cmd("m1", {"p1"}));
  const CardId first = fx.issue("p1", "ben-1", 20'000);

  fx.declined(shop("m1"), IssueCard{"p1", "ben-2", 100}, Code::forbidden);
  fx.declined(admin(), IssueCard{"p1", "", 100}, Code::invalid_field);
  fx.declined(admin(), IssueCard{"p1", std::string(limits::beneficiary_ref_length_max + 1, 'b'), 1},
              Code::invalid_field);
  fx.declined(admin(), IssueCard{"p1", "tab\there", 100}, Code::invalid_field);
  fx.declined(admin(), IssueCard{"p1", "ben-2", -1}, Code::invalid_amount);
  fx.declined(admin(), IssueCard{"p1", "ben-2", limits::amount_cents_max + 1},
              Code::invalid_amount);
  fx.declined(admin(), IssueCard{"nope", "ben-2", 100}, Code::not_found);
  fx.declined(admin(), IssueCard{"shut", "ben-2", 100}, Code::programme_closed);
  fx.declined(admin(), IssueCard{"old", "ben-2", 100}, Code::card_expired);
  fx.declined(admin(), IssueCard{"p1", "ben-2", 30'001}, Code::budget_exceeded);

  Outcome again = fx.declined(admin(), IssueCard{"p1", "ben-1", 100}, Code::already_issued);
  CHECK(again.card == id_of(first));
  CHECK(again.id == id_of(first));
  // The same beneficiary in another programme is another card.
  fx.ok(admin(), programme_cmd("p2", 1'000));
  fx.ok(admin(), IssueCard{"p2", "ben-1", 100});

  fx.ok(admin(), IssueCard{"p1", "ben-2", 30'000});  // exactly the rest of the budget
  fx.declined(admin(), IssueCard{"p1", "ben-3", 1}, Code::budget_exceeded);
}

TEST_CASE("card issue past cards_per_programme_max is refused (limit_exceeded)") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("p1"));
  // Pretend the programme is full by rewriting its stored count.
  Programme p = fx.programme("p1");
  p.card_count = limits::cards_per_programme_max;
  WriteSet set;
  set.put(Space::state, keys::programme("p1"), encode(p));
  REQUIRE(fx.store.write(set).ok());
  fx.declined(admin(), IssueCard{"p1", "ben-1", 100}, Code::limit_exceeded);
}

TEST_CASE("card load declines") {
  World w;
  const CardId other = w.issue("p1", "ben-2", 1'000);
  w.declined(shop("m1"), LoadCard{w.c1, 100}, Code::forbidden);
  w.declined(admin(), LoadCard{w.c1, 0}, Code::invalid_amount);
  w.declined(admin(), LoadCard{w.c1, -100}, Code::invalid_amount);
  w.declined(admin(), LoadCard{w.c1, limits::amount_cents_max + 1}, Code::invalid_amount);
  w.declined(admin(), LoadCard{CardId{}, 100}, Code::unknown_card);
  // Budget 1,000,000; 11,000 issued.
  w.declined(admin(), LoadCard{w.c1, 989'001}, Code::budget_exceeded);
  w.ok(admin(), LoadCard{w.c1, 900'000});
  w.declined(admin(), LoadCard{w.c1, 89'001}, Code::budget_exceeded);
  w.ok(admin(), LoadCard{w.c1, 89'000});  // exactly the budget
  CHECK(w.programme("p1").issued_cents == 1'000'000);
  w.declined(admin(), LoadCard{other, 1}, Code::budget_exceeded);

  w.ok(admin(), ReplaceCard{other});
  w.declined(admin(), LoadCard{other, 1}, Code::card_revoked);
  w.clock.set(kApr1);
  w.declined(admin(), LoadCard{w.c1, 1}, Code::card_expired);
  w.ok(admin(), CloseProgramme{"p1"});
  w.declined(admin(), LoadCard{w.c1, 1}, Code::programme_closed);
}

TEST_CASE("card block and unblock declines") {
  World w;
  w.declined(shop("m1"), BlockCard{w.c1}, Code::forbidden);
  w.declined(shop("m1"), UnblockCard{w.c1}, Code::forbidden);
  w.declined(admin(), BlockCard{CardId{}}, Code::unknown_card);
  w.declined(admin(), UnblockCard{CardId{}}, Code::unknown_card);
  const CardId two = w.issue("p1", "ben-2", 100);
  w.ok(admin(), ReplaceCard{two});
  w.declined(admin(), BlockCard{two}, Code::card_revoked);
  w.declined(admin(), UnblockCard{two}, Code::card_revoked);
  w.clock.set(kApr1);
  w.ok(admin(), CloseProgramme{"p1"});
  w.declined(admin(), BlockCard{w.c1}, Code::card_expired);
  w.declined(admin(), UnblockCard{w.c1}, Code::card_expired);
}

TEST_CASE("card replace declines") {
  World w;
  w.declined(shop("m1"), ReplaceCard{w.c1}, Code::forbidden);
  w.declined(admin(), ReplaceCard{CardId{}}, Code::unknown_card);
  w.ok(admin(), ReplaceCard{w.c1});
  w.declined(admin(), ReplaceCard{w.c1}, Code::card_revoked);
  const CardId two = w.issue("p1", "ben-2", 100);
  w.clock.set(kApr1);
  w.declined(admin(), ReplaceCard{two}, Code::card_expired);
  w.ok(admin(), CloseProgramme{"p1"});
  w.declined(admin(), ReplaceCard{two}, Code::programme_closed);
}

TEST_CASE("redeem declines") {
  World w;
  w.ok(admin(), programme_cmd("p2", 10'000));
  w.ok(admin(), programme_cmd("later", 10'000, kMar2, kMar31));
  w.ok(admin(), programme_cmd("old", 10'000, kFeb1, kFeb28));
  w.ok(admin(), merchant_cmd("m3", {"p1", "later", "old"}));
  const CardId p2_card = w.issue("p2", "ben-1", 5'000);
  const CardId later_card = w.issue("later", "ben-1", 5'000);

  w.declined(admin(), Redeem{w.c1, 100, ""}, Code::forbidden);
  w.declined(shop("no-such-shop"), Redeem{w.c1, 100, ""}, Code::forbidden);
  w.declined(shop("m1"), Redeem{w.c1, 0, ""}, Code::invalid_amount);
  w.declined(shop("m1"), Redeem{w.c1, -1, ""}, Code::invalid_amount);
  w.declined(shop("m1"), Redeem{w.c1, limits::amount_cents_max + 1, ""}, Code::invalid_amount);
  w.declined(shop("m1"), Redeem{w.c1, 100, std::string(limits::reference_length_max + 1, 'r')},
             Code::invalid_field);
  w.declined(shop("m1"), Redeem{w.c1, 100, "bell\a"}, Code::invalid_field);
  w.declined(shop("m1"), Redeem{CardId{}, 100, ""}, Code::unknown_card);
  w.declined(shop("m1"), Redeem{p2_card, 100, ""}, Code::merchant_not_allowed);
  w.declined(shop("m3"), Redeem{later_card, 100, ""}, Code::card_not_yet_valid);

  Outcome poor = w.declined(shop("m1"), Redeem{w.c1, 10'001, ""}, Code::insufficient_funds);
  CHECK(poor.balance_cents == 10'000);
  CHECK(poor.card == id_of(w.c1));
  w.ok(shop("m1"), Authorize{w.c1, 4'000, "", 0});
  poor = w.declined(shop("m1"), Redeem{w.c1, 6'001, ""}, Code::insufficient_funds);
  CHECK(poor.balance_cents == 6'000);  // held money is not spendable
  CHECK(poor.held_cents == 4'000);

  w.ok(admin(), BlockCard{w.c1});
  w.declined(shop("m1"), Redeem{w.c1, 100, ""}, Code::card_blocked);
  w.ok(admin(), UnblockCard{w.c1});

  const CardId gone = w.issue("p1", "ben-2", 500);
  w.ok(admin(), ReplaceCard{gone});
  w.declined(shop("m1"), Redeem{gone, 100, ""}, Code::card_revoked);

  // The day after the programme's last day, before it is closed.
  w.clock.set(kApr1);
  w.settle();  // the hold above lapses on 4 March: let the sweep release it first
  w.declined(shop("m1"), Redeem{w.c1, 100, ""}, Code::card_expired);
  // And when it opens, the later card is good.
  w.clock.set(kMar2 * kDay);
  w.ok(shop("m3"), Redeem{later_card, 100, ""});
}

TEST_CASE("limit_exceeded: per-redemption maximum, daily limit, and the next day resets") {
  World w(/*max_redemption_cents=*/3'000, /*daily_limit_cents=*/5'000);
  w.ok(admin(), LoadCard{w.c1, 10'000});  // 20,000 on the card
  w.declined(shop("m1"), Redeem{w.c1, 3'001, ""}, Code::limit_exceeded);
  w.declined(shop("m1"), Authorize{w.c1, 3'001, "", 0}, Code::limit_exceeded);
  w.ok(shop("m1"), Redeem{w.c1, 3'000, ""});
  // Authorizations count towards the day as redemptions do.
  w.ok(shop("m2"), Authorize{w.c1, 2'000, "", 0});
  w.declined(shop("m1"), Redeem{w.c1, 1, ""}, Code::limit_exceeded);
  w.declined(shop("m2"), Authorize{w.c1, 1, "", 0}, Code::limit_exceeded);
  CHECK(w.card(w.c1).spent_today_cents == 5'000);

  // Late on the same day: still the same day.
  w.clock.set(kMar2 * kDay - 1);
  w.declined(shop("m1"), Redeem{w.c1, 1, ""}, Code::limit_exceeded);

  // Next day: the limit starts again (the pending hold stays pending).
  w.clock.set(kMar2 * kDay);
  w.ok(shop("m1"), Redeem{w.c1, 3'000, ""});
  w.ok(shop("m1"), Redeem{w.c1, 2'000, ""});
  w.declined(shop("m1"), Redeem{w.c1, 1, ""}, Code::limit_exceeded);
  Card c = w.card(w.c1);
  CHECK(c.spent_day == kMar2);
  CHECK(c.spent_today_cents == 5'000);
  CHECK(c.available_cents == 20'000 - 3'000 - 2'000 - 3'000 - 2'000);
  CHECK(c.held_cents == 2'000);
  w.audit_clean();
}

TEST_CASE("authorize declines") {
  World w;
  w.ok(admin(), programme_cmd("p2", 10'000));
  const CardId p2_card = w.issue("p2", "ben-1", 5'000);
  w.declined(admin(), Authorize{w.c1, 100, "", 0}, Code::forbidden);
  w.declined(shop("m1"), Authorize{w.c1, 0, "", 0}, Code::invalid_amount);
  w.declined(shop("m1"), Authorize{w.c1, 100, "", -1}, Code::invalid_field);
  w.declined(shop("m1"), Authorize{w.c1, 100, "", limits::hold_expires_in_s_max + 1},
             Code::invalid_field);
  w.declined(shop("m1"),
             Authorize{w.c1, 100, std::string(limits::reference_length_max + 1, 'r'), 0},
             Code::invalid_field);
  w.declined(shop("m1"), Authorize{CardId{}, 100, "", 0}, Code::unknown_card);
  w.declined(shop("m1"), Authorize{p2_card, 100, "", 0}, Code::merchant_not_allowed);
  Outcome poor = w.declined(shop("m1"), Authorize{w.c1, 10'001, "", 0}, Code::insufficient_funds);
  CHECK(poor.balance_cents == 10'000);
  w.ok(admin(), BlockCard{w.c1});
  w.declined(shop("m1"), Authorize{w.c1, 100, "", 0}, Code::card_blocked);
  w.ok(admin(), UnblockCard{w.c1});
  Outcome longest = w.ok(shop("m1"), Authorize{w.c1, 100, "", limits::hold_expires_in_s_max});
  CHECK(longest.expires_at_ms == kT0 + limits::hold_expires_in_s_max * kSecond);
}

TEST_CASE("capture and void declines") {
  World w;
  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 0});
  w.declined(admin(), Capture{a.id, 100}, Code::forbidden);
  w.declined(admin(), Void{a.id}, Code::forbidden);
  w.declined(shop("m1"), Capture{a.id, 0}, Code::invalid_amount);
  w.declined(shop("m1"), Capture{a.id, -1}, Code::invalid_amount);
  w.declined(shop("m1"), Capture{"au_nope", 100}, Code::not_found);
  w.declined(shop("m1"), Void{"au_nope"}, Code::not_found);
  w.declined(shop("m2"), Capture{a.id, 100}, Code::not_found);  // another shop's hold
  w.declined(shop("m2"), Void{a.id}, Code::not_found);
  w.declined(shop("m1"), Capture{a.id, 3'001}, Code::amount_exceeds_hold);

  w.ok(shop("m1"), Capture{a.id, 1'000});
  w.declined(shop("m1"), Capture{a.id, 1'000}, Code::hold_not_pending);  // capture twice
  w.declined(shop("m1"), Void{a.id}, Code::hold_not_pending);            // void after capture

  Outcome b = w.ok(shop("m1"), Authorize{w.c1, 500, "", 0});
  w.ok(shop("m1"), Void{b.id});
  w.declined(shop("m1"), Void{b.id}, Code::hold_not_pending);
  w.declined(shop("m1"), Capture{b.id, 500}, Code::hold_not_pending);
}

TEST_CASE("refund declines; refunds are summed against the redemption") {
  World w;
  Outcome r = w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  w.declined(admin(), RefundRedemption{r.id, 100}, Code::forbidden);
  w.declined(shop("m1"), RefundRedemption{r.id, 0}, Code::invalid_amount);
  w.declined(shop("m1"), RefundRedemption{r.id, -100}, Code::invalid_amount);
  w.declined(shop("m1"), RefundRedemption{"rd_nope", 100}, Code::not_found);
  w.declined(shop("m2"), RefundRedemption{r.id, 100}, Code::not_found);  // another shop's sale
  w.declined(shop("m1"), RefundRedemption{r.id, 1'001}, Code::refund_exceeds_redemption);

  w.ok(shop("m1"), RefundRedemption{r.id, 300});
  w.ok(shop("m1"), RefundRedemption{r.id, 300});
  w.declined(shop("m1"), RefundRedemption{r.id, 401}, Code::refund_exceeds_redemption);
  Outcome last = w.ok(shop("m1"), RefundRedemption{r.id, 400});  // exactly the rest
  CHECK(last.balance_cents == 10'000);
  CHECK(w.redemption(r.id).refunded_cents == 1'000);
  CHECK(w.programme("p1").refunded_cents == 1'000);
  w.declined(shop("m1"), RefundRedemption{r.id, 1}, Code::refund_exceeds_redemption);

  Outcome r2 = w.ok(shop("m1"), Redeem{w.c1, 500, ""});
  w.clock.set(kApr1);
  w.ok(admin(), CloseProgramme{"p1"});
  w.declined(shop("m1"), RefundRedemption{r2.id, 100}, Code::programme_closed);
  w.audit_clean();
}

TEST_CASE("every decline code of code.h is produced (except the PIN codes, not yet)") {
  World w(/*max_redemption_cents=*/5'000, 0);
  std::set<Code> seen;
  auto see = [&](Outcome o) { seen.insert(o.code); };

  w.ok(admin(), programme_cmd("p2", 10'000));
  w.ok(admin(), programme_cmd("later", 10'000, kMar2, kMar31));
  w.ok(admin(), programme_cmd("old", 10'000, kFeb1, kFeb28));
  w.ok(admin(), merchant_cmd("m3", {"later"}));
  const CardId p2_card = w.issue("p2", "ben-1", 100);
  const CardId later_card = w.issue("later", "ben-1", 100);

  see(w.declined(admin(), programme_cmd("bad id"), Code::invalid_field));
  see(w.declined(shop("m1"), Redeem{w.c1, 0, ""}, Code::invalid_amount));
  see(w.declined(admin(), CloseProgramme{"nope"}, Code::not_found));
  see(w.declined(shop("m1"), Redeem{CardId{}, 100, ""}, Code::unknown_card));
  see(w.declined(admin(), Redeem{w.c1, 100, ""}, Code::forbidden));
  see(w.declined(shop("m1"), Redeem{p2_card, 100, ""}, Code::merchant_not_allowed));
  w.ok(shop("m1"), Redeem{w.c1, 100, ""}, "key-1");
  see(w.run(shop("m1"), Redeem{w.c1, 200, ""}, "key-1"));
  see(w.declined(admin(), programme_cmd("p1"), Code::already_exists));
  see(w.declined(admin(), IssueCard{"p1", "ben-1", 1}, Code::already_issued));
  const CardId poor = w.issue("p1", "ben-3", 100);
  see(w.declined(shop("m1"), Redeem{poor, 101, ""}, Code::insufficient_funds));
  see(w.declined(shop("m1"), Redeem{w.c1, 5'001, ""}, Code::limit_exceeded));
  see(w.declined(admin(), IssueCard{"p1", "ben-9", 1'000'000}, Code::budget_exceeded));
  see(w.declined(shop("m3"), Redeem{later_card, 1, ""}, Code::card_not_yet_valid));
  see(w.declined(admin(), IssueCard{"old", "ben-1", 1}, Code::card_expired));
  const CardId blocked = w.issue("p1", "ben-2", 100);
  w.ok(admin(), BlockCard{blocked});
  see(w.declined(shop("m1"), Redeem{blocked, 1, ""}, Code::card_blocked));
  w.ok(admin(), ReplaceCard{blocked});
  see(w.declined(shop("m1"), Redeem{blocked, 1, ""}, Code::card_revoked));

  Outcome a = w.ok(shop("m1"), Authorize{w.c1, 1'000, "", 0});
  see(w.declined(shop("m1"), Capture{a.id, 1'001}, Code::amount_exceeds_hold));
  Outcome cap = w.ok(shop("m1"), Capture{a.id, 1'000});
  see(w.declined(shop("m1"), Capture{a.id, 1'000}, Code::hold_not_pending));
  see(w.declined(shop("m1"), RefundRedemption{cap.id, 1'001}, Code::refund_exceeds_redemption));
  see(w.declined(admin(), CloseProgramme{"p1"}, Code::programme_not_ended));
  w.ok(admin(), CloseProgramme{"old"});
  see(w.declined(admin(), CloseProgramme{"old"}, Code::programme_closed));

  Outcome b = w.ok(shop("m1"), Authorize{w.c1, 1'000, "", 60});
  w.clock.advance(61 * kSecond);
  w.settle();
  see(w.declined(shop("m1"), Capture{b.id, 1}, Code::hold_expired));

  std::set<Code> expected;
  for (int i = 0; i < code_count; ++i) {
    auto code = static_cast<Code>(i);
    // PIN codes are produced in the PIN cases below (they change the store).
    if (code == Code::ok || code == Code::pin_required || code == Code::wrong_pin ||
        code == Code::pin_locked) {
      continue;
    }
    expected.insert(code);
  }
  for (Code code : expected) {
    CHECK_MESSAGE(seen.count(code) == 1, "never produced: " << std::string(code_name(code)));
  }
  CHECK(seen.count(Code::ok) == 0);
  w.audit_clean();
}

// ===========================================================================
// Idempotency
// ===========================================================================

TEST_CASE("idempotency: the same request under the same key replays and writes nothing") {
  World w;
  Result first = w.exec(shop("m1"), Redeem{w.c1, 1'000, "order-1"}, "redeem-1");
  REQUIRE(first.outcome.ok());
  CHECK_FALSE(first.replayed);

  const Dump before = dump(w.store);
  const int writes = w.store.writes();
  w.clock.advance(kMinute);
  Result again = w.exec(shop("m1"), Redeem{w.c1, 1'000, "order-1"}, "redeem-1");
  CHECK(again.replayed);
  CHECK(encode(again.outcome) == encode(first.outcome));  // every field the same
  CHECK(again.outcome.time_ms == kT0);                    // the first answer's time
  CHECK(diff(before, dump(w.store)).empty());
  CHECK(w.store.writes() == writes);
  CHECK(w.card(w.c1).available_cents == 9'000);

  // Another command under that key: conflict, nothing written.
  Result other = w.exec(shop("m1"), Redeem{w.c1, 2'000, "order-1"}, "redeem-1");
  CHECK(other.outcome.code == Code::idempotency_conflict);
  CHECK_FALSE(other.replayed);
  Result other_kind = w.exec(shop("m1"), Authorize{w.c1, 1'000, "order-1", 0}, "redeem-1");
  CHECK(other_kind.outcome.code == Code::idempotency_conflict);
  CHECK(diff(before, dump(w.store)).empty());

  // Survives a restart.
  w.open();
  Result after_reopen = w.exec(shop("m1"), Redeem{w.c1, 1'000, "order-1"}, "redeem-1");
  CHECK(after_reopen.replayed);
  CHECK(encode(after_reopen.outcome) == encode(first.outcome));
  CHECK(w.card(w.c1).available_cents == 9'000);
  w.audit_clean();
}

TEST_CASE("idempotency: keys are per caller") {
  World w;
  Result m1 = w.exec(shop("m1"), Redeem{w.c1, 1'000, ""}, "same-key");
  Result m2 = w.exec(shop("m2"), Redeem{w.c1, 1'000, ""}, "same-key");
  REQUIRE(m1.outcome.ok());
  REQUIRE(m2.outcome.ok());
  CHECK_FALSE(m2.replayed);
  CHECK(m2.outcome.id != m1.outcome.id);
  CHECK(m2.outcome.balance_cents == 8'000);
  // The admin's namespace is separate too.
  Result load = w.exec(admin(), LoadCard{w.c1, 500}, "same-key");
  CHECK(load.outcome.ok());
  CHECK_FALSE(load.replayed);
  CHECK(w.card(w.c1).available_cents == 8'500);
  // And each replays its own.
  Result m1_again = w.exec(shop("m1"), Redeem{w.c1, 1'000, ""}, "same-key");
  CHECK(m1_again.replayed);
  CHECK(m1_again.outcome.id == m1.outcome.id);
  CHECK(w.card(w.c1).available_cents == 8'500);
  w.audit_clean();
}

TEST_CASE("idempotency: a declined request replays its decline") {
  World w;
  Result poor = w.exec(shop("m1"), Redeem{w.c1, 15'000, ""}, "k");
  CHECK(poor.outcome.code == Code::insufficient_funds);
  w.ok(admin(), LoadCard{w.c1, 10'000});
  Result again = w.exec(shop("m1"), Redeem{w.c1, 15'000, ""}, "k");
  CHECK(again.replayed);
  CHECK(again.outcome.code == Code::insufficient_funds);
  CHECK(again.outcome.balance_cents == 10'000);
  CHECK(w.card(w.c1).available_cents == 20'000);
}

TEST_CASE("idempotency: malformed keys are invalid_field and change nothing") {
  World w;
  for (const std::string& bad :
       {std::string(65, 'k'), std::string("has space"), std::string("slash/key"),
        std::string("caf\xc3\xa9"), std::string("nul\0byte", 8), std::string("tab\t")}) {
    CAPTURE(bad);
    const Dump before = dump(w.store);
    Result r = w.exec(shop("m1"), Redeem{w.c1, 100, ""}, bad);
    CHECK(r.outcome.code == Code::invalid_field);
    CHECK_FALSE(r.replayed);
    CHECK(diff(before, dump(w.store)).empty());
  }
  CHECK(w.card(w.c1).available_cents == 10'000);
  Result longest = w.exec(shop("m1"), Redeem{w.c1, 100, ""}, std::string(64, 'k'));
  CHECK(longest.outcome.ok());
  Result chars = w.exec(shop("m1"), Redeem{w.c1, 100, ""}, "Az09_-");
  CHECK(chars.outcome.ok());
}

// ===========================================================================
// Replacement
// ===========================================================================

TEST_CASE("replace moves the balance to a new card and revokes the old one") {
  World w;
  Outcome sale = w.ok(shop("m1"), Redeem{w.c1, 2'000, ""});
  Outcome hold = w.ok(shop("m1"), Authorize{w.c1, 3'000, "", 0});
  Outcome hold2 = w.ok(shop("m1"), Authorize{w.c1, 1'000, "", 0});
  // c1: 4,000 available, 4,000 held.
  const std::uint64_t seq = w.head().seq;
  Outcome r = w.ok(admin(), ReplaceCard{w.c1});
  const CardId fresh = card_id(r.new_card);
  CHECK(r.id == r.new_card);
  CHECK(r.card == id_of(w.c1));
  CHECK(r.amount_cents == 4'000);
  CHECK(r.balance_cents == 4'000);
  CHECK(r.status == "active");
  CHECK(r.ledger_seq == seq + 1);
  Entry e = w.entry(seq + 1);
  CHECK(e.kind == EntryKind::transfer);
  CHECK(e.from == Account{AccountKind::card, id_of(w.c1)});
  CHECK(e.to == Account{AccountKind::card, r.new_card});
  CHECK(e.amount_cents == 4'000);

  Card old_card = w.card(w.c1);
  CHECK(old_card.status == CardStatus::revoked);
  CHECK(old_card.available_cents == 0);
  CHECK(old_card.held_cents == 4'000);  // the holds stay where they were made
  CHECK(old_card.has_replacement);
  CHECK(old_card.replaced_by == fresh);
  Card new_card = w.card(fresh);
  CHECK(new_card.status == CardStatus::active);
  CHECK(new_card.programme == "p1");
  CHECK(new_card.beneficiary_ref == "ben-1");
  CHECK(new_card.available_cents == 4'000);
  CHECK(new_card.held_cents == 0);
  Programme p = w.programme("p1");
  CHECK(p.issued_cents == 10'000);  // no new money
  CHECK(p.card_count == 1);
  CHECK(p.held_cents == 4'000);

  // The old card cannot be spent; the new one can.
  w.declined(shop("m1"), Redeem{w.c1, 100, ""}, Code::card_revoked);
  w.declined(shop("m1"), Authorize{w.c1, 100, "", 0}, Code::card_revoked);
  Outcome spent = w.ok(shop("m1"), Redeem{fresh, 1'000, ""});
  CHECK(spent.balance_cents == 3'000);

  // A hold on the old card, voided, goes back to the new card.
  Outcome v = w.ok(shop("m1"), Void{hold.id});
  CHECK(v.card == r.new_card);
  CHECK(v.balance_cents == 6'000);
  CHECK(w.card(fresh).available_cents == 6'000);
  CHECK(w.card(w.c1).held_cents == 1'000);
  CHECK(w.card(w.c1).available_cents == 0);
  CHECK(w.entry(v.ledger_seq).to == Account{AccountKind::card, r.new_card});

  // A partial capture of the other old hold: the rest goes to the new card.
  Outcome cap = w.ok(shop("m1"), Capture{hold2.id, 400});
  CHECK(cap.card == r.new_card);
  CHECK(cap.balance_cents == 6'600);
  CHECK(w.card(w.c1).held_cents == 0);
  CHECK(w.programme("p1").held_cents == 0);

  // A refund of a sale made with the old card goes to the new card.
  Outcome f = w.ok(shop("m1"), RefundRedemption{sale.id, 800});
  CHECK(f.card == r.new_card);
  CHECK(f.balance_cents == 7'400);
  CHECK(w.card(fresh).available_cents == 7'400);
  CHECK(w.card(w.c1).available_cents == 0);

  // The beneficiary's card is now the new one.
  Outcome again = w.declined(admin(), IssueCard{"p1", "ben-1", 100}, Code::already_issued);
  CHECK(again.card == r.new_card);
  w.audit_clean();
}

TEST_CASE(
    "replace: a blocked (lost) card can be replaced; an expiring hold returns to the new card") {
  World w;
  Outcome hold = w.ok(shop("m1"), Authorize{w.c1, 2'500, "", 60});
  w.ok(admin(), BlockCard{w.c1});
  Outcome r = w.ok(admin(), ReplaceCard{w.c1});
  const CardId fresh = card_id(r.new_card);
  CHECK(w.card(fresh).status == CardStatus::active);
  CHECK(w.card(fresh).available_cents == 7'500);
  w.clock.set(hold.expires_at_ms);
  w.settle();
  CHECK(w.hold(hold.id).status == HoldStatus::expired);
  CHECK(w.card(fresh).available_cents == 10'000);
  CHECK(w.card(w.c1).held_cents == 0);
  CHECK(w.card(w.c1).available_cents == 0);
  w.audit_clean();
}

TEST_CASE("replace keeps the day's spending against the daily limit") {
  World w(0, /*daily_limit_cents=*/5'000);
  w.ok(shop("m1"), Redeem{w.c1, 3'000, ""});
  Outcome r = w.ok(admin(), ReplaceCard{w.c1});
  const CardId fresh = card_id(r.new_card);
  w.declined(shop("m1"), Redeem{fresh, 2'001, ""}, Code::limit_exceeded);
  w.ok(shop("m1"), Redeem{fresh, 2'000, ""});
  w.audit_clean();
}

TEST_CASE("replace of an empty card writes no ledger entry") {
  World w;
  w.ok(shop("m1"), Redeem{w.c1, 10'000, ""});
  const std::uint64_t seq = w.head().seq;
  Outcome r = w.ok(admin(), ReplaceCard{w.c1});
  CHECK(r.amount_cents == 0);
  CHECK(r.ledger_seq == 0);
  CHECK(w.head().seq == seq);
}

// ===========================================================================
// Close
// ===========================================================================

TEST_CASE("close: after valid_until, holds released, balances expired, cards expired") {
  World w;
  const CardId c2 = w.issue("p1", "ben-2", 4'000);
  const CardId c3 = w.issue("p1", "ben-3", 3'000);
  w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  w.clock.set(kMar31 * kDay + 12 * kHour);
  // A hold on c3, which is then replaced: the hold stays on the old card.
  Outcome old_hold = w.ok(shop("m2"), Authorize{c3, 1'000, "", limits::hold_expires_in_s_max});
  Outcome replaced = w.ok(admin(), ReplaceCard{c3});
  const CardId c3_new = card_id(replaced.new_card);
  CHECK(w.card(c3_new).available_cents == 2'000);
  Outcome hold = w.ok(shop("m1"), Authorize{c2, 2'500, "", limits::hold_expires_in_s_max});
  Outcome spent = w.ok(shop("m2"), Redeem{c2, 500, ""});
  w.clock.set(kApr1);
  w.settle();  // nothing lapses yet: the holds run until 7 April
  CHECK(w.hold(hold.id).status == HoldStatus::pending);
  CHECK(w.programme("p1").held_cents == 3'500);

  const std::uint64_t seq = w.head().seq;
  Outcome o = w.ok(admin(), CloseProgramme{"p1"});
  CHECK(o.id == "p1");
  CHECK(o.status == "closed");
  CHECK(o.amount_cents == 9'000 + 4'000 - 500 + 3'000);
  CHECK(o.ledger_seq == w.head().seq);
  // One release per pending hold, one expire entry per card with money.
  CHECK(w.head().seq == seq + 5);
  CHECK(w.entry(seq + 1).kind == EntryKind::release);
  CHECK(w.entry(seq + 2).kind == EntryKind::release);
  for (std::uint64_t s = seq + 3; s <= seq + 5; ++s) {
    Entry e = w.entry(s);
    CHECK(e.kind == EntryKind::expire);
    CHECK(e.to == Account{AccountKind::expired, "p1"});
  }

  Programme p = w.programme("p1");
  CHECK(p.status == ProgrammeStatus::closed);
  CHECK(p.held_cents == 0);
  CHECK(p.expired_cents == o.amount_cents);
  CHECK(p.issued_cents == 17'000);
  CHECK(p.redeemed_cents == 1'500);
  // Conservation: issued = card balances + held + redeemed - refunded + expired.
  CHECK(p.issued_cents == p.redeemed_cents - p.refunded_cents + p.expired_cents + p.held_cents);

  for (const CardId& id : {w.c1, c2, c3_new}) {
    Card c = w.card(id);
    CHECK(c.status == CardStatus::expired);
    CHECK(c.available_cents == 0);
    CHECK(c.held_cents == 0);
  }
  CHECK(w.card(c3).status == CardStatus::revoked);  // a replaced card stays revoked
  CHECK(w.card(c3).held_cents == 0);
  CHECK(w.card(c3).available_cents == 0);
  CHECK(w.hold(hold.id).status == HoldStatus::expired);
  CHECK(w.hold(old_hold.id).status == HoldStatus::expired);
  w.audit_clean();

  // Nothing can be spent, loaded, issued, refunded or captured any more.
  w.declined(shop("m1"), Redeem{w.c1, 1, ""}, Code::programme_closed);
  w.declined(shop("m1"), Authorize{w.c1, 1, "", 0}, Code::programme_closed);
  w.declined(admin(), LoadCard{w.c1, 1}, Code::programme_closed);
  w.declined(admin(), IssueCard{"p1", "ben-9", 1}, Code::programme_closed);
  w.declined(admin(), ReplaceCard{w.c1}, Code::programme_closed);
  w.declined(shop("m2"), RefundRedemption{spent.id, 1}, Code::programme_closed);
  w.declined(shop("m1"), Capture{hold.id, 1}, Code::hold_expired);
  w.declined(shop("m1"), Void{hold.id}, Code::hold_expired);
  w.declined(admin(), CloseProgramme{"p1"}, Code::programme_closed);
}

TEST_CASE("close of a programme with no cards") {
  Fixture fx;
  fx.ok(admin(), programme_cmd("empty", 5'000, kFeb1, kFeb28));
  const std::uint64_t seq = fx.head().seq;
  Outcome o = fx.ok(admin(), CloseProgramme{"empty"});
  CHECK(o.amount_cents == 0);
  CHECK(o.status == "closed");
  CHECK(o.ledger_seq == 0);
  CHECK(fx.head().seq == seq);
  Programme p = fx.programme("empty");
  CHECK(p.status == ProgrammeStatus::closed);
  CHECK(p.expired_cents == 0);
  CHECK(p.card_count == 0);
  // What the budget did not put on cards stays in the pool; it is not "expired".
  CHECK(p.issued_cents == 0);
  fx.audit_clean();
}

TEST_CASE("close leaves other programmes' holds alone") {
  World w;
  w.ok(admin(), programme_cmd("old", 5'000, kFeb1, kFeb28));
  Outcome h = w.ok(shop("m1"), Authorize{w.c1, 1'000, "", 0});
  w.ok(admin(), CloseProgramme{"old"});
  CHECK(w.hold(h.id).status == HoldStatus::pending);
  CHECK(w.card(w.c1).held_cents == 1'000);
  CHECK(w.programme("p1").held_cents == 1'000);
  w.audit_clean();
}

// BUG (engine/apply.cpp, Machine::run(const CloseProgramme&)): the outcome's
// ledger_seq is taken as `b_.entries_appended() > 0 ? b_.head().seq : 0`,
// but entries_appended() counts the entries of the whole Batch, not of this
// command. A close that writes no entry, in a batch where something earlier
// (another command, or the writer's hold sweep) wrote one, reports that other
// entry's seq instead of 0 ("last ledger entry this command wrote; 0: none").
TEST_CASE("close that writes no entry reports ledger_seq 0 even in a busy batch") {
  SUBCASE("through apply on one Batch") {
    Fixture fx;
    fx.ok(admin(), programme_cmd("empty", 5'000, kFeb1, kFeb28));
    Batch batch(fx.store, fx.engine->head());
    SeededRandom random(11);
    auto created = apply(batch, Request{admin(), "", programme_cmd("p2")}, kT0, random);
    REQUIRE(created.ok());
    REQUIRE(created->outcome.ok());
    CHECK(created->outcome.ledger_seq == fx.head().seq + 1);
    auto closed = apply(batch, Request{admin(), "", CloseProgramme{"empty"}}, kT0, random);
    REQUIRE(closed.ok());
    REQUIRE(closed->outcome.ok());
    CHECK(closed->outcome.amount_cents == 0);
    CHECK(closed->outcome.ledger_seq == 0);  // fails: reports p2's fund entry
  }
  SUBCASE("through the engine, when the batch's sweep released a hold") {
    World w;
    w.ok(admin(), programme_cmd("empty", 5'000, kFeb1, kFeb28));
    Outcome h = w.ok(shop("m1"), Authorize{w.c1, 1'000, "", 60});
    w.clock.set(h.expires_at_ms);
    const std::uint64_t seq = w.head().seq;
    Outcome o = w.ok(admin(), CloseProgramme{"empty"});
    CHECK(w.head().seq == seq + 1);  // the sweep's release entry
    CHECK(o.ledger_seq == 0);        // fails: reports the sweep's entry
  }
}

// ===========================================================================
// Fail-stop, reopening, batching
// ===========================================================================

TEST_CASE("fail-stop: a failed write fails the batch and every later request") {
  World w;
  w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  const Dump before = dump(w.store);
  const ChainHead head = w.head();

  w.store.fail_writes_after(0);
  auto r = w.engine->execute(Request{shop("m1"), "retry-1", Redeem{w.c1, 500, ""}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::unavailable);
  CHECK(w.engine->failed());

  // Everything later is refused, even a request that would write nothing.
  auto decline = w.engine->execute(Request{admin(), "", CloseProgramme{"nope"}});
  REQUIRE_FALSE(decline.ok());
  CHECK(decline.status().code() == StatusCode::unavailable);
  auto later = w.engine->execute(Request{shop("m2"), "", Redeem{w.c1, 100, ""}});
  REQUIRE_FALSE(later.ok());
  CHECK(later.status().code() == StatusCode::unavailable);
  StatusCode via_callback = StatusCode::ok;
  w.engine->submit(Request{admin(), "", LoadCard{w.c1, 1}},
                   [&](StatusOr<Result> result) { via_callback = result.status().code(); });
  CHECK(via_callback == StatusCode::unavailable);  // refused at once, before queueing
  CHECK(w.engine->head().seq == head.seq);
  CHECK(diff(before, dump(w.store)).empty());

  // A fresh engine over the same store sees the last acknowledged state.
  w.store.fail_writes_after(1'000'000);  // the disk is back
  w.open();
  CHECK_FALSE(w.engine->failed());
  CHECK(w.engine->head().seq == head.seq);
  CHECK(w.engine->head().hash == head.hash);
  CHECK(w.card(w.c1).available_cents == 9'000);
  CHECK(w.programme("p1").redeemed_cents == 1'000);
  // The failed request was never acknowledged: its key is free.
  Result retry = w.exec(shop("m1"), Redeem{w.c1, 500, ""}, "retry-1");
  CHECK(retry.outcome.ok());
  CHECK_FALSE(retry.replayed);
  CHECK(retry.outcome.balance_cents == 8'500);
  CHECK(retry.outcome.ledger_seq == head.seq + 1);
  w.audit_clean();
}

TEST_CASE("fail-stop: an undecodable record fails the batch and stops the writer") {
  World w;
  const CardId c2 = w.issue("p1", "ben-2", 1'000);
  WriteSet set;
  set.put(Space::state, keys::card(c2), "\x01garbage");
  REQUIRE(w.store.write(set).ok());
  const Dump before = dump(w.store);
  auto r = w.engine->execute(Request{shop("m1"), "", Redeem{c2, 100, ""}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::unavailable);
  CHECK(r.status().message().find("corruption") != std::string::npos);
  CHECK(w.engine->failed());
  auto later = w.engine->execute(Request{shop("m1"), "", Redeem{w.c1, 100, ""}});
  REQUIRE_FALSE(later.ok());
  CHECK(later.status().code() == StatusCode::unavailable);
  CHECK(diff(before, dump(w.store)).empty());
}

TEST_CASE("a stopped engine refuses requests") {
  World w;
  w.engine->stop();
  auto r = w.engine->execute(Request{shop("m1"), "", Redeem{w.c1, 100, ""}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::unavailable);
  CHECK(w.card(w.c1).available_cents == 10'000);
}

TEST_CASE("Engine::open refuses a store whose chain head does not match the ledger") {
  World w;
  w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  const ChainHead head = w.head();
  w.engine.reset();
  {
    auto reopened = Engine::open(w.store, w.signing_key, w.clock, w.random);
    CHECK(reopened.ok());  // untouched: fine
  }
  const std::string last = *w.store.get(Space::ledger, keys::ledger(head.seq)).value();
  WriteSet damage;
  SUBCASE("the last entry deleted") {
    damage.erase(Space::ledger, keys::ledger(head.seq));
  }
  SUBCASE("an entry past the head") {
    damage.put(Space::ledger, keys::ledger(head.seq + 1), last);
  }
  SUBCASE("the head names another hash") {
    ChainHead other = head;
    other.hash[0] ^= 0x01;
    damage.put(Space::meta, std::string(keys::head), encode(other));
  }
  SUBCASE("the head is behind the ledger") {
    ChainHead behind{head.seq - 1, w.entry(head.seq - 1).hash};
    damage.put(Space::meta, std::string(keys::head), encode(behind));
  }
  SUBCASE("the head does not decode") {
    damage.put(Space::meta, std::string(keys::head), "x");
  }
  SUBCASE("the last entry does not decode") {
    damage.put(Space::ledger, keys::ledger(head.seq), last.substr(0, last.size() - 1));
  }
  REQUIRE(w.store.write(damage).ok());
  auto opened = Engine::open(w.store, w.signing_key, w.clock, w.random);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == StatusCode::corruption);
}

// Answers collected from engine callbacks (they run on the commit thread).
struct Answers {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, StatusOr<Result>> by_name;

  Engine::Callback callback(std::string name) {
    // Notified under the lock: once wait_for() can see the answer, the
    // waiter may return and destroy this object, condition variable too.
    return [this, name](StatusOr<Result> r) {
      std::lock_guard lock(mutex);
      by_name.insert_or_assign(name, std::move(r));
      changed.notify_all();
    };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return by_name.size();
  }
  // Waits (at most 10 s) until `n` answers are in.
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return by_name.size() >= n; });
  }
  StatusOr<Result> get(const std::string& name) {
    std::lock_guard lock(mutex);
    return by_name.at(name);
  }
};

// Waits (at most 10 s) until the engine's commit thread is inside a held write.
bool wait_for_held_write(const MemoryStore& store) {
  for (int i = 0; i < 1000 && store.writes_held() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return store.writes_held() > 0;
}

// Holds the store's writes, submits redemption "a" of card c1 and waits
// until its write is held, then submits "b" and "c" (at shops m1 and m2) and
// gives the writer 100 ms to apply them on top of "a".
void submit_around_held_write(World& w, Answers& answers, std::array<Cents, 3> amounts_cents) {
  w.store.hold_writes();
  w.engine->submit(Request{shop("m1"), "a", Redeem{w.c1, amounts_cents[0], ""}},
                   answers.callback("a"));
  REQUIRE(wait_for_held_write(w.store));
  w.engine->submit(Request{shop("m1"), "b", Redeem{w.c1, amounts_cents[1], ""}},
                   answers.callback("b"));
  w.engine->submit(Request{shop("m2"), "c", Redeem{w.c1, amounts_cents[2], ""}},
                   answers.callback("c"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST_CASE("pipelining: a batch applied while the one below is written sees it, answers after it") {
  World w;  // c1 holds 10,000
  Answers answers;
  // "b" and "c" are applied on top of "a" while its write waits: "b" must see
  // a's debit (the Store alone still says 10,000, and would let it overdraw)...
  submit_around_held_write(w, answers, {6'000, 6'000, 1'000});
  // ...and nothing, a decline neither, is answered before "a" is durable.
  CHECK(answers.count() == 0);
  w.store.release_writes();
  REQUIRE(answers.wait_for(3));
  StatusOr<Result> a = answers.get("a"), b = answers.get("b"), c = answers.get("c");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a->outcome.ok());
  CHECK(a->outcome.balance_cents == 4'000);
  CHECK(b->outcome.code == Code::insufficient_funds);
  CHECK(b->outcome.balance_cents == 4'000);
  CHECK(c->outcome.ok());
  CHECK(c->outcome.balance_cents == 3'000);
  CHECK(c->outcome.ledger_seq == a->outcome.ledger_seq + 1);  // the chain runs on through "a"
  CHECK(w.card(w.c1).available_cents == 3'000);
  // A retry of "b" replays its decline; the store has one redemption each for a and c.
  Result replay = w.exec(shop("m1"), Redeem{w.c1, 6'000, ""}, "b");
  CHECK(replay.replayed);
  CHECK(replay.outcome.code == Code::insufficient_funds);
  w.audit_clean();
}

TEST_CASE("pipelining: when the write below fails, the batch applied on top of it fails too") {
  World w;
  const Dump before = dump(w.store);
  const ChainHead head = w.head();
  Answers answers;
  submit_around_held_write(w, answers, {1'000, 2'000, 99'999});
  w.store.fail_writes_after(0);
  w.store.release_writes();
  REQUIRE(answers.wait_for(3));
  for (const char* name : {"a", "b", "c"}) {
    CAPTURE(name);
    StatusOr<Result> r = answers.get(name);
    REQUIRE_FALSE(r.ok());  // the decline "c" too: it was made on top of "a"
    CHECK(r.status().code() == StatusCode::unavailable);
  }
  CHECK(w.engine->failed());
  CHECK(w.engine->head().seq == head.seq);
  CHECK(diff(before, dump(w.store)).empty());
}

TEST_CASE("batching: 200 concurrent redemptions never overdraw and are replayed exactly") {
  World w;
  const EngineStats stats_before = w.engine->stats();
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  constexpr int total = threads * per_thread;
  auto amount_of = [](int i) -> Cents { return 100 + (i % 5) * 50; };  // 100..300

  struct Answer {
    int index;
    StatusOr<Result> result;
  };
  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<Answer> answers;

  auto submit_all = [&] {
    answers.clear();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int j = 0; j < per_thread; ++j) {
          const int i = t * per_thread + j;
          const std::string merchant = (i % 2 == 0) ? "m1" : "m2";
          w.engine->submit(
              Request{shop(merchant), "r-" + std::to_string(i), Redeem{w.c1, amount_of(i), ""}},
              [&, i](StatusOr<Result> r) {
                std::lock_guard lock(mutex);
                answers.push_back({i, std::move(r)});
                if (answers.size() == static_cast<std::size_t>(total)) {
                  all_done.notify_all();
                }
              });
        }
      });
    }
    for (auto& worker : workers) worker.join();
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return answers.size() == static_cast<std::size_t>(total); });
  };

  submit_all();
  std::map<int, std::string> first;  // index -> encoded outcome
  Cents approved = 0;
  int approved_count = 0;
  std::set<std::uint64_t> seqs;
  bool all_known = true;
  for (auto& answer : answers) {
    const int i = answer.index;  // not a structured binding: clang 14 cannot capture those
    auto& r = answer.result;
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    const Outcome& o = r->outcome;
    CHECK_FALSE(r->replayed);
    if (o.ok()) {
      approved += o.amount_cents;
      ++approved_count;
      CHECK(o.amount_cents == amount_of(i));
      CHECK(o.balance_cents >= 0);
      seqs.insert(o.ledger_seq);
    } else if (o.code == Code::insufficient_funds) {
      CHECK(o.balance_cents < amount_of(i));
      CHECK(o.balance_cents >= 0);
    } else {
      all_known = false;
    }
    first[i] = encode(o);
  }
  CHECK(all_known);
  CHECK(approved_count > 0);
  CHECK(approved_count < total);  // 200 asks of 100..300 from 10,000: some must fail
  CHECK(seqs.size() == static_cast<std::size_t>(approved_count));  // one entry each
  const Card after = w.card(w.c1);
  CHECK(after.available_cents >= 0);
  CHECK(10'000 - after.available_cents == approved);
  CHECK(w.programme("p1").redeemed_cents == approved);
  CHECK(w.head().seq == *seqs.rbegin());

  const EngineStats mid = w.engine->stats();
  CHECK(mid.commands - stats_before.commands == static_cast<std::uint64_t>(total));
  CHECK(mid.batches - stats_before.batches <= static_cast<std::uint64_t>(total));
  CHECK(mid.largest_batch >= 1);
  MESSAGE("200 redemptions took " << (mid.batches - stats_before.batches)
                                  << " batches; largest batch " << mid.largest_batch);

  // The same 200 again, with their keys: every one replays its first answer.
  const Dump before_replay = dump(w.store);
  submit_all();
  for (auto& [i, r] : answers) {
    REQUIRE(r.ok());
    CHECK(r->replayed);
    CHECK(encode(r->outcome) == first[i]);
  }
  CHECK(diff(before_replay, dump(w.store)).empty());
  CHECK(w.engine->stats().commands - stats_before.commands ==
        2 * static_cast<std::uint64_t>(total));
  w.audit_clean();
}

// ===========================================================================
// Codecs
// ===========================================================================

// Every strict prefix, one trailing byte, and another version byte must be
// refused as corruption.
template <typename T>
void check_refuses_damage(const std::string& bytes) {
  REQUIRE(!bytes.empty());
  std::size_t accepted_prefixes = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    T v{};
    Status s = decode(std::string_view(bytes).substr(0, n), v);
    if (s.code() != StatusCode::corruption) ++accepted_prefixes;
  }
  CHECK(accepted_prefixes == 0);
  T v{};
  CHECK(decode(bytes + std::string(1, '\0'), v).code() == StatusCode::corruption);
  std::string other_version = bytes;
  other_version[0] = 2;
  CHECK(decode(other_version, v).code() == StatusCode::corruption);
  CHECK(decode(bytes, v).ok());
}

CardId sample_card_id(std::uint8_t seed) {
  CardId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    id.bytes[i] = static_cast<std::uint8_t>(seed + 17 * i);
  }
  return id;
}

Hash32 sample_hash(std::uint8_t seed) {
  Hash32 h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(seed ^ (31 * i));
  return h;
}

TEST_CASE("codec: programme round trip") {
  Programme v;
  v.id = "p1";
  v.name = "Buoni spesa — Venezia";
  v.budget_cents = 123'456'789;
  v.valid_from_day = kMar1;
  v.valid_until_day = kMar31;
  v.require_pin = true;
  v.max_redemption_cents = 2'500;
  v.daily_limit_cents = 6'000;
  v.status = ProgrammeStatus::closed;
  v.created_at_ms = kT0;
  v.issued_cents = 1'000;
  v.redeemed_cents = 700;
  v.refunded_cents = 50;
  v.expired_cents = 300;
  v.held_cents = 40;
  v.card_count = 12;
  const std::string bytes = encode(v);
  CHECK(static_cast<std::uint8_t>(bytes[0]) == format_v1);
  Programme d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.id == v.id);
  CHECK(d.name == v.name);
  CHECK(d.budget_cents == v.budget_cents);
  CHECK(d.valid_from_day == v.valid_from_day);
  CHECK(d.valid_until_day == v.valid_until_day);
  CHECK(d.require_pin == v.require_pin);
  CHECK(d.max_redemption_cents == v.max_redemption_cents);
  CHECK(d.daily_limit_cents == v.daily_limit_cents);
  CHECK(d.status == v.status);
  CHECK(d.created_at_ms == v.created_at_ms);
  CHECK(d.issued_cents == v.issued_cents);
  CHECK(d.redeemed_cents == v.redeemed_cents);
  CHECK(d.refunded_cents == v.refunded_cents);
  CHECK(d.expired_cents == v.expired_cents);
  CHECK(d.held_cents == v.held_cents);
  CHECK(d.card_count == v.card_count);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Programme>(bytes);
}

TEST_CASE("codec: merchant round trip") {
  Merchant v;
  v.id = "m1";
  v.name = "Alimentari Rossi";
  v.vat_number = "01234567897";
  v.programmes = {"p1", "p2", "p3"};
  v.api_key_hash = sample_hash(5);
  v.created_at_ms = kT0 + 1;
  const std::string bytes = encode(v);
  Merchant d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.id == v.id);
  CHECK(d.name == v.name);
  CHECK(d.vat_number == v.vat_number);
  CHECK(d.programmes == v.programmes);
  CHECK(d.api_key_hash == v.api_key_hash);
  CHECK(d.created_at_ms == v.created_at_ms);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Merchant>(bytes);
  Merchant none = v;
  none.programmes.clear();
  REQUIRE(decode(encode(none), d).ok());
  CHECK(d.programmes.empty());
}

TEST_CASE("codec: card round trip") {
  Card v;
  v.id = sample_card_id(1);
  v.programme = "p1";
  v.beneficiary_ref = "CF:RSSMRA80A01L736X";
  v.status = CardStatus::revoked;
  v.available_cents = 1'234;
  v.held_cents = 567;
  v.issued_cents = 5'000;
  v.issued_at_ms = kT0;
  v.spent_day = kMar2;
  v.spent_today_cents = 890;
  v.replaced_by = sample_card_id(99);
  v.has_replacement = true;
  v.pin_failures = 3;
  const std::string bytes = encode(v);
  Card d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.id == v.id);
  CHECK(d.programme == v.programme);
  CHECK(d.beneficiary_ref == v.beneficiary_ref);
  CHECK(d.status == v.status);
  CHECK(d.available_cents == v.available_cents);
  CHECK(d.held_cents == v.held_cents);
  CHECK(d.issued_cents == v.issued_cents);
  CHECK(d.issued_at_ms == v.issued_at_ms);
  CHECK(d.spent_day == v.spent_day);
  CHECK(d.spent_today_cents == v.spent_today_cents);
  CHECK(d.replaced_by == v.replaced_by);
  CHECK(d.has_replacement == v.has_replacement);
  CHECK(d.pin_failures == v.pin_failures);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Card>(bytes);

  // An unknown status byte is corruption too (status follows id, 2 strings).
  std::string bad = bytes;
  const std::size_t status_at = 1 + 10 + 4 + v.programme.size() + 4 + v.beneficiary_ref.size();
  REQUIRE(static_cast<std::uint8_t>(bad[status_at]) ==
          static_cast<std::uint8_t>(CardStatus::revoked));
  bad[status_at] = 9;
  CHECK(decode(bad, d).code() == StatusCode::corruption);
}

TEST_CASE("codec: hold round trip") {
  Hold v;
  v.id = "au_X";
  v.card = sample_card_id(3);
  v.merchant = "m1";
  v.programme = "p1";
  v.reference = "delivery 7";
  v.amount_cents = 3'000;
  v.status = HoldStatus::captured;
  v.created_at_ms = kT0;
  v.expires_at_ms = kT0 + kDay;
  v.captured_cents = 2'000;
  v.redemption_id = "rd_Y";
  const std::string bytes = encode(v);
  Hold d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.id == v.id);
  CHECK(d.card == v.card);
  CHECK(d.merchant == v.merchant);
  CHECK(d.programme == v.programme);
  CHECK(d.reference == v.reference);
  CHECK(d.amount_cents == v.amount_cents);
  CHECK(d.status == v.status);
  CHECK(d.created_at_ms == v.created_at_ms);
  CHECK(d.expires_at_ms == v.expires_at_ms);
  CHECK(d.captured_cents == v.captured_cents);
  CHECK(d.redemption_id == v.redemption_id);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Hold>(bytes);
}

TEST_CASE("codec: redemption and refund round trip") {
  Redemption v;
  v.id = "rd_1";
  v.card = sample_card_id(4);
  v.merchant = "m2";
  v.programme = "p1";
  v.reference = "scontrino 42";
  v.hold_id = "au_9";
  v.amount_cents = 1'999;
  v.refunded_cents = 500;
  v.created_at_ms = kT0 + 5;
  v.ledger_seq = 77;
  const std::string bytes = encode(v);
  Redemption d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.id == v.id);
  CHECK(d.card == v.card);
  CHECK(d.merchant == v.merchant);
  CHECK(d.programme == v.programme);
  CHECK(d.reference == v.reference);
  CHECK(d.hold_id == v.hold_id);
  CHECK(d.amount_cents == v.amount_cents);
  CHECK(d.refunded_cents == v.refunded_cents);
  CHECK(d.created_at_ms == v.created_at_ms);
  CHECK(d.ledger_seq == v.ledger_seq);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Redemption>(bytes);

  Refund f;
  f.id = "rf_1";
  f.redemption_id = "rd_1";
  f.merchant = "m2";
  f.amount_cents = 250;
  f.created_at_ms = kT0 + 9;
  f.ledger_seq = 78;
  const std::string fbytes = encode(f);
  Refund fd;
  REQUIRE(decode(fbytes, fd).ok());
  CHECK(fd.id == f.id);
  CHECK(fd.redemption_id == f.redemption_id);
  CHECK(fd.merchant == f.merchant);
  CHECK(fd.amount_cents == f.amount_cents);
  CHECK(fd.created_at_ms == f.created_at_ms);
  CHECK(fd.ledger_seq == f.ledger_seq);
  CHECK(encode(fd) == fbytes);
  check_refuses_damage<Refund>(fbytes);
}

TEST_CASE("codec: ledger entry round trip, and what its hash covers") {
  Entry v;
  v.seq = 42;
  v.time_ms = kT0;
  v.kind = EntryKind::capture;
  v.programme = "p1";
  v.from = {AccountKind::held, "0123456789ABCDEF"};
  v.to = {AccountKind::payable, "m1:p1"};
  v.amount_cents = 1'500;
  v.card = "0123456789ABCDEF";
  v.merchant = "m1";
  v.ref = "rd_1";
  v.hash = chain_hash(sample_hash(1), v);
  const std::string bytes = encode(v);
  Entry d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.seq == v.seq);
  CHECK(d.time_ms == v.time_ms);
  CHECK(d.kind == v.kind);
  CHECK(d.programme == v.programme);
  CHECK(d.from == v.from);
  CHECK(d.to == v.to);
  CHECK(d.amount_cents == v.amount_cents);
  CHECK(d.card == v.card);
  CHECK(d.merchant == v.merchant);
  CHECK(d.ref == v.ref);
  CHECK(d.hash == v.hash);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Entry>(bytes);

  // The hash covers the previous hash and every field of the body, not itself.
  Entry copy = v;
  copy.hash = sample_hash(200);
  CHECK(chain_hash(sample_hash(1), copy) == v.hash);
  CHECK(chain_hash(sample_hash(2), v) != v.hash);
  copy = v;
  copy.amount_cents += 1;
  CHECK(chain_hash(sample_hash(1), copy) != v.hash);
  copy = v;
  copy.seq += 1;
  CHECK(chain_hash(sample_hash(1), copy) != v.hash);
  copy = v;
  copy.to.owner = "m2:p1";
  CHECK(chain_hash(sample_hash(1), copy) != v.hash);
  copy = v;
  copy.ref = "rd_2";
  CHECK(chain_hash(sample_hash(1), copy) != v.hash);
}

TEST_CASE("codec: checkpoint and chain head round trip; signatures verify") {
  const SigningKey key = SigningKey::generate(7);
  const Checkpoint v = sign_checkpoint(key, ChainHead{9, sample_hash(8)}, kT0);
  CHECK(v.key_id == 7);
  const std::string bytes = encode(v);
  Checkpoint d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.seq == 9);
  CHECK(d.hash == sample_hash(8));
  CHECK(d.time_ms == kT0);
  CHECK(d.key_id == 7);
  CHECK(d.signature == v.signature);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Checkpoint>(bytes);

  const std::vector<VerifyKey> keys{{7, key.public_key}};
  CHECK(verify_checkpoint(d, keys));
  Checkpoint forged = d;
  forged.signature[10] ^= 0x40;
  CHECK_FALSE(verify_checkpoint(forged, keys));
  forged = d;
  forged.seq = 10;
  CHECK_FALSE(verify_checkpoint(forged, keys));
  forged = d;
  forged.hash[0] ^= 1;
  CHECK_FALSE(verify_checkpoint(forged, keys));
  CHECK_FALSE(verify_checkpoint(d, {{8, key.public_key}}));                      // unknown key id
  CHECK_FALSE(verify_checkpoint(d, {{7, SigningKey::generate(7).public_key}}));  // wrong key

  const ChainHead head{123, sample_hash(44)};
  const std::string hbytes = encode(head);
  ChainHead hd;
  REQUIRE(decode(hbytes, hd).ok());
  CHECK(hd.seq == head.seq);
  CHECK(hd.hash == head.hash);
  check_refuses_damage<ChainHead>(hbytes);
}

TEST_CASE("codec: outcome round trip") {
  Outcome v;
  v.code = Code::insufficient_funds;
  v.id = "rd_1";
  v.card = "0123456789ABCDEF";
  v.amount_cents = 100;
  v.balance_cents = 50;
  v.held_cents = 25;
  v.time_ms = kT0;
  v.expires_at_ms = kT0 + kDay;
  v.ledger_seq = 99;
  v.status = "pending";
  v.new_card = "FEDCBA9876543210";
  const std::string bytes = encode(v);
  Outcome d;
  REQUIRE(decode(bytes, d).ok());
  CHECK(d.code == v.code);
  CHECK(d.id == v.id);
  CHECK(d.card == v.card);
  CHECK(d.amount_cents == v.amount_cents);
  CHECK(d.balance_cents == v.balance_cents);
  CHECK(d.held_cents == v.held_cents);
  CHECK(d.time_ms == v.time_ms);
  CHECK(d.expires_at_ms == v.expires_at_ms);
  CHECK(d.ledger_seq == v.ledger_seq);
  CHECK(d.status == v.status);
  CHECK(d.new_card == v.new_card);
  CHECK(encode(d) == bytes);
  check_refuses_damage<Outcome>(bytes);

  // Every code survives; a code past the last is corruption.
  for (int i = 0; i < code_count; ++i) {
    Outcome c;
    c.code = static_cast<Code>(i);
    Outcome cd;
    REQUIRE(decode(encode(c), cd).ok());
    CHECK(cd.code == c.code);
  }
  std::string bad = bytes;
  bad[1] = static_cast<char>(code_count);
  CHECK(decode(bad, d).code() == StatusCode::corruption);
}

TEST_CASE("codec: command fingerprints tell requests apart") {
  const CardId a = sample_card_id(1);
  const CardId b = sample_card_id(2);
  CHECK(fingerprint(Redeem{a, 100, "x"}) == fingerprint(Redeem{a, 100, "x"}));
  CHECK(fingerprint(Redeem{a, 100, "x"}) != fingerprint(Redeem{a, 101, "x"}));
  CHECK(fingerprint(Redeem{a, 100, "x"}) != fingerprint(Redeem{b, 100, "x"}));
  CHECK(fingerprint(Redeem{a, 100, "x"}) != fingerprint(Redeem{a, 100, "y"}));
  CHECK(fingerprint(Redeem{a, 100, ""}) != fingerprint(Authorize{a, 100, "", 0}));
  CHECK(fingerprint(BlockCard{a}) != fingerprint(UnblockCard{a}));
  CHECK(fingerprint(Capture{"au_1", 5}) != fingerprint(Capture{"au_1", 6}));
  CHECK(command_name(Command{RefundRedemption{}}) == "refund");
  CHECK(command_name(Command{CreateProgramme{}}) == "programme_create");
}

TEST_CASE("codec: keys sort numerically and invert") {
  CHECK(keys::seq_of(keys::ledger(0)) == 0);
  CHECK(keys::seq_of(keys::ledger(258)) == 258);
  CHECK(keys::seq_of(keys::ledger(UINT64_MAX)) == UINT64_MAX);
  CHECK(keys::ledger(255) < keys::ledger(256));
  CHECK(keys::ledger(1) < keys::ledger(1'000'000));
  CHECK(keys::hold_expiry(1'000, "au_Z") < keys::hold_expiry(2'000, "au_A"));
  CHECK(keys::checkpoint(9) < keys::checkpoint(10));
  CHECK(keys::beneficiary("p1", "x").starts_with(keys::beneficiary_prefix("p1")));
  CHECK_FALSE(keys::beneficiary("p10", "x").starts_with(keys::beneficiary_prefix("p1")));
  CHECK(keys::idempotency("m:m1", "k") != keys::idempotency("m:m1k", ""));
}

// ===========================================================================
// Calendar and validation
// ===========================================================================

TEST_CASE("calendar: parse_day, format_day, format_time") {
  CHECK(parse_day("1970-01-01") == std::nullopt);  // before 2000
  CHECK(parse_day("2000-01-01") == Day{10957});
  CHECK(parse_day("2026-03-01") == kMar1);
  CHECK(parse_day("2026-03-31") == kMar31);
  CHECK(parse_day("2026-02-28") == kFeb28);
  CHECK(parse_day("2024-02-29") == Day{19782});  // leap year
  CHECK(parse_day("2000-02-29").has_value());    // divisible by 400: leap
  CHECK(parse_day("2023-02-29") == std::nullopt);
  CHECK(parse_day("2100-02-29") == std::nullopt);  // divisible by 100: not leap
  CHECK(parse_day("2026-02-30") == std::nullopt);
  CHECK(parse_day("2026-04-31") == std::nullopt);
  CHECK(parse_day("2026-13-01") == std::nullopt);
  CHECK(parse_day("2026-00-10") == std::nullopt);
  CHECK(parse_day("2026-01-00") == std::nullopt);
  CHECK(parse_day("1999-12-31") == std::nullopt);
  CHECK(parse_day("3000-01-01") == std::nullopt);
  CHECK(parse_day("2999-12-31").has_value());
  CHECK(parse_day("2026-3-01") == std::nullopt);
  CHECK(parse_day("2026/03/01") == std::nullopt);
  CHECK(parse_day("2026-03-01T00:00:00Z") == std::nullopt);
  CHECK(parse_day(" 2026-03-01") == std::nullopt);
  CHECK(parse_day("2026-03-0a") == std::nullopt);
  CHECK(parse_day("+026-03-01") == std::nullopt);
  CHECK(parse_day("") == std::nullopt);

  CHECK(format_day(kMar1) == "2026-03-01");
  CHECK(format_day(19782) == "2024-02-29");
  CHECK(format_day(0) == "1970-01-01");
  // Every day of 2000..2030 formats and parses back to itself.
  const Day from = *parse_day("2000-01-01");
  const Day to = *parse_day("2030-12-31");
  int mismatches = 0;
  for (Day d = from; d <= to; ++d) {
    if (parse_day(format_day(d)) != d) ++mismatches;
  }
  CHECK(mismatches == 0);
  CHECK(to - from + 1 == 11'323);

  CHECK(format_time(kT0) == "2026-03-01T10:00:00Z");
  CHECK(format_time(kT0 + 123) == "2026-03-01T10:00:00.123Z");
  CHECK(format_time(kApr1 - 1) == "2026-03-31T23:59:59.999Z");
  CHECK(format_time(0) == "1970-01-01T00:00:00Z");
  CHECK(format_time(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(day_of(kT0) == kMar1);
  CHECK(day_of(kApr1 - 1) == kMar31);
  CHECK(day_of(-1) == -1);
}

TEST_CASE("validate: Italian VAT numbers (Partita IVA)") {
  for (const char* good : {"01234567897", "07654321012", "12345678903", "IT01234567897",
                           "IT07654321012", "IT12345678903", "00000000000"}) {
    CAPTURE(good);
    CHECK(valid_vat_number(good));
  }
  for (const char* bad : {"01234567898", "07654321013", "12345678900",  // wrong check digit
                          "0123456789", "1234567890",                   // 10 digits
                          "012345678970",                               // 12 digits
                          "0123456789A", "A1234567897", "01234S67897",  // letters
                          "IT0123456789", "IT01234567898", "ITIT01234567897", "IT", "",
                          "01234 567897", "-1234567897"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_vat_number(bad));
  }
}

TEST_CASE("validate: ids, names, references, idempotency keys") {
  CHECK(valid_object_id("p1"));
  CHECK(valid_object_id("venezia-2026_q1.a"));
  CHECK(valid_object_id(std::string(limits::id_length_max, 'a')));
  CHECK_FALSE(valid_object_id(std::string(limits::id_length_max + 1, 'a')));
  CHECK_FALSE(valid_object_id(""));
  CHECK_FALSE(valid_object_id("a b"));
  CHECK_FALSE(valid_object_id("a/b"));
  CHECK(valid_name("Alimentari Rossi — Cannaregio"));
  CHECK_FALSE(valid_name(""));
  CHECK_FALSE(valid_name("a\tb"));
  CHECK_FALSE(valid_name(std::string(limits::name_length_max + 1, 'n')));
  CHECK(valid_beneficiary_ref("RSSMRA80A01L736X"));
  CHECK_FALSE(valid_beneficiary_ref(""));
  CHECK_FALSE(valid_beneficiary_ref("caf\xc3\xa9"));
  CHECK(valid_reference(""));
  CHECK(valid_reference(std::string(limits::reference_length_max, 'r')));
  CHECK_FALSE(valid_reference(std::string(limits::reference_length_max + 1, 'r')));
  CHECK(valid_idempotency_key("a"));
  CHECK(valid_idempotency_key(std::string(64, 'k')));
  CHECK_FALSE(valid_idempotency_key(std::string(65, 'k')));
  CHECK_FALSE(valid_idempotency_key(""));
  CHECK_FALSE(valid_idempotency_key("a b"));
  CHECK_FALSE(valid_idempotency_key("a.b"));
}

}  // namespace

// ===========================================================================
// PINs
// ===========================================================================

namespace {
const std::array<std::uint8_t, 32> kPepper{7, 7, 7};
Hash32 pin(std::string_view digits) {
  return hash_pin(kPepper, digits);
}

struct PinWorld : Fixture {
  CardId c;
  PinWorld() {
    CreateProgramme p = programme_cmd("pp", 1'000'000, kMar1, kMar31);
    p.require_pin = true;
    ok(admin(), p);
    ok(admin(), merchant_cmd("m1", {"pp"}));
    c = card_id(ok(admin(), IssueCard{"pp", "ben-1", 10'000, pin("12345")}).card);
  }
  Redeem spend(Cents amount_cents, std::optional<Hash32> pin_hash) {
    return Redeem{c, amount_cents, "", pin_hash};
  }
};
}  // namespace

TEST_CASE("pin: a programme with require_pin needs a PIN hash at issue, and only then") {
  PinWorld w;
  w.declined(admin(), IssueCard{"pp", "ben-2", 1'000}, Code::invalid_field);
  w.ok(admin(), programme_cmd("plain"));
  w.declined(admin(), IssueCard{"plain", "ben-2", 1'000, pin("11111")}, Code::invalid_field);
  Card card = w.card(w.c);
  CHECK(card.has_pin);
  CHECK(card.pin_hash == pin("12345"));
  CHECK(card.pin_failures == 0);
}

TEST_CASE("pin: redemption needs the right PIN; wrong ones count durably and lock at 4") {
  PinWorld w;
  w.declined(shop("m1"), w.spend(1'000, std::nullopt), Code::pin_required);
  for (int i = 1; i <= 3; ++i) {
    CHECK(w.run(shop("m1"), w.spend(1'000, pin("00000"))).code == Code::wrong_pin);
    CHECK(w.card(w.c).pin_failures == i);  // committed with the batch
  }
  // A right PIN clears the count, even when the spend itself is declined.
  CHECK(w.run(shop("m1"), w.spend(20'000, pin("12345"))).code == Code::insufficient_funds);
  CHECK(w.card(w.c).pin_failures == 0);
  for (int i = 1; i <= 3; ++i) {
    CHECK(w.run(shop("m1"), w.spend(1'000, pin("99999"))).code == Code::wrong_pin);
  }
  CHECK(w.run(shop("m1"), w.spend(1'000, pin("99999"))).code == Code::pin_locked);
  CHECK(w.card(w.c).pin_failures == 4);
  // Locked: even the right PIN is refused, and nothing is counted further.
  w.declined(shop("m1"), w.spend(1'000, pin("12345")), Code::pin_locked);
  CHECK(w.card(w.c).available_cents == 10'000);
  // Authorizations are guarded the same way.
  w.declined(shop("m1"), Authorize{w.c, 1'000, "", 60, pin("12345")}, Code::pin_locked);

  Outcome u = w.ok(admin(), UnlockPin{w.c});
  CHECK(u.status == "active");
  CHECK(w.card(w.c).pin_failures == 0);
  Outcome r = w.ok(shop("m1"), w.spend(1'000, pin("12345")));
  CHECK(r.balance_cents == 9'000);
  w.declined(shop("m1"), UnlockPin{w.c}, Code::forbidden);
  w.audit_clean();
}

TEST_CASE("pin: the failure count survives reopening the engine (a kill does not reset it)") {
  PinWorld w;
  CHECK(w.run(shop("m1"), w.spend(1'000, pin("00000"))).code == Code::wrong_pin);
  CHECK(w.run(shop("m1"), w.spend(1'000, pin("00001"))).code == Code::wrong_pin);
  w.open();
  CHECK(w.card(w.c).pin_failures == 2);
  CHECK(w.run(shop("m1"), w.spend(1'000, pin("00002"))).code == Code::wrong_pin);
  CHECK(w.run(shop("m1"), w.spend(1'000, pin("00003"))).code == Code::pin_locked);
}

TEST_CASE("pin: a replacement card gets a new PIN; the old one no longer works") {
  PinWorld w;
  w.declined(admin(), ReplaceCard{w.c}, Code::invalid_field);
  Outcome rep = w.ok(admin(), ReplaceCard{w.c, pin("54321")});
  CardId fresh = card_id(rep.new_card);
  CHECK(w.run(shop("m1"), Redeem{fresh, 1'000, "", pin("12345")}).code == Code::wrong_pin);
  CHECK(w.ok(shop("m1"), Redeem{fresh, 1'000, "", pin("54321")}).balance_cents == 9'000);
  w.declined(admin(), UnlockPin{w.c}, Code::card_revoked);
}

TEST_CASE("pin: make_pin gives 5 digits, hash_pin depends on pepper and digits") {
  SeededRandom random(11);
  std::set<std::string> seen;
  for (int i = 0; i < 2'000; ++i) {
    std::string p = make_pin(random);
    CHECK(valid_pin(p));
    seen.insert(p);
  }
  CHECK(seen.size() > 1'900);  // 2,000 draws from 100,000 values rarely collide much
  CHECK_FALSE(valid_pin("1234"));
  CHECK_FALSE(valid_pin("12a45"));
  CHECK_FALSE(valid_pin("123456"));
  const std::array<std::uint8_t, 32> other{8};
  CHECK(hash_pin(kPepper, "12345") != hash_pin(other, "12345"));
  CHECK(hash_pin(kPepper, "12345") != hash_pin(kPepper, "12346"));
}

// ===========================================================================
// Ledger indexes: a shop's entries, a card's last entries
// ===========================================================================

namespace {

std::vector<std::uint64_t> seqs_of(const std::vector<Entry>& entries) {
  std::vector<std::uint64_t> out;
  for (const Entry& e : entries) out.push_back(e.seq);
  return out;
}

std::vector<EntryKind> kinds_of(const std::vector<Entry>& entries) {
  std::vector<EntryKind> out;
  for (const Entry& e : entries) out.push_back(e.kind);
  return out;
}

EntryPage shop_page(const Store& store, const std::string& merchant, std::uint64_t after,
                    std::size_t limit, TimeMs from_ms = INT64_MIN, TimeMs to_ms = INT64_MAX) {
  auto page = merchant_entries(store, merchant, from_ms, to_ms, after, limit);
  REQUIRE_MESSAGE(page.ok(), page.status().to_string());
  return std::move(page).value();
}

// Every page of a shop's entries with page size `limit`; checks the cursors.
std::vector<std::uint64_t> all_pages(const Store& store, const std::string& merchant,
                                     std::size_t limit, TimeMs from_ms = INT64_MIN,
                                     TimeMs to_ms = INT64_MAX) {
  std::vector<std::uint64_t> seqs;
  std::uint64_t after = 0;
  for (int pages = 0; pages < 1000; ++pages) {
    EntryPage page = shop_page(store, merchant, after, limit, from_ms, to_ms);
    CHECK(page.entries.size() <= limit);
    for (const Entry& e : page.entries) {
      CHECK(e.seq > after);
      CHECK(e.time_ms >= from_ms);
      CHECK(e.time_ms < to_ms);
      seqs.push_back(e.seq);
    }
    if (page.next_after == 0) return seqs;
    // A full page's cursor is its last entry; no page ends short but by the scan budget.
    CHECK(page.entries.size() == limit);
    CHECK(page.next_after == page.entries.back().seq);
    after = page.next_after;
  }
  FAIL("pages never ended");
  return seqs;
}

std::vector<Entry> last_of_card(const Store& store, const CardId& card, std::size_t limit) {
  auto entries = card_entries(store, card, limit);
  REQUIRE_MESSAGE(entries.ok(), entries.status().to_string());
  return std::move(entries).value();
}

}  // namespace

TEST_CASE("ledger index: a shop's entries in seq order, page by page, and only its own") {
  World w;
  w.ok(admin(), merchant_cmd("m10", {"p1"}));  // "m1" is a prefix of "m10"
  const CardId c2 = w.issue("p1", "ben-2", 10'000);
  std::vector<std::uint64_t> m1, m2, m10;
  for (int i = 0; i < 5; ++i) {
    w.clock.advance(kMinute);
    m1.push_back(w.ok(shop("m1"), Redeem{w.c1, 100, ""}).ledger_seq);
    m2.push_back(w.ok(shop("m2"), Redeem{c2, 100, ""}).ledger_seq);
    m10.push_back(w.ok(shop("m10"), Redeem{c2, 50, ""}).ledger_seq);
  }
  Outcome a = w.ok(shop("m1"), Authorize{c2, 500, "", 0});
  m1.push_back(a.ledger_seq);
  m1.push_back(w.ok(shop("m1"), Void{a.id}).ledger_seq);
  Outcome sale = w.ok(shop("m2"), Redeem{w.c1, 300, ""});
  m2.push_back(sale.ledger_seq);
  m2.push_back(w.ok(shop("m2"), RefundRedemption{sale.id, 100}).ledger_seq);
  // Another shop's refund of its own sale is refused and lists nothing.
  w.declined(shop("m1"), RefundRedemption{sale.id, 100}, Code::not_found);
  REQUIRE(m1.size() == 7);

  for (std::size_t limit : {1, 2, 3, 6, 7, 8, 500}) {
    INFO("limit " << limit);
    CHECK(all_pages(w.store, "m1", limit) == m1);
    CHECK(all_pages(w.store, "m2", limit) == m2);
    CHECK(all_pages(w.store, "m10", limit) == m10);
  }
  // Exactly a full last page: no cursor (nothing more), as with a short one.
  EntryPage exact = shop_page(w.store, "m1", 0, 7);
  CHECK(exact.entries.size() == 7);
  CHECK(exact.next_after == 0);
  EntryPage first = shop_page(w.store, "m1", 0, 6);
  CHECK(first.next_after == m1[5]);
  EntryPage rest = shop_page(w.store, "m1", first.next_after, 6);
  CHECK(seqs_of(rest.entries) == std::vector<std::uint64_t>{m1[6]});
  CHECK(rest.next_after == 0);
  // A cursor past the end, or between entries, starts after that seq.
  CHECK(shop_page(w.store, "m1", m1.back(), 10).entries.empty());
  CHECK(shop_page(w.store, "m1", UINT64_MAX, 10).entries.empty());
  CHECK(seqs_of(shop_page(w.store, "m1", m1[2] - 1, 1).entries) ==
        std::vector<std::uint64_t>{m1[2]});

  for (const Entry& e : shop_page(w.store, "m1", 0, 500).entries) {
    CHECK(e.merchant == "m1");
    CHECK(e.card.size() == 16);
  }
  CHECK(kinds_of(shop_page(w.store, "m1", m1[4], 10).entries) ==
        std::vector<EntryKind>{EntryKind::hold, EntryKind::release});
  CHECK(shop_page(w.store, "nobody", 0, 10).entries.empty());
  CHECK(shop_page(w.store, "m", 0, 10).entries.empty());
  // The admin's entries (fund, issue) are listed under no shop.
  CHECK(all_pages(w.store, "m1", 500).size() == 7);
  w.audit_clean();
}

TEST_CASE("ledger index: limits outside 1..transactions_page_max are refused") {
  World w;
  auto zero = merchant_entries(w.store, "m1", INT64_MIN, INT64_MAX, 0, 0);
  CHECK(zero.status().code() == StatusCode::invalid_argument);
  auto big =
      merchant_entries(w.store, "m1", INT64_MIN, INT64_MAX, 0, limits::transactions_page_max + 1);
  CHECK(big.status().code() == StatusCode::invalid_argument);
  CHECK(card_entries(w.store, w.c1, 0).status().code() == StatusCode::invalid_argument);
  CHECK(card_entries(w.store, w.c1, limits::transactions_page_max).ok());
}

TEST_CASE(
    "ledger index: a time window is [from, to), in seq order even if the clock stepped back") {
  World w;
  std::vector<std::uint64_t> seqs;
  std::vector<TimeMs> times;
  for (int i = 0; i < 6; ++i) {
    w.clock.set(kT0 + (i + 1) * kHour);
    times.push_back(w.clock.now_ms());
    seqs.push_back(w.ok(shop("m1"), Redeem{w.c1, 100, ""}).ledger_seq);
  }
  // Hours 1..6. [2h, 4h) holds the 2nd and 3rd; `from` is inclusive, `to` exclusive.
  CHECK(all_pages(w.store, "m1", 500, times[1], times[3]) ==
        std::vector<std::uint64_t>{seqs[1], seqs[2]});
  CHECK(all_pages(w.store, "m1", 1, times[1], times[3]) ==
        std::vector<std::uint64_t>{seqs[1], seqs[2]});
  CHECK(all_pages(w.store, "m1", 500, times[1], times[1] + 1) ==
        std::vector<std::uint64_t>{seqs[1]});
  CHECK(all_pages(w.store, "m1", 500, times[1], times[1]).empty());
  CHECK(all_pages(w.store, "m1", 500, times[5] + 1, INT64_MAX).empty());
  CHECK(all_pages(w.store, "m1", 500, INT64_MIN, times[0]).empty());
  CHECK(all_pages(w.store, "m1", 500, times[4], INT64_MAX) ==
        std::vector<std::uint64_t>{seqs[4], seqs[5]});
  // A page that ends because the window is full says so with a cursor.
  EntryPage page = shop_page(w.store, "m1", 0, 1, times[1], times[3]);
  CHECK(seqs_of(page.entries) == std::vector<std::uint64_t>{seqs[1]});
  CHECK(page.next_after == seqs[1]);

  // The clock steps back an hour and a half: the entry keeps its own time,
  // and the window still lists entries in seq order.
  w.clock.set(times[5] - 90 * kMinute);  // between hours 4 and 5
  std::uint64_t late = w.ok(shop("m1"), Redeem{w.c1, 100, ""}).ledger_seq;
  CHECK(all_pages(w.store, "m1", 500, times[3], times[4]) ==
        std::vector<std::uint64_t>{seqs[3], late});
  CHECK(all_pages(w.store, "m1", 1, times[3], INT64_MAX) ==
        std::vector<std::uint64_t>{seqs[3], seqs[4], seqs[5], late});
  w.audit_clean();
}

TEST_CASE("ledger index: a page reads at most entry_index_scan_rows_max rows, then a cursor") {
  World w;
  std::uint64_t sale = w.ok(shop("m1"), Redeem{w.c1, 100, ""}).ledger_seq;
  // Rows outside the window (index rows written by hand; their entries are
  // never read, being out of the window) between the shop's real entry and
  // a later one.
  WriteSet set;
  const std::uint64_t fake_from = 1'000'000;
  for (std::uint64_t i = 0; i < limits::entry_index_scan_rows_max + 5; ++i) {
    set.put(Space::state, keys::merchant_entry("m1", fake_from + i),
            encode_index_value(kT0 - kDay));
  }
  REQUIRE(w.store.write(set).ok());
  EntryPage first = shop_page(w.store, "m1", 0, 10, kT0, INT64_MAX);
  CHECK(seqs_of(first.entries) == std::vector<std::uint64_t>{sale});
  // The budget ran out among the fake rows: the page ends with a cursor.
  CHECK(first.next_after == fake_from + limits::entry_index_scan_rows_max - 2);
  EntryPage second = shop_page(w.store, "m1", first.next_after, 10, kT0, INT64_MAX);
  CHECK(second.entries.empty());
  CHECK(second.next_after == 0);
}

TEST_CASE("ledger index: a card's last entries, newest first; a replaced card keeps its own") {
  World w;
  Outcome sale = w.ok(shop("m1"), Redeem{w.c1, 1'000, ""});
  Outcome hold = w.ok(shop("m2"), Authorize{w.c1, 2'000, "", 0});
  Outcome r = w.ok(admin(), ReplaceCard{w.c1});
  const CardId fresh = card_id(r.new_card);
  Outcome spent = w.ok(shop("m1"), Redeem{fresh, 500, ""});
  Outcome cap = w.ok(shop("m2"), Capture{hold.id, 1'500});  // the rest goes to the new card
  Outcome f = w.ok(shop("m1"), RefundRedemption{sale.id, 300});

  // The old card: issue, sale, hold, transfer; the capture and its release,
  // and the refund of its sale (paid to the new card) name it too.
  std::vector<Entry> old_list = last_of_card(w.store, w.c1, 100);
  CHECK(kinds_of(old_list) == std::vector<EntryKind>{EntryKind::refund, EntryKind::release,
                                                     EntryKind::capture, EntryKind::transfer,
                                                     EntryKind::hold, EntryKind::redeem,
                                                     EntryKind::issue});
  CHECK(old_list[0].seq == f.ledger_seq);
  CHECK(old_list[0].card == id_of(w.c1));  // the refund names the card redeemed
  CHECK(old_list[0].to == Account{AccountKind::card, r.new_card});
  CHECK(old_list[3].seq == r.ledger_seq);
  CHECK(old_list.back().seq == sale.ledger_seq - 1);
  for (std::size_t i = 1; i < old_list.size(); ++i) CHECK(old_list[i - 1].seq > old_list[i].seq);

  // The new card: the transfer in, its own sale, the release and the refund
  // paid to it; not the old card's earlier history, nor the capture.
  std::vector<Entry> new_list = last_of_card(w.store, fresh, 100);
  CHECK(kinds_of(new_list) == std::vector<EntryKind>{EntryKind::refund, EntryKind::release,
                                                     EntryKind::redeem, EntryKind::transfer});
  CHECK(new_list[2].seq == spent.ledger_seq);
  CHECK(new_list[1].seq == cap.ledger_seq + 1);

  // The last N: a prefix of the full list.
  std::vector<Entry> two = last_of_card(w.store, w.c1, 2);
  CHECK(seqs_of(two) == std::vector<std::uint64_t>{old_list[0].seq, old_list[1].seq});
  CHECK(last_of_card(w.store, card_id("0000000000000000"), 10).empty());
  const CardId empty = w.issue("p1", "ben-empty", 0);  // issued with 0: no entry
  CHECK(last_of_card(w.store, empty, 10).empty());

  // The shops: m2 sees its hold, capture and release; m1 its sales and refund.
  CHECK(kinds_of(shop_page(w.store, "m2", 0, 100).entries) ==
        std::vector<EntryKind>{EntryKind::hold, EntryKind::capture, EntryKind::release});
  CHECK(kinds_of(shop_page(w.store, "m1", 0, 100).entries) ==
        std::vector<EntryKind>{EntryKind::redeem, EntryKind::redeem, EntryKind::refund});
  w.audit_clean();
}

TEST_CASE("ledger index: holds released by expiry or close are listed under their shop") {
  World w;
  Outcome a = w.ok(shop("m2"), Authorize{w.c1, 700, "", 60});
  Outcome b = w.ok(shop("m2"), Authorize{w.c1, 300, "", 0});
  w.clock.set(a.expires_at_ms);
  w.settle();  // sweeps the first hold
  w.clock.set(kApr1 + kHour);
  w.ok(admin(), CloseProgramme{"p1"});  // its sweep or the close releases the second
  std::vector<Entry> m2 = shop_page(w.store, "m2", 0, 100).entries;
  REQUIRE(m2.size() == 4);
  CHECK(kinds_of(m2) == std::vector<EntryKind>{EntryKind::hold, EntryKind::hold, EntryKind::release,
                                               EntryKind::release});
  CHECK(m2[2].ref == a.id);
  CHECK(m2[3].ref == b.id);
  CHECK(m2[2].merchant == "m2");
  CHECK(m2[3].merchant == "m2");
  CHECK(shop_page(w.store, "m1", 0, 100).entries.empty());
  // The card lists the expiry of its balance at close as its newest entry.
  CHECK(last_of_card(w.store, w.c1, 1).front().kind == EntryKind::expire);
  w.audit_clean();
}

TEST_CASE("ledger index: rows are written in the same store write as their entry") {
  World w;
  const int writes = w.store.writes();
  Outcome sale = w.ok(shop("m1"), Redeem{w.c1, 100, ""});
  CHECK(w.store.writes() == writes + 1);
  auto row = w.store.get(Space::state, keys::merchant_entry("m1", sale.ledger_seq));
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  TimeMs t = 0;
  CHECK(decode_index_value(**row, t).ok());
  CHECK(t == sale.time_ms);
  auto card_row = w.store.get(Space::state, keys::card_entry(w.c1, sale.ledger_seq));
  REQUIRE(card_row.ok());
  CHECK(card_row->has_value());
}

TEST_CASE("codec: ledger index keys") {
  const CardId c = card_id("0000000000000001");
  CHECK(keys::index_entry_seq(keys::merchant_entry("m1", 42)) == 42);
  CHECK(keys::index_entry_seq(keys::card_entry(c, 42)) == 42);
  CHECK(keys::index_entry_seq("e/") == 0);
  CHECK(keys::merchant_entry("m1", 9) < keys::merchant_entry("m1", 10));
  CHECK(keys::card_entry(c, 10) < keys::card_entry(c, 9));  // newest first
  CHECK(keys::merchant_entry("m1", 1).starts_with(keys::merchant_entries_prefix("m1")));
  CHECK_FALSE(keys::merchant_entry("m10", 1).starts_with(keys::merchant_entries_prefix("m1")));
  CHECK(keys::card_entry(c, 1).starts_with(keys::card_entries_prefix(c)));
  TimeMs t = 0;
  CHECK(decode_index_value(encode_index_value(-5), t).ok());
  CHECK(t == -5);
  CHECK_FALSE(decode_index_value(encode_index_value(1) + "x", t).ok());

  Entry e;
  e.seq = 7;
  e.time_ms = 1234;
  e.kind = EntryKind::refund;
  e.from = {AccountKind::payable, "m1:p1"};
  e.to = {AccountKind::card, "0000000000000002"};
  e.card = "0000000000000001";
  e.merchant = "m1";
  std::vector<IndexRow> rows = index_rows(e);
  REQUIRE(rows.size() == 3);  // m1 once (merchant and payable), both cards
  CHECK(rows[0].key == keys::merchant_entry("m1", 7));
  CHECK(rows[1].key == keys::card_entry(c, 7));
  CHECK(rows[2].key == keys::card_entry(card_id("0000000000000002"), 7));
  for (const IndexRow& row : rows) CHECK(row.value == encode_index_value(1234));
}
