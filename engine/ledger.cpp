#include "engine/ledger.h"

#include "crypto/hash.h"
#include "engine/codec.h"

namespace buoni::engine {

namespace {
constexpr std::string_view entry_tag = "buoni-entry-v1";
}  // namespace

Hash32 chain_hash(const Hash32& prev_hash, const Entry& entry) {
  Writer w;
  w.raw(prev_hash);
  w.raw(as_bytes(entry_tag));
  write_entry_body(w, entry);
  return blake2b_256(w.bytes());
}

Hash32 chain_hash_encoded(const Hash32& prev_hash, std::string_view encoded) {
  Hasher h;
  h.update(prev_hash);
  h.update(entry_tag);
  h.update(encoded_entry_body(encoded));
  return h.finish();
}

std::string checkpoint_message(const Checkpoint& c) {
  Writer w;
  static constexpr std::string_view tag = "buoni-checkpoint-v1";
  w.raw(as_bytes(tag));
  w.u64(c.seq);
  w.raw(c.hash);
  w.i64(c.time_ms);
  w.u16(c.key_id);
  return w.take();
}

Checkpoint sign_checkpoint(const SigningKey& key, const ChainHead& head, TimeMs time_ms) {
  Checkpoint c;
  c.seq = head.seq;
  c.hash = head.hash;
  c.time_ms = time_ms;
  c.key_id = key.key_id;
  c.signature = key.sign(as_bytes(checkpoint_message(c)));
  return c;
}

bool verify_checkpoint(const Checkpoint& checkpoint, const std::vector<VerifyKey>& keys) {
  for (const auto& k : keys) {
    if (k.key_id == checkpoint.key_id) {
      return verify_signature(k.public_key, as_bytes(checkpoint_message(checkpoint)),
                              checkpoint.signature);
    }
  }
  return false;
}

}  // namespace buoni::engine
