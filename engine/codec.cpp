#include "engine/codec.h"

#include <cstring>

namespace buoni::engine {

void Writer::u16(std::uint16_t v) {
  u8(static_cast<std::uint8_t>(v >> 8));
  u8(static_cast<std::uint8_t>(v));
}
void Writer::u32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) u8(static_cast<std::uint8_t>(v >> shift));
}
void Writer::u64(std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) u8(static_cast<std::uint8_t>(v >> shift));
}
void Writer::str(std::string_view v) {
  u32(static_cast<std::uint32_t>(v.size()));
  out_.append(v);
}

bool Reader::take(std::size_t n, const char** p) {
  if (failed_ || in_.size() < n) {
    failed_ = true;
    return false;
  }
  *p = in_.data();
  in_.remove_prefix(n);
  return true;
}
std::uint8_t Reader::u8() {
  const char* p = nullptr;
  return take(1, &p) ? static_cast<std::uint8_t>(*p) : 0;
}
std::uint16_t Reader::u16() {
  std::uint16_t hi = u8();
  return static_cast<std::uint16_t>((hi << 8) | u8());
}
std::uint32_t Reader::u32() {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
  return v;
}
std::uint64_t Reader::u64() {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
  return v;
}
bool Reader::boolean() {
  std::uint8_t v = u8();
  if (v > 1) failed_ = true;
  return v == 1;
}
std::string Reader::str() {
  std::uint32_t n = u32();
  const char* p = nullptr;
  if (!take(n, &p)) return {};
  return std::string(p, n);
}
void Reader::str_into(std::string& out) {
  std::uint32_t n = u32();
  const char* p = nullptr;
  if (!take(n, &p)) {
    out.clear();
    return;
  }
  out.assign(p, n);
}
void Reader::raw(std::span<std::uint8_t> out) {
  const char* p = nullptr;
  if (take(out.size(), &p)) std::memcpy(out.data(), p, out.size());
}
Account Reader::account() {
  Account a;
  account_into(a);
  return a;
}
void Reader::account_into(Account& out) {
  std::uint8_t kind = u8();
  if (kind > static_cast<std::uint8_t>(AccountKind::expired)) failed_ = true;
  out.kind = static_cast<AccountKind>(kind);
  str_into(out.owner);
}

namespace {

Writer versioned() {
  Writer w;
  w.u8(format_v1);
  return w;
}

Status finish(Reader& r, const char* what) {
  if (r.ok_and_done()) return Status();
  return corruption(std::string("cannot decode ") + what);
}

bool read_version(Reader& r) {
  return r.u8() == format_v1;
}

template <typename Enum>
Enum read_enum(Reader& r, Enum max_value, bool& bad) {
  std::uint8_t v = r.u8();
  if (v > static_cast<std::uint8_t>(max_value)) bad = true;
  return static_cast<Enum>(v);
}

}  // namespace

std::string encode(const Programme& v) {
  Writer w = versioned();
  w.str(v.id);
  w.str(v.name);
  w.i64(v.budget_cents);
  w.i32(v.valid_from_day);
  w.i32(v.valid_until_day);
  w.boolean(v.require_pin);
  w.i64(v.max_redemption_cents);
  w.i64(v.daily_limit_cents);
  w.u8(static_cast<std::uint8_t>(v.status));
  w.i64(v.created_at_ms);
  w.i64(v.issued_cents);
  w.i64(v.redeemed_cents);
  w.i64(v.refunded_cents);
  w.i64(v.expired_cents);
  w.i64(v.held_cents);
  w.i64(v.card_count);
  return w.take();
}

Status decode(std::string_view in, Programme& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  v.name = r.str();
  v.budget_cents = r.i64();
  v.valid_from_day = r.i32();
  v.valid_until_day = r.i32();
  v.require_pin = r.boolean();
  v.max_redemption_cents = r.i64();
  v.daily_limit_cents = r.i64();
  v.status = read_enum(r, ProgrammeStatus::closed, bad);
  v.created_at_ms = r.i64();
  v.issued_cents = r.i64();
  v.redeemed_cents = r.i64();
  v.refunded_cents = r.i64();
  v.expired_cents = r.i64();
  v.held_cents = r.i64();
  v.card_count = r.i64();
  return bad ? corruption("bad programme record") : finish(r, "programme");
}

