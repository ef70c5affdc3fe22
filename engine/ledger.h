// The ledger's tamper evidence: the hash chain and signed checkpoints.
//
//   entry.hash = BLAKE2b-256(prev.hash || "buoni-entry-v1" || entry_body)
// with prev.hash = 32 zero bytes for seq 1 (entry_body: engine/codec.h).
// A checkpoint signs, with the engine's Ed25519 key:
//   "buoni-checkpoint-v1" || u64(seq) || hash || i64(time_ms) || u16(key_id)
// An auditor holding only the public keys can verify both offline.
// Pure functions; thread-safe.
#pragma once

#include <vector>

#include "crypto/signing.h"
#include "engine/model.h"

namespace buoni::engine {

[[nodiscard]] Hash32 chain_hash(const Hash32& prev_hash, const Entry& entry);
// The same hash from an entry as stored (engine/codec.h encode(Entry)) that
// decode() accepted: hashes its body bytes in place, with no re-encoding.
[[nodiscard]] Hash32 chain_hash_encoded(const Hash32& prev_hash, std::string_view encoded);
[[nodiscard]] std::string checkpoint_message(const Checkpoint& checkpoint);
[[nodiscard]] Checkpoint sign_checkpoint(const SigningKey& key, const ChainHead& head,
                                         TimeMs time_ms);
// False when the key id is unknown or the signature does not verify.
[[nodiscard]] bool verify_checkpoint(const Checkpoint& checkpoint,
                                     const std::vector<VerifyKey>& keys);

}  // namespace buoni::engine
