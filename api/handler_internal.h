// Internals of api/handler.h shared by the api/handler_*.cpp files.
// Inside the handler, a refusal is thrown as HttpError and turned into the
// error answer by handle_request; it never leaves handle_request.
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/handler.h"
#include "engine/command.h"

namespace buoni::api::detail {

namespace json = boost::json;

struct HttpError {
  int status = 400;
  std::string code;
  std::string message;
  bool retry_after = false;  // 503 busy: answer with Retry-After: 1
};
[[noreturn]] void fail(int status, std::string_view code, std::string message);
[[noreturn]] void fail_field(std::string message);   // 400 invalid_field
[[noreturn]] void fail_amount(std::string message);  // 400 invalid_amount
[[noreturn]] void fail_card(std::string message);    // 400 invalid_card
// An engine code's status, name and message (e.g. 404 unknown_card).
[[noreturn]] void fail_code(engine::Code code);
// 503 unavailable for a Status from the engine or the store.
[[noreturn]] void fail_status(const Status& status);

// One request as a route sees it.
struct Call {
  ApiContext& ctx;
  const Request& req;
  std::vector<std::string> params;                        // path parameters, decoded
  std::map<std::string, std::string, std::less<>> query;  // decoded
  engine::Caller caller;                                  // meaningful when keyed
  bool keyed = false;                                     // a key was checked
  std::string idempotency_key;                            // "" when none
  // Set by prepare_request on the routes split at the engine: run_command
  // then fills it (the command and how to render its result) instead of
  // executing, and its return value is not used.
  EngineStep* defer = nullptr;
  // Set when the caller was authenticated by a session cookie (api/session.h).
  std::string session_id;
  std::optional<engine::Session> session;
  [[nodiscard]] bool admin() const { return keyed && caller.role == engine::Caller::Role::admin; }
};

// ---- answers (handler.cpp) ----
[[nodiscard]] Response json_response(const Request& req, http::status status,
                                     const json::object& body, bool replayed = false);
[[nodiscard]] Response error_response(const Request& req, int status, std::string_view code,
                                      std::string_view message);
// Adds what the edge knows to an ok answer (a receipt, a token, a key).
using Extend = std::function<void(const engine::Result&, json::object&)>;
// Runs `command` through the engine under the call's caller and idempotency
// key. A decline becomes its error answer; an ok outcome becomes
// outcome_json, extended by `extend`, with `ok_status`. Replays of either
// carry Idempotent-Replayed: true. When call.defer is set it only fills
// *call.defer (the rendering then runs later, maybe on another thread, so
// `extend` must own what it captures, never reference the Call or locals).
[[nodiscard]] Response run_command(Call& call, engine::Command command, http::status ok_status,
                                   const Extend& extend = {});
// The engine's result (a failed Status throws 503).
[[nodiscard]] engine::Result execute(Call& call, engine::Command command);
[[nodiscard]] Response result_response(Call& call, const engine::Command& command,
                                       const engine::Result& result, http::status ok_status,
                                       const Extend& extend = {});
[[nodiscard]] Response result_response(const Request& req, const engine::Command& command,
                                       const engine::Result& result, http::status ok_status,
                                       const Extend& extend = {});

// ---- request parts (handler_body.cpp) ----
// The body as a JSON object holding only `allowed` keys; an empty body is {}.
[[nodiscard]] json::object parse_body(const Request& req,
                                      std::initializer_list<std::string_view> allowed);
[[nodiscard]] std::optional<std::string> opt_string(const json::object& o, std::string_view name);
[[nodiscard]] std::string need_string(const json::object& o, std::string_view name);
[[nodiscard]] std::optional<engine::Cents> opt_cents(const json::object& o, std::string_view name,
                                                     engine::Cents min, engine::Cents max);
[[nodiscard]] engine::Cents need_cents(const json::object& o, std::string_view name,
                                       engine::Cents min, engine::Cents max);
[[nodiscard]] std::optional<std::int64_t> opt_integer(const json::object& o, std::string_view name,
                                                      std::int64_t min, std::int64_t max);
[[nodiscard]] std::optional<bool> opt_bool(const json::object& o, std::string_view name);
[[nodiscard]] std::vector<std::string> need_strings(const json::object& o, std::string_view name,
                                                    std::size_t min, std::size_t max);
// A card reference: number, id or token (verified; expired: 402 card_expired).
[[nodiscard]] CardId resolve_card(const ApiContext& ctx, std::string_view text);
// A token only (the public route).
[[nodiscard]] CardId resolve_token(const ApiContext& ctx, std::string_view text);
// For a shop's spend (redemption, authorization): as resolve_card, except
// that a token past its expiry day still names its card when the caller
// has a stored answer under the request's Idempotency-Key: the engine then
// replays it (or answers idempotency_conflict), as API.md promises for a
// retry, instead of a 402 card_expired made up here for a request made
// before midnight whose answer was lost. A new spend by an expired token is
// still card_expired, here.
[[nodiscard]] CardId resolve_spend_card(const Call& call, std::string_view text);
// A PIN field: exactly 5 digits, hashed with the pepper.
[[nodiscard]] std::optional<Hash32> opt_pin(const ApiContext& ctx, const json::object& o);
// Percent-decoding of a path segment ('+' stays '+'); nullopt when malformed.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
// "a=1&b=2" into decoded pairs; a malformed or repeated name is 400 bad_request.
[[nodiscard]] std::map<std::string, std::string, std::less<>> parse_query(std::string_view query);
// Refuses query parameters other than `allowed` (400 invalid_field); the
// router calls it with the route's list.
void allow_query(const Call& call, std::span<const std::string_view> allowed);
// The Idempotency-Key header ("" when absent and not required).
[[nodiscard]] std::string idempotency_key(const Request& req, bool required);

// ---- cards and ledger entries (handler_read.cpp, handler_transactions.cpp) ----
struct CardView {
  engine::Card card;
  engine::Programme programme;
};
// The card and its programme (404 unknown_card when there is no such card).
[[nodiscard]] CardView load_card(const Call& call, const CardId& id);
// The API's name for a ledger entry: redemption, authorization, capture,
// void, authorization_expired, release (the rest of a capture), refund,
// issue, load, replacement, expiry, fund.
[[nodiscard]] std::string_view transaction_kind(const ApiContext& ctx, const engine::Entry& e);
// A card's last entries (limits::public_transactions_max), newest first, as
// its holder may see them: no card numbers, no ids, the shop's name only.
struct PublicTransaction {
  engine::Entry entry;
  std::string kind;  // transaction_kind
  std::string shop;  // the shop's name, "" when none
  int sign = 0;      // +1 money onto the card, -1 off it, 0 neither (a capture)
};
[[nodiscard]] std::vector<PublicTransaction> public_transactions(const ApiContext& ctx,
                                                                 const CardId& card);
// [{"date", "kind", "amount_cents", "shop"?}]
[[nodiscard]] json::array public_transactions_json(const std::vector<PublicTransaction>& list);

// ---- routes ----
// handler_merchant.cpp
[[nodiscard]] Response post_redemption(Call& call);
[[nodiscard]] Response post_authorization(Call& call);
[[nodiscard]] Response post_capture(Call& call);
[[nodiscard]] Response post_void(Call& call);
[[nodiscard]] Response post_refund(Call& call);
// handler_read.cpp
[[nodiscard]] Response get_card(Call& call);
[[nodiscard]] Response get_public_card(Call& call);
[[nodiscard]] Response get_programme(Call& call);
[[nodiscard]] Response get_merchants(Call& call);
[[nodiscard]] Response get_healthz(Call& call);
[[nodiscard]] Response get_readyz(Call& call);
// handler_transactions.cpp
[[nodiscard]] Response get_transactions(Call& call);
// handler_page.cpp: the beneficiary's HTML page, and its error pages.
[[nodiscard]] Response get_card_page(Call& call);
// True for requests under /c/, whose errors are HTML pages too.
[[nodiscard]] bool wants_html(const Request& req);
[[nodiscard]] Response page_error_response(const Request& req, int status, std::string_view code);
// handler_admin.cpp
[[nodiscard]] Response post_programme(Call& call);
[[nodiscard]] Response post_close(Call& call);
[[nodiscard]] Response post_merchant(Call& call);
[[nodiscard]] Response post_card(Call& call);
[[nodiscard]] Response post_load(Call& call);
[[nodiscard]] Response post_block(Call& call);
[[nodiscard]] Response post_unblock(Call& call);
[[nodiscard]] Response post_unlock_pin(Call& call);
[[nodiscard]] Response post_replace(Call& call);
[[nodiscard]] Response post_settlement(Call& call);
[[nodiscard]] Response post_rotate_key(Call& call);
// handler_session.cpp
[[nodiscard]] Response post_session(Call& call);
[[nodiscard]] Response get_current_session(Call& call);
[[nodiscard]] Response post_end_session(Call& call);
// handler_holds.cpp
[[nodiscard]] Response get_authorizations(Call& call);
// handler_pos.cpp: the till page
[[nodiscard]] Response get_pos(Call& call);
[[nodiscard]] Response get_pos_asset(Call& call);

}  // namespace buoni::api::detail
