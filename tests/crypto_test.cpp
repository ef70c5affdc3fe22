// Tests for the crypto layer: hex, BLAKE2b, randomness, Ed25519 keys and key
// files, public key sets, and card numbers.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/status.h"
#include "support.h"

namespace buoni {
namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir(pattern()) {}
  [[nodiscard]] std::string file(const std::string& name) const { return sub(name); }
  static std::string pattern() {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp != nullptr ? tmp : "/tmp") + "/buoni_crypto_XXXXXX";
  }
};

void write_plain_file(const std::string& path, const std::string& contents, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary);
    out << contents;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

mode_t permission_bits(const std::string& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

template <std::size_t N>
std::array<std::uint8_t, N> hex_array(std::string_view hex) {
  std::array<std::uint8_t, N> out{};
  REQUIRE(from_hex(hex, out));
  return out;
}

CardId card_id_from_hex(std::string_view hex) {
  return CardId{hex_array<10>(hex)};
}

// Returns scripted 32-bit little-endian words, to drive Random::uniform.
class ScriptedRandom final : public Random {
 public:
  explicit ScriptedRandom(std::deque<std::uint32_t> words) : words_(std::move(words)) {}
  void fill(std::span<std::uint8_t> out) override {
    REQUIRE(out.size() == 4);
    REQUIRE(!words_.empty());
    const std::uint32_t word = words_.front();
    words_.pop_front();
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(word >> (8 * i));
  }
  [[nodiscard]] std::size_t remaining() const { return words_.size(); }

 private:
  std::deque<std::uint32_t> words_;
};

// RFC 8032 section 7.1, TEST 1.
constexpr std::string_view kRfcSeedHex =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kRfcPublicHex =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view kRfcEmptySignatureHex =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
    "6bd25bf5f0595bbe24655141438e7a100b";

std::string rfc_key_file_text(std::string_view key_id) {
  return "buoni-ed25519-v1 " + std::string(key_id) + " " + std::string(kRfcSeedHex) +
         std::string(kRfcPublicHex) + "\n";
}

}  // namespace

// ---- hex ----------------------------------------------------------------------

TEST_CASE("hex: round trip and lower-case output") {
  const std::array<std::uint8_t, 4> bytes{0x00, 0x0f, 0xab, 0xff};
  CHECK(to_hex(bytes) == "000fabff");
  std::array<std::uint8_t, 4> decoded{};
  REQUIRE(from_hex("000fabff", decoded));
  CHECK(decoded == bytes);
  REQUIRE(from_hex("000FABFF", decoded));
  CHECK(decoded == bytes);
  CHECK(to_hex(std::span<const std::uint8_t>{}).empty());
  CHECK(from_hex("", std::span<std::uint8_t>{}));
}

TEST_CASE("hex: rejects wrong length and non-hex digits") {
  std::array<std::uint8_t, 2> out{};
  CHECK_FALSE(from_hex("abc", out));
  CHECK_FALSE(from_hex("ab", out));
  CHECK_FALSE(from_hex("abcdef", out));
  CHECK_FALSE(from_hex("abcg", out));
  CHECK_FALSE(from_hex("ab c", out));
  CHECK_FALSE(from_hex("0x12", out));
  CHECK_FALSE(from_hex("+1ab", out));
}

// ---- BLAKE2b ------------------------------------------------------------------

