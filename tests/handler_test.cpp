// The HTTP API's pure handler (api/handler.h), called without sockets over an
// Engine on a MemoryStore with a pinned ManualClock: every route's success,
// every error code each route can give, keys and roles, idempotent replays
// and conflicts, strict bodies, card references, signed receipts.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/handler.h"
#include "api/session.h"
#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/limits.h"
#include "engine/memory_store.h"
#include "percent.h"

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using buoni::CardId;
using buoni::api::ApiContext;
using buoni::api::Request;
using buoni::api::Response;
using buoni::engine::TimeMs;
using buoni::test::percent_encoded;

constexpr TimeMs kMinute = 60'000;
constexpr TimeMs kDay = buoni::engine::ms_per_day;

TimeMs at(std::string_view day, int hour = 0) {
  auto d = buoni::engine::parse_day(day);
  REQUIRE(d.has_value());
  return *d * kDay + hour * 60 * kMinute;
}

const std::string kAdmin = "ak_test";
const std::string kStartDay = "2026-02-10";

struct Card {
  std::string id, number, token, link, pin;
};

json::object parsed(const Response& res) {
  json::value v = json::parse(res.body());
  REQUIRE(v.is_object());
  return v.as_object();
}

std::string code_of(const Response& res) {
  json::object o = parsed(res);
  if (!o.contains("error")) return "";
  return std::string(o["error"].as_object()["code"].as_string());
}

std::string str(const json::object& o, std::string_view name) {
  auto it = o.find(name);
  REQUIRE_MESSAGE(it != o.end(), "no field " << name);
  REQUIRE(it->value().is_string());
  return std::string(it->value().as_string());
}

std::int64_t num(const json::object& o, std::string_view name) {
  auto it = o.find(name);
  REQUIRE_MESSAGE(it != o.end(), "no field " << name);
  return it->value().to_number<std::int64_t>();
}

// The status and error code of an answer, checked together so a failure shows both.
#define CHECK_ERR(res, status, code)    \
  do {                                  \
    const Response& r_ = (res);         \
    INFO("body: " << r_.body());        \
    CHECK(r_.result_int() == (status)); \
    CHECK(code_of(r_) == (code));       \
  } while (0)

#define CHECK_OK(res, status)             \
  do {                                    \
    const Response& r_ = (res);           \
    INFO("body: " << r_.body());          \
    REQUIRE(r_.result_int() == (status)); \
  } while (0)

struct Api {
  buoni::engine::MemoryStore store;
  buoni::engine::ManualClock clock{at(kStartDay, 10)};
  buoni::SeededRandom random{42};
  buoni::SigningKey key = buoni::SigningKey::generate(1);
  std::array<std::uint8_t, 32> pepper{1, 2, 3};
  std::unique_ptr<buoni::engine::Engine> engine;
  std::unique_ptr<ApiContext> ctx;
  int next_key = 0;

  Api() {
    auto e = buoni::engine::Engine::open(store, key, clock, random);
    REQUIRE(e.ok());
    engine = std::move(e).value();
    ctx = std::make_unique<ApiContext>(ApiContext{
        *engine, store, key, {key.verify_key()}, pepper, buoni::blake2b_256(kAdmin), clock});
  }

  Response send(http::verb method, std::string_view target, std::string_view body = "",
                std::string_view api_key = "", std::string_view idem = "") {
    Request req{method, target, 11};
    if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + std::string(api_key));
    if (!idem.empty()) req.set("Idempotency-Key", idem);
    req.body() = std::string(body);
    req.prepare_payload();
    Response res = handle_request(*ctx, req);
    CHECK(res[http::field::content_type] == "application/json");
    return res;
  }
  // A GET whose answer may be HTML (the beneficiary's page).
  Response page(std::string_view target) {
    Request req{http::verb::get, target, 11};
    req.prepare_payload();
    return handle_request(*ctx, req);
  }
  Response get(std::string_view target, std::string_view api_key = "") {
    return send(http::verb::get, target, "", api_key);
  }
  Response admin(std::string_view target, std::string_view body = "", std::string_view idem = "") {
    return send(http::verb::post, target, body, kAdmin, idem);
  }
  // A shop call with a fresh idempotency key unless one is given.
  Response shop(const std::string& api_key, std::string_view target, std::string_view body,
                std::string idem = "") {
    if (idem.empty()) idem = "k" + std::to_string(++next_key);
    return send(http::verb::post, target, body, api_key, idem);
  }

  void programme(const std::string& id, const std::string& extra = "",
                 const std::string& from = "2026-02-01", const std::string& until = "2026-03-31") {
    std::string body = R"({"id":")" + id + R"(","name":"Buoni )" + id +
                       R"(","budget_cents":1000000,"valid_from":")" + from +
                       R"(","valid_until":")" + until + "\"" + extra + "}";
    CHECK_OK(admin("/v1/programmes", body), 201);
  }
  std::string merchant(const std::string& id, const std::string& programmes,
                       const std::string& vat = "01234567897") {
    Response res = admin("/v1/merchants", R"({"id":")" + id + R"(","name":"Shop )" + id +
                                              R"(","vat_number":")" + vat + R"(","programmes":)" +
                                              programmes + "}");
    CHECK_OK(res, 201);
    return str(parsed(res), "api_key");
  }
  Card issue(const std::string& programme_id, const std::string& ref, std::int64_t amount) {
    Response res =
        admin("/v1/cards", R"({"programme":")" + programme_id + R"(","beneficiary_ref":")" + ref +
                               R"(","amount_cents":)" + std::to_string(amount) + "}");
    CHECK_OK(res, 201);
    json::object o = parsed(res);
    Card c{str(o, "id"), str(o, "number"), str(o, "token"), str(o, "link"), ""};
    if (o.contains("pin")) c.pin = str(o, "pin");
    return c;
  }
  Response redeem(const std::string& api_key, const std::string& card, std::int64_t amount,
                  const std::string& extra = "", const std::string& idem = "") {
    return shop(
        api_key, "/v1/redemptions",
        R"({"card":")" + card + R"(","amount_cents":)" + std::to_string(amount) + extra + "}",
        idem);
  }
  Response authorize(const std::string& api_key, const std::string& card, std::int64_t amount,
                     const std::string& extra = "") {
    return shop(
        api_key, "/v1/authorizations",
        R"({"card":")" + card + R"(","amount_cents":)" + std::to_string(amount) + extra + "}");
  }
  std::int64_t balance(const Card& c) {
    Response res = get("/v1/cards/" + c.id, kAdmin);
    CHECK_OK(res, 200);
    return num(parsed(res), "balance_cents");
  }
};

// The usual world: programme p1, shop m1 taking it, one card with 10000 cents.
struct World : Api {
  std::string m1;
  Card card;
  World() {
    programme("p1");
    m1 = merchant("m1", R"(["p1"])");
    card = issue("p1", "FAM-1", 10000);
  }
};

// ---- operations and routing ----------------------------------------------

TEST_CASE("healthz and readyz; readyz is 503 once the engine has failed") {
  Api api;
  Response h = api.get("/healthz");
  CHECK(h.result_int() == 200);
  CHECK(parsed(h)["status"] == "ok");
  CHECK(api.get("/readyz").result_int() == 200);
  api.store.fail_writes_after(0);
  CHECK_ERR(api.admin("/v1/programmes", R"({"id":"p","name":"P","budget_cents":1,)"
                                        R"("valid_from":"2026-02-01","valid_until":"2026-02-02"})"),
            503, "unavailable");
  CHECK_ERR(api.get("/readyz"), 503, "unavailable");
}

TEST_CASE("unknown routes are 404, wrong methods 405 with Allow, bad targets 400") {
  Api api;
  CHECK_ERR(api.get("/nope"), 404, "not_found");
  CHECK_ERR(api.get("/v1/redemptions/x/y"), 404, "not_found");
  CHECK_ERR(api.get("/v1/cards/"), 404, "not_found");
  Response r = api.get("/v1/redemptions", kAdmin);
  CHECK_ERR(r, 405, "method_not_allowed");
  CHECK(r[http::field::allow] == "POST");
  Response cards = api.send(http::verb::delete_, "/v1/cards");
  CHECK_ERR(cards, 405, "method_not_allowed");
  CHECK(cards[http::field::allow] == "POST");
  CHECK_ERR(api.get("/v1/public/cards/%zz"), 400, "bad_request");
  CHECK_ERR(api.get("nope"), 400, "bad_request");
  CHECK_ERR(api.get("/healthz?x=%4"), 400, "bad_request");
  CHECK_ERR(api.send(http::verb::head, "/healthz"), 405, "method_not_allowed");
  // Query parameters a route does not take are refused, as unknown fields are.
  CHECK_ERR(api.get("/healthz?verbose=1"), 400, "invalid_field");
  CHECK_ERR(api.admin("/v1/programmes?dry_run=1", "{}"), 400, "invalid_field");
}

TEST_CASE("route_of names the matched pattern; route_list has every route") {
  Request req{http::verb::post, "/v1/authorizations/au_1/capture", 11};
  CHECK(buoni::api::route_of(req) == "/v1/authorizations/{id}/capture");
  req.method(http::verb::get);
  CHECK(buoni::api::route_of(req).empty());
  req.target("/v1/public/cards/abc?x=1");
  CHECK(buoni::api::route_of(req) == "/v1/public/cards/{token}");
  auto list = buoni::api::route_list();
  CHECK(list.size() == 30);
  CHECK(std::find(list.begin(), list.end(), "GET /v1/transactions") != list.end());
  CHECK(std::find(list.begin(), list.end(), "GET /c/{token}") != list.end());
  CHECK(std::find(list.begin(), list.end(), "POST /v1/redemptions") != list.end());
  CHECK(std::find(list.begin(), list.end(), "GET /readyz") != list.end());
}