std::string encode(const Merchant& v) {
  Writer w = versioned();
  w.str(v.id);
  w.str(v.name);
  w.str(v.vat_number);
  w.u32(static_cast<std::uint32_t>(v.programmes.size()));
  for (const auto& p : v.programmes) w.str(p);
  w.raw(v.api_key_hash);
  w.i64(v.created_at_ms);
  return w.take();
}

Status decode(std::string_view in, Merchant& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  v.name = r.str();
  v.vat_number = r.str();
  std::uint32_t n = r.u32();
  if (n > in.size()) return corruption("bad merchant record");
  v.programmes.clear();
  for (std::uint32_t i = 0; i < n && !r.failed(); ++i) v.programmes.push_back(r.str());
  r.raw(v.api_key_hash);
  v.created_at_ms = r.i64();
  return bad ? corruption("bad merchant record") : finish(r, "merchant");
}

std::string encode(const Card& v) {
  Writer w = versioned();
  w.raw(v.id.bytes);
  w.str(v.programme);
  w.str(v.beneficiary_ref);
  w.u8(static_cast<std::uint8_t>(v.status));
  w.i64(v.available_cents);
  w.i64(v.held_cents);
  w.i64(v.issued_cents);
  w.i64(v.issued_at_ms);
  w.i32(v.spent_day);
  w.i64(v.spent_today_cents);
  w.boolean(v.has_replacement);
  w.raw(v.replaced_by.bytes);
  w.boolean(v.has_pin);
  w.raw(v.pin_hash);
  w.u8(v.pin_failures);
  return w.take();
}

Status decode(std::string_view in, Card& v) {
  Reader r(in);
  bool bad = !read_version(r);
  r.raw(v.id.bytes);
  v.programme = r.str();
  v.beneficiary_ref = r.str();
  v.status = read_enum(r, CardStatus::expired, bad);
  v.available_cents = r.i64();
  v.held_cents = r.i64();
  v.issued_cents = r.i64();
  v.issued_at_ms = r.i64();
  v.spent_day = r.i32();
  v.spent_today_cents = r.i64();
  v.has_replacement = r.boolean();
  r.raw(v.replaced_by.bytes);
  v.has_pin = r.boolean();
  r.raw(v.pin_hash);
  v.pin_failures = r.u8();
  return bad ? corruption("bad card record") : finish(r, "card");
}

std::string encode(const Hold& v) {
  Writer w = versioned();
  w.str(v.id);
  w.raw(v.card.bytes);
  w.str(v.merchant);
  w.str(v.programme);
  w.str(v.reference);
  w.i64(v.amount_cents);
  w.u8(static_cast<std::uint8_t>(v.status));
  w.i64(v.created_at_ms);
  w.i64(v.expires_at_ms);
  w.i64(v.captured_cents);
  w.str(v.redemption_id);
  return w.take();
}

Status decode(std::string_view in, Hold& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  r.raw(v.card.bytes);
  v.merchant = r.str();
  v.programme = r.str();
  v.reference = r.str();
  v.amount_cents = r.i64();
  v.status = read_enum(r, HoldStatus::expired, bad);
  v.created_at_ms = r.i64();
  v.expires_at_ms = r.i64();
  v.captured_cents = r.i64();
  v.redemption_id = r.str();
  return bad ? corruption("bad hold record") : finish(r, "hold");
}

std::string encode(const Redemption& v) {
  Writer w = versioned();
  w.str(v.id);
  w.raw(v.card.bytes);
  w.str(v.merchant);
  w.str(v.programme);
  w.str(v.reference);
  w.str(v.hold_id);
  w.i64(v.amount_cents);
  w.i64(v.refunded_cents);
  w.i64(v.created_at_ms);
  w.u64(v.ledger_seq);
  return w.take();
}

