// The till's sessions (api/session.h, engine/session.h): sign in with a
// shop's key, read the current session, sign out.
#include "api/handler_internal.h"
#include "api/session.h"
#include "crypto/api_key.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"

namespace buoni::api::detail {

namespace {

engine::Merchant must_find_merchant(const Call& call, std::string_view id) {
  auto m = engine::find_merchant(call.ctx.store, id);
  if (!m.ok()) fail_status(m.status());
  if (!m->has_value()) fail(401, "unauthorized", "the shop of this session is gone");
  return std::move(**m);
}

json::object session_json(const engine::Merchant& m, engine::TimeMs expires_at_ms,
                          std::string_view session_id) {
  json::array programmes;
  for (const auto& p : m.programmes) programmes.emplace_back(p);
  return {{"merchant_id", m.id},
          {"merchant_name", m.name},
          {"programmes", std::move(programmes)},
          {"expires_at", engine::format_time(expires_at_ms)},
          {"csrf_token", csrf_token(session_id)}};
}

}  // namespace

Response post_session(Call& call) {
  json::object body = parse_body(call.req, {"api_key"});
  std::string key = need_string(body, "api_key");
  if (!key.starts_with(merchant_key_prefix)) {
    fail(401, "unauthorized", "sign in with the shop's key (mk_...)");
  }
  Hash32 key_hash = api_key_hash(key);
  auto found = engine::find_merchant_by_key_hash(call.ctx.store, key_hash);
  if (!found.ok()) fail_status(found.status());
  if (!found->has_value()) fail(401, "unauthorized", "unknown shop key");
  const engine::Merchant& m = **found;
  SystemRandom random;
  std::string id = make_session_id(random);
  call.caller = engine::Caller::merchant(m.id);
  call.keyed = true;
  engine::Result r = execute(call, engine::OpenSession{session_hash(id), key_hash});
  // forbidden: the key was rotated between the look-up and the writer.
  if (r.outcome.code == engine::Code::forbidden) fail(401, "unauthorized", "unknown shop key");
  if (!r.outcome.ok()) fail_code(r.outcome.code);
  Response res =
      json_response(call.req, http::status::created, session_json(m, r.outcome.expires_at_ms, id));
  res.set(http::field::set_cookie,
          session_set_cookie(id, limits::session_ttl_s, call.ctx.secure_cookies));
  return res;
}

Response get_current_session(Call& call) {
  BUONI_ASSERT(call.session.has_value());  // Access::session
  engine::Merchant m = must_find_merchant(call, call.session->merchant);
  return json_response(call.req, http::status::ok,
                       session_json(m, call.session->expires_at_ms, call.session_id));
}

Response post_end_session(Call& call) {
  BUONI_ASSERT(call.session.has_value());  // Access::session
  static_cast<void>(parse_body(call.req, {}));
  engine::Result r = execute(call, engine::EndSession{session_hash(call.session_id)});
  // not_found: ended meanwhile (another tab signed out): ended all the same.
  if (!r.outcome.ok() && r.outcome.code != engine::Code::not_found) fail_code(r.outcome.code);
  Response res = json_response(call.req, http::status::ok, json::object{{"ended", true}});
  res.set(http::field::set_cookie, session_clear_cookie(call.ctx.secure_cookies));
  return res;
}

}  // namespace buoni::api::detail
