// Tests for card tokens: Base45 (RFC 9285 examples and strictness), the signed
// payload and its two text forms, every TokenError from a crafted input,
// tampering with every byte and character, key rotation, sealed key files,
// and the test vectors of docs/token.md (read from the source tree).
#include <doctest/doctest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/base45.h"
#include "crypto/bytes.h"
#include "crypto/card_number.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/status.h"
#include "crypto/token.h"
#include "support.h"

namespace buoni {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string string_of(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir(pattern()) {}
  [[nodiscard]] std::string file(const std::string& name) const { return sub(name); }
  static std::string pattern() {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp != nullptr ? tmp : "/tmp") + "/buoni_token_XXXXXX";
  }
};

void write_plain_file(const std::string& path, const std::string& contents) {
  {
    std::ofstream out(path, std::ios::binary);
    out << contents;
  }
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
}

mode_t permission_bits(const std::string& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

SigningKey key_from_random(std::uint16_t key_id, Random& random) {
  std::array<std::uint8_t, 32> seed{};
  random.fill(seed);
  return SigningKey::from_seed(key_id, seed);
}

CardId card_from_hex(std::string_view hex) {
  CardId card;
  REQUIRE(from_hex(hex, card.bytes));
  return card;
}

// `tag` || payload[0..15).
Bytes tagged_message(std::string_view tag, std::span<const std::uint8_t> payload) {
  REQUIRE(payload.size() >= 15);
  Bytes message(tag.size() + 15);
  std::copy(tag.begin(), tag.end(), message.begin());
  std::copy_n(payload.begin(), 15, message.begin() + static_cast<std::ptrdiff_t>(tag.size()));
  return message;
}

// The token's signed bytes, built from the documented grammar (not token.cpp).
Bytes signed_message_of(std::span<const std::uint8_t> payload) {
  return tagged_message("buoni-card-v1", payload);
}

// Replaces the payload's signature with `key`'s signature over its first 15 bytes.
void resign(Bytes& payload, const SigningKey& key) {
  const Signature signature = key.sign(signed_message_of(payload));
  std::copy(signature.begin(), signature.end(), payload.begin() + 15);
}

std::string qr_of(const Bytes& payload) {
  return "BS1:" + base45_encode(payload);
}

std::string link_of(const Bytes& payload) {
  std::vector<char> buffer(payload.size() * 2 + 4);
  sodium_bin2base64(buffer.data(), buffer.size(), payload.data(), payload.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return buffer.data();
}

// Verifies and expects `error` (with a readable failure message).
void check_refused(std::string_view text, const std::vector<VerifyKey>& keys, std::int32_t today,
                   TokenError error) {
  const TokenResult result = verify_token(text, keys, today);
  CAPTURE(text);
  REQUIRE_FALSE(result.ok());
  CHECK(token_error_name(result.error) == token_error_name(error));
}

// A fixed key, card and expiry for the error tests.
struct Fixture {
  SigningKey key = SigningKey::from_seed(1, std::array<std::uint8_t, 32>{7});
  std::vector<VerifyKey> keys{key.verify_key()};
  CardId card = card_from_hex("00112233445566778899");
  std::int32_t expiry = 20819;
  TokenPayload payload = make_token_payload(key, card, expiry);
  Bytes payload_bytes = Bytes(payload.begin(), payload.end());
  std::string qr = token_qr_text(payload);
  std::string link = token_link_text(payload);
};

// ---- Base45 -------------------------------------------------------------------------

TEST_CASE("base45: RFC 9285 examples, both ways") {
  const std::vector<std::pair<std::string, std::string>> examples = {{"AB", "BB8"},
                                                                     {"Hello!!", "%69 VD92EX0"},
                                                                     {"base-45", "UJCLQE7W581"},
                                                                     {"ietf!", "QED8WEX0"},
                                                                     {"", ""}};
  for (const auto& example : examples) {
    const std::string& plain = example.first;  // not a structured binding: clang 14
    const std::string& encoded = example.second;  // cannot capture those in doctest's lambdas
    CAPTURE(plain);
    CHECK(base45_encode(as_bytes(plain)) == encoded);
    const std::optional<Bytes> decoded = base45_decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(string_of(*decoded) == plain);
  }
  CHECK(base45_decode("FGW") == Bytes{0xFF, 0xFF});  // the largest triplet
  CHECK(base45_decode("U5") == Bytes{0xFF});         // the largest pair
  CHECK(base45_encode(Bytes{0x00, 0x00}) == "000");
  CHECK(base45_encode(Bytes{0xFF, 0xFF}) == "FGW");
}

TEST_CASE("base45: decoding rejects what encoding cannot produce") {
  const std::vector<std::string> bad = {"GGW",   // 65536
                                        "GGX",   // 65537
                                        ":::",   // 91124, the largest three symbols
                                        "V5",    // pair 256
                                        "::",    // pair 2024
                                        "0",     // a dangling symbol
                                        "BB8A",  // 3k+1 symbols
                                        "bb8",   // lower case is not in the alphabet
                                        "BB8\n",
                                        "BB#",
                                        "B_8",
                                        std::string("B\0"
                                                    "8",
                                                    3),
                                        "BB\xc3\xa9",
                                        "QED8WEX0 1"};
  for (const std::string& text : bad) {
    CAPTURE(text);
    CHECK_FALSE(base45_decode(text).has_value());
  }
}

TEST_CASE("base45: every triplet and pair decodes iff in range, and re-encodes to itself") {
  int valid_triplets = 0;
  for (std::size_t c = 0; c < 45; ++c) {
    for (std::size_t d = 0; d < 45; ++d) {
      for (std::size_t e = 0; e < 45; ++e) {
        const std::string text = {kBase45Alphabet[c], kBase45Alphabet[d], kBase45Alphabet[e]};
        const std::optional<Bytes> decoded = base45_decode(text);
        const std::size_t value = c + 45 * d + 2025 * e;
        REQUIRE(decoded.has_value() == (value <= 0xFFFF));
        if (!decoded) continue;
        ++valid_triplets;
        REQUIRE(*decoded == Bytes{static_cast<std::uint8_t>(value >> 8),
                                  static_cast<std::uint8_t>(value & 0xFF)});
        REQUIRE(base45_encode(*decoded) == text);
      }
    }
    for (std::size_t d = 0; d < 45; ++d) {
      const std::string text = {kBase45Alphabet[c], kBase45Alphabet[d]};
      const std::optional<Bytes> decoded = base45_decode(text);
      REQUIRE(decoded.has_value() == (c + 45 * d <= 0xFF));
      if (decoded) REQUIRE(base45_encode(*decoded) == text);
    }
  }
  CHECK(valid_triplets == 65536);
}

TEST_CASE("base45: random byte strings round trip with the documented length") {
  SeededRandom random(45);
  for (std::size_t length = 0; length < 300; ++length) {
    Bytes bytes(length);
    random.fill(bytes);
    const std::string text = base45_encode(bytes);
    CHECK(text.size() == 3 * (length / 2) + 2 * (length % 2));
    CHECK(text.find_first_not_of(kBase45Alphabet) == std::string::npos);
    CHECK(base45_decode(text) == bytes);
  }
}

// ---- format ---------------------------------------------------------------------------

TEST_CASE("token: payload layout, sizes and alphabets") {
  const Fixture f;
  CHECK(f.payload[0] == 1);
  CHECK(f.payload[1] == 0x00);
  CHECK(f.payload[2] == 0x01);
  CHECK(std::equal(f.card.bytes.begin(), f.card.bytes.end(), f.payload.begin() + 3));
  CHECK(f.payload[13] == (20819 >> 8));
  CHECK(f.payload[14] == (20819 & 0xFF));
  Signature signature{};
  std::copy(f.payload.begin() + 15, f.payload.end(), signature.begin());
  CHECK(verify_signature(f.key.public_key, signed_message_of(f.payload), signature));

  CHECK(f.qr.size() == 123);
  CHECK(f.qr.size() == kTokenQrTextSize);
  CHECK(f.qr.starts_with("BS1:"));
  CHECK(f.qr.find_first_not_of(kBase45Alphabet) == std::string::npos);  // ':' is in it
  CHECK(f.qr == qr_of(f.payload_bytes));
  CHECK(f.link.size() == 106);
  CHECK(f.link.size() == kTokenLinkSize);
  CHECK(f.link == link_of(f.payload_bytes));
  CHECK(make_token(f.key, f.card, f.expiry) == f.qr);
  CHECK(make_token_link(f.key, f.card, f.expiry) == f.link);
  CHECK(make_token_payload(f.key, f.card, f.expiry) == f.payload);  // deterministic
}

TEST_CASE("token: the QR text fits version 5-L, 6-M, 7-Q (not 5-M)") {
  // One alphanumeric segment: 4-bit mode, 9-bit count (versions 1-9), 11 bits
  // per pair of characters, 6 for an odd one. Data capacities in bits are
  // 8 x data codewords from ISO/IEC 18004 table 7.
  const std::size_t n = kTokenQrTextSize;
  const std::size_t bits = 4 + 9 + 11 * (n / 2) + 6 * (n % 2);
  CHECK(bits == 690);
  CHECK(bits <= 108 * 8);       // version 5-L: 108 data codewords
  CHECK_FALSE(bits <= 86 * 8);  // version 5-M: 86 data codewords, 688 bits: 2 short
  CHECK(bits <= 108 * 8);       // version 6-M: 108 data codewords
  CHECK_FALSE(bits <= 76 * 8);  // version 6-Q
  CHECK(bits <= 88 * 8);        // version 7-Q: 704 bits, what the card renderer prints
}

TEST_CASE("token: expiry bounds 0 and 65535 round trip") {
  const Fixture f;
  for (const std::int32_t expiry : {0, 1, 255, 256, 65534, 65535}) {
    const TokenResult result = verify_token(make_token(f.key, f.card, expiry), f.keys, expiry);
    REQUIRE(result.ok());
    CHECK(result.token->expiry_day == expiry);
  }
}

TEST_CASE("token: random cards, keys and expiries round trip in both forms") {
  SeededRandom random(20819);
  for (int i = 0; i < 300; ++i) {
    const auto key_id = static_cast<std::uint16_t>(1 + random.uniform(65535));
    const SigningKey key = key_from_random(key_id, random);
    const CardId card = CardId::random(random);
    const auto expiry = static_cast<std::int32_t>(random.uniform(65536));
    const std::int32_t today = expiry - static_cast<std::int32_t>(random.uniform(1000));
    const CardToken expected{key_id, card, expiry};
    const std::vector<VerifyKey> keys = {
        SigningKey::from_seed(1, std::array<std::uint8_t, 32>{}).verify_key(), key.verify_key()};
    const TokenPayload payload = make_token_payload(key, card, expiry);
    for (const std::string& text : {token_qr_text(payload), token_link_text(payload)}) {
      CAPTURE(text);
      REQUIRE(looks_like_token(text));
      const TokenResult result = verify_token(text, keys, today);
      REQUIRE(result.ok());
      CHECK(*result.token == expected);
    }
    CHECK(verify_token_payload(payload, keys, today).token == expected);
  }
}

// ---- every error ----------------------------------------------------------------------

TEST_CASE("token error: wrong_prefix") {
  const Fixture f;
  const std::string body = f.qr.substr(4);
  for (const std::string& text :
       {"XX1:" + body, "bs1:" + body, "BS2:" + body, "BS1" + body, " " + f.qr, body, std::string(),
        std::string("BS1"), format_card_number(f.card), format_card_id(f.card), f.link.substr(1),
        f.link + "A", f.link.substr(0, 104) + "==", f.link + "==", f.link.substr(0, 105) + "+",
        f.link.substr(0, 105) + "/", f.link.substr(0, 105) + "="}) {
    check_refused(text, f.keys, f.expiry, TokenError::wrong_prefix);
    CHECK_FALSE(looks_like_token(text));
  }
}

TEST_CASE("token error: bad_encoding") {
  const Fixture f;
  std::string lower = f.qr;
  for (std::size_t i = 4; i < lower.size(); ++i)
    lower[i] = static_cast<char>(std::tolower(lower[i]));
  std::string padding_bits = f.link;
  // The last character carries 2 bits and 4 unused zero bits: A, Q, g or w.
  REQUIRE(std::string_view("AQgw").find(f.link.back()) != std::string_view::npos);
  padding_bits.back() = static_cast<char>(f.link.back() + 1);  // sets an unused bit
  for (const std::string& text :
       {f.qr.substr(0, 10) + "#" + f.qr.substr(11), lower, f.qr.substr(0, 122), f.qr + " ",
        f.qr + "\n", "BS1:GGW" + f.qr.substr(7), f.qr.substr(0, 50) + "_" + f.qr.substr(51),
        padding_bits, std::string("BS1:0")}) {
    check_refused(text, f.keys, f.expiry, TokenError::bad_encoding);
  }
}

TEST_CASE("token error: wrong_length (too short, too long, empty) in both forms") {
  const Fixture f;
  const Bytes shorter(f.payload_bytes.begin(), f.payload_bytes.end() - 1);
  Bytes longer(f.payload_bytes.size() + 1);
  std::copy(f.payload_bytes.begin(), f.payload_bytes.end(), longer.begin());
  Bytes much_shorter(f.payload_bytes.begin(), f.payload_bytes.begin() + 15);
  for (const Bytes& payload : {shorter, longer, much_shorter, Bytes{}}) {
    CAPTURE(payload.size());
    check_refused(qr_of(payload), f.keys, f.expiry, TokenError::wrong_length);
    CHECK(verify_token_payload(payload, f.keys, f.expiry).error == TokenError::wrong_length);
  }
  // A link of another length is not a link: 78 or 80 bytes are 104 or 107 characters.
  check_refused(link_of(shorter), f.keys, f.expiry, TokenError::wrong_prefix);
  check_refused(link_of(longer), f.keys, f.expiry, TokenError::wrong_prefix);
}

TEST_CASE("token error: unknown_version, even when correctly signed") {
  const Fixture f;
  for (const std::uint8_t version : {0, 2, 0x81, 0xFF}) {
    Bytes payload = f.payload_bytes;
    payload[0] = version;
    resign(payload, f.key);
    CAPTURE(int(version));
    check_refused(qr_of(payload), f.keys, f.expiry, TokenError::unknown_version);
    check_refused(link_of(payload), f.keys, f.expiry, TokenError::unknown_version);
  }
}

TEST_CASE("token error: unknown_key") {
  const Fixture f;
  SeededRandom random(2);
  const SigningKey other = key_from_random(2, random);
  check_refused(f.qr, {}, f.expiry, TokenError::unknown_key);
  check_refused(f.qr, {other.verify_key()}, f.expiry, TokenError::unknown_key);
  check_refused(f.link, {other.verify_key()}, f.expiry, TokenError::unknown_key);
  Bytes payload = f.payload_bytes;
  payload[2] = 0;  // key id 0, never issued
  resign(payload, f.key);
  check_refused(qr_of(payload), f.keys, f.expiry, TokenError::unknown_key);
}

TEST_CASE("token error: bad_signature") {
  const Fixture f;
  SeededRandom random(3);
  const SigningKey impostor = key_from_random(1, random);  // claims key id 1
  Bytes forged = f.payload_bytes;
  resign(forged, impostor);
  check_refused(qr_of(forged), f.keys, f.expiry, TokenError::bad_signature);
  // The right key id with another key's public key.
  check_refused(f.qr, {impostor.verify_key()}, f.expiry, TokenError::bad_signature);
  // The right key, but without the domain tag or with another one.
  for (const std::string_view tag : {"", "buoni-card-v2", "buoni-entry-v1"}) {
    const Signature signature = f.key.sign(tagged_message(tag, f.payload));
    Bytes payload = f.payload_bytes;
    std::copy(signature.begin(), signature.end(), payload.begin() + 15);
    CAPTURE(tag);
    check_refused(qr_of(payload), f.keys, f.expiry, TokenError::bad_signature);
  }
  Bytes zero_signature = f.payload_bytes;
  std::fill(zero_signature.begin() + 15, zero_signature.end(), 0);
  check_refused(link_of(zero_signature), f.keys, f.expiry, TokenError::bad_signature);
}

TEST_CASE("token error: expired the day after the expiry day, valid on it") {
  const Fixture f;
  for (const std::string& text : {f.qr, f.link}) {
    CHECK(verify_token(text, f.keys, f.expiry).ok());
    CHECK(verify_token(text, f.keys, f.expiry - 1).ok());
    CHECK(verify_token(text, f.keys, 0).ok());
    CHECK(verify_token(text, f.keys, -1).ok());
    check_refused(text, f.keys, f.expiry + 1, TokenError::expired);
    check_refused(text, f.keys, 1'000'000, TokenError::expired);
  }
}

TEST_CASE("token errors: checked in the documented order") {
  const Fixture f;
  Bytes payload = f.payload_bytes;
  payload[0] = 2;  // unknown version AND a bad signature AND an unknown key set
  check_refused(qr_of(payload), {}, f.expiry + 1, TokenError::unknown_version);
  check_refused(f.qr, {}, f.expiry + 1, TokenError::unknown_key);  // before expired
  Bytes tampered = f.payload_bytes;
  tampered[5] ^= 1;
  check_refused(qr_of(tampered), f.keys, f.expiry + 1, TokenError::bad_signature);
  Bytes longer(f.payload_bytes.size() + 1);
  std::copy(f.payload_bytes.begin(), f.payload_bytes.end(), longer.begin());
  longer[0] = 2;
  check_refused(qr_of(longer), {}, f.expiry + 1, TokenError::wrong_length);
  check_refused("XX1:GGW", {}, f.expiry + 1, TokenError::wrong_prefix);
  check_refused("BS1:GGW", {}, f.expiry + 1, TokenError::bad_encoding);
}

TEST_CASE("token errors: stable names and messages") {
  const std::map<TokenError, std::string_view> names = {
      {TokenError::wrong_prefix, "wrong_prefix"},
      {TokenError::bad_encoding, "bad_encoding"},
      {TokenError::wrong_length, "wrong_length"},
      {TokenError::unknown_version, "unknown_version"},
      {TokenError::unknown_key, "unknown_key"},
      {TokenError::bad_signature, "bad_signature"},
      {TokenError::expired, "expired"}};
  std::set<std::string_view> messages;
  for (const auto& [error, name] : names) {
    CHECK(token_error_name(error) == name);
    CHECK_FALSE(token_error_message(error).empty());
    messages.insert(token_error_message(error));
  }
  CHECK(messages.size() == names.size());
}

// ---- tampering --------------------------------------------------------------------------

TEST_CASE("tampering: no single-byte change of the payload verifies, in either form") {
  const Fixture f;
  SeededRandom random(79);
  for (std::size_t position = 0; position < kTokenPayloadSize; ++position) {
    for (std::uint8_t mask : {0x01, 0x02, 0x10, 0x80, 0xFF, 0x00}) {
      if (mask == 0) mask = static_cast<std::uint8_t>(1 + random.uniform(255));
      Bytes payload = f.payload_bytes;
      payload[position] ^= mask;
      CAPTURE(position);
      CAPTURE(int(mask));
      const TokenError expected = position == 0  ? TokenError::unknown_version
                                  : position < 3 ? TokenError::unknown_key
                                                 : TokenError::bad_signature;
      check_refused(qr_of(payload), f.keys, f.expiry, expected);
      check_refused(link_of(payload), f.keys, f.expiry, expected);
    }
  }
}

TEST_CASE("tampering: no single-character change of the QR text verifies") {
  const Fixture f;
  const std::string others = std::string(kBase45Alphabet) + "abcz_#\n\t=";
  std::map<TokenError, int> seen;
  for (std::size_t position = 0; position < f.qr.size(); ++position) {
    for (const char c : others) {
      std::string text = f.qr;
      text[position] = c;
      const TokenResult result = verify_token(text, f.keys, f.expiry);
      CAPTURE(text);
      REQUIRE(result.ok() == (text == f.qr));
      if (!result.ok()) ++seen[result.error];
      if (position < 4 && text != f.qr) CHECK(result.error == TokenError::wrong_prefix);
    }
  }
  CHECK(seen[TokenError::wrong_prefix] > 0);
  CHECK(seen[TokenError::bad_encoding] > 0);
  CHECK(seen[TokenError::bad_signature] > 0);
}

TEST_CASE("tampering: no single-character change of the link text verifies") {
  const Fixture f;
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .";
  for (std::size_t position = 0; position < f.link.size(); ++position) {
    for (const char c : alphabet) {
      std::string text = f.link;
      text[position] = c;
      const TokenResult result = verify_token(text, f.keys, f.expiry);
      CAPTURE(text);
      REQUIRE(result.ok() == (text == f.link));
    }
  }
}

// ---- keys ---------------------------------------------------------------------------------

TEST_CASE("key rotation: tokens name their key; retired keys answer unknown_key") {
  SeededRandom random(12);
  const SigningKey key1 = key_from_random(1, random);
  const SigningKey key2 = key_from_random(2, random);
  const CardId card = CardId::random(random);
  const std::string by1 = make_token(key1, card, 30000);
  const std::string by2 = make_token_link(key2, card, 30000);
  const std::vector<VerifyKey> both = {key1.verify_key(), key2.verify_key()};
  const std::vector<VerifyKey> reversed = {key2.verify_key(), key1.verify_key()};
  for (const auto& keys : {both, reversed}) {
    CHECK(verify_token(by1, keys, 30000).token == CardToken{1, card, 30000});
    CHECK(verify_token(by2, keys, 30000).token == CardToken{2, card, 30000});
  }
  check_refused(by1, {key2.verify_key()}, 30000, TokenError::unknown_key);
  CHECK(verify_token(by2, {key2.verify_key()}, 30000).ok());
  // Parsed from the public key file format.
  const StatusOr<std::vector<VerifyKey>> parsed = parse_public_keys(format_public_keys(both));
  REQUIRE(parsed.ok());
  CHECK(verify_token(by1, *parsed, 30000).ok());
}

TEST_CASE("SigningKey::from_seed: RFC 8032 test 1, and verify_key") {
  std::array<std::uint8_t, 32> seed{};
  REQUIRE(from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed));
  const SigningKey key = SigningKey::from_seed(9, seed);
  CHECK(key.key_id == 9);
  CHECK(to_hex(key.public_key) ==
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  CHECK(to_hex(key.sign({})) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  CHECK(key.verify_key().key_id == 9);
  CHECK(key.verify_key().public_key == key.public_key);
}

// ---- sealed key files ---------------------------------------------------------------------

TEST_CASE("sealed key file: round trip, format, mode 0600") {
  TempDir dir;
  const std::string path = dir.file("signing-3.key");
  SeededRandom random(3);
  const SigningKey key = key_from_random(3, random);
  REQUIRE(save_signing_key(path, key, "correct horse battery").ok());
  CHECK(permission_bits(path) == 0600);
  CHECK(key_file_is_sealed(path));
  const std::string text = test::read_file(path);
  CHECK(text.starts_with("buoni-ed25519-sealed-v1 3 "));
  CHECK(text.size() ==
        std::string("buoni-ed25519-sealed-v1 3 ").size() + 32 + 1 + 48 + 1 + 160 + 1);
  CHECK(text.back() == '\n');
  CHECK(text.find(to_hex(key.secret_key).substr(0, 16)) == std::string::npos);

  const StatusOr<SigningKey> loaded = load_signing_key(path, "correct horse battery");
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
  CHECK(loaded->key_id == 3);
  CHECK(loaded->public_key == key.public_key);
  CHECK(loaded->secret_key == key.secret_key);
  // Sealing again uses a fresh salt and nonce.
  const std::string again = dir.file("again.key");
  REQUIRE(save_signing_key(again, key, "correct horse battery").ok());
  CHECK(test::read_file(again) != text);
}

TEST_CASE("sealed key file: missing or wrong passphrase, damaged box") {
  TempDir dir;
  const std::string path = dir.file("signing-1.key");
  REQUIRE(save_signing_key(path, SigningKey::generate(1), std::string("s3cret")).ok());
  for (const StatusOr<SigningKey>& missing :
       {load_signing_key(path), load_signing_key(path, std::nullopt)}) {
    CHECK(missing.status().code() == StatusCode::invalid_argument);
    CHECK(missing.status().message() ==
          "key file is sealed; set BUONI_KEY_PASSPHRASE (" + path + ")");
  }
  for (const std::string_view wrong : {"s3creT", "", "s3cret "}) {
    const StatusOr<SigningKey> key = load_signing_key(path, wrong);
    CHECK(key.status().code() == StatusCode::invalid_argument);
    CHECK(key.status().message() == "wrong passphrase for key file " + path);
  }
  std::string damaged = test::read_file(path);
  damaged[damaged.size() - 2] = damaged[damaged.size() - 2] == '0' ? '1' : '0';
  const std::string damaged_path = dir.file("damaged.key");
  write_plain_file(damaged_path, damaged);
  CHECK(load_signing_key(damaged_path, "s3cret").status().message() ==
        "wrong passphrase for key file " + damaged_path);
}

TEST_CASE("sealed key file: plain files load with or without a passphrase") {
  TempDir dir;
  const std::string path = dir.file("plain.key");
  const SigningKey key = SigningKey::generate(4);
  REQUIRE(save_signing_key(path, key, std::nullopt).ok());
  CHECK(test::read_file(path) == "buoni-ed25519-v1 4 " + to_hex(key.secret_key) + "\n");
  CHECK_FALSE(key_file_is_sealed(path));
  CHECK_FALSE(key_file_is_sealed(dir.file("absent.key")));
  CHECK(load_signing_key(path, "anything")->secret_key == key.secret_key);
  CHECK(load_signing_key(path)->secret_key == key.secret_key);
}

TEST_CASE("sealed key file: refusals when saving") {
  TempDir dir;
  const std::string path = dir.file("k.key");
  const Status empty = save_signing_key(path, SigningKey::generate(1), "");
  CHECK(empty.code() == StatusCode::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(path));
  write_plain_file(path, "precious");
  CHECK(save_signing_key(path, SigningKey::generate(1), "pw").code() == StatusCode::already_exists);
  CHECK(test::read_file(path) == "precious");
  const std::string masked = dir.file("masked.key");
  const mode_t old_umask = ::umask(0277);
  const Status status = save_signing_key(masked, SigningKey::generate(1), "pw");
  ::umask(old_umask);
  REQUIRE(status.ok());
  CHECK(permission_bits(masked) == 0600);
}

// Seals `secret` per the grammar in signing.h / docs/token.md, independently of signing.cpp.
std::string hand_sealed_file(std::string_view key_id, const SecretKey& secret,
                             std::string_view passphrase) {
  std::array<std::uint8_t, 16> salt{};
  std::array<std::uint8_t, 24> nonce{};
  std::array<std::uint8_t, 32> key{};
  std::array<std::uint8_t, 80> box{};
  salt.fill(0x5A);
  nonce.fill(0xA5);
  REQUIRE(crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(),
                        2, 64u << 20, crypto_pwhash_ALG_ARGON2ID13) == 0);
  REQUIRE(crypto_secretbox_easy(box.data(), secret.data(), secret.size(), nonce.data(),
                                key.data()) == 0);
  return "buoni-ed25519-sealed-v1 " + std::string(key_id) + " " + to_hex(salt) + " " +
         to_hex(nonce) + " " + to_hex(box) + "\n";
}

TEST_CASE("sealed key file: a hand-made file per the grammar loads; malformed ones do not") {
  TempDir dir;
  SeededRandom random(8);
  const SigningKey key = key_from_random(8, random);
  const std::string good = hand_sealed_file("8", key.secret_key, "pw");
  write_plain_file(dir.file("good.key"), good);
  const StatusOr<SigningKey> loaded = load_signing_key(dir.file("good.key"), "pw");
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
  CHECK(loaded->secret_key == key.secret_key);
  CHECK(loaded->key_id == 8);

  SecretKey inconsistent = key.secret_key;
  inconsistent[63] ^= 1;  // public half no longer derives from the seed
  const std::vector<std::string> corrupt = {
      hand_sealed_file("8", inconsistent, "pw"),
      hand_sealed_file("0", key.secret_key, "pw"),
      good.substr(0, good.size() - 1),
      good + "\n",
      good.substr(0, good.size() - 3) + "\n",
      "buoni-ed25519-sealed-v1 8\n",
      std::string("buoni-ed25519-sealed-v1 8 ") + good.substr(27)};
  int index = 0;
  for (const std::string& contents : corrupt) {
    const std::string path = dir.file("bad" + std::to_string(index++) + ".key");
    write_plain_file(path, contents);
    CAPTURE(contents);
    CHECK(load_signing_key(path, "pw").status().code() == StatusCode::corruption);
  }
}

// ---- documented vectors ---------------------------------------------------------------------

using Vector = std::map<std::string, std::string>;

// The "name: value" blocks of docs/token.md that start with "vector: ".
std::vector<Vector> documented_vectors() {
  std::ifstream in(std::string(BUONI_SOURCE_DIR) + "/docs/token.md");
  REQUIRE(in.good());
  std::vector<Vector> vectors;
  bool in_vector = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("```")) in_vector = false;
    if (line.starts_with("vector: ")) {
      in_vector = true;
      vectors.emplace_back();
    }
    const std::size_t colon = line.find(": ");
    if (in_vector && colon != std::string::npos) {
      REQUIRE(vectors.back().emplace(line.substr(0, colon), line.substr(colon + 2)).second);
    }
  }
  return vectors;
}

