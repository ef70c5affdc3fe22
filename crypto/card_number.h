// Card ids and card numbers.
//
// A card id is 80 random bits. Its number is the id written as 16 Crockford
// Base32 symbols (alphabet 0123456789ABCDEFGHJKMNPQRSTVWXYZ, most significant
// bits first) followed by one check symbol: the id's value mod 37 written with
// Crockford's check alphabet (the 32 symbols plus *~$=U). Shown as
//   XXXX-XXXX-XXXX-XXXX-C
// Parsing is lenient as people type: case-insensitive, spaces and hyphens
// ignored, I and L read as 1, O read as 0. Parsing rejects a wrong check
// symbol, a wrong length, and any other character.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/random.h"

namespace buoni {

struct CardId {
  std::array<std::uint8_t, 10> bytes{};
  auto operator<=>(const CardId&) const = default;

  [[nodiscard]] static CardId random(Random& random);
};

enum class CardNumberError : unsigned char {
  bad_length,     // not 16 (id) or 17 (number) symbols after normalising
  bad_character,  // a character outside the Crockford alphabet
  bad_check,      // the check symbol does not match
};

// "7K2M-9QXD-0B4T-RS1N-8" (with check symbol).
[[nodiscard]] std::string format_card_number(const CardId& id);
// The 16 symbols without check or hyphens: the card's id as shown in JSON.
[[nodiscard]] std::string format_card_id(const CardId& id);
// "****-****-****-RS1N-8": safe for logs and receipts.
[[nodiscard]] std::string mask_card_number(const CardId& id);

struct ParsedCard {
  std::optional<CardId> id;
  CardNumberError error = CardNumberError::bad_length;
};
// Accepts a 17-symbol number (check symbol verified) or a bare 16-symbol id.
[[nodiscard]] ParsedCard parse_card_number(std::string_view text);
[[nodiscard]] std::string_view card_number_error_message(CardNumberError error);

}  // namespace buoni
