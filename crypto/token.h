// Card tokens: the signed credential printed as a card's QR code.
//
// Format (docs/token.md has the rationale and test vectors):
//   payload   := version (u8 = 1) || key_id (u16 BE) || card_id (10 bytes)
//                || expiry_day (u16 BE) || signature (64 bytes)        79 bytes
//   signature := Ed25519(secret key of key_id,
//                        "buoni-card-v1" (13 ASCII bytes) || payload[0..15))
//   qr text   := "BS1:" Base45(payload)                    (RFC 9285) 123 chars
//   link text := base64url(payload), no padding (RFC 4648 section 5)  106 chars
// expiry_day counts days since 1970-01-01 UTC; it is the LAST day on which
// the token is valid. The QR text uses only QR alphanumeric characters: 690
// bits in one segment: QR version 5 at error correction level L, 6 at M,
// 7 at Q (version 5-M holds 688 bits: 2 short; docs/token.md). The link
// text is for URLs (/c/{token}), where Base45's space, '%', '+' and '/' would
// need escaping.
//
// Verification (verify_token) checks, in this order, and answers the first
// failure: prefix, encoding, length, version, key id, signature, expiry.
// Text is taken exactly as given: no trimming, no case folding (Base45 is upper
// case only, so a lower-cased QR text is bad_encoding).
//
// Keys rotate by key id: tokens name the key that signed them, and a verifier
// holds the public keys of every key id still honoured.
//
// Errors: verify_token answers a TokenError, never a Status: a bad token is a
// normal answer about user input, not an infrastructure failure. A caller bug
// (expiry_day outside 0..65535, a key id of 0) is a broken invariant
// (BUONI_ASSERT).
// Pure functions; thread-safe (signing uses a const SigningKey).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/signing.h"

namespace buoni {

inline constexpr std::uint8_t kTokenVersion = 1;
inline constexpr std::string_view kTokenPrefix = "BS1:";
inline constexpr std::string_view kTokenDomainTag = "buoni-card-v1";
inline constexpr std::size_t kTokenSignedBytes = 15;        // version .. expiry_day
inline constexpr std::size_t kTokenPayloadSize = 79;        // signed bytes + signature
inline constexpr std::size_t kTokenQrTextSize = 123;        // "BS1:" + 119 Base45 symbols
inline constexpr std::size_t kTokenLinkSize = 106;          // ceil(79 * 4 / 3)
inline constexpr std::int32_t kTokenExpiryDayMax = 0xFFFF;  // 2149-06-06

using TokenPayload = std::array<std::uint8_t, kTokenPayloadSize>;

// What a verified token says.
struct CardToken {
  std::uint16_t key_id = 0;
  CardId card;
  std::int32_t expiry_day = 0;  // last valid day, days since 1970-01-01 UTC
  auto operator<=>(const CardToken&) const = default;
};

// The signed payload for `card`, valid through `expiry_day` (0..65535),
// signed by `key` (key_id >= 1). Deterministic: Ed25519 signatures are.
[[nodiscard]] TokenPayload make_token_payload(const SigningKey& key, const CardId& card,
                                              std::int32_t expiry_day);
// "BS1:" + Base45(payload): the text of the card's QR code (123 characters).
[[nodiscard]] std::string token_qr_text(const TokenPayload& payload);
// base64url without padding (106 characters): the {token} of /c/{token}.
[[nodiscard]] std::string token_link_text(const TokenPayload& payload);

// Shorthands: token_qr_text / token_link_text of make_token_payload.
[[nodiscard]] std::string make_token(const SigningKey& key, const CardId& card,
                                     std::int32_t expiry_day);
[[nodiscard]] std::string make_token_link(const SigningKey& key, const CardId& card,
                                          std::int32_t expiry_day);

// Why a token was refused; the values and names are stable (logs, JSON).
enum class TokenError : unsigned char {
  wrong_prefix,     // neither "BS1:..." nor 106 characters of base64url
  bad_encoding,     // a character or sequence the encoding cannot produce
  wrong_length,     // decodes, but not to 79 bytes
  unknown_version,  // version byte is not 1
  unknown_key,      // key id not among the verifier's keys
  bad_signature,    // the signature does not verify: altered or forged
  expired,          // today_day > expiry_day
};

// "wrong_prefix", "bad_encoding", ...: stable snake_case names.
[[nodiscard]] std::string_view token_error_name(TokenError error);
// One sentence for people, without any part of the token.
[[nodiscard]] std::string_view token_error_message(TokenError error);

// Exactly one of: token set (valid), or error meaningful.
struct TokenResult {
  std::optional<CardToken> token;
  TokenError error = TokenError::wrong_prefix;
  [[nodiscard]] bool ok() const { return token.has_value(); }
};

// Verifies a QR text ("BS1:" + Base45) or a link text (106 characters of
// base64url) against `keys` (first key with the token's key id is used) on
// `today_day` (days since 1970-01-01 UTC). A token is still valid on its
// expiry day and expired from the next day on.
[[nodiscard]] TokenResult verify_token(std::string_view text, const std::vector<VerifyKey>& keys,
                                       std::int32_t today_day);
// The same checks from the length check on, for decoded payload bytes.
[[nodiscard]] TokenResult verify_token_payload(std::span<const std::uint8_t> payload,
                                               const std::vector<VerifyKey>& keys,
                                               std::int32_t today_day);

// True if `text` has the shape of a token (starts with "BS1:", or is exactly
// 106 characters of A-Z a-z 0-9 - _), so a caller that accepts a token or a
// card number knows which parser to use. Never true for a card number.
// verify_token answers wrong_prefix exactly when this is false.
[[nodiscard]] bool looks_like_token(std::string_view text);

}  // namespace buoni
