// Ed25519 keys, key files and public key sets (see signing.h).
#include "crypto/signing.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>

namespace buoni::detail {
void ensure_sodium();  // defined in random.cpp
}  // namespace buoni::detail

namespace buoni {
namespace {

constexpr std::string_view kKeyFilePrefix = "buoni-ed25519-v1 ";
constexpr std::string_view kPublicKeyPrefix = "buoni-pk-v1 ";
constexpr std::string_view kSealedKeyFilePrefix = "buoni-ed25519-sealed-v1 ";

// The sealed format fixes Argon2id's cost; pin the values libsodium calls
// INTERACTIVE so that a library upgrade cannot silently change them.
constexpr unsigned long long kSealOpsLimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
constexpr std::size_t kSealMemLimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
static_assert(kSealOpsLimit == 2);
static_assert(kSealMemLimit == 64u * 1024u * 1024u);

using SealSalt = std::array<std::uint8_t, 16>;
using SealNonce = std::array<std::uint8_t, 24>;
using SealKey = std::array<std::uint8_t, 32>;
using SealBox = std::array<std::uint8_t, 64 + 16>;  // secret key + MAC
static_assert(std::tuple_size_v<SealSalt> == crypto_pwhash_SALTBYTES);
static_assert(std::tuple_size_v<SealNonce> == crypto_secretbox_NONCEBYTES);
static_assert(std::tuple_size_v<SealKey> == crypto_secretbox_KEYBYTES);
static_assert(std::tuple_size_v<SealBox> == crypto_sign_SECRETKEYBYTES + crypto_secretbox_MACBYTES);

static_assert(std::tuple_size_v<PublicKey> == crypto_sign_PUBLICKEYBYTES);
static_assert(std::tuple_size_v<SecretKey> == crypto_sign_SECRETKEYBYTES);
static_assert(std::tuple_size_v<Signature> == crypto_sign_BYTES);

// ---- file helpers ---------------------------------------------------------

// "<what> <path>: <strerror>", as not_found for ENOENT, else io_error.
Status errno_status(std::string_view what, const std::string& path, int error_number) {
  std::string message =
      std::string(what) + " " + path + ": " + std::generic_category().message(error_number);
  if (error_number == ENOENT) return not_found(std::move(message));
  if (error_number == EEXIST) return already_exists(std::move(message));
  return io_error(std::move(message));
}

std::string parent_directory(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status write_all(int fd, std::string_view contents, const std::string& path) {
  std::size_t written_bytes = 0;
  while (written_bytes < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written_bytes, contents.size() - written_bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write", path, errno);
    }
    written_bytes += static_cast<std::size_t>(n);
  }
  return Status::ok_status();
}

Status fsync_directory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open directory", directory, errno);
  const int rc = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (rc != 0) return errno_status("fsync directory", directory, fsync_errno);
  return Status::ok_status();
}

// Writes, fsyncs and closes the new file `tmp_path`; removes it on failure.
Status write_new_file(const std::string& tmp_path, std::string_view contents) {
  const int fd = ::open(tmp_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("create", tmp_path, errno);
  Status status = Status::ok_status();
  // fchmod: the umask may have cleared owner bits; the contract is 0600.
  if (::fchmod(fd, 0600) != 0) status = errno_status("chmod", tmp_path, errno);
  if (status.ok()) status = write_all(fd, contents, tmp_path);
  if (status.ok() && ::fsync(fd) != 0) status = errno_status("fsync", tmp_path, errno);
  if (::close(fd) != 0 && status.ok()) status = errno_status("close", tmp_path, errno);
  if (!status.ok()) ::unlink(tmp_path.c_str());
  return status;
}

Status read_all(int fd, const std::string& path, std::string& out) {
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read", path, errno);
    }
    if (n == 0) return Status::ok_status();
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

// ---- text formats ---------------------------------------------------------

// A decimal key id 1..65535 without sign or leading zeros.
std::optional<std::uint16_t> parse_key_id(std::string_view text) {
  if (text.empty() || text.size() > 5 || text[0] == '0') return std::nullopt;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Parses `prefix key_id " " hex(out)` (no newline); false if malformed.
bool parse_key_line(std::string_view line, std::string_view prefix, std::uint16_t& key_id,
                    std::span<std::uint8_t> out) {
  if (!line.starts_with(prefix)) return false;
  line.remove_prefix(prefix.size());
  const std::size_t space = line.find(' ');
  if (space == std::string_view::npos) return false;
  const std::optional<std::uint16_t> id = parse_key_id(line.substr(0, space));
  if (!id) return false;
  key_id = *id;
  return from_hex(line.substr(space + 1), out);
}

std::string format_key_line(std::string_view prefix, std::uint16_t key_id,
                            std::span<const std::uint8_t> bytes) {
  BUONI_ASSERT(key_id >= 1);
  return std::string(prefix) + std::to_string(key_id) + " " + to_hex(bytes) + "\n";
}

// The secret key must be seed || public key, with the public key derived from the seed.
bool secret_key_is_consistent(const SecretKey& secret_key) {
  PublicKey derived_public{};
  SecretKey derived_secret{};
  crypto_sign_seed_keypair(derived_public.data(), derived_secret.data(), secret_key.data());
  const bool consistent =
      sodium_memcmp(derived_secret.data(), secret_key.data(), secret_key.size()) == 0;
  sodium_memzero(derived_secret.data(), derived_secret.size());
  return consistent;
}

// Checks `key.secret_key` and fills in the public key; zeroes the secret on failure.
StatusOr<SigningKey> complete_key(SigningKey key, const std::string& path) {
  if (!secret_key_is_consistent(key.secret_key)) {
    sodium_memzero(key.secret_key.data(), key.secret_key.size());
    return corruption(path + ": public half of the secret key does not match its seed");
  }
  std::copy(key.secret_key.begin() + 32, key.secret_key.end(), key.public_key.begin());
  return key;
}

StatusOr<SigningKey> parse_key_file(std::string_view text, const std::string& path) {
  SigningKey key;
  if (text.empty() || text.back() != '\n' ||
      !parse_key_line(text.substr(0, text.size() - 1), kKeyFilePrefix, key.key_id,
                      key.secret_key)) {
    sodium_memzero(key.secret_key.data(), key.secret_key.size());
    return corruption(path + ": not a buoni-ed25519-v1 key file");
  }
  return complete_key(key, path);
}

// ---- sealed key files -------------------------------------------------------

struct SealedKeyFile {
  std::uint16_t key_id = 0;
  SealSalt salt{};
  SealNonce nonce{};
  SealBox box{};
};

// Parses a whole sealed key file (with its final newline); false if malformed.
bool parse_sealed_key_file(std::string_view text, SealedKeyFile& out) {
  if (text.empty() || text.back() != '\n' || !text.starts_with(kSealedKeyFilePrefix)) return false;
  text.remove_suffix(1);
  text.remove_prefix(kSealedKeyFilePrefix.size());
  std::array<std::string_view, 4> fields;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::size_t space = text.find(' ');
    const bool last = i + 1 == fields.size();
    if (last != (space == std::string_view::npos)) return false;
    fields[i] = text.substr(0, space);
    text.remove_prefix(last ? text.size() : space + 1);
  }
  const std::optional<std::uint16_t> key_id = parse_key_id(fields[0]);
  if (!key_id) return false;
  out.key_id = *key_id;
  return from_hex(fields[1], out.salt) && from_hex(fields[2], out.nonce) &&
         from_hex(fields[3], out.box);
}

// The secretbox key for `passphrase` and `salt`; false if Argon2id could not
// get its memory.
bool derive_seal_key(std::string_view passphrase, const SealSalt& salt, SealKey& out) {
  return crypto_pwhash(out.data(), out.size(), passphrase.data(), passphrase.size(), salt.data(),
                       kSealOpsLimit, kSealMemLimit, crypto_pwhash_ALG_ARGON2ID13) == 0;
}

StatusOr<std::string> seal_key_file(const SigningKey& key, std::string_view passphrase) {
  BUONI_ASSERT(key.key_id >= 1);
  SealedKeyFile sealed;
  sealed.key_id = key.key_id;
  randombytes_buf(sealed.salt.data(), sealed.salt.size());
  randombytes_buf(sealed.nonce.data(), sealed.nonce.size());
  SealKey seal_key{};
  if (!derive_seal_key(passphrase, sealed.salt, seal_key)) {
    return internal_error("crypto_pwhash (Argon2id) failed: out of memory?");
  }
  const int rc = crypto_secretbox_easy(sealed.box.data(), key.secret_key.data(),
                                       key.secret_key.size(), sealed.nonce.data(), seal_key.data());
  sodium_memzero(seal_key.data(), seal_key.size());
  BUONI_ASSERT(rc == 0);
  return std::string(kSealedKeyFilePrefix) + std::to_string(sealed.key_id) + " " +
         to_hex(sealed.salt) + " " + to_hex(sealed.nonce) + " " + to_hex(sealed.box) + "\n";
}

StatusOr<SigningKey> open_sealed_key_file(std::string_view text, const std::string& path,
                                          std::optional<std::string_view> passphrase) {
  SealedKeyFile sealed;
  if (!parse_sealed_key_file(text, sealed)) {
    return corruption(path + ": not a buoni-ed25519-sealed-v1 key file");
  }
  if (!passphrase) {
    return invalid_argument("key file is sealed; set BUONI_KEY_PASSPHRASE (" + path + ")");
  }
  SealKey seal_key{};
  if (!derive_seal_key(*passphrase, sealed.salt, seal_key)) {
    return internal_error("crypto_pwhash (Argon2id) failed for " + path + ": out of memory?");
  }
  SigningKey key;
  key.key_id = sealed.key_id;
  const int rc =
      crypto_secretbox_open_easy(key.secret_key.data(), sealed.box.data(), sealed.box.size(),
                                 sealed.nonce.data(), seal_key.data());
  sodium_memzero(seal_key.data(), seal_key.size());
  if (rc != 0) {
    sodium_memzero(key.secret_key.data(), key.secret_key.size());
    return invalid_argument("wrong passphrase for key file " + path);
  }
  return complete_key(key, path);
}

}  // namespace

// ---- keys and signatures --------------------------------------------------

SigningKey SigningKey::generate(std::uint16_t key_id) {
  BUONI_ASSERT(key_id >= 1);
  detail::ensure_sodium();
  SigningKey key;
  key.key_id = key_id;
  const int rc = crypto_sign_keypair(key.public_key.data(), key.secret_key.data());
  BUONI_ASSERT(rc == 0);
  return key;
}

SigningKey SigningKey::from_seed(std::uint16_t key_id, std::span<const std::uint8_t, 32> seed) {
  BUONI_ASSERT(key_id >= 1);
  detail::ensure_sodium();
  SigningKey key;
  key.key_id = key_id;
  const int rc =
      crypto_sign_seed_keypair(key.public_key.data(), key.secret_key.data(), seed.data());
  BUONI_ASSERT(rc == 0);
  return key;
}

Signature SigningKey::sign(std::span<const std::uint8_t> message) const {
  detail::ensure_sodium();
  Signature signature{};
  const int rc = crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(),
                                      secret_key.data());
  BUONI_ASSERT(rc == 0);
  return signature;
}

