// Bad input on every route of the HTTP API, through handle_request (no
// sockets), over an Engine on a MemoryStore with a pinned clock.
// server_test's "bad input" table covers bodies of ten POST routes over the
// wire; this table covers every route (api/handler.cpp's list), including
// the GET routes, close, unblock, unlock-pin, replace and settlements, and
// the parts of a request that are not the body: keys and roles, the
// Idempotency-Key header, query strings, path segments (ids, card numbers,
// tokens, percent-encoding), methods.
//
// Each row gives the status and error code (API.md, api/handler.h); every
// answer must be a JSON error object (HTML under /c/) naming that code, and
// nothing may change: the test compares every record of the state, ledger
// and meta spaces before and after, and counts the idempotency records
// (only rows marked `recorded`, declines by the engine under a key, add one:
// docs/architecture.md, "Declines are stored under their idempotency key").
#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api/handler.h"
#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/memory_store.h"

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using buoni::api::Request;
using buoni::api::Response;

const std::string kAdmin = "ak_bad-input-admin";
const std::string kNotUtf8 = "\xff\xfe\xc3";

buoni::engine::TimeMs at(const char* day, int hour) {
  return *buoni::engine::parse_day(day) * buoni::engine::ms_per_day + hour * 3'600'000LL;
}

// Who calls: a key, or none, or a raw Authorization header.
enum class Auth { none, admin, shop, raw };

struct Row {
  http::verb method;
  std::string target;  // placeholders {card} {card_id} {token} {link} {hold} {redemption}
  std::string body;
  Auth auth;
  std::string idem;  // Idempotency-Key header ("" none; "\n" two headers)
  int status;
  std::string code;
  std::string raw_auth = "";  // Auth::raw: the whole Authorization value
  bool recorded = false;      // an engine decline stored under its idempotency key
};

struct World {
  buoni::engine::MemoryStore store;
  buoni::engine::ManualClock clock{at("2026-02-10", 10)};
  buoni::SeededRandom random{7};
  buoni::SigningKey key = buoni::SigningKey::generate(1);
  std::array<std::uint8_t, 32> pepper{9, 8, 7};
  std::unique_ptr<buoni::engine::Engine> engine;
  std::unique_ptr<buoni::api::ApiContext> ctx;
  std::string shop_key;
  std::vector<std::pair<std::string, std::string>> vars;

  World();
  Response send(const Row& row);
  Response post(const std::string& target, const std::string& body, const std::string& api_key,
                const std::string& idem = "");
  [[nodiscard]] std::string expand(std::string text) const;
  // Every record of `space`, as one comparable string.
  [[nodiscard]] std::string dump(buoni::engine::Space space) const;
  [[nodiscard]] std::size_t count(buoni::engine::Space space) const;
};

json::object object_of(const Response& res) {
  boost::system::error_code ec;
  json::value v = json::parse(res.body(), ec);
  REQUIRE_MESSAGE((!ec && v.is_object()), "not a JSON object: " << res.body());
  return v.as_object();
}

std::string str(const json::object& o, const char* name) {
  REQUIRE_MESSAGE(o.contains(name), "no " << name << " in " << json::serialize(o));
  return std::string(o.at(name).as_string());
}

