// Request parts: the strict JSON body, typed fields, card references, PINs,
// query strings, the Idempotency-Key header.
#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <set>

#include "api/handler_internal.h"
#include "crypto/card_number.h"
#include "crypto/token.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "engine/validate.h"

namespace buoni::api::detail {

namespace {

using boost::system::error_code;
using JsonView = boost::json::string_view;

// A basic_parser handler that builds nothing and notes a key repeated in one
// object (boost::json::parse keeps the last silently; a body that says two
// things is refused instead).
struct DuplicateKeys {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  std::vector<std::set<std::string, std::less<>>> open;  // keys of each open object
  std::string key;
  bool found = false;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) {
    open.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    open.pop_back();
    return true;
  }
  bool on_string_part(JsonView, std::size_t, error_code&) { return true; }
  bool on_string(JsonView, std::size_t, error_code&) { return true; }
  bool on_key_part(JsonView s, std::size_t, error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(JsonView s, std::size_t, error_code&) {
    key.append(s.data(), s.size());
    if (!open.back().insert(key).second) found = true;
    key.clear();
    return true;
  }
  bool on_number_part(JsonView, error_code&) { return true; }
  bool on_int64(std::int64_t, JsonView, error_code&) { return true; }
  bool on_uint64(std::uint64_t, JsonView, error_code&) { return true; }
  bool on_double(double, JsonView, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(JsonView, error_code&) { return true; }
  bool on_comment(JsonView, error_code&) { return true; }
};

bool has_duplicate_keys(std::string_view text) {
  boost::json::basic_parser<DuplicateKeys> parser(boost::json::parse_options{});
  error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return !ec && parser.handler().found;
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// A name from the request, quoted for an error message: at most 64 bytes,
// and only printable ASCII (any other byte shows as '?'), so the answer
// stays valid UTF-8 JSON whatever the request held (a query name need not
// be UTF-8, and a cut could split a character).
std::string quoted(std::string_view name) {
  constexpr std::size_t shown_max = 64;
  std::string out = "\"";
  for (char c : name.substr(0, shown_max)) out += (c >= ' ' && c <= '~') ? c : '?';
  if (name.size() > shown_max) out += "...";
  return out + "\"";
}

std::string field_list(std::span<const std::string_view> allowed) {
  std::string out;
  for (std::string_view a : allowed) {
    if (!a.empty()) out += (out.empty() ? "" : ", ") + std::string(a);
  }
  return out.empty() ? "nothing" : out;
}

bool listed(std::span<const std::string_view> allowed, std::string_view name) {
  return !name.empty() && std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

const json::value* find(const json::object& o, std::string_view name) {
  auto it = o.find(name);
  return it == o.end() ? nullptr : &it->value();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

json::object parse_body(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::string_view text = req.body();
  if (allowed.size() == 0 && blank(text)) return {};
  error_code ec;
  json::value v = json::parse(text, ec, {}, json::parse_options{});
  if (ec) fail(400, "invalid_json", "the body is not valid JSON (" + ec.message() + ")");
  if (!v.is_object()) fail(400, "invalid_json", "the body must be a JSON object");
  if (has_duplicate_keys(text)) fail(400, "invalid_json", "the body repeats a field");
  json::object& o = v.as_object();
  for (const auto& kv : o) {
    std::string_view key = kv.key();
    if (!listed(allowed, key)) {
      fail_field("unknown field " + quoted(key) + " (this call takes: " + field_list(allowed) +
                 ")");
    }
  }
  return std::move(o);
}

std::optional<std::string> opt_string(const json::object& o, std::string_view name) {
  const json::value* v = find(o, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail_field(std::string(name) + " must be a string");
  return std::string(v->as_string());
}

std::string need_string(const json::object& o, std::string_view name) {
  auto s = opt_string(o, name);
  if (!s) fail_field(std::string(name) + " is required");
  return std::move(*s);
}

std::optional<engine::Cents> opt_cents(const json::object& o, std::string_view name,
                                       engine::Cents min, engine::Cents max) {
  const json::value* v = find(o, name);
  if (!v) return std::nullopt;
  std::string range = " (" + std::to_string(min) + " to " + std::to_string(max) + ")";
  if (v->is_double()) {
    fail_amount(std::string(name) +
                " must be whole cents written as a JSON integer (no fraction, no exponent)" +
                range);
  }
  if (v->is_uint64() || (v->is_int64() && (v->as_int64() < min || v->as_int64() > max))) {
    fail_amount(std::string(name) + " is out of range" + range);
  }
  if (!v->is_int64()) {
    fail_amount(std::string(name) + " must be a JSON integer of cents" + range);
  }
  return v->as_int64();
}

engine::Cents need_cents(const json::object& o, std::string_view name, engine::Cents min,
                         engine::Cents max) {
  auto c = opt_cents(o, name, min, max);
  if (!c) fail_field(std::string(name) + " is required");
  return *c;
}

std::optional<std::int64_t> opt_integer(const json::object& o, std::string_view name,
                                        std::int64_t min, std::int64_t max) {
  const json::value* v = find(o, name);
  if (!v) return std::nullopt;
  if (!v->is_int64() || v->as_int64() < min || v->as_int64() > max) {
    fail_field(std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
               std::to_string(max));
  }
  return v->as_int64();
}

std::optional<bool> opt_bool(const json::object& o, std::string_view name) {
  const json::value* v = find(o, name);
  if (!v) return std::nullopt;
  if (!v->is_bool()) fail_field(std::string(name) + " must be true or false");
  return v->as_bool();
}

std::vector<std::string> need_strings(const json::object& o, std::string_view name, std::size_t min,
                                      std::size_t max) {
  const json::value* v = find(o, name);
  if (!v) fail_field(std::string(name) + " is required");
  std::string why = std::string(name) + " must be an array of " + std::to_string(min) + " to " +
                    std::to_string(max) + " strings";
  if (!v->is_array()) fail_field(why);
  const json::array& a = v->as_array();
  if (a.size() < min || a.size() > max) fail_field(why);
  std::vector<std::string> out;
  for (const json::value& item : a) {
    if (!item.is_string()) fail_field(why);
    out.emplace_back(item.as_string());
  }
  return out;
}

namespace {

[[noreturn]] void refuse_token(TokenError error) {
  if (error == TokenError::expired) fail_code(engine::Code::card_expired);
  fail_card("card token refused (" + std::string(token_error_name(error)) +
            "): " + std::string(token_error_message(error)));
}

}  // namespace

CardId resolve_token(const ApiContext& ctx, std::string_view text) {
  if (!looks_like_token(text)) {
    fail_card("a card token (BS1:... or its link form) is needed, not a card number");
  }
  TokenResult r = verify_token(text, ctx.verify_keys, engine::day_of(ctx.clock.now_ms()));
  if (r.ok()) return r.token->card;
  refuse_token(r.error);
}

CardId resolve_spend_card(const Call& call, std::string_view text) {
  const ApiContext& ctx = call.ctx;
  if (!looks_like_token(text)) return resolve_card(ctx, text);
  TokenResult r = verify_token(text, ctx.verify_keys, engine::day_of(ctx.clock.now_ms()));
  if (r.ok()) return r.token->card;
  if (r.error != TokenError::expired || call.idempotency_key.empty()) refuse_token(r.error);
  auto retry = engine::has_idempotency_record(ctx.store, call.caller, call.idempotency_key);
  if (!retry.ok()) fail_status(retry.status());
  if (!*retry) refuse_token(r.error);
  TokenResult signed_ok = verify_token(text, ctx.verify_keys, 0);  // all but the expiry
  BUONI_ASSERT(signed_ok.ok());
  return signed_ok.token->card;
}

CardId resolve_card(const ApiContext& ctx, std::string_view text) {
  if (looks_like_token(text)) return resolve_token(ctx, text);
  ParsedCard parsed = parse_card_number(text);
  if (!parsed.id) {
    fail_card("card number refused: " + std::string(card_number_error_message(parsed.error)));
  }
  return *parsed.id;
}

std::optional<Hash32> opt_pin(const ApiContext& ctx, const json::object& o) {
  const json::value* v = find(o, "pin");
  if (!v) return std::nullopt;
  if (!v->is_string() || !engine::valid_pin(v->as_string())) {
    fail_field("pin must be a string of exactly 5 digits");
  }
  return engine::hash_pin(ctx.pin_pepper, v->as_string());
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return out;
}

std::map<std::string, std::string, std::less<>> parse_query(std::string_view query) {
  std::map<std::string, std::string, std::less<>> out;
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!name || !value) fail(400, "bad_request", "malformed query string");
    if (!out.emplace(std::move(*name), std::move(*value)).second) {
      fail(400, "bad_request", "a query parameter is repeated");
    }
  }
  return out;
}

void allow_query(const Call& call, std::span<const std::string_view> allowed) {
  for (const auto& [name, value] : call.query) {
    if (!listed(allowed, name)) {
      fail_field("unknown query parameter " + quoted(name) +
                 " (this call takes: " + field_list(allowed) + ")");
    }
  }
}

std::string idempotency_key(const Request& req, bool required) {
  constexpr std::string_view rule = "1-64 characters of A-Z a-z 0-9 _ -";
  std::size_t n = req.count("Idempotency-Key");
  if (n > 1) fail(400, "bad_request", "send one Idempotency-Key header, not several");
  if (n == 0) {
    if (required) {
      fail(400, "bad_request",
           "this call needs an Idempotency-Key header (" + std::string(rule) +
               ") so that a retry cannot pay twice");
    }
    return "";
  }
  std::string_view key = req["Idempotency-Key"];
  if (!engine::valid_idempotency_key(key)) {
    fail(400, "bad_request", "the Idempotency-Key header must be " + std::string(rule));
  }
  return std::string(key);
}

}  // namespace buoni::api::detail