TEST_CASE("blake2b_256: known digests") {
  CHECK(to_hex(blake2b_256("")) ==
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  CHECK(to_hex(blake2b_256("abc")) ==
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST_CASE("Hasher: incremental equals one-shot at every split point") {
  std::string message;
  for (int i = 0; i < 300; ++i) message.push_back(static_cast<char>(i * 7 + 3));
  const Hash32 expected = blake2b_256(message);
  for (std::size_t split = 0; split <= message.size(); split += 13) {
    Hasher hasher;
    hasher.update(std::string_view(message).substr(0, split));
    hasher.update(std::string_view(message).substr(split));
    CHECK(hasher.finish() == expected);
  }
  Hasher empty;
  CHECK(empty.finish() == blake2b_256(""));
}

TEST_CASE("blake2b_256_keyed: a MAC that depends on the key") {
  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  const Hash32 mac = blake2b_256_keyed(key, as_bytes("abc"));
  // Python: hashlib.blake2b(b"abc", digest_size=32, key=bytes(range(32)))
  CHECK(to_hex(mac) == "d63a32d3e44738d7907f964316c241adaba0abfeabc32349677578a15a203f7f");
  CHECK(mac != blake2b_256("abc"));
  CHECK(mac == blake2b_256_keyed(key, as_bytes("abc")));
  CHECK(mac != blake2b_256_keyed(key, as_bytes("abd")));
  key[31] ^= 1;
  CHECK(mac != blake2b_256_keyed(key, as_bytes("abc")));
}

TEST_CASE("constant_time_equal") {
  const std::array<std::uint8_t, 3> a{1, 2, 3};
  const std::array<std::uint8_t, 3> same{1, 2, 3};
  const std::array<std::uint8_t, 3> last_differs{1, 2, 4};
  const std::array<std::uint8_t, 2> shorter{1, 2};
  CHECK(constant_time_equal(a, same));
  CHECK_FALSE(constant_time_equal(a, last_differs));
  CHECK_FALSE(constant_time_equal(a, shorter));
  CHECK(constant_time_equal(std::span<const std::uint8_t>{}, std::span<const std::uint8_t>{}));
}

// ---- randomness -----------------------------------------------------------------

TEST_CASE("SeededRandom: same seed gives the same stream, different seeds differ") {
  SeededRandom first(42);
  SeededRandom again(42);
  SeededRandom other(43);
  std::array<std::uint8_t, 100> a{}, b{}, c{};
  for (int round = 0; round < 3; ++round) {
    first.fill(a);
    again.fill(b);
    other.fill(c);
    CHECK(a == b);
    CHECK(a != c);
  }
  CHECK(first.next_u64() == again.next_u64());
}

TEST_CASE("SeededRandom: stream is pinned (seed LE || counter LE || zeros)") {
  // Computed independently with Python: ChaCha20-IETF keyed by the 32-byte
  // seed, nonce "LibsodiumDRG" (libsodium's randombytes_buf_deterministic).
  SeededRandom random(1);
  std::array<std::uint8_t, 16> first{};
  std::array<std::uint8_t, 8> second{};
  random.fill(first);
  random.fill(second);
  CHECK(to_hex(first) == "04069b5f37e82f91dc37fd5eb99f1a41");
  CHECK(to_hex(second) == "1cfd9e4fe36b5156");
  SeededRandom seed_two(2);
  seed_two.fill(first);
  CHECK(to_hex(first) == "9459df919befa93b6bc7030e0e32dba1");
}

TEST_CASE("SeededRandom: consecutive fills differ") {
  SeededRandom random(7);
  std::set<std::uint64_t> values;
  for (int i = 0; i < 1000; ++i) values.insert(random.next_u64());
  CHECK(values.size() == 1000);
}

TEST_CASE("Random::uniform stays in range and is roughly uniform") {
  SeededRandom random(99);
  for (const std::uint32_t bound : {1u, 2u, 3u, 10u, 37u, 1000u, 0x80000001u, 0xffffffffu}) {
    for (int i = 0; i < 2000; ++i) CHECK(random.uniform(bound) < bound);
  }
  std::array<int, 6> counts{};
  const int draws = 60000;
  for (int i = 0; i < draws; ++i) ++counts[random.uniform(6)];
  for (const int count : counts) {
    CHECK(count > draws / 6 - 600);
    CHECK(count < draws / 6 + 600);
  }
}

TEST_CASE("Random::uniform rejects the biased low range instead of taking a modulo") {
  const std::uint32_t bound = 3u << 30;          // 2^32 mod bound = 2^30
  ScriptedRandom random({5u, (1u << 30) + 7u});  // 5 is in the rejected zone
  CHECK(random.uniform(bound) == (1u << 30) + 7u);
  CHECK(random.remaining() == 0);
  ScriptedRandom accepted({0xffffffffu});
  CHECK(accepted.uniform(bound) == 0xffffffffu % bound);
}

TEST_CASE("SystemRandom: produces varying bytes") {
  SystemRandom random;
  std::array<std::uint8_t, 32> a{}, b{};
  random.fill(a);
  random.fill(b);
  CHECK(a != b);
  CHECK(random.uniform(10) < 10);
}

// ---- signing --------------------------------------------------------------------

TEST_CASE("sign/verify: round trip; a flipped bit fails") {
  const SigningKey key = SigningKey::generate(3);
  CHECK(key.key_id == 3);
  CHECK(std::equal(key.public_key.begin(), key.public_key.end(), key.secret_key.begin() + 32));
  std::string message = "pay 12.50 EUR from card 04HM-ASW9-NF6Y-Y093-B";
  Signature signature = key.sign(as_bytes(message));
  CHECK(verify_signature(key.public_key, as_bytes(message), signature));

  for (const std::size_t bit : {std::size_t{0}, std::size_t{77}, message.size() * 8 - 1}) {
    std::string tampered = message;
    tampered[bit / 8] = static_cast<char>(tampered[bit / 8] ^ (1 << (bit % 8)));
    CHECK_FALSE(verify_signature(key.public_key, as_bytes(tampered), signature));
  }
  for (const std::size_t bit :
       {std::size_t{0}, std::size_t{255}, std::size_t{300}, std::size_t{511}}) {
    Signature tampered = signature;
    tampered[bit / 8] ^= static_cast<std::uint8_t>(1 << (bit % 8));
    CHECK_FALSE(verify_signature(key.public_key, as_bytes(message), tampered));
  }
  const SigningKey other = SigningKey::generate(4);
  CHECK(other.public_key != key.public_key);
  CHECK_FALSE(verify_signature(other.public_key, as_bytes(message), signature));
}

TEST_CASE("load_signing_key: RFC 8032 test vector from a hand-written key file") {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  write_plain_file(path, rfc_key_file_text("65535"), 0600);
  const StatusOr<SigningKey> key = load_signing_key(path);
  REQUIRE_MESSAGE(key.ok(), key.status().to_string());
  CHECK(key->key_id == 65535);
  CHECK(to_hex(key->public_key) == kRfcPublicHex);
  CHECK(to_hex(key->sign(std::span<const std::uint8_t>{})) == kRfcEmptySignatureHex);
}

// ---- key files --------------------------------------------------------------------

TEST_CASE("save_signing_key/load_signing_key: round trip, mode 0600, exact format") {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  const SigningKey key = SigningKey::generate(7);
  REQUIRE(save_signing_key(path, key).ok());
  CHECK(permission_bits(path) == 0600);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK(test::read_file(path) == "buoni-ed25519-v1 7 " + to_hex(key.secret_key) + "\n");

  const StatusOr<SigningKey> loaded = load_signing_key(path);
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
  CHECK(loaded->key_id == key.key_id);
  CHECK(loaded->public_key == key.public_key);
  CHECK(loaded->secret_key == key.secret_key);
}

TEST_CASE("save_signing_key: mode is 0600 even under a restrictive umask") {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  const mode_t old_umask = ::umask(0277);
  const Status status = save_signing_key(path, SigningKey::generate(1));
  ::umask(old_umask);
  REQUIRE(status.ok());
  CHECK(permission_bits(path) == 0600);
  CHECK(load_signing_key(path).ok());
}

TEST_CASE("save_signing_key: refuses an existing path and leaves it alone") {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  write_plain_file(path, "precious", 0600);
  const Status status = save_signing_key(path, SigningKey::generate(1));
  CHECK(status.code() == StatusCode::already_exists);
  CHECK(test::read_file(path) == "precious");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("load_signing_key: refuses a file readable by group or others") {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  write_plain_file(path, rfc_key_file_text("1"), 0644);
  const StatusOr<SigningKey> key = load_signing_key(path);
  CHECK(key.status().code() == StatusCode::invalid_argument);
  CHECK(key.status().message() == path + " is readable by group or others; chmod 600 it");
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  CHECK(load_signing_key(path).status().code() == StatusCode::invalid_argument);
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  CHECK(load_signing_key(path).ok());
}

TEST_CASE("load_signing_key: missing file is not_found") {
  TempDir dir;
  const StatusOr<SigningKey> key = load_signing_key(dir.file("absent.key"));
  CHECK(key.status().code() == StatusCode::not_found);
  CHECK(key.status().message().find("absent.key") != std::string::npos);
}

TEST_CASE("load_signing_key: malformed contents are corruption") {
  TempDir dir;
  std::string public_half_flipped = rfc_key_file_text("1");
  public_half_flipped[public_half_flipped.size() - 2] = '0';  // last hex digit 'a' -> '0'
  const std::vector<std::string> bad_files = {
      "",
      "garbage\n",
      rfc_key_file_text("0"),
      rfc_key_file_text("65536"),
      rfc_key_file_text("01"),
      rfc_key_file_text("-1"),
      rfc_key_file_text("1").substr(0, rfc_key_file_text("1").size() - 1),  // no newline
      rfc_key_file_text("1") + "\n",
      "buoni-pk-v1 1 " + std::string(kRfcPublicHex) + "\n",
      "buoni-ed25519-v1 1 " + std::string(kRfcSeedHex) + "\n",  // seed only
      public_half_flipped,
  };
  int index = 0;
  for (const std::string& contents : bad_files) {
    const std::string path = dir.file("bad" + std::to_string(index++) + ".key");
    write_plain_file(path, contents, 0600);
    CAPTURE(contents);
    CHECK(load_signing_key(path).status().code() == StatusCode::corruption);
  }
}

TEST_CASE("write_secret_file/read_secret_file: arbitrary bytes round trip") {
  TempDir dir;
  const std::string path = dir.file("pin.secret");
  const std::string contents("a\0b\nc\xff", 6);
  REQUIRE(write_secret_file(path, contents).ok());
  CHECK(permission_bits(path) == 0600);
  const StatusOr<std::string> read_back = read_secret_file(path);
  REQUIRE(read_back.ok());
  CHECK(*read_back == contents);
  CHECK(write_secret_file(path, "other").code() == StatusCode::already_exists);
  CHECK(write_secret_file(dir.file("no_such_dir/x"), "x").code() == StatusCode::not_found);
}

// ---- public key sets --------------------------------------------------------------

TEST_CASE("format_public_keys/parse_public_keys: round trip") {
  const SigningKey first = SigningKey::generate(1);
  const SigningKey second = SigningKey::generate(65535);
  const std::vector<VerifyKey> keys = {{first.key_id, first.public_key},
                                       {second.key_id, second.public_key}};
  const std::string text = format_public_keys(keys);
  CHECK(text == "buoni-pk-v1 1 " + to_hex(first.public_key) + "\nbuoni-pk-v1 65535 " +
                    to_hex(second.public_key) + "\n");
  const auto parsed = parse_public_keys(text);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 2);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    CHECK((*parsed)[i].key_id == keys[i].key_id);
    CHECK((*parsed)[i].public_key == keys[i].public_key);
  }
  CHECK(format_public_keys({}).empty());
  const auto empty = parse_public_keys("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("parse_public_keys: comments, blank lines, CRLF, upper-case hex") {
  const std::string upper_hex = "D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A";
  const std::string text = "# buoni public keys\n\n   \r\nbuoni-pk-v1 2 " + upper_hex +
                           "\r\n# retired key below\nbuoni-pk-v1 1 " + std::string(kRfcPublicHex);
  const auto parsed = parse_public_keys(text);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().to_string());
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].key_id == 2);
  CHECK(to_hex((*parsed)[0].public_key) == kRfcPublicHex);
  CHECK((*parsed)[1].key_id == 1);
}

