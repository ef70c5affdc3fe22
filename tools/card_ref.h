// Card references as people give them on the command line: a card number
// (or its 16-symbol id), or a signed token (QR text "BS1:..." or its link
// form). Tokens are verified with the data directory's public keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/signing.h"
#include "crypto/token.h"
#include "engine/model.h"

namespace buoni::tools {

// The card a reference names. A malformed number or a token that does not
// verify is a UsageError (exit 2) naming the flag and why; an expired token
// is also refused here (its card could not be spent anyway).
[[nodiscard]] CardId resolve_card(std::string_view flag, std::string_view text,
                                  const std::vector<VerifyKey>& keys, engine::Day today);

// The QR text and the link form of a card's token, valid through `expiry_day`.
struct CardTokens {
  std::string qr_text;
  std::string link;
};
[[nodiscard]] CardTokens card_tokens(const SigningKey& key, const CardId& card,
                                     engine::Day expiry_day);

}  // namespace buoni::tools
