// Fuzz target: the card-number parser (crypto/card_number.h). Properties: a
// parsed id formats back (number, bare id, with the lenient spellings
// people type) to the same id; the masked form keeps the last group and the
// check symbol; an error has a message.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/card_number.h"
#include "fuzz_world.h"

namespace {

using buoni::fuzz::fuzz_check;

bool parses_to(std::string_view text, const buoni::CardId& id) {
  const buoni::ParsedCard p = buoni::parse_card_number(text);
  return p.id && *p.id == id;
}

void check_round_trips(const buoni::CardId& id) {
  const std::string number = buoni::format_card_number(id);
  fuzz_check(number.size() == 21, "a formatted card number is not 21 characters");
  fuzz_check(parses_to(number, id), "format_card_number does not parse back");
  fuzz_check(parses_to(buoni::format_card_id(id), id), "format_card_id does not parse back");
  std::string lower = number;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  fuzz_check(parses_to(lower, id), "a lower-case card number does not parse");
  const std::string masked = buoni::mask_card_number(id);
  fuzz_check(masked.substr(14) == number.substr(14), "the mask changed the last group or check");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const buoni::ParsedCard parsed = buoni::parse_card_number(text);
  if (parsed.id) {
    check_round_trips(*parsed.id);
  } else {
    fuzz_check(!buoni::card_number_error_message(parsed.error).empty(),
               "a card number error without a message");
  }
  return 0;
}
