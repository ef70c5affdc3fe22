// handle_request: routing, keys, answers. The routes are in handler_*.cpp.
#include "api/handler.h"

#include <array>
#include <new>

#include "api/error_table.h"
#include "api/handler_internal.h"
#include "api/render.h"
#include "api/session.h"
#include "crypto/hash.h"
#include "engine/codec.h"
#include "engine/queries.h"
#include "engine/session.h"

namespace buoni::api {

using namespace detail;

namespace {

// keyed: merchant or admin; session: a shop signed in by cookie (api/session.h).
// Merchant and keyed routes take a shop's key or its session cookie.
enum class Access : std::uint8_t { open, merchant, admin, keyed, session };
enum class Idem : std::uint8_t { none, optional, required };

struct Route {
  http::verb method;
  std::string_view pattern;
  Access access;
  Idem idem;
  Response (*handler)(Call&);
  std::array<std::string_view, 4> query{};  // the query parameters it takes
  // Ends in one engine command through run_command, after point reads only:
  // prepare_request may split it (the shop's money routes).
  bool split = false;
};

// clang-format off
constexpr std::array routes{
    Route{http::verb::post, "/v1/redemptions", Access::merchant, Idem::required, post_redemption, {}, true},
    Route{http::verb::post, "/v1/authorizations", Access::merchant, Idem::required, post_authorization, {}, true},
    Route{http::verb::post, "/v1/authorizations/{id}/capture", Access::merchant, Idem::required, post_capture, {}, true},
    Route{http::verb::post, "/v1/authorizations/{id}/void", Access::merchant, Idem::required, post_void, {}, true},
    Route{http::verb::post, "/v1/refunds", Access::merchant, Idem::required, post_refund, {}, true},
    Route{http::verb::get, "/v1/cards/{card}", Access::keyed, Idem::none, get_card},
    Route{http::verb::get, "/v1/transactions", Access::merchant, Idem::none, get_transactions, {"from", "to", "cursor", "limit"}},
    Route{http::verb::post, "/v1/programmes", Access::admin, Idem::optional, post_programme},
    Route{http::verb::get, "/v1/programmes/{id}", Access::admin, Idem::none, get_programme},
    Route{http::verb::post, "/v1/programmes/{id}/close", Access::admin, Idem::optional, post_close},
    Route{http::verb::post, "/v1/merchants", Access::admin, Idem::optional, post_merchant},
    Route{http::verb::get, "/v1/merchants", Access::admin, Idem::none, get_merchants, {"after", "limit"}},
    Route{http::verb::post, "/v1/cards", Access::admin, Idem::optional, post_card},
    Route{http::verb::post, "/v1/cards/{card}/loads", Access::admin, Idem::optional, post_load},
    Route{http::verb::post, "/v1/cards/{card}/block", Access::admin, Idem::optional, post_block},
    Route{http::verb::post, "/v1/cards/{card}/unblock", Access::admin, Idem::optional, post_unblock},
    Route{http::verb::post, "/v1/cards/{card}/unlock-pin", Access::admin, Idem::optional, post_unlock_pin},
    Route{http::verb::post, "/v1/cards/{card}/replace", Access::admin, Idem::optional, post_replace},
    Route{http::verb::post, "/v1/settlements", Access::admin, Idem::optional, post_settlement},
    Route{http::verb::get, "/v1/public/cards/{token}", Access::open, Idem::none, get_public_card},
    Route{http::verb::get, "/c/{token}", Access::open, Idem::none, get_card_page},
    Route{http::verb::post, "/v1/merchants/{id}/rotate-key", Access::admin, Idem::optional, post_rotate_key},
    Route{http::verb::get, "/v1/authorizations", Access::merchant, Idem::none, get_authorizations},
    Route{http::verb::post, "/v1/sessions", Access::open, Idem::none, post_session},
    Route{http::verb::get, "/v1/sessions/current", Access::session, Idem::none, get_current_session},
    Route{http::verb::post, "/v1/sessions/current/end", Access::session, Idem::none, post_end_session},
    Route{http::verb::get, "/pos", Access::open, Idem::none, get_pos},
    Route{http::verb::get, "/pos/{asset}", Access::open, Idem::none, get_pos_asset},
    Route{http::verb::get, "/healthz", Access::open, Idem::none, get_healthz},
    Route{http::verb::get, "/readyz", Access::open, Idem::none, get_readyz},
};
// clang-format on

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  path.remove_prefix(1);  // the leading '/'
  for (;;) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// Decoded segments if `segments` fit `pattern` ({x} takes any non-empty one).
std::optional<std::vector<std::string>> fit(std::string_view pattern,
                                            const std::vector<std::string>& segments) {
  std::vector<std::string_view> want = split_path(pattern);
  if (want.size() != segments.size()) return std::nullopt;
  std::vector<std::string> params;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].starts_with('{')) {
      if (segments[i].empty()) return std::nullopt;
      params.push_back(segments[i]);
    } else if (want[i] != segments[i]) {
      return std::nullopt;
    }
  }
  return params;
}

