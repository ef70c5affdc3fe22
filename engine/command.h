// Commands the engine applies, who asks, and what it answers.
//
// A Request is a Caller, an optional idempotency key and one Command. Its
// Outcome is either Code::ok with the fields that operation fills, or a
// decline Code with the fields useful to the caller (e.g. balance_cents on
// insufficient_funds). The first Outcome of each (caller, key) is stored in
// the same durable write as its effects and returned again, `replayed`, for
// the same request; a different request under that key is
// idempotency_conflict.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "crypto/status.h"
#include "engine/code.h"
#include "engine/model.h"

namespace buoni::engine {

struct CreateProgramme {
  std::string id, name;
  Cents budget_cents = 0;
  Day valid_from_day = 0, valid_until_day = 0;
  bool require_pin = false;
  Cents max_redemption_cents = 0, daily_limit_cents = 0;
};
struct CloseProgramme {
  std::string id;
};
struct AddMerchant {
  std::string id, name, vat_number;
  std::vector<std::string> programmes;
  Hash32 api_key_hash{};  // the key is made and shown by the caller; only its hash comes here
};
// PINs are made and hashed at the edge (engine/pin.h); the engine sees only
// keyed hashes. A programme with require_pin needs pin_hash on IssueCard and
// ReplaceCard (a replacement gets a new PIN), and on every Redeem/Authorize.
struct IssueCard {
  std::string programme, beneficiary_ref;
  Cents amount_cents = 0;
  std::optional<Hash32> pin_hash;  // not part of the fingerprint: a retry makes a new PIN
};
struct LoadCard {
  CardId card;
  Cents amount_cents = 0;
};
struct BlockCard {
  CardId card;
};
struct UnblockCard {
  CardId card;
};
struct UnlockPin {
  CardId card;
};
struct ReplaceCard {
  CardId card;
  std::optional<Hash32> pin_hash;  // not part of the fingerprint
};
struct Redeem {
  CardId card;
  Cents amount_cents = 0;
  std::string reference;
  std::optional<Hash32> pin_hash;  // the presented PIN, hashed
};
struct Authorize {
  CardId card;
  Cents amount_cents = 0;
  std::string reference;
  std::int64_t expires_in_s = 0;  // 0: limits::hold_expires_in_s_default
  std::optional<Hash32> pin_hash;
};
struct Capture {
  std::string hold_id;
  Cents amount_cents = 0;
};
struct Void {
  std::string hold_id;
};
struct RefundRedemption {
  std::string redemption_id;
  Cents amount_cents = 0;
};

// Settles a period (engine/settle.h): for every shop and programme, the
// redemptions, captures and refunds made in [from_day, to_day] (UTC days,
// inclusive) that no settlement paid yet, netted into one settle entry each.
// Admin only; the period must have ended (to_day < today). The settlement is
// kept under period_id; settling that id again changes nothing and answers
// status "already_settled".
struct Settle {
  std::string period_id;  // valid_object_id: "2026-04", "2026-04-01..2026-04-15"
  Day from_day = 0, to_day = 0;
};

// Replaces a shop's API key (admin only): the old key, and every session
// signed in with it, stop working in the batch that applies this. The new
// key is made and shown by the caller; only its hash comes here.
struct RotateMerchantKey {
  std::string id;
  Hash32 api_key_hash{};  // not part of the fingerprint: a retry makes a new key
};

// Till sessions (api/session.h): a shop signed in on a device with its key.
// The session id is made at the edge; only its BLAKE2b-256 hash comes here.
// OpenSession (merchant only) names the key hash the shop signed in with: if
// that is no longer the shop's key (rotated meanwhile) it is declined
// `forbidden`. It lasts limits::session_ttl_s; a shop keeps at most
// limits::sessions_per_merchant_max sessions: opening one past that ends the
// oldest, and ends the shop's expired or revoked ones first.
struct OpenSession {
  Hash32 session_hash{};
  Hash32 api_key_hash{};
};
// Ends the calling shop's session (not_found if it has no such session).
struct EndSession {
  Hash32 session_hash{};
};

using Command =
    std::variant<CreateProgramme, CloseProgramme, AddMerchant, IssueCard, LoadCard, BlockCard,
                 UnblockCard, ReplaceCard, Redeem, Authorize, Capture, Void, RefundRedemption,
                 UnlockPin, Settle, RotateMerchantKey, OpenSession, EndSession>;

[[nodiscard]] std::string_view command_name(const Command& command);

// Who sends a command. Admin commands need role admin; money commands need a
// merchant (they act for that merchant).
struct Caller {
  enum class Role : std::uint8_t { admin = 0, merchant = 1 };
  Role role = Role::admin;
  std::string merchant_id;  // role merchant only
  [[nodiscard]] static Caller admin() { return {}; }
  [[nodiscard]] static Caller merchant(std::string id) { return {Role::merchant, std::move(id)}; }
  [[nodiscard]] std::string key() const;  // "admin" or "m:<id>": idempotency namespace
};

struct Request {
  Caller caller;
  std::string idempotency_key;  // empty: none
  Command command;
};

struct Outcome {
  Code code = Code::ok;
  std::string id;    // the object made or acted on
  std::string card;  // card id (16 symbols), when a card is involved
  Cents amount_cents = 0;
  Cents balance_cents = 0;  // card available balance after (or at a decline)
  Cents held_cents = 0;
  TimeMs time_ms = 0;        // when it happened (the batch's clock)
  TimeMs expires_at_ms = 0;  // holds: when it lapses
  // The ledger entry that records the operation (a capture: its capture
  // entry, not the release of the rest); else the last entry the command
  // wrote; 0: none.
  std::uint64_t ledger_seq = 0;
  std::string status;    // hold or card status after
  std::string new_card;  // replace: the new card's id

  [[nodiscard]] bool ok() const { return code == Code::ok; }
};

struct Result {
  Outcome outcome;
  bool replayed = false;  // true: the stored first outcome of this idempotency key
};

// Codecs (grammar in engine/codec.h; outcome and command below).
//   outcome := u8(version) u8(code) str(id) str(card) i64(amount) i64(balance)
//              i64(held) i64(time_ms) i64(expires_at_ms) u64(ledger_seq)
//              str(status) str(new_card)
//   command := u8(variant index) fields in declaration order (str, i64, i32,
//              bool, card_id; vectors as u32 count then items; optional hash as
//              bool then hash); AddMerchant's api_key_hash and the pin_hash of
//              IssueCard/ReplaceCard and RotateMerchantKey's api_key_hash are left
//              out (a retry makes a new secret); sessions: both hashes
[[nodiscard]] std::string encode(const Outcome& outcome);
[[nodiscard]] Status decode(std::string_view in, Outcome& outcome);
[[nodiscard]] std::string encode_command(const Command& command);
// The request fingerprint stored with an idempotency record: BLAKE2b-256 of
// the encoded command.
[[nodiscard]] Hash32 fingerprint(const Command& command);

}  // namespace buoni::engine
