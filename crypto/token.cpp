// Card tokens (see token.h and docs/token.md).
#include "crypto/token.h"

#include <sodium.h>

#include <algorithm>

#include "crypto/base45.h"

namespace buoni::detail {
void ensure_sodium();  // defined in random.cpp
}  // namespace buoni::detail

namespace buoni {
namespace {

// Payload offsets.
constexpr std::size_t kVersionAt = 0;
constexpr std::size_t kKeyIdAt = 1;
constexpr std::size_t kCardAt = 3;
constexpr std::size_t kExpiryAt = 13;
constexpr std::size_t kSignatureAt = 15;
static_assert(kCardAt + std::tuple_size_v<decltype(CardId::bytes)> == kExpiryAt);
static_assert(kSignatureAt == kTokenSignedBytes);
static_assert(kSignatureAt + std::tuple_size_v<Signature> == kTokenPayloadSize);
static_assert(kTokenPrefix.size() + 3 * (kTokenPayloadSize / 2) + 2 * (kTokenPayloadSize % 2) ==
              kTokenQrTextSize);
static_assert(kTokenLinkSize == (kTokenPayloadSize * 4 + 2) / 3);

using SignedMessage = std::array<std::uint8_t, kTokenDomainTag.size() + kTokenSignedBytes>;

// The bytes the signature covers: domain tag || payload[0..15).
SignedMessage signed_message(std::span<const std::uint8_t> payload) {
  BUONI_ASSERT(payload.size() >= kTokenSignedBytes);
  SignedMessage message{};
  std::copy(kTokenDomainTag.begin(), kTokenDomainTag.end(), message.begin());
  std::copy_n(payload.begin(), kTokenSignedBytes, message.begin() + kTokenDomainTag.size());
  return message;
}

void store_u16_be(std::uint16_t value, std::uint8_t* out) {
  out[0] = static_cast<std::uint8_t>(value >> 8);
  out[1] = static_cast<std::uint8_t>(value & 0xFF);
}

std::uint16_t load_u16_be(const std::uint8_t* in) {
  return static_cast<std::uint16_t>((in[0] << 8) | in[1]);
}

bool is_base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool looks_like_link(std::string_view text) {
  return text.size() == kTokenLinkSize && std::all_of(text.begin(), text.end(), is_base64url_char);
}

// Strict base64url without padding: nullopt unless the text is canonical
// (libsodium rejects leftover non-zero bits and a dangling symbol).
std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
  detail::ensure_sodium();
  std::vector<std::uint8_t> bytes(text.size() * 3 / 4 + 1);
  std::size_t length = 0;
  if (sodium_base642bin(bytes.data(), bytes.size(), text.data(), text.size(), nullptr, &length,
                        nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  bytes.resize(length);
  return bytes;
}

TokenResult refuse(TokenError error) {
  return TokenResult{std::nullopt, error};
}

const VerifyKey* find_key(const std::vector<VerifyKey>& keys, std::uint16_t key_id) {
  const auto it = std::find_if(keys.begin(), keys.end(),
                               [key_id](const VerifyKey& key) { return key.key_id == key_id; });
  return it == keys.end() ? nullptr : &*it;
}

}  // namespace

TokenPayload make_token_payload(const SigningKey& key, const CardId& card,
                                std::int32_t expiry_day) {
  BUONI_ASSERT(key.key_id >= 1);
  BUONI_ASSERT(expiry_day >= 0 && expiry_day <= kTokenExpiryDayMax);
  TokenPayload payload{};
  payload[kVersionAt] = kTokenVersion;
  store_u16_be(key.key_id, &payload[kKeyIdAt]);
  std::copy(card.bytes.begin(), card.bytes.end(), payload.begin() + kCardAt);
  store_u16_be(static_cast<std::uint16_t>(expiry_day), &payload[kExpiryAt]);
  const Signature signature = key.sign(signed_message(payload));
  std::copy(signature.begin(), signature.end(), payload.begin() + kSignatureAt);
  return payload;
}

std::string token_qr_text(const TokenPayload& payload) {
  std::string text(kTokenPrefix);
  text += base45_encode(payload);
  BUONI_ASSERT(text.size() == kTokenQrTextSize);
  return text;
}

std::string token_link_text(const TokenPayload& payload) {
  detail::ensure_sodium();
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  char buffer[sodium_base64_ENCODED_LEN(kTokenPayloadSize, kVariant)];
  sodium_bin2base64(buffer, sizeof(buffer), payload.data(), payload.size(), kVariant);
  std::string text(buffer);
  BUONI_ASSERT(text.size() == kTokenLinkSize);
  return text;
}

std::string make_token(const SigningKey& key, const CardId& card, std::int32_t expiry_day) {
  return token_qr_text(make_token_payload(key, card, expiry_day));
}

std::string make_token_link(const SigningKey& key, const CardId& card, std::int32_t expiry_day) {
  return token_link_text(make_token_payload(key, card, expiry_day));
}

std::string_view token_error_name(TokenError error) {
  switch (error) {
    case TokenError::wrong_prefix:
      return "wrong_prefix";
    case TokenError::bad_encoding:
      return "bad_encoding";
    case TokenError::wrong_length:
      return "wrong_length";
    case TokenError::unknown_version:
      return "unknown_version";
    case TokenError::unknown_key:
      return "unknown_key";
    case TokenError::bad_signature:
      return "bad_signature";
    case TokenError::expired:
      return "expired";
  }
  return "unknown";
}

std::string_view token_error_message(TokenError error) {
  switch (error) {
    case TokenError::wrong_prefix:
      return "not a card token: expected \"BS1:\" and Base45, or a 106-character link token";
    case TokenError::bad_encoding:
      return "the card token contains characters that do not decode";
    case TokenError::wrong_length:
      return "the card token does not decode to 79 bytes";
    case TokenError::unknown_version:
      return "the card token has an unknown format version";
    case TokenError::unknown_key:
      return "the card token was signed with a key this system does not know";
    case TokenError::bad_signature:
      return "the card token's signature does not verify";
    case TokenError::expired:
      return "the card token has expired";
  }
  return "unknown card token error";
}

TokenResult verify_token(std::string_view text, const std::vector<VerifyKey>& keys,
                         std::int32_t today_day) {
  std::optional<std::vector<std::uint8_t>> payload;
  if (text.starts_with(kTokenPrefix)) {
    payload = base45_decode(text.substr(kTokenPrefix.size()));
  } else if (looks_like_link(text)) {
    payload = base64url_decode(text);
  } else {
    return refuse(TokenError::wrong_prefix);
  }
  if (!payload) return refuse(TokenError::bad_encoding);
  return verify_token_payload(*payload, keys, today_day);
}

TokenResult verify_token_payload(std::span<const std::uint8_t> payload,
                                 const std::vector<VerifyKey>& keys, std::int32_t today_day) {
  if (payload.size() != kTokenPayloadSize) return refuse(TokenError::wrong_length);
  if (payload[kVersionAt] != kTokenVersion) return refuse(TokenError::unknown_version);
  CardToken token;
  token.key_id = load_u16_be(&payload[kKeyIdAt]);
  const VerifyKey* key = find_key(keys, token.key_id);
  if (key == nullptr) return refuse(TokenError::unknown_key);
  Signature signature{};
  std::copy_n(payload.begin() + kSignatureAt, signature.size(), signature.begin());
  if (!verify_signature(key->public_key, signed_message(payload), signature)) {
    return refuse(TokenError::bad_signature);
  }
  std::copy_n(payload.begin() + kCardAt, token.card.bytes.size(), token.card.bytes.begin());
  token.expiry_day = load_u16_be(&payload[kExpiryAt]);
  if (today_day > token.expiry_day) return refuse(TokenError::expired);
  return TokenResult{token, TokenError::wrong_prefix};
}

bool looks_like_token(std::string_view text) {
  return text.starts_with(kTokenPrefix) || looks_like_link(text);
}

}  // namespace buoni