Status decode(std::string_view in, Redemption& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  r.raw(v.card.bytes);
  v.merchant = r.str();
  v.programme = r.str();
  v.reference = r.str();
  v.hold_id = r.str();
  v.amount_cents = r.i64();
  v.refunded_cents = r.i64();
  v.created_at_ms = r.i64();
  v.ledger_seq = r.u64();
  return bad ? corruption("bad redemption record") : finish(r, "redemption");
}

std::string encode(const Refund& v) {
  Writer w = versioned();
  w.str(v.id);
  w.str(v.redemption_id);
  w.str(v.merchant);
  w.i64(v.amount_cents);
  w.i64(v.created_at_ms);
  w.u64(v.ledger_seq);
  return w.take();
}

Status decode(std::string_view in, Refund& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  v.redemption_id = r.str();
  v.merchant = r.str();
  v.amount_cents = r.i64();
  v.created_at_ms = r.i64();
  v.ledger_seq = r.u64();
  return bad ? corruption("bad refund record") : finish(r, "refund");
}

std::string encode(const Session& v) {
  Writer w = versioned();
  w.raw(v.session_hash);
  w.str(v.merchant);
  w.raw(v.api_key_hash);
  w.i64(v.created_at_ms);
  w.i64(v.expires_at_ms);
  return w.take();
}

Status decode(std::string_view in, Session& v) {
  Reader r(in);
  bool bad = !read_version(r);
  r.raw(v.session_hash);
  v.merchant = r.str();
  r.raw(v.api_key_hash);
  v.created_at_ms = r.i64();
  v.expires_at_ms = r.i64();
  return bad ? corruption("bad session record") : finish(r, "session");
}

void write_entry_body(Writer& w, const Entry& v) {
  w.u64(v.seq);
  w.i64(v.time_ms);
  w.u8(static_cast<std::uint8_t>(v.kind));
  w.str(v.programme);
  w.account(v.from);
  w.account(v.to);
  w.i64(v.amount_cents);
  w.str(v.card);
  w.str(v.merchant);
  w.str(v.ref);
}

std::string encode(const Entry& v) {
  Writer w = versioned();
  write_entry_body(w, v);
  w.raw(v.hash);
  return w.take();
}

std::string_view encoded_entry_body(std::string_view encoded) {
  constexpr std::size_t version_bytes = 1, hash_bytes = sizeof(Hash32);
  BUONI_ASSERT(encoded.size() >= version_bytes + hash_bytes);
  return encoded.substr(version_bytes, encoded.size() - version_bytes - hash_bytes);
}

Status decode(std::string_view in, Entry& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.seq = r.u64();
  v.time_ms = r.i64();
  v.kind = read_enum(r, EntryKind::settle, bad);
  r.str_into(v.programme);
  r.account_into(v.from);
  r.account_into(v.to);
  v.amount_cents = r.i64();
  r.str_into(v.card);
  r.str_into(v.merchant);
  r.str_into(v.ref);
  r.raw(v.hash);
  return bad ? corruption("bad ledger entry") : finish(r, "ledger entry");
}

std::string encode(const Checkpoint& v) {
  Writer w = versioned();
  w.u64(v.seq);
  w.raw(v.hash);
  w.i64(v.time_ms);
  w.u16(v.key_id);
  w.raw(v.signature);
  return w.take();
}

Status decode(std::string_view in, Checkpoint& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.seq = r.u64();
  r.raw(v.hash);
  v.time_ms = r.i64();
  v.key_id = r.u16();
  r.raw(v.signature);
  return bad ? corruption("bad checkpoint") : finish(r, "checkpoint");
}

std::string encode(const ChainHead& v) {
  Writer w = versioned();
  w.u64(v.seq);
  w.raw(v.hash);
  return w.take();
}

Status decode(std::string_view in, ChainHead& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.seq = r.u64();
  r.raw(v.hash);
  return bad ? corruption("bad chain head") : finish(r, "chain head");
}

