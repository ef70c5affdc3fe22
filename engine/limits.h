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

// Till sessions (api/session.h). A session lasts one working day (12 h)
// from sign-in: a shop signs in each morning with its key (typed or scanned
// from its QR); a device lost or stolen is useless by the evening, and at
// once when the key is rotated. Not sliding: a stolen cookie cannot be kept
// alive by using it.
inline constexpr std::int64_t session_ttl_s = 12 * 3600;
// Sessions one shop keeps at once: a shop has a few phones or tablets; 16
// leaves room for every till of a supermarket. Signing in past it ends the
// oldest, so stored sessions are bounded by 16 per shop.
inline constexpr std::size_t sessions_per_merchant_max = 16;

// Programme validity: at most 5 years (a longer one is a typo).
inline constexpr std::int32_t programme_days_max = 5 * 366;

// ---- HTTP server (api/server.h) ----
// Request headers (request line + fields). A POS sends a few hundred bytes;
// 8 KiB is what most servers allow and bounds a slow-header attacker's cost.
inline constexpr std::size_t http_header_bytes_max = 8 * 1024;
// Request bodies. The largest shop or admin call (a merchant with 64
// programmes) is under 4 KiB; 64 KiB leaves room and bounds memory per
// connection. There are no batch calls, so no route needs more.
inline constexpr std::size_t http_body_bytes_max = 64 * 1024;
// Requests one connection may have read but not yet answered (pipelining).
// Answers go out in order; past this the server stops reading until the
// front is written, so a pipelining client cannot queue unbounded work.
inline constexpr std::size_t http_pipeline_requests_max = 16;
// Open connections. Each costs a socket, two 8 KiB-ish buffers and up to
// http_pipeline_requests_max queued requests; past this new connections get
// 503 and are closed, keeping the process inside its file-descriptor limit.
inline constexpr std::size_t http_connections_max = 4096;
// Threads that run handle_request. A request blocks its thread until its
// batch is durable, so this is the number of requests that can wait on one
// fsync together: it bounds the writer's batch size from HTTP. 256 matches
// the engine's benchmark concurrency; the threads mostly sleep.
inline constexpr std::size_t http_handler_threads_max = 256;
// Requests waiting for a handler thread. Past this: 503 with Retry-After.
inline constexpr std::size_t http_handler_queue_max = 8 * 1024;
// `buoni serve --read-timeout-ms / --write-timeout-ms`: an hour. A client
// allowed longer would hold one of http_connections_max for nothing.
inline constexpr std::int64_t http_timeout_ms_max = 3'600'000;

// Rate limiting (api/rate_limit.h): clients (remote IPs) one limiter tracks.
// About 150 bytes each, so 64 Ki clients cost ~10 MiB per limiter. When full,
// the client seen least recently is forgotten: it had been idle longer than
// every tracked client, so its bucket had usually refilled anyway; only an
// attacker cycling through more addresses than this gains fresh bursts, and
// such an attacker has fresh addresses to burst from regardless.
inline constexpr std::size_t rate_limit_clients_max = 64 * 1024;
// Public calls (no key: /v1/public/cards, /c/): a beneficiary's phone opens
// a page and a few assets, and retries; 10/s sustained with bursts of 20
// never stops a person, and keeps one address from loading the server.
inline constexpr double public_rate_per_s = 10;
inline constexpr double public_burst = 20;
// Failed card look-ups (unknown or invalid token/number) per client: 1/s
// with bursts of 10 lets a person mistype a few times but makes guessing
// card numbers (80 random bits) or forging tokens hopeless from one address.
inline constexpr double failed_lookup_rate_per_s = 1;
inline constexpr double failed_lookup_burst = 10;
// Sign-in attempts (POST /v1/sessions) per client address, right or wrong:
// one every 5 s with bursts of 5 lets a cashier mistype a few times, and
// makes guessing a shop key (256 random bits) hopeless anyway; it mostly
// keeps one address from making the writer open sessions in a loop.
inline constexpr double sign_in_rate_per_s = 0.2;
inline constexpr double sign_in_burst = 5;
// Metrics (api/metrics.h): distinct route labels kept; past it requests are
// counted under route="other". Routes come from the fixed route table, so
// this only guards against a caller passing unbounded strings.
inline constexpr std::size_t metrics_routes_max = 64;

// Ledger index reads (engine/queries.h: merchant_entries, card_entries).
// GET /v1/transactions: entries per page. Default 50; at most 500, so one
// answer stays a few hundred KiB and one read a few hundred store gets.
inline constexpr std::size_t transactions_page_default = 50;
inline constexpr std::size_t transactions_page_max = 500;
// Index rows one merchant_entries call reads looking for entries in a time
// window; past it the page ends early (possibly empty) with a cursor, so a
// narrow window over a long history cannot make one request scan it all.
inline constexpr std::size_t entry_index_scan_rows_max = 100'000;
// GET /v1/authorizations: a shop's pending holds listed at most. Holds live
// at most a week (hold_expires_in_s_max); a shop delivering 50 orders a day
// has a few hundred pending. The list reads the shop's ledger index of the
// last week, at most entry_index_scan_rows_max rows.
inline constexpr std::size_t holds_list_max = 500;
// The public card view and the beneficiary's page: the last entries shown.
// Ten fit an old phone's screen; more history is the operator's business.
inline constexpr std::size_t public_transactions_max = 10;

// Settlement (engine/settle.h). One settle command is applied in one writer
// batch, so its work is bounded; past a bound it is declined
// (limit_exceeded, nothing written) and the operator settles shorter periods.
// Entries one settlement pays (each gets a ~40-byte mark in the WriteSet):
// a large municipality's month (10,000 households, a few purchases a week)
// is under 100,000; 200,000 keeps the write around 10 MiB.
inline constexpr std::size_t settle_entries_max = 200'000;
// Shop index rows one settlement reads (from each shop's settled floor on,
// so a settlement reads roughly what happened since the last one); rows are
// held in memory while the batch is built, ~100 bytes each.
inline constexpr std::size_t settle_index_rows_max = 500'000;
// Shops one settlement covers (a municipality has hundreds).
inline constexpr std::size_t settle_merchants_max = 10'000;
// The longest period one settlement may cover: a year.
inline constexpr std::int32_t settle_period_days_max = 366;

}  // namespace buoni::limits
