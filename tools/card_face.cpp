#include "tools/card_face.h"

#include <cstdlib>

#include "engine/calendar.h"
#include "tools/card_ref.h"

namespace buoni::tools {

std::string public_url() { return public_url_or("http://127.0.0.1:8080"); }

std::string public_url_or(const std::string& fallback) {
  const char* url = std::getenv("BUONI_PUBLIC_URL");
  return url && *url ? std::string(url) : fallback;
}

api::CardFace card_face(const engine::Card& card, const engine::Programme& programme,
                        const SigningKey& key, const std::string& base_url) {
  CardTokens tokens = card_tokens(key, card.id, programme.valid_until_day);
  api::CardFace face;
  face.programme_name = programme.name;
  face.amount_cents = card.issued_cents;
  face.expiry_date = engine::format_day(programme.valid_until_day);
  face.card_number = format_card_number(card.id);
  face.qr_text = tokens.qr_text;
  face.balance_url = base_url + "/c/" + tokens.link;
  return face;
}

}  // namespace buoni::tools