struct Match {
  const Route* route = nullptr;
  std::vector<std::string> params;
  std::string allow;  // methods the path takes, when the method is not one
};

// nullopt: the path is not a path (no leading '/', bad percent-encoding).
std::optional<Match> match(http::verb method, std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::vector<std::string> segments;
  for (std::string_view raw : split_path(path)) {
    auto decoded = percent_decode(raw, false);
    if (!decoded) return std::nullopt;
    segments.push_back(std::move(*decoded));
  }
  Match m;
  for (const Route& r : routes) {
    auto params = fit(r.pattern, segments);
    if (!params) continue;
    if (r.method == method) {
      m.route = &r;
      m.params = std::move(*params);
      return m;
    }
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += std::string(http::to_string(r.method));
  }
  return m;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::string_view query_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

bool bearer_scheme(std::string_view value) {
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i]) return false;
  }
  return true;
}

engine::Caller caller_of_key(ApiContext& ctx, std::string_view key) {
  Hash32 hash = blake2b_256(key);
  if (key.starts_with("ak_") && constant_time_equal(hash, ctx.admin_key_hash)) {
    return engine::Caller::admin();
  }
  if (key.starts_with("mk_")) {
    auto merchant = engine::find_merchant_by_key_hash(ctx.store, hash);
    if (!merchant.ok()) fail_status(merchant.status());
    if (merchant->has_value()) return engine::Caller::merchant((*merchant)->id);
  }
  fail(401, "unauthorized", "unknown API key");
}

// A shop signed in by its session cookie (api/session.h): valid, and for
// anything but a read, with the session's CSRF token.
engine::Caller session_caller(Call& call, std::string id, Access access) {
  auto session =
      engine::find_valid_session(call.ctx.store, session_hash(id), call.ctx.clock.now_ms());
  if (!session.ok()) fail_status(session.status());
  if (!session->has_value()) {
    fail(401, "unauthorized", "the session has ended or is not known; sign in again");
  }
  if (access == Access::admin) fail(403, "forbidden", "this call needs the admin key");
  if (call.req.method() != http::verb::get) {
    auto token = call.req.find(csrf_header);
    if (token == call.req.end() || !csrf_matches(id, token->value())) {
      fail(403, "csrf_failed", "a call made with the session cookie needs its X-CSRF-Token header");
    }
  }
  engine::Caller caller = engine::Caller::merchant((*session)->merchant);
  call.session = std::move(**session);
  call.session_id = std::move(id);
  return caller;
}

engine::Caller authenticate(Call& call, Access access) {
  const Request& req = call.req;
  auto it = req.find(http::field::authorization);
  if (it == req.end()) {
    if (auto id = session_cookie(req)) return session_caller(call, std::move(*id), access);
    if (access == Access::session) fail(401, "unauthorized", "not signed in (POST /v1/sessions)");
    fail(401, "unauthorized", "this call needs the header Authorization: Bearer <key>");
  }
  if (access == Access::session) {
    fail(401, "unauthorized", "this call needs the session cookie of POST /v1/sessions");
  }
  std::string_view value = it->value();
  if (!bearer_scheme(value)) {
    fail(401, "unauthorized", "the Authorization header must be: Bearer <key>");
  }
  engine::Caller caller = caller_of_key(call.ctx, value.substr(7));
  bool admin = caller.role == engine::Caller::Role::admin;
  if (access == Access::admin && !admin) fail(403, "forbidden", "this call needs the admin key");
  if (access == Access::merchant && admin) fail(403, "forbidden", "this call needs a shop's key");
  return caller;
}

