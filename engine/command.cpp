#include "engine/command.h"

#include "crypto/hash.h"
#include "engine/codec.h"
#include "engine/overloaded.h"

namespace buoni::engine {

namespace {

void write_fields(Writer& w, const CreateProgramme& c) {
  w.str(c.id);
  w.str(c.name);
  w.i64(c.budget_cents);
  w.i32(c.valid_from_day);
  w.i32(c.valid_until_day);
  w.boolean(c.require_pin);
  w.i64(c.max_redemption_cents);
  w.i64(c.daily_limit_cents);
}
void write_fields(Writer& w, const CloseProgramme& c) {
  w.str(c.id);
}
void write_fields(Writer& w, const AddMerchant& c) {
  w.str(c.id);
  w.str(c.name);
  w.str(c.vat_number);
  w.u32(static_cast<std::uint32_t>(c.programmes.size()));
  for (const auto& p : c.programmes) w.str(p);
  // Not the api_key_hash: every attempt makes a new key at the edge, so a
  // retry must match on what the operator asked for, not on the secret.
}
void write_optional(Writer& w, const std::optional<Hash32>& h) {
  w.boolean(h.has_value());
  if (h) w.raw(*h);
}
void write_fields(Writer& w, const IssueCard& c) {
  w.str(c.programme);
  w.str(c.beneficiary_ref);
  w.i64(c.amount_cents);
}
void write_fields(Writer& w, const LoadCard& c) {
  w.raw(c.card.bytes);
  w.i64(c.amount_cents);
}
void write_fields(Writer& w, const BlockCard& c) {
  w.raw(c.card.bytes);
}
void write_fields(Writer& w, const UnblockCard& c) {
  w.raw(c.card.bytes);
}
void write_fields(Writer& w, const ReplaceCard& c) {
  w.raw(c.card.bytes);
}
void write_fields(Writer& w, const UnlockPin& c) {
  w.raw(c.card.bytes);
}
void write_fields(Writer& w, const Redeem& c) {
  w.raw(c.card.bytes);
  w.i64(c.amount_cents);
  w.str(c.reference);
  write_optional(w, c.pin_hash);
}
void write_fields(Writer& w, const Authorize& c) {
  w.raw(c.card.bytes);
  w.i64(c.amount_cents);
  w.str(c.reference);
  w.i64(c.expires_in_s);
  write_optional(w, c.pin_hash);
}
void write_fields(Writer& w, const Capture& c) {
  w.str(c.hold_id);
  w.i64(c.amount_cents);
}
void write_fields(Writer& w, const Void& c) {
  w.str(c.hold_id);
}
void write_fields(Writer& w, const RefundRedemption& c) {
  w.str(c.redemption_id);
  w.i64(c.amount_cents);
}
void write_fields(Writer& w, const Settle& c) {
  w.str(c.period_id);
  w.i32(c.from_day);
  w.i32(c.to_day);
}
void write_fields(Writer& w, const RotateMerchantKey& c) {
  w.str(c.id);  // not the new key's hash (AddMerchant's reason)
}
void write_fields(Writer& w, const OpenSession& c) {
  w.raw(c.session_hash);
  w.raw(c.api_key_hash);
}
void write_fields(Writer& w, const EndSession& c) {
  w.raw(c.session_hash);
}

}  // namespace

std::string_view command_name(const Command& command) {
  return std::visit(Overloaded{
                        [](const CreateProgramme&) { return "programme_create"; },
                        [](const CloseProgramme&) { return "programme_close"; },
                        [](const AddMerchant&) { return "merchant_add"; },
                        [](const IssueCard&) { return "card_issue"; },
                        [](const LoadCard&) { return "card_load"; },
                        [](const BlockCard&) { return "card_block"; },
                        [](const UnblockCard&) { return "card_unblock"; },
                        [](const ReplaceCard&) { return "card_replace"; },
                        [](const Redeem&) { return "redeem"; },
                        [](const Authorize&) { return "authorize"; },
                        [](const Capture&) { return "capture"; },
                        [](const Void&) { return "void"; },
                        [](const RefundRedemption&) { return "refund"; },
                        [](const UnlockPin&) { return "card_unlock_pin"; },
                        [](const Settle&) { return "settle"; },
                        [](const RotateMerchantKey&) { return "merchant_rotate_key"; },
                        [](const OpenSession&) { return "session_open"; },
                        [](const EndSession&) { return "session_end"; },
                    },
                    command);
}

std::string Caller::key() const {
  return role == Role::admin ? std::string("admin") : "m:" + merchant_id;
}

std::string encode(const Outcome& o) {
  Writer w;
  w.u8(format_v1);
  w.u8(static_cast<std::uint8_t>(o.code));
  w.str(o.id);
  w.str(o.card);
  w.i64(o.amount_cents);
  w.i64(o.balance_cents);
  w.i64(o.held_cents);
  w.i64(o.time_ms);
  w.i64(o.expires_at_ms);
  w.u64(o.ledger_seq);
  w.str(o.status);
  w.str(o.new_card);
  return w.take();
}

Status decode(std::string_view in, Outcome& o) {
  Reader r(in);
  bool bad = r.u8() != format_v1;
  std::uint8_t code = r.u8();
  if (code >= code_count) bad = true;
  o.code = static_cast<Code>(code);
  o.id = r.str();
  o.card = r.str();
  o.amount_cents = r.i64();
  o.balance_cents = r.i64();
  o.held_cents = r.i64();
  o.time_ms = r.i64();
  o.expires_at_ms = r.i64();
  o.ledger_seq = r.u64();
  o.status = r.str();
  o.new_card = r.str();
  if (bad || !r.ok_and_done()) return corruption("cannot decode stored outcome");
  return Status();
}

std::string encode_command(const Command& command) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(command.index()));
  std::visit([&w](const auto& c) { write_fields(w, c); }, command);
  return w.take();
}

Hash32 fingerprint(const Command& command) {
  return blake2b_256(encode_command(command));
}

}  // namespace buoni::engine
