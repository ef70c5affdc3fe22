// Till sessions: a shop signed in on a device (the POS page, api/session.h).
//
// A session is stored under the BLAKE2b-256 hash of its id ("a/", with a
// per-shop index "n/": engine/codec.h); the id itself exists only in the
// device's cookie, so a copy of the store cannot be used to sign in. A
// session is valid while now < expires_at_ms (limits::session_ttl_s after
// sign-in) and while the shop's key is still the one it signed in with:
// rotating the key (RotateMerchantKey) ends every session at once, without
// touching them. Sessions go through the writer like money: a sign-in is
// answered only once it is durable, and a restart keeps the shop signed in.
//
// Bounded: opening a session first deletes the shop's expired and revoked
// sessions, then, while the shop still has limits::sessions_per_merchant_max,
// its oldest; so at most that many are stored per shop.
// Thread safety: the apply_* functions are for the writer thread;
// find_valid_session only reads the committed store (any thread).
#pragma once

#include <optional>

#include "engine/batch.h"
#include "engine/command.h"
#include "engine/store.h"

namespace buoni::engine {

// Outcome: ok with expires_at_ms and time_ms; forbidden when the caller is
// not a shop or `api_key_hash` is no longer its key; not_found when the shop
// is gone.
[[nodiscard]] StatusOr<Outcome> apply_open_session(Batch& batch, const OpenSession& command,
                                                   const Caller& caller, TimeMs now_ms);
// Outcome: ok, or not_found when the calling shop has no such session.
[[nodiscard]] StatusOr<Outcome> apply_end_session(Batch& batch, const EndSession& command,
                                                  const Caller& caller);
// Outcome: ok (id = the shop), not_found, already_exists when the new key's
// hash is some shop's key already, forbidden when the caller is not admin.
[[nodiscard]] StatusOr<Outcome> apply_rotate_merchant_key(Batch& batch,
                                                          const RotateMerchantKey& command,
                                                          const Caller& caller, TimeMs now_ms);

// The session stored under `session_hash` if it is valid at `now_ms` (not
// expired, its shop still holding the key it signed in with); else nullopt.
[[nodiscard]] StatusOr<std::optional<Session>> find_valid_session(const Store& store,
                                                                  const Hash32& session_hash,
                                                                  TimeMs now_ms);

}  // namespace buoni::engine