std::string iso_date(std::int32_t day) {
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  char text[16];
  std::snprintf(text, sizeof(text), "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

TEST_CASE("docs/token.md: the test vectors are what the code produces") {
  const std::vector<Vector> vectors = documented_vectors();
  REQUIRE(vectors.size() == 2);
  for (Vector v : vectors) {
    CAPTURE(v["vector"]);
    REQUIRE(v.size() == 12);
    std::array<std::uint8_t, 32> seed{};
    REQUIRE(from_hex(v["seed"], seed));
    const SigningKey key =
        SigningKey::from_seed(static_cast<std::uint16_t>(std::stoi(v["key_id"])), seed);
    const CardId card = card_from_hex(v["card_id"]);
    const std::int32_t expiry = std::stoi(v["expiry_day"]);
    const TokenPayload payload = make_token_payload(key, card, expiry);
    CHECK(to_hex(key.public_key) == v["public_key"]);
    CHECK(format_card_number(card) == v["card_number"]);
    CHECK(iso_date(expiry) == v["expiry_date"]);
    CHECK(to_hex(signed_message_of(payload)) == v["signed_message"]);
    CHECK(to_hex(payload) == v["payload"]);
    CHECK(token_qr_text(payload) == v["qr_text"]);
    CHECK(token_link_text(payload) == v["link"]);
    for (const std::string& text : {v["qr_text"], v["link"]}) {
      const TokenResult result = verify_token(text, {key.verify_key()}, expiry);
      REQUIRE(result.ok());
      CHECK(*result.token == CardToken{key.key_id, card, expiry});
      check_refused(text, {key.verify_key()}, expiry + 1, TokenError::expired);
    }
  }
}

TEST_CASE("iso_date: the test's own date helper") {
  CHECK(iso_date(0) == "1970-01-01");
  CHECK(iso_date(20819) == "2027-01-01");
  CHECK(iso_date(65535) == "2149-06-06");
}

// ---- looks_like_token ------------------------------------------------------------------------

TEST_CASE("looks_like_token: tokens yes, card numbers no; verify agrees") {
  const Fixture f;
  SeededRandom random(5);
  CHECK(looks_like_token(f.qr));
  CHECK(looks_like_token(f.link));
  CHECK(looks_like_token("BS1:"));
  CHECK(looks_like_token(std::string(106, '-')));
  std::vector<std::string> texts = {f.qr,
                                    f.link,
                                    "BS1:",
                                    "",
                                    "BS1",
                                    "bs1:x",
                                    std::string(106, '-'),
                                    std::string(105, 'A'),
                                    std::string(107, 'A'),
                                    std::string(106, '.')};
  for (int i = 0; i < 100; ++i) {
    const CardId card = CardId::random(random);
    CHECK_FALSE(looks_like_token(format_card_number(card)));
    CHECK_FALSE(looks_like_token(format_card_id(card)));
    texts.push_back(format_card_number(card));
  }
  for (const std::string& text : texts) {
    CAPTURE(text);
    const TokenResult result = verify_token(text, f.keys, f.expiry);
    CHECK((!result.ok() && result.error == TokenError::wrong_prefix) == !looks_like_token(text));
  }
}

}  // namespace
}  // namespace buoni
