// Model-based randomized test of the engine over a real RocksDB.
//
// A small reference model, written here from the rules (plain maps, no engine
// code), predicts the exact Code, balances and ledger position of every
// operation drawn at random: issue, load, redeem, authorize, capture, void,
// refund, block, unblock, replace, unlock-PIN, close (right, wrong and missing
// PINs), replays and conflicting reuses of idempotency keys, wrong callers,
// malformed input, and clock jumps (minutes, hours, to a hold's expiry, to
// midnight, past a programme's end). Besides one request per batch it drives
// bursts of independent requests from four threads (order unknown), pipelines
// of dependent requests queued from one thread (order known, many per batch),
// and once a storm of holds that lapse together, more than one batch sweeps.
// After every command the answer and the model's invariants are checked;
// every 50 commands every card, programme, hold, redemption and merchant is
// compared with the engine's stored state and the audit must be clean. A
// second case closes and reopens the store and the engine many times (some
// with requests still queued) and checks that no stored byte changed.
//
//   BUONI_SEED=<n>  replays a run (the seed is printed at the start and in
//                   every failure message)
//   BUONI_OPS=<n>   random steps of the first case (default 3000); the reopen
//                   case runs a third of them (at least 300)
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/card_number.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/audit.h"
#include "engine/calendar.h"
#include "engine/clock.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/limits.h"
#include "engine/queries.h"
#include "storage/rocks_store.h"
#include "support.h"

namespace {

namespace eng = buoni::engine;
namespace limits = buoni::limits;
using buoni::CardId;
using eng::Cents;
using eng::Code;
using eng::Day;
using eng::TimeMs;

constexpr TimeMs kMinuteMs = 60'000;
constexpr TimeMs kHourMs = 60 * kMinuteMs;
constexpr TimeMs kDayMs = 24 * kHourMs;
constexpr Day kStartDay = 20'513;                               // 2026-03-01
constexpr TimeMs kStartMs = kStartDay * kDayMs + 10 * kHourMs;  // 2026-03-01T10:00:00Z
constexpr std::uint64_t kCheckEvery = 50;                       // commands between full checks

// The UTC day of a time after 1970 (the test's clock never goes before).
Day day_at(TimeMs t_ms) {
  return static_cast<Day>(t_ms / kDayMs);
}

// ---------------------------------------------------------------------------
// Settings and scaffolding

std::optional<std::uint64_t> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

using buoni::test::run_seed;

// A fresh directory under /tmp, removed with everything in it at scope end.
struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir("/tmp/buoni_model_test_XXXXXX") {}
};

// ---------------------------------------------------------------------------
// The model's own reading of the input rules (API.md / engine limits).

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool no_control(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}
bool valid_object_id(std::string_view s) {
  return !s.empty() && s.size() <= limits::id_length_max &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; });
}
bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= limits::name_length_max && no_control(s);
}
bool valid_beneficiary(std::string_view s) {
  return !s.empty() && s.size() <= limits::beneficiary_ref_length_max &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}
bool valid_reference(std::string_view s) {
  return s.size() <= limits::reference_length_max && no_control(s);
}
bool valid_key(std::string_view s) {
  return !s.empty() && s.size() <= limits::idempotency_key_length_max &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '-'; });
}
bool valid_amount(Cents amount) {
  return amount > 0 && amount <= limits::amount_cents_max;
}

