// Hex helpers (see bytes.h).
#include "crypto/bytes.h"

#include <array>
#include <cstdint>

namespace buoni {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

// Value of each byte as a hex digit, or -1 when it is not one: one table
// look-up per digit (exports decode hundreds of digits per entry).
constexpr std::array<std::int8_t, 256> hex_values = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  for (int d = 0; d < 10; ++d) t['0' + d] = static_cast<std::int8_t>(d);
  for (int d = 0; d < 6; ++d) {
    t['a' + d] = static_cast<std::int8_t>(10 + d);
    t['A' + d] = static_cast<std::int8_t>(10 + d);
  }
  return t;
}();

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string hex(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    hex[2 * i] = kHexDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kHexDigits[bytes[i] & 0x0f];
  }
  return hex;
}

bool from_hex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  int bad = 0;  // any digit's -1 sets the sign bit; checked once at the end
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int high = hex_values[static_cast<unsigned char>(hex[2 * i])];
    const int low = hex_values[static_cast<unsigned char>(hex[2 * i + 1])];
    bad |= high | low;
    out[i] = static_cast<std::uint8_t>((high << 4) | low);
  }
  return bad >= 0;
}

}  // namespace buoni
