#include "api/render.h"

#include "engine/calendar.h"
#include "engine/overloaded.h"

namespace buoni::api {

namespace json = boost::json;
using namespace buoni::engine;

namespace {
constexpr std::string_view currency = "EUR";

std::string masked(std::string_view card_id) {
  CardId id;
  auto parsed = parse_card_number(card_id);
  if (!parsed.id) return "";
  id = *parsed.id;
  return mask_card_number(id);
}
}  // namespace

json::object programme_json(const Programme& p) {
  Cents outstanding = p.issued_cents - p.redeemed_cents + p.refunded_cents - p.expired_cents;
  return {
      {"id", p.id},
      {"name", p.name},
      {"currency", currency},
      {"budget_cents", p.budget_cents},
      {"valid_from", format_day(p.valid_from_day)},
      {"valid_until", format_day(p.valid_until_day)},
      {"require_pin", p.require_pin},
      {"max_redemption_cents", p.max_redemption_cents},
      {"daily_limit_cents", p.daily_limit_cents},
      {"status", p.status == ProgrammeStatus::open ? "open" : "closed"},
      {"created_at", format_time(p.created_at_ms)},
      {"issued_cents", p.issued_cents},
      {"redeemed_cents", p.redeemed_cents},
      {"refunded_cents", p.refunded_cents},
      {"held_cents", p.held_cents},
      {"outstanding_cents", outstanding},
      {"expired_cents", p.expired_cents},
      {"unissued_cents", p.budget_cents - p.issued_cents},
      {"cards", p.card_count},
  };
}

json::object merchant_json(const Merchant& m) {
  json::array programmes;
  for (const auto& p : m.programmes) programmes.emplace_back(p);
  return {{"id", m.id},
          {"name", m.name},
          {"vat_number", m.vat_number},
          {"programmes", std::move(programmes)},
          {"created_at", format_time(m.created_at_ms)}};
}

json::object card_json(const Card& c, const Programme& p) {
  json::object o{{"id", format_card_id(c.id)},
                 {"number", format_card_number(c.id)},
                 {"programme", c.programme},
                 {"beneficiary_ref", c.beneficiary_ref},
                 {"status", card_status_name(c.status)},
                 {"currency", currency},
                 {"balance_cents", c.available_cents},
                 {"held_cents", c.held_cents},
                 {"issued_cents", c.issued_cents},
                 {"issued_at", format_time(c.issued_at_ms)},
                 {"valid_from", format_day(p.valid_from_day)},
                 {"expires_at", format_day(p.valid_until_day)}};
  if (c.has_replacement) o["replaced_by"] = format_card_id(c.replaced_by);
  return o;
}

json::object error_json(std::string_view code, std::string_view message) {
  return {{"error", json::object{{"code", code}, {"message", message}}}};
}

json::object error_json(Code code, const Outcome& o) {
  json::object body = error_json(code_name(code), code_message(code));
  json::object& e = body["error"].as_object();
  if (code == Code::insufficient_funds) {
    e["balance_cents"] = o.balance_cents;
    e["held_cents"] = o.held_cents;
  }
  if (code == Code::already_issued && !o.card.empty()) {
    e["card_id"] = o.card;
  }
  if (code == Code::hold_expired && !o.id.empty()) e["id"] = o.id;
  return body;
}

}  // namespace buoni::api

