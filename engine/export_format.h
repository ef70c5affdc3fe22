// Internal to engine/export.cpp (and its tests): the records of an export
// file (grammar in engine/export.h) as lines of JSON or CSV, and back.
// Only flat records: fields are integers or strings, no nesting.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/export.h"

namespace buoni::engine::export_format {

// The fields of all records, in csv column order (export_csv_columns).
enum Field : std::uint8_t {
  f_record,
  f_format,
  f_first_seq,
  f_head_seq,
  f_seq,
  f_time_ms,
  f_kind,
  f_programme,
  f_from,
  f_to,
  f_amount_cents,
  f_card,
  f_merchant,
  f_ref,
  f_key_id,
  f_prev_hash,
  f_hash,
  f_signature,
  f_body,
  f_entries,
  f_checkpoints,
  field_count
};
[[nodiscard]] std::string_view field_name(Field f);
// field_count when `name` names no field.
[[nodiscard]] Field field_of(std::string_view name);
// Integers in jsonl; the others are strings.
[[nodiscard]] bool is_number(Field f);

// Builds one record's line (with its "\n").
class LineWriter {
 public:
  explicit LineWriter(ExportFormat format) : format_(format) {}
  void begin(std::string_view record);
  void text(Field f, std::string_view value);
  void number(Field f, std::int64_t value);
  void unsigned_number(Field f, std::uint64_t value);
  [[nodiscard]] const std::string& finish();

 private:
  void number_text(Field f, std::string_view digits);
  ExportFormat format_;
  std::string line_;
  std::array<std::string, field_count> cells_;  // csv only
  std::uint32_t filled_ = 0;                    // csv: bit per filled cell
};

// One parsed record. present: the field was in the line (csv: its cell was
// not empty); quoted: it was a JSON string (csv: always).
struct Record {
  std::array<std::string, field_count> value;
  std::array<bool, field_count> present{};
  std::array<bool, field_count> quoted{};
  void clear() { present.fill(false); }
};

// Parses one jsonl line into `r`; false with `error` set when it is not one
// flat JSON object of known fields with integer or string values.
[[nodiscard]] bool parse_json_line(std::string_view line, Record& r, std::string& error);

// Splits one csv row (possibly several lines joined by "\n") into cells.
// Returns false when a quoted cell is still open at the end (read on), or,
// with `error` set, when the row is malformed.
[[nodiscard]] bool split_csv_row(std::string_view text, std::vector<std::string>& cells,
                                 std::string& error);

}  // namespace buoni::engine::export_format
