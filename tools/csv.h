// A small CSV reader for the files operators bring (RFC 4180): a header
// line, comma-separated fields, fields in double quotes may hold commas,
// newlines and "" for a quote; LF or CRLF line ends; a UTF-8 BOM is skipped.
// Pure; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace buoni::tools {

struct CsvRow {
  std::size_t line = 0;  // 1-based line number where the row starts
  std::vector<std::string> fields;
};

struct CsvFile {
  std::vector<std::string> header;
  std::vector<CsvRow> rows;
  std::string error;  // empty: parsed; else "line N: ..." (an unclosed quote)
};

// A field as CSV writes it: in double quotes (with "" for a quote) when it
// holds a comma, a quote or a line break; as it is otherwise.
[[nodiscard]] std::string csv_field(std::string_view value);

// Parses `text`; at most `rows_max` rows (more is an error).
[[nodiscard]] CsvFile parse_csv(std::string_view text, std::size_t rows_max);

}  // namespace buoni::tools