bool verify_signature(const PublicKey& public_key, std::span<const std::uint8_t> message,
                      const Signature& signature) {
  detail::ensure_sodium();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

// ---- key files --------------------------------------------------------------

Status save_signing_key(const std::string& path, const SigningKey& key) {
  std::string text = format_key_line(kKeyFilePrefix, key.key_id, key.secret_key);
  Status status = write_secret_file(path, text);
  sodium_memzero(text.data(), text.size());
  return status;
}

Status save_signing_key(const std::string& path, const SigningKey& key,
                        std::optional<std::string_view> passphrase) {
  if (!passphrase) return save_signing_key(path, key);
  if (passphrase->empty()) return invalid_argument("empty passphrase: not sealing " + path);
  detail::ensure_sodium();
  BUONI_ASSIGN_OR_RETURN(const std::string text, seal_key_file(key, *passphrase));
  return write_secret_file(path, text);
}

StatusOr<SigningKey> load_signing_key(const std::string& path) {
  return load_signing_key(path, std::nullopt);
}

StatusOr<SigningKey> load_signing_key(const std::string& path,
                                      std::optional<std::string_view> passphrase) {
  detail::ensure_sodium();
  BUONI_ASSIGN_OR_RETURN(std::string text, read_secret_file(path));
  StatusOr<SigningKey> key = std::string_view(text).starts_with(kSealedKeyFilePrefix)
                                 ? open_sealed_key_file(text, path, passphrase)
                                 : parse_key_file(text, path);
  sodium_memzero(text.data(), text.size());
  return key;
}

bool key_file_is_sealed(const std::string& path) {
  StatusOr<std::string> text = read_secret_file(path);
  if (!text.ok()) return false;
  const bool sealed = std::string_view(*text).starts_with(kSealedKeyFilePrefix);
  sodium_memzero(text->data(), text->size());
  return sealed;
}

std::string format_public_keys(const std::vector<VerifyKey>& keys) {
  std::string text;
  for (const VerifyKey& key : keys) {
    text += format_key_line(kPublicKeyPrefix, key.key_id, key.public_key);
  }
  return text;
}

StatusOr<std::vector<VerifyKey>> parse_public_keys(std::string_view text) {
  std::vector<VerifyKey> keys;
  std::set<std::uint16_t> seen_key_ids;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos || line.starts_with('#')) continue;
    VerifyKey key;
    if (!parse_key_line(line, kPublicKeyPrefix, key.key_id, key.public_key)) {
      return corruption("public keys line " + std::to_string(line_number) +
                        ": expected \"buoni-pk-v1 <key_id> <64 hex digits>\"");
    }
    if (!seen_key_ids.insert(key.key_id).second) {
      return corruption("public keys line " + std::to_string(line_number) + ": duplicate key id " +
                        std::to_string(key.key_id));
    }
    keys.push_back(key);
  }
  return keys;
}

