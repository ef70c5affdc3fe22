// Persisted key and value layouts, and their codecs.
//
// Primitives (all integers big-endian, fixed width, so encodings are
// canonical and keys sort numerically):
//   u8 u16 u32 u64 i64 := 1 2 4 8 8 bytes        bool := u8 (0|1)
//   str := u32 length || bytes                   hash := 32 bytes
//   card_id := 10 bytes                          sig := 64 bytes
// Every value starts with a format version byte (v1 = 0x01); a decoder
// refuses other versions and trailing bytes (Status corruption).
//
// Keys, space `state`:
//   "p/" programme_id                              -> programme
//   "m/" merchant_id                               -> merchant
//   "k/" hex(api_key_hash)                         -> merchant_id (raw bytes)
//   "c/" card_id                                   -> card
//   "b/" programme_id 0x00 beneficiary_ref         -> card_id (current card of
//                                                     this beneficiary)
//   "h/" hold_id                                   -> hold
//   "x/" u64(expires_at_ms) hold_id                -> "" (pending holds by expiry)
//   "r/" redemption_id                             -> redemption
//   "f/" refund_id                                 -> refund
//   "e/" merchant_id 0x00 u64(seq)                 -> index_row (a shop's ledger
//                                                     entries, oldest first)
//   "t/" card_id u64(~seq)                         -> index_row (a card's ledger
//                                                     entries, newest first:
//                                                     ~seq is the bitwise NOT)
//   "s/" u64(seq)                                  -> settled_mark (the redeem,
//                                                     capture or refund entry at
//                                                     seq was paid by a settlement)
//   "w/" merchant_id                               -> u8(1) u64(floor): every
//                                                     redeem/capture/refund entry
//                                                     of the shop with seq <= floor
//                                                     is settled (where the next
//                                                     settlement's scan starts)
//   "z/" settlement_id                             -> settlement
//   "a/" hash(session)                             -> session
//   "n/" merchant_id 0x00 u64(created_at_ms) hash(session)
//                                                  -> "" (a shop's sessions,
//                                                     oldest first)
// Space `ledger`:    u64(seq)                      -> entry
// Space `idempotency`: caller 0x00 idempotency_key -> idem_record
// Space `meta`:
//   "head"                                         -> u8(1) u64(seq) hash
//   "checkpoint/" u64(seq)                         -> checkpoint
//   "admin_key_hash"                               -> u8(1) hash
//
// Values (after the version byte):
//   programme  := str(id) str(name) i64(budget) i32(valid_from_day)
//                 i32(valid_until_day) bool(require_pin) i64(max_redemption)
//                 i64(daily_limit) u8(status) i64(created_at_ms) i64(issued)
//                 i64(redeemed) i64(refunded) i64(expired) i64(held) i64(card_count)
//   merchant   := str(id) str(name) str(vat) u32(n) n*str(programme)
//                 hash(api_key_hash) i64(created_at_ms)
//   card       := card_id str(programme) str(beneficiary_ref) u8(status)
//                 i64(available) i64(held) i64(issued) i64(issued_at_ms)
//                 i32(spent_day) i64(spent_today) bool(has_replacement)
//                 card_id(replaced_by) bool(has_pin) hash(pin_hash) u8(pin_failures)
//   hold       := str(id) card_id str(merchant) str(programme) str(reference)
//                 i64(amount) u8(status) i64(created_at_ms) i64(expires_at_ms)
//                 i64(captured) str(redemption_id)
//   redemption := str(id) card_id str(merchant) str(programme) str(reference)
//                 str(hold_id) i64(amount) i64(refunded) i64(created_at_ms) u64(seq)
//   refund     := str(id) str(redemption_id) str(merchant) i64(amount)
//                 i64(created_at_ms) u64(seq)
//   entry      := entry_body hash
//   entry_body := u64(seq) i64(time_ms) u8(kind) str(programme) account(from)
//                 account(to) i64(amount) str(card) str(merchant) str(ref)
//   account    := u8(kind) str(owner)
//   checkpoint := u64(seq) hash i64(time_ms) u16(key_id) sig
//   idem_record:= hash(request fingerprint) outcome   (outcome: engine/command.h)
//   settled_mark := str(settlement_id)
//   settlement := str(id) i32(from_day) i32(to_day) i64(created_at_ms) u32(n)
//                 n*settlement_line
//   settlement_line := str(merchant) str(programme) i64(redeemed) i64(refunded)
//                 i64(net) u64(count) u64(first_seq) u64(last_seq)
//                 i64(first_time_ms) i64(last_time_ms) u64(ledger_seq)
//   index_row  := i64(time_ms)                  (the entry's time, for windows)
//   session    := hash(session) str(merchant) hash(api_key_hash)
//                 i64(created_at_ms) i64(expires_at_ms)
//
// The ledger indexes are written by Batch::append in the same batch as their
// entry and never change. An entry is listed (index_rows) under
//   - every shop it names: its merchant field, and the M of a payable:M:P or
//     settled:M:P account it moves money from or to;
//   - every card it names: its card field, and the C of a card:C or held:C
//     account (a release or refund to a replacement lists under both cards).
// Merchant ids never hold 0x00 (engine/validate.h), so "e/" M 0x00 is the
// exact prefix of shop M; card ids are fixed width. The audit rebuilds them.
//
// The canonical bytes hashed into the ledger chain are "buoni-entry-v1"
// followed by entry_body (engine/ledger.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "engine/model.h"

