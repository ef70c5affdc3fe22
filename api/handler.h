// The HTTP API of API.md as one pure function: a parsed request in, a
// response out, no sockets. The server (a later Boost.Beast session, in the
// style of Beast's example servers) reads a request, calls handle_request,
// writes the answer; tests call it directly.
//
// Routes (role in brackets; {card} is a card number, its 16-symbol id, or a
// token, QR text "BS1:..." percent-encoded in paths, or its link form):
//   [merchant] POST /v1/redemptions                     201 redemption + receipt
//   [merchant] POST /v1/authorizations                  201 hold
//   [merchant] POST /v1/authorizations/{id}/capture     201 redemption + receipt
//   [merchant] POST /v1/authorizations/{id}/void        200
//   [merchant] POST /v1/refunds                         201
//   [merchant] GET  /v1/cards/{card}                    200 (the shop's view: no
//              beneficiary_ref, no replacement; only cards of its programmes)
//   [merchant] GET  /v1/transactions?from=&to=&cursor=&limit=
//              200 {"transactions": [{"seq", "kind", "id", "card_number" (masked),
//              "amount_cents", "currency", "created_at"}], "next_cursor"?}: the
//              shop's own ledger entries in seq order (below)
//   [admin]    GET  /v1/cards/{card}                    200 the full card (card show)
//   [admin]    POST /v1/programmes                      201
//   [admin]    GET  /v1/programmes/{id}                 200 totals
//   [admin]    POST /v1/programmes/{id}/close           200
//   [admin]    POST /v1/merchants                       201, api_key shown once
//   [admin]    GET  /v1/merchants?after=&limit=         200 {"merchants", "next"?} (merchant list)
//   [admin]    POST /v1/cards                           201 card + token + link (+ pin once)
//   [admin]    POST /v1/cards/{card}/loads              200
//   [admin]    POST /v1/cards/{card}/block|unblock|unlock-pin   200
//   [admin]    POST /v1/cards/{card}/replace            201 new card + token + link (+ pin once)
//   [public]   GET  /v1/public/cards/{token}            200 balance, status, expiry and
//              "last_transactions": [{"date", "kind", "amount_cents", "shop"?}],
//              newest first, at most limits::public_transactions_max; token only
//   [public]   GET  /c/{token}  200 the same as an HTML page for the beneficiary
//              (Italian, then English; text/html; errors are HTML pages too)
//   [public]   GET  /healthz  200 | GET /readyz  200, or 503 once the engine failed
// Not here: /metrics (the server answers it), HEAD (405). Body size limits,
// rate limits (413, 429) and logging are the server's.
//
// Transactions (GET /v1/transactions; engine/queries.h merchant_entries):
//  - Every ledger entry naming the shop: kind is redemption, authorization,
//    capture, void, authorization_expired (the writer released a lapsed
//    hold), release (the rest of a partial capture) or refund. id is the
//    redemption's (capture too), the authorization's, or the refund's.
//    card_number is the card the shop dealt with (a refund of a replaced card
//    names the old card, never its replacement).
//  - from (inclusive) and to (exclusive): RFC 3339 times with any offset, or
//    days YYYY-MM-DD; a day as `to` counts whole (to=2026-03-31 ends at
//    2026-04-01T00:00:00Z). from must be before to. A window filters by each
//    entry's own time; the order stays seq order.
//  - limit 1..limits::transactions_page_max (default
//    limits::transactions_page_default). next_cursor is there only when more
//    may follow; pass it back as cursor with the same from and to. A page
//    reads at most limits::entry_index_scan_rows_max index rows, so with a
//    narrow window over a long history a page can come back short, or empty,
//    with a next_cursor.
//  - A malformed from, to, limit or cursor is 400 invalid_field.
// The public view and the page show a card's own entries (engine/queries.h
// card_entries): a replacement card starts with its "replacement"; kinds
// also include issue, load and expiry (the balance expired at close).
//
// Conventions and choices (API.md is the contract; these fill its gaps):
//  - Order of checks: route (404 not_found; 405 method_not_allowed with an
//    Allow header), then the key (401 unauthorized; 403 forbidden for the
//    wrong role), then Idempotency-Key, then the query string, then the
//    body, then the engine.
//  - Bodies: one JSON object, strict. Not JSON, not an object, or a duplicate
//    key: 400 invalid_json. A field the route does not take: 400
//    invalid_field naming it; a missing or mistyped field: 400 invalid_field.
//    Calls without fields take an empty body or {}. Content-Type is not
//    checked (curl -d sends form-urlencoded).
//  - Money (*_cents): a JSON integer only. A string, a fraction (12.5), an
//    integral double (100.0, 1e2), a negative, zero where a positive amount is
//    needed, or more than limits::amount_cents_max (budgets:
//    limits::budget_cents_max) is 400 invalid_amount. Other integers
//    (expires_in_s) are 400 invalid_field when wrong.
//  - Query strings: only the parameters a route lists; any other is 400
//    invalid_field.
//  - Cards: a token that does not verify is 400 invalid_card (the message
//    says why, never echoing the token); an expired token 402 card_expired; a
//    number with a bad check symbol 400 invalid_card. The public route takes a
//    token only: a number there is 400 invalid_card.
//  - Auth: "Authorization: Bearer <key>". mk_ keys name a shop by
//    BLAKE2b-256(key); the ak_ key's hash is compared in constant time with
//    ApiContext::admin_key_hash.
//  - Idempotency-Key (1-64 of [A-Za-z0-9_-]; a malformed one, or two
//    headers, is 400 bad_request): required on every merchant POST (400
//    bad_request without), optional on admin POSTs. "The same request" is
//    the same engine command (a card given by number or by token is the
//    same card; field order and spacing do not matter). A replay answers the
//    stored outcome rendered again with `Idempotent-Replayed: true`: the same
//    status and bytes, except what only the first answer can hold because it
//    was never stored (a shop's api_key, a card's pin: see
//    docs/architecture.md). Tokens and receipts are deterministic (Ed25519),
//    so replays carry them unchanged as long as the signing key is the same.
//  - Status failures of the engine or the store: 503 unavailable (with
//    Retry-After: 1 when the writer's queue is full). An unexpected
//    exception (a bug) is 500 internal; none escapes handle_request.
//  - Every answer is JSON with Content-Type: application/json and
//    Cache-Control: no-store (under /c/: HTML, text/html; charset=utf-8,
//    no-store, Referrer-Policy: no-referrer, a CSP allowing inline CSS only);
//    version and keep-alive follow the request.
//
// Receipts (redemptions and captures) are signed statements a shop can show:
//   receipt := {"id", "merchant", "card_number" (masked), "amount_cents",
//               "currency", "balance_cents", "created_at", "ledger_seq",
//               "key_id", "signature"}
//   signed text := "buoni-receipt-v1\n" id "\n" merchant "\n" card_number "\n"
//                  amount_cents "\n" currency "\n" balance_cents "\n"
//                  created_at "\n" ledger_seq "\n" key_id
//   (decimal integers; no trailing newline)
//   signature := hex(Ed25519(signing key key_id, signed text))
//
// Thread safety: handle_request may run on many threads at once over one
// ApiContext (the engine, store reads, const keys, SystemRandom are).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/store.h"

