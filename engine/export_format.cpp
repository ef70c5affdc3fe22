#include "engine/export_format.h"

#include <algorithm>
#include <charconv>

namespace buoni::engine::export_format {

namespace {

constexpr std::array<std::string_view, field_count> names = {
    "record",    "format",    "first_seq", "head_seq",     "seq",  "time_ms",  "kind",
    "programme", "from",      "to",        "amount_cents", "card", "merchant", "ref",
    "key_id",    "prev_hash", "hash",      "signature",    "body", "entries",  "checkpoints"};

// Characters are copied in runs up to the next one that needs escaping.
void append_json_string(std::string& out, std::string_view v) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < v.size()) {
    std::size_t run = i;
    while (run < v.size() && v[run] != '"' && v[run] != '\\' &&
           static_cast<unsigned char>(v[run]) >= 0x20)
      ++run;
    out.append(v.substr(i, run - i));
    if (run == v.size()) break;
    auto u = static_cast<unsigned char>(v[run]);
    if (u >= 0x20) {
      out.push_back('\\');
      out.push_back(v[run]);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    }
    i = run + 1;
  }
  out.push_back('"');
}

void append_csv_cell(std::string& out, std::string_view v) {
  auto special = [](char c) { return c == ',' || c == '"' || c == '\r' || c == '\n'; };
  if (std::none_of(v.begin(), v.end(), special)) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON text scanner over one line.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view in) : in_(in) {}
  void skip_ws() {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  [[nodiscard]] bool at_end() {
    skip_ws();
    return pos_ == in_.size();
  }
  [[nodiscard]] char peek() {
    skip_ws();
    return pos_ < in_.size() ? in_[pos_] : '\0';
  }
  bool string(std::string& out);  // after peek() == '"'
  bool integer(std::string& out);

 private:
  bool hex4(std::uint32_t& v);
  bool escape(std::string& out);
  std::string_view in_;
  std::size_t pos_ = 0;
};

bool JsonScanner::hex4(std::uint32_t& v) {
  if (pos_ + 4 > in_.size()) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = in_[pos_++];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    v = v * 16 + static_cast<std::uint32_t>(d);
  }
  return true;
}

bool JsonScanner::escape(std::string& out) {
  if (pos_ >= in_.size()) return false;
  char c = in_[pos_++];
  switch (c) {
    case '"':
    case '\\':
    case '/':
      out.push_back(c);
      return true;
    case 'b':
      out.push_back('\b');
      return true;
    case 'f':
      out.push_back('\f');
      return true;
    case 'n':
      out.push_back('\n');
      return true;
    case 'r':
      out.push_back('\r');
      return true;
    case 't':
      out.push_back('\t');
      return true;
    case 'u':
      break;
    default:
      return false;
  }
  std::uint32_t cp = 0;
  if (!hex4(cp)) return false;
  if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
    std::uint32_t low = 0;
    if (pos_ + 2 > in_.size() || in_[pos_] != '\\' || in_[pos_ + 1] != 'u') return false;
    pos_ += 2;
    if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return false;
  }
  append_utf8(out, cp);
  return true;
}

bool JsonScanner::string(std::string& out) {
  out.clear();
  ++pos_;  // the opening quote
  while (pos_ < in_.size()) {
    std::size_t run = pos_;
    while (run < in_.size() && in_[run] != '"' && in_[run] != '\\' &&
           static_cast<unsigned char>(in_[run]) >= 0x20)
      ++run;
    out.append(in_.substr(pos_, run - pos_));
    pos_ = run;
    if (pos_ >= in_.size()) return false;
    char c = in_[pos_++];
    if (c == '"') return true;
    if (c != '\\' || !escape(out)) return false;
  }
  return false;
}

// JSON integers only: -?(0|[1-9][0-9]*), no fraction or exponent.
bool JsonScanner::integer(std::string& out) {
  std::size_t start = pos_;
  if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
  std::size_t digits = pos_;
  while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
  if (pos_ == digits || (in_[digits] == '0' && pos_ - digits > 1)) return false;
  if (pos_ < in_.size() && (in_[pos_] == '.' || in_[pos_] == 'e' || in_[pos_] == 'E')) return false;
  out.assign(in_.substr(start, pos_ - start));
  return true;
}

}  // namespace

std::string_view field_name(Field f) {
  return names[f];
}

Field field_of(std::string_view name) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<Field>(i);
  }
  return field_count;
}