TEST_CASE("parse_public_keys: malformed lines are corruption with the line number") {
  const std::string good = "buoni-pk-v1 1 " + std::string(kRfcPublicHex) + "\n";
  const std::vector<std::string> bad_lines = {
      "buoni-pk-v1 0 " + std::string(kRfcPublicHex),
      "buoni-pk-v1 70000 " + std::string(kRfcPublicHex),
      "buoni-pk-v1 2 " + std::string(kRfcPublicHex) + "00",
      "buoni-pk-v1 2 " + std::string(kRfcPublicHex).substr(2),
      "buoni-pk-v1 2  " + std::string(kRfcPublicHex),
      "buoni-pk-v1 2 " + std::string(kRfcPublicHex) + " ",
      "buoni-pk-v2 2 " + std::string(kRfcPublicHex),
      " # indented comments are not comments",
      "buoni-pk-v1 1 " + std::string(kRfcPublicHex),  // duplicate key id
  };
  for (const std::string& bad : bad_lines) {
    CAPTURE(bad);
    const auto parsed = parse_public_keys("# header\n" + good + bad + "\n");
    CHECK(parsed.status().code() == StatusCode::corruption);
    CHECK(parsed.status().message().find("line 3") != std::string::npos);
  }
}

// ---- card numbers -----------------------------------------------------------------

