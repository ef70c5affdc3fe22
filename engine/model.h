// The domain objects the engine keeps. Plain values; the engine's writer
// thread is their only mutator. Persisted layouts are in engine/codec.h.
//
// Money is integer euro cents (int64). Times are milliseconds since the Unix
// epoch, UTC (`_ms`); calendar dates are days since the epoch (`_day`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/card_number.h"

namespace buoni::engine {

using Cents = std::int64_t;
using TimeMs = std::int64_t;
using Day = std::int32_t;

inline constexpr TimeMs ms_per_day = 86'400'000;
[[nodiscard]] inline Day day_of(TimeMs t_ms) {
  return static_cast<Day>(t_ms >= 0 ? t_ms / ms_per_day : (t_ms - ms_per_day + 1) / ms_per_day);
}

enum class ProgrammeStatus : std::uint8_t { open = 0, closed = 1 };

struct Programme {
  std::string id;
  std::string name;
  Cents budget_cents = 0;
  Day valid_from_day = 0;   // first day cards can be used (inclusive)
  Day valid_until_day = 0;  // last day cards can be used (inclusive)
  bool require_pin = false;
  Cents max_redemption_cents = 0;  // 0: no per-redemption limit
  Cents daily_limit_cents = 0;     // 0: no daily limit per card
  ProgrammeStatus status = ProgrammeStatus::open;
  TimeMs created_at_ms = 0;
  // Running totals, kept in step with the ledger (audit rebuilds them).
  Cents issued_cents = 0;    // moved from the budget onto cards (issue + load)
  Cents redeemed_cents = 0;  // redemptions and captures
  Cents refunded_cents = 0;
  Cents expired_cents = 0;  // card balances expired at close
  Cents held_cents = 0;     // under pending authorizations
  std::int64_t card_count = 0;
};

struct Merchant {
  std::string id;
  std::string name;
  std::string vat_number;
  std::vector<std::string> programmes;  // sorted, unique
  Hash32 api_key_hash{};                // BLAKE2b-256 of the key; the key itself is never stored
  TimeMs created_at_ms = 0;
};

enum class CardStatus : std::uint8_t { active = 0, blocked = 1, revoked = 2, expired = 3 };
[[nodiscard]] std::string_view card_status_name(CardStatus status);

struct Card {
  CardId id;
  std::string programme;
  std::string beneficiary_ref;
  CardStatus status = CardStatus::active;
  Cents available_cents = 0;
  Cents held_cents = 0;
  Cents issued_cents = 0;  // amount at issue (for the printed card)
  TimeMs issued_at_ms = 0;
  Day spent_day = 0;  // the day spent_today_cents counts for
  Cents spent_today_cents = 0;
  CardId replaced_by{};  // set when status == revoked by a replacement
  bool has_replacement = false;
  bool has_pin = false;           // the programme requires a PIN for this card
  Hash32 pin_hash{};              // keyed hash of the PIN (engine/pin.h); never the PIN
  std::uint8_t pin_failures = 0;  // consecutive wrong PINs; limits::pin_failures_max locks
};

enum class HoldStatus : std::uint8_t { pending = 0, captured = 1, voided = 2, expired = 3 };
[[nodiscard]] std::string_view hold_status_name(HoldStatus status);

struct Hold {
  std::string id;
  CardId card;
  std::string merchant;
  std::string programme;
  std::string reference;
  Cents amount_cents = 0;
  HoldStatus status = HoldStatus::pending;
  TimeMs created_at_ms = 0;
  TimeMs expires_at_ms = 0;
  Cents captured_cents = 0;
  std::string redemption_id;  // set when captured
};

struct Redemption {
  std::string id;
  CardId card;
  std::string merchant;
  std::string programme;
  std::string reference;
  std::string hold_id;  // empty unless it came from a capture
  Cents amount_cents = 0;
  Cents refunded_cents = 0;
  TimeMs created_at_ms = 0;
  std::uint64_t ledger_seq = 0;
};

struct Refund {
  std::string id;
  std::string redemption_id;
  std::string merchant;
  Cents amount_cents = 0;
  TimeMs created_at_ms = 0;
  std::uint64_t ledger_seq = 0;
};

// Ledger accounts. Every entry moves money from one account to another, so
// the balances of all accounts always sum to zero.
//   budget:P        the programme's funding source (goes negative by the budget)
//   pool:P          budget not yet put on cards
//   card:C          a card's available balance
//   held:C          a card's money under pending authorizations
//   payable:M:P     owed to shop M for programme P
//   settled:M:P     paid out to shop M (engine/settle.h)
//   expired:P       card balances expired when P closed
enum class AccountKind : std::uint8_t {
  budget = 0,
  pool = 1,
  card = 2,
  held = 3,
  payable = 4,
  settled = 5,
  expired = 6
};

struct Account {
  AccountKind kind = AccountKind::budget;
  std::string owner;  // programme id; card id (16 symbols); or "merchant:programme"
  auto operator<=>(const Account&) const = default;
  [[nodiscard]] std::string to_string() const;                  // "card:7K2M..."
  [[nodiscard]] bool text_equals(std::string_view text) const;  // text == to_string()
};

enum class EntryKind : std::uint8_t {
  fund = 0,      // budget -> pool, at programme creation
  issue = 1,     // pool -> card
  load = 2,      // pool -> card
  redeem = 3,    // card -> payable
  hold = 4,      // card -> held
  capture = 5,   // held -> payable
  release = 6,   // held -> card (void, expiry, rest of a capture, close)
  refund = 7,    // payable -> card
  transfer = 8,  // card -> card (replacement)
  expire = 9,    // card -> expired (programme close)
  settle = 10,   // payable -> settled (a settlement's net for one shop and
                 // programme; settled -> payable when the net is negative)
};
[[nodiscard]] std::string_view entry_kind_name(EntryKind kind);
[[nodiscard]] std::string_view account_kind_name(AccountKind kind);  // "card")

struct Entry {
  std::uint64_t seq = 0;  // dense, from 1
  TimeMs time_ms = 0;
  EntryKind kind = EntryKind::fund;
  std::string programme;
  Account from;
  Account to;
  Cents amount_cents = 0;  // > 0
  std::string card;        // the card concerned (16 symbols; a refund's or release's
                           // is the card redeemed or held, even when `to` is its
                           // replacement), or empty
  std::string merchant;    // the shop concerned (a release: the hold's shop, whoever
                           // released it), or empty
  std::string ref;         // redemption / hold / refund id, or empty
  Hash32 hash{};           // BLAKE2b-256(prev hash || canonical bytes)
};

// One line of a settlement: what one shop is paid for one programme's
// redemptions, captures and refunds in the period that no earlier settlement
// paid. net = redeemed - refunded; negative when refunds of redemptions paid
// earlier exceed the new sales (the shop owes it back).
struct SettlementLine {
  std::string merchant;
  std::string programme;
  Cents redeemed_cents = 0;  // redemptions and captures
  Cents refunded_cents = 0;
  Cents net_cents = 0;
  std::uint64_t count = 0;  // entries settled (redemptions, captures, refunds)
  std::uint64_t first_seq = 0, last_seq = 0;
  TimeMs first_time_ms = 0, last_time_ms = 0;
  std::uint64_t ledger_seq = 0;  // the settle entry; 0 when net is 0
};

// A settlement of a period [from_day, to_day] (UTC days, inclusive), kept
// under its id ("2026-04", or "2026-04-01..2026-04-15"). Lines in
// (merchant, programme) order.
struct Settlement {
  std::string id;
  Day from_day = 0, to_day = 0;
  TimeMs created_at_ms = 0;
  std::vector<SettlementLine> lines;
};

// The chain head: the last entry's seq and hash (seq 0, zero hash at start).
struct ChainHead {
  std::uint64_t seq = 0;
  Hash32 hash{};
};

// A signed statement "the ledger up to seq has this hash", one per batch.
struct Checkpoint {
  std::uint64_t seq = 0;
  Hash32 hash{};
  TimeMs time_ms = 0;
  std::uint16_t key_id = 0;
  Signature signature{};
};

// A shop signed in on a device (the till page). Stored under the hash of its
// id; the id itself is only ever in the device's cookie.
struct Session {
  Hash32 session_hash{};
  std::string merchant;
  Hash32 api_key_hash{};  // the shop's key when it signed in: a rotated key ends it
  TimeMs created_at_ms = 0;
  TimeMs expires_at_ms = 0;
};

}  // namespace buoni::engine