TEST_CASE("keys: 401 without or with an unknown key, 403 for the wrong role") {
  World w;
  const std::string body = R"({"card":")" + w.card.number + R"(","amount_cents":1})";
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, "", "k"), 401, "unauthorized");
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, "mk_nobody", "k"), 401,
            "unauthorized");
  CHECK_ERR(w.send(http::verb::post, "/v1/programmes", "{}", "ak_wrong"), 401, "unauthorized");
  CHECK_ERR(w.send(http::verb::post, "/v1/programmes", "{}", "sk_what"), 401, "unauthorized");
  CHECK_ERR(w.get("/v1/programmes/p1", "mk_"), 401, "unauthorized");
  {
    Request req{http::verb::get, "/v1/programmes/p1", 11};
    req.set(http::field::authorization, "Basic " + kAdmin);
    CHECK_ERR(handle_request(*w.ctx, req), 401, "unauthorized");
    req.set(http::field::authorization, "bearer " + kAdmin);  // the scheme is case-insensitive
    CHECK(handle_request(*w.ctx, req).result_int() == 200);
  }
  // A shop's key on operator calls, the admin key on shop calls.
  CHECK_ERR(w.send(http::verb::post, "/v1/programmes", "{}", w.m1), 403, "forbidden");
  CHECK_ERR(w.get("/v1/programmes/p1", w.m1), 403, "forbidden");
  CHECK_ERR(w.send(http::verb::post, "/v1/cards/" + w.card.id + "/block", "", w.m1), 403,
            "forbidden");
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, kAdmin, "k"), 403, "forbidden");
  // The public card view needs no key.
  CHECK(w.get("/v1/public/cards/" + w.card.link).result_int() == 200);
}

// ---- programmes -----------------------------------------------------------

TEST_CASE("programmes: create, show, duplicate, unknown") {
  Api api;
  Response r =
      api.admin("/v1/programmes", R"({"id":"venezia-2026","name":"Buoni spesa Venezia",)"
                                  R"("budget_cents":500000,"valid_from":"2026-02-01",)"
                                  R"("valid_until":"2026-12-31","require_pin":true,)"
                                  R"("max_redemption_cents":20000,"daily_limit_cents":30000})");
  CHECK_OK(r, 201);
  json::object o = parsed(r);
  CHECK(str(o, "id") == "venezia-2026");
  CHECK(num(o, "budget_cents") == 500000);
  CHECK(o["require_pin"] == true);
  CHECK(str(o, "valid_until") == "2026-12-31");
  Response show = api.get("/v1/programmes/venezia-2026", kAdmin);
  CHECK_OK(show, 200);
  json::object s = parsed(show);
  CHECK(num(s, "budget_cents") == 500000);
  CHECK(num(s, "issued_cents") == 0);
  CHECK(num(s, "cards") == 0);
  CHECK(str(s, "status") == "open");
  CHECK_ERR(api.admin("/v1/programmes", R"({"id":"venezia-2026","name":"X","budget_cents":1,)"
                                        R"("valid_from":"2026-02-01","valid_until":"2026-02-02"})"),
            409, "already_exists");
  CHECK_ERR(api.get("/v1/programmes/nope", kAdmin), 404, "not_found");
  CHECK_ERR(api.get("/v1/programmes/no%20pe", kAdmin), 404, "not_found");
  CHECK_ERR(api.get("/v1/programmes/venezia-2026?verbose=1", kAdmin), 400, "invalid_field");
}

TEST_CASE("programmes: strict bodies") {
  Api api;
  auto create = [&](const std::string& body) { return api.admin("/v1/programmes", body); };
  const std::string dates = R"("valid_from":"2026-02-01","valid_until":"2026-03-01")";
  const std::string head = R"({"id":"p","name":"P",)";
  CHECK_ERR(create(""), 400, "invalid_json");
  CHECK_ERR(create("{"), 400, "invalid_json");
  CHECK_ERR(create("[1,2]"), 400, "invalid_json");
  CHECK_ERR(create(head + R"("budget_cents":5,)" + dates + ",}"), 400, "invalid_json");
  CHECK_ERR(create(head + R"("budget_cents":5,"budget_cents":500000,)" + dates + "}"), 400,
            "invalid_json");
  Response unknown = create(head + R"("budget_cents":5,"colour":"red",)" + dates + "}");
  CHECK_ERR(unknown, 400, "invalid_field");
  CHECK(unknown.body().find("colour") != std::string::npos);
  CHECK_ERR(create(head + dates + "}"), 400, "invalid_field");  // budget_cents missing
  CHECK_ERR(create(R"({"id":"p","budget_cents":5,)" + dates + "}"), 400, "invalid_field");
  CHECK_ERR(create(head + R"("budget_cents":"500",)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":12.5,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":100.0,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":1e3,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":-5,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":0,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":null,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":100000000001,)" + dates + "}"), 400, "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":18446744073709551615,)" + dates + "}"), 400,
            "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":99999999999999999999999,)" + dates + "}"), 400,
            "invalid_amount");
  CHECK_ERR(create(head + R"("budget_cents":5,"max_redemption_cents":-1,)" + dates + "}"), 400,
            "invalid_amount");
  CHECK_ERR(
      create(head + R"("budget_cents":5,"valid_from":"2026-02-30","valid_until":"2026-03-01"})"),
      400, "invalid_field");
  CHECK_ERR(
      create(head + R"("budget_cents":5,"valid_from":"2026-03-01","valid_until":"2026-02-01"})"),
      400, "invalid_field");
  // Past the last day a card token can carry (2149-06-06).
  CHECK_ERR(
      create(head + R"("budget_cents":5,"valid_from":"2149-06-01","valid_until":"2149-06-07"})"),
      400, "invalid_field");
  CHECK_OK(create(R"({"id":"p-last","name":"P","budget_cents":5,"valid_from":"2149-06-01",)"
                  R"("valid_until":"2149-06-06"})"),
           201);
  CHECK_ERR(create(head + R"("budget_cents":5,"valid_from":20260201,"valid_until":"2026-02-01"})"),
            400, "invalid_field");
  CHECK_ERR(create(head + R"("budget_cents":5,"require_pin":"yes",)" + dates + "}"), 400,
            "invalid_field");
  CHECK_ERR(create(R"({"id":"bad id","name":"P","budget_cents":5,)" + dates + "}"), 400,
            "invalid_field");
  CHECK_ERR(create(R"({"id":"p","name":"","budget_cents":5,)" + dates + "}"), 400, "invalid_field");
  CHECK_ERR(create(R"({"id":"p","name":"P\u0001","budget_cents":5,)" + dates + "}"), 400,
            "invalid_field");
  CHECK_ERR(create("{\"id\":\"p\xff\",\"name\":\"P\"}"), 400, "invalid_json");  // not UTF-8
  CHECK_OK(create(head + R"("budget_cents":5,)" + dates + "}"), 201);
}

TEST_CASE("programmes: close only after valid_until; closed once") {
  World w;
  CHECK_ERR(w.admin("/v1/programmes/p1/close"), 409, "programme_not_ended");
  CHECK_ERR(w.admin("/v1/programmes/nope/close"), 404, "not_found");
  CHECK_ERR(w.admin("/v1/programmes/p1/close", R"({"force":true})"), 400, "invalid_field");
  w.clock.set(at("2026-04-01", 1));
  Response r = w.admin("/v1/programmes/p1/close", "{}");
  CHECK_OK(r, 200);
  CHECK(str(parsed(r), "status") == "closed");
  CHECK(num(parsed(r), "expired_cents") == 10000);
  CHECK_ERR(w.admin("/v1/programmes/p1/close"), 402, "programme_closed");
  CHECK(str(parsed(w.get("/v1/programmes/p1", kAdmin)), "status") == "closed");
}

// ---- merchants ------------------------------------------------------------

TEST_CASE("merchants: the key is shown once, works, and is not replayed") {
  Api api;
  api.programme("p1");
  const std::string body =
      R"({"id":"forno","name":"Forno","vat_number":"IT01234567897","programmes":["p1"]})";
  Response first = api.admin("/v1/merchants", body, "add-forno");
  CHECK_OK(first, 201);
  json::object o = parsed(first);
  std::string key = str(o, "api_key");
  CHECK(key.size() == 3 + 64);
  CHECK(key.starts_with("mk_"));
  CHECK(str(o, "vat_number") == "01234567897");
  CHECK(first["Idempotent-Replayed"].empty());
  Response again = api.admin("/v1/merchants", body, "add-forno");
  CHECK_OK(again, 201);
  CHECK(again["Idempotent-Replayed"] == "true");
  json::object a = parsed(again);
  CHECK_FALSE(a.contains("api_key"));
  o.erase("api_key");
  CHECK(json::serialize(a) == json::serialize(o));
  // The key works: a card lookup as that shop.
  Card c = api.issue("p1", "F1", 100);
  CHECK(api.get("/v1/cards/" + c.number, key).result_int() == 200);
  // Same id again without the key: already_exists; changed body under the key: conflict.
  CHECK_ERR(api.admin("/v1/merchants", body), 409, "already_exists");
  CHECK_ERR(api.admin("/v1/merchants",
                      R"({"id":"other","name":"Forno","vat_number":)"
                      R"("01234567897","programmes":["p1"]})",
                      "add-forno"),
            409, "idempotency_conflict");
}

