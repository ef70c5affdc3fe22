#include "tools/csv.h"

namespace buoni::tools {

namespace {

// Reads one record starting at `pos`; advances `pos` and `line`.
bool read_record(std::string_view text, std::size_t& pos, std::size_t& line,
                 std::vector<std::string>& fields, std::string& error) {
  fields.assign(1, std::string());
  bool quoted = false;
  std::size_t start_line = line;
  while (pos < text.size()) {
    char c = text[pos++];
    if (quoted) {
      if (c == '"' && pos < text.size() && text[pos] == '"') {
        fields.back().push_back('"');
        ++pos;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        fields.back().push_back(c);
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      ++line;
      return true;
    } else if (c != '\r' || (pos < text.size() && text[pos] != '\n')) {
      fields.back().push_back(c);
    }
  }
  if (quoted) {
    error = "line " + std::to_string(start_line) + ": a quoted field is never closed";
    return false;
  }
  return true;
}

}  // namespace

std::string csv_field(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

CsvFile parse_csv(std::string_view text, std::size_t rows_max) {
  CsvFile file;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::size_t pos = 0, line = 1;
  std::vector<std::string> fields;
  bool header_done = false;
  while (pos < text.size()) {
    std::size_t row_line = line;
    if (!read_record(text, pos, line, fields, file.error)) return file;
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    if (!header_done) {
      file.header = fields;
      header_done = true;
      continue;
    }
    if (file.rows.size() >= rows_max) {
      file.error = "more than " + std::to_string(rows_max) + " rows";
      return file;
    }
    file.rows.push_back({row_line, fields});
  }
  if (!header_done) file.error = "the file is empty (no header line)";
  return file;
}

}  // namespace buoni::tools