TEST_CASE("card numbers: hand-computed vectors") {
  // Independently computed in Python: int.from_bytes(id, "big") in base 32, value % 37.
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"00000000000000000000", "0000-0000-0000-0000-0"},
      {"00000000000000000001", "0000-0000-0000-0001-1"},
      {"0123456789abcdef0123", "04HM-ASW9-NF6Y-Y093-B"},
      {"deadbeefcafebabe1234", "VTPV-XVYA-ZTXB-W4HM-D"},
      {"ffffffffffffffffffff", "ZZZZ-ZZZZ-ZZZZ-ZZZZ-~"},
      {"00000000000000000020", "0000-0000-0000-0010-*"},
      {"00000000000000000024", "0000-0000-0000-0014-U"},
  };
  for (const auto& vector : vectors) {
    CAPTURE(vector.first);  // (a structured binding cannot be captured before clang 16)
    const CardId id = card_id_from_hex(vector.first);
    CHECK(format_card_number(id) == vector.second);
    const ParsedCard parsed = parse_card_number(vector.second);
    REQUIRE(parsed.id.has_value());
    CHECK(*parsed.id == id);
  }
  const CardId id = card_id_from_hex("0123456789abcdef0123");
  CHECK(format_card_id(id) == "04HMASW9NF6YY093");
  CHECK(mask_card_number(id) == "****-****-****-Y093-B");
}