std::string encode(const Settlement& v) {
  Writer w = versioned();
  w.str(v.id);
  w.i32(v.from_day);
  w.i32(v.to_day);
  w.i64(v.created_at_ms);
  w.u32(static_cast<std::uint32_t>(v.lines.size()));
  for (const SettlementLine& l : v.lines) {
    w.str(l.merchant);
    w.str(l.programme);
    w.i64(l.redeemed_cents);
    w.i64(l.refunded_cents);
    w.i64(l.net_cents);
    w.u64(l.count);
    w.u64(l.first_seq);
    w.u64(l.last_seq);
    w.i64(l.first_time_ms);
    w.i64(l.last_time_ms);
    w.u64(l.ledger_seq);
  }
  return w.take();
}

Status decode(std::string_view in, Settlement& v) {
  Reader r(in);
  bool bad = !read_version(r);
  v.id = r.str();
  v.from_day = r.i32();
  v.to_day = r.i32();
  v.created_at_ms = r.i64();
  std::uint32_t n = r.u32();
  v.lines.clear();
  for (std::uint32_t i = 0; i < n && !r.failed(); ++i) {
    SettlementLine l;
    l.merchant = r.str();
    l.programme = r.str();
    l.redeemed_cents = r.i64();
    l.refunded_cents = r.i64();
    l.net_cents = r.i64();
    l.count = r.u64();
    l.first_seq = r.u64();
    l.last_seq = r.u64();
    l.first_time_ms = r.i64();
    l.last_time_ms = r.i64();
    l.ledger_seq = r.u64();
    v.lines.push_back(std::move(l));
  }
  return bad ? corruption("bad settlement record") : finish(r, "settlement");
}

std::string encode_settled_mark(std::string_view settlement_id) {
  Writer w = versioned();
  w.str(settlement_id);
  return w.take();
}

Status decode_settled_mark(std::string_view in, std::string& settlement_id) {
  Reader r(in);
  bool bad = !read_version(r);
  settlement_id = r.str();
  return bad ? corruption("bad settled mark") : finish(r, "settled mark");
}

std::string encode_settled_floor(std::uint64_t seq) {
  Writer w = versioned();
  w.u64(seq);
  return w.take();
}

Status decode_settled_floor(std::string_view in, std::uint64_t& seq) {
  Reader r(in);
  bool bad = !read_version(r);
  seq = r.u64();
  return bad ? corruption("bad settled floor") : finish(r, "settled floor");
}