// Italian VAT number (partita IVA): 10 digits and a Luhn-like check digit.
char vat_check_digit(std::string_view ten) {
  int sum = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    int digit = ten[i] - '0';
    if (i % 2 == 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}
bool valid_vat(std::string_view vat) {
  if (vat.starts_with("IT")) vat.remove_prefix(2);
  if (vat.size() != 11) return false;
  if (!std::all_of(vat.begin(), vat.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  return vat_check_digit(vat.substr(0, 10)) == vat[10];
}
std::string make_vat(std::uint64_t n) {
  std::string ten = std::to_string(n % 10'000'000'000ULL);
  ten.insert(0, 10 - ten.size(), '0');
  return ten + vat_check_digit(ten);
}

// ---------------------------------------------------------------------------
// Text of requests and outcomes (also the model's idempotency fingerprint:
// two commands are the same request exactly when their texts are equal).

std::string card_text(const CardId& id) {
  return buoni::format_card_id(id);
}

std::string pin_text(const std::optional<buoni::Hash32>& pin) {
  return pin ? "pin:" + buoni::to_hex(*pin).substr(0, 8) : "nopin";
}

struct Describe {
  std::string operator()(const eng::CreateProgramme& c) const {
    return "create_programme|" + c.id + "|" + c.name + "|" + std::to_string(c.budget_cents) + "|" +
           std::to_string(c.valid_from_day) + "|" + std::to_string(c.valid_until_day) + "|" +
           (c.require_pin ? "pin" : "nopin") + "|" + std::to_string(c.max_redemption_cents) + "|" +
           std::to_string(c.daily_limit_cents);
  }
  std::string operator()(const eng::CloseProgramme& c) const { return "close_programme|" + c.id; }
  std::string operator()(const eng::AddMerchant& c) const {
    std::string s = "add_merchant|" + c.id + "|" + c.name + "|" + c.vat_number + "|";
    for (const auto& p : c.programmes) s += p + ",";
    return s;  // not the key hash: a retry makes a new key, so it is no part of the request
  }
  // Not the PIN of an issue or a replacement: a retry makes a new one.
  std::string operator()(const eng::IssueCard& c) const {
    return "issue|" + c.programme + "|" + c.beneficiary_ref + "|" + std::to_string(c.amount_cents);
  }
  std::string operator()(const eng::LoadCard& c) const {
    return "load|" + card_text(c.card) + "|" + std::to_string(c.amount_cents);
  }
  std::string operator()(const eng::BlockCard& c) const { return "block|" + card_text(c.card); }
  std::string operator()(const eng::Settle& c) const {
    return "settle|" + c.period_id + "|" + std::to_string(c.from_day) + "|" +
           std::to_string(c.to_day);
  }
  std::string operator()(const eng::RotateMerchantKey& c) const { return "rotate_key|" + c.id; }
  std::string operator()(const eng::OpenSession& c) const {
    return "open_session|" + buoni::to_hex(c.session_hash) + "|" + buoni::to_hex(c.api_key_hash);
  }
  std::string operator()(const eng::EndSession& c) const {
    return "end_session|" + buoni::to_hex(c.session_hash);
  }
  std::string operator()(const eng::UnblockCard& c) const { return "unblock|" + card_text(c.card); }
  std::string operator()(const eng::ReplaceCard& c) const { return "replace|" + card_text(c.card); }
  std::string operator()(const eng::UnlockPin& c) const {
    return "unlock_pin|" + card_text(c.card);
  }
  std::string operator()(const eng::Redeem& c) const {
    return "redeem|" + card_text(c.card) + "|" + std::to_string(c.amount_cents) + "|" +
           c.reference + "|" + pin_text(c.pin_hash);
  }
  std::string operator()(const eng::Authorize& c) const {
    return "authorize|" + card_text(c.card) + "|" + std::to_string(c.amount_cents) + "|" +
           c.reference + "|" + std::to_string(c.expires_in_s) + "|" + pin_text(c.pin_hash);
  }
  std::string operator()(const eng::Capture& c) const {
    return "capture|" + c.hold_id + "|" + std::to_string(c.amount_cents);
  }
  std::string operator()(const eng::Void& c) const { return "void|" + c.hold_id; }
  std::string operator()(const eng::RefundRedemption& c) const {
    return "refund|" + c.redemption_id + "|" + std::to_string(c.amount_cents);
  }
};

std::string describe(const eng::Command& command) {
  return std::visit(Describe{}, command);
}

std::string caller_text(const eng::Caller& caller) {
  return caller.role == eng::Caller::Role::admin ? "admin" : "m:" + caller.merchant_id;
}

std::string describe(const eng::Request& r) {
  std::string key = r.idempotency_key.empty() ? "" : " key=" + r.idempotency_key;
  return caller_text(r.caller) + key + " " + describe(r.command);
}

std::string outcome_text(const eng::Outcome& o) {
  std::ostringstream s;
  s << eng::code_name(o.code) << " id=" << o.id << " card=" << o.card
    << " amount=" << o.amount_cents << " balance=" << o.balance_cents << " held=" << o.held_cents
    << " time=" << o.time_ms << " expires_at=" << o.expires_at_ms << " seq=" << o.ledger_seq
    << " status=" << o.status << " new_card=" << o.new_card;
  return s.str();
}

// A different command for the same caller: reusing a key with it is a conflict.
struct Change {
  eng::Command operator()(eng::CreateProgramme c) const {
    c.budget_cents += 1;
    return c;
  }
  eng::Command operator()(eng::CloseProgramme c) const {
    c.id += "x";
    return c;
  }
  eng::Command operator()(eng::AddMerchant c) const {
    c.name += "x";
    return c;
  }
  eng::Command operator()(eng::IssueCard c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(eng::LoadCard c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(const eng::BlockCard& c) const { return eng::UnblockCard{c.card}; }
  eng::Command operator()(const eng::UnblockCard& c) const { return eng::BlockCard{c.card}; }
  eng::Command operator()(const eng::ReplaceCard& c) const { return eng::BlockCard{c.card}; }
  eng::Command operator()(const eng::UnlockPin& c) const { return eng::BlockCard{c.card}; }
  eng::Command operator()(eng::Redeem c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(eng::Authorize c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(eng::Capture c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(const eng::Void& c) const { return eng::Capture{c.hold_id, 1}; }
  eng::Command operator()(eng::RefundRedemption c) const {
    c.amount_cents += 1;
    return c;
  }
  eng::Command operator()(eng::Settle c) const {
    c.to_day += 1;
    return c;
  }
  eng::Command operator()(eng::RotateMerchantKey c) const {
    c.id += "x";
    return c;
  }
  eng::Command operator()(eng::OpenSession c) const {
    c.session_hash[0] ^= 1;
    return c;
  }
  eng::Command operator()(eng::EndSession c) const {
    c.session_hash[0] ^= 1;
    return c;
  }
};

using Pin = std::optional<buoni::Hash32>;  // a PIN's keyed hash, as the edge sends it

eng::Redeem redeem(const CardId& card, Cents amount, std::string reference, Pin pin = {}) {
  eng::Redeem c;
  c.card = card;
  c.amount_cents = amount;
  c.reference = std::move(reference);
  c.pin_hash = pin;
  return c;
}
eng::Authorize authorize(const CardId& card, Cents amount, std::string reference,
                         std::int64_t expires_in_s, Pin pin = {}) {
  eng::Authorize c;
  c.card = card;
  c.amount_cents = amount;
  c.reference = std::move(reference);
  c.expires_in_s = expires_in_s;
  c.pin_hash = pin;
  return c;
}
eng::IssueCard issue(std::string programme, std::string ref, Cents amount, Pin pin = {}) {
  eng::IssueCard c;
  c.programme = std::move(programme);
  c.beneficiary_ref = std::move(ref);
  c.amount_cents = amount;
  c.pin_hash = pin;
  return c;
}
eng::ReplaceCard replace(const CardId& card, Pin pin = {}) {
  eng::ReplaceCard c;
  c.card = card;
  c.pin_hash = pin;
  return c;
}

eng::Request admin_request(eng::Command command) {
  return {eng::Caller::admin(), "", std::move(command)};
}
eng::Request merchant_request(std::string merchant, eng::Command command) {
  return {eng::Caller::merchant(std::move(merchant)), "", std::move(command)};
}

// ---------------------------------------------------------------------------
// What the model expects of one answer. Unset fields are not checked.

struct Expect {
  Code code = Code::ok;
  std::optional<eng::Outcome> replay;  // a replay: the first outcome, field for field
  std::optional<std::string> id, card, status;
  std::optional<Cents> amount, balance, held;
  std::optional<TimeMs> time, expires_at;
  std::optional<std::uint64_t> ledger_seq;
  std::string id_prefix;  // ok: the new object's id starts with this
  std::string problem;    // something the model found wrong in the engine's answer
  bool recorded = false;  // the outcome was stored as the first of an idempotency key
};

Expect declined(Code code) {
  Expect e;
  e.code = code;
  e.ledger_seq = 0;  // a decline writes no ledger entry (bar the lapsed-hold release)
  return e;
}

template <typename T>
void expect_field(std::ostringstream& out, const char* name, const std::optional<T>& want,
                  const T& got) {
  if (want && *want != got) out << ' ' << name << ": expected " << *want << ", got " << got << ';';
}

std::string mismatch(const Expect& e, const eng::Result& result) {
  std::ostringstream out;
  const eng::Outcome& o = result.outcome;
  if (o.code != e.code) {
    out << " code: expected " << eng::code_name(e.code) << ", got " << eng::code_name(o.code)
        << ';';
  }
  if (result.replayed != e.replay.has_value()) {
    out << " replayed: expected " << e.replay.has_value() << ", got " << result.replayed << ';';
  }
  if (e.replay && outcome_text(*e.replay) != outcome_text(o)) {
    out << " replay differs: first {" << outcome_text(*e.replay) << "}, now {" << outcome_text(o)
        << "};";
  }
  expect_field(out, "id", e.id, o.id);
  expect_field(out, "card", e.card, o.card);
  expect_field(out, "status", e.status, o.status);
  expect_field(out, "amount", e.amount, o.amount_cents);
  expect_field(out, "balance", e.balance, o.balance_cents);
  expect_field(out, "held", e.held, o.held_cents);
  expect_field(out, "time", e.time, o.time_ms);
  expect_field(out, "expires_at", e.expires_at, o.expires_at_ms);
  expect_field(out, "ledger_seq", e.ledger_seq, o.ledger_seq);
  if (o.code == Code::ok && !e.id_prefix.empty() && !o.id.starts_with(e.id_prefix)) {
    out << " id " << o.id << " does not start with " << e.id_prefix << ';';
  }
  out << e.problem;
  std::string text = out.str();
  if (!text.empty()) text += " [engine answered: " + outcome_text(o) + "]";
  return text;
}

// ---------------------------------------------------------------------------
// The reference model

enum class CardState : std::uint8_t { active, blocked, revoked, expired };
enum class HoldState : std::uint8_t { pending, captured, voided, expired };

std::string state_name(CardState s) {
  switch (s) {
    case CardState::active:
      return "active";
    case CardState::blocked:
      return "blocked";
    case CardState::revoked:
      return "revoked";
    case CardState::expired:
      return "expired";
  }
  return "?";
}
std::string state_name(HoldState s) {
  switch (s) {
    case HoldState::pending:
      return "pending";
    case HoldState::captured:
      return "captured";
    case HoldState::voided:
      return "voided";
    case HoldState::expired:
      return "expired";
  }
  return "?";
}

struct MProgramme {
  std::string id;
  Cents budget = 0;
  Day from = 0, until = 0;
  Cents max_redemption = 0, daily_limit = 0;
  bool require_pin = false;
  bool closed = false;
  Cents issued = 0, redeemed = 0, refunded = 0, expired = 0, held = 0;
  std::int64_t card_count = 0;
  std::map<std::string, std::string> beneficiaries;  // ref -> the card in use
};

struct MMerchant {
  std::string id;
  std::set<std::string> programmes;
};

struct MCard {
  CardId id;
  std::string key;  // format_card_id
  std::string programme, ref;
  CardState state = CardState::active;
  Cents available = 0, held = 0, issued = 0;
  Day spent_day = 0;
  Cents spent_today = 0;
  std::string replaced_by;  // empty: none
  bool has_pin = false;
  buoni::Hash32 pin{};
  int pin_failures = 0;  // consecutive wrong PINs
};

struct MHold {
  std::string id, card, merchant, programme;
  Cents amount = 0, captured = 0;
  HoldState state = HoldState::pending;
  TimeMs expires_at = 0;
};

struct MRedemption {
  std::string id, card, merchant, programme;
  Cents amount = 0, refunded = 0;
};

struct IdemRecord {
  std::string fingerprint;
  eng::Outcome first;
};

Cents spent_on(const MCard& card, Day today) {
  return card.spent_day == today ? card.spent_today : 0;
}

class Model {
 public:
  std::map<std::string, MProgramme> programmes;
  std::vector<std::string> programme_order;
  std::map<std::string, MMerchant> merchants;
  std::vector<std::string> merchant_order;
  std::set<buoni::Hash32> merchant_keys;  // API key hashes in use
  std::map<std::string, MCard> cards;
  std::vector<std::string> card_order;
  std::map<std::string, MHold> holds;
  std::vector<std::string> hold_order;
  std::set<std::pair<TimeMs, std::string>>
      pending;  // pending holds, in the order the writer sweeps
  std::map<std::string, MRedemption> redemptions;
  std::vector<std::string> redemption_order;
  std::set<std::string> refunds;
  std::map<std::pair<std::string, std::string>, Cents> payable;  // (merchant, programme)
  std::map<std::string, IdemRecord> idempotency;                 // caller \n key
  std::uint64_t seq = 0;                                         // ledger entries written

  // What the writer does at the start of every batch.
  void sweep(TimeMs now);
  // Predicts the answer to `request` at `now` and applies its effects. `got` is
  // the engine's answer, read only for the ids the engine chose.
  Expect apply(const eng::Request& request, TimeMs now, const eng::Outcome& got);
  [[nodiscard]] Code usable(const MCard& card, Day today) const;
  // What a spend would answer (without the PIN count it leaves).
  [[nodiscard]] Code spend_code(const eng::Caller& caller, const std::string& card, Cents amount,
                                const Pin& pin, Day today) const;
  [[nodiscard]] Code load_code(const std::string& card, Cents amount, Day today) const;
  [[nodiscard]] std::size_t lapsed(TimeMs now) const;
  [[nodiscard]] std::string broken_invariant() const;

 private:
  struct Ctx {
    const eng::Caller& caller;
    TimeMs now;
    Day today;
    const eng::Outcome& got;
    [[nodiscard]] bool admin() const { return caller.role == eng::Caller::Role::admin; }
    [[nodiscard]] bool merchant() const { return caller.role == eng::Caller::Role::merchant; }
  };
  Expect run(const Ctx& x, const eng::CreateProgramme& c);
  Expect run(const Ctx& x, const eng::CloseProgramme& c);
  Expect run(const Ctx& x, const eng::AddMerchant& c);
  Expect run(const Ctx& x, const eng::IssueCard& c);
  Expect run(const Ctx& x, const eng::LoadCard& c);
  Expect run(const Ctx& x, const eng::BlockCard& c) { return set_blocked(x, c.card, true); }
  Expect run(const Ctx& x, const eng::UnblockCard& c) { return set_blocked(x, c.card, false); }
  Expect run(const Ctx& x, const eng::ReplaceCard& c);
  Expect run(const Ctx& x, const eng::Redeem& c);
  Expect run(const Ctx& x, const eng::Authorize& c);
  Expect run(const Ctx& x, const eng::Capture& c);
  Expect run(const Ctx& x, const eng::Void& c);
  Expect run(const Ctx& x, const eng::RefundRedemption& c);

  Expect run(const Ctx& x, const eng::UnlockPin& c);
  // Settlement is tested in tests/settle_test.cpp; the model never generates it.
  Expect run(const Ctx&, const eng::Settle&) { return declined(Code::forbidden); }
  // Key rotation and sessions move no money; tests/session_test.cpp covers
  // them. The model never generates them.
  Expect run(const Ctx&, const eng::RotateMerchantKey&) { return declined(Code::forbidden); }
  Expect run(const Ctx&, const eng::OpenSession&) { return declined(Code::forbidden); }
  Expect run(const Ctx&, const eng::EndSession&) { return declined(Code::forbidden); }
  Expect set_blocked(const Ctx& x, const CardId& id, bool blocked);
  [[nodiscard]] Code spend_gate(const eng::Caller& caller, const std::string& card, Cents amount,
                                Day today) const;
  [[nodiscard]] Code pin_code(const MCard& card, const Pin& pin) const;
  static void count_pin(MCard& card, const Pin& pin);
  [[nodiscard]] Code spend_limits(const MCard& card, Cents amount, Day today) const;
  Code check_spend(const Ctx& x, const std::string& card, Cents amount, const Pin& pin);
  std::optional<Expect> pending_hold(const Ctx& x, const std::string& id, MHold*& hold);
  void release(MHold& hold, Cents release_cents, HoldState state);
  void spend(MCard& card, Cents amount, Day today);
  Expect spend_declined(Code code, const std::string& card) const;
  void add_redemption(const MRedemption& r, Expect& e);
  bool add_card(const MCard& card, Expect& e);
  MCard& current(const std::string& card);
  static Expect ok_at(const Ctx& x) {
    Expect e;
    e.time = x.now;
    return e;
  }
};

void Model::sweep(TimeMs now) {
  for (std::size_t n = 0; n < limits::hold_expiries_per_batch_max && !pending.empty(); ++n) {
    auto [expires_at, id] = *pending.begin();
    if (expires_at > now) break;
    MHold& h = holds.at(id);
    release(h, h.amount, HoldState::expired);
  }
}

std::size_t Model::lapsed(TimeMs now) const {
  std::size_t n = 0;
  for (const auto& [expires_at, id] : pending) {
    if (expires_at > now) break;
    ++n;
  }
  return n;
}

Expect Model::apply(const eng::Request& request, TimeMs now, const eng::Outcome& got) {
  const std::string& key = request.idempotency_key;
  if (!key.empty() && !valid_key(key)) return declined(Code::invalid_field);
  const std::string slot = caller_text(request.caller) + "\n" + key;
  const std::string fingerprint = describe(request.command);
  if (!key.empty()) {
    auto it = idempotency.find(slot);
    if (it != idempotency.end()) {
      if (it->second.fingerprint != fingerprint) return declined(Code::idempotency_conflict);
      Expect e;
      e.code = it->second.first.code;
      e.replay = it->second.first;
      return e;
    }
  }
  const Ctx x{request.caller, now, day_at(now), got};
  Expect e = std::visit([&](const auto& c) { return run(x, c); }, request.command);
  if (!key.empty()) {
    idempotency[slot] = {fingerprint, got};
    e.recorded = true;
  }
  return e;
}

MCard& Model::current(const std::string& card) {
  std::string at = card;
  while (!cards.at(at).replaced_by.empty()) at = cards.at(at).replaced_by;
  return cards.at(at);
}

Code Model::usable(const MCard& card, Day today) const {
  const MProgramme& p = programmes.at(card.programme);
  if (p.closed) return Code::programme_closed;
  switch (card.state) {
    case CardState::blocked:
      return Code::card_blocked;
    case CardState::revoked:
      return Code::card_revoked;
    case CardState::expired:
      return Code::card_expired;
    case CardState::active:
      break;
  }
  if (today < p.from) return Code::card_not_yet_valid;
  if (today > p.until) return Code::card_expired;
  return Code::ok;
}

// Releases a pending hold: its money leaves the card's held balance, and
// `release_cents` of it goes to the card now in use.
void Model::release(MHold& hold, Cents release_cents, HoldState state) {
  cards.at(hold.card).held -= hold.amount;
  programmes.at(hold.programme).held -= hold.amount;
  current(hold.card).available += release_cents;
  pending.erase({hold.expires_at, hold.id});
  hold.state = state;
  if (release_cents > 0) ++seq;
}

Expect Model::run(const Ctx& x, const eng::CreateProgramme& c) {
  if (!x.admin()) return declined(Code::forbidden);
  if (!valid_object_id(c.id) || !valid_name(c.name)) return declined(Code::invalid_field);
  if (c.budget_cents <= 0 || c.budget_cents > limits::budget_cents_max) {
    return declined(Code::invalid_amount);
  }
  if (c.max_redemption_cents < 0 || c.max_redemption_cents > limits::amount_cents_max ||
      c.daily_limit_cents < 0 || c.daily_limit_cents > limits::amount_cents_max) {
    return declined(Code::invalid_amount);
  }
  if (c.valid_until_day < c.valid_from_day ||
      c.valid_until_day - c.valid_from_day > limits::programme_days_max) {
    return declined(Code::invalid_field);
  }
  if (programmes.count(c.id)) return declined(Code::already_exists);
  MProgramme p;
  p.id = c.id;
  p.budget = c.budget_cents;
  p.from = c.valid_from_day;
  p.until = c.valid_until_day;
  p.max_redemption = c.max_redemption_cents;
  p.daily_limit = c.daily_limit_cents;
  p.require_pin = c.require_pin;
  programmes[p.id] = p;
  programme_order.push_back(p.id);
  Expect e = ok_at(x);
  e.id = c.id;
  e.amount = c.budget_cents;
  e.ledger_seq = ++seq;  // fund: budget -> pool
  return e;
}

Expect Model::run(const Ctx& x, const eng::AddMerchant& c) {
  if (!x.admin()) return declined(Code::forbidden);
  if (!valid_object_id(c.id) || !valid_name(c.name) || !valid_vat(c.vat_number) ||
      c.programmes.empty() || c.programmes.size() > limits::merchant_programmes_max) {
    return declined(Code::invalid_field);
  }
  for (const auto& p : c.programmes) {
    if (!programmes.count(p)) return declined(Code::not_found);
  }
  if (merchants.count(c.id)) return declined(Code::already_exists);
  if (merchant_keys.count(c.api_key_hash)) return declined(Code::already_exists);  // another shop's
  merchant_keys.insert(c.api_key_hash);
  merchants[c.id] = {c.id, {c.programmes.begin(), c.programmes.end()}};
  merchant_order.push_back(c.id);
  Expect e = ok_at(x);
  e.id = c.id;
  e.ledger_seq = 0;
  return e;
}

bool Model::add_card(const MCard& card, Expect& e) {
  if (card.key.size() != 16 || cards.count(card.key)) {
    e.problem += " the engine's new card id '" + card.key + "' is malformed or not new;";
    return false;
  }
  cards[card.key] = card;
  card_order.push_back(card.key);
  programmes.at(card.programme).beneficiaries[card.ref] = card.key;
  return true;
}

Expect Model::run(const Ctx& x, const eng::IssueCard& c) {
  if (!x.admin()) return declined(Code::forbidden);
  if (!valid_beneficiary(c.beneficiary_ref)) return declined(Code::invalid_field);
  if (c.amount_cents < 0 || c.amount_cents > limits::amount_cents_max) {
    return declined(Code::invalid_amount);
  }
  auto it = programmes.find(c.programme);
  if (it == programmes.end()) return declined(Code::not_found);
  MProgramme& p = it->second;
  if (p.closed) return declined(Code::programme_closed);
  if (x.today > p.until) return declined(Code::card_expired);
  if (p.require_pin != c.pin_hash.has_value()) return declined(Code::invalid_field);
  if (auto b = p.beneficiaries.find(c.beneficiary_ref); b != p.beneficiaries.end()) {
    Expect e = declined(Code::already_issued);
    e.id = e.card = b->second;
    return e;
  }
  if (p.card_count >= limits::cards_per_programme_max) return declined(Code::limit_exceeded);
  if (p.issued + c.amount_cents > p.budget) return declined(Code::budget_exceeded);
  Expect e = ok_at(x);
  MCard card;
  auto parsed = buoni::parse_card_number(x.got.card);
  if (parsed.id) card.id = *parsed.id;
  card.key = x.got.card;
  card.programme = p.id;
  card.ref = c.beneficiary_ref;
  card.available = card.issued = c.amount_cents;
  card.has_pin = c.pin_hash.has_value();
  card.pin = c.pin_hash.value_or(buoni::Hash32{});
  if (!parsed.id || !add_card(card, e)) return e;
  p.issued += c.amount_cents;
  p.card_count += 1;
  e.id = e.card = card.key;
  e.amount = e.balance = c.amount_cents;
  e.status = "active";
  e.ledger_seq = c.amount_cents > 0 ? ++seq : 0;
  return e;
}

Code Model::load_code(const std::string& card, Cents amount, Day today) const {
  if (!valid_amount(amount)) return Code::invalid_amount;
  auto it = cards.find(card);
  if (it == cards.end()) return Code::unknown_card;
  // A blocked card may be topped up, and any card before its programme starts.
  Code u = usable(it->second, today);
  if (u != Code::ok && u != Code::card_blocked && u != Code::card_not_yet_valid) return u;
  const MProgramme& p = programmes.at(it->second.programme);
  if (p.issued + amount > p.budget) return Code::budget_exceeded;
  return Code::ok;
}

Expect Model::run(const Ctx& x, const eng::LoadCard& c) {
  if (!x.admin()) return declined(Code::forbidden);
  const std::string key = card_text(c.card);
  Code code = load_code(key, c.amount_cents, x.today);
  if (code != Code::ok) return declined(code);
  MCard& card = cards.at(key);
  card.available += c.amount_cents;
  programmes.at(card.programme).issued += c.amount_cents;
  Expect e = ok_at(x);
  e.id = e.card = key;
  e.amount = c.amount_cents;
  e.balance = card.available;
  e.held = card.held;
  e.ledger_seq = ++seq;
  return e;
}

Expect Model::set_blocked(const Ctx& x, const CardId& id, bool blocked) {
  if (!x.admin()) return declined(Code::forbidden);
  auto it = cards.find(card_text(id));
  if (it == cards.end()) return declined(Code::unknown_card);
  MCard& card = it->second;
  if (card.state == CardState::revoked) return declined(Code::card_revoked);
  if (card.state == CardState::expired) return declined(Code::card_expired);
  card.state = blocked ? CardState::blocked : CardState::active;
  Expect e = ok_at(x);
  e.id = e.card = card.key;
  e.balance = card.available;
  e.held = card.held;
  e.status = state_name(card.state);
  e.ledger_seq = 0;
  return e;
}

Expect Model::run(const Ctx& x, const eng::UnlockPin& c) {
  if (!x.admin()) return declined(Code::forbidden);
  auto it = cards.find(card_text(c.card));
  if (it == cards.end()) return declined(Code::unknown_card);
  MCard& card = it->second;
  if (card.state == CardState::revoked) return declined(Code::card_revoked);
  card.pin_failures = 0;
  Expect e = ok_at(x);
  e.id = e.card = card.key;
  e.balance = card.available;
  e.held = card.held;
  e.status = state_name(card.state);
  e.ledger_seq = 0;
  return e;
}

Expect Model::run(const Ctx& x, const eng::ReplaceCard& c) {
  if (!x.admin()) return declined(Code::forbidden);
  auto it = cards.find(card_text(c.card));
  if (it == cards.end()) return declined(Code::unknown_card);
  MCard& old = it->second;
  Code u = usable(old, x.today);
  if (u != Code::ok && u != Code::card_blocked && u != Code::card_not_yet_valid) {
    return declined(u);
  }
  if (programmes.at(old.programme).require_pin != c.pin_hash.has_value()) {
    return declined(Code::invalid_field);
  }
  Expect e = ok_at(x);
  MCard fresh;
  auto parsed = buoni::parse_card_number(x.got.new_card);
  if (parsed.id) fresh.id = *parsed.id;
  fresh.key = x.got.new_card;
  fresh.programme = old.programme;
  fresh.ref = old.ref;
  fresh.available = fresh.issued = old.available;
  fresh.spent_day = old.spent_day;  // a replacement keeps the day's spending
  fresh.spent_today = old.spent_today;
  fresh.has_pin = c.pin_hash.has_value();  // a replacement gets a new PIN and a clean count
  fresh.pin = c.pin_hash.value_or(buoni::Hash32{});
  const Cents moved = old.available;
  const std::string old_key = old.key;
  if (!parsed.id || !add_card(fresh, e)) return e;
  MCard& revoked = cards.at(old_key);
  revoked.available = 0;
  revoked.state = CardState::revoked;
  revoked.replaced_by = fresh.key;
  e.id = fresh.key;
  e.card = old_key;
  e.amount = e.balance = moved;
  e.status = "active";
  e.ledger_seq = moved > 0 ? ++seq : 0;
  return e;
}

Code Model::spend_gate(const eng::Caller& caller, const std::string& card, Cents amount,
                       Day today) const {
  if (caller.role != eng::Caller::Role::merchant) return Code::forbidden;
  if (!valid_amount(amount)) return Code::invalid_amount;
  auto m = merchants.find(caller.merchant_id);
  if (m == merchants.end()) return Code::forbidden;
  auto it = cards.find(card);
  if (it == cards.end()) return Code::unknown_card;
  const MCard& c = it->second;
  if (!m->second.programmes.count(c.programme)) return Code::merchant_not_allowed;
  return usable(c, today);
}

Code Model::pin_code(const MCard& c, const Pin& pin) const {
  if (!c.has_pin) return Code::ok;
  if (c.pin_failures >= limits::pin_failures_max) return Code::pin_locked;
  if (!pin) return Code::pin_required;
  if (*pin != c.pin) {
    return c.pin_failures + 1 >= limits::pin_failures_max ? Code::pin_locked : Code::wrong_pin;
  }
  return Code::ok;
}

// What the PIN check leaves on the card: a wrong PIN counts, a right one
// clears the count (even when the spend is then declined).
void Model::count_pin(MCard& c, const Pin& pin) {
  if (!c.has_pin || c.pin_failures >= limits::pin_failures_max || !pin) return;
  c.pin_failures = *pin == c.pin ? 0 : c.pin_failures + 1;
}

Code Model::spend_limits(const MCard& c, Cents amount, Day today) const {
  const MProgramme& p = programmes.at(c.programme);
  if (p.max_redemption > 0 && amount > p.max_redemption) return Code::limit_exceeded;
  if (p.daily_limit > 0 && spent_on(c, today) + amount > p.daily_limit) return Code::limit_exceeded;
  if (c.available < amount) return Code::insufficient_funds;
  return Code::ok;
}

Code Model::spend_code(const eng::Caller& caller, const std::string& card, Cents amount,
                       const Pin& pin, Day today) const {
  Code code = spend_gate(caller, card, amount, today);
  if (code != Code::ok) return code;
  code = pin_code(cards.at(card), pin);
  if (code != Code::ok) return code;
  return spend_limits(cards.at(card), amount, today);
}

Code Model::check_spend(const Ctx& x, const std::string& card, Cents amount, const Pin& pin) {
  Code code = spend_gate(x.caller, card, amount, x.today);
  if (code != Code::ok) return code;
  MCard& c = cards.at(card);
  code = pin_code(c, pin);
  count_pin(c, pin);
  if (code != Code::ok) return code;
  return spend_limits(c, amount, x.today);
}

Expect Model::spend_declined(Code code, const std::string& card) const {
  Expect e = declined(code);
  if (code == Code::insufficient_funds) {
    const MCard& c = cards.at(card);
    e.card = card;
    e.balance = c.available;
    e.held = c.held;
  }
  return e;
}

void Model::spend(MCard& card, Cents amount, Day today) {
  card.spent_today = spent_on(card, today) + amount;
  card.spent_day = today;
  card.available -= amount;
}

void Model::add_redemption(const MRedemption& r, Expect& e) {
  if (redemptions.count(r.id)) e.problem += " the engine reused redemption id " + r.id + ";";
  redemptions[r.id] = r;
  redemption_order.push_back(r.id);
  payable[{r.merchant, r.programme}] += r.amount;
  programmes.at(r.programme).redeemed += r.amount;
}

Expect Model::run(const Ctx& x, const eng::Redeem& c) {
  if (!valid_reference(c.reference)) return declined(Code::invalid_field);
  const std::string key = card_text(c.card);
  Code code = check_spend(x, key, c.amount_cents, c.pin_hash);
  if (code != Code::ok) return spend_declined(code, key);
  MCard& card = cards.at(key);
  spend(card, c.amount_cents, x.today);
  Expect e = ok_at(x);
  e.id_prefix = "rd_";
  add_redemption({x.got.id, key, x.caller.merchant_id, card.programme, c.amount_cents, 0}, e);
  e.card = key;
  e.amount = c.amount_cents;
  e.balance = card.available;
  e.held = card.held;
  e.ledger_seq = ++seq;
  return e;
}

Expect Model::run(const Ctx& x, const eng::Authorize& c) {
  if (!valid_reference(c.reference)) return declined(Code::invalid_field);
  const std::int64_t expires_in_s =
      c.expires_in_s == 0 ? limits::hold_expires_in_s_default : c.expires_in_s;
  if (expires_in_s < 1 || expires_in_s > limits::hold_expires_in_s_max) {
    return declined(Code::invalid_field);
  }
  const std::string key = card_text(c.card);
  Code code = check_spend(x, key, c.amount_cents, c.pin_hash);
  if (code != Code::ok) return spend_declined(code, key);
  MCard& card = cards.at(key);
  spend(card, c.amount_cents, x.today);
  card.held += c.amount_cents;
  programmes.at(card.programme).held += c.amount_cents;
  MHold h{x.got.id,       key, x.caller.merchant_id, card.programme,
          c.amount_cents, 0,   HoldState::pending,   x.now + expires_in_s * 1000};
  Expect e = ok_at(x);
  e.id_prefix = "au_";
  if (holds.count(h.id)) e.problem += " the engine reused hold id " + h.id + ";";
  holds[h.id] = h;
  hold_order.push_back(h.id);
  pending.insert({h.expires_at, h.id});
  e.card = key;
  e.amount = c.amount_cents;
  e.balance = card.available;
  e.held = card.held;
  e.expires_at = h.expires_at;
  e.status = "pending";
  e.ledger_seq = ++seq;
  return e;
}

std::optional<Expect> Model::pending_hold(const Ctx& x, const std::string& id, MHold*& hold) {
  auto it = holds.find(id);
  if (it == holds.end() || it->second.merchant != x.caller.merchant_id) {
    return declined(Code::not_found);
  }
  MHold& h = it->second;
  if (h.state == HoldState::expired) return declined(Code::hold_expired);
  if (h.state != HoldState::pending) return declined(Code::hold_not_pending);
  if (x.now >= h.expires_at) {  // lapsed but not swept yet: released now
    release(h, h.amount, HoldState::expired);
    Expect e = declined(Code::hold_expired);
    e.id = h.id;
    e.status = "expired";
    e.ledger_seq = seq;
    return e;
  }
  hold = &h;
  return std::nullopt;
}

Expect Model::run(const Ctx& x, const eng::Capture& c) {
  if (!x.merchant()) return declined(Code::forbidden);
  if (!valid_amount(c.amount_cents)) return declined(Code::invalid_amount);
  MHold* h = nullptr;
  if (auto decline = pending_hold(x, c.hold_id, h)) return *decline;
  if (c.amount_cents > h->amount) return declined(Code::amount_exceeds_hold);
  Expect e = ok_at(x);
  e.id_prefix = "rd_";
  e.ledger_seq = ++seq;  // the capture entry; the release of the rest follows it
  h->captured = c.amount_cents;
  release(*h, h->amount - c.amount_cents, HoldState::captured);
  add_redemption({x.got.id, h->card, h->merchant, h->programme, c.amount_cents, 0}, e);
  const MCard& card = current(h->card);
  e.card = card.key;
  e.amount = c.amount_cents;
  e.balance = card.available;
  e.held = card.held;
  e.status = "captured";
  return e;
}

Expect Model::run(const Ctx& x, const eng::Void& c) {
  if (!x.merchant()) return declined(Code::forbidden);
  MHold* h = nullptr;
  if (auto decline = pending_hold(x, c.hold_id, h)) return *decline;
  release(*h, h->amount, HoldState::voided);
  const MCard& card = current(h->card);
  Expect e = ok_at(x);
  e.id = h->id;
  e.card = card.key;
  e.amount = h->amount;
  e.balance = card.available;
  e.held = card.held;
  e.status = "voided";
  e.ledger_seq = seq;
  return e;
}

Expect Model::run(const Ctx& x, const eng::RefundRedemption& c) {
  if (!x.merchant()) return declined(Code::forbidden);
  if (!valid_amount(c.amount_cents)) return declined(Code::invalid_amount);
  auto it = redemptions.find(c.redemption_id);
  if (it == redemptions.end() || it->second.merchant != x.caller.merchant_id) {
    return declined(Code::not_found);
  }
  MRedemption& r = it->second;
  MProgramme& p = programmes.at(r.programme);
  if (p.closed) return declined(Code::programme_closed);
  if (r.refunded + c.amount_cents > r.amount) return declined(Code::refund_exceeds_redemption);
  MCard& card = current(r.card);
  card.available += c.amount_cents;
  r.refunded += c.amount_cents;
  p.refunded += c.amount_cents;
  payable[{r.merchant, r.programme}] -= c.amount_cents;
  Expect e = ok_at(x);
  e.id_prefix = "rf_";
  if (!refunds.insert(x.got.id).second)
    e.problem += " the engine reused refund id " + x.got.id + ";";
  e.card = card.key;
  e.amount = c.amount_cents;
  e.balance = card.available;
  e.held = card.held;
  e.ledger_seq = ++seq;
  return e;
}

Expect Model::run(const Ctx& x, const eng::CloseProgramme& c) {
  if (!x.admin()) return declined(Code::forbidden);
  auto it = programmes.find(c.id);
  if (it == programmes.end()) return declined(Code::not_found);
  MProgramme& p = it->second;
  if (p.closed) return declined(Code::programme_closed);
  if (x.today <= p.until) return declined(Code::programme_not_ended);
  const std::uint64_t seq_before = seq;
  std::vector<std::string> to_release;
  for (const auto& [expires_at, id] : pending) {
    if (holds.at(id).programme == p.id) to_release.push_back(id);
  }
  for (const auto& id : to_release) release(holds.at(id), holds.at(id).amount, HoldState::expired);
  Cents expired = 0;
  for (const auto& [ref, key] : p.beneficiaries) {
    MCard& card = cards.at(key);
    if (card.available > 0) {
      expired += card.available;
      card.available = 0;
      ++seq;
    }
    if (card.state != CardState::revoked) card.state = CardState::expired;
  }
  p.closed = true;
  p.expired += expired;
  Expect e = ok_at(x);
  e.id = p.id;
  e.amount = expired;
  e.status = "closed";
  e.ledger_seq = seq > seq_before ? seq : 0;  // Outcome: the last entry THIS command wrote
  return e;
}

std::string Model::broken_invariant() const {
  std::map<std::string, Cents> on_cards, held_by_programme, pending_by_programme, pending_by_card;
  std::map<std::string, Cents> payable_by_programme;
  for (const auto& [expires_at, id] : pending) {
    const MHold& h = holds.at(id);
    pending_by_programme[h.programme] += h.amount;
    pending_by_card[h.card] += h.amount;
  }
  for (const auto& [key, c] : cards) {
    if (c.available < 0 || c.held < 0) return "card " + key + " has a negative balance";
    if (c.held != pending_by_card[key])
      return "card " + key + " held differs from its pending holds";
    on_cards[c.programme] += c.available + c.held;
    held_by_programme[c.programme] += c.held;
  }
  for (const auto& [who, cents] : payable) {
    if (cents < 0) return "payable " + who.first + ":" + who.second + " is negative";
    payable_by_programme[who.second] += cents;
  }
  for (const auto& [id, p] : programmes) {
    if (p.issued > p.budget) return "programme " + id + " issued more than its budget";
    if (p.held != held_by_programme[id] || p.held != pending_by_programme[id]) {
      return "programme " + id + " held total differs from its cards and holds";
    }
    if (payable_by_programme[id] != p.redeemed - p.refunded) {
      return "programme " + id + " payable differs from redeemed - refunded";
    }
    Cents total = on_cards[id] + payable_by_programme[id] + p.expired + (p.budget - p.issued);
    if (total != p.budget) {
      return "programme " + id +
             ": cards + payable + expired + unissued = " + std::to_string(total) + ", budget " +
             std::to_string(p.budget);
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// The engine over a real RocksDB, and everything it borrows.

class Harness {
 public:
  explicit Harness(std::uint64_t seed) : random_(seed) { open(true); }
  ~Harness() { close(); }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void open(bool create) {
    auto store = buoni::storage::open_primary(
        dir_.path, buoni::storage::RocksOptions{.create_if_missing = create, .sync = true});
    REQUIRE_MESSAGE(store.ok(), store.status().to_string());
    store_ = std::move(store).value();
    auto engine = eng::Engine::open(*store_, key_, clock_, random_);
    REQUIRE_MESSAGE(engine.ok(), engine.status().to_string());
    engine_ = std::move(engine).value();
  }
  void close() {
    engine_.reset();  // finishes what is queued, joins the writer
    store_.reset();
  }
  eng::Engine& engine() { return *engine_; }
  const eng::Store& store() const { return *store_; }
  eng::ManualClock& clock() { return clock_; }
  std::vector<buoni::VerifyKey> verify_keys() const { return {{key_.key_id, key_.public_key}}; }

 private:
  TempDir dir_;
  buoni::SigningKey key_ = buoni::SigningKey::generate(1);
  eng::ManualClock clock_{kStartMs};
  buoni::SeededRandom random_;
  std::unique_ptr<buoni::storage::RocksStore> store_;
  std::unique_ptr<eng::Engine> engine_;
};

// Every key and value of the four spaces, and the chain head.
struct Snapshot {
  std::array<std::map<std::string, std::string>, eng::space_count> spaces;
  eng::ChainHead head;
};

Snapshot take_snapshot(const eng::Store& store) {
  Snapshot s;
  for (int i = 0; i < eng::space_count; ++i) {
    auto& rows = s.spaces[static_cast<std::size_t>(i)];
    buoni::Status status = store.scan(static_cast<eng::Space>(i), "", "",
                                      [&rows](std::string_view key, std::string_view value) {
                                        rows.emplace(key, value);
                                        return true;
                                      });
    REQUIRE_MESSAGE(status.ok(), status.to_string());
  }
  auto head = eng::read_head(store);
  REQUIRE_MESSAGE(head.ok(), head.status().to_string());
  s.head = *head;
  return s;
}

std::string snapshot_difference(const Snapshot& a, const Snapshot& b) {
  for (std::size_t i = 0; i < a.spaces.size(); ++i) {
    const auto& x = a.spaces[i];
    const auto& y = b.spaces[i];
    if (x == y) continue;
    std::string where = std::string("space ") + eng::space_name(static_cast<eng::Space>(i)) + ": " +
                        std::to_string(x.size()) + " keys before, " + std::to_string(y.size()) +
                        " after";
    for (const auto& [key, value] : x) {
      auto it = y.find(key);
      if (it == y.end() || it->second != value)
        return where + "; first difference at key " + buoni::to_hex(buoni::as_bytes(key));
    }
    return where;
  }
  if (a.head.seq != b.head.seq || a.head.hash != b.head.hash) {
    return "head seq " + std::to_string(a.head.seq) + " became " + std::to_string(b.head.seq);
  }
  return "";
}

// ---------------------------------------------------------------------------
// The driver: draws operations, runs them on the engine and the model, and
// compares.

struct Tally {
  std::uint64_t steps = 0, commands = 0, replays = 0, jumps = 0, bursts = 0, burst_commands = 0;
  std::uint64_t reopens = 0, generations = 0, full_checks = 0, largest_batch = 0, storms = 0;
  std::uint64_t pipelines = 0, pipeline_commands = 0;
  std::map<std::string, std::uint64_t> by_code;
};

struct CardPick {
  CardId id;
  std::string key;
};

struct HoldPick {
  std::string id, merchant;
};

template <typename T>
void differ(std::ostringstream& d, const char* name, const T& model, const T& engine) {
  if (model != engine) d << ' ' << name << ": model " << model << ", engine " << engine << ';';
}

using Answer = std::optional<buoni::StatusOr<eng::Result>>;

class Driver {
 public:
  Driver(Harness& harness, std::uint64_t seed) : h_(harness), seed_(seed), rng_(seed) {}

  void run(std::uint64_t steps, const std::set<std::uint64_t>& reopen_after);
  void check_engine();
  void reopen();
  // The tally, with the largest batch of every engine opened.
  [[nodiscard]] Tally tally() const {
    Tally t = tally_;
    t.largest_batch = std::max(t.largest_batch, h_.engine().stats().largest_batch);
    return t;
  }

 private:
  // Randomness
  std::int64_t below(std::int64_t n) {
    return static_cast<std::int64_t>(rng_() %
                                     static_cast<std::uint64_t>(std::max<std::int64_t>(n, 1)));
  }
  bool chance(int percent) { return below(100) < percent; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(below(static_cast<std::int64_t>(v.size())))];
  }

  TimeMs now() { return h_.clock().now_ms(); }
  std::string where();

  // Running and checking
  void step();
  void exec(const eng::Request& request);
  // in_burst: the ledger position of one answer depends on the order the
  // writer took the burst in; burst() checks the positions as a whole.
  void verify(const eng::Request& request, const eng::Result& result, bool in_burst = false);
  void check_burst_positions(const std::vector<Answer>& answers, std::uint64_t seq_before);
  void after_commands();
  eng::Request with_key(eng::Request request);
  std::string fresh_key() { return "k" + std::to_string(++keys_); }

  // Special steps
  void new_generation();
  bool generation_ended();
  void jump_clock();
  TimeMs near_hold_expiry(TimeMs t);
  void past_valid_until();
  void hold_storm();
  void pipeline(bool stop_engine_at_once);
  std::vector<eng::Request> pipeline_requests(std::size_t n);
  void replay();
  void conflict();
  void other_caller_same_key();
  void burst();
  std::vector<eng::Request> burst_requests(std::size_t n);
  std::optional<eng::Request> burst_request(const std::string& card, Day today,
                                            std::map<std::string, Cents>& loading);
  std::vector<Answer> submit_concurrently(const std::vector<eng::Request>& requests);

  // Commands
  eng::Request make_command();
  eng::Request make_redeem();
  eng::Request make_authorize();
  eng::Request make_capture();
  eng::Request make_void();
  eng::Request make_refund();
  eng::Request make_issue();
  eng::Request make_load();
  eng::Request make_block() { return admin_request(eng::BlockCard{pick_card().id}); }
  eng::Request make_unblock() { return admin_request(eng::UnblockCard{pick_card().id}); }
  eng::Request make_replace();
  eng::Request make_unlock_pin() { return admin_request(eng::UnlockPin{pick_card().id}); }
  eng::Request make_close();
  eng::Request make_wrong_caller();
  eng::Request make_malformed();
  eng::Request make_bad_programme();
  eng::Request make_bad_merchant();

  // Choices
  std::vector<std::string> live_cards() const;
  CardPick pick_card();
  CardPick unknown_card();
  std::string programme_of(const std::string& card) const;
  std::vector<std::string> merchants_for(const std::string& programme) const;
  std::string pick_merchant_for(const std::string& programme);
  std::string any_merchant() {
    return model_.merchant_order.empty() ? "ghost" : pick(model_.merchant_order);
  }
  HoldPick pick_hold();
  Cents spend_amount(const std::string& card);
  Cents capture_amount(const std::string& hold);
  Cents refund_amount(const MRedemption& r);
  Cents bad_amount();
  std::string reference();
  std::int64_t expires_in();
  Pin random_pin() {
    buoni::Hash32 h;
    for (auto& b : h) b = static_cast<std::uint8_t>(rng_());
    return h;
  }
  static Pin right_pin(const MCard& card) { return card.has_pin ? Pin(card.pin) : Pin(); }
  Pin presented_pin(const std::string& card);
  Pin new_pin(const std::string& programme);

  // Comparing with the engine's stored state
  void compare_card(const MCard& m);
  void compare_programme(const MProgramme& m);
  void compare_hold(const MHold& m);
  void compare_redemption(const MRedemption& m);
  void compare_merchant(const MMerchant& m);
  void compare_head();
  void run_audit();
  void report(const std::ostringstream& d, const std::string& what);

  Harness& h_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  Model model_;
  Tally tally_;
  std::vector<std::string> generation_;  // programmes of the newest generation
  std::vector<eng::Request> keyed_;      // requests whose outcome an idempotency key holds
  std::uint64_t keys_ = 0;
  std::uint64_t since_check_ = 0;
  std::uint64_t seq_before_batch_ = 0, seq_after_sweep_ = 0;  // for failure messages
};

std::string Driver::where() {
  return "BUONI_SEED=" + std::to_string(seed_) + " step " + std::to_string(tally_.steps) +
         " command " + std::to_string(tally_.commands + 1) + " at " + eng::format_time(now());
}

void Driver::run(std::uint64_t steps, const std::set<std::uint64_t>& reopen_after) {
  new_generation();
  for (std::uint64_t i = 0; i < steps; ++i) {
    step();
    if (i == steps / 2) hold_storm();
    if (reopen_after.count(i)) reopen();
  }
  check_engine();
}

void Driver::step() {
  ++tally_.steps;
  if (generation_ended()) new_generation();
  const std::int64_t r = below(1000);
  if (r < 50) return jump_clock();
  if (r < 60) return burst();
  if (r < 70) return pipeline(false);
  if (r < 110) return replay();
  if (r < 125) return conflict();
  if (r < 130) return other_caller_same_key();
  exec(with_key(make_command()));
}

void Driver::exec(const eng::Request& request) {
  seq_before_batch_ = model_.seq;
  model_.sweep(now());
  seq_after_sweep_ = model_.seq;
  auto result = h_.engine().execute(request);
  REQUIRE_MESSAGE(result.ok(),
                  where() << ": " << describe(request) << ": " << result.status().to_string());
  verify(request, *result);
  after_commands();
}

void Driver::verify(const eng::Request& request, const eng::Result& result, bool in_burst) {
  Expect e = model_.apply(request, now(), result.outcome);
  if (in_burst && !e.replay) e.ledger_seq.reset();
  const std::string diff = mismatch(e, result);
  if (!diff.empty()) {
    FAIL(where() << ": " << describe(request) << " ->" << diff << " (the ledger had "
                 << seq_before_batch_ << " entries before this batch, " << seq_after_sweep_
                 << " after the writer's hold-expiry sweep)");
  }
  if (e.recorded) keyed_.push_back(request);
  ++tally_.commands;
  if (result.replayed) ++tally_.replays;
  ++tally_.by_code[std::string(eng::code_name(result.outcome.code))];
  const std::string broken = model_.broken_invariant();
  if (!broken.empty()) FAIL(where() << ": after " << describe(request) << ": " << broken);
}

void Driver::after_commands() {
  const std::uint64_t head = h_.engine().head().seq;
  if (head != model_.seq) {
    FAIL(where() << ": engine head is at seq " << head << ", the model wrote " << model_.seq
                 << " entries");
  }
  if (++since_check_ >= kCheckEvery) {
    since_check_ = 0;
    check_engine();
  }
}

eng::Request Driver::with_key(eng::Request request) {
  const std::int64_t r = below(100);
  if (r < 60) request.idempotency_key = fresh_key();
  if (r == 60) request.idempotency_key = "bad key";
  if (r == 61) request.idempotency_key = std::string(limits::idempotency_key_length_max + 1, 'k');
  return request;
}

// Three programmes (one with per-redemption and daily limits, one starting
// tomorrow) and four shops taking different ones.
void Driver::new_generation() {
  const std::string prefix = "g" + std::to_string(tally_.generations++) + "-";
  const Day today = day_at(now());
  struct Plan {
    const char* name;
    Cents budget;
    Day from, until;
    Cents max_redemption, daily_limit;
    bool require_pin;
  };
  const Plan plans[] = {{"food", 400'000, today, today + 6, 0, 0, false},
                        {"baby", 60'000, today + 1, today + 10, 0, 0, false},
                        {"energy", 300'000, today, today + 8, 5'000, 8'000, false},
                        {"pin", 150'000, today, today + 7, 0, 0, true}};
  generation_.clear();
  for (const Plan& p : plans) {
    eng::CreateProgramme c;
    c.id = prefix + p.name;
    c.name = std::string("Buoni ") + p.name;
    c.budget_cents = p.budget;
    c.valid_from_day = p.from;
    c.valid_until_day = p.until;
    c.require_pin = p.require_pin;
    c.max_redemption_cents = p.max_redemption;
    c.daily_limit_cents = p.daily_limit;
    exec({eng::Caller::admin(), chance(50) ? fresh_key() : "", c});
    REQUIRE(model_.programmes.count(c.id));
    generation_.push_back(c.id);
  }
  const std::vector<std::vector<int>> shops = {{0, 1, 3}, {0}, {2, 1}, {0, 1, 2, 3}};
  for (std::size_t i = 0; i < shops.size(); ++i) {
    eng::AddMerchant m{prefix + "m" + std::to_string(i + 1),
                       "Bottega " + std::to_string(i + 1),
                       (i % 2 ? "IT" : "") + make_vat(tally_.generations * 10 + i),
                       {},
                       {}};
    for (int p : shops[i]) m.programmes.push_back(generation_[static_cast<std::size_t>(p)]);
    for (auto& b : m.api_key_hash) b = static_cast<std::uint8_t>(rng_());
    exec({eng::Caller::admin(), chance(50) ? fresh_key() : "", m});
    REQUIRE(model_.merchants.count(m.id));
  }
}

bool Driver::generation_ended() {
  const Day today = day_at(now());
  return std::all_of(generation_.begin(), generation_.end(),
                     [&](const std::string& id) { return today > model_.programmes.at(id).until; });
}

void Driver::jump_clock() {
  ++tally_.jumps;
  const TimeMs t = now();
  const std::int64_t r = below(100);
  TimeMs to = t + kHourMs;
  if (r < 35) {
    to = t + (1 + below(30)) * kMinuteMs;
  } else if (r < 65) {
    to = t + (1 + below(8)) * kHourMs;
  } else if (r < 80) {
    to = near_hold_expiry(t);
  } else if (r < 90) {
    to = (day_at(t) + 1) * kDayMs - (chance(50) ? 1 : 0);  // midnight, or the last ms before
  } else if (r < 95) {
    to = t + (1 + below(2)) * kDayMs;
  } else {
    return past_valid_until();
  }
  h_.clock().set(std::max(to, t + 1));
}

// To the earliest pending hold's expiry: exactly, a millisecond before, or a bit after.
TimeMs Driver::near_hold_expiry(TimeMs t) {
  if (model_.pending.empty()) return t + kHourMs;
  const TimeMs expires_at = model_.pending.begin()->first;
  const std::int64_t r = below(10);
  if (r < 4) return expires_at;
  if (r < 7) return expires_at - 1;
  return expires_at + below(kHourMs);
}

// Past the last day of an open programme, and sometimes close it at once.
void Driver::past_valid_until() {
  const TimeMs t = now();
  std::vector<std::string> open;
  for (const auto& id : model_.programme_order) {
    const MProgramme& p = model_.programmes.at(id);
    if (!p.closed && p.until >= day_at(t)) open.push_back(id);
  }
  if (open.empty()) return h_.clock().set(t + kDayMs);
  const std::string id = pick(open);
  const TimeMs to = (model_.programmes.at(id).until + 1) * TimeMs{kDayMs} + below(6) * kHourMs;
  h_.clock().set(std::max(to, t + 1));
  if (chance(50)) exec(with_key(admin_request(eng::CloseProgramme{id})));
}

// More holds lapse at once than one batch's sweep expires, so a capture finds
// its hold lapsed but not yet swept: released then, and answered hold_expired.
void Driver::hold_storm() {
  const Day today = day_at(now());
  std::vector<std::pair<std::string, std::string>> targets;  // (card, merchant)
  for (const auto& card : live_cards()) {
    std::vector<std::string> shops = merchants_for(model_.cards.at(card).programme);
    if (!shops.empty()) targets.emplace_back(card, shops[0]);
  }
  if (targets.empty()) return;
  const auto n = static_cast<std::size_t>(limits::hold_expiries_per_batch_max + 10 + below(40));
  std::size_t placed = 0;
  for (std::size_t attempt = 0; placed < n && attempt < 3 * n; ++attempt) {
    const auto& [card, merchant] = targets[attempt % targets.size()];
    const MCard& c = model_.cards.at(card);
    const Pin pin = right_pin(c);
    if (model_.spend_code(eng::Caller::merchant(merchant), card, 1, pin, today) != Code::ok)
      continue;
    exec(merchant_request(merchant, authorize(c.id, 1, "storm", 60, pin)));
    ++placed;
  }
  h_.clock().advance(2 * kMinuteMs);
  if (model_.lapsed(now()) <= limits::hold_expiries_per_batch_max)
    return;  // too little money about
  ++tally_.storms;
  const MHold last = model_.holds.at(std::prev(model_.pending.end())->second);
  exec(merchant_request(last.merchant, eng::Capture{last.id, 1}));  // lapsed, not swept
  exec(merchant_request(last.merchant, eng::Void{last.id}));        // expired now
}

// Requests queued one after another from this thread without waiting: the
// writer takes them in that order, several to a batch, so every answer is
// predictable although later requests of a batch see the earlier ones'
// effects, and a key may be reused within one batch. With
// stop_engine_at_once, the engine and store close while requests are still
// queued (stop finishes them) and open again.
void Driver::pipeline(bool stop_engine_at_once) {
  const TimeMs t = now();
  if (model_.lapsed(t) > limits::hold_expiries_per_batch_max / 2) return jump_clock();
  const std::vector<eng::Request> requests =
      pipeline_requests(static_cast<std::size_t>(8 + below(33)));
  ++tally_.pipelines;
  tally_.pipeline_commands += requests.size();
  seq_before_batch_ = model_.seq;
  model_.sweep(t);  // the first batch sweeps; the clock stands, so later ones find nothing
  seq_after_sweep_ = model_.seq;
  std::vector<Answer> answers(requests.size());
  std::latch done(static_cast<std::ptrdiff_t>(requests.size()));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    h_.engine().submit(requests[i], [&answers, &done, i](buoni::StatusOr<eng::Result> r) {
      answers[i] = std::move(r);
      done.count_down();
    });
  }
  if (stop_engine_at_once) {
    tally_.largest_batch = std::max(tally_.largest_batch, h_.engine().stats().largest_batch);
    h_.close();
    h_.open(false);
  }
  done.wait();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    REQUIRE_MESSAGE(answers[i]->ok(), where() << ": " << describe(requests[i]) << ": "
                                              << answers[i]->status().to_string());
    verify(requests[i], answers[i]->value());
  }
  after_commands();
}

std::vector<eng::Request> Driver::pipeline_requests(std::size_t n) {
  std::vector<eng::Request> out;
  while (out.size() < n) {
    const std::int64_t r = below(100);
    if (r < 10 && !out.empty()) {
      out.push_back(pick(out));  // again, maybe in the same batch
    } else if (r < 14 && !out.empty() && !out.back().idempotency_key.empty()) {
      eng::Request reuse = out.back();
      reuse.command = std::visit(Change{}, reuse.command);
      out.push_back(std::move(reuse));
    } else {
      out.push_back(with_key(make_command()));
    }
  }
  return out;
}

void Driver::replay() {
  if (keyed_.empty()) return exec(with_key(make_command()));
  eng::Request again = pick(keyed_);  // same caller, key and command
  // A retry makes new secrets; they are no part of the request.
  if (auto* add = std::get_if<eng::AddMerchant>(&again.command); add && chance(50)) {
    add->api_key_hash = *random_pin();
  }
  if (auto* c = std::get_if<eng::IssueCard>(&again.command); c && c->pin_hash && chance(50)) {
    c->pin_hash = random_pin();
  }
  if (auto* c = std::get_if<eng::ReplaceCard>(&again.command); c && c->pin_hash && chance(50)) {
    c->pin_hash = random_pin();
  }
  exec(again);
}

void Driver::conflict() {
  if (keyed_.empty()) return exec(with_key(make_command()));
  eng::Request reuse = pick(keyed_);
  reuse.command = std::visit(Change{}, reuse.command);
  exec(reuse);
}

// A key another caller used means nothing to this one.
void Driver::other_caller_same_key() {
  if (keyed_.empty()) return exec(with_key(make_command()));
  const eng::Request used = pick(keyed_);
  eng::Request fresh = make_command();
  if (caller_text(fresh.caller) != caller_text(used.caller)) {
    fresh.idempotency_key = used.idempotency_key;
  }
  exec(fresh);
}

// A burst of requests whose results do not depend on their order (each card
// at most once, each well within its balance and limits; loads within the
// budget; replays and conflicts of keys used before), submitted from four
// threads at once so the writer batches them.
void Driver::burst() {
  const TimeMs t = now();
  if (model_.lapsed(t) > limits::hold_expiries_per_batch_max / 2) return jump_clock();
  std::vector<eng::Request> requests = burst_requests(static_cast<std::size_t>(16 + below(49)));
  if (requests.size() < 8) return exec(with_key(make_command()));
  ++tally_.bursts;
  tally_.burst_commands += requests.size();
  seq_before_batch_ = model_.seq;
  model_.sweep(t);  // the first batch of the burst sweeps; later ones find nothing lapsed
  const std::uint64_t seq_before = model_.seq;
  seq_after_sweep_ = seq_before;
  std::vector<Answer> answers = submit_concurrently(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    REQUIRE_MESSAGE(answers[i].has_value(), where() << ": burst request " << i << " unanswered");
    REQUIRE_MESSAGE(answers[i]->ok(), where() << ": " << describe(requests[i]) << ": "
                                              << answers[i]->status().to_string());
    verify(requests[i], answers[i]->value(), true);
  }
  check_burst_positions(answers, seq_before);
  after_commands();
}

// Each new entry of a burst belongs to one answer: distinct seqs, all after
// the burst began and none past its end.
void Driver::check_burst_positions(const std::vector<Answer>& answers, std::uint64_t seq_before) {
  std::set<std::uint64_t> seen;
  for (const Answer& a : answers) {
    const eng::Result& r = a->value();
    if (r.replayed || r.outcome.code != Code::ok) continue;
    const std::uint64_t seq = r.outcome.ledger_seq;
    if (seq <= seq_before || seq > model_.seq || !seen.insert(seq).second) {
      FAIL(where() << ": burst answer at ledger seq " << seq << " is outside (" << seq_before
                   << ", " << model_.seq << "] or repeated: " << outcome_text(r.outcome));
    }
  }
}

std::vector<eng::Request> Driver::burst_requests(std::size_t n) {
  std::vector<std::string> cards = live_cards();
  std::shuffle(cards.begin(), cards.end(), rng_);
  std::map<std::string, Cents> loading;  // programme -> loaded in this burst
  std::vector<eng::Request> out;
  const Day today = day_at(now());
  for (const std::string& card : cards) {
    if (out.size() >= n) break;
    if (auto r = burst_request(card, today, loading)) {
      if (chance(50)) r->idempotency_key = fresh_key();
      out.push_back(std::move(*r));
    }
  }
  for (std::size_t i = 0; i < n / 8 && !keyed_.empty(); ++i) out.push_back(pick(keyed_));
  for (std::size_t i = 0; i < n / 16 && !keyed_.empty(); ++i) {
    eng::Request reuse = pick(keyed_);
    reuse.command = std::visit(Change{}, reuse.command);
    out.push_back(std::move(reuse));
  }
  std::shuffle(out.begin(), out.end(), rng_);
  return out;
}

std::optional<eng::Request> Driver::burst_request(const std::string& card, Day today,
                                                  std::map<std::string, Cents>& loading) {
  const MCard& c = model_.cards.at(card);
  const MProgramme& p = model_.programmes.at(c.programme);
  const std::int64_t r = below(100);
  if (r < 75) {
    std::vector<std::string> shops = merchants_for(c.programme);
    if (shops.empty()) return std::nullopt;
    const std::string merchant = pick(shops);
    Cents cap = std::min<Cents>(c.available, 2'000);
    if (p.max_redemption > 0) cap = std::min(cap, p.max_redemption);
    if (p.daily_limit > 0) cap = std::min(cap, p.daily_limit - spent_on(c, today));
    if (cap <= 0) return std::nullopt;
    const Cents amount = 1 + below(cap);
    const Pin pin = right_pin(c);
    if (model_.spend_code(eng::Caller::merchant(merchant), card, amount, pin, today) != Code::ok) {
      return std::nullopt;
    }
    if (r < 55) return merchant_request(merchant, redeem(c.id, amount, "burst", pin));
    return merchant_request(merchant, authorize(c.id, amount, "burst", 3600 + below(86'400), pin));
  }
  const Cents amount = 100 + below(4'901);
  if (model_.load_code(card, amount, today) != Code::ok) return std::nullopt;
  if (p.issued + loading[p.id] + amount > p.budget) return std::nullopt;
  loading[p.id] += amount;
  return admin_request(eng::LoadCard{c.id, amount});
}

std::vector<Answer> Driver::submit_concurrently(const std::vector<eng::Request>& requests) {
  constexpr std::size_t kThreads = 4;
  const std::size_t n = requests.size();
  std::vector<Answer> answers(n);
  std::latch start(kThreads);
  std::latch done(static_cast<std::ptrdiff_t>(n));
  eng::Engine& engine = h_.engine();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (std::size_t i = t; i < n; i += kThreads) {
        engine.submit(requests[i], [&answers, &done, i](buoni::StatusOr<eng::Result> r) {
          answers[i] = std::move(r);
          done.count_down();
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done.wait();
  return answers;
}

eng::Request Driver::make_command() {
  using Maker = eng::Request (Driver::*)();
  struct Weighted {
    std::int64_t weight;
    Maker make;
  };
  static constexpr Weighted table[] = {
      {220, &Driver::make_redeem},   {140, &Driver::make_authorize},
      {120, &Driver::make_capture},  {50, &Driver::make_void},
      {70, &Driver::make_refund},    {80, &Driver::make_issue},
      {50, &Driver::make_load},      {15, &Driver::make_block},
      {15, &Driver::make_unblock},   {15, &Driver::make_replace},
      {10, &Driver::make_close},     {10, &Driver::make_wrong_caller},
      {20, &Driver::make_malformed}, {10, &Driver::make_unlock_pin}};
  std::int64_t total = 0;
  for (const auto& w : table) total += w.weight;
  std::int64_t r = below(total);
  for (const auto& w : table) {
    if (r < w.weight) return (this->*w.make)();
    r -= w.weight;
  }
  return make_redeem();
}

eng::Request Driver::make_redeem() {
  const CardPick card = pick_card();
  const std::string merchant = pick_merchant_for(programme_of(card.key));
  const Cents amount = spend_amount(card.key);
  const std::string ref = reference();
  return merchant_request(merchant, redeem(card.id, amount, ref, presented_pin(card.key)));
}

eng::Request Driver::make_authorize() {
  const CardPick card = pick_card();
  const std::string merchant = pick_merchant_for(programme_of(card.key));
  const Cents amount = spend_amount(card.key);
  const std::string ref = reference();
  const std::int64_t expires_in_s = expires_in();
  return merchant_request(merchant,
                          authorize(card.id, amount, ref, expires_in_s, presented_pin(card.key)));
}

eng::Request Driver::make_capture() {
  if (model_.pending.empty() && chance(80)) return make_authorize();
  const HoldPick hold = pick_hold();
  return merchant_request(hold.merchant, eng::Capture{hold.id, capture_amount(hold.id)});
}

eng::Request Driver::make_void() {
  if (model_.pending.empty() && chance(80)) return make_authorize();
  const HoldPick hold = pick_hold();
  return merchant_request(hold.merchant, eng::Void{hold.id});
}

eng::Request Driver::make_refund() {
  if (model_.redemption_order.empty() || chance(3)) {
    return merchant_request(any_merchant(), eng::RefundRedemption{"rd_" + unknown_card().key, 100});
  }
  const MRedemption& r = model_.redemptions.at(pick(model_.redemption_order));
  const std::string merchant = chance(95) ? r.merchant : any_merchant();
  return merchant_request(merchant, eng::RefundRedemption{r.id, refund_amount(r)});
}

eng::Request Driver::make_issue() {
  const std::int64_t r = below(100);
  std::string programme = "no-such-programme";
  if (r < 90) {
    programme = pick(generation_);
  } else if (r < 98) {
    programme = pick(model_.programme_order);
  }
  const std::string ref = chance(2) ? "" : "b" + std::to_string(below(40));
  const std::int64_t a = below(100);
  Cents amount = 500 + below(19'501);
  if (a < 5)
    amount = 0;
  else if (a < 8)
    amount = a == 5 ? -1 : limits::amount_cents_max + 1;
  else if (a < 12)
    amount = 5'000'000;
  return admin_request(issue(programme, ref, amount, new_pin(programme)));
}

eng::Request Driver::make_load() {
  const CardPick card = pick_card();
  const std::int64_t a = below(100);
  Cents amount = 100 + below(9'901);
  if (a < 4)
    amount = bad_amount();
  else if (a < 9)
    amount = 5'000'000;
  return admin_request(eng::LoadCard{card.id, amount});
}

eng::Request Driver::make_close() {
  const Day today = day_at(now());
  std::vector<std::string> ended;
  for (const auto& id : model_.programme_order) {
    const MProgramme& p = model_.programmes.at(id);
    if (!p.closed && today > p.until) ended.push_back(id);
  }
  const std::int64_t r = below(100);
  std::string id = "no-such-programme";
  if (r < 70 && !ended.empty()) {
    id = pick(ended);
  } else if (r < 96) {
    id = pick(model_.programme_order);
  }
  return admin_request(eng::CloseProgramme{id});
}

// Money commands from the admin, admin commands from a shop, an unknown shop.
eng::Request Driver::make_wrong_caller() {
  const CardPick card = pick_card();
  switch (below(8)) {
    case 0:
      return admin_request(redeem(card.id, 100, ""));
    case 1:
      return admin_request(eng::Capture{pick_hold().id, 100});
    case 2:
      return merchant_request(any_merchant(), eng::LoadCard{card.id, 100});
    case 3:
      return merchant_request(any_merchant(), issue(pick(generation_), "b1", 100));
    case 4:
      return merchant_request("ghost", redeem(card.id, 100, ""));
    case 5:
      return admin_request(eng::Void{pick_hold().id});
    case 6:
      return merchant_request(any_merchant(), eng::CloseProgramme{pick(generation_)});
    default:
      return merchant_request(any_merchant(), replace(card.id));
  }
}

eng::Request Driver::make_malformed() {
  const CardPick card = pick_card();
  const std::string merchant = pick_merchant_for(programme_of(card.key));
  switch (below(6)) {
    case 0:
      return make_bad_programme();
    case 1:
      return make_bad_merchant();
    case 2:
      return merchant_request(merchant, redeem(card.id, 100, std::string(129, 'r')));
    case 3:
      return merchant_request(merchant, authorize(card.id, 100, "", -5));
    case 4:
      return admin_request(issue(pick(generation_), std::string(65, 'b'), 100));
    default:
      return merchant_request(merchant, eng::Capture{"", 100});
  }
}

eng::Request Driver::make_bad_programme() {
  const Day today = day_at(now());
  eng::CreateProgramme c{
      "x" + std::to_string(keys_), "Doppio", 1'000, today, today + 5, false, 0, 0};
  switch (below(6)) {
    case 0:
      c.id = pick(model_.programme_order);
      break;  // exists
    case 1:
      c.id = "bad id";
      break;
    case 2:
      c.valid_until_day = today + limits::programme_days_max + 1;
      break;
    case 3:
      c.valid_until_day = today - 1;
      break;
    case 4:
      c.budget_cents = 0;
      break;
    default:
      c.daily_limit_cents = -1;
      break;
  }
  return admin_request(c);
}

eng::Request Driver::make_bad_merchant() {
  eng::AddMerchant m{
      "x" + std::to_string(keys_), "Bottega", make_vat(4242), {pick(generation_)}, {}};
  for (auto& b : m.api_key_hash) b = static_cast<std::uint8_t>(rng_());
  switch (below(5)) {
    case 4:  // another shop's key
      if (!model_.merchant_keys.empty()) m.api_key_hash = *model_.merchant_keys.begin();
      break;
    case 0:
      m.id = any_merchant();
      break;  // exists (or "ghost" before any shop)
    case 1:
      m.programmes.push_back("no-such-programme");
      break;
    case 2:
      m.programmes.clear();
      break;
    default:
      m.vat_number.back() = m.vat_number.back() == '0' ? '1' : '0';
      break;
  }
  return admin_request(m);
}

std::vector<std::string> Driver::live_cards() const {
  std::vector<std::string> out;
  for (const auto& id : generation_) {
    const MProgramme& p = model_.programmes.at(id);
    if (p.closed) continue;
    for (const auto& [ref, key] : p.beneficiaries) out.push_back(key);
  }
  return out;
}

// Mostly a card in use in the newest programmes; sometimes any card ever made
// (replaced, expired); now and then one that does not exist.
CardPick Driver::pick_card() {
  const std::int64_t r = below(100);
  if (r < 85) {
    std::vector<std::string> live = live_cards();
    if (!live.empty()) {
      const MCard& c = model_.cards.at(pick(live));
      return {c.id, c.key};
    }
  }
  if (r < 95 && !model_.card_order.empty()) {
    const MCard& c = model_.cards.at(pick(model_.card_order));
    return {c.id, c.key};
  }
  return unknown_card();
}

CardPick Driver::unknown_card() {
  CardId id;
  for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng_());
  return {id, card_text(id)};
}

std::string Driver::programme_of(const std::string& card) const {
  auto it = model_.cards.find(card);
  return it == model_.cards.end() ? "" : it->second.programme;
}

std::vector<std::string> Driver::merchants_for(const std::string& programme) const {
  std::vector<std::string> out;
  for (const auto& id : model_.merchant_order) {
    if (model_.merchants.at(id).programmes.count(programme)) out.push_back(id);
  }
  return out;
}

std::string Driver::pick_merchant_for(const std::string& programme) {
  const std::int64_t r = below(100);
  if (r < 2) return "ghost";
  if (r < 88) {
    std::vector<std::string> shops = merchants_for(programme);
    if (!shops.empty()) return pick(shops);
  }
  return any_merchant();
}

// Mostly a pending hold by its own shop; sometimes a settled one, another
// shop's, or one that does not exist.
HoldPick Driver::pick_hold() {
  const std::int64_t r = below(100);
  if (r < 70 && !model_.pending.empty()) {
    auto it = model_.pending.begin();
    std::advance(it, below(static_cast<std::int64_t>(model_.pending.size())));
    const MHold& h = model_.holds.at(it->second);
    return {h.id, h.merchant};
  }
  if (r < 96 && !model_.hold_order.empty()) {
    const MHold& h = model_.holds.at(pick(model_.hold_order));
    return {h.id, r < 92 ? h.merchant : any_merchant()};
  }
  return {"au_" + unknown_card().key, any_merchant()};
}

Cents Driver::spend_amount(const std::string& card) {
  auto it = model_.cards.find(card);
  const Cents available = it == model_.cards.end() ? 0 : it->second.available;
  const MProgramme* p =
      it == model_.cards.end() ? nullptr : &model_.programmes.at(it->second.programme);
  const std::int64_t r = below(100);
  if (r < 4) return bad_amount();
  if (r < 14 && available > 0) return available;    // all of it
  if (r < 22) return available + 1 + below(1'000);  // a cent or more too much
  if (r < 27 && p && p->max_redemption > 0) return p->max_redemption + (r % 2);
  if (r < 37 && p && p->daily_limit > 0) {  // right at what is left today, or a cent over
    Cents left = p->daily_limit - spent_on(it->second, day_at(now()));
    if (p->max_redemption > 0) left = std::min(left, p->max_redemption);
    if (left + (r % 2) > 0) return left + (r % 2);
  }
  return 1 + below(std::clamp<Cents>(available, 1, 3'000));
}

Cents Driver::capture_amount(const std::string& hold) {
  auto it = model_.holds.find(hold);
  const Cents held = it == model_.holds.end() ? 1'000 : it->second.amount;
  const std::int64_t r = below(100);
  if (r < 4) return bad_amount();
  if (r < 44) return held;
  if (r < 88) return 1 + below(held);
  return held + 1 + below(500);
}

Cents Driver::refund_amount(const MRedemption& r) {
  const Cents left = r.amount - r.refunded;
  const std::int64_t x = below(100);
  if (x < 4) return bad_amount();
  if (x < 40) return std::max<Cents>(left, 1);
  if (x < 80) return 1 + below(std::max<Cents>(left, 1));
  return left + 1 + below(300);
}

Cents Driver::bad_amount() {
  static constexpr Cents bad[] = {0, -1, -500, limits::amount_cents_max + 1};
  return bad[below(4)];
}

std::string Driver::reference() {
  const std::int64_t r = below(100);
  if (r < 1) return std::string("bad") + '\x01' + "ref";
  if (r < 2) return std::string(limits::reference_length_max + 1, 'r');
  if (r < 30) return "";
  return "ord-" + std::to_string(below(100'000));
}

// Mostly the right PIN of a card that has one; sometimes a wrong one or none.
Pin Driver::presented_pin(const std::string& card) {
  auto it = model_.cards.find(card);
  if (it == model_.cards.end() || !it->second.has_pin) return chance(5) ? random_pin() : Pin();
  const std::int64_t r = below(100);
  if (it->second.pin_failures > 0 && r < 50) return random_pin();  // someone guessing on
  if (r < 78) return right_pin(it->second);
  if (r < 93) return random_pin();
  return Pin();
}

// A new card's PIN: one when the programme wants it, now and then the wrong kind.
Pin Driver::new_pin(const std::string& programme) {
  auto it = model_.programmes.find(programme);
  bool wants = it != model_.programmes.end() && it->second.require_pin;
  if (chance(4)) wants = !wants;
  return wants ? random_pin() : Pin();
}

eng::Request Driver::make_replace() {
  const CardPick card = pick_card();
  return admin_request(replace(card.id, new_pin(programme_of(card.key))));
}

std::int64_t Driver::expires_in() {
  const std::int64_t r = below(100);
  if (r < 1) return -1;
  if (r < 3) return limits::hold_expires_in_s_max + 1;
  if (r < 20) return 0;  // the default, three days
  if (r < 55) return 60 + below(3'600);
  if (r < 90) return 3'600 + below(24 * 3'600);
  return limits::hold_expires_in_s_max - below(3'600);
}

// ---------------------------------------------------------------------------
// Full comparison with stored state, and the audit

void Driver::report(const std::ostringstream& d, const std::string& what) {
  if (!d.str().empty()) FAIL(where() << ": " << what << " differs:" << d.str());
}

void Driver::compare_card(const MCard& m) {
  auto found = eng::find_card(h_.store(), m.id);
  REQUIRE_MESSAGE(found.ok(), found.status().to_string());
  if (!found->has_value()) FAIL(where() << ": card " << m.key << " is not in the store");
  const eng::Card& c = **found;
  std::ostringstream d;
  differ(d, "available", m.available, c.available_cents);
  differ(d, "held", m.held, c.held_cents);
  differ(d, "issued", m.issued, c.issued_cents);
  differ(d, "status", state_name(m.state), std::string(eng::card_status_name(c.status)));
  differ(d, "programme", m.programme, c.programme);
  differ(d, "beneficiary", m.ref, c.beneficiary_ref);
  differ(d, "replaced_by", m.replaced_by,
         c.has_replacement ? card_text(c.replaced_by) : std::string());
  differ(d, "spent_day", m.spent_day, c.spent_day);
  differ(d, "spent_today", m.spent_today, c.spent_today_cents);
  differ(d, "has_pin", m.has_pin, c.has_pin);
  differ(d, "pin_hash", buoni::to_hex(m.pin), buoni::to_hex(c.pin_hash));
  differ(d, "pin_failures", m.pin_failures, static_cast<int>(c.pin_failures));
  report(d, "card " + m.key);
}

void Driver::compare_programme(const MProgramme& m) {
  auto found = eng::find_programme(h_.store(), m.id);
  REQUIRE_MESSAGE(found.ok(), found.status().to_string());
  if (!found->has_value()) FAIL(where() << ": programme " << m.id << " is not in the store");
  const eng::Programme& p = **found;
  std::ostringstream d;
  differ(d, "budget", m.budget, p.budget_cents);
  differ(d, "issued", m.issued, p.issued_cents);
  differ(d, "redeemed", m.redeemed, p.redeemed_cents);
  differ(d, "refunded", m.refunded, p.refunded_cents);
  differ(d, "held", m.held, p.held_cents);
  differ(d, "expired", m.expired, p.expired_cents);
  differ(d, "card_count", m.card_count, p.card_count);
  differ(d, "closed", m.closed, p.status == eng::ProgrammeStatus::closed);
  differ(d, "valid_from", m.from, p.valid_from_day);
  differ(d, "valid_until", m.until, p.valid_until_day);
  differ(d, "max_redemption", m.max_redemption, p.max_redemption_cents);
  differ(d, "daily_limit", m.daily_limit, p.daily_limit_cents);
  differ(d, "require_pin", m.require_pin, p.require_pin);
  report(d, "programme " + m.id);
}

void Driver::compare_hold(const MHold& m) {
  auto found = eng::find_hold(h_.store(), m.id);
  REQUIRE_MESSAGE(found.ok(), found.status().to_string());
  if (!found->has_value()) FAIL(where() << ": hold " << m.id << " is not in the store");
  const eng::Hold& h = **found;
  std::ostringstream d;
  differ(d, "status", state_name(m.state), std::string(eng::hold_status_name(h.status)));
  differ(d, "amount", m.amount, h.amount_cents);
  differ(d, "captured", m.captured, h.captured_cents);
  differ(d, "expires_at", m.expires_at, h.expires_at_ms);
  differ(d, "card", m.card, card_text(h.card));
  differ(d, "merchant", m.merchant, h.merchant);
  report(d, "hold " + m.id);
}

void Driver::compare_redemption(const MRedemption& m) {
  auto found = eng::find_redemption(h_.store(), m.id);
  REQUIRE_MESSAGE(found.ok(), found.status().to_string());
  if (!found->has_value()) FAIL(where() << ": redemption " << m.id << " is not in the store");
  const eng::Redemption& r = **found;
  std::ostringstream d;
  differ(d, "amount", m.amount, r.amount_cents);
  differ(d, "refunded", m.refunded, r.refunded_cents);
  differ(d, "card", m.card, card_text(r.card));
  differ(d, "merchant", m.merchant, r.merchant);
  differ(d, "programme", m.programme, r.programme);
  report(d, "redemption " + m.id);
}

void Driver::compare_merchant(const MMerchant& m) {
  auto found = eng::find_merchant(h_.store(), m.id);
  REQUIRE_MESSAGE(found.ok(), found.status().to_string());
  if (!found->has_value()) FAIL(where() << ": merchant " << m.id << " is not in the store");
  const std::vector<std::string> want(m.programmes.begin(), m.programmes.end());
  if (want != (*found)->programmes) FAIL(where() << ": merchant " << m.id << " programmes differ");
}

void Driver::compare_head() {
  auto stored = eng::read_head(h_.store());
  REQUIRE_MESSAGE(stored.ok(), stored.status().to_string());
  const eng::ChainHead live = h_.engine().head();
  if (stored->seq != live.seq || stored->hash != live.hash || live.seq != model_.seq) {
    FAIL(where() << ": heads differ: stored seq " << stored->seq << ", engine " << live.seq
                 << ", model " << model_.seq);
  }
}

void Driver::run_audit() {
  auto audit = eng::audit(h_.store(), h_.verify_keys());
  REQUIRE_MESSAGE(audit.ok(), audit.status().to_string());
  if (!audit->clean()) {
    std::string text;
    for (std::size_t i = 0; i < audit->findings.size() && i < 10; ++i) {
      text += "\n  " + audit->findings[i].to_string();
    }
    FAIL(where() << ": audit found " << audit->findings.size() << " problems:" << text);
  }
  CHECK_MESSAGE(audit->entries == model_.seq, where());
  CHECK_MESSAGE(audit->cards == model_.cards.size(), where());
  CHECK_MESSAGE(audit->programmes == model_.programmes.size(), where());
}

void Driver::check_engine() {
  ++tally_.full_checks;
  for (const auto& [key, card] : model_.cards) compare_card(card);
  for (const auto& [id, programme] : model_.programmes) compare_programme(programme);
  for (const auto& [id, hold] : model_.holds) compare_hold(hold);
  for (const auto& [id, redemption] : model_.redemptions) compare_redemption(redemption);
  for (const auto& [id, merchant] : model_.merchants) compare_merchant(merchant);
  compare_head();
  run_audit();
}

// Closes the engine and the store, opens both again, and checks that every
// stored byte and the chain head are as they were.
void Driver::reopen() {
  if (chance(50)) pipeline(true);
  const Snapshot before = take_snapshot(h_.store());
  const eng::ChainHead live = h_.engine().head();
  if (live.seq != before.head.seq || live.hash != before.head.hash) {
    FAIL(where() << ": engine head " << live.seq << " differs from the stored " << before.head.seq);
  }
  tally_.largest_batch = std::max(tally_.largest_batch, h_.engine().stats().largest_batch);
  h_.close();
  h_.open(false);
  const Snapshot after = take_snapshot(h_.store());
  const std::string diff = snapshot_difference(before, after);
  if (!diff.empty()) FAIL(where() << ": state changed across a reopen: " << diff);
  const eng::ChainHead reopened = h_.engine().head();
  if (reopened.seq != before.head.seq || reopened.hash != before.head.hash) {
    FAIL(where() << ": reopened engine starts at seq " << reopened.seq << ", not "
                 << before.head.seq);
  }
  ++tally_.reopens;
  check_engine();
}

// ---------------------------------------------------------------------------

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print_tally(const char* name, std::uint64_t seed, const Tally& t, double seconds) {
  const std::uint64_t ok = t.by_code.count("ok") ? t.by_code.at("ok") : 0;
  std::printf(
      "model_test [%s] BUONI_SEED=%llu: %llu steps, %llu commands (%llu ok, %llu declined, %llu "
      "replayed), %llu bursts (%llu commands), %llu pipelines (%llu commands), largest batch %llu, "
      "%llu clock jumps, %llu generations, %llu hold storms, %llu full checks, %llu reopens, "
      "%.1f s\n  by code:",
      name, static_cast<unsigned long long>(seed), static_cast<unsigned long long>(t.steps),
      static_cast<unsigned long long>(t.commands), static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(t.commands - ok), static_cast<unsigned long long>(t.replays),
      static_cast<unsigned long long>(t.bursts), static_cast<unsigned long long>(t.burst_commands),
      static_cast<unsigned long long>(t.pipelines),
      static_cast<unsigned long long>(t.pipeline_commands),
      static_cast<unsigned long long>(t.largest_batch), static_cast<unsigned long long>(t.jumps),
      static_cast<unsigned long long>(t.generations), static_cast<unsigned long long>(t.storms),
      static_cast<unsigned long long>(t.full_checks), static_cast<unsigned long long>(t.reopens),
      seconds);
  for (const auto& [code, n] : t.by_code) {
    std::printf(" %s=%llu", code.c_str(), static_cast<unsigned long long>(n));
  }
  std::printf("\n");
  std::fflush(stdout);
}

void announce(const char* name, std::uint64_t seed, std::uint64_t steps) {
  std::printf("model_test [%s]: BUONI_SEED=%llu BUONI_OPS=%llu (replay with BUONI_SEED=%llu)\n",
              name, static_cast<unsigned long long>(seed), static_cast<unsigned long long>(steps),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("model: random operations on a real RocksDB agree with the reference model") {
  const std::uint64_t seed = run_seed();
  const std::uint64_t steps = env_number("BUONI_OPS").value_or(3000);
  announce("random", seed, steps);
  INFO("BUONI_SEED=" << seed);
  const auto start = std::chrono::steady_clock::now();
  Harness harness(seed);
  Driver driver(harness, seed);
  driver.run(steps, {});
  const Tally tally = driver.tally();
  print_tally("random", seed, tally, seconds_since(start));
  if (tally.bursts > 0) CHECK_MESSAGE(tally.largest_batch > 1, "bursts were never batched");
}

TEST_CASE("model: the state survives closing and reopening the store and the engine") {
  const std::uint64_t seed = run_seed();
  const std::uint64_t steps =
      std::max<std::uint64_t>(300, env_number("BUONI_OPS").value_or(3000) / 3);
  announce("reopen", seed, steps);
  INFO("BUONI_SEED=" << seed);
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 points_rng(seed ^ 0x5eed'0f'5eedULL);
  std::set<std::uint64_t> reopen_after;
  const std::uint64_t wanted = std::max<std::uint64_t>(10, steps / 60);
  while (reopen_after.size() < wanted) reopen_after.insert(points_rng() % (steps - 1));
  Harness harness(seed + 1);
  Driver driver(harness, seed + 1);
  driver.run(steps, reopen_after);
  const Tally tally = driver.tally();
  print_tally("reopen", seed, tally, seconds_since(start));
  CHECK(tally.reopens >= 10);
}