bool is_number(Field f) {
  switch (f) {
    case f_first_seq:
    case f_head_seq:
    case f_seq:
    case f_time_ms:
    case f_amount_cents:
    case f_key_id:
    case f_entries:
    case f_checkpoints:
      return true;
    default:
      return false;
  }
}

void LineWriter::begin(std::string_view record) {
  line_.clear();
  filled_ = 0;
  if (format_ == ExportFormat::jsonl) line_ = "{";
  text(f_record, record);
}

void LineWriter::text(Field f, std::string_view value) {
  if (format_ == ExportFormat::csv) {
    cells_[f].clear();
    append_csv_cell(cells_[f], value);
    filled_ |= 1u << f;
    return;
  }
  if (line_.size() > 1) line_.push_back(',');
  line_.push_back('"');
  line_.append(names[f]);
  line_ += "\":";
  append_json_string(line_, value);
}

void LineWriter::number_text(Field f, std::string_view digits) {
  if (format_ == ExportFormat::csv) {
    cells_[f].assign(digits);
    filled_ |= 1u << f;
    return;
  }
  if (line_.size() > 1) line_.push_back(',');
  line_.push_back('"');
  line_.append(names[f]);
  line_ += "\":";
  line_.append(digits);
}

void LineWriter::number(Field f, std::int64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  number_text(f, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

void LineWriter::unsigned_number(Field f, std::uint64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  number_text(f, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

const std::string& LineWriter::finish() {
  if (format_ == ExportFormat::jsonl) {
    line_ += "}\n";
    return line_;
  }
  for (std::size_t i = 0; i < field_count; ++i) {
    if (i) line_.push_back(',');
    if (filled_ & (1u << i)) line_.append(cells_[i]);
  }
  line_.push_back('\n');
  return line_;
}

bool parse_json_line(std::string_view line, Record& r, std::string& error) {
  r.clear();
  JsonScanner s(line);
  std::string key;
  if (!s.eat('{')) return error = "not a JSON object", false;
  if (s.eat('}')) return s.at_end() || (error = "text after the object", false);
  do {
    if (s.peek() != '"' || !s.string(key)) return error = "malformed field name", false;
    Field f = field_of(key);
    if (f == field_count) return error = "unknown field \"" + key + "\"", false;
    if (r.present[f]) return error = "field \"" + key + "\" given twice", false;
    if (!s.eat(':')) return error = "malformed JSON after \"" + key + "\"", false;
    r.quoted[f] = s.peek() == '"';
    bool ok = r.quoted[f] ? s.string(r.value[f]) : s.integer(r.value[f]);
    if (!ok) return error = "field \"" + key + "\" is not a JSON string or integer", false;
    r.present[f] = true;
  } while (s.eat(','));
  if (!s.eat('}')) return error = "malformed JSON object", false;
  if (!s.at_end()) return error = "text after the object", false;
  return true;
}

// Cells are appended to in runs (up to the next quote or comma), and the
// strings of `cells` are reused from row to row.
bool split_csv_row(std::string_view text, std::vector<std::string>& cells, std::string& error) {
  std::size_t n = 0;  // cells in use
  auto next_cell = [&]() -> std::string& {
    if (n == cells.size()) cells.emplace_back();
    std::string& cell = cells[n++];
    cell.clear();
    return cell;
  };
  std::string* cell = &next_cell();
  std::size_t i = 0;
  bool quoted_cell = false;
  while (i < text.size()) {
    std::size_t run = i;
    while (run < text.size() && text[run] != '"' &&
           (quoted_cell || (text[run] != ',' && text[run] != '\r')))
      ++run;
    cell->append(text.substr(i, run - i));
    i = run;
    if (i == text.size()) break;
    char c = text[i++];
    if (quoted_cell) {  // c is a quote: a doubled one, or the cell's end
      if (i < text.size() && text[i] == '"') {
        cell->push_back('"');
        ++i;
        continue;
      }
      quoted_cell = false;
      if (i < text.size() && text[i] != ',') {
        error = "text after a quoted cell";
        return false;
      }
    } else if (c == ',') {
      cell = &next_cell();
    } else if (c == '"' && cell->empty() && (i == 1 || text[i - 2] == ',')) {
      quoted_cell = true;
    } else {
      error = "a quote or carriage return inside an unquoted cell";
      return false;
    }
  }
  cells.resize(n);
  return !quoted_cell;
}

}  // namespace buoni::engine::export_format
