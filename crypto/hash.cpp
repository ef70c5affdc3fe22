// BLAKE2b-256 via libsodium's crypto_generichash (see hash.h).
#include "crypto/hash.h"

#include <sodium.h>

#include <new>

#include "crypto/status.h"

namespace buoni::detail {
void ensure_sodium();  // defined in random.cpp
}  // namespace buoni::detail

namespace buoni {
namespace {

static_assert(std::tuple_size_v<Hash32> == crypto_generichash_BYTES);

crypto_generichash_state* state_of(unsigned char* storage) {
  return std::launder(reinterpret_cast<crypto_generichash_state*>(storage));
}

}  // namespace

Hash32 blake2b_256(std::span<const std::uint8_t> data) {
  detail::ensure_sodium();
  Hash32 digest{};
  const int rc =
      crypto_generichash(digest.data(), digest.size(), data.data(), data.size(), nullptr, 0);
  BUONI_ASSERT(rc == 0);
  return digest;
}

Hash32 blake2b_256_keyed(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  BUONI_ASSERT(key.size() >= crypto_generichash_KEYBYTES_MIN);
  BUONI_ASSERT(key.size() <= crypto_generichash_KEYBYTES_MAX);
  detail::ensure_sodium();
  Hash32 digest{};
  const int rc = crypto_generichash(digest.data(), digest.size(), data.data(), data.size(),
                                    key.data(), key.size());
  BUONI_ASSERT(rc == 0);
  return digest;
}

std::uint64_t siphash24(const ShortHashKey& key, std::span<const std::uint8_t> data) {
  static_assert(std::tuple_size_v<ShortHashKey> == crypto_shorthash_KEYBYTES);
  static_assert(crypto_shorthash_BYTES == sizeof(std::uint64_t));
  detail::ensure_sodium();
  std::uint64_t digest = 0;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&digest), data.data(), data.size(), key.data());
  return digest;
}

Hasher::Hasher() {
  static_assert(sizeof(crypto_generichash_state) <= sizeof(state_));
  static_assert(alignof(crypto_generichash_state) <= 64);
  detail::ensure_sodium();
  auto* state = new (state_) crypto_generichash_state;
  const int rc = crypto_generichash_init(state, nullptr, 0, crypto_generichash_BYTES);
  BUONI_ASSERT(rc == 0);
}

void Hasher::update(std::span<const std::uint8_t> data) {
  const int rc = crypto_generichash_update(state_of(state_), data.data(), data.size());
  BUONI_ASSERT(rc == 0);
}

Hash32 Hasher::finish() {
  Hash32 digest{};
  // libsodium refuses a second finish on the same state (returns -1).
  const int rc = crypto_generichash_final(state_of(state_), digest.data(), digest.size());
  BUONI_ASSERT(rc == 0);
  return digest;
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  detail::ensure_sodium();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace buoni
