#include "engine/pin.h"

#include "crypto/hash.h"

namespace buoni::engine {

bool valid_pin(std::string_view pin) {
  if (pin.size() != pin_digits) return false;
  for (char c : pin) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string make_pin(Random& random) {
  std::string pin = std::to_string(random.uniform(100'000));
  return std::string(pin_digits - pin.size(), '0') + pin;
}

Hash32 hash_pin(std::span<const std::uint8_t> pepper, std::string_view pin) {
  std::string message = "buoni-pin-v1";
  message.append(pin);
  return blake2b_256_keyed(pepper, as_bytes(message));
}

}  // namespace buoni::engine