TEST_CASE("merchants: field errors and unknown programmes") {
  Api api;
  api.programme("p1");
  auto add = [&](const std::string& body) { return api.admin("/v1/merchants", body); };
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567890","programmes":["p1"]})"), 400,
            "invalid_field");  // wrong check digit
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897","programmes":"p1"})"), 400,
            "invalid_field");
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897","programmes":[]})"), 400,
            "invalid_field");
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897","programmes":[1]})"), 400,
            "invalid_field");
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897"})"), 400, "invalid_field");
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897","programmes":["p1"],)"
                R"("api_key":"mk_mine"})"),
            400, "invalid_field");
  CHECK_ERR(add(R"({"id":"s","name":"S","vat_number":"01234567897","programmes":["nope"]})"), 404,
            "not_found");
}

TEST_CASE("merchants: list with a cursor") {
  Api api;
  api.programme("p1");
  for (const char* id : {"a", "b", "c"}) api.merchant(id, R"(["p1"])");
  Response all = api.get("/v1/merchants", kAdmin);
  CHECK_OK(all, 200);
  CHECK(parsed(all)["merchants"].as_array().size() == 3);
  CHECK_FALSE(parsed(all).contains("api_key_hash"));
  Response page = api.get("/v1/merchants?limit=2", kAdmin);
  json::object p = parsed(page);
  CHECK(p["merchants"].as_array().size() == 2);
  CHECK(str(p, "next") == "b");
  json::object rest = parsed(api.get("/v1/merchants?limit=2&after=b", kAdmin));
  REQUIRE(rest["merchants"].as_array().size() == 1);
  CHECK(rest["merchants"].as_array()[0].as_object()["id"] == "c");
  CHECK_FALSE(rest.contains("next"));
  CHECK_ERR(api.get("/v1/merchants?limit=0", kAdmin), 400, "invalid_field");
  CHECK_ERR(api.get("/v1/merchants?limit=x", kAdmin), 400, "invalid_field");
  CHECK_ERR(api.get("/v1/merchants?sort=id", kAdmin), 400, "invalid_field");
  CHECK_ERR(api.get("/v1/merchants?limit=1&limit=2", kAdmin), 400, "bad_request");
}

// ---- cards (operator) -----------------------------------------------------

TEST_CASE("cards: issue answers number, token and link; one per beneficiary") {
  World w;
  CHECK(w.card.number.size() == 21);
  CHECK(w.card.token.starts_with("BS1:"));
  CHECK(w.card.token.size() == buoni::kTokenQrTextSize);
  CHECK(w.card.link.size() == buoni::kTokenLinkSize);
  CHECK(w.card.pin.empty());
  auto verified = buoni::verify_token(w.card.token, w.ctx->verify_keys,
                                      buoni::engine::day_of(w.clock.now_ms()));
  REQUIRE(verified.ok());
  CHECK(buoni::format_card_id(verified.token->card) == w.card.id);
  CHECK(verified.token->expiry_day == *buoni::engine::parse_day("2026-03-31"));
  Response again = w.admin("/v1/cards", R"({"programme":"p1","beneficiary_ref":"FAM-1",)"
                                        R"("amount_cents":5})");
  CHECK_ERR(again, 409, "already_issued");
  CHECK(parsed(again)["error"].as_object()["card_id"] == w.card.id.c_str());
  CHECK_ERR(w.admin("/v1/cards", R"({"programme":"nope","beneficiary_ref":"X","amount_cents":5})"),
            404, "not_found");
  CHECK_ERR(w.admin("/v1/cards", R"({"programme":"p1","beneficiary_ref":"X","amount_cents":-1})"),
            400, "invalid_amount");
  CHECK_ERR(w.admin("/v1/cards", R"({"programme":"p1","beneficiary_ref":"","amount_cents":1})"),
            400, "invalid_field");
  CHECK_ERR(w.admin("/v1/cards", R"({"programme":"p1","beneficiary_ref":"X"})"), 400,
            "invalid_field");
  Card empty = w.issue("p1", "ZERO", 0);  // a card topped up later
  CHECK(w.balance(empty) == 0);
  CHECK_ERR(w.admin("/v1/cards", R"({"programme":"p1","beneficiary_ref":"BIG",)"
                                 R"("amount_cents":10000000})"),
            402, "budget_exceeded");
}

TEST_CASE("cards: issue replays the card and token without the PIN") {
  Api api;
  api.programme("pp", R"(,"require_pin":true)");
  const std::string body = R"({"programme":"pp","beneficiary_ref":"F","amount_cents":500})";
  Response first = api.admin("/v1/cards", body, "issue-f");
  CHECK_OK(first, 201);
  json::object f = parsed(first);
  std::string pin = str(f, "pin");
  CHECK(pin.size() == 5);
  CHECK(pin.find_first_not_of("0123456789") == std::string::npos);
  Response again = api.admin("/v1/cards", body, "issue-f");
  CHECK_OK(again, 201);
  CHECK(again["Idempotent-Replayed"] == "true");
  json::object a = parsed(again);
  CHECK_FALSE(a.contains("pin"));
  f.erase("pin");
  CHECK(json::serialize(a) == json::serialize(f));  // token and link are deterministic
}

TEST_CASE("cards: load, block, unblock, unlock-pin, replace by number, id or token") {
  World w;
  Response load = w.admin("/v1/cards/" + w.card.id + "/loads", R"({"amount_cents":2500})");
  CHECK_OK(load, 200);
  CHECK(num(parsed(load), "balance_cents") == 12500);
  CHECK(num(parsed(load), "amount_cents") == 2500);
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/loads", R"({"amount_cents":0})"), 400,
            "invalid_amount");
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/loads", R"({"amount_cents":"5"})"), 400,
            "invalid_amount");
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/loads", R"({"amount_cents":5000000})"), 402,
            "budget_exceeded");
  Response block = w.admin("/v1/cards/" + percent_encoded(w.card.token) + "/block");
  CHECK_OK(block, 200);
  CHECK(str(parsed(block), "status") == "blocked");
  CHECK_ERR(w.redeem(w.m1, w.card.number, 100), 402, "card_blocked");
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/block", R"({"why":"lost"})"), 400,
            "invalid_field");
  Response unblock = w.admin("/v1/cards/" + w.card.link + "/unblock", "{}");
  CHECK_OK(unblock, 200);
  CHECK(str(parsed(unblock), "status") == "active");
  CHECK_OK(w.admin("/v1/cards/" + w.card.number + "/unlock-pin"), 200);
  Response replace = w.admin("/v1/cards/" + w.card.number + "/replace", "", "replace-1");
  CHECK_OK(replace, 201);
  json::object r = parsed(replace);
  CHECK(str(r, "replaces") == w.card.id);
  CHECK(str(r, "id") != w.card.id);
  CHECK(num(r, "balance_cents") == 12500);
  CHECK(str(r, "token").starts_with("BS1:"));
  Response replay = w.admin("/v1/cards/" + w.card.number + "/replace", "", "replace-1");
  CHECK(replay["Idempotent-Replayed"] == "true");
  CHECK(replay.body() == replace.body());
  CHECK_ERR(w.redeem(w.m1, w.card.number, 100), 402, "card_revoked");
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/block"), 402, "card_revoked");
  CHECK_ERR(w.admin("/v1/cards/" + w.card.id + "/unlock-pin"), 402, "card_revoked");
  Card fresh{str(r, "id"), str(r, "number"), str(r, "token"), str(r, "link"), ""};
  CHECK_OK(w.redeem(w.m1, fresh.token, 100), 201);
}

TEST_CASE("cards: unknown and malformed card references") {
  World w;
  buoni::SeededRandom other(7);
  std::string stranger = buoni::format_card_number(buoni::CardId::random(other));
  CHECK_ERR(w.admin("/v1/cards/" + stranger + "/block"), 404, "unknown_card");
  CHECK_ERR(w.admin("/v1/cards/" + stranger + "/replace"), 404, "unknown_card");
  CHECK_ERR(w.admin("/v1/cards/" + stranger + "/loads", R"({"amount_cents":5})"), 404,
            "unknown_card");
  CHECK_ERR(w.get("/v1/cards/" + stranger, kAdmin), 404, "unknown_card");
  std::string bad_check = w.card.number;
  bad_check.back() = bad_check.back() == '0' ? '1' : '0';
  CHECK_ERR(w.admin("/v1/cards/" + bad_check + "/block"), 400, "invalid_card");
  CHECK_ERR(w.get("/v1/cards/hello", kAdmin), 400, "invalid_card");
  std::string forged = w.card.token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  CHECK_ERR(w.get("/v1/cards/" + percent_encoded(forged), kAdmin), 400, "invalid_card");
  // A token signed by a key the server does not know.
  auto stranger_key = buoni::SigningKey::generate(9);
  CardId id = *buoni::parse_card_number(w.card.id).id;
  CHECK_ERR(w.get("/v1/cards/" + buoni::make_token_link(stranger_key, id, 30000), kAdmin), 400,
            "invalid_card");
}

// ---- card reads -----------------------------------------------------------

TEST_CASE("card lookup: the shop's view, the operator's view") {
  World w;
  w.programme("p2");
  std::string m2 = w.merchant("m2", R"(["p2"])", "11111111115");
  Response shop = w.get("/v1/cards/" + w.card.number, w.m1);
  CHECK_OK(shop, 200);
  json::object s = parsed(shop);
  CHECK(num(s, "balance_cents") == 10000);
  CHECK(num(s, "held_cents") == 0);
  CHECK(str(s, "status") == "active");
  CHECK(str(s, "expires_at") == "2026-03-31");
  CHECK(str(s, "programme") == "p1");
  CHECK(s["pin_required"] == false);
  CHECK_FALSE(s.contains("beneficiary_ref"));
  CHECK(w.get("/v1/cards/" + percent_encoded(w.card.token), w.m1).result_int() == 200);
  json::object a = parsed(w.get("/v1/cards/" + w.card.link, kAdmin));
  CHECK(str(a, "beneficiary_ref") == "FAM-1");
  CHECK_ERR(w.get("/v1/cards/" + w.card.number, m2), 403, "merchant_not_allowed");
  // After a replacement the shop does not learn the new card.
  CHECK_OK(w.admin("/v1/cards/" + w.card.id + "/replace"), 201);
  json::object old_view = parsed(w.get("/v1/cards/" + w.card.id, w.m1));
  CHECK(str(old_view, "status") == "revoked");
  CHECK_FALSE(old_view.contains("replaced_by"));
  CHECK(parsed(w.get("/v1/cards/" + w.card.id, kAdmin)).contains("replaced_by"));
}

