// API keys: "mk_..." for shops, "ak_..." for the administrator.
//   api_key := prefix hex(32 bytes from the CSPRNG)
// A key is shown once, where it is made; only api_key_hash (BLAKE2b-256 of
// the whole key text) is kept, and keys are compared by hash in constant time.
// Pure; thread-safe (Random as documented in crypto/random.h).
#pragma once

#include <string>
#include <string_view>

#include "crypto/bytes.h"
#include "crypto/random.h"

namespace buoni {

inline constexpr std::string_view merchant_key_prefix = "mk_";
inline constexpr std::string_view admin_key_prefix = "ak_";

[[nodiscard]] std::string make_api_key(std::string_view prefix, Random& random);
[[nodiscard]] Hash32 api_key_hash(std::string_view key);

}  // namespace buoni
