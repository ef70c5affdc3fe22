// Code: the outcome of applying one command. `ok`, or the stable reason it was
// refused. These are results, not errors: a decline is a normal answer that
// changes nothing (except where noted, e.g. capturing an expired hold releases
// it). Infrastructure failures are Status; broken invariants are assertions.
//
// The names are the stable codes of API.md; api/error_table.h maps each to an
// HTTP status, tools/ maps each to an exit code. Values are persisted inside
// idempotency records: append new codes at the end, never renumber.
#pragma once

#include <cstdint>
#include <string_view>

namespace buoni::engine {

// clang-format off
#define BUONI_CODES(X)                                                        \
  X(ok, "ok")                                                                 \
  X(invalid_field, "a field is missing or malformed")                         \
  X(invalid_amount, "amounts are positive whole cents within limits")         \
  X(not_found, "no such object")                                              \
  X(unknown_card, "no such card")                                             \
  X(forbidden, "not allowed for this caller")                                 \
  X(merchant_not_allowed, "this shop does not take this programme")           \
  X(idempotency_conflict, "this idempotency key was used with another request") \
  X(already_exists, "an object with this id exists")                          \
  X(already_issued, "this beneficiary already has a card in this programme")  \
  X(insufficient_funds, "the card's balance is too low")                      \
  X(card_blocked, "the card is blocked")                                      \
  X(card_revoked, "the card was replaced or revoked")                         \
  X(card_expired, "the card has expired")                                     \
  X(card_not_yet_valid, "the programme has not started yet")                  \
  X(pin_required, "this card needs its PIN")                                  \
  X(wrong_pin, "wrong PIN")                                                   \
  X(pin_locked, "too many wrong PINs; ask the operator to unlock the card")   \
  X(limit_exceeded, "over the programme's per-redemption or daily limit")     \
  X(budget_exceeded, "the programme's budget is not enough")                  \
  X(hold_expired, "the authorization expired and was released")              \
  X(hold_not_pending, "the authorization is no longer pending")              \
  X(amount_exceeds_hold, "the capture is larger than the authorization")     \
  X(refund_exceeds_redemption, "refunds would exceed the redemption")        \
  X(programme_closed, "the programme is closed")                             \
  X(programme_not_ended, "the programme can be closed only after valid_until")
// clang-format on

enum class Code : std::uint8_t {
#define BUONI_CODE_ENUM(name, text) name,
  BUONI_CODES(BUONI_CODE_ENUM)
#undef BUONI_CODE_ENUM
};

[[nodiscard]] constexpr std::string_view code_name(Code code) {
  switch (code) {
#define BUONI_CODE_NAME(name, text) \
  case Code::name:                  \
    return #name;
    BUONI_CODES(BUONI_CODE_NAME)
#undef BUONI_CODE_NAME
  }
  return "unknown";
}

[[nodiscard]] constexpr std::string_view code_message(Code code) {
  switch (code) {
#define BUONI_CODE_TEXT(name, text) \
  case Code::name:                  \
    return text;
    BUONI_CODES(BUONI_CODE_TEXT)
#undef BUONI_CODE_TEXT
  }
  return "unknown";
}

inline constexpr int code_count = static_cast<int>(Code::programme_not_ended) + 1;

}  // namespace buoni::engine
