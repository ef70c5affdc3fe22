// Ledger export: the ledger as a self-verifying file, and its verifier.
//
// An export holds every ledger entry from a first seq to the chain head with
// its readable fields, the exact bytes the chain hashes (entry_body,
// engine/codec.h), its previous hash and its hash, and the signed
// checkpoints (engine/ledger.h) placed right after the entry they sign.
// Anyone holding the public keys can check it with nothing else; the format
// is documented byte for byte in docs/export.md.
//
// Grammar (both formats carry the same records, in this order):
//   export     := header { entry { checkpoint } } end
//   header     := record "header", format "buoni-export-v1", first_seq u64,
//                 prev_hash hex32, head_seq u64, time_ms i64
//   entry      := record "entry", seq u64, time_ms i64, kind name,
//                 programme str, from account, to account, amount_cents i64,
//                 card str, merchant str, ref str, prev_hash hex32,
//                 hash hex32, body hex(entry_body)
//   checkpoint := record "checkpoint", seq u64, hash hex32, time_ms i64,
//                 key_id u16, signature hex64
//   end        := record "end", entries u64, checkpoints u64
//   account    := kind ":" owner        (Account::to_string: "card:7K2M...")
//   hexN       := 2N lower-case hex digits
// jsonl: one JSON object per line, "\n"-terminated, fields by those names
//   (integers as JSON numbers, everything else as JSON strings).
// csv: RFC 4180, "\n" line ends; a first line naming the columns
//   (export_csv_columns), then one row per record; the fields a record does
//   not have are empty cells.
//
// Verification recomputes hash = BLAKE2b-256(prev || "buoni-entry-v1" ||
// body) entry by entry from the header's prev_hash, checks that the readable
// fields are those the body decodes to, that seqs run densely from
// first_seq, that every checkpoint's signature verifies and that it names the
// hash of the entry it follows, and that the end record counts what came.
// Every discrepancy is a Finding (engine/audit.h) naming the seq and line.
// Pure functions over streams; thread-compatible.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/signing.h"
#include "engine/audit.h"
#include "engine/model.h"
#include "engine/store.h"

namespace buoni::engine {

enum class ExportFormat : std::uint8_t { jsonl, csv };
[[nodiscard]] std::string_view export_format_name(ExportFormat format);
inline constexpr std::string_view export_format_v1 = "buoni-export-v1";
// The csv column line, in this order.
inline constexpr std::string_view export_csv_columns =
    "record,format,first_seq,head_seq,seq,time_ms,kind,programme,from,to,amount_cents,card,"
    "merchant,ref,key_id,prev_hash,hash,signature,body,entries,checkpoints";

// progress(done, total): entries (export) or bytes (verify); total 0 if unknown.
using ExportProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct ExportSummary {
  std::uint64_t first_seq = 1;  // the first entry's seq (the --since)
  std::uint64_t last_seq = 0;   // the last entry's seq (the chain head when read)
  std::uint64_t entries = 0;
  std::uint64_t checkpoints = 0;
};

// Writes the ledger of `store` from seq `first_seq` (>= 1) to the chain head
// read at the start. invalid_argument when first_seq > head + 1; corruption
// when a stored record cannot be decoded; io_error when `out` fails.
[[nodiscard]] StatusOr<ExportSummary> export_ledger(const Store& store, std::uint64_t first_seq,
                                                    ExportFormat format, TimeMs now_ms,
                                                    std::ostream& out,
                                                    const ExportProgress& progress = {});

struct ExportVerdict {
  ExportFormat format = ExportFormat::jsonl;
  std::uint64_t first_seq = 0;  // from the header (0: no valid header)
  Hash32 prev_hash{};           // the header's: the chain starts from it
  std::uint64_t head_seq = 0;   // what the header claims (not signed)
  std::uint64_t entries = 0;    // entry records read
  std::uint64_t checkpoints = 0;
  // Everything up to this signed checkpoint verified (0: none did).
  std::uint64_t verified_seq = 0;
  std::uint64_t verified_entries = 0;
  bool complete = false;          // the end record was read, and nothing after it
  std::uint64_t lines = 0;        // lines read
  std::vector<Finding> findings;  // the first limits::audit_findings_max
  std::uint64_t findings_total = 0;
  [[nodiscard]] bool ok() const { return complete && findings_total == 0; }
  // One line: "all N entries verified, up to checkpoint seq S", or why not.
  [[nodiscard]] std::string summary() const;
};

// Verifies an export read from `in` (format told by its first line) with the
// public keys alone. A file that cannot be read is io_error; everything
// wrong inside it is in the verdict. progress gets bytes read and total_bytes.
[[nodiscard]] StatusOr<ExportVerdict> verify_export(std::istream& in,
                                                    const std::vector<VerifyKey>& keys,
                                                    std::uint64_t total_bytes = 0,
                                                    const ExportProgress& progress = {});

}  // namespace buoni::engine
