// Settlement (engine/settle.h) on a MemoryStore with a pinned clock: settle,
// settle again (nothing changes), overlapping periods never pay twice, a
// refund after settlement is a negative line of the next period, holds and
// captures, and the audit stays clean (conservation with settled).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/audit.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/memory_store.h"
#include "engine/queries.h"

namespace {

using namespace buoni::engine;  // NOLINT: the engine is what this file tests
using buoni::CardId;

constexpr TimeMs kDay = 86'400'000;
constexpr Day kMar1 = 20513;  // 2026-03-01
constexpr Day kMar31 = 20543;
constexpr Day kApr1 = 20544;
constexpr Day kApr30 = 20573;

struct Fixture {
  MemoryStore store;
  ManualClock clock{kMar1 * kDay + 10 * 3'600'000};
  buoni::SeededRandom random{7};
  buoni::SigningKey key = buoni::SigningKey::generate(1);
  std::unique_ptr<Engine> engine;
  CardId card_id;

  Fixture() {
    auto opened = Engine::open(store, key, clock, random);
    REQUIRE(opened.ok());
    engine = std::move(opened).value();
    CreateProgramme p{"p1", "Buoni", 1'000'000, kMar1, kApr30 + 30, false, 0, 0};
    ok(Caller::admin(), p);
    for (const char* m : {"shop1", "shop2"}) {
      AddMerchant a{m, std::string("Alimentari ") + m, "01234567897", {"p1"}, {}};
      a.api_key_hash = buoni::blake2b_256(std::string("mk_") + m);
      ok(Caller::admin(), a);
    }
    card_id =
        *buoni::parse_card_number(ok(Caller::admin(), IssueCard{"p1", "b1", 100'000, {}}).card).id;
  }
  Result exec(Caller caller, Command command, std::string idem = {}) {
    auto r = engine->execute(Request{std::move(caller), std::move(idem), std::move(command)});
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return std::move(r).value();
  }
  Outcome ok(Caller caller, Command command, std::string idem = {}) {
    Result r = exec(std::move(caller), std::move(command), std::move(idem));
    REQUIRE_MESSAGE(r.outcome.ok(), std::string(code_name(r.outcome.code)));
    return r.outcome;
  }
  std::string redeem(const std::string& shop, Cents cents) {
    return ok(Caller::merchant(shop), Redeem{card_id, cents, "", {}}).id;
  }
  Settlement settlement(const std::string& id) {
    auto s = find_settlement(store, id);
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    return **s;
  }
  const SettlementLine* line(const Settlement& s, const std::string& shop) {
    for (const auto& l : s.lines) {
      if (l.merchant == shop) return &l;
    }
    return nullptr;
  }
  Cents balance(AccountKind kind, const std::string& owner) {
    Cents sum = 0;
    for (std::uint64_t from = 1;;) {
      auto entries = read_entries(store, from, 1000);
      REQUIRE(entries.ok());
      for (const Entry& e : *entries) {
        if (e.from == Account{kind, owner}) sum -= e.amount_cents;
        if (e.to == Account{kind, owner}) sum += e.amount_cents;
      }
      if (entries->size() < 1000) return sum;
      from = entries->back().seq + 1;
    }
  }
  void audit_clean() {
    auto report = audit(store, {key.verify_key()});
    REQUIRE(report.ok());
    for (const auto& f : report->findings) FAIL_CHECK(f.to_string());
    CHECK(report->clean());
  }
};

TEST_CASE("settle pays each shop its period's net, once; settling again changes nothing") {
  Fixture f;
  f.redeem("shop1", 1000);
  f.redeem("shop1", 2500);
  f.redeem("shop2", 700);
  f.clock.set(kApr1 * kDay + 3'600'000);
  f.redeem("shop1", 400);  // April: not in March's settlement
  Settle march{"2026-03", kMar1, kMar31};
  Outcome o = f.ok(Caller::admin(), march, "settle-2026-03");
  CHECK(o.status == "settled");
  CHECK(o.amount_cents == 4200);
  Settlement s = f.settlement("2026-03");
  REQUIRE(s.lines.size() == 2);
  const SettlementLine* one = f.line(s, "shop1");
  REQUIRE(one);
  CHECK(one->net_cents == 3500);
  CHECK(one->count == 2);
  CHECK(one->first_seq < one->last_seq);
  CHECK(f.line(s, "shop2")->net_cents == 700);
  CHECK(f.balance(AccountKind::settled, "shop1:p1") == 3500);
  CHECK(f.balance(AccountKind::payable, "shop1:p1") == 400);
  f.audit_clean();

  const auto head = f.engine->head().seq;
  Result again = f.exec(Caller::admin(), march, "settle-2026-03");
  CHECK(again.replayed);
  Outcome without_key = f.ok(Caller::admin(), march);
  CHECK(without_key.status == "already_settled");
  CHECK(without_key.amount_cents == 4200);
  CHECK(f.engine->head().seq == head);
  // The same id with other dates is refused; so is a period not yet ended,
  // and a shop cannot settle.
  CHECK(f.exec(Caller::admin(), Settle{"2026-03", kMar1, kMar1 + 3}).outcome.code ==
        Code::already_exists);
  CHECK(f.exec(Caller::admin(), Settle{"now", kApr1, kApr1}).outcome.code == Code::invalid_field);
  CHECK(f.exec(Caller::merchant("shop1"), Settle{"x", kMar1, kMar31}).outcome.code ==
        Code::forbidden);
  f.audit_clean();
}

TEST_CASE("overlapping periods never pay an entry twice, in any order") {
  Fixture f;
  f.clock.set((kMar1 + 9) * kDay);
  f.redeem("shop1", 1000);  // March 10
  f.clock.set((kMar1 + 19) * kDay);
  f.redeem("shop1", 2000);  // March 20
  f.clock.set((kApr1 + 5) * kDay);
  f.redeem("shop1", 4000);  // April 6
  f.clock.set((kApr30 + 2) * kDay);
  // The second half of March first, then all of March, then March 15..April 30.
  CHECK(f.ok(Caller::admin(), Settle{"late-march", kMar1 + 14, kMar31}).amount_cents == 2000);
  CHECK(f.ok(Caller::admin(), Settle{"2026-03", kMar1, kMar31}).amount_cents == 1000);
  CHECK(f.ok(Caller::admin(), Settle{"mid", kMar1 + 14, kApr30}).amount_cents == 4000);
  Outcome nothing = f.ok(Caller::admin(), Settle{"all", kMar1, kApr30});
  CHECK(nothing.amount_cents == 0);
  CHECK(f.settlement("all").lines.empty());
  CHECK(f.balance(AccountKind::settled, "shop1:p1") == 7000);
  CHECK(f.balance(AccountKind::payable, "shop1:p1") == 0);
  f.audit_clean();
}

TEST_CASE("a refund after settlement is a negative line of the next period") {
  Fixture f;
  std::string sale = f.redeem("shop1", 3000);
  f.clock.set(kApr1 * kDay + 3'600'000);
  f.ok(Caller::admin(), Settle{"2026-03", kMar1, kMar31});
  f.ok(Caller::merchant("shop1"), RefundRedemption{sale, 1200});
  f.clock.set((kApr30 + 1) * kDay + 3'600'000);
  Outcome april = f.ok(Caller::admin(), Settle{"2026-04", kApr1, kApr30});
  CHECK(april.amount_cents == -1200);
  Settlement s = f.settlement("2026-04");
  REQUIRE(s.lines.size() == 1);
  CHECK(s.lines[0].net_cents == -1200);
  CHECK(s.lines[0].refunded_cents == 1200);
  CHECK(s.lines[0].count == 1);
  CHECK(s.lines[0].ledger_seq > 0);
  Entry e;
  auto raw = f.store.get(Space::ledger, keys::ledger(s.lines[0].ledger_seq));
  REQUIRE(raw.ok());
  REQUIRE(raw->has_value());
  REQUIRE(decode(**raw, e).ok());
  CHECK(e.kind == EntryKind::settle);
  CHECK(e.from == Account{AccountKind::settled, "shop1:p1"});
  CHECK(e.amount_cents == 1200);
  CHECK(f.balance(AccountKind::settled, "shop1:p1") == 1800);
  CHECK(f.balance(AccountKind::payable, "shop1:p1") == 0);
  f.audit_clean();
}

TEST_CASE("holds are not paid; captures are, in the period they were captured") {
  Fixture f;
  std::string hold = f.ok(Caller::merchant("shop2"), Authorize{f.card_id, 5000, "", 0, {}}).id;
  f.ok(Caller::merchant("shop2"), Authorize{f.card_id, 800, "", 0, {}});  // left pending
  f.ok(Caller::merchant("shop2"), Capture{hold, 4500});
  f.clock.set(kApr1 * kDay + 3'600'000);
  Outcome o = f.ok(Caller::admin(), Settle{"2026-03", kMar1, kMar31});
  CHECK(o.amount_cents == 4500);
  Settlement s = f.settlement("2026-03");
  REQUIRE(s.lines.size() == 1);
  CHECK(s.lines[0].merchant == "shop2");
  CHECK(s.lines[0].count == 1);
  CHECK(s.lines[0].redeemed_cents == 4500);
  f.audit_clean();
}

TEST_CASE("the audit finds a settlement record that does not match the ledger") {
  Fixture f;
  f.redeem("shop1", 1000);
  f.clock.set(kApr1 * kDay + 3'600'000);
  f.ok(Caller::admin(), Settle{"2026-03", kMar1, kMar31});
  Settlement s = f.settlement("2026-03");
  s.lines[0].net_cents = 900;
  buoni::engine::WriteSet set;
  set.put(Space::state, keys::settlement("2026-03"), encode(s));
  REQUIRE(f.store.write(set).ok());
  auto report = audit(f.store, {f.key.verify_key()});
  REQUIRE(report.ok());
  bool found = false;
  for (const auto& x : report->findings) found = found || x.check == "settlement";
  CHECK(found);
}

TEST_CASE("settlement codec round-trips") {
  Settlement s{"2026-03", kMar1, kMar31, 42, {}};
  s.lines.push_back({"shop1", "p1", 10, 3, 7, 2, 5, 9, 100, 200, 11});
  Settlement back;
  REQUIRE(decode(encode(s), back).ok());
  CHECK(back.id == s.id);
  REQUIRE(back.lines.size() == 1);
  CHECK(back.lines[0].net_cents == 7);
  CHECK(back.lines[0].ledger_seq == 11);
  std::string bad = encode(s);
  bad.pop_back();
  CHECK_FALSE(decode(bad, back).ok());
}

}  // namespace
