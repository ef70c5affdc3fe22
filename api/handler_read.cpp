// Reads: cards (shop, operator, public views), programmes, merchants, health.
// They read committed state (engine/queries.h), so they show only what has
// been acknowledged.
#include <algorithm>

#include "api/handler_internal.h"
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/queries.h"
#include "engine/validate.h"

namespace buoni::api::detail {

CardView load_card(const Call& call, const CardId& id) {
  auto card = engine::find_card(call.ctx.store, id);
  if (!card.ok()) fail_status(card.status());
  if (!card->has_value()) fail_code(engine::Code::unknown_card);
  auto programme = engine::find_programme(call.ctx.store, (*card)->programme);
  if (!programme.ok()) fail_status(programme.status());
  if (!programme->has_value()) fail_status(corruption("a card names a missing programme"));
  return {std::move(**card), std::move(**programme)};
}

namespace {

// A shop sees the cards of the programmes it takes, without the household's
// reference or the card that replaced a revoked one (the old card's holder
// may be the thief it was replaced because of).
json::object shop_card_json(const Call& call, const CardView& v) {
  auto merchant = engine::find_merchant(call.ctx.store, call.caller.merchant_id);
  if (!merchant.ok()) fail_status(merchant.status());
  if (!merchant->has_value()) fail(401, "unauthorized", "unknown API key");
  const auto& programmes = (*merchant)->programmes;
  if (std::find(programmes.begin(), programmes.end(), v.card.programme) == programmes.end()) {
    fail_code(engine::Code::merchant_not_allowed);
  }
  json::object o;
  for (const auto& kv : card_json(v.card, v.programme)) {
    if (kv.key() != "beneficiary_ref" && kv.key() != "replaced_by") o.emplace(kv.key(), kv.value());
  }
  o["pin_required"] = v.card.has_pin;
  return o;
}

}  // namespace

Response get_card(Call& call) {
  CardView v = load_card(call, resolve_card(call.ctx, call.params[0]));
  json::object body = call.admin() ? card_json(v.card, v.programme) : shop_card_json(call, v);
  return json_response(call.req, http::status::ok, body);
}

// The beneficiary's view through the card's link: what a holder of the token
// may know, and no more (no number, no reference, no replacement; the last
// transactions with day, kind, amount and shop name only).
Response get_public_card(Call& call) {
  CardView v = load_card(call, resolve_token(call.ctx, call.params[0]));
  json::object body{
      {"card_number", mask_card_number(v.card.id)},
      {"programme", v.programme.id},
      {"programme_name", v.programme.name},
      {"status", engine::card_status_name(v.card.status)},
      {"currency", "EUR"},
      {"balance_cents", v.card.available_cents},
      {"held_cents", v.card.held_cents},
      {"valid_from", engine::format_day(v.programme.valid_from_day)},
      {"expires_at", engine::format_day(v.programme.valid_until_day)},
      {"last_transactions", public_transactions_json(public_transactions(call.ctx, v.card.id))}};
  return json_response(call.req, http::status::ok, body);
}

Response get_programme(Call& call) {
  if (!engine::valid_object_id(call.params[0])) fail_code(engine::Code::not_found);
  auto p = engine::find_programme(call.ctx.store, call.params[0]);
  if (!p.ok()) fail_status(p.status());
  if (!p->has_value()) fail_code(engine::Code::not_found);
  return json_response(call.req, http::status::ok, programme_json(**p));
}

Response get_merchants(Call& call) {
  constexpr std::size_t limit_default = 100, limit_max = 1000;
  std::size_t limit = limit_default;
  if (auto it = call.query.find("limit"); it != call.query.end()) {
    const std::string& text = it->second;
    bool digits =
        !text.empty() && text.size() <= 4 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    limit = digits ? std::stoul(text) : 0;
    if (limit < 1 || limit > limit_max) {
      fail_field("limit must be a whole number from 1 to " + std::to_string(limit_max));
    }
  }
  auto after = call.query.find("after");
  auto page =
      engine::list_merchants(call.ctx.store, after == call.query.end() ? "" : after->second, limit);
  if (!page.ok()) fail_status(page.status());
  json::array items;
  for (const auto& m : *page) items.push_back(merchant_json(m));
  json::object body{{"merchants", std::move(items)}};
  if (page->size() == limit) body["next"] = page->back().id;
  return json_response(call.req, http::status::ok, body);
}

Response get_healthz(Call& call) {
  return json_response(call.req, http::status::ok, {{"status", "ok"}});
}

Response get_readyz(Call& call) {
  if (call.ctx.engine.failed()) {
    return error_response(call.req, 503, "unavailable",
                          "the engine stopped after a failed write; restart the server");
  }
  return json_response(call.req, http::status::ok, {{"status", "ready"}});
}

}  // namespace buoni::api::detail
