// Small fixed-size byte types and hex helpers shared by every layer.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace buoni {

using Hash32 = std::array<std::uint8_t, 32>;     // BLAKE2b-256 digest
using PublicKey = std::array<std::uint8_t, 32>;  // Ed25519 public key
using SecretKey = std::array<std::uint8_t, 64>;  // Ed25519 secret key (seed || public)
using Signature = std::array<std::uint8_t, 64>;  // Ed25519 signature

// Lower-case hex of any bytes.
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);
// Parses lower- or upper-case hex of exactly out.size() bytes; false on any other
// input (then the contents of `out` are unspecified).
[[nodiscard]] bool from_hex(std::string_view hex, std::span<std::uint8_t> out);

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace buoni
