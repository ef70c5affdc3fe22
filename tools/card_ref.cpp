#include "tools/card_ref.h"

#include "tools/cli.h"

namespace buoni::tools {

CardId resolve_card(std::string_view flag, std::string_view text,
                    const std::vector<VerifyKey>& keys, engine::Day today) {
  if (!looks_like_token(text)) return parse_card(flag, text);
  TokenResult r = verify_token(text, keys, today);
  if (!r.ok()) {
    throw UsageError{std::string(flag) + ": token refused (" +
                     std::string(token_error_name(r.error)) +
                     "): " + std::string(token_error_message(r.error))};
  }
  return r.token->card;
}

CardTokens card_tokens(const SigningKey& key, const CardId& card, engine::Day expiry_day) {
  TokenPayload payload = make_token_payload(key, card, expiry_day);
  return {token_qr_text(payload), token_link_text(payload)};
}

}  // namespace buoni::tools
