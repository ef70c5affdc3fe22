// Every limit in buoni, in one place, each with why (TIGER_STYLE).
// A limit is an assertion about the world; exceeding one is a clear,
// stable error, never undefined behaviour or unbounded memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace buoni::limits {

// Writer batch: everything queued, up to this many commands, goes into one
// durable write. Large enough to amortise one fsync over a burst from 256
// submitters; small enough that one batch's WriteSet stays a few MiB.
inline constexpr std::size_t batch_commands_max = 1024;
// Commands waiting for the writer. Past this, submit() answers `busy` at once
// (HTTP 503) rather than letting latency and memory grow without bound.
inline constexpr std::size_t queue_commands_max = 16 * 1024;
// Pending holds expired by the writer before one batch; the rest wait for the
// next batch so an expiry storm cannot stall redemptions.
inline constexpr std::size_t hold_expiries_per_batch_max = 256;
// Cards one programme may have; closing a programme touches all of them in
// one batch (a few entries each), so this bounds that batch's size.
inline constexpr std::int64_t cards_per_programme_max = 200'000;
// Pending holds (of all programmes) that closing a programme reads in one
// batch; beyond it the close is refused (limit_exceeded) until holds settle.
inline constexpr std::size_t close_holds_max = 100'000;
// A bulk issuance CSV: at most this many bytes (a 200,000-line file of
// references and amounts is a few MiB) and cards_per_programme_max rows.
inline constexpr std::size_t csv_bytes_max = 64 * 1024 * 1024;
// Bulk issuance requests in flight at once: enough to fill writer batches.
inline constexpr std::size_t bulk_in_flight_max = 2048;
// Programmes one merchant may accept.
inline constexpr std::size_t merchant_programmes_max = 64;

// Findings one audit lists; past this it still counts entries but a report
// of thousands of lines helps nobody: the first thousand show the fault.
inline constexpr std::size_t audit_findings_max = 1000;

// Money. One card or redemption above EUR 100,000 is a typo, not food aid.
inline constexpr std::int64_t amount_cents_max = 10'000'000;
// A programme budget above EUR 1 billion is a typo; also keeps every sum of
// cents far from int64 overflow.
inline constexpr std::int64_t budget_cents_max = 100'000'000'000;

// Text fields (bytes).
inline constexpr std::size_t id_length_max = 64;     // programme, merchant ids
inline constexpr std::size_t name_length_max = 200;  // display names
inline constexpr std::size_t beneficiary_ref_length_max = 64;
inline constexpr std::size_t reference_length_max = 128;       // shop's order reference
inline constexpr std::size_t idempotency_key_length_max = 64;  // API.md: 1-64 chars

// Authorizations (delivery holds): default and longest life. A week covers a
// delivery round; longer would lock a household's money away.
inline constexpr std::int64_t hold_expires_in_s_default = 3 * 24 * 3600;
inline constexpr std::int64_t hold_expires_in_s_max = 7 * 24 * 3600;

// Consecutive wrong PINs before a card locks (pin_locked) until an operator
// unlocks it: 4 tries of a 5-digit PIN give a thief a 1 in 25,000 chance.
inline constexpr std::uint8_t pin_failures_max = 4;

// Programme validity: at most 5 years (a longer one is a typo).
inline constexpr std::int32_t programme_days_max = 5 * 366;

}  // namespace buoni::limits