TEST_CASE("card numbers: format/parse round trip for many random ids") {
  SeededRandom random(2024);
  for (int i = 0; i < 2000; ++i) {
    const CardId id = CardId::random(random);
    const std::string number = format_card_number(id);
    REQUIRE(number.size() == 21);
    for (const std::size_t hyphen : {4u, 9u, 14u, 19u}) CHECK(number[hyphen] == '-');
    const std::string masked = mask_card_number(id);
    CHECK(masked.substr(0, 15) == "****-****-****-");
    CHECK(masked.substr(15) == number.substr(15));
    CHECK(format_card_id(id) ==
          number.substr(0, 4) + number.substr(5, 4) + number.substr(10, 4) + number.substr(15, 4));
    const ParsedCard parsed = parse_card_number(number);
    REQUIRE(parsed.id.has_value());
    CHECK(*parsed.id == id);
    const ParsedCard bare = parse_card_number(format_card_id(id));
    REQUIRE(bare.id.has_value());
    CHECK(*bare.id == id);
  }
}

TEST_CASE("card numbers: CardId::random draws from the injected Random") {
  SeededRandom a(5), b(5);
  CHECK(CardId::random(a) == CardId::random(b));
  CHECK(CardId::random(a) != CardId{});
}

TEST_CASE("card numbers: lenient parsing of what people type") {
  const CardId expected = card_id_from_hex("0123456789abcdef0123");
  for (const std::string text :
       {"04hm-asw9-nf6y-y093-b", "04HM ASW9 NF6Y Y093 B", "o4HMASW9NF6YYo93B",
        "04HM-ASW9-NF6Y-YO93-b", " 04HM--ASW9NF6YY093 ", "04HMASW9NF6YY093"}) {
    CAPTURE(text);
    const ParsedCard parsed = parse_card_number(text);
    REQUIRE(parsed.id.has_value());
    CHECK(*parsed.id == expected);
  }
  const CardId one = card_id_from_hex("00000000000000000001");
  for (const std::string text : {"0000-0000-0000-000I-1", "0000-0000-0000-000l-L",
                                 "0000-0000-0000-000i-i", "oooo oooo oooo ooo1 1"}) {
    CAPTURE(text);
    const ParsedCard parsed = parse_card_number(text);
    REQUIRE(parsed.id.has_value());
    CHECK(*parsed.id == one);
  }
  const ParsedCard lower_u = parse_card_number("0000-0000-0000-0014-u");
  REQUIRE(lower_u.id.has_value());
  CHECK(*lower_u.id == card_id_from_hex("00000000000000000024"));
}