// How far dispatch goes: the whole request, or (for the server) up to a
// split route's engine command, leaving other routes to a blocking thread.
enum class Mode : std::uint8_t { whole, split };

Prepared answered(Response res) {
  Prepared p;
  p.kind = Prepared::Kind::answer;
  p.answer = std::move(res);
  return p;
}

Prepared dispatch(ApiContext& ctx, const Request& req, Mode mode) {
  std::string_view target = req.target();
  auto m = match(req.method(), path_of(target));
  if (!m) fail(400, "bad_request", "the request target is not a valid path");
  if (!m->route) {
    if (m->allow.empty()) fail(404, "not_found", "no such route");
    Response res =
        error_response(req, 405, "method_not_allowed", "this path takes only: " + m->allow);
    res.set(http::field::allow, m->allow);
    return answered(std::move(res));
  }
  const Route& route = *m->route;
  if (mode == Mode::split && !route.split) {
    Prepared p;
    p.kind = Prepared::Kind::blocking;
    return p;
  }
  // A page of another site cannot make the browser change anything here
  // (its form posts carry its Origin); sign-in included.
  if (req.method() != http::verb::get && !same_origin(req)) {
    fail(403, "csrf_failed", "the request comes from another site's page");
  }
  Call call{ctx, req, std::move(m->params), {}, {}, false, {}, nullptr, {}, std::nullopt};
  if (route.access != Access::open) {
    call.caller = authenticate(call, route.access);
    call.keyed = true;
  }
  if (route.idem != Idem::none) {
    call.idempotency_key = idempotency_key(req, route.idem == Idem::required);
  }
  call.query = parse_query(query_of(target));
  allow_query(call, route.query);
  if (!route.split) return answered(route.handler(call));
  Prepared p;
  call.defer = &p.step;
  Response res = route.handler(call);
  if (!p.step.render) return answered(std::move(res));  // refused before the engine
  p.kind = Prepared::Kind::command;
  return p;
}

// `body`'s answer, or the answer to what it threw.
template <class Body>
Response guarded(const Request& req, Body&& body) {
  try {
    return body();
  } catch (const HttpError& e) {
    Response res = wants_html(req) ? page_error_response(req, e.status, e.code)
                                   : error_response(req, e.status, e.code, e.message);
    if (e.retry_after) res.set(http::field::retry_after, "1");
    return res;
  } catch (const std::bad_alloc&) {
    Response res = error_response(req, 503, "unavailable", "out of memory; retry later");
    res.set(http::field::retry_after, "1");
    return res;
  } catch (const std::exception&) {
    return error_response(req, 500, "internal", "internal error");
  }
}

Prepared prepare(ApiContext& ctx, const Request& req, Mode mode) {
  Prepared out;
  bool dispatched = false;
  Response refused = guarded(req, [&] {
    out = dispatch(ctx, req, mode);
    dispatched = true;
    return Response{};
  });
  if (!dispatched) out = answered(std::move(refused));
  return out;
}

}  // namespace

Response handle_request(ApiContext& ctx, const Request& req) {
  Prepared p = prepare(ctx, req, Mode::whole);
  if (p.kind != Prepared::Kind::command) {
    add_security_headers(p.answer);
    return std::move(p.answer);
  }
  auto result = ctx.engine.execute(std::move(p.step.request));  // render needs only itself
  return finish_request(req, p.step, result);
}

Prepared prepare_request(ApiContext& ctx, const Request& req) {
  Prepared p = prepare(ctx, req, Mode::split);
  if (p.kind == Prepared::Kind::answer) add_security_headers(p.answer);
  return p;
}

