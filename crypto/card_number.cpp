// Card ids as Crockford Base32 card numbers with a mod-37 check symbol
// (see card_number.h).
#include "crypto/card_number.h"

#include "crypto/status.h"

namespace buoni {
namespace {

// The 32 data symbols followed by the 5 check-only symbols.
constexpr std::string_view kCheckAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
constexpr int kDataSymbolCount = 32;
constexpr std::size_t kIdSymbols = 16;  // 80 bits / 5 bits per symbol
constexpr std::size_t kNumberSymbols = kIdSymbols + 1;
static_assert(kCheckAlphabet.size() == 37);
static_assert(sizeof(CardId{}.bytes) * 8 == kIdSymbols * 5);

// Value of an already-normalised symbol in the check alphabet, or -1.
int symbol_value(char symbol) {
  const std::size_t index = kCheckAlphabet.find(symbol);
  return index == std::string_view::npos ? -1 : static_cast<int>(index);
}

// Upper-cases ASCII and applies Crockford's I/L -> 1 and O -> 0.
char normalise_symbol(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'I' || c == 'L') return '1';
  if (c == 'O') return '0';
  return c;
}

// The id's 80-bit big-endian value mod 37.
int check_value(const CardId& id) {
  int remainder = 0;
  for (const std::uint8_t byte : id.bytes) remainder = (remainder * 256 + byte) % 37;
  return remainder;
}

char check_symbol(const CardId& id) {
  return kCheckAlphabet[check_value(id)];
}

// Packs 16 five-bit values (most significant first) into the id's 10 bytes.
CardId id_from_symbol_values(const std::array<int, kNumberSymbols>& values) {
  CardId id;
  std::uint32_t pending_bits = 0;
  int pending_bit_count = 0;
  std::size_t byte_index = 0;
  for (std::size_t i = 0; i < kIdSymbols; ++i) {
    pending_bits = (pending_bits << 5) | static_cast<std::uint32_t>(values[i]);
    pending_bit_count += 5;
    if (pending_bit_count >= 8) {
      pending_bit_count -= 8;
      id.bytes[byte_index++] = static_cast<std::uint8_t>(pending_bits >> pending_bit_count);
      pending_bits &= (1u << pending_bit_count) - 1;
    }
  }
  BUONI_ASSERT(byte_index == id.bytes.size() && pending_bit_count == 0);
  return id;
}

ParsedCard card_error(CardNumberError error) {
  return ParsedCard{std::nullopt, error};
}

}  // namespace

CardId CardId::random(Random& random) {
  CardId id;
  random.fill(id.bytes);
  return id;
}

std::string format_card_id(const CardId& id) {
  std::string symbols;
  symbols.reserve(kIdSymbols);
  std::uint32_t pending_bits = 0;
  int pending_bit_count = 0;
  for (const std::uint8_t byte : id.bytes) {
    pending_bits = (pending_bits << 8) | byte;
    pending_bit_count += 8;
    while (pending_bit_count >= 5) {
      pending_bit_count -= 5;
      symbols.push_back(kCheckAlphabet[(pending_bits >> pending_bit_count) & 0x1f]);
    }
    pending_bits &= (1u << pending_bit_count) - 1;
  }
  BUONI_ASSERT(symbols.size() == kIdSymbols && pending_bit_count == 0);
  return symbols;
}

std::string format_card_number(const CardId& id) {
  const std::string symbols = format_card_id(id);
  std::string number;
  for (std::size_t group = 0; group < kIdSymbols / 4; ++group) {
    number += symbols.substr(group * 4, 4);
    number += '-';
  }
  number += check_symbol(id);
  return number;
}

std::string mask_card_number(const CardId& id) {
  return "****-****-****-" + format_card_id(id).substr(12, 4) + "-" + check_symbol(id);
}

ParsedCard parse_card_number(std::string_view text) {
  std::array<int, kNumberSymbols> values{};
  std::size_t symbol_count = 0;
  bool too_long = false;
  for (const char c : text) {
    if (c == ' ' || c == '-') continue;
    const int value = symbol_value(normalise_symbol(c));
    if (value < 0) return card_error(CardNumberError::bad_character);
    if (symbol_count == kNumberSymbols) {
      too_long = true;  // keep scanning: a bad character is the more useful error
      continue;
    }
    values[symbol_count++] = value;
  }
  if (too_long || (symbol_count != kIdSymbols && symbol_count != kNumberSymbols)) {
    return card_error(CardNumberError::bad_length);
  }
  for (std::size_t i = 0; i < kIdSymbols; ++i) {
    if (values[i] >= kDataSymbolCount) return card_error(CardNumberError::bad_character);
  }
  const CardId id = id_from_symbol_values(values);
  if (symbol_count == kNumberSymbols && values[kIdSymbols] != check_value(id)) {
    return card_error(CardNumberError::bad_check);
  }
  return ParsedCard{id, CardNumberError::bad_length};
}

std::string_view card_number_error_message(CardNumberError error) {
  switch (error) {
    case CardNumberError::bad_length:
      return "a card number has 16 symbols plus 1 check symbol";
    case CardNumberError::bad_character:
      return "the card number contains a character that is not allowed";
    case CardNumberError::bad_check:
      return "the card number's check symbol does not match; it was probably mistyped";
  }
  return "invalid card number";
}

}  // namespace buoni