TEST_CASE("card numbers: every single-symbol substitution and adjacent swap is caught") {
  constexpr std::string_view data_symbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  constexpr std::string_view check_symbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
  SeededRandom random(31337);
  for (int sample = 0; sample < 40; ++sample) {
    const CardId id = CardId::random(random);
    const std::string symbols = format_card_id(id) + format_card_number(id).back();
    for (std::size_t position = 0; position < symbols.size(); ++position) {
      const std::string_view alphabet = position < 16 ? data_symbols : check_symbols;
      for (const char replacement : alphabet) {
        if (replacement == symbols[position]) continue;
        std::string typo = symbols;
        typo[position] = replacement;
        const ParsedCard parsed = parse_card_number(typo);
        CHECK_FALSE(parsed.id.has_value());
        CHECK(parsed.error == CardNumberError::bad_check);
      }
    }
    for (std::size_t position = 0; position + 1 < 16; ++position) {
      if (symbols[position] == symbols[position + 1]) continue;
      std::string swapped = symbols;
      std::swap(swapped[position], swapped[position + 1]);
      CHECK(parse_card_number(swapped).error == CardNumberError::bad_check);
      CHECK_FALSE(parse_card_number(swapped).id.has_value());
    }
  }
}

TEST_CASE("card numbers: wrong length") {
  for (const std::string text : {"", "-- --", "0000-0000-0000-000", "0000-0000-0000-0000-00",
                                 "0000-0000-0000-0000-0000", "1"}) {
    CAPTURE(text);
    const ParsedCard parsed = parse_card_number(text);
    CHECK_FALSE(parsed.id.has_value());
    CHECK(parsed.error == CardNumberError::bad_length);
  }
}

TEST_CASE("card numbers: characters outside the alphabet") {
  for (const std::string text :
       {"0000-0000-0000-000!-0", "0000_0000_0000_0000_0", "U000-0000-0000-0000-0",
        "*000-0000-0000-0000-0", "0000-0000-0000-000$", "0000-0000-0000-000\xc3\xa9-0",
        "0000-0000-0000-0000-0\n", "0000-0000-0000-0000-!!!!!!!!!!!!"}) {
    CAPTURE(text);
    const ParsedCard parsed = parse_card_number(text);
    CHECK_FALSE(parsed.id.has_value());
    CHECK(parsed.error == CardNumberError::bad_character);
  }
}

TEST_CASE("card numbers: error messages are distinct English text") {
  const std::string_view length = card_number_error_message(CardNumberError::bad_length);
  const std::string_view character = card_number_error_message(CardNumberError::bad_character);
  const std::string_view check = card_number_error_message(CardNumberError::bad_check);
  CHECK_FALSE(length.empty());
  CHECK_FALSE(character.empty());
  CHECK_FALSE(check.empty());
  CHECK(length != character);
  CHECK(character != check);
  CHECK(length != check);
}

}  // namespace buoni
