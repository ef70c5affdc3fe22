#include "api/access_log.h"

#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>

namespace buoni::api {

namespace {

constexpr std::size_t qr_symbols = 119;  // Base45 symbols after "BS1:" (crypto/token.h)
constexpr std::size_t link_chars_min = 100;
constexpr std::size_t kept_chars = 4;

bool is_delimiter(char c) {
  return c == '/' || c == '?' || c == '&' || c == '=' || c == '#';
}

char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = upper(c);
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool escape_at(std::string_view s, std::size_t i) {
  return i + 2 < s.size() && s[i] == '%' && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0;
}

bool starts_with_nocase(std::string_view s, std::size_t i, std::string_view prefix) {
  if (s.size() - i < prefix.size()) return false;
  for (std::size_t k = 0; k < prefix.size(); ++k) {
    if (upper(s[i + k]) != prefix[k]) return false;
  }
  return true;
}

// Length of a QR token prefix at i ("BS1:" or "BS1%3A"), 0 if none.
std::size_t token_prefix_at(std::string_view s, std::size_t i) {
  if (starts_with_nocase(s, i, "BS1:")) return 4;
  if (starts_with_nocase(s, i, "BS1%3A")) return 6;
  return 0;
}

// Masks the QR token whose symbols start at `from`; returns where it ends.
std::size_t mask_qr_token(std::string_view s, std::size_t from, std::string& out) {
  std::array<std::size_t, kept_chars> starts{};  // where the last symbols began
  std::size_t count = 0, i = from;
  while (count < qr_symbols && i < s.size()) {
    const char c = s[i];
    if (c == '?' || c == '&' || c == '#' || c == '=') break;
    starts[count % kept_chars] = i;
    i += escape_at(s, i) ? 3 : 1;
    ++count;
  }
  out += "BS1:***";
  if (count >= 2 * kept_chars)
    out += s.substr(starts[count % kept_chars], i - starts[count % kept_chars]);
  return i;
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (escape_at(s, i)) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

bool crockford_symbol(char c) {  // lenient, as parse_card_number reads: I L O too, not U
  c = upper(c);
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'U');
}

bool check_symbol(char c) {
  return crockford_symbol(c) || c == '*' || c == '~' || c == '$' || c == '=' || upper(c) == 'U';
}

// The masked card number if `decoded` is one, else "".
std::string masked_card_number(std::string_view decoded) {
  std::string symbols;
  for (char c : decoded) {
    if (c == '-' || c == ' ') continue;
    symbols += c;
  }
  if (symbols.size() != 16 && symbols.size() != 17) return {};
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    if (!(i < 16 ? crockford_symbol(symbols[i]) : check_symbol(symbols[i]))) return {};
  }
  std::string out;
  std::size_t seen = 0;
  for (char c : decoded) {
    if (c == '-' || c == ' ') {
      if (!out.empty() && out.back() != '-') out += '-';
      continue;
    }
    out += seen < 16 - kept_chars ? '*' : upper(c);
    ++seen;
  }
  return out;
}

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string mask_segment(std::string_view raw) {
  if (raw.size() >= link_chars_min &&
      std::all_of(raw.begin(), raw.end(), [](char c) { return base64url_char(c); })) {
    return "***" + std::string(raw.substr(raw.size() - kept_chars));
  }
  if (raw.starts_with("mk_") || raw.starts_with("ak_"))
    return std::string(raw.substr(0, 3)) + "***";
  std::string card = masked_card_number(percent_decoded(raw));
  return card.empty() ? std::string(raw) : card;
}

// Bytes outside printable ASCII as %XX, so every line is valid UTF-8 JSON.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      std::array<char, 4> buf{};
      std::snprintf(buf.data(), buf.size(), "%%%02X", c);
      out += buf.data();
    }
  }
  return out;
}

}  // namespace

std::string mask_target(std::string_view target) {
  std::string out;
  out.reserve(target.size());
  std::size_t segment_start = 0, i = 0;
  auto flush = [&](std::size_t end) {
    if (end > segment_start) out += mask_segment(target.substr(segment_start, end - segment_start));
  };
  while (i < target.size()) {
    if (std::size_t prefix = token_prefix_at(target, i)) {
      flush(i);
      i = mask_qr_token(target, i + prefix, out);
      segment_start = i;
    } else if (is_delimiter(target[i])) {
      flush(i);
      out += target[i];
      segment_start = ++i;
    } else {
      ++i;
    }
  }
  flush(target.size());
  return out;
}

std::string format_rfc3339_ms(std::int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(unix_ms)};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf.data();
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

AccessLog::AccessLog(std::ostream& out, const engine::Clock* clock) : out_(out), clock_(clock) {}

std::int64_t AccessLog::now_ms() const {
  if (clock_) return clock_->now_ms();
  return engine::SystemClock().now_ms();
}

std::string AccessLog::request_line(const AccessRecord& r) const {
  boost::json::object o;
  o["ts"] = format_rfc3339_ms(now_ms());
  o["level"] = log_level_name(r.status >= 500 ? LogLevel::error : LogLevel::info);
  o["event"] = "http_request";
  o["remote"] = printable(r.remote);
  o["method"] = printable(r.method);
  o["route"] = printable(r.route);
  o["target"] = printable(mask_target(r.target));
  o["status"] = r.status;
  o["duration_us"] = r.duration_us;
  o["bytes"] = r.bytes;
  o["request_id"] = printable(r.request_id);
  return boost::json::serialize(o);
}

std::string AccessLog::event_line(LogLevel level, std::string_view event,
                                  const boost::json::object& fields) const {
  boost::json::object o;
  o["ts"] = format_rfc3339_ms(now_ms());
  o["level"] = log_level_name(level);
  o["event"] = printable(event);
  for (const auto& kv : fields) {
    if (kv.key() == "ts" || kv.key() == "level" || kv.key() == "event") continue;
    o[kv.key()] =
        kv.value().is_string() ? boost::json::value(printable(kv.value().as_string())) : kv.value();
  }
  return boost::json::serialize(o);
}

void AccessLog::log_request(const AccessRecord& record) {
  write(request_line(record));
}

void AccessLog::log_event(LogLevel level, std::string_view event,
                          const boost::json::object& fields) {
  write(event_line(level, event, fields));
}

void AccessLog::write(const std::string& line) {
  std::lock_guard lock(mutex_);
  out_ << line << '\n';
  out_.flush();
}

}  // namespace buoni::api