namespace keys {
namespace {
std::string be64(std::uint64_t v) {
  Writer w;
  w.u64(v);
  return w.take();
}
}  // namespace

std::string programme(std::string_view id) {
  return "p/" + std::string(id);
}
std::string merchant(std::string_view id) {
  return "m/" + std::string(id);
}
std::string merchant_key(const Hash32& h) {
  return "k/" + to_hex(h);
}
std::string card(const CardId& id) {
  return "c/" + std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}
std::string beneficiary_prefix(std::string_view programme_id) {
  std::string k = "b/" + std::string(programme_id);
  k.push_back('\0');
  return k;
}
std::string beneficiary(std::string_view programme_id, std::string_view ref) {
  return beneficiary_prefix(programme_id) + std::string(ref);
}
std::string hold(std::string_view id) {
  return "h/" + std::string(id);
}
std::string hold_expiry(TimeMs expires_at_ms, std::string_view hold_id) {
  return std::string(hold_expiry_prefix) + be64(static_cast<std::uint64_t>(expires_at_ms)) +
         std::string(hold_id);
}
std::string redemption(std::string_view id) {
  return "r/" + std::string(id);
}
std::string refund(std::string_view id) {
  return "f/" + std::string(id);
}
std::string session(const Hash32& session_hash) {
  std::string k = "a/";
  k.append(reinterpret_cast<const char*>(session_hash.data()), session_hash.size());
  return k;
}
std::string merchant_sessions_prefix(std::string_view merchant) {
  std::string k = "n/" + std::string(merchant);
  k.push_back('\0');
  return k;
}
std::string merchant_session(const Session& session) {
  std::string k = merchant_sessions_prefix(session.merchant);
  k += be64(static_cast<std::uint64_t>(session.created_at_ms));
  k.append(reinterpret_cast<const char*>(session.session_hash.data()), session.session_hash.size());
  return k;
}
std::string ledger(std::uint64_t seq) {
  return be64(seq);
}
std::string checkpoint(std::uint64_t seq) {
  return std::string(checkpoint_prefix) + be64(seq);
}
std::string idempotency(std::string_view caller, std::string_view key) {
  std::string k(caller);
  k.push_back('\0');
  k.append(key);
  return k;
}
std::uint64_t seq_of(std::string_view be8) {
  Reader r(be8);
  return r.u64();
}
std::string merchant_entries_prefix(std::string_view merchant) {
  std::string k = std::string(merchant_entries_root) + std::string(merchant);
  k.push_back('\0');
  return k;
}
std::string merchant_entry(std::string_view merchant, std::uint64_t seq) {
  return merchant_entries_prefix(merchant) + be64(seq);
}
std::string card_entries_prefix(const CardId& card) {
  return std::string(card_entries_root) +
         std::string(reinterpret_cast<const char*>(card.bytes.data()), card.bytes.size());
}
std::string card_entry(const CardId& card, std::uint64_t seq) {
  return card_entries_prefix(card) + be64(~seq);
}
std::string settled_entry(std::uint64_t seq) {
  return std::string(settled_entry_root) + be64(seq);
}
std::string settled_floor(std::string_view merchant_id) {
  return "w/" + std::string(merchant_id);
}
std::string settlement(std::string_view id) {
  return std::string(settlement_root) + std::string(id);
}
std::uint64_t index_entry_seq(std::string_view key) {
  constexpr std::size_t seq_bytes = 8;
  if (key.size() < card_entries_root.size() + seq_bytes) return 0;
  std::uint64_t stored = seq_of(key.substr(key.size() - seq_bytes));
  return key.starts_with(card_entries_root) ? ~stored : stored;
}
}  // namespace keys

std::string encode_index_value(TimeMs time_ms) {
  Writer w = versioned();
  w.i64(time_ms);
  return w.take();
}

Status decode_index_value(std::string_view in, TimeMs& time_ms) {
  Reader r(in);
  bool bad = !read_version(r);
  time_ms = r.i64();
  return bad ? corruption("bad ledger index row") : finish(r, "ledger index row");
}

namespace {
void add_row(std::vector<IndexRow>& rows, std::string key, const std::string& value) {
  for (const IndexRow& row : rows) {
    if (row.key == key) return;
  }
  rows.push_back({std::move(key), value});
}
}  // namespace

std::vector<IndexRow> index_rows(const Entry& e) {
  std::vector<IndexRow> rows;
  index_rows(e, rows);
  return rows;
}

void index_rows(const Entry& e, std::vector<IndexRow>& rows) {
  rows.clear();
  const std::string value = encode_index_value(e.time_ms);
  if (!e.merchant.empty()) add_row(rows, keys::merchant_entry(e.merchant, e.seq), value);
  for (const Account* a : {&e.from, &e.to}) {
    if (a->kind == AccountKind::payable || a->kind == AccountKind::settled) {
      std::string_view owner = a->owner;
      add_row(rows, keys::merchant_entry(owner.substr(0, owner.find(':')), e.seq), value);
    }
  }
  std::string_view last_card;  // a card named twice (e.card and an account) is listed once
  auto add_card = [&](std::string_view text) {
    if (text == last_card) return;
    last_card = text;
    ParsedCard parsed = parse_card_number(text);
    if (parsed.id) add_row(rows, keys::card_entry(*parsed.id, e.seq), value);
  };
  if (!e.card.empty()) add_card(e.card);
  for (const Account* a : {&e.from, &e.to}) {
    if (a->kind == AccountKind::card || a->kind == AccountKind::held) add_card(a->owner);
  }
}

}  // namespace buoni::engine
