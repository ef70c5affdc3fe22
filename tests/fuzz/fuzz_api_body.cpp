// Fuzz target: the JSON request decoding of every endpoint that takes a body
// (api/handler_body.cpp and the routes of handler_merchant.cpp and
// handler_admin.cpp), through handle_request with the right key and an
// Idempotency-Key, over the fuzz world. Input: one byte picks the route, the
// rest is the body. A fixed Idempotency-Key per route keeps the store small:
// once a key is used, other bodies are refused as conflicts, but only after
// they were decoded. Properties: those of checked_handle (no 500, a JSON
// error object on errors) and: a body that is not JSON is never a 2xx.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_world.h"

namespace {

using buoni::fuzz::fuzz_check;
using buoni::fuzz::World;
namespace http = buoni::api::http;

struct Route {
  bool merchant;  // the shop's key, else the admin's
  std::string (*target)(const World& w);
};

// clang-format off
const Route kRoutes[] = {
    {true, [](const World&) { return std::string("/v1/redemptions"); }},
    {true, [](const World&) { return std::string("/v1/authorizations"); }},
    {true, [](const World& w) { return "/v1/authorizations/" + w.hold_id + "/capture"; }},
    {true, [](const World& w) { return "/v1/authorizations/" + w.hold_id + "/void"; }},
    {true, [](const World&) { return std::string("/v1/refunds"); }},
    {false, [](const World&) { return std::string("/v1/programmes"); }},
    {false, [](const World&) { return std::string("/v1/programmes/food/close"); }},
    {false, [](const World&) { return std::string("/v1/merchants"); }},
    {false, [](const World&) { return std::string("/v1/cards"); }},
    {false, [](const World& w) { return "/v1/cards/" + w.card1_id + "/loads"; }},
    {false, [](const World& w) { return "/v1/cards/" + w.card1_id + "/block"; }},
    {false, [](const World& w) { return "/v1/cards/" + w.card1_id + "/unblock"; }},
    {false, [](const World& w) { return "/v1/cards/" + w.card1_id + "/unlock-pin"; }},
    {false, [](const World& w) { return "/v1/cards/" + w.card1_id + "/replace"; }},
    {false, [](const World&) { return std::string("/v1/settlements"); }},
};
// clang-format on
constexpr std::size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

bool is_json(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  return !ec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  World& world = World::get();
  const std::size_t pick = data[0] % kRouteCount;
  const Route& route = kRoutes[pick];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto req = buoni::fuzz::make_request(
      http::verb::post, route.target(world), body,
      route.merchant ? buoni::fuzz::kMerchantKey : buoni::fuzz::kAdminKey,
      "fuzz-" + std::to_string(pick));
  const auto res = buoni::fuzz::checked_handle(world, req);
  const bool success = res.result_int() < 300;
  const bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  fuzz_check(!success || blank || is_json(body), "a body that is not JSON was accepted");
  World::after_run();
  return 0;
}
