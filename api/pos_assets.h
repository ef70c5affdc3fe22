// The till page (GET /pos) and its files, embedded in the binary at build
// time (api/embed_assets.cmake over api/pos/ and jsQR from node_modules/,
// installed from package-lock.json by scripts/install-deps.sh): the page
// needs no CDN and no file beside the binary. Read-only; thread-safe.
#pragma once

#include <span>
#include <string_view>

namespace buoni::api {

struct StaticAsset {
  std::string_view name;          // "" is the page itself (/pos); else /pos/<name>
  std::string_view content_type;  // with charset for text
  std::string_view body;
  std::string_view etag;  // quoted, e.g. "\"0123456789abcdef\""
};

[[nodiscard]] std::span<const StaticAsset> pos_assets();

}  // namespace buoni::api
