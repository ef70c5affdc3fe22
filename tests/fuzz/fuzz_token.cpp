// Fuzz target: the card token decoder (crypto/token.h). Any text goes to
// verify_token with the world's public key; the raw bytes also go to
// verify_token_payload. Properties: looks_like_token agrees with
// wrong_prefix; a token that verifies is exactly the canonical text of its
// payload (Base45 and strict base64url have one spelling per payload); the
// error names and messages exist.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/token.h"
#include "fuzz_world.h"

namespace {

using buoni::fuzz::fuzz_check;

void check_verified(std::string_view text, const buoni::CardToken& token) {
  const buoni::TokenPayload payload =
      buoni::make_token_payload(buoni::fuzz::world_key(), token.card, token.expiry_day);
  const bool canonical =
      text.starts_with(buoni::kTokenPrefix)
          ? text == buoni::token_qr_text(payload)
          : text == buoni::token_link_text(payload);
  fuzz_check(canonical, "a token verified that is not the canonical text of its payload");
  fuzz_check(token.key_id == 1, "a token verified under a key id the verifier does not hold");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<buoni::VerifyKey> keys = buoni::fuzz::world_verify_keys();
  const std::int32_t today = buoni::fuzz::world_today();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const buoni::TokenResult r = buoni::verify_token(text, keys, today);
  fuzz_check(buoni::looks_like_token(text) == (r.ok() || r.error != buoni::TokenError::wrong_prefix),
             "looks_like_token disagrees with verify_token's wrong_prefix");
  if (r.ok()) {
    check_verified(text, *r.token);
  } else {
    fuzz_check(!buoni::token_error_name(r.error).empty(), "a token error without a name");
    fuzz_check(!buoni::token_error_message(r.error).empty(), "a token error without a message");
  }
  const buoni::TokenResult raw = buoni::verify_token_payload({data, size}, keys, today);
  fuzz_check(!raw.ok() || size == buoni::kTokenPayloadSize, "a payload verified at a wrong size");
  return 0;
}