namespace buoni::api {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Borrowed; everything must outlive the calls.
struct ApiContext {
  engine::Engine& engine;         // writes: engine.execute(...)
  const engine::Store& store;     // reads: engine/queries.h
  const SigningKey& signing_key;  // tokens, receipts
  std::vector<VerifyKey> verify_keys;
  std::span<const std::uint8_t> pin_pepper;
  Hash32 admin_key_hash;  // read_admin_key_hash()
  const engine::Clock& clock;
  bool secure_cookies = false;  // the server runs TLS: session cookies get Secure
};

[[nodiscard]] Response handle_request(ApiContext& ctx, const Request& req);

// The headers every answer of the server carries (handle_request,
// prepare_request and finish_request add them; the server adds them to its
// own refusals): X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer, and, unless the route set its own, the Content-Security-Policy
// "default-src 'none'; frame-ancestors 'none'".
void add_security_headers(Response& res);

// ---- handle_request split at the engine (for the server) ----
// The shop's money routes (redemptions, authorizations, capture, void,
// refunds) end in exactly one engine command. The server runs them in two
// steps so that no thread waits for the writer: prepare_request does
// everything before the command (route, key, Idempotency-Key, body, card
// look-ups) and hands back the command; the caller submits it
// (Engine::submit) and, once the result is durable, finish_request renders
// the answer. For those routes handle_request is exactly prepare_request,
// Engine::execute, finish_request, so the two paths answer the same bytes.
struct EngineStep {
  engine::Request request;  // what to submit
  // Renders the answer to `req` from the durable result; may throw
  // (finish_request catches). Owns copies of what it needs; borrows the
  // ApiContext (which must outlive it). Callable from any thread, once.
  std::function<Response(const Request& req, const engine::Result& result)> render;
};

struct Prepared {
  enum class Kind : std::uint8_t {
    answer,    // `answer` is final (an error, or a route that needs no engine)
    command,   // submit `step.request`, then finish_request
    blocking,  // a route that reads at length or waits: run handle_request
               // on a thread that may block (nothing was done yet)
  };
  Kind kind = Kind::answer;
  Response answer;
  EngineStep step;
};

// Never throws (refusals become `answer`). Does point reads of the store
// (the shop's key, a card) but never waits for the writer. Thread-safe as
// handle_request.
[[nodiscard]] Prepared prepare_request(ApiContext& ctx, const Request& req);
// The answer to a Kind::command request from its engine result (a failed
// Status: 503, with Retry-After when busy). Never throws. `req` is the
// request that was prepared.
[[nodiscard]] Response finish_request(const Request& req, const EngineStep& step,
                                      const StatusOr<engine::Result>& result);

// The route pattern a request's method and path match ("/v1/cards/{card}"),
// for metrics and logs; "" when none does (the answer is 404 or 405).
[[nodiscard]] std::string_view route_of(const Request& req);
// Every route as "METHOD pattern" (for the OpenAPI check).
[[nodiscard]] std::vector<std::string> route_list();

// The admin key's hash from meta "admin_key_hash" (u8 version 1 || 32 bytes);
// not_found when the store has none, corruption when malformed.
[[nodiscard]] StatusOr<Hash32> read_admin_key_hash(const engine::Store& store);

// Receipts (format above).
struct Receipt {
  std::string id, merchant, card_number, currency;
  std::int64_t amount_cents = 0, balance_cents = 0;
  std::string created_at;
  std::uint64_t ledger_seq = 0;
  std::uint16_t key_id = 0;
};
[[nodiscard]] std::string receipt_text(const Receipt& receipt);
// The receipt's JSON with its signature by `key` (receipt.key_id is set from it).
[[nodiscard]] boost::json::object signed_receipt_json(const SigningKey& key, Receipt receipt);
// True if `receipt` (the JSON above) is well formed and its signature verifies
// with the key of its key_id among `keys`.
[[nodiscard]] bool verify_receipt(const boost::json::object& receipt,
                                  const std::vector<VerifyKey>& keys);

}  // namespace buoni::api
