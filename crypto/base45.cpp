// Base45, RFC 9285 (see base45.h).
#include "crypto/base45.h"

#include <array>

namespace buoni {
namespace {

constexpr std::uint8_t kNoSymbol = 0xFF;

// Byte -> symbol value, or kNoSymbol for characters outside the alphabet.
constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  for (std::uint8_t& entry : table) entry = kNoSymbol;
  for (std::size_t i = 0; i < kBase45Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase45Alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr std::array<std::uint8_t, 256> kDecodeTable = make_decode_table();
static_assert(kBase45Alphabet.size() == 45);

// The value of 2 or 3 symbols, least significant first; nullopt if any is
// outside the alphabet.
std::optional<std::uint32_t> symbols_value(std::string_view symbols) {
  std::uint32_t value = 0;
  std::uint32_t weight = 1;
  for (const char symbol : symbols) {
    const std::uint8_t digit = kDecodeTable[static_cast<unsigned char>(symbol)];
    if (digit == kNoSymbol) return std::nullopt;
    value += digit * weight;
    weight *= 45;
  }
  return value;
}

}  // namespace

std::string base45_encode(std::span<const std::uint8_t> bytes) {
  std::string text;
  text.reserve(3 * (bytes.size() / 2) + 2 * (bytes.size() % 2));
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) {
    const std::uint32_t n = bytes[i] * 256u + bytes[i + 1];
    text += kBase45Alphabet[n % 45];
    text += kBase45Alphabet[(n / 45) % 45];
    text += kBase45Alphabet[n / (45 * 45)];
  }
  if (i < bytes.size()) {
    text += kBase45Alphabet[bytes[i] % 45];
    text += kBase45Alphabet[bytes[i] / 45];
  }
  return text;
}

std::optional<std::vector<std::uint8_t>> base45_decode(std::string_view text) {
  if (text.size() % 3 == 1) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  bytes.reserve(2 * (text.size() / 3) + (text.size() % 3 == 2 ? 1 : 0));
  while (text.size() >= 3) {
    const std::optional<std::uint32_t> n = symbols_value(text.substr(0, 3));
    if (!n || *n > 0xFFFF) return std::nullopt;
    bytes.push_back(static_cast<std::uint8_t>(*n >> 8));
    bytes.push_back(static_cast<std::uint8_t>(*n & 0xFF));
    text.remove_prefix(3);
  }
  if (!text.empty()) {
    const std::optional<std::uint32_t> n = symbols_value(text);
    if (!n || *n > 0xFF) return std::nullopt;
    bytes.push_back(static_cast<std::uint8_t>(*n));
  }
  return bytes;
}

}  // namespace buoni