namespace buoni::engine {

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void str(std::string_view v);
  void raw(std::span<const std::uint8_t> v) {
    out_.append(reinterpret_cast<const char*>(v.data()), v.size());
  }
  void account(const Account& a) {
    u8(static_cast<std::uint8_t>(a.kind));
    str(a.owner);
  }
  [[nodiscard]] std::string take() { return std::move(out_); }
  [[nodiscard]] const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Reads what Writer wrote. Any short read sets failed(); values read after a
// failure are zero. Callers check ok_and_done() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  bool boolean();
  std::string str();
  void str_into(std::string& out);  // reuses out's capacity
  void raw(std::span<std::uint8_t> out);
  Account account();
  void account_into(Account& out);  // reuses out.owner's capacity
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] bool ok_and_done() const { return !failed_ && in_.empty(); }

 private:
  bool take(std::size_t n, const char** p);
  std::string_view in_;
  bool failed_ = false;
};

inline constexpr std::uint8_t format_v1 = 1;

[[nodiscard]] std::string encode(const Programme& v);
[[nodiscard]] std::string encode(const Merchant& v);
[[nodiscard]] std::string encode(const Card& v);
[[nodiscard]] std::string encode(const Hold& v);
[[nodiscard]] std::string encode(const Redemption& v);
[[nodiscard]] std::string encode(const Refund& v);
[[nodiscard]] std::string encode(const Entry& v);
[[nodiscard]] std::string encode(const Checkpoint& v);
[[nodiscard]] std::string encode(const ChainHead& v);
[[nodiscard]] std::string encode(const Settlement& v);
[[nodiscard]] std::string encode(const Session& v);
void write_entry_body(Writer& w, const Entry& v);
// The entry_body bytes inside an encoded entry (u8(1) || entry_body || hash),
// without decoding it. The encoding is canonical (fixed-width integers and
// lengths), so for an `encoded` that decode() accepted, this equals what
// write_entry_body() writes for the decoded entry.
[[nodiscard]] std::string_view encoded_entry_body(std::string_view encoded);