Response finish_request(const Request& req, const EngineStep& step,
                        const StatusOr<engine::Result>& result) {
  Response res = guarded(req, [&] {
    if (!result.ok()) fail_status(result.status());
    return step.render(req, *result);
  });
  add_security_headers(res);
  return res;
}

void add_security_headers(Response& res) {
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  if (res.find("Content-Security-Policy") == res.end()) {
    res.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  }
}

std::string_view route_of(const Request& req) {
  try {
    auto m = match(req.method(), path_of(req.target()));
    return m && m->route ? m->route->pattern : std::string_view();
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<std::string> route_list() {
  std::vector<std::string> out;
  for (const Route& r : routes) {
    out.push_back(std::string(http::to_string(r.method)) + " " + std::string(r.pattern));
  }
  return out;
}

StatusOr<Hash32> read_admin_key_hash(const engine::Store& store) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(engine::Space::meta, engine::keys::admin_key_hash));
  if (!raw) return not_found("the store has no admin key hash (run buoni init)");
  engine::Reader r(*raw);
  Hash32 hash{};
  std::uint8_t version = r.u8();
  r.raw(hash);
  if (version != engine::format_v1 || !r.ok_and_done()) {
    return corruption("malformed meta admin_key_hash");
  }
  return hash;
}

}  // namespace buoni::api

namespace buoni::api::detail {

void fail(int status, std::string_view code, std::string message) {
  throw HttpError{status, std::string(code), std::move(message)};
}
void fail_field(std::string message) {
  fail(400, "invalid_field", std::move(message));
}
void fail_amount(std::string message) {
  fail(400, "invalid_amount", std::move(message));
}
void fail_card(std::string message) {
  fail(400, "invalid_card", std::move(message));
}
void fail_code(engine::Code code) {
  fail(error_info(code).http_status, engine::code_name(code),
       std::string(engine::code_message(code)));
}
void fail_status(const Status& status) {
  if (status.code() == StatusCode::busy) {
    throw HttpError{503, "unavailable", "the server is busy; retry shortly", true};
  }
  throw HttpError{503, "unavailable", "storage is unavailable; retry later", false};
}

Response json_response(const Request& req, http::status status, const json::object& body,
                       bool replayed) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  if (replayed) res.set("Idempotent-Replayed", "true");
  res.keep_alive(req.keep_alive());
  res.body() = json::serialize(body);
  res.prepare_payload();
  return res;
}

Response error_response(const Request& req, int status, std::string_view code,
                        std::string_view message) {
  return json_response(req, static_cast<http::status>(status), error_json(code, message));
}

engine::Result execute(Call& call, engine::Command command) {
  BUONI_ASSERT(call.keyed);  // commands come from keyed routes only
  auto result = call.ctx.engine.execute({call.caller, call.idempotency_key, std::move(command)});
  if (!result.ok()) fail_status(result.status());
  return std::move(result).value();
}

Response result_response(const Request& req, const engine::Command& command,
                         const engine::Result& result, http::status ok_status,
                         const Extend& extend) {
  const engine::Outcome& o = result.outcome;
  if (!o.ok()) {
    auto status = static_cast<http::status>(error_info(o.code).http_status);
    return json_response(req, status, error_json(o.code, o), result.replayed);
  }
  json::object body = outcome_json(command, o);
  if (extend) extend(result, body);
  return json_response(req, ok_status, body, result.replayed);
}

Response result_response(Call& call, const engine::Command& command, const engine::Result& result,
                         http::status ok_status, const Extend& extend) {
  return result_response(call.req, command, result, ok_status, extend);
}

Response run_command(Call& call, engine::Command command, http::status ok_status,
                     const Extend& extend) {
  if (call.defer) {
    BUONI_ASSERT(call.keyed);  // commands come from keyed routes only
    call.defer->request = {call.caller, call.idempotency_key, command};
    call.defer->render = [command = std::move(command), ok_status, extend](
                             const Request& req, const engine::Result& result) {
      return result_response(req, command, result, ok_status, extend);
    };
    return Response{};
  }
  engine::Result result = execute(call, command);
  return result_response(call, command, result, ok_status, extend);
}

}  // namespace buoni::api::detail
