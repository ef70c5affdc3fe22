// Base45 (RFC 9285): bytes as text in the QR code alphanumeric alphabet
//   0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:
// Each 2 bytes [a, b] become the value n = a*256 + b written as three symbols
// c d e with n = c + 45*d + 45*45*e (least significant first); a final odd
// byte becomes two symbols c d with byte = c + 45*d.
//
// Contract:
//  - base45_encode never fails; its output length is 3*(n/2) + 2*(n%2).
//  - base45_decode is strict and is the exact inverse of base45_encode: it
//    accepts only strings that base45_encode can produce. It rejects (nullopt)
//    any character outside the 45-symbol alphabet (lower case included: the
//    alphabet is upper case only), a length of 3k+1 (a dangling symbol), a
//    triplet whose value exceeds 65535 ("GGW" = 65536; "FGW" is 0xFFFF) and a
//    final pair whose value exceeds 255 ("V5" = 256; "U5" is 0xFF). So every
//    byte string has exactly one Base45 text.
//  - The empty string encodes to, and decodes from, the empty string.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace buoni {

// The 45 symbols, in value order (symbol i has value i).
inline constexpr std::string_view kBase45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

[[nodiscard]] std::string base45_encode(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::optional<std::vector<std::uint8_t>> base45_decode(std::string_view text);

}  // namespace buoni
