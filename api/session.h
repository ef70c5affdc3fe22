// Till sessions at the HTTP edge: the cookie, the CSRF token, the origin
// check. The stored side (what a session is, when it ends) is
// engine/session.h; the routes are POST /v1/sessions, GET
// /v1/sessions/current and POST /v1/sessions/current/end (api/handler.h).
//
//   session id  := "ps_" hex(32 bytes from the CSPRNG)     (only in the cookie)
//   stored as   := BLAKE2b-256(session id)                 (engine "a/" key)
//   csrf token  := hex(BLAKE2b-256("buoni-csrf-v1\n" session id))
//   cookie      := "buoni_session=" id "; Path=/; Max-Age=" seconds
//                  "; HttpOnly; SameSite=Strict" ["; Secure" under TLS]
//
// The CSRF token is derived from the secret id, so nothing more is stored
// and only a page that was given it (same origin: it reads the answer of
// POST /v1/sessions or GET /v1/sessions/current) can send it. A request
// authenticated by the cookie that changes anything (every POST) must carry
// it in X-CSRF-Token; a form posted from another site cannot set that header
// (and SameSite=Strict keeps the cookie off it anyway). A request with an
// Origin header naming another origin than its Host is refused too.
// Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/handler.h"
#include "crypto/random.h"

namespace buoni::api {

inline constexpr std::string_view session_cookie_name = "buoni_session";
inline constexpr std::string_view csrf_header = "X-CSRF-Token";

[[nodiscard]] std::string make_session_id(Random& random);
[[nodiscard]] Hash32 session_hash(std::string_view session_id);
[[nodiscard]] std::string csrf_token(std::string_view session_id);
// True when `presented` is the CSRF token of `session_id` (constant time).
[[nodiscard]] bool csrf_matches(std::string_view session_id, std::string_view presented);

// The buoni_session cookie of the request's Cookie headers; nullopt when
// there is none. The value is not checked here (a lookup decides).
[[nodiscard]] std::optional<std::string> session_cookie(const Request& req);
// Set-Cookie values that set the session for `max_age_s` seconds, or clear it.
[[nodiscard]] std::string session_set_cookie(std::string_view session_id, std::int64_t max_age_s,
                                             bool secure);
[[nodiscard]] std::string session_clear_cookie(bool secure);

// False when the request has an Origin header that is not "scheme://" +
// its Host header ("null" and other hosts included); true without Origin
// (curl, a POS, a same-origin GET).
[[nodiscard]] bool same_origin(const Request& req);

}  // namespace buoni::api