[[nodiscard]] Status decode(std::string_view in, Programme& out);
[[nodiscard]] Status decode(std::string_view in, Merchant& out);
[[nodiscard]] Status decode(std::string_view in, Card& out);
[[nodiscard]] Status decode(std::string_view in, Hold& out);
[[nodiscard]] Status decode(std::string_view in, Redemption& out);
[[nodiscard]] Status decode(std::string_view in, Refund& out);
// Reuses the strings of `out`: decoding many entries into one allocates
// little once it has seen the longest fields.
[[nodiscard]] Status decode(std::string_view in, Entry& out);
[[nodiscard]] Status decode(std::string_view in, Checkpoint& out);
[[nodiscard]] Status decode(std::string_view in, ChainHead& out);
[[nodiscard]] Status decode(std::string_view in, Settlement& out);
[[nodiscard]] Status decode(std::string_view in, Session& out);
[[nodiscard]] std::string encode_settled_mark(std::string_view settlement_id);
[[nodiscard]] Status decode_settled_mark(std::string_view in, std::string& settlement_id);
[[nodiscard]] std::string encode_settled_floor(std::uint64_t seq);
[[nodiscard]] Status decode_settled_floor(std::string_view in, std::uint64_t& seq);

namespace keys {
[[nodiscard]] std::string programme(std::string_view id);
[[nodiscard]] std::string merchant(std::string_view id);
[[nodiscard]] std::string merchant_key(const Hash32& api_key_hash);
[[nodiscard]] std::string card(const CardId& id);
[[nodiscard]] std::string beneficiary(std::string_view programme, std::string_view ref);
[[nodiscard]] std::string beneficiary_prefix(std::string_view programme);
[[nodiscard]] std::string hold(std::string_view id);
[[nodiscard]] std::string hold_expiry(TimeMs expires_at_ms, std::string_view hold_id);
inline constexpr std::string_view hold_expiry_prefix = "x/";
[[nodiscard]] std::string redemption(std::string_view id);
[[nodiscard]] std::string refund(std::string_view id);
[[nodiscard]] std::string ledger(std::uint64_t seq);
[[nodiscard]] std::string checkpoint(std::uint64_t seq);
inline constexpr std::string_view checkpoint_prefix = "checkpoint/";
inline constexpr std::string_view head = "head";
inline constexpr std::string_view admin_key_hash = "admin_key_hash";
[[nodiscard]] std::string idempotency(std::string_view caller, std::string_view key);
[[nodiscard]] std::uint64_t seq_of(std::string_view be8);  // inverse of u64 BE
inline constexpr std::string_view merchant_entries_root = "e/";
inline constexpr std::string_view card_entries_root = "t/";
[[nodiscard]] std::string merchant_entries_prefix(std::string_view merchant);
[[nodiscard]] std::string merchant_entry(std::string_view merchant, std::uint64_t seq);
[[nodiscard]] std::string card_entries_prefix(const CardId& card);
[[nodiscard]] std::string card_entry(const CardId& card, std::uint64_t seq);
// The seq an "e/" or "t/" key names (undoing the card index's ~seq); 0 when
// the key is too short to be one.
[[nodiscard]] std::uint64_t index_entry_seq(std::string_view key);
inline constexpr std::string_view settled_entry_root = "s/";
inline constexpr std::string_view settlement_root = "z/";
[[nodiscard]] std::string settled_entry(std::uint64_t seq);
[[nodiscard]] std::string settled_floor(std::string_view merchant);
[[nodiscard]] std::string settlement(std::string_view id);
[[nodiscard]] std::string session(const Hash32& session_hash);
[[nodiscard]] std::string merchant_sessions_prefix(std::string_view merchant);
[[nodiscard]] std::string merchant_session(const Session& session);
}  // namespace keys

// The index rows of one ledger entry (grammar above), keys unique.
struct IndexRow {
  std::string key;
  std::string value;
};
[[nodiscard]] std::vector<IndexRow> index_rows(const Entry& entry);
// The same rows into `rows` (cleared first), reusing its storage: for loops
// over many entries.
void index_rows(const Entry& entry, std::vector<IndexRow>& rows);
[[nodiscard]] std::string encode_index_value(TimeMs time_ms);
[[nodiscard]] Status decode_index_value(std::string_view in, TimeMs& time_ms);

}  // namespace buoni::engine
