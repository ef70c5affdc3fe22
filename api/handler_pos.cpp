// GET /pos and /pos/{asset}: the till page and its files (api/pos_assets.h),
// with an ETag so a shop's phone on a flaky connection revalidates with a
// 304 instead of downloading the page again.
#include "api/handler_internal.h"
#include "api/pos_assets.h"

namespace buoni::api::detail {

namespace {

// What the page may load: its own scripts, styles and API, camera frames
// (blob:/mediastream:) and images drawn from them (data:, blob:); nothing
// inline, nothing from elsewhere, never in a frame.
constexpr std::string_view pos_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'";

bool etag_matches(const Request& req, std::string_view etag) {
  auto it = req.find(http::field::if_none_match);
  if (it == req.end()) return false;
  std::string_view v = it->value();
  return v == "*" || v.find(etag) != std::string_view::npos;
}

Response asset_response(const Request& req, const StaticAsset& asset) {
  bool fresh = etag_matches(req, asset.etag);
  Response res{fresh ? http::status::not_modified : http::status::ok, req.version()};
  res.set(http::field::content_type, asset.content_type);
  // Revalidate every time: a new build must reach the till at once.
  res.set(http::field::cache_control, "no-cache");
  res.set(http::field::etag, asset.etag);
  res.set("Content-Security-Policy", pos_policy);
  res.keep_alive(req.keep_alive());
  if (!fresh) res.body() = std::string(asset.body);
  res.prepare_payload();
  return res;
}

Response named_asset(const Call& call, std::string_view name) {
  for (const StaticAsset& asset : pos_assets()) {
    if (asset.name == name) return asset_response(call.req, asset);
  }
  fail(404, "not_found", "no such file of the till page");
}

}  // namespace

Response get_pos(Call& call) {
  return named_asset(call, "");
}

Response get_pos_asset(Call& call) {
  if (call.params[0].empty()) fail(404, "not_found", "no such file of the till page");
  return named_asset(call, call.params[0]);
}

}  // namespace buoni::api::detail