TEST_CASE("public card view: by token only, no key") {
  World w;
  Response by_link = w.get("/v1/public/cards/" + w.card.link);
  CHECK_OK(by_link, 200);
  json::object o = parsed(by_link);
  CHECK(num(o, "balance_cents") == 10000);
  CHECK(str(o, "status") == "active");
  CHECK(str(o, "expires_at") == "2026-03-31");
  CHECK(str(o, "card_number").starts_with("****-****-****-"));
  CHECK_FALSE(o.contains("beneficiary_ref"));
  CHECK_FALSE(o.contains("number"));
  Response by_qr = w.get("/v1/public/cards/" + percent_encoded(w.card.token));
  CHECK(by_qr.body() == by_link.body());
  CHECK_ERR(w.get("/v1/public/cards/" + w.card.number), 400, "invalid_card");
  CHECK_ERR(w.get("/v1/public/cards/" + w.card.id), 400, "invalid_card");
  std::string forged = w.card.link;
  forged[20] = forged[20] == 'A' ? 'B' : 'A';
  CHECK_ERR(w.get("/v1/public/cards/" + forged), 400, "invalid_card");
  w.clock.set(at("2026-04-01", 8));
  CHECK_ERR(w.get("/v1/public/cards/" + w.card.link), 402, "card_expired");
}

TEST_CASE("public card view: the last transactions, with day, kind, amount and shop only") {
  World w;
  CHECK_OK(w.redeem(w.m1, w.card.number, 1250), 201);
  std::string hold = str(parsed(w.authorize(w.m1, w.card.number, 700)), "id");
  CHECK_OK(w.shop(w.m1, "/v1/authorizations/" + hold + "/void", ""), 200);
  json::object o = parsed(w.get("/v1/public/cards/" + w.card.link));
  REQUIRE(o.contains("last_transactions"));
  json::array list = o["last_transactions"].as_array();
  REQUIRE(list.size() == 4);  // newest first: void, authorization, redemption, issue
  std::vector<std::string> kinds;
  for (const auto& v : list) {
    const json::object& t = v.as_object();
    kinds.push_back(str(t, "kind"));
    CHECK(str(t, "date") == "2026-02-10");
    for (const auto& kv : t) {
      std::string_view k = kv.key();
      CHECK_MESSAGE((k == "date" || k == "kind" || k == "amount_cents" || k == "shop"),
                    "unexpected field " << k);
    }
  }
  CHECK(kinds == std::vector<std::string>{"void", "authorization", "redemption", "issue"});
  json::object sale = list[2].as_object();
  CHECK(num(sale, "amount_cents") == 1250);
  CHECK(str(sale, "shop") == "Shop m1");
  CHECK_FALSE(list[3].as_object().contains("shop"));  // the issue is the operator's
  // At most public_transactions_max.
  for (int i = 0; i < 12; ++i) CHECK_OK(w.redeem(w.m1, w.card.number, 10), 201);
  json::object later = parsed(w.get("/v1/public/cards/" + w.card.link));
  CHECK(later["last_transactions"].as_array().size() == buoni::limits::public_transactions_max);
}

// ---- transactions ----------------------------------------------------------

namespace {

std::vector<std::string> field_strings(const json::array& list, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& v : list) out.push_back(str(v.as_object(), name));
  return out;
}

}  // namespace

TEST_CASE("transactions: a shop's own entries, page by page with a cursor") {
  World w;
  std::string m2 = w.merchant("m2", R"(["p1"])", "11111111115");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    w.clock.advance(kMinute);
    ids.push_back(str(parsed(w.redeem(w.m1, w.card.number, 100 + i)), "id"));
    CHECK_OK(w.redeem(m2, w.card.number, 5), 201);
  }
  std::string hold = str(parsed(w.authorize(w.m1, w.card.number, 700)), "id");
  CHECK_OK(w.shop(w.m1, "/v1/authorizations/" + hold + "/void", ""), 200);
  std::string hold2 = str(parsed(w.authorize(w.m1, w.card.number, 900)), "id");
  CHECK_OK(w.shop(w.m1, "/v1/authorizations/" + hold2 + "/capture", R"({"amount_cents":600})"),
           201);
  std::string rf = str(parsed(w.shop(w.m1, "/v1/refunds",
                                     R"({"redemption_id":")" + ids[0] + R"(","amount_cents":50})")),
                       "id");

  Response all = w.get("/v1/transactions", w.m1);
  CHECK_OK(all, 200);
  json::object body = parsed(all);
  CHECK_FALSE(body.contains("next_cursor"));
  json::array list = body["transactions"].as_array();
  CHECK(field_strings(list, "kind") ==
        std::vector<std::string>{"redemption", "redemption", "redemption", "authorization", "void",
                                 "authorization", "capture", "release", "refund"});
  CHECK(str(list[0].as_object(), "id") == ids[0]);
  CHECK(str(list[3].as_object(), "id") == hold);
  CHECK(str(list[4].as_object(), "id") == hold);
  CHECK(str(list[6].as_object(), "id").starts_with("rd_"));
  CHECK(str(list[8].as_object(), "id") == rf);
  json::object first = list[0].as_object();
  CHECK(num(first, "amount_cents") == 100);
  CHECK(str(first, "card_number").starts_with("****-****-****-"));
  CHECK(str(first, "card_number") != w.card.number);
  CHECK(str(first, "created_at") == "2026-02-10T10:01:00Z");
  CHECK(num(list[7].as_object(), "amount_cents") == 300);
  std::int64_t previous = 0;
  for (const auto& v : list) {
    CHECK(num(v.as_object(), "seq") > previous);
    previous = num(v.as_object(), "seq");
  }

  // Pages of 4: 4 + 4 + 1, each with the cursor of the one before.
  std::vector<std::string> paged;
  std::string cursor;
  int pages = 0;
  for (; pages < 10; ++pages) {
    std::string target = "/v1/transactions?limit=4";
    if (!cursor.empty()) target += "&cursor=" + percent_encoded(cursor);
    json::object page = parsed(w.get(target, w.m1));
    for (const auto& v : page["transactions"].as_array())
      paged.push_back(str(v.as_object(), "kind"));
    if (!page.contains("next_cursor")) break;
    CHECK(page["transactions"].as_array().size() == 4);
    cursor = str(page, "next_cursor");
  }
  CHECK(pages == 2);
  CHECK(paged == field_strings(list, "kind"));
  // A page that ends exactly at the last entry has no cursor.
  CHECK_FALSE(parsed(w.get("/v1/transactions?limit=9", w.m1)).contains("next_cursor"));
  CHECK(parsed(w.get("/v1/transactions?limit=8", w.m1)).contains("next_cursor"));

  // The other shop sees its three sales only.
  json::array theirs = parsed(w.get("/v1/transactions", m2))["transactions"].as_array();
  CHECK(field_strings(theirs, "kind") ==
        std::vector<std::string>{"redemption", "redemption", "redemption"});
  for (const auto& v : theirs) CHECK(num(v.as_object(), "amount_cents") == 5);

  CHECK_ERR(w.get("/v1/transactions"), 401, "unauthorized");
  CHECK_ERR(w.get("/v1/transactions", kAdmin), 403, "forbidden");
}

TEST_CASE("transactions: from and to, as RFC 3339 times or days; bad parameters are 400") {
  World w;
  w.clock.set(at("2026-02-10", 9));
  CHECK_OK(w.redeem(w.m1, w.card.number, 101), 201);
  w.clock.set(at("2026-02-11", 9));
  CHECK_OK(w.redeem(w.m1, w.card.number, 102), 201);
  w.clock.set(at("2026-02-12", 9));
  CHECK_OK(w.redeem(w.m1, w.card.number, 103), 201);
  auto amounts = [&](const std::string& query) {
    Response res = w.get("/v1/transactions?" + query, w.m1);
    INFO(query << ": " << res.body());
    REQUIRE(res.result_int() == 200);
    std::vector<std::int64_t> out;
    json::object body = parsed(res);
    for (const auto& v : body["transactions"].as_array()) {
      out.push_back(num(v.as_object(), "amount_cents"));
    }
    return out;
  };
  using V = std::vector<std::int64_t>;
  CHECK(amounts("from=2026-02-11") == V{102, 103});
  CHECK(amounts("to=2026-02-11") == V{101, 102});  // a day as `to` counts whole
  CHECK(amounts("from=2026-02-11&to=2026-02-11") == V{102});
  CHECK(amounts("from=2026-02-11T09:00:00Z") == V{102, 103});  // from is inclusive
  CHECK(amounts("to=2026-02-11T09:00:00Z") == V{101});         // to is exclusive
  CHECK(amounts("from=2026-02-11T08:59:59.999Z&to=2026-02-11T09:00:00.001Z") == V{102});
  CHECK(amounts("from=2026-02-11T10:00:00%2B01:00") == V{102, 103});  // 09:00Z
  CHECK(amounts("from=2026-02-11T10:00:01+01:00") == V{103});         // '+' read as ' '
  CHECK(amounts("to=2026-02-11T04:00:00-05:00") == V{101});           // 09:00Z exclusive
  CHECK(amounts("to=2026-02-11T04:00:01-05:00") == V{101, 102});
  CHECK(amounts("from=2026-02-13") == V{});
  CHECK(amounts("from=2026-02-11&limit=1") == V{102});

  for (const char* bad :
       {"from=yesterday", "from=2026-02-30", "from=2026-02-11T25:00:00Z",
        "from=2026-02-11T09:00:00", "to=2026-02-11 09:00:00Z", "from=2026-02-11T09:00:00.Z",
        "from=2026-02-12&to=2026-02-11", "limit=0", "limit=501", "limit=abc", "limit=", "limit=-1",
        "cursor=abc", "cursor=s", "cursor=s01", "cursor=s99999999999999999999", "cursor=", "page=2",
        "from=2026-02-11T09:00:00Z&to=2026-02-11T09:00:00Z"}) {
    INFO(std::string(bad));
    CHECK_ERR(w.get(std::string("/v1/transactions?") + bad, w.m1), 400, "invalid_field");
  }
  CHECK_OK(w.get("/v1/transactions?limit=500&cursor=s18446744073709551615", w.m1), 200);
}

