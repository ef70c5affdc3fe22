#include "crypto/api_key.h"

#include <array>

#include "crypto/hash.h"

namespace buoni {

std::string make_api_key(std::string_view prefix, Random& random) {
  std::array<std::uint8_t, 32> bytes{};
  random.fill(bytes);
  return std::string(prefix) + to_hex(bytes);
}

Hash32 api_key_hash(std::string_view key) {
  return blake2b_256(key);
}

}  // namespace buoni
