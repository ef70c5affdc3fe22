// Settlement: paying shops what the ledger says they are owed.
//
// A Settle command (engine/command.h) covers a period [from_day, to_day]
// (UTC days, inclusive). For every shop it reads the shop's ledger index
// ("e/", engine/codec.h) and takes each redeem, capture (+) and refund (-)
// entry made in the period that no settlement paid yet; per (shop,
// programme) it writes one settle entry moving the net from payable:M:P to
// settled:M:P (or back, when refunds exceed new sales: a negative line),
// marks every entry it paid ("s/" seq -> settlement id) and keeps the
// settlement ("z/" id), all in the writer's one batch.
//
// Paying twice is impossible: an entry is paid only while it has no mark,
// and the marks are written atomically with the settle entries, so
// overlapping periods, re-runs and periods settled out of order each pay an
// entry at most once. A refund made after its redemption was settled is an
// unmarked entry of the period it was made in: the next settlement nets it.
//
// Bounded work: each shop's scan starts after its settled floor ("w/" M:
// every paying entry of M up to that seq is marked), so a settlement reads
// about what happened since the last one; rows read, entries paid and shops
// are capped (limits::settle_*), past which the command is declined
// (limit_exceeded) with nothing written.
// Thread safety: apply_settle is for the writer thread; check_settlements
// only reads (any thread, a live store's secondary).
#pragma once

#include <functional>

#include "engine/audit.h"
#include "engine/batch.h"
#include "engine/command.h"

namespace buoni::engine {

// Whether settlements pay entries of this kind (redeem, capture, refund).
[[nodiscard]] bool settles(EntryKind kind);

// The id a period is settled under: a whole calendar month is named as the
// month ("2026-04"), any other period as "2026-04-01..2026-04-15", so the
// two spellings of one month are one settlement.
[[nodiscard]] std::string settlement_period_id(Day from_day, Day to_day);

// Applies `command` for the admin at `now_ms`. Declines: invalid_field (bad
// id, from > to, longer than limits::settle_period_days_max, period not
// ended), already_exists (the id was settled with other dates),
// limit_exceeded. Settling an id again answers ok, status "already_settled",
// the stored total, and changes nothing.
[[nodiscard]] StatusOr<Outcome> apply_settle(Batch& batch, const Settle& command, TimeMs now_ms);

// Audit part: every settlement's lines match the settle entries they name
// and the entries marked paid by it; every mark names a paying entry and a
// stored settlement. Calls `found` for each discrepancy.
[[nodiscard]] Status check_settlements(const Store& store,
                                       const std::function<void(Finding)>& found);

}  // namespace buoni::engine
