// GET /v1/transactions: a shop's own ledger entries, paginated, from the
// per-merchant ledger index (engine/queries.h merchant_entries). Also the
// names the API gives ledger entries, shared with the public card view and
// the beneficiary's page.
#include <algorithm>
#include <limits>
#include <map>

#include "api/handler_internal.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"

namespace buoni::api::detail {

namespace {

bool digits_only(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The value of `text[at, at + 2)` as two digits, or -1.
int two_digits(std::string_view text, std::size_t at) {
  if (at + 2 > text.size() || !digits_only(text.substr(at, 2))) return -1;
  return (text[at] - '0') * 10 + (text[at + 1] - '0');
}

// "+HH:MM" / "-HH:MM" / "Z" at the end of an RFC 3339 time, in ms east of UTC.
// A ' ' stands for '+' (an unencoded '+' in a query string decodes to one).
std::optional<engine::TimeMs> parse_offset_ms(std::string_view text) {
  if (text == "Z" || text == "z") return 0;
  if (text.size() != 6 || text[3] != ':') return std::nullopt;
  int sign = text[0] == '-' ? -1 : (text[0] == '+' || text[0] == ' ') ? 1 : 0;
  int hours = two_digits(text, 1), minutes = two_digits(text, 4);
  if (sign == 0 || hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return std::nullopt;
  return sign * (hours * 60 + minutes) * engine::TimeMs{60'000};
}

// RFC 3339: "2026-04-01T09:30:00Z", with optional fraction and any offset.
std::optional<engine::TimeMs> parse_time(std::string_view text) {
  constexpr std::size_t seconds_end = 19;  // "YYYY-MM-DDTHH:MM:SS"
  if (text.size() <= seconds_end) return std::nullopt;
  auto day = engine::parse_day(text.substr(0, 10));
  if (!day || (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  int h = two_digits(text, 11), m = two_digits(text, 14), s = two_digits(text, 17);
  if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59) return std::nullopt;
  std::size_t at = seconds_end;
  engine::TimeMs fraction_ms = 0;
  if (text[at] == '.') {
    std::size_t end = at + 1;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    std::size_t n = end - at - 1;
    if (n < 1 || n > 9) return std::nullopt;
    std::string ms_digits(text.substr(at + 1, std::min<std::size_t>(n, 3)));
    ms_digits.resize(3, '0');
    fraction_ms = std::stoi(ms_digits);
    at = end;
  }
  auto offset_ms = parse_offset_ms(text.substr(at));
  if (!offset_ms) return std::nullopt;
  return *day * engine::ms_per_day + ((h * 60 + m) * 60 + s) * engine::TimeMs{1000} + fraction_ms -
         *offset_ms;
}

// A time bound: RFC 3339, or a day. A day as `to` is inclusive (the bound is
// the next midnight), as people read "from 1 March to 31 March".
std::optional<engine::TimeMs> query_time(const Call& call, std::string_view name, bool end) {
  auto it = call.query.find(name);
  if (it == call.query.end()) return std::nullopt;
  const std::string& text = it->second;
  if (text.size() == 10) {
    if (auto day = engine::parse_day(text)) return (*day + (end ? 1 : 0)) * engine::ms_per_day;
  } else if (auto t = parse_time(text)) {
    return t;
  }
  fail_field(std::string(name) + " must be an RFC 3339 time (2026-04-01T09:30:00Z) or a day " +
             "(2026-04-01)");
}

std::size_t query_limit(const Call& call) {
  auto it = call.query.find("limit");
  if (it == call.query.end()) return limits::transactions_page_default;
  const std::string& text = it->second;
  std::size_t limit = digits_only(text) && text.size() <= 4 ? std::stoul(text) : 0;
  if (limit < 1 || limit > limits::transactions_page_max) {
    fail_field("limit must be a whole number from 1 to " +
               std::to_string(limits::transactions_page_max));
  }
  return limit;
}

// Cursors are "s" and the decimal seq of the last entry already answered.
// Clients treat them as opaque; they are not tied to the window, so the next
// page is asked with the same from and to.
std::string make_cursor(std::uint64_t after_seq) {
  return "s" + std::to_string(after_seq);
}

std::uint64_t query_cursor(const Call& call) {
  auto it = call.query.find("cursor");
  if (it == call.query.end()) return 0;
  std::string_view text = it->second;
  bool ok = text.size() >= 2 && text.size() <= 21 && text[0] == 's' &&
            digits_only(text.substr(1)) && (text.size() == 2 || text[1] != '0');
  std::uint64_t seq = 0;
  if (ok) {
    for (char c : text.substr(1)) {
      auto digit = static_cast<std::uint64_t>(c - '0');
      if (seq > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) ok = false;
      seq = seq * 10 + digit;
    }
  }
  if (!ok) fail_field("cursor is not one this API gave (pass next_cursor as it came)");
  return seq;
}

std::string masked_card(std::string_view card_id) {
  ParsedCard parsed = parse_card_number(card_id);
  return parsed.id ? mask_card_number(*parsed.id) : "";
}

}  // namespace

std::string_view transaction_kind(const ApiContext& ctx, const engine::Entry& e) {
  using engine::EntryKind;
  switch (e.kind) {
    case EntryKind::fund:
      return "fund";
    case EntryKind::issue:
      return "issue";
    case EntryKind::load:
      return "load";
    case EntryKind::redeem:
      return "redemption";
    case EntryKind::hold:
      return "authorization";
    case EntryKind::capture:
      return "capture";
    case EntryKind::refund:
      return "refund";
    case EntryKind::transfer:
      return "replacement";
    case EntryKind::expire:
      return "expiry";
    case EntryKind::settle:
      return "settlement";
    case EntryKind::release:
      break;
  }
  // A release says why through its hold: voided, expired, or the rest of a capture.
  auto hold = engine::find_hold(ctx.store, e.ref);
  if (!hold.ok()) fail_status(hold.status());
  if (!hold->has_value()) return "release";
  switch ((*hold)->status) {
    case engine::HoldStatus::voided:
      return "void";
    case engine::HoldStatus::expired:
      return "authorization_expired";
    case engine::HoldStatus::pending:
    case engine::HoldStatus::captured:
      break;
  }
  return "release";
}

std::vector<PublicTransaction> public_transactions(const ApiContext& ctx, const CardId& card) {
  auto entries = engine::card_entries(ctx.store, card, limits::public_transactions_max);
  if (!entries.ok()) fail_status(entries.status());
  std::map<std::string, std::string, std::less<>> shop_names;
  std::vector<PublicTransaction> out;
  const std::string card_text = format_card_id(card);
  for (engine::Entry& e : *entries) {
    PublicTransaction t;
    t.kind = std::string(transaction_kind(ctx, e));
    if (!e.merchant.empty()) {
      auto [it, fresh] = shop_names.try_emplace(e.merchant);
      if (fresh) {
        auto m = engine::find_merchant(ctx.store, e.merchant);
        if (!m.ok()) fail_status(m.status());
        it->second = m->has_value() ? (*m)->name : "";
      }
      t.shop = it->second;
    }
    const bool in = e.to.kind == engine::AccountKind::card && e.to.owner == card_text;
    const bool out_of = e.from.kind == engine::AccountKind::card && e.from.owner == card_text;
    t.sign = in == out_of ? 0 : in ? 1 : -1;
    t.entry = std::move(e);
    out.push_back(std::move(t));
  }
  return out;
}

json::array public_transactions_json(const std::vector<PublicTransaction>& list) {
  json::array items;
  for (const PublicTransaction& t : list) {
    json::object o{{"date", engine::format_day(engine::day_of(t.entry.time_ms))},
                   {"kind", t.kind},
                   {"amount_cents", t.entry.amount_cents}};
    if (!t.shop.empty()) o["shop"] = t.shop;
    items.push_back(std::move(o));
  }
  return items;
}

Response get_transactions(Call& call) {
  const engine::TimeMs from_ms =
      query_time(call, "from", false).value_or(std::numeric_limits<engine::TimeMs>::min());
  const engine::TimeMs to_ms =
      query_time(call, "to", true).value_or(std::numeric_limits<engine::TimeMs>::max());
  if (from_ms >= to_ms) fail_field("from must be before to (a day as to counts whole)");
  const std::uint64_t after_seq = query_cursor(call);
  const std::size_t limit = query_limit(call);
  auto page = engine::merchant_entries(call.ctx.store, call.caller.merchant_id, from_ms, to_ms,
                                       after_seq, limit);
  if (!page.ok()) fail_status(page.status());
  json::array items;
  for (const engine::Entry& e : page->entries) {
    json::object o{{"seq", e.seq}, {"kind", transaction_kind(call.ctx, e)}, {"id", e.ref}};
    if (!e.card.empty()) o["card_number"] = masked_card(e.card);
    o["amount_cents"] = e.amount_cents;
    o["currency"] = "EUR";
    o["created_at"] = engine::format_time(e.time_ms);
    items.push_back(std::move(o));
  }
  json::object body{{"transactions", std::move(items)}};
  if (page->next_after != 0) body["next_cursor"] = make_cursor(page->next_after);
  return json_response(call.req, http::status::ok, body);
}

}  // namespace buoni::api::detail
