#include "engine/export_format.h"

#include <boost/json/basic_parser_impl.hpp>

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

// What parse_json_line asks of Boost.JSON's parser (basic_parser: events,
// no document built): one flat object whose values are strings or integers,
// each key a known field given once. String and number text may arrive in
// parts; it is gathered into the record's field.
class RecordHandler {
 public:
  static constexpr std::size_t max_array_size = 0;
  static constexpr std::size_t max_object_size = field_count;
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = 64;
  using error_code = boost::system::error_code;
  using string_view = boost::json::string_view;

  Record* record = nullptr;
  std::string error;  // set when the handler refused the text

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return refuse(value_error()); }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) {
    if (depth_++ == 0) return true;
    return refuse(value_error());
  }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_string_part(string_view s, std::size_t, error_code&) { return text(s, true, false); }
  bool on_string(string_view s, std::size_t, error_code&) { return text(s, true, true); }
  bool on_key_part(string_view s, std::size_t, error_code&) { return key_text(s, false); }
  bool on_key(string_view s, std::size_t, error_code&) { return key_text(s, true); }
  bool on_number_part(string_view s, error_code&) { return text(s, false, false); }
  bool on_int64(std::int64_t, string_view s, error_code&) { return text(s, false, true); }
  bool on_uint64(std::uint64_t, string_view s, error_code&) { return text(s, false, true); }
  bool on_double(double, string_view, error_code&) { return refuse(value_error()); }
  bool on_bool(bool, error_code&) { return refuse(value_error()); }
  bool on_null(error_code&) { return refuse(value_error()); }
  bool on_comment_part(string_view, error_code&) { return refuse("comments are not JSON"); }
  bool on_comment(string_view, error_code&) { return refuse("comments are not JSON"); }

 private:
  bool refuse(std::string why) {
    error = std::move(why);
    return false;
  }
  std::string value_error() const {
    if (depth_ == 0) return "not a JSON object";
    return "field \"" + key_ + "\" is not a JSON string or integer";
  }
  bool key_text(string_view s, bool last) {
    if (depth_ == 0) return refuse("not a JSON object");
    if (!in_key_) key_.clear();
    in_key_ = !last;
    key_.append(s.data(), s.size());
    if (!last) return true;
    field_ = field_of(key_);
    if (field_ == field_count) return refuse("unknown field \"" + key_ + "\"");
    if (record->present[field_]) return refuse("field \"" + key_ + "\" given twice");
    record->value[field_].clear();
    return true;
  }
  bool text(string_view s, bool quoted, bool last) {
    if (depth_ == 0) return refuse("not a JSON object");
    record->value[field_].append(s.data(), s.size());
    record->quoted[field_] = quoted;
    record->present[field_] = last;
    return true;
  }
  int depth_ = 0;
  bool in_key_ = false;
  std::string key_;
  Field field_ = field_count;
};

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
  boost::json::basic_parser<RecordHandler> parser{boost::json::parse_options{}};
  parser.handler().record = &r;
  boost::system::error_code ec;
  std::size_t used = parser.write_some(false, line.data(), line.size(), ec);
  if (!ec && used != line.size()) ec = boost::json::error::extra_data;
  if (!ec) return true;
  error = parser.handler().error.empty() ? "malformed JSON: " + ec.message()
                                         : std::move(parser.handler().error);
  return false;
}

// Scans with memchr (find of one char) rather than char by char: a cell
// ends at the next comma (unquoted) or quote (quoted); the strings of
// `cells` are reused from row to row.
bool split_csv_row(std::string_view text, std::vector<std::string>& cells, std::string& error) {
  std::size_t n = 0;  // cells in use
  auto next_cell = [&]() -> std::string& {
    if (n == cells.size()) cells.emplace_back();
    std::string& cell = cells[n++];
    cell.clear();
    return cell;
  };
  auto rest = [&](std::size_t from, std::size_t to) { return text.substr(from, to - from); };
  std::size_t i = 0;
  for (;;) {  // at the start of a cell
    std::string& cell = next_cell();
    if (i < text.size() && text[i] == '"') {  // a quoted cell: "" is one quote
      for (++i;;) {
        std::size_t quote = text.find('"', i);
        if (quote == std::string_view::npos) {
          cell.append(text.substr(i));
          cells.resize(n);
          return false;  // still open: the row goes on past this line
        }
        cell.append(rest(i, quote));
        i = quote + 1;
        if (i < text.size() && text[i] == '"') {
          cell.push_back('"');
          ++i;
          continue;
        }
        break;
      }
      if (i == text.size()) break;
      if (text[i] != ',') {
        error = "text after a quoted cell";
        return false;
      }
    } else {
      std::size_t comma = std::min(text.find(',', i), text.size());
      std::string_view plain = rest(i, comma);
      if (plain.find('"') != std::string_view::npos || plain.find('\r') != std::string_view::npos) {
        error = "a quote or carriage return inside an unquoted cell";
        return false;
      }
      cell.append(plain);
      i = comma;
      if (i == text.size()) break;
    }
    ++i;  // the comma
  }
  cells.resize(n);
  return true;
}

}  // namespace buoni::engine::export_format
