// Fuzz target: the CSV reader of bulk issuance and statements (tools/csv.h).
// Properties: line numbers never go backwards; a file that parses, written
// out again with csv_field (and a BOM in front, which the reader skips),
// parses to the same header and rows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_world.h"
#include "tools/csv.h"

namespace {

using buoni::fuzz::fuzz_check;
using buoni::tools::CsvFile;

constexpr std::size_t kRowsMax = 64;

std::string record(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += buoni::tools::csv_field(fields[i]);
  }
  return out + "\n";
}

std::string written(const CsvFile& file) {
  std::string out = "\xEF\xBB\xBF" + record(file.header);
  for (const auto& row : file.rows) out += record(row.fields);
  return out;
}

void check_rewrite(const CsvFile& file) {
  const CsvFile again = buoni::tools::parse_csv(written(file), kRowsMax);
  fuzz_check(again.error.empty(), "a parsed file written out again does not parse");
  fuzz_check(again.header == file.header, "the header changed when written out and read back");
  fuzz_check(again.rows.size() == file.rows.size(), "rows were lost or gained on a rewrite");
  for (std::size_t i = 0; i < file.rows.size(); ++i) {
    fuzz_check(again.rows[i].fields == file.rows[i].fields, "a row changed on a rewrite");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const CsvFile file = buoni::tools::parse_csv(text, kRowsMax);
  std::size_t last_line = 0;
  for (const auto& row : file.rows) {
    fuzz_check(row.line > last_line, "row line numbers do not increase");
    fuzz_check(!row.fields.empty(), "a row without fields");
    last_line = row.line;
  }
  fuzz_check(file.rows.size() <= kRowsMax, "more rows than rows_max");
  if (file.error.empty()) check_rewrite(file);
  return 0;
}