// ---- the beneficiary's page -------------------------------------------------

TEST_CASE("card page: an HTML page in Italian and English, escaped, no scripts") {
  World w;
  Response shop = w.admin("/v1/merchants", R"({"id":"m9","name":"Bar <Sole> & \"Luna\"",)"
                                           R"("vat_number":"11111111115","programmes":["p1"]})");
  CHECK_OK(shop, 201);
  std::string m9 = str(parsed(shop), "api_key");
  Card rich = w.issue("p1", "FAM-2", 123456);
  CHECK_OK(w.redeem(m9, rich.number, 1250), 201);
  CHECK_OK(w.authorize(m9, rich.number, 100), 201);

  Response res = w.page("/c/" + rich.link);
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::content_type] == "text/html; charset=utf-8");
  CHECK(res[http::field::cache_control] == "no-store");
  CHECK(res["Referrer-Policy"] == "no-referrer");
  const std::string& html = res.body();
  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.find("<meta name=\"viewport\"") != std::string::npos);
  CHECK(html.find("€ 1.221,06") != std::string::npos);  // 123456 - 1250 - 100 held
  CHECK(html.find("€1,221.06") != std::string::npos);
  CHECK(html.find("€ 1,00") != std::string::npos);  // the held amount
  CHECK(html.find("attiva") != std::string::npos);
  CHECK(html.find("active") != std::string::npos);
  CHECK(html.find("31/03/2026") != std::string::npos);
  CHECK(html.find("2026-03-31") != std::string::npos);
  CHECK(html.find("Ultimi movimenti") != std::string::npos);
  CHECK(html.find("Last transactions") != std::string::npos);
  CHECK(html.find("−€ 12,50") != std::string::npos);
  CHECK(html.find("Bar &lt;Sole&gt; &amp; &quot;Luna&quot;") != std::string::npos);
  CHECK(html.find("<Sole>") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http") == std::string::npos);  // nothing loaded from elsewhere
  CHECK(html.find(rich.link) == std::string::npos);
  CHECK(html.find(rich.number) == std::string::npos);
  CHECK(html.find("FAM-2") == std::string::npos);
  CHECK(html.find("<section lang=\"it\">") < html.find("<section lang=\"en\">"));
  // The QR text, percent-encoded, gives the same page.
  CHECK(w.page("/c/" + percent_encoded(rich.token)).body() == html);
}

TEST_CASE("card page: bad, expired and unknown tokens get HTML error pages, never the token") {
  World w;
  auto check_error = [&](const std::string& target, int status, const std::string& code,
                         const std::string& secret) {
    Response res = w.page(target);
    INFO(target << ": " << res.body());
    CHECK(res.result_int() == status);
    CHECK(res[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(res[http::field::cache_control] == "no-store");
    CHECK(res.body().find("<!DOCTYPE html>") == 0);
    CHECK(res.body().find(code) != std::string::npos);
    if (!secret.empty()) CHECK(res.body().find(secret) == std::string::npos);
  };
  std::string forged = w.card.link;
  forged[20] = forged[20] == 'A' ? 'B' : 'A';
  check_error("/c/" + forged, 400, "invalid_card", forged);
  check_error("/c/" + w.card.number, 400, "invalid_card", w.card.number);
  check_error("/c/%3Cscript%3E", 400, "invalid_card", "<script>");
  check_error("/c/" + w.card.link + "?x=1", 400, "invalid_field", w.card.link);
  check_error("/c/", 404, "not_found", "");
  buoni::SeededRandom other(7);
  std::string unknown =
      buoni::make_token_link(w.key, CardId::random(other), *buoni::engine::parse_day("2026-03-31"));
  check_error("/c/" + unknown, 404, "unknown_card", unknown);
  w.clock.set(at("2026-04-01", 8));
  check_error("/c/" + w.card.link, 402, "card_expired", w.card.link);
}

// ---- redemptions ----------------------------------------------------------

TEST_CASE("redemptions: 201 with a receipt that verifies with the public key") {
  World w;
  Response r = w.redeem(w.m1, w.card.token, 4250, R"(,"reference":"order 7")");
  CHECK_OK(r, 201);
  json::object o = parsed(r);
  CHECK(str(o, "id").starts_with("rd_"));
  CHECK(num(o, "amount_cents") == 4250);
  CHECK(num(o, "balance_cents") == 5750);
  CHECK(str(o, "card_number").starts_with("****-****-****-"));
  CHECK(str(o, "created_at") == kStartDay + "T10:00:00Z");
  CHECK(num(o, "ledger_seq") > 0);
  json::object receipt = o["receipt"].as_object();
  CHECK(str(receipt, "id") == str(o, "id"));
  CHECK(str(receipt, "merchant") == "m1");
  CHECK(str(receipt, "card_number") == str(o, "card_number"));
  CHECK(num(receipt, "key_id") == 1);
  CHECK(str(receipt, "signature").size() == 128);
  CHECK(buoni::api::verify_receipt(receipt, {w.key.verify_key()}));
  // The signed text is the documented one.
  buoni::api::Receipt fields{str(o, "id"),
                             "m1",
                             str(o, "card_number"),
                             "EUR",
                             4250,
                             5750,
                             str(o, "created_at"),
                             static_cast<std::uint64_t>(num(o, "ledger_seq")),
                             1};
  std::string text = buoni::api::receipt_text(fields);
  CHECK(text.starts_with("buoni-receipt-v1\n" + str(o, "id") + "\nm1\n"));
  buoni::Signature sig{};
  REQUIRE(buoni::from_hex(str(receipt, "signature"), sig));
  CHECK(buoni::verify_signature(w.key.public_key, buoni::as_bytes(text), sig));
  // Altered, or checked with another key, it fails.
  json::object altered = receipt;
  altered["amount_cents"] = 42500;
  CHECK_FALSE(buoni::api::verify_receipt(altered, {w.key.verify_key()}));
  auto other = buoni::SigningKey::generate(1);
  CHECK_FALSE(buoni::api::verify_receipt(receipt, {other.verify_key()}));
  CHECK(w.balance(w.card) == 5750);
}

TEST_CASE("redemptions: replay is identical, a changed body is 409, the key is required") {
  World w;
  Response first = w.redeem(w.m1, w.card.number, 1000, "", "pos7-000123");
  CHECK_OK(first, 201);
  CHECK(first["Idempotent-Replayed"].empty());
  // The same request, with the card given as its token this time: same command, same answer.
  Response again = w.redeem(w.m1, w.card.token, 1000, "", "pos7-000123");
  CHECK(again.result_int() == 201);
  CHECK(again["Idempotent-Replayed"] == "true");
  CHECK(again.body() == first.body());
  CHECK(w.balance(w.card) == 9000);
  CHECK_ERR(w.redeem(w.m1, w.card.number, 2000, "", "pos7-000123"), 409, "idempotency_conflict");
  // A decline is stored and replayed too.
  Response over = w.redeem(w.m1, w.card.number, 50000, "", "pos7-000124");
  CHECK_ERR(over, 402, "insufficient_funds");
  Response over_again = w.redeem(w.m1, w.card.number, 50000, "", "pos7-000124");
  CHECK(over_again.result_int() == 402);
  CHECK(over_again["Idempotent-Replayed"] == "true");
  CHECK(over_again.body() == over.body());
  // Keys are per shop: another shop's same key is its own.
  std::string m3 = w.merchant("m3", R"(["p1"])", "00000000018");
  CHECK(w.redeem(m3, w.card.number, 1000, "", "pos7-000123")["Idempotent-Replayed"].empty());
  // Without a key, with a malformed one, with two.
  const std::string body = R"({"card":")" + w.card.number + R"(","amount_cents":1})";
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, w.m1), 400, "bad_request");
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, w.m1, "has space"), 400,
            "bad_request");
  CHECK_ERR(w.send(http::verb::post, "/v1/redemptions", body, w.m1, std::string(65, 'k')), 400,
            "bad_request");
  Request req{http::verb::post, "/v1/redemptions", 11};
  req.set(http::field::authorization, "Bearer " + w.m1);
  req.insert("Idempotency-Key", "a");
  req.insert("Idempotency-Key", "b");
  req.body() = body;
  CHECK_ERR(handle_request(*w.ctx, req), 400, "bad_request");
}

