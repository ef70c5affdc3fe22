// JSON shapes of API.md, built with Boost.JSON. The HTTP server and the CLI's
// --json both print these, so a script sees the same object either way.
// Money is integer cents; times RFC 3339 UTC; dates YYYY-MM-DD.
// Pure; thread-safe.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <string>

#include "engine/command.h"
#include "engine/model.h"

namespace buoni::api {

[[nodiscard]] boost::json::object programme_json(const engine::Programme& p);
[[nodiscard]] boost::json::object merchant_json(const engine::Merchant& m);
// A card with its programme's validity ("expires_at": the last valid day).
[[nodiscard]] boost::json::object card_json(const engine::Card& c, const engine::Programme& p);
// A stored settlement with each line's shop name and VAT number (`shops`, by
// id): {"id", "from", "to", "status": "settled" | "already_settled",
// "amount_cents", "currency", "created_at", "lines": [{"merchant", "name",
// "vat_number", "programme", "amount_cents", "redeemed_cents",
// "refunded_cents", "count", "first_seq", "first_at", "last_seq", "last_at",
// "ledger_seq"}]}.
[[nodiscard]] boost::json::object settlement_json(
    const engine::Settlement& s, const std::map<std::string, engine::Merchant>& shops,
    bool already_settled);
// {"error": {"code", "message", ...useful fields}}
[[nodiscard]] boost::json::object error_json(engine::Code code, const engine::Outcome& outcome);
[[nodiscard]] boost::json::object error_json(std::string_view code, std::string_view message);
// The answer to a successful command, by command kind (redemption, hold, ...).
[[nodiscard]] boost::json::object outcome_json(const engine::Command& command,
                                               const engine::Outcome& outcome);

// `text` safe inside HTML or XML text and attribute values: & < > " ' escaped.
[[nodiscard]] std::string markup_escape(std::string_view text);

}  // namespace buoni::api
