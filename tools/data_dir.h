// The data directory: everything one buoni instance owns, in one place.
//
//   DIR/db/                 RocksDB (engine state, ledger, idempotency, meta)
//   DIR/keys/signing-N.key  Ed25519 signing keys, mode 0600 (crypto/signing.h);
//                           the highest N signs, all of them verify
//   DIR/keys/public-keys    the public key set (crypto/signing.h format), in
//                           clear, so audits and reads need no passphrase
//   DIR/keys/pin-pepper     32 random bytes (hex), mode 0600: the key of PIN
//                           hashes (engine/pin.h); kept out of the store
// The admin API key is printed once by `buoni init`; only its BLAKE2b-256
// hash is kept (meta "admin_key_hash").
//
// Node: the writer side (store opened as primary + engine); one process at a
// time. Reader: a read-only view that works while a Node runs elsewhere
// (RocksDB secondary in a private temp dir, removed on close).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crypto/api_key.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/rocks_store.h"

namespace buoni::tools {

struct DataDir {
  std::string root;
  [[nodiscard]] std::string db() const { return root + "/db"; }
  [[nodiscard]] std::string keys() const { return root + "/keys"; }
  [[nodiscard]] std::string pin_pepper() const { return keys() + "/pin-pepper"; }
  [[nodiscard]] std::string public_keys() const { return keys() + "/public-keys"; }
};

// Creates DIR (and parents' last level), the store, signing key 1 and an admin
// key, which is returned: the only time it exists outside its hash.
// already_exists when DIR/db exists.
[[nodiscard]] StatusOr<std::string> init_data_dir(const DataDir& dir, Random& random);
[[nodiscard]] bool data_dir_exists(const DataDir& dir);


// The passphrase that seals signing keys: $BUONI_KEY_PASSPHRASE, if set.
[[nodiscard]] std::optional<std::string> key_passphrase();
// Adds signing key N+1 (sealed when a passphrase is set); new tokens and
// checkpoints use it, tokens of older keys keep verifying.
[[nodiscard]] StatusOr<SigningKey> rotate_signing_key(const DataDir& dir);

// The public key set: DIR/keys/public-keys, or (for a directory that predates
// that file) derived from the signing keys.
[[nodiscard]] StatusOr<std::vector<VerifyKey>> load_public_keys(const DataDir& dir);

// Every signing key in DIR/keys, by key id.
[[nodiscard]] StatusOr<std::vector<SigningKey>> load_signing_keys(const DataDir& dir);
[[nodiscard]] std::vector<VerifyKey> verify_keys(const std::vector<SigningKey>& keys);

class Node {
 public:
  [[nodiscard]] static StatusOr<std::unique_ptr<Node>> open(const DataDir& dir);
  ~Node();
  [[nodiscard]] engine::Engine& engine() { return *engine_; }
  [[nodiscard]] const engine::Store& store() const { return *store_; }
  [[nodiscard]] Random& random() { return random_; }
  [[nodiscard]] const engine::Clock& clock() const { return clock_; }
  [[nodiscard]] std::span<const std::uint8_t> pin_pepper() const { return pepper_; }
  // The newest key: it signs checkpoints and new card tokens.
  [[nodiscard]] const SigningKey& signing_key() const { return keys_.back(); }
  [[nodiscard]] std::vector<VerifyKey> verify_keys() const { return tools::verify_keys(keys_); }

 private:
  Node() = default;
  std::unique_ptr<storage::RocksStore> store_;
  std::vector<SigningKey> keys_;
  std::array<std::uint8_t, 32> pepper_{};
  engine::SystemClock clock_;
  SystemRandom random_;
  std::unique_ptr<engine::Engine> engine_;
};

class Reader {
 public:
  [[nodiscard]] static StatusOr<std::unique_ptr<Reader>> open(const DataDir& dir);
  ~Reader();
  [[nodiscard]] const engine::Store& store() const { return *store_; }
  [[nodiscard]] const std::vector<VerifyKey>& keys() const { return keys_; }

 private:
  Reader() = default;
  std::string secondary_dir_;
  std::unique_ptr<storage::RocksStore> store_;
  std::vector<VerifyKey> keys_;
};

}  // namespace buoni::tools