TEST_CASE("redemptions: insufficient_funds says the balance") {
  World w;
  Response r = w.redeem(w.m1, w.card.number, 10001);
  CHECK_ERR(r, 402, "insufficient_funds");
  json::object e = parsed(r)["error"].as_object();
  CHECK(num(e, "balance_cents") == 10000);
  CHECK(num(e, "held_cents") == 0);
  CHECK(!str(e, "message").empty());
}

TEST_CASE("redemptions: strict fields") {
  World w;
  auto with = [&](const std::string& body) { return w.shop(w.m1, "/v1/redemptions", body); };
  const std::string card = R"("card":")" + w.card.number + "\"";
  CHECK_ERR(with("not json"), 400, "invalid_json");
  CHECK_ERR(with(""), 400, "invalid_json");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":"100"})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":12.5})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":100.0})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":-100})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":0})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":10000001})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":true})"), 400, "invalid_amount");
  CHECK_ERR(with("{" + card + "}"), 400, "invalid_field");
  CHECK_ERR(with(R"({"amount_cents":100})"), 400, "invalid_field");
  CHECK_ERR(with(R"({"card":12345,"amount_cents":100})"), 400, "invalid_field");
  Response typo = with("{" + card + R"(,"amount_cent":100})");
  CHECK_ERR(typo, 400, "invalid_field");
  CHECK(parsed(typo)["error"].as_object()["message"].as_string().find("amount_cent") !=
        json::string::npos);
  CHECK_ERR(
      with("{" + card + R"(,"amount_cents":100,"reference":")" + std::string(129, 'r') + "\"}"),
      400, "invalid_field");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":100,"pin":12345})"), 400, "invalid_field");
  CHECK_ERR(with("{" + card + R"(,"amount_cents":100,"pin":"1234"})"), 400, "invalid_field");
  CHECK_ERR(with(R"({"card":"0000-0000","amount_cents":100})"), 400, "invalid_card");
  buoni::SeededRandom other(9);
  std::string stranger = buoni::format_card_number(buoni::CardId::random(other));
  CHECK_ERR(with(R"({"card":")" + stranger + R"(","amount_cents":100})"), 404, "unknown_card");
  CHECK(w.balance(w.card) == 10000);
}

TEST_CASE("redemptions: every decline") {
  World w;
  w.programme("plim", R"(,"max_redemption_cents":5000,"daily_limit_cents":6000)");
  w.programme("pfuture", "", "2026-06-01", "2026-06-30");
  w.programme("pshort", "", "2026-02-01", "2026-02-10");
  w.programme("p2");
  std::string shop_all = w.merchant("all", R"(["p1","plim","pfuture","pshort"])", "11111111115");
  std::string shop_p2 = w.merchant("only-p2", R"(["p2"])", "00000000018");
  Card lim = w.issue("plim", "L", 20000);
  Card future = w.issue("pfuture", "F", 100);
  Card short_card = w.issue("pshort", "S", 100);
  CHECK_ERR(w.redeem(shop_p2, w.card.number, 100), 403, "merchant_not_allowed");
  CHECK_ERR(w.redeem(shop_all, lim.number, 5001), 402, "limit_exceeded");
  CHECK_OK(w.redeem(shop_all, lim.number, 5000), 201);
  CHECK_ERR(w.redeem(shop_all, lim.number, 1001), 402, "limit_exceeded");  // daily
  CHECK_ERR(w.redeem(shop_all, future.number, 100), 402, "card_not_yet_valid");
  CHECK_OK(w.redeem(shop_all, short_card.token, 10), 201);
  w.clock.set(at("2026-02-11", 9));
  CHECK_ERR(w.redeem(shop_all, short_card.number, 10), 402, "card_expired");
  CHECK_ERR(w.redeem(shop_all, short_card.token, 10), 402, "card_expired");
  CHECK_OK(w.admin("/v1/programmes/pshort/close"), 200);
  CHECK_ERR(w.redeem(shop_all, short_card.number, 10), 402, "programme_closed");
}

TEST_CASE("redemptions: a retry after the token's last day gets the first answer") {
  // A redemption made by token at 23:59 of the programme's last day whose
  // answer was lost, retried after midnight with the same key: the stored
  // 201, not a card_expired made up at the edge (the card was charged).
  World w;
  w.programme("pshort", "", "2026-02-01", "2026-02-10");
  std::string shop = w.merchant("s", R"(["pshort"])", "11111111115");
  Card card = w.issue("pshort", "S", 1000);
  w.clock.set(at("2026-02-10", 23) + 59 * kMinute);
  Response first = w.redeem(shop, card.token, 250, "", "late-1");
  CHECK_OK(first, 201);
  Response held = w.authorize(shop, card.link, 100);
  CHECK_OK(held, 201);
  w.clock.set(at("2026-02-11", 0) + kMinute);
  Response retry = w.redeem(shop, card.token, 250, "", "late-1");
  CHECK_OK(retry, 201);
  CHECK(retry.body() == first.body());
  CHECK(retry["Idempotent-Replayed"] == "true");
  // The same key with another amount: the engine's conflict, as any day.
  CHECK_ERR(w.redeem(shop, card.token, 300, "", "late-1"), 409, "idempotency_conflict");
  // New spends after midnight: declined, by token, link or number alike.
  CHECK_ERR(w.redeem(shop, card.token, 250, "", "late-2"), 402, "card_expired");
  CHECK_ERR(w.authorize(shop, card.link, 100), 402, "card_expired");
  CHECK_ERR(w.redeem(shop, card.number, 250, "", "late-3"), 402, "card_expired");
  // A forged token is still refused at the edge, expired or not.
  std::string forged = card.link;
  forged[20] = forged[20] == 'A' ? 'B' : 'A';
  CHECK_ERR(w.redeem(shop, forged, 250, "", "late-4"), 400, "invalid_card");
  CHECK(w.balance(card) == 1000 - 250 - 100);
}

TEST_CASE("redemptions: PINs (pin_required, wrong_pin, pin_locked, unlock)") {
  World w;
  w.programme("pp", R"(,"require_pin":true)");
  std::string shop = w.merchant("pinshop", R"(["pp"])", "11111111115");
  Card c = w.issue("pp", "P", 5000);
  REQUIRE(c.pin.size() == 5);
  std::string wrong = c.pin == "00000" ? "11111" : "00000";
  CHECK(parsed(w.get("/v1/cards/" + c.id, shop))["pin_required"] == true);
  CHECK_ERR(w.redeem(shop, c.number, 100), 402, "pin_required");
  CHECK_ERR(w.redeem(shop, c.number, 100, R"(,"pin":")" + wrong + "\""), 402, "wrong_pin");
  CHECK_OK(w.redeem(shop, c.number, 100, R"(,"pin":")" + c.pin + "\""), 201);
  for (int i = 0; i < 3; ++i) {
    CHECK_ERR(w.redeem(shop, c.number, 100, R"(,"pin":")" + wrong + "\""), 402, "wrong_pin");
  }
  CHECK_ERR(w.redeem(shop, c.number, 100, R"(,"pin":")" + wrong + "\""), 402, "pin_locked");
  CHECK_ERR(w.redeem(shop, c.number, 100, R"(,"pin":")" + c.pin + "\""), 402, "pin_locked");
  CHECK_OK(w.admin("/v1/cards/" + c.number + "/unlock-pin"), 200);
  CHECK_OK(w.redeem(shop, c.number, 100, R"(,"pin":")" + c.pin + "\""), 201);
  // A replacement gets a new PIN, shown once.
  Response rep = w.admin("/v1/cards/" + c.number + "/replace", "", "rep-p");
  CHECK_OK(rep, 201);
  CHECK(str(parsed(rep), "pin").size() == 5);
  Response rep_again = w.admin("/v1/cards/" + c.number + "/replace", "", "rep-p");
  CHECK(rep_again["Idempotent-Replayed"] == "true");
  CHECK_FALSE(parsed(rep_again).contains("pin"));
}

// ---- authorizations -------------------------------------------------------

TEST_CASE("authorizations: hold, capture with receipt, void, and their declines") {
  World w;
  Response hold = w.authorize(w.m1, w.card.number, 3000, R"(,"expires_in_s":3600)");
  CHECK_OK(hold, 201);
  json::object h = parsed(hold);
  std::string id = str(h, "id");
  CHECK(id.starts_with("au_"));
  CHECK(str(h, "status") == "pending");
  CHECK(num(h, "amount_cents") == 3000);
  CHECK(str(h, "expires_at") == kStartDay + "T11:00:00Z");
  CHECK(num(parsed(w.get("/v1/cards/" + w.card.id, w.m1)), "held_cents") == 3000);
  const std::string capture = "/v1/authorizations/" + id + "/capture";
  CHECK_ERR(w.shop(w.m1, capture, R"({"amount_cents":3001})"), 402, "amount_exceeds_hold");
  CHECK_ERR(w.shop(w.m1, capture, R"({"amount_cents":2.5})"), 400, "invalid_amount");
  CHECK_ERR(w.shop(w.m1, capture, "{}"), 400, "invalid_field");
  Response cap = w.shop(w.m1, capture, R"({"amount_cents":2500})", "cap-1");
  CHECK_OK(cap, 201);
  json::object c = parsed(cap);
  CHECK(str(c, "authorization_id") == id);
  CHECK(num(c, "amount_cents") == 2500);
  CHECK(num(c, "balance_cents") == 7500);  // the rest of the hold came back
  CHECK(buoni::api::verify_receipt(c["receipt"].as_object(), {w.key.verify_key()}));
  Response cap_again = w.shop(w.m1, capture, R"({"amount_cents":2500})", "cap-1");
  CHECK(cap_again.body() == cap.body());
  CHECK(cap_again["Idempotent-Replayed"] == "true");
  CHECK_ERR(w.shop(w.m1, capture, R"({"amount_cents":100})"), 402, "hold_not_pending");
  CHECK_ERR(w.shop(w.m1, "/v1/authorizations/" + id + "/void", ""), 402, "hold_not_pending");
  // Void a second hold.
  std::string id2 = str(parsed(w.authorize(w.m1, w.card.number, 1000)), "id");
  Response v = w.shop(w.m1, "/v1/authorizations/" + id2 + "/void", "");
  CHECK_OK(v, 200);
  CHECK(str(parsed(v), "status") == "voided");
  CHECK(num(parsed(v), "balance_cents") == 7500);
  CHECK_ERR(w.shop(w.m1, "/v1/authorizations/" + id2 + "/void", R"({"x":1})"), 400,
            "invalid_field");
  CHECK_ERR(w.shop(w.m1, "/v1/authorizations/au_nothing/void", ""), 404, "not_found");
  CHECK_ERR(w.shop(w.m1, "/v1/authorizations/a%20b/capture", R"({"amount_cents":1})"), 404,
            "not_found");
  CHECK_ERR(w.authorize(w.m1, w.card.number, 100, R"(,"expires_in_s":0)"), 400, "invalid_field");
  CHECK_ERR(w.authorize(w.m1, w.card.number, 100, R"(,"expires_in_s":604801)"), 400,
            "invalid_field");
  CHECK_ERR(w.authorize(w.m1, w.card.number, 100, R"(,"expires_in_s":"60")"), 400, "invalid_field");
  CHECK_ERR(w.authorize(w.m1, w.card.number, 100000), 402, "insufficient_funds");
}

