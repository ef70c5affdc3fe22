// Random: the injected source of randomness (ids, keys, PINs).
//
// Production uses SystemRandom (libsodium's CSPRNG). Tests use SeededRandom,
// which gives the same bytes for the same seed, so a failing run replays.
// Thread safety: SystemRandom is safe from any thread; SeededRandom is not
// (give each thread its own, or guard it).
#pragma once

#include <cstdint>
#include <span>

namespace buoni {

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;
  // Uniform in [0, upper_bound); upper_bound > 0.
  [[nodiscard]] std::uint32_t uniform(std::uint32_t upper_bound);
  [[nodiscard]] std::uint64_t next_u64();
};

class SystemRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

// Deterministic stream: libsodium's randombytes_buf_deterministic keyed by the
// seed and a running counter. NOT for secrets.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed) : seed_(seed) {}
  void fill(std::span<std::uint8_t> out) override;

 private:
  std::uint64_t seed_;
  std::uint64_t counter_ = 0;
};

}  // namespace buoni
