// Random sources (see random.h). Also home of ensure_sodium(), the one place
// that initialises libsodium; the other crypto .cpp files declare it.
#include "crypto/random.h"

#include <sodium.h>

#include <array>
#include <limits>

#include "crypto/status.h"

namespace buoni::detail {

// Initialises libsodium once per process; a failure is a broken invariant.
void ensure_sodium() {
  static const bool initialised = sodium_init() >= 0;
  BUONI_ASSERT(initialised);
}

}  // namespace buoni::detail

namespace buoni {
namespace {

void store_u64_le(std::uint64_t value, std::uint8_t* out) {
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<std::uint8_t>(value >> (8 * i));
  }
}

std::uint64_t load_u64_le(const std::uint8_t* in) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | in[i];
  return value;
}

}  // namespace

std::uint32_t Random::uniform(std::uint32_t upper_bound) {
  BUONI_ASSERT(upper_bound > 0);
  // Values below `threshold` would make some results more likely than others
  // (2^32 mod upper_bound of them); drawing again removes the modulo bias.
  const std::uint32_t threshold = (0u - upper_bound) % upper_bound;
  while (true) {
    std::array<std::uint8_t, 4> bytes{};
    fill(bytes);
    const std::uint32_t value =
        static_cast<std::uint32_t>(bytes[0]) | static_cast<std::uint32_t>(bytes[1]) << 8 |
        static_cast<std::uint32_t>(bytes[2]) << 16 | static_cast<std::uint32_t>(bytes[3]) << 24;
    if (value >= threshold) return value % upper_bound;
  }
}

std::uint64_t Random::next_u64() {
  std::array<std::uint8_t, 8> bytes{};
  fill(bytes);
  return load_u64_le(bytes.data());
}

void SystemRandom::fill(std::span<std::uint8_t> out) {
  if (out.empty()) return;  // libsodium wants a non-null buffer
  detail::ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

void SeededRandom::fill(std::span<std::uint8_t> out) {
  static_assert(randombytes_SEEDBYTES == 32);
  if (out.empty()) return;  // libsodium wants a non-null buffer; the stream does not move
  detail::ensure_sodium();
  std::array<unsigned char, randombytes_SEEDBYTES> stream_seed{};
  store_u64_le(seed_, stream_seed.data());
  store_u64_le(counter_, stream_seed.data() + 8);
  ++counter_;
  randombytes_buf_deterministic(out.data(), out.size(), stream_seed.data());
}

}  // namespace buoni