TEST_CASE("authorizations: another shop's hold is not found; lapsed holds expire") {
  World w;
  std::string m2 = w.merchant("m2", R"(["p1"])", "11111111115");
  std::string id =
      str(parsed(w.authorize(w.m1, w.card.number, 3000, R"(,"expires_in_s":60)")), "id");
  CHECK_ERR(w.shop(m2, "/v1/authorizations/" + id + "/capture", R"({"amount_cents":100})"), 404,
            "not_found");
  CHECK_ERR(w.shop(m2, "/v1/authorizations/" + id + "/void", ""), 404, "not_found");
  w.clock.advance(2 * kMinute);
  Response late = w.shop(w.m1, "/v1/authorizations/" + id + "/capture", R"({"amount_cents":100})");
  CHECK_ERR(late, 402, "hold_expired");
  CHECK(w.balance(w.card) == 10000);
}

// ---- refunds --------------------------------------------------------------

TEST_CASE("refunds: partial, over the redemption, another shop's, closed programme") {
  World w;
  std::string m2 = w.merchant("m2", R"(["p1"])", "11111111115");
  std::string rd = str(parsed(w.redeem(w.m1, w.card.number, 4000)), "id");
  const std::string body = R"({"redemption_id":")" + rd + R"(","amount_cents":1500})";
  Response r = w.shop(w.m1, "/v1/refunds", body, "rf-1");
  CHECK_OK(r, 201);
  CHECK(str(parsed(r), "id").starts_with("rf_"));
  CHECK(num(parsed(r), "balance_cents") == 7500);
  Response again = w.shop(w.m1, "/v1/refunds", body, "rf-1");
  CHECK(again.body() == r.body());
  CHECK(again["Idempotent-Replayed"] == "true");
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"redemption_id":")" + rd + R"(","amount_cents":2501})"),
            402, "refund_exceeds_redemption");
  CHECK_ERR(w.shop(m2, "/v1/refunds", body), 404, "not_found");
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"redemption_id":"rd_none","amount_cents":1})"), 404,
            "not_found");
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"redemption_id":"rd none","amount_cents":1})"), 400,
            "invalid_field");
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"amount_cents":1})"), 400, "invalid_field");
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"redemption_id":")" + rd + R"(","amount_cents":-1})"),
            400, "invalid_amount");
  w.clock.set(at("2026-04-01", 1));
  CHECK_OK(w.admin("/v1/programmes/p1/close"), 200);
  CHECK_ERR(w.shop(w.m1, "/v1/refunds", R"({"redemption_id":")" + rd + R"(","amount_cents":1})"),
            402, "programme_closed");
}

// ---- failures and concurrency ---------------------------------------------

TEST_CASE("a failed write is 503 unavailable and nothing is approved") {
  World w;
  w.store.fail_writes_after(0);
  CHECK_ERR(w.redeem(w.m1, w.card.number, 100), 503, "unavailable");
  CHECK_ERR(w.redeem(w.m1, w.card.number, 100), 503, "unavailable");
  CHECK_ERR(w.get("/readyz"), 503, "unavailable");
  CHECK(w.balance(w.card) == 10000);  // reads still work
}

TEST_CASE("concurrent redemptions never approve more than the balance") {
  World w;
  std::atomic<std::int64_t> approved{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&w, &approved, t] {
      for (int i = 0; i < 20; ++i) {
        Request req{http::verb::post, "/v1/redemptions", 11};
        req.set(http::field::authorization, "Bearer " + w.m1);
        req.set("Idempotency-Key", "t" + std::to_string(t) + "-" + std::to_string(i));
        req.body() = R"({"card":")" + w.card.number + R"(","amount_cents":100})";
        Response res = handle_request(*w.ctx, req);
        if (res.result_int() == 201) approved += 100;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(approved.load() == 10000);
  CHECK(w.balance(w.card) == 0);
}

TEST_CASE("read_admin_key_hash reads what buoni init writes") {
  buoni::engine::MemoryStore store;
  CHECK(buoni::api::read_admin_key_hash(store).status().code() == buoni::StatusCode::not_found);
  buoni::Hash32 hash = buoni::blake2b_256("ak_x");
  buoni::engine::Writer w;
  w.u8(buoni::engine::format_v1);
  w.raw(hash);
  buoni::engine::WriteSet set;
  set.put(buoni::engine::Space::meta, std::string(buoni::engine::keys::admin_key_hash), w.take());
  REQUIRE(store.write(set).ok());
  auto read = buoni::api::read_admin_key_hash(store);
  REQUIRE(read.ok());
  CHECK(*read == hash);
  buoni::engine::WriteSet bad;
  bad.put(buoni::engine::Space::meta, std::string(buoni::engine::keys::admin_key_hash), "x");
  REQUIRE(store.write(bad).ok());
  CHECK(buoni::api::read_admin_key_hash(store).status().code() == buoni::StatusCode::corruption);
}

TEST_CASE("answers follow the request's version and keep-alive") {
  Api api;
  Request req{http::verb::get, "/healthz", 10};
  Response res = handle_request(*api.ctx, req);
  CHECK(res.version() == 10);
  CHECK_FALSE(res.keep_alive());
  req.version(11);
  res = handle_request(*api.ctx, req);
  CHECK(res.keep_alive());
  CHECK(res[http::field::cache_control] == "no-store");
  CHECK(res[http::field::content_length] == std::to_string(res.body().size()));
}

}  // namespace

// ---- till sessions, the till page, security headers ------------------------

namespace {

// A request as the till page's browser sends it: the session cookie, the
// CSRF header and an Origin when given.
struct Browser {
  World& w;
  std::string cookie;  // the session id, "" for none
  std::string csrf;
  std::string origin;  // sent as Origin when not empty
  int next_key = 0;

  Response send(http::verb method, std::string_view target, std::string_view body = "",
                bool idem = false) {
    Request req{method, target, 11};
    req.set(http::field::host, "till.example:8080");
    if (!cookie.empty()) req.set(http::field::cookie, "lang=it; buoni_session=" + cookie);
    if (!csrf.empty()) req.set(buoni::api::csrf_header, csrf);
    if (!origin.empty()) req.set(http::field::origin, origin);
    if (idem) req.set("Idempotency-Key", "b" + std::to_string(++next_key));
    req.body() = std::string(body);
    req.prepare_payload();
    return handle_request(*w.ctx, req);
  }
  // Signs in with `key`; keeps the cookie and token of the answer.
  Response sign_in(const std::string& key) {
    Response res = send(http::verb::post, "/v1/sessions", R"({"api_key":")" + key + "\"}");
    if (res.result_int() == 201) {
      std::string set = std::string(res[http::field::set_cookie]);
      auto start = set.find('=') + 1;
      cookie = set.substr(start, set.find(';') - start);
      csrf = str(parsed(res), "csrf_token");
    }
    return res;
  }
  Response redeem(const Card& c, std::int64_t amount_cents) {
    return send(http::verb::post, "/v1/redemptions",
                R"({"card":")" + c.id + R"(","amount_cents":)" + std::to_string(amount_cents) + "}",
                true);
  }
};

}  // namespace

TEST_CASE("sessions: a shop key signs in; the cookie is HttpOnly, SameSite=Strict, 12 h") {
  World w;
  Browser b{w};
  Response res = b.sign_in(w.m1);
  CHECK_OK(res, 201);
  std::string set = std::string(res[http::field::set_cookie]);
  CHECK(set.starts_with("buoni_session=ps_"));
  CHECK(set.find("; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict") != std::string::npos);
  CHECK(set.find("Secure") == std::string::npos);
  CHECK(b.cookie.size() == 3 + 64);
  json::object o = parsed(res);
  CHECK(str(o, "merchant_id") == "m1");
  CHECK(str(o, "merchant_name") == "Shop m1");
  CHECK(str(o, "csrf_token") == buoni::api::csrf_token(b.cookie));
  CHECK(str(o, "expires_at") == "2026-02-10T22:00:00Z");
  // Only the id's hash is stored: the id itself is nowhere in the store.
  auto stored = w.store.get(buoni::engine::Space::state,
                            buoni::engine::keys::session(buoni::api::session_hash(b.cookie)));
  REQUIRE(stored.ok());
  CHECK(stored->has_value());
  CHECK((*stored)->find(b.cookie) == std::string::npos);
  // Under TLS the cookie is Secure.
  w.ctx->secure_cookies = true;
  Browser tls{w};
  CHECK(std::string(tls.sign_in(w.m1)[http::field::set_cookie]).ends_with("; Secure"));
}

