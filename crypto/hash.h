// BLAKE2b-256 (libsodium crypto_generichash), one-shot and incremental.
// Pure; thread-safe (each Hasher is owned by one thread).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "crypto/bytes.h"

namespace buoni {

[[nodiscard]] Hash32 blake2b_256(std::span<const std::uint8_t> data);
inline Hash32 blake2b_256(std::string_view data) {
  return blake2b_256(as_bytes(data));
}

// Keyed BLAKE2b-256 (a MAC): used for secrets at rest such as API keys and PINs.
[[nodiscard]] Hash32 blake2b_256_keyed(std::span<const std::uint8_t> key,
                                       std::span<const std::uint8_t> data);

// SipHash-2-4 (libsodium crypto_shorthash): a fast keyed 64-bit PRF, for
// checksums an adversary must not be able to make collide without the key.
using ShortHashKey = std::array<std::uint8_t, 16>;
[[nodiscard]] std::uint64_t siphash24(const ShortHashKey& key, std::span<const std::uint8_t> data);

class Hasher {
 public:
  Hasher();
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data) { update(as_bytes(data)); }
  [[nodiscard]] Hash32 finish();  // call once

 private:
  alignas(64) unsigned char state_[384];  // >= sizeof(crypto_generichash_state)
};

// Constant-time equality of two equal-length byte strings.
[[nodiscard]] bool constant_time_equal(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b);

}  // namespace buoni
