// Audit: proves from the ledger alone that every cent is accounted for.
//
// It (1) walks the ledger from seq 1, recomputing the hash chain; (2) checks
// every checkpoint's signature with the public keys and that it names the
// chain's hash at its seq, and that the chain head names the last entry;
// (3) rebuilds every account's balance from the entries, checking on the way
// that no card balance goes negative; (4) compares the rebuilt balances with
// stored state (cards, programme totals) and (5) checks the invariants of
// DESIGN.md: conservation per programme, issued <= budget, captured <= held,
// refunds <= redemption; (6) checks that the ledger indexes (engine/codec.h
// "e/" by shop, "t/" by card) list exactly the rows the entries call for.
//
// Every discrepancy is a Finding naming where it is; the audit goes on after
// one, so a report lists them all (up to limits in the caller's hands).
// A Store that cannot be read is a Status, not a finding.
// Thread safety: reads only (from two threads of its own: the store must allow
// concurrent reads, as engine/store.h requires); may run against a live
// store's secondary.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "crypto/signing.h"
#include "engine/model.h"
#include "engine/store.h"

namespace buoni::engine {

struct Finding {
  std::string check;      // stable name: "chain", "checkpoint", "balance", "conservation", ...
  std::uint64_t seq = 0;  // ledger seq concerned, 0 if none
  std::string object;     // card / programme / hold / redemption id, or empty
  std::string detail;     // "expected 1200, found 1100"
  [[nodiscard]] std::string to_string() const;
};

struct AuditReport {
  std::uint64_t entries = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t cards = 0;
  std::uint64_t programmes = 0;
  std::uint64_t index_rows = 0;  // ledger index rows read
  std::vector<Finding> findings;
  [[nodiscard]] bool clean() const { return findings.empty(); }
};

// progress(entries_done, entries_total), called now and then during the walk.
using AuditProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

[[nodiscard]] StatusOr<AuditReport> audit(const Store& store, const std::vector<VerifyKey>& keys,
                                          const AuditProgress& progress = {});

}  // namespace buoni::engine
