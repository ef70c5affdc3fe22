// What is printed on a card, from its records and the signing key.
#pragma once

#include <string>

#include "api/card_render.h"
#include "crypto/signing.h"
#include "engine/model.h"

namespace buoni::tools {

// Where beneficiaries check their balance: $BUONI_PUBLIC_URL, else the
// default local server address.
[[nodiscard]] std::string public_url();
// $BUONI_PUBLIC_URL, else `fallback`.
[[nodiscard]] std::string public_url_or(const std::string& fallback);

[[nodiscard]] api::CardFace card_face(const engine::Card& card, const engine::Programme& programme,
                                      const SigningKey& key, const std::string& base_url);

}  // namespace buoni::tools
