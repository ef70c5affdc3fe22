// Shop calls: redemptions, authorizations (capture, void), refunds; and the
// signed receipt of every redemption.
#include <cstdint>

#include "api/handler_internal.h"
#include "crypto/card_number.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/validate.h"

namespace buoni::api {

std::string receipt_text(const Receipt& r) {
  std::string out = "buoni-receipt-v1\n";
  for (const std::string& part :
       {r.id, r.merchant, r.card_number, std::to_string(r.amount_cents), r.currency,
        std::to_string(r.balance_cents), r.created_at, std::to_string(r.ledger_seq)}) {
    out += part;
    out += '\n';
  }
  out += std::to_string(r.key_id);
  return out;
}

boost::json::object signed_receipt_json(const SigningKey& key, Receipt r) {
  r.key_id = key.key_id;
  Signature signature = key.sign(as_bytes(receipt_text(r)));
  return {{"id", r.id},
          {"merchant", r.merchant},
          {"card_number", r.card_number},
          {"amount_cents", r.amount_cents},
          {"currency", r.currency},
          {"balance_cents", r.balance_cents},
          {"created_at", r.created_at},
          {"ledger_seq", r.ledger_seq},
          {"key_id", r.key_id},
          {"signature", to_hex(signature)}};
}

namespace {

bool read_receipt(const boost::json::object& o, Receipt& r, Signature& signature) {
  auto text = [&o](std::string_view name, std::string& out) {
    auto it = o.find(name);
    if (it == o.end() || !it->value().is_string()) return false;
    out = std::string(it->value().as_string());
    return true;
  };
  auto integer = [&o](std::string_view name, std::int64_t& out) {
    auto it = o.find(name);
    if (it == o.end()) return false;
    const boost::json::value& v = it->value();
    if (v.is_int64())
      out = v.as_int64();
    else if (v.is_uint64() && v.as_uint64() <= INT64_MAX)
      out = static_cast<std::int64_t>(v.as_uint64());
    else
      return false;
    return true;
  };
  std::int64_t seq = 0, key_id = 0;
  std::string signature_hex;
  bool ok = text("id", r.id) && text("merchant", r.merchant) &&
            text("card_number", r.card_number) && text("currency", r.currency) &&
            text("created_at", r.created_at) && text("signature", signature_hex) &&
            integer("amount_cents", r.amount_cents) && integer("balance_cents", r.balance_cents) &&
            integer("ledger_seq", seq) && integer("key_id", key_id) && seq >= 0 && key_id >= 1 &&
            key_id <= 0xFFFF && from_hex(signature_hex, signature);
  r.ledger_seq = static_cast<std::uint64_t>(seq);
  r.key_id = static_cast<std::uint16_t>(key_id);
  return ok;
}

}  // namespace

bool verify_receipt(const boost::json::object& receipt, const std::vector<VerifyKey>& keys) {
  Receipt r;
  Signature signature{};
  if (!read_receipt(receipt, r, signature)) return false;
  for (const VerifyKey& k : keys) {
    if (k.key_id == r.key_id) {
      return verify_signature(k.public_key, as_bytes(receipt_text(r)), signature);
    }
  }
  return false;
}

}  // namespace buoni::api

namespace buoni::api::detail {

namespace {

// Adds the signed receipt to a redemption's answer (redeem, capture). Owns
// the shop's id and borrows the signing key (the ApiContext outlives every
// request): it may run after the Call is gone (prepare_request).
Extend with_receipt(const Call& call) {
  const SigningKey& key = call.ctx.signing_key;
  return [&key, merchant = call.caller.merchant_id](const engine::Result& result,
                                                    json::object& body) {
    const engine::Outcome& o = result.outcome;
    Receipt r;
    r.id = o.id;
    r.merchant = merchant;
    r.card_number = mask_card_number(*parse_card_number(o.card).id);
    r.currency = std::string(body.at("currency").as_string());
    r.amount_cents = o.amount_cents;
    r.balance_cents = o.balance_cents;
    r.created_at = engine::format_time(o.time_ms);
    r.ledger_seq = o.ledger_seq;
    body["receipt"] = signed_receipt_json(key, std::move(r));
  };
}

std::string reference(const json::object& body) {
  std::string ref = opt_string(body, "reference").value_or("");
  if (!engine::valid_reference(ref)) {
    fail_field("reference must be at most " + std::to_string(limits::reference_length_max) +
               " bytes without control characters");
  }
  return ref;
}

// The hold in the path; an id that cannot be one is simply not found.
std::string hold_id(const Call& call) {
  if (!engine::valid_object_id(call.params[0])) fail_code(engine::Code::not_found);
  return call.params[0];
}

}  // namespace

Response post_redemption(Call& call) {
  json::object body = parse_body(call.req, {"card", "amount_cents", "pin", "reference"});
  engine::Redeem c;
  c.amount_cents = need_cents(body, "amount_cents", 1, limits::amount_cents_max);
  c.reference = reference(body);
  c.pin_hash = opt_pin(call.ctx, body);
  c.card = resolve_spend_card(call, need_string(body, "card"));
  return run_command(call, std::move(c), http::status::created, with_receipt(call));
}

Response post_authorization(Call& call) {
  json::object body =
      parse_body(call.req, {"card", "amount_cents", "pin", "reference", "expires_in_s"});
  engine::Authorize c;
  c.amount_cents = need_cents(body, "amount_cents", 1, limits::amount_cents_max);
  c.reference = reference(body);
  c.expires_in_s = opt_integer(body, "expires_in_s", 1, limits::hold_expires_in_s_max)
                       .value_or(0);  // 0: the engine's default
  c.pin_hash = opt_pin(call.ctx, body);
  c.card = resolve_spend_card(call, need_string(body, "card"));
  return run_command(call, std::move(c), http::status::created);
}

Response post_capture(Call& call) {
  json::object body = parse_body(call.req, {"amount_cents"});
  engine::Capture c;
  c.hold_id = hold_id(call);
  c.amount_cents = need_cents(body, "amount_cents", 1, limits::amount_cents_max);
  return run_command(call, std::move(c), http::status::created, with_receipt(call));
}

Response post_void(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  return run_command(call, engine::Void{hold_id(call)}, http::status::ok);
}

Response post_refund(Call& call) {
  json::object body = parse_body(call.req, {"redemption_id", "amount_cents"});
  engine::RefundRedemption c;
  c.redemption_id = need_string(body, "redemption_id");
  if (!engine::valid_object_id(c.redemption_id)) {
    fail_field("redemption_id must be a redemption's id (rd_...)");
  }
  c.amount_cents = need_cents(body, "amount_cents", 1, limits::amount_cents_max);
  return run_command(call, std::move(c), http::status::created);
}

}  // namespace buoni::api::detail