TEST_CASE("sessions: wrong keys, the admin key and bad bodies do not sign in") {
  World w;
  Browser b{w};
  CHECK_ERR(b.sign_in("mk_" + std::string(64, '0')), 401, "unauthorized");
  CHECK_ERR(b.sign_in(kAdmin), 401, "unauthorized");
  CHECK_ERR(b.send(http::verb::post, "/v1/sessions", "{}"), 400, "invalid_field");
  CHECK_ERR(b.send(http::verb::post, "/v1/sessions", R"({"api_key":")" + w.m1 + R"(","x":1})"), 400,
            "invalid_field");
  CHECK(b.cookie.empty());
}

TEST_CASE("sessions: the cookie acts for the shop; a POST needs the CSRF token") {
  World w;
  Browser b{w};
  CHECK_OK(b.sign_in(w.m1), 201);
  Response current = b.send(http::verb::get, "/v1/sessions/current");
  CHECK_OK(current, 200);
  CHECK(str(parsed(current), "csrf_token") == b.csrf);
  CHECK_OK(b.send(http::verb::get, "/v1/cards/" + w.card.id), 200);
  CHECK_OK(b.redeem(w.card, 1250), 201);
  CHECK(w.balance(w.card) == 8750);
  std::string token = b.csrf;
  b.csrf.clear();
  CHECK_ERR(b.redeem(w.card, 100), 403, "csrf_failed");
  b.csrf = std::string(64, 'a');
  CHECK_ERR(b.redeem(w.card, 100), 403, "csrf_failed");
  b.csrf = token;
  // A page of another site cannot post, even holding the token; its own can.
  b.origin = "http://evil.example";
  CHECK_ERR(b.redeem(w.card, 100), 403, "csrf_failed");
  b.origin = "null";
  CHECK_ERR(b.redeem(w.card, 100), 403, "csrf_failed");
  b.origin = "http://till.example:8080";
  CHECK_OK(b.redeem(w.card, 100), 201);
  CHECK(w.balance(w.card) == 8650);
  // A session is a shop's: never the admin's.
  CHECK_ERR(b.send(http::verb::post, "/v1/cards/" + w.card.id + "/block", "{}"), 403, "forbidden");
  CHECK_ERR(b.send(http::verb::get, "/v1/programmes/p1"), 403, "forbidden");
  // A made-up or stolen-and-ended cookie is refused.
  Browser forged{w, "ps_" + std::string(64, '1'), b.csrf};
  CHECK_ERR(forged.send(http::verb::get, "/v1/sessions/current"), 401, "unauthorized");
  CHECK_ERR(forged.redeem(w.card, 100), 401, "unauthorized");
  // The session routes want the cookie, not a key.
  CHECK_ERR(w.get("/v1/sessions/current", w.m1), 401, "unauthorized");
}

TEST_CASE("sessions: end at sign-out, after 12 hours, and when the shop's key is rotated") {
  World w;
  Browser out{w}, late{w}, rotated{w};
  CHECK_OK(out.sign_in(w.m1), 201);
  Response ended = out.send(http::verb::post, "/v1/sessions/current/end", "");
  CHECK_OK(ended, 200);
  CHECK(std::string(ended[http::field::set_cookie]).find("buoni_session=; Path=/; Max-Age=0") == 0);
  CHECK_ERR(out.send(http::verb::get, "/v1/sessions/current"), 401, "unauthorized");
  CHECK_ERR(out.redeem(w.card, 100), 401, "unauthorized");

  CHECK_OK(late.sign_in(w.m1), 201);
  w.clock.set(w.clock.now_ms() + buoni::limits::session_ttl_s * 1000 - 1);
  CHECK_OK(late.send(http::verb::get, "/v1/sessions/current"), 200);
  w.clock.set(w.clock.now_ms() + 1);
  CHECK_ERR(late.send(http::verb::get, "/v1/sessions/current"), 401, "unauthorized");

  CHECK_OK(rotated.sign_in(w.m1), 201);
  Response rotation = w.admin("/v1/merchants/m1/rotate-key", "");
  CHECK_OK(rotation, 200);
  std::string new_key = str(parsed(rotation), "api_key");
  CHECK(new_key.starts_with("mk_"));
  CHECK(new_key != w.m1);
  CHECK_ERR(rotated.redeem(w.card, 100), 401, "unauthorized");
  CHECK_ERR(w.redeem(w.m1, w.card.id, 100), 401, "unauthorized");
  CHECK_OK(w.redeem(new_key, w.card.id, 100), 201);
  CHECK_OK(rotated.sign_in(new_key), 201);
  CHECK_OK(rotated.redeem(w.card, 100), 201);
  CHECK_ERR(w.admin("/v1/merchants/nope/rotate-key", ""), 404, "not_found");
  CHECK_ERR(w.shop(new_key, "/v1/merchants/m1/rotate-key", ""), 403, "forbidden");
}

TEST_CASE("sessions: a shop keeps at most sessions_per_merchant_max; the oldest ends") {
  World w;
  std::vector<Browser> tills;
  for (std::size_t i = 0; i <= buoni::limits::sessions_per_merchant_max; ++i) {
    w.clock.set(w.clock.now_ms() + 1000);
    tills.push_back(Browser{w});
    CHECK_OK(tills.back().sign_in(w.m1), 201);
  }
  CHECK_ERR(tills.front().send(http::verb::get, "/v1/sessions/current"), 401, "unauthorized");
  for (std::size_t i = 1; i < tills.size(); ++i) {
    CHECK_OK(tills[i].send(http::verb::get, "/v1/sessions/current"), 200);
  }
  std::size_t stored = 0;
  REQUIRE(w.store
              .scan(buoni::engine::Space::state, "a/", "a/",
                    [&](std::string_view, std::string_view) {
                      ++stored;
                      return true;
                    })
              .ok());
  CHECK(stored == buoni::limits::sessions_per_merchant_max);
}

TEST_CASE("GET /v1/authorizations lists the shop's pending holds only") {
  World w;
  std::string other = w.merchant("m2", R"(["p1"])", "12345678903");
  Response h1 = w.authorize(w.m1, w.card.id, 1000, R"(,"reference":"order-1")");
  Response h2 = w.authorize(w.m1, w.card.id, 2000);
  CHECK_OK(h1, 201);
  CHECK_OK(h2, 201);
  CHECK_OK(w.authorize(other, w.card.id, 500), 201);
  CHECK_OK(w.shop(w.m1, "/v1/authorizations/" + str(parsed(h2), "id") + "/void", "{}"), 200);
  Response list = w.get("/v1/authorizations", w.m1);
  CHECK_OK(list, 200);
  json::array holds = parsed(list)["authorizations"].as_array();
  REQUIRE(holds.size() == 1);
  json::object hold = holds[0].as_object();
  CHECK(str(hold, "id") == str(parsed(h1), "id"));
  CHECK(num(hold, "amount_cents") == 1000);
  CHECK(str(hold, "reference") == "order-1");
  CHECK(str(hold, "expires_at") == str(parsed(h1), "expires_at"));
  CHECK(str(hold, "card_number").find('*') != std::string::npos);
  // Past its expiry a hold is no longer listed, swept or not.
  w.clock.set(w.clock.now_ms() + buoni::limits::hold_expires_in_s_default * 1000);
  CHECK(parsed(w.get("/v1/authorizations", w.m1))["authorizations"].as_array().empty());
  CHECK_ERR(w.get("/v1/authorizations", kAdmin), 403, "forbidden");
}

TEST_CASE("the till page: embedded, ETag and 304, a strict CSP; every answer has nosniff") {
  World w;
  Response page = w.page("/pos");
  REQUIRE(page.result_int() == 200);
  CHECK(page[http::field::content_type] == "text/html; charset=utf-8");
  CHECK(page.body().find("<script src=\"/pos/pos.js\"") != std::string::npos);
  std::string csp = std::string(page["Content-Security-Policy"]);
  CHECK(csp.find("script-src 'self';") != std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(page.body().find(" style=\"") == std::string::npos);  // nothing inline for the CSP to block
  std::string etag = std::string(page[http::field::etag]);
  CHECK(etag.size() == 18);
  Request again{http::verb::get, "/pos", 11};
  again.set(http::field::if_none_match, etag);
  Response fresh = handle_request(*w.ctx, again);
  CHECK(fresh.result_int() == 304);
  CHECK(fresh.body().empty());
  for (std::string_view asset : {"/pos/pos.js", "/pos/jsqr.js"}) {
    Response js = w.page(asset);
    CHECK(js.result_int() == 200);
    CHECK(js[http::field::content_type] == "text/javascript; charset=utf-8");
    CHECK(js.body().size() > 1000);
  }
  CHECK(w.page("/pos/pos.css")[http::field::content_type] == "text/css; charset=utf-8");
  CHECK_ERR(w.get("/pos/secret.key"), 404, "not_found");
  for (const Response& res : {w.page("/pos"), w.get("/healthz"), w.get("/nope"), w.page("/c/x"),
                              w.redeem(w.m1, w.card.id, 100)}) {
    CHECK(res["X-Content-Type-Options"] == "nosniff");
    CHECK(res["Referrer-Policy"] == "no-referrer");
    CHECK(std::string(res["Content-Security-Policy"]).find("frame-ancestors 'none'") !=
          std::string::npos);
  }
}
