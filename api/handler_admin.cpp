// Operator calls: programmes, shops, cards. Secrets (a shop's API key, a
// card's PIN) are made here at the edge, shown once in the first answer, and
// only their hashes reach the engine; a replay cannot show them again.
#include <array>

#include "api/handler_internal.h"
#include "api/render.h"
#include "crypto/api_key.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "engine/settle.h"
#include "engine/validate.h"

namespace buoni::api::detail {

namespace {

std::string object_id(const json::object& body, std::string_view name) {
  std::string id = need_string(body, name);
  if (!engine::valid_object_id(id)) {
    fail_field(std::string(name) + " must be 1 to " + std::to_string(limits::id_length_max) +
               " characters of A-Z a-z 0-9 _ . -");
  }
  return id;
}

std::string display_name(const json::object& body) {
  std::string name = need_string(body, "name");
  if (!engine::valid_name(name)) {
    fail_field("name must be 1 to " + std::to_string(limits::name_length_max) +
               " bytes without control characters");
  }
  return name;
}

engine::Day day(const json::object& body, std::string_view name) {
  auto d = engine::parse_day(need_string(body, name));
  if (!d) fail_field(std::string(name) + " must be a date YYYY-MM-DD");
  return *d;
}

// The id in the path of /v1/programmes/{id}/...: one that cannot exist is not found.
std::string path_programme(const Call& call) {
  if (!engine::valid_object_id(call.params[0])) fail_code(engine::Code::not_found);
  return call.params[0];
}

std::string make_merchant_key() {
  SystemRandom random;
  return make_api_key(merchant_key_prefix, random);
}

// Runs a command that makes a card (issue, replace) of `programme`: with a
// PIN made here when the programme requires one; answers the card's token
// and link, and the PIN in the first answer only.
Response make_card(Call& call, engine::Command command, const engine::Programme& programme,
                   http::status ok_status) {
  std::string pin;
  if (programme.require_pin) {
    SystemRandom random;
    pin = engine::make_pin(random);
    Hash32 hash = engine::hash_pin(call.ctx.pin_pepper, pin);
    std::visit(
        [&hash](auto& c) {
          if constexpr (requires { c.pin_hash; }) c.pin_hash = hash;
        },
        command);
  }
  engine::Day expiry_day = programme.valid_until_day;
  const SigningKey& key = call.ctx.signing_key;
  return run_command(
      call, std::move(command), ok_status, [&](const engine::Result& result, json::object& body) {
        const engine::Outcome& o = result.outcome;
        CardId made = *parse_card_number(o.new_card.empty() ? o.card : o.new_card).id;
        TokenPayload payload = make_token_payload(key, made, expiry_day);
        body["token"] = token_qr_text(payload);
        body["link"] = token_link_text(payload);
        if (!pin.empty() && !result.replayed) body["pin"] = pin;
      });
}

engine::Programme must_find_programme(const Call& call, std::string_view id, engine::Code missing) {
  auto p = engine::find_programme(call.ctx.store, id);
  if (!p.ok()) fail_status(p.status());
  if (!p->has_value()) fail_code(missing);
  return std::move(**p);
}

}  // namespace

Response post_programme(Call& call) {
  json::object body =
      parse_body(call.req, {"id", "name", "budget_cents", "valid_from", "valid_until",
                            "require_pin", "max_redemption_cents", "daily_limit_cents"});
  engine::CreateProgramme c;
  c.id = object_id(body, "id");
  c.name = display_name(body);
  c.budget_cents = need_cents(body, "budget_cents", 1, limits::budget_cents_max);
  c.valid_from_day = day(body, "valid_from");
  c.valid_until_day = day(body, "valid_until");
  if (c.valid_until_day < c.valid_from_day) fail_field("valid_until is before valid_from");
  if (c.valid_until_day - c.valid_from_day > limits::programme_days_max) {
    fail_field("a programme lasts at most " + std::to_string(limits::programme_days_max) + " days");
  }
  if (c.valid_until_day > kTokenExpiryDayMax) {
    fail_field("valid_until must be on or before " + engine::format_day(kTokenExpiryDayMax) +
               " (the last day a card token can carry)");
  }
  c.require_pin = opt_bool(body, "require_pin").value_or(false);
  c.max_redemption_cents =
      opt_cents(body, "max_redemption_cents", 0, limits::amount_cents_max).value_or(0);
  c.daily_limit_cents =
      opt_cents(body, "daily_limit_cents", 0, limits::amount_cents_max).value_or(0);
  return run_command(call, std::move(c), http::status::created);
}

Response post_close(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  return run_command(call, engine::CloseProgramme{path_programme(call)}, http::status::ok);
}

Response post_merchant(Call& call) {
  json::object body = parse_body(call.req, {"id", "name", "vat_number", "programmes"});
  engine::AddMerchant c;
  c.id = object_id(body, "id");
  c.name = display_name(body);
  c.vat_number = need_string(body, "vat_number");
  if (!engine::valid_vat_number(c.vat_number)) {
    fail_field("vat_number must be an Italian Partita IVA: 11 digits with a valid check digit");
  }
  c.programmes = need_strings(body, "programmes", 1, limits::merchant_programmes_max);
  for (const std::string& p : c.programmes) {
    if (!engine::valid_object_id(p)) fail_field("programmes must hold programme ids");
  }
  std::string api_key = make_merchant_key();
  c.api_key_hash = api_key_hash(api_key);
  return run_command(call, std::move(c), http::status::created,
                     [&api_key](const engine::Result& result, json::object& out) {
                       if (!result.replayed) out["api_key"] = api_key;
                     });
}

Response post_rotate_key(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  engine::RotateMerchantKey c;
  c.id = call.params[0];
  if (!engine::valid_object_id(c.id)) fail_code(engine::Code::not_found);
  std::string api_key = make_merchant_key();
  c.api_key_hash = api_key_hash(api_key);
  return run_command(call, std::move(c), http::status::ok,
                     [&api_key](const engine::Result& result, json::object& out) {
                       if (!result.replayed) out["api_key"] = api_key;
                     });
}

Response post_card(Call& call) {
  json::object body = parse_body(call.req, {"programme", "beneficiary_ref", "amount_cents"});
  engine::IssueCard c;
  c.programme = object_id(body, "programme");
  c.beneficiary_ref = need_string(body, "beneficiary_ref");
  if (!engine::valid_beneficiary_ref(c.beneficiary_ref)) {
    fail_field("beneficiary_ref must be 1 to " +
               std::to_string(limits::beneficiary_ref_length_max) + " printable ASCII characters");
  }
  c.amount_cents = need_cents(body, "amount_cents", 0, limits::amount_cents_max);
  engine::Programme p = must_find_programme(call, c.programme, engine::Code::not_found);
  return make_card(call, std::move(c), p, http::status::created);
}

Response post_replace(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  engine::ReplaceCard c{resolve_card(call.ctx, call.params[0])};
  auto old_card = engine::find_card(call.ctx.store, c.card);
  if (!old_card.ok()) fail_status(old_card.status());
  if (!old_card->has_value()) fail_code(engine::Code::unknown_card);
  engine::Programme p = must_find_programme(call, (*old_card)->programme, engine::Code::not_found);
  return make_card(call, std::move(c), p, http::status::created);
}

Response post_load(Call& call) {
  json::object body = parse_body(call.req, {"amount_cents"});
  engine::LoadCard c;
  c.amount_cents = need_cents(body, "amount_cents", 1, limits::amount_cents_max);
  c.card = resolve_card(call.ctx, call.params[0]);
  return run_command(call, std::move(c), http::status::ok);
}

Response post_block(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  return run_command(call, engine::BlockCard{resolve_card(call.ctx, call.params[0])},
                     http::status::ok);
}

Response post_unblock(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  return run_command(call, engine::UnblockCard{resolve_card(call.ctx, call.params[0])},
                     http::status::ok);
}

Response post_unlock_pin(Call& call) {
  static_cast<void>(parse_body(call.req, {}));
  return run_command(call, engine::UnlockPin{resolve_card(call.ctx, call.params[0])},
                     http::status::ok);
}

// Settles a period through the engine; answers the stored settlement with
// its lines (201 when this call made it, 200 "already_settled" when the
// period was settled before; a replay of the same key answers as the first).
Response post_settlement(Call& call) {
  json::object body = parse_body(call.req, {"from", "to"});
  engine::Settle c;
  c.from_day = day(body, "from");
  c.to_day = day(body, "to");
  if (c.to_day < c.from_day) fail_field("to is before from");
  c.period_id = engine::settlement_period_id(c.from_day, c.to_day);
  engine::Result result = execute(call, c);
  if (!result.outcome.ok()) return result_response(call, c, result, http::status::ok);
  auto stored = engine::find_settlement(call.ctx.store, c.period_id);
  if (!stored.ok()) fail_status(stored.status());
  if (!stored->has_value())
    fail_status(internal_error("settlement " + c.period_id + " not stored"));
  auto shops = engine::settlement_merchants(call.ctx.store, **stored);
  if (!shops.ok()) fail_status(shops.status());
  const bool already = result.outcome.status == "already_settled";
  return json_response(call.req, already ? http::status::ok : http::status::created,
                       settlement_json(**stored, *shops, already), result.replayed);
}

}  // namespace buoni::api::detail