// ---- secret files -----------------------------------------------------------

Status write_secret_file(const std::string& path, std::string_view contents) {
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0) return already_exists(path + " already exists");
  if (errno != ENOENT) return errno_status("stat", path, errno);
  const std::string tmp_path = path + ".tmp";
  BUONI_RETURN_IF_ERROR(write_new_file(tmp_path, contents));
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    Status status = errno_status("rename " + tmp_path + " to", path, errno);
    ::unlink(tmp_path.c_str());
    return status;
  }
  return fsync_directory(parent_directory(path));
}

StatusOr<std::string> read_secret_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  struct stat info {};
  Status status = Status::ok_status();
  if (::fstat(fd, &info) != 0) {
    status = errno_status("stat", path, errno);
  } else if (!S_ISREG(info.st_mode)) {
    status = invalid_argument(path + " is not a regular file");
  } else if ((info.st_mode & 077) != 0) {
    status = invalid_argument(path + " is readable by group or others; chmod 600 it");
  }
  std::string contents;
  if (status.ok()) {
    // Reserve up front so a growing buffer leaves no stray copies of the secret.
    contents.reserve(static_cast<std::size_t>(info.st_size) + 1);
    status = read_all(fd, path, contents);
  }
  ::close(fd);
  if (!status.ok()) {
    sodium_memzero(contents.data(), contents.size());
    return status;
  }
  return contents;
}

}  // namespace buoni
