#include "api/session.h"

#include <array>

#include "crypto/hash.h"

namespace buoni::api {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `name` in one Cookie header ("a=1; b=2"), if there.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
      return trim(pair.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace

std::string make_session_id(Random& random) {
  std::array<std::uint8_t, 32> bytes{};
  random.fill(bytes);
  return "ps_" + to_hex(bytes);
}

Hash32 session_hash(std::string_view session_id) {
  return blake2b_256(session_id);
}

std::string csrf_token(std::string_view session_id) {
  std::string text = "buoni-csrf-v1\n";
  text += session_id;
  return to_hex(blake2b_256(text));
}

bool csrf_matches(std::string_view session_id, std::string_view presented) {
  std::string want = csrf_token(session_id);
  if (presented.size() != want.size()) return false;
  return constant_time_equal(
      std::span(reinterpret_cast<const std::uint8_t*>(want.data()), want.size()),
      std::span(reinterpret_cast<const std::uint8_t*>(presented.data()), presented.size()));
}

std::optional<std::string> session_cookie(const Request& req) {
  for (auto it = req.find(http::field::cookie);
       it != req.end() && it->name() == http::field::cookie; ++it) {
    if (auto v = cookie_value(it->value(), session_cookie_name)) return std::string(*v);
  }
  return std::nullopt;
}

std::string session_set_cookie(std::string_view session_id, std::int64_t max_age_s, bool secure) {
  std::string c = std::string(session_cookie_name) + "=" + std::string(session_id) +
                  "; Path=/; Max-Age=" + std::to_string(max_age_s) + "; HttpOnly; SameSite=Strict";
  if (secure) c += "; Secure";
  return c;
}

std::string session_clear_cookie(bool secure) {
  return session_set_cookie("", 0, secure);
}

bool same_origin(const Request& req) {
  auto origin = req.find(http::field::origin);
  if (origin == req.end()) return true;
  auto host = req.find(http::field::host);
  if (host == req.end()) return false;
  std::string_view o = origin->value();
  auto scheme_end = o.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view scheme = o.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  return o.substr(scheme_end + 3) == host->value();
}

}  // namespace buoni::api