World::World() {
  auto e = buoni::engine::Engine::open(store, key, clock, random);
  REQUIRE(e.ok());
  engine = std::move(e).value();
  ctx = std::make_unique<buoni::api::ApiContext>(buoni::api::ApiContext{
      *engine, store, key, {key.verify_key()}, pepper, buoni::blake2b_256(kAdmin), clock});
  Response p = post("/v1/programmes",
                    R"({"id":"food","name":"Buoni","budget_cents":100000,)"
                    R"("valid_from":"2026-02-01","valid_until":"2026-03-31"})",
                    kAdmin);
  REQUIRE(p.result_int() == 201);
  Response m = post("/v1/merchants",
                    R"({"id":"shop1","name":"Shop","vat_number":"01234567897",)"
                    R"("programmes":["food"]})",
                    kAdmin);
  REQUIRE(m.result_int() == 201);
  shop_key = str(object_of(m), "api_key");
  json::object card = object_of(post(
      "/v1/cards", R"({"programme":"food","beneficiary_ref":"fam-1","amount_cents":5000})", kAdmin));
  const std::string number = str(card, "number");
  Response hold = post("/v1/authorizations",
                       R"({"card":")" + number + R"(","amount_cents":100})", shop_key, "h1");
  REQUIRE(hold.result_int() == 201);
  Response sale = post("/v1/redemptions", R"({"card":")" + number + R"(","amount_cents":200})",
                       shop_key, "r1");
  REQUIRE(sale.result_int() == 201);
  const buoni::CardId id = *buoni::parse_card_number(number).id;
  const buoni::engine::Day yesterday = buoni::engine::day_of(clock.now_ms()) - 1;
  vars = {{"{card_id}", str(card, "id")},
          {"{card}", number},
          {"{token}", str(card, "token")},
          {"{link}", str(card, "link")},
          {"{expired}", buoni::make_token_link(key, id, yesterday)},
          {"{forged}", buoni::make_token_link(buoni::SigningKey::generate(1), id, yesterday + 9)},
          {"{hold}", str(object_of(hold), "id")},
          {"{redemption}", str(object_of(sale), "id")}};
}

std::string World::expand(std::string text) const {
  for (const auto& [name, value] : vars) {
    for (auto at = text.find(name); at != std::string::npos; at = text.find(name, at)) {
      text.replace(at, name.size(), value);
    }
  }
  return text;
}

Response World::post(const std::string& target, const std::string& body,
                     const std::string& api_key, const std::string& idem) {
  Row row{http::verb::post, target, body, Auth::raw, idem, 0, "", "Bearer " + api_key};
  return send(row);
}

Response World::send(const Row& row) {
  Request req{row.method, expand(row.target), 11};
  if (row.auth == Auth::admin) req.set(http::field::authorization, "Bearer " + kAdmin);
  if (row.auth == Auth::shop) req.set(http::field::authorization, "Bearer " + shop_key);
  if (row.auth == Auth::raw) req.set(http::field::authorization, row.raw_auth);
  if (row.idem == "\n") {
    req.insert("Idempotency-Key", "one");
    req.insert("Idempotency-Key", "two");
  } else if (!row.idem.empty()) {
    req.set("Idempotency-Key", row.idem);
  }
  req.body() = expand(row.body);
  req.prepare_payload();
  return buoni::api::handle_request(*ctx, req);
}

std::string World::dump(buoni::engine::Space space) const {
  std::string out;
  buoni::Status s = store.scan(space, "", "", [&out](std::string_view k, std::string_view v) {
    out += std::string(k) + "=" + std::string(v) + "\n";
    return true;
  });
  REQUIRE(s.ok());
  return out;
}

