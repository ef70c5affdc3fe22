// Ed25519 signing keys (libsodium) and their files in the data directory.
//
// A SigningKey is identified by a key_id (1..65535) so keys can rotate: new
// signatures use the newest key, old signatures keep verifying with the
// public key set.
//
// Key file format (text, one line, mode 0600, written atomically via a temp
// file + fsync + rename):
//   key_file := "buoni-ed25519-v1 " key_id " " hex(secret_key 64 bytes) "\n"
// Public key set (text, for verifiers; `buoni key show` prints it):
//   public_keys := { "buoni-pk-v1 " key_id " " hex(public_key 32 bytes) "\n" }
//
// Thread safety: a const SigningKey may be used to sign from any thread.
// Failures: file errors are Status io_error / not_found; malformed contents
// are corruption; a key file readable by group/others is refused
// (invalid_argument) because it holds a secret.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/status.h"

namespace buoni {

struct SigningKey {
  std::uint16_t key_id = 0;
  PublicKey public_key{};
  SecretKey secret_key{};

  [[nodiscard]] static SigningKey generate(std::uint16_t key_id);
  [[nodiscard]] Signature sign(std::span<const std::uint8_t> message) const;
};

struct VerifyKey {
  std::uint16_t key_id = 0;
  PublicKey public_key{};
};

[[nodiscard]] bool verify_signature(const PublicKey& public_key,
                                    std::span<const std::uint8_t> message,
                                    const Signature& signature);

// Writes `path` (must not exist) with mode 0600.
[[nodiscard]] Status save_signing_key(const std::string& path, const SigningKey& key);
[[nodiscard]] StatusOr<SigningKey> load_signing_key(const std::string& path);

[[nodiscard]] std::string format_public_keys(const std::vector<VerifyKey>& keys);
[[nodiscard]] StatusOr<std::vector<VerifyKey>> parse_public_keys(std::string_view text);

// Writes a small secret file (mode 0600) atomically; `path` must not exist.
[[nodiscard]] Status write_secret_file(const std::string& path, std::string_view contents);
// Reads a secret file; refuses one readable by group or others.
[[nodiscard]] StatusOr<std::string> read_secret_file(const std::string& path);

}  // namespace buoni
