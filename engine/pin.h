// PINs: 5 digits, made from the CSPRNG at the edge, shown once, kept only as
//   pin_hash := BLAKE2b-256 keyed with the data directory's pepper over
//               ("buoni-pin-v1" || the 5 ASCII digits)
// The pepper is a secret file in the data directory, never in the store, so
// a stolen database alone does not give the 100,000 candidates away.
// Pure; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "crypto/bytes.h"
#include "crypto/random.h"

namespace buoni::engine {

inline constexpr std::size_t pin_digits = 5;

[[nodiscard]] bool valid_pin(std::string_view pin);  // exactly 5 ASCII digits
[[nodiscard]] std::string make_pin(Random& random);  // uniform over 00000..99999
[[nodiscard]] Hash32 hash_pin(std::span<const std::uint8_t> pepper, std::string_view pin);

}  // namespace buoni::engine
