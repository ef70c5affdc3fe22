// apply: the state machine. One command in, one Outcome out, its effects
// (state changes, ledger entries, the idempotency record) written into the
// Batch. Deterministic given the Batch's contents, `now_ms` and `random`.
//
// Failure kinds (TIGER_STYLE):
//  - a decline is an Outcome with a Code (nothing changes, except that an
//    expired hold found by capture/void is released and marked expired);
//  - a Store read that fails, or a record that does not decode, is a Status:
//    the writer fails the whole batch and stops;
//  - a broken invariant (negative balance, unbalanced totals) asserts.
// Thread safety: called by the writer thread only.
#pragma once

#include "crypto/random.h"
#include "engine/batch.h"
#include "engine/command.h"

namespace buoni::engine {

[[nodiscard]] StatusOr<Result> apply(Batch& batch, const Request& request, TimeMs now_ms,
                                     Random& random);

// Expires pending holds whose time has come (expires_at_ms <= now_ms), at
// most `max`, releasing their money to the card. Returns how many.
[[nodiscard]] StatusOr<std::size_t> expire_holds(Batch& batch, TimeMs now_ms, std::size_t max);

// Follows replacements from `id` to the card now in use (itself if none).
[[nodiscard]] StatusOr<Card> current_card(const Batch& batch, const CardId& id);

}  // namespace buoni::engine