std::size_t World::count(buoni::engine::Space space) const {
  std::size_t n = 0;
  buoni::Status s = store.scan(space, "", "", [&n](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  REQUIRE(s.ok());
  return n;
}

// The code an answer names: {"error": {"code"}} or, for the HTML pages of
// /c/, the "(code, status)" line.
std::string code_of(const Response& res) {
  if (res[http::field::content_type].starts_with("text/html")) {
    std::string body = res.body();
    auto open = body.rfind("(");
    auto comma = body.find(",", open);
    return open == std::string::npos || comma == std::string::npos
               ? ""
               : body.substr(open + 1, comma - open - 1);
  }
  json::object o = object_of(res);
  if (!o.contains("error") || !o.at("error").is_object()) return "";
  const json::object& e = o.at("error").as_object();
  CHECK(e.contains("message"));
  return e.contains("code") && e.at("code").is_string() ? std::string(e.at("code").as_string())
                                                        : "";
}

void check_rows(World& w, const std::vector<Row>& rows) {
  using buoni::engine::Space;
  const std::string state = w.dump(Space::state), ledger = w.dump(Space::ledger),
                    meta = w.dump(Space::meta);
  std::size_t records = w.count(Space::idempotency);
  for (const Row& row : rows) {
    Response res = w.send(row);
    INFO(http::to_string(row.method) << " " << w.expand(row.target) << "  body: "
                                     << w.expand(row.body).substr(0, 160) << "\n  -> "
                                     << res.result_int() << " " << res.body().substr(0, 300));
    CHECK(res.result_int() == row.status);
    CHECK(code_of(res) == row.code);
    CHECK(res[http::field::cache_control] == "no-store");
    if (row.recorded) ++records;
  }
  CHECK(w.dump(Space::state) == state);
  CHECK(w.dump(Space::ledger) == ledger);
  CHECK(w.dump(Space::meta) == meta);
  CHECK(w.count(Space::idempotency) == records);
}

// Every keyed route, as a shop or the admin calls it (with a valid body).
struct KeyedRoute {
  http::verb method;
  std::string target, body;
  Auth role;  // the role the route takes (shop, or admin)
};

std::vector<KeyedRoute> keyed_routes() {
  const auto post = http::verb::post, get = http::verb::get;
  const std::string sale = R"({"card":"{card}","amount_cents":1})";
  return {
      {post, "/v1/redemptions", sale, Auth::shop},
      {post, "/v1/authorizations", sale, Auth::shop},
      {post, "/v1/authorizations/{hold}/capture", R"({"amount_cents":1})", Auth::shop},
      {post, "/v1/authorizations/{hold}/void", "", Auth::shop},
      {post, "/v1/refunds", R"({"redemption_id":"{redemption}","amount_cents":1})", Auth::shop},
      {get, "/v1/transactions", "", Auth::shop},
      {post, "/v1/programmes", "{}", Auth::admin},
      {get, "/v1/programmes/food", "", Auth::admin},
      {post, "/v1/programmes/food/close", "", Auth::admin},
      {post, "/v1/merchants", "{}", Auth::admin},
      {get, "/v1/merchants", "", Auth::admin},
      {post, "/v1/cards", "{}", Auth::admin},
      {post, "/v1/cards/{card}/loads", R"({"amount_cents":1})", Auth::admin},
      {post, "/v1/cards/{card}/block", "", Auth::admin},
      {post, "/v1/cards/{card}/unblock", "", Auth::admin},
      {post, "/v1/cards/{card}/unlock-pin", "", Auth::admin},
      {post, "/v1/cards/{card}/replace", "", Auth::admin},
      {post, "/v1/settlements", R"({"from":"2026-01-01","to":"2026-01-31"})", Auth::admin},
  };
}

}  // namespace

TEST_CASE("keys and roles on every keyed route: 401 and 403, nothing changes") {
  World w;
  std::vector<Row> rows;
  for (const KeyedRoute& r : keyed_routes()) {
    const std::string idem = r.method == http::verb::post ? "k1" : "";
    for (std::string raw : {std::string(""), std::string("Basic abc"), std::string("Bearer"),
                            std::string("Bearer "), "Bearer mk_" + std::string(64, 'f'),
                            std::string("Bearer ak_wrong"), "Bearer " + kNotUtf8,
                            "Bearer " + std::string(9000, 'a'), std::string("Bearer\tak_x")}) {
      Auth auth = raw.empty() ? Auth::none : Auth::raw;
      rows.push_back({r.method, r.target, r.body, auth, idem, 401, "unauthorized", raw});
    }
    rows.push_back({r.method, r.target, r.body, r.role == Auth::shop ? Auth::admin : Auth::shop,
                    idem, 403, "forbidden"});
  }
  check_rows(w, rows);
}

TEST_CASE("Idempotency-Key: malformed, repeated, missing where required") {
  World w;
  std::vector<Row> rows;
  for (const KeyedRoute& r : keyed_routes()) {
    if (r.method != http::verb::post) continue;
    for (std::string key : {std::string("bad key!"), std::string(65, 'k'), std::string("\n"),
                            kNotUtf8, std::string("k\x01")}) {
      rows.push_back({r.method, r.target, r.body, r.role, key, 400, "bad_request"});
    }
    if (r.role == Auth::shop) rows.push_back({r.method, r.target, r.body, r.role, "", 400,
                                              "bad_request"});
  }
  check_rows(w, rows);
}

TEST_CASE("query strings: unknown, malformed, repeated parameters on every route") {
  World w;
  std::vector<Row> rows;
  std::vector<KeyedRoute> all = keyed_routes();
  all.push_back({http::verb::get, "/v1/cards/{card}", "", Auth::admin});
  all.push_back({http::verb::get, "/v1/public/cards/{link}", "", Auth::none});
  all.push_back({http::verb::get, "/healthz", "", Auth::none});
  all.push_back({http::verb::get, "/readyz", "", Auth::none});
  for (const KeyedRoute& r : all) {
    const std::string idem = r.method == http::verb::post ? "q1" : "";
    rows.push_back({r.method, r.target + "?bogus=1", r.body, r.role, idem, 400, "invalid_field"});
    rows.push_back({r.method, r.target + "?%zz=1", r.body, r.role, idem, 400, "bad_request"});
    rows.push_back({r.method, r.target + "?a=%4", r.body, r.role, idem, 400, "bad_request"});
    rows.push_back({r.method, r.target + "?x=1&x=2", r.body, r.role, idem, 400, "bad_request"});
    rows.push_back({r.method, r.target + "?%ff%fe=1", r.body, r.role, idem, 400,
                    "invalid_field"});
  }
  const auto get = http::verb::get;
  for (const std::string& q : std::vector<std::string>{"from=yesterday", "to=2026-02-30", "from=2026-02-10&to=2026-02-01",
                        "limit=0", "limit=-1", "limit=1001", "limit=99999999999999999999",
                        "limit=1.5", "cursor=x", "cursor=s", "cursor=s01", "cursor=-1",
                        "cursor=s99999999999999999999999", "from=%00"}) {
    rows.push_back({get, "/v1/transactions?" + q, "", Auth::shop, "", 400, "invalid_field"});
  }
  // (after= is a position in the list of ids, not an id: any text is one.)
  for (const std::string& q :
       std::vector<std::string>{"limit=0", "limit=abc", "limit=100000", "limit=-1", "limit="}) {
    rows.push_back({get, "/v1/merchants?" + q, "", Auth::admin, "", 400, "invalid_field"});
  }
  rows.push_back({get, "/c/{link}?x=1", "", Auth::none, "", 400, "invalid_field"});
  check_rows(w, rows);
}

TEST_CASE("paths: unknown ids, malformed card references and tokens, bad encoding, methods") {
  World w;
  const auto get = http::verb::get, post = http::verb::post;
  std::vector<Row> rows{
      {get, "/v1/nope", "", Auth::admin, "", 404, "not_found"},
      {get, "nope", "", Auth::admin, "", 400, "bad_request"},
      {get, "/v1/cards/%zz", "", Auth::admin, "", 400, "bad_request"},
      {get, "/v1/cards/", "", Auth::admin, "", 404, "not_found"},
      {get, "/v1/programmes/nope", "", Auth::admin, "", 404, "not_found"},
      {get, "/v1/programmes/bad%20id", "", Auth::admin, "", 404, "not_found"},
      {get, "/v1/programmes/%ff", "", Auth::admin, "", 404, "not_found"},
      {post, "/v1/programmes/nope/close", "", Auth::admin, "", 404, "not_found"},
      {post, "/v1/programmes/bad%20id/close", "", Auth::admin, "", 404, "not_found"},
      {post, "/v1/authorizations/au_nope/void", "", Auth::shop, "v1", 404, "not_found", "", true},
      {post, "/v1/authorizations/bad%20id/capture", R"({"amount_cents":1})", Auth::shop, "v2",
       404, "not_found"},
      {http::verb::delete_, "/v1/cards/{card}", "", Auth::admin, "", 405, "method_not_allowed"},
      {http::verb::put, "/v1/redemptions", "{}", Auth::shop, "", 405, "method_not_allowed"},
      {http::verb::head, "/healthz", "", Auth::none, "", 405, "method_not_allowed"},
      {post, "/readyz", "", Auth::none, "", 405, "method_not_allowed"},
      {get, "/v1/public/cards/{card}", "", Auth::none, "", 400, "invalid_card"},
      {get, "/v1/public/cards/{forged}", "", Auth::none, "", 400, "invalid_card"},
      {get, "/v1/public/cards/{expired}", "", Auth::none, "", 402, "card_expired"},
      {get, "/v1/public/cards/BS1%3A" + std::string(119, 'A'), "", Auth::none, "", 400,
       "invalid_card"},
      {get, "/c/{card}", "", Auth::none, "", 400, "invalid_card"},
      {get, "/c/{forged}", "", Auth::none, "", 400, "invalid_card"},
      {get, "/c/{expired}", "", Auth::none, "", 402, "card_expired"},
      {get, "/c/%ff%fe", "", Auth::none, "", 400, "invalid_card"},
  };
  // Every route that names a card: unknown, mistyped, not a card, a forged token.
  for (const auto& [method, suffix] : std::vector<std::pair<http::verb, std::string>>{
           {get, ""}, {post, "/loads"}, {post, "/block"}, {post, "/unblock"},
           {post, "/unlock-pin"}, {post, "/replace"}}) {
    const std::string body = suffix == "/loads" ? R"({"amount_cents":1})" : "";
    rows.push_back({method, "/v1/cards/0000-0000-0000-0000-0" + suffix, body, Auth::admin, "",
                    404, "unknown_card"});
    rows.push_back({method, "/v1/cards/0000-0000-0000-0000-1" + suffix, body, Auth::admin, "",
                    400, "invalid_card"});
    rows.push_back({method, "/v1/cards/%ff%fe" + suffix, body, Auth::admin, "", 400,
                    "invalid_card"});
    rows.push_back({method, "/v1/cards/{forged}" + suffix, body, Auth::admin, "", 400,
                    "invalid_card"});
    rows.push_back({method, "/v1/cards/{expired}" + suffix, body, Auth::admin, "", 402,
                    "card_expired"});
  }
  check_rows(w, rows);
}

TEST_CASE("bodies: not JSON, not an object, too deep, invalid UTF-8, on every POST route") {
  World w;
  std::vector<Row> rows;
  for (const KeyedRoute& r : keyed_routes()) {
    if (r.method != http::verb::post) continue;
    for (std::string body : {std::string("{"), std::string("[]"), std::string("null"),
                             std::string("{\"a\":1}x"), std::string(200, '['),
                             "{\"x\":\"" + kNotUtf8 + "\"}", std::string("{\"a\":1,\"a\":1}"),
                             std::string("\xef\xbb\xbf{}"), std::string("{} {}")}) {
      rows.push_back({r.method, r.target, body, r.role, "b1", 400, "invalid_json"});
    }
    rows.push_back({r.method, r.target, R"({"unknown_field":1})", r.role, "b1", 400,
                    "invalid_field"});
  }
  check_rows(w, rows);
}

TEST_CASE("bodies: each field of each route, malformed or hostile") {
  World w;
  auto shop = [](std::string target, std::string body, int status, std::string code) {
    return Row{http::verb::post, std::move(target), std::move(body), Auth::shop, "f1", status,
               std::move(code)};
  };
  auto admin = [](std::string target, std::string body, int status, std::string code) {
    return Row{http::verb::post, std::move(target), std::move(body), Auth::admin, "", status,
               std::move(code)};
  };
  std::vector<Row> rows{
      shop("/v1/redemptions", R"({"card":"{card}","amount_cents":9223372036854775807})", 400,
           "invalid_amount"),
      shop("/v1/redemptions", R"({"card":"{card}","amount_cents":-9223372036854775808})", 400,
           "invalid_amount"),
      shop("/v1/redemptions", R"({"card":"{card}","amount_cents":1,"reference":"a\u0000b"})", 400,
           "invalid_field"),
      shop("/v1/redemptions", R"({"card":"{card}","amount_cents":1,"pin":"１２３４５"})", 400,
           "invalid_field"),
      shop("/v1/redemptions", R"({"card":"{forged}","amount_cents":1})", 400, "invalid_card"),
      shop("/v1/redemptions", R"({"card":"{expired}","amount_cents":1})", 402, "card_expired"),
      shop("/v1/redemptions", R"({"card":["{card}"],"amount_cents":1})", 400, "invalid_field"),
      shop("/v1/authorizations", R"({"card":"{card}","amount_cents":1,"expires_in_s":1e3})", 400,
           "invalid_field"),
      shop("/v1/authorizations", R"({"card":"{card}","amount_cents":1,"expires_in_s":-1})", 400,
           "invalid_field"),
      shop("/v1/authorizations/{hold}/capture", R"({"amount_cents":"1"})", 400, "invalid_amount"),
      shop("/v1/authorizations/{hold}/capture", "", 400, "invalid_json"),
      shop("/v1/refunds", R"({"redemption_id":"","amount_cents":1})", 400, "invalid_field"),
      shop("/v1/refunds", R"({"redemption_id":7,"amount_cents":1})", 400, "invalid_field"),
      shop("/v1/refunds", R"({"redemption_id":"{redemption}"})", 400, "invalid_field"),
      admin("/v1/programmes/food/close", R"({"force":true})", 400, "invalid_field"),
      admin("/v1/cards/{card}/unblock", R"({"why":"x"})", 400, "invalid_field"),
      admin("/v1/cards/{card}/unlock-pin", "[]", 400, "invalid_json"),
      admin("/v1/cards/{card}/replace", R"({"amount_cents":1})", 400, "invalid_field"),
      admin("/v1/cards/{card}/loads", R"({"amount_cents":1e2})", 400, "invalid_amount"),
      admin("/v1/cards", R"({"programme":"nope","beneficiary_ref":"f","amount_cents":1})", 404,
            "not_found"),
      admin("/v1/cards", R"({"programme":"food","beneficiary_ref":"fam\u00e8","amount_cents":1})",
            400, "invalid_field"),
      admin("/v1/cards", R"({"programme":"bad id","beneficiary_ref":"f","amount_cents":1})", 400,
            "invalid_field"),
      admin("/v1/merchants",
            R"({"id":"m2","name":"M","vat_number":"01234567897","programmes":["bad id"]})", 400,
            "invalid_field"),
      admin("/v1/merchants",
            R"({"id":"m2","name":"M","vat_number":"01234567897","programmes":[1]})", 400,
            "invalid_field"),
      admin("/v1/programmes",
            R"({"id":"p2","name":"P","budget_cents":1,"valid_from":"2026-01-01",)"
            R"("valid_until":"2099-01-01"})",
            400, "invalid_field"),
      admin("/v1/settlements", R"({"from":"2026-01-31","to":"2026-01-01"})", 400,
            "invalid_field"),
      admin("/v1/settlements", R"({"from":"2026-1-1","to":"2026-01-31"})", 400, "invalid_field"),
      admin("/v1/settlements", R"({"from":"2026-01-01"})", 400, "invalid_field"),
      admin("/v1/settlements", R"({"from":"2026-01-01","to":"2026-01-31","shop":"x"})", 400,
            "invalid_field"),
  };
  check_rows(w, rows);
}