namespace buoni::api {

namespace {

json::object redemption_json(const Outcome& o) {
  json::object r{{"id", o.id},
                 {"card_number", masked(o.card)},
                 {"amount_cents", o.amount_cents},
                 {"balance_cents", o.balance_cents},
                 {"currency", currency},
                 {"created_at", format_time(o.time_ms)},
                 {"ledger_seq", o.ledger_seq}};
  return r;
}

json::object card_change_json(const Outcome& o) {
  CardId id = *parse_card_number(o.card).id;
  return {{"id", o.card},
          {"number", format_card_number(id)},
          {"status", o.status},
          {"balance_cents", o.balance_cents},
          {"held_cents", o.held_cents},
          {"currency", currency}};
}

}  // namespace

json::object outcome_json(const Command& command, const Outcome& o) {
  return std::visit(Overloaded{
                        [&](const CreateProgramme& c) {
                          Programme p;
                          p.id = c.id;
                          p.name = c.name;
                          p.budget_cents = c.budget_cents;
                          p.valid_from_day = c.valid_from_day;
                          p.valid_until_day = c.valid_until_day;
                          p.require_pin = c.require_pin;
                          p.max_redemption_cents = c.max_redemption_cents;
                          p.daily_limit_cents = c.daily_limit_cents;
                          p.created_at_ms = o.time_ms;
                          json::object j = programme_json(p);
                          j["ledger_seq"] = o.ledger_seq;
                          return j;
                        },
                        [&](const CloseProgramme& c) {
                          return json::object{{"id", c.id},
                                              {"status", "closed"},
                                              {"expired_cents", o.amount_cents},
                                              {"ledger_seq", o.ledger_seq}};
                        },
                        [&](const AddMerchant& c) {
                          Merchant m;
                          m.id = c.id;
                          m.name = c.name;
                          m.vat_number = c.vat_number;
                          m.programmes = c.programmes;
                          m.created_at_ms = o.time_ms;
                          if (m.vat_number.starts_with("IT")) m.vat_number.erase(0, 2);
                          return merchant_json(m);
                        },
                        [&](const IssueCard& c) {
                          json::object j = card_change_json(o);
                          j["programme"] = c.programme;
                          j["beneficiary_ref"] = c.beneficiary_ref;
                          j["amount_cents"] = o.amount_cents;
                          j["created_at"] = format_time(o.time_ms);
                          j["ledger_seq"] = o.ledger_seq;
                          return j;
                        },
                        [&](const LoadCard&) {
                          json::object j = card_change_json(o);
                          j["amount_cents"] = o.amount_cents;
                          j["created_at"] = format_time(o.time_ms);
                          j["ledger_seq"] = o.ledger_seq;
                          return j;
                        },
                        [&](const BlockCard&) { return card_change_json(o); },
                        [&](const UnblockCard&) { return card_change_json(o); },
                        [&](const UnlockPin&) { return card_change_json(o); },
                        [&](const ReplaceCard&) {
                          Outcome fresh = o;
                          fresh.card = o.new_card;
                          json::object j = card_change_json(fresh);
                          j["replaces"] = o.card;
                          j["ledger_seq"] = o.ledger_seq;
                          return j;
                        },
                        [&](const Redeem&) { return redemption_json(o); },
                        [&](const Authorize&) {
                          return json::object{{"id", o.id},
                                              {"status", o.status},
                                              {"card_number", masked(o.card)},
                                              {"amount_cents", o.amount_cents},
                                              {"balance_cents", o.balance_cents},
                                              {"held_cents", o.held_cents},
                                              {"currency", currency},
                                              {"created_at", format_time(o.time_ms)},
                                              {"expires_at", format_time(o.expires_at_ms)},
                                              {"ledger_seq", o.ledger_seq}};
                        },
                        [&](const Capture& c) {
                          json::object j = redemption_json(o);
                          j["authorization_id"] = c.hold_id;
                          return j;
                        },
                        [&](const Void& c) {
                          return json::object{{"id", c.hold_id},
                                              {"status", o.status},
                                              {"amount_cents", o.amount_cents},
                                              {"balance_cents", o.balance_cents},
                                              {"currency", currency}};
                        },
                        [&](const RefundRedemption& c) {
                          return json::object{{"id", o.id},
                                              {"redemption_id", c.redemption_id},
                                              {"amount_cents", o.amount_cents},
                                              {"balance_cents", o.balance_cents},
                                              {"currency", currency},
                                              {"created_at", format_time(o.time_ms)},
                                              {"ledger_seq", o.ledger_seq}};
                        },
                        [&](const Settle& c) {
                          return json::object{{"id", c.period_id},
                                              {"status", o.status},
                                              {"amount_cents", o.amount_cents},
                                              {"currency", currency},
                                              {"created_at", format_time(o.time_ms)},
                                              {"ledger_seq", o.ledger_seq}};
                        },
                        // The new key is added by the edge (post_rotate_key).
                        [&](const RotateMerchantKey& c) {
                          return json::object{{"id", c.id}};
                        },
                        // The session's answer is made by the edge (api/session.h).
                        [&](const OpenSession&) {
                          return json::object{{"merchant_id", o.id},
                                              {"expires_at", format_time(o.expires_at_ms)}};
                        },
                        [&](const EndSession&) {
                          return json::object{{"ended", true}};
                        },
                    },
                    command);
}

json::object settlement_json(const Settlement& s, const std::map<std::string, Merchant>& shops,
                             bool already_settled) {
  json::array lines;
  Cents total_cents = 0;
  for (const SettlementLine& l : s.lines) {
    const Merchant& shop = shops.at(l.merchant);
    total_cents += l.net_cents;
    lines.push_back(json::object{{"merchant", l.merchant},
                                 {"name", shop.name},
                                 {"vat_number", shop.vat_number},
                                 {"programme", l.programme},
                                 {"amount_cents", l.net_cents},
                                 {"redeemed_cents", l.redeemed_cents},
                                 {"refunded_cents", l.refunded_cents},
                                 {"count", l.count},
                                 {"first_seq", l.first_seq},
                                 {"first_at", format_time(l.first_time_ms)},
                                 {"last_seq", l.last_seq},
                                 {"last_at", format_time(l.last_time_ms)},
                                 {"ledger_seq", l.ledger_seq}});
  }
  return json::object{{"id", s.id},
                      {"from", format_day(s.from_day)},
                      {"to", format_day(s.to_day)},
                      {"status", already_settled ? "already_settled" : "settled"},
                      {"amount_cents", total_cents},
                      {"currency", currency},
                      {"created_at", format_time(s.created_at_ms)},
                      {"lines", std::move(lines)}};
}

std::string markup_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace buoni::api
