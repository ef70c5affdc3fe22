#include "engine/session.h"

#include <algorithm>

#include "engine/codec.h"
#include "engine/limits.h"

namespace buoni::engine {

namespace {

Outcome declined(Code code) {
  Outcome o;
  o.code = code;
  return o;
}

void erase_session(Batch& b, const Session& s) {
  b.erase(Space::state, keys::session(s.session_hash));
  b.erase(Space::state, keys::merchant_session(s));
}

// Deletes the shop's sessions that are expired or signed in with another
// key, then the oldest while `keep_max` or more remain.
Status prune_sessions(Batch& b, const Merchant& m, TimeMs now_ms, std::size_t keep_max) {
  // The index holds at most sessions_per_merchant_max rows (pruned at every
  // open), plus those opened earlier in this batch.
  BUONI_ASSIGN_OR_RETURN(auto rows,
                         b.scan(Space::state, keys::merchant_sessions_prefix(m.id),
                                limits::sessions_per_merchant_max + limits::batch_commands_max));
  std::vector<Session> live;  // oldest first: the index orders by created_at_ms
  for (const auto& [key, unused] : rows.rows) {
    std::string_view hash_bytes = std::string_view(key).substr(key.size() - sizeof(Hash32));
    Hash32 hash{};
    std::copy(hash_bytes.begin(), hash_bytes.end(), reinterpret_cast<char*>(hash.data()));
    BUONI_ASSIGN_OR_RETURN(auto s, b.load<Session>(Space::state, keys::session(hash)));
    BUONI_ASSERT(s.has_value());  // both rows are written and erased together
    if (s->expires_at_ms <= now_ms || s->api_key_hash != m.api_key_hash) {
      erase_session(b, *s);
    } else {
      live.push_back(std::move(*s));
    }
  }
  for (std::size_t i = 0; i < live.size() && live.size() - i >= keep_max; ++i) {
    erase_session(b, live[i]);
  }
  return Status();
}

}  // namespace

StatusOr<Outcome> apply_open_session(Batch& b, const OpenSession& c, const Caller& caller,
                                     TimeMs now_ms) {
  if (caller.role != Caller::Role::merchant) return declined(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto m,
                         b.load<Merchant>(Space::state, keys::merchant(caller.merchant_id)));
  if (!m) return declined(Code::not_found);
  if (m->api_key_hash != c.api_key_hash) return declined(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto existing, b.get(Space::state, keys::session(c.session_hash)));
  BUONI_ASSERT(!existing.has_value());  // 256 random bits made at the edge
  BUONI_RETURN_IF_ERROR(prune_sessions(b, *m, now_ms, limits::sessions_per_merchant_max));
  Session s;
  s.session_hash = c.session_hash;
  s.merchant = m->id;
  s.api_key_hash = m->api_key_hash;
  s.created_at_ms = now_ms;
  s.expires_at_ms = now_ms + limits::session_ttl_s * 1000;
  b.save(Space::state, keys::session(s.session_hash), s);
  b.put(Space::state, keys::merchant_session(s), "");
  Outcome o;
  o.id = m->id;
  o.time_ms = now_ms;
  o.expires_at_ms = s.expires_at_ms;
  o.status = "open";
  return o;
}

StatusOr<Outcome> apply_end_session(Batch& b, const EndSession& c, const Caller& caller) {
  if (caller.role != Caller::Role::merchant) return declined(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto s, b.load<Session>(Space::state, keys::session(c.session_hash)));
  if (!s || s->merchant != caller.merchant_id) return declined(Code::not_found);
  erase_session(b, *s);
  Outcome o;
  o.id = s->merchant;
  o.status = "ended";
  return o;
}

StatusOr<Outcome> apply_rotate_merchant_key(Batch& b, const RotateMerchantKey& c,
                                            const Caller& caller, TimeMs now_ms) {
  if (caller.role != Caller::Role::admin) return declined(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto m, b.load<Merchant>(Space::state, keys::merchant(c.id)));
  if (!m) return declined(Code::not_found);
  BUONI_ASSIGN_OR_RETURN(auto key_owner, b.get(Space::state, keys::merchant_key(c.api_key_hash)));
  if (key_owner) return declined(Code::already_exists);
  b.erase(Space::state, keys::merchant_key(m->api_key_hash));
  m->api_key_hash = c.api_key_hash;
  b.save(Space::state, keys::merchant(m->id), *m);
  b.put(Space::state, keys::merchant_key(m->api_key_hash), m->id);
  Outcome o;
  o.id = m->id;
  o.time_ms = now_ms;
  return o;
}

StatusOr<std::optional<Session>> find_valid_session(const Store& store, const Hash32& session_hash,
                                                    TimeMs now_ms) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::state, keys::session(session_hash)));
  if (!raw) return std::optional<Session>();
  Session s;
  BUONI_RETURN_IF_ERROR(decode(*raw, s));
  if (s.expires_at_ms <= now_ms) return std::optional<Session>();
  BUONI_ASSIGN_OR_RETURN(auto m, store.get(Space::state, keys::merchant(s.merchant)));
  if (!m) return std::optional<Session>();
  Merchant merchant;
  BUONI_RETURN_IF_ERROR(decode(*m, merchant));
  if (merchant.api_key_hash != s.api_key_hash) return std::optional<Session>();
  return std::optional<Session>(std::move(s));
}

}  // namespace buoni::engine
