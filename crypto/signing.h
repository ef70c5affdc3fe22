// Ed25519 signing keys (libsodium) and their files in the data directory.
//
// A SigningKey is identified by a key_id (1..65535) so keys can rotate: new
// signatures use the newest key, old signatures keep verifying with the
// public key set.
//
// Key file format (text, one line, mode 0600, written atomically via a temp
// file + fsync + rename):
//   key_file := "buoni-ed25519-v1 " key_id " " hex(secret_key 64 bytes) "\n"
// A key file may instead be sealed with a passphrase (same mode and writing):
//   sealed_key_file := "buoni-ed25519-sealed-v1 " key_id " " hex(salt 16 bytes)
//                      " " hex(nonce 24 bytes) " " hex(box 80 bytes) "\n"
//   box := crypto_secretbox_easy(secret_key 64 bytes, nonce, k)   (XSalsa20-Poly1305)
//   k   := crypto_pwhash Argon2id13 (passphrase, salt, 32 bytes,
//          opslimit 2, memlimit 64 MiB: libsodium's INTERACTIVE values)
// The key id is not inside the box; a loaded key is checked to be
// consistent (its public half derives from its seed) either way.
// Public key set (text, for verifiers; `buoni key show` prints it):
//   public_keys := { "buoni-pk-v1 " key_id " " hex(public_key 32 bytes) "\n" }
//
// Thread safety: a const SigningKey may be used to sign from any thread.
// Failures: file errors are Status io_error / not_found; malformed contents
// are corruption; a key file readable by group/others is refused
// (invalid_argument) because it holds a secret. A sealed file loaded without
// a passphrase, or with a wrong one, is invalid_argument (see load_signing_key).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/status.h"

namespace buoni {

struct VerifyKey {
  std::uint16_t key_id = 0;
  PublicKey public_key{};
};

struct SigningKey {
  std::uint16_t key_id = 0;
  PublicKey public_key{};
  SecretKey secret_key{};

  [[nodiscard]] static SigningKey generate(std::uint16_t key_id);
  // The key pair of a 32-byte RFC 8032 seed: for test vectors and fixtures
  // (production keys come from generate()). key_id >= 1.
  [[nodiscard]] static SigningKey from_seed(std::uint16_t key_id,
                                            std::span<const std::uint8_t, 32> seed);
  [[nodiscard]] Signature sign(std::span<const std::uint8_t> message) const;
  // The public half, for a verifier's key set.
  [[nodiscard]] VerifyKey verify_key() const { return {key_id, public_key}; }
};

[[nodiscard]] bool verify_signature(const PublicKey& public_key,
                                    std::span<const std::uint8_t> message,
                                    const Signature& signature);

// Writes `path` (must not exist) with mode 0600, as a plain key file.
[[nodiscard]] Status save_signing_key(const std::string& path, const SigningKey& key);
// The same, sealed with `passphrase` when it is set (a fresh random salt and
// nonce each time; Argon2id takes ~0.15 s and 64 MiB). An empty
// passphrase is refused (invalid_argument); nullopt writes a plain file.
[[nodiscard]] Status save_signing_key(const std::string& path, const SigningKey& key,
                                      std::optional<std::string_view> passphrase);

// Loads a plain or a sealed key file. A plain file loads whatever
// `passphrase` is. A sealed file needs the passphrase it was sealed with:
//   no passphrase -> invalid_argument("key file is sealed; set BUONI_KEY_PASSPHRASE (PATH)")
//   wrong one     -> invalid_argument("wrong passphrase for key file PATH")
// (a damaged box reads as a wrong passphrase: the two cannot be told apart).
// The one-argument form is load_signing_key(path, std::nullopt).
[[nodiscard]] StatusOr<SigningKey> load_signing_key(const std::string& path);
[[nodiscard]] StatusOr<SigningKey> load_signing_key(const std::string& path,
                                                    std::optional<std::string_view> passphrase);
// True if `path` is a readable key file in the sealed format; false for a
// plain key file and for any file that cannot be read (load says why).
[[nodiscard]] bool key_file_is_sealed(const std::string& path);

[[nodiscard]] std::string format_public_keys(const std::vector<VerifyKey>& keys);
[[nodiscard]] StatusOr<std::vector<VerifyKey>> parse_public_keys(std::string_view text);

// Writes a small secret file (mode 0600) atomically; `path` must not exist.
[[nodiscard]] Status write_secret_file(const std::string& path, std::string_view contents);
// Reads a secret file; refuses one readable by group or others.
[[nodiscard]] StatusOr<std::string> read_secret_file(const std::string& path);

}  // namespace buoni
