// The operators' report: sums and the HTML page. Contract in api/report.h.
#include "api/report.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "api/render.h"
#include "engine/calendar.h"

namespace buoni::api {

using engine::Cents;
using engine::Day;

namespace {

std::string group_thousands(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += '.';
    out += digits[i];
  }
  return out;
}

std::string count_text(std::int64_t n) {
  return (n < 0 ? "-" : "") + group_thousands(static_cast<std::uint64_t>(n < 0 ? -n : n));
}

// Monday of the ISO week of `day` (day 0, 1970-01-01, was a Thursday).
Day week_start(Day day) {
  const int weekday = ((day % 7) + 7 + 3) % 7;  // 0 = Monday
  return day - weekday;
}

}  // namespace

std::string format_euro(Cents cents) {
  const bool negative = cents < 0;
  const std::uint64_t abs =
      negative ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  char frac[4];
  std::snprintf(frac, sizeof frac, "%02u", static_cast<unsigned>(abs % 100));
  return std::string(negative ? "-" : "") + group_thousands(abs / 100) + "," + frac + " €";
}

// ---- the builder -------------------------------------------------------------

ReportBuilder::ReportBuilder(std::vector<engine::Programme> programmes)
    : programmes_(std::move(programmes)) {
  for (const auto& p : programmes_) sums_[p.id];
}

void ReportBuilder::add_merchant(const engine::Merchant& merchant) {
  shop_names_[merchant.id] = merchant.name;
}

void ReportBuilder::add_card(const engine::Card& card) {
  auto it = sums_.find(card.programme);
  if (it == sums_.end()) return;
  CardCounts& c = it->second.cards;
  c.total += 1;
  switch (card.status) {
    case engine::CardStatus::active:
      c.active += 1;
      break;
    case engine::CardStatus::blocked:
      c.blocked += 1;
      break;
    case engine::CardStatus::revoked:
      c.revoked += 1;
      break;
    case engine::CardStatus::expired:
      c.expired += 1;
      break;
  }
  const bool in_use =
      card.status == engine::CardStatus::active || card.status == engine::CardStatus::blocked;
  if (in_use && card.available_cents == 0 && card.held_cents == 0) c.zero_balance += 1;
}

void ReportBuilder::add_entry(const engine::Entry& e) {
  auto it = sums_.find(e.programme);
  if (it == sums_.end()) return;
  Sums& s = it->second;
  DayFlow& day = s.days[engine::day_of(e.time_ms)];
  switch (e.kind) {
    case engine::EntryKind::issue:
    case engine::EntryKind::load:
      day.issued += e.amount_cents;
      break;
    case engine::EntryKind::redeem:
    case engine::EntryKind::capture: {
      day.redeemed += e.amount_cents;
      ShopTotal& shop = s.shops[e.merchant];
      shop.redeemed_cents += e.amount_cents;
      shop.redemptions += 1;
      break;
    }
    case engine::EntryKind::refund: {
      day.refunded += e.amount_cents;
      ShopTotal& shop = s.shops[e.merchant];
      shop.refunded_cents += e.amount_cents;
      shop.refunds += 1;
      break;
    }
    case engine::EntryKind::expire:
      day.expired += e.amount_cents;
      break;
    default:  // fund, hold, release, transfer: no change to these totals
      break;
  }
}

std::vector<ReportPoint> report_series(const std::map<Day, DayFlow>& days, bool& weekly) {
  weekly = false;
  std::vector<ReportPoint> out;
  if (days.empty()) return out;
  const Day first = days.begin()->first;
  const Day last = days.rbegin()->first;
  weekly = last - first > report_daily_days_max;
  const Day step = weekly ? 7 : 1;
  const Day start = weekly ? week_start(first) : first;
  ReportPoint running;
  running.day = start - step;
  out.push_back(running);  // the zero the lines start from
  auto it = days.begin();
  for (Day bucket = start; bucket <= last; bucket += step) {
    for (; it != days.end() && it->first < bucket + step; ++it) {
      const DayFlow& f = it->second;
      running.issued_cents += f.issued;
      running.redeemed_cents += f.redeemed;
      running.expired_cents += f.expired;
      running.outstanding_cents += f.issued - f.redeemed + f.refunded - f.expired;
    }
    running.day = bucket;
    out.push_back(running);
  }
  return out;
}

ProgrammeReport ReportBuilder::programme_report(const engine::Programme& p,
                                                const Sums& sums) const {
  ProgrammeReport r;
  r.programme = p;
  r.series = report_series(sums.days, r.weekly);
  r.cards = sums.cards;
  for (const auto& [id, total] : sums.shops) {
    if (total.redemptions == 0 && total.refunds == 0) continue;
    ShopTotal shop = total;
    shop.merchant = id;
    auto name = shop_names_.find(id);
    if (name != shop_names_.end()) shop.name = name->second;
    r.top_shops.push_back(std::move(shop));
  }
  r.shops_total = r.top_shops.size();
  std::stable_sort(r.top_shops.begin(), r.top_shops.end(),
                   [](const ShopTotal& a, const ShopTotal& b) {
                     if (a.redeemed_cents != b.redeemed_cents) {
                       return a.redeemed_cents > b.redeemed_cents;
                     }
                     return a.merchant < b.merchant;
                   });
  if (r.top_shops.size() > report_top_shops) r.top_shops.resize(report_top_shops);
  return r;
}

Report ReportBuilder::finish(engine::TimeMs generated_at_ms, std::uint64_t head_seq) const {
  Report report;
  report.generated_at_ms = generated_at_ms;
  report.head_seq = head_seq;
  for (const auto& p : programmes_)
    report.programmes.push_back(programme_report(p, sums_.at(p.id)));
  return report;
}

// ---- the page ------------------------------------------------------------------

namespace {

// Italian label with its English subtitle, the page's one convention.
std::string label(std::string_view it, std::string_view en) {
  return std::string(it) + " <span class=\"en\">" + std::string(en) + "</span>";
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// A round axis step (1, 2 or 5 times a power of ten) giving at most 5 ticks.
Cents axis_step(Cents max) {
  const Cents raw = std::max<Cents>(1, (max + 4) / 5);
  Cents magnitude = 1;
  while (magnitude <= raw / 10) magnitude *= 10;
  for (Cents m : {1, 2, 5, 10}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

struct Line {
  const char* it;
  const char* en;
  const char* css;  // class name: colour and dash pattern
  Cents ReportPoint::*field;
};
constexpr Line chart_lines[] = {
    {"Emesso", "Issued", "issued", &ReportPoint::issued_cents},
    {"Speso", "Redeemed", "redeemed", &ReportPoint::redeemed_cents},
    {"In circolazione", "Outstanding", "outstanding", &ReportPoint::outstanding_cents},
    {"Scaduto", "Expired", "expired", &ReportPoint::expired_cents},
};

struct Frame {
  double left = 96, top = 16, width = 640, height = 210;
  std::size_t n = 1;
  Cents y_max = 1;
  [[nodiscard]] double x(std::size_t i) const {
    return n <= 1 ? left + width / 2
                  : left + width * static_cast<double>(i) / static_cast<double>(n - 1);
  }
  [[nodiscard]] double y(Cents c) const {
    return top + height - height * static_cast<double>(c) / static_cast<double>(y_max);
  }
};

std::string chart_axes(const Frame& f, const std::vector<ReportPoint>& series, Cents step) {
  std::string s;
  for (Cents v = 0; v <= f.y_max; v += step) {
    s += "<line class=\"grid\" x1=\"" + num(f.left) + "\" x2=\"" + num(f.left + f.width) +
         "\" y1=\"" + num(f.y(v)) + "\" y2=\"" + num(f.y(v)) + "\"/>";
    s += "<text class=\"ylabel\" x=\"" + num(f.left - 6) + "\" y=\"" + num(f.y(v) + 4) + "\">" +
         markup_escape(format_euro(v)) + "</text>";
  }
  const std::size_t labels = std::min<std::size_t>(series.size(), 6);
  for (std::size_t k = 0; k < labels; ++k) {
    const std::size_t i = labels == 1 ? 0 : k * (series.size() - 1) / (labels - 1);
    s += "<text class=\"xlabel\" x=\"" + num(f.x(i)) + "\" y=\"" + num(f.top + f.height + 18) +
         "\">" + markup_escape(engine::format_day(series[i].day)) + "</text>";
  }
  return s;
}

std::string chart_legend(const Frame& f) {
  std::string s;
  double x = f.left;
  const double y = f.top + f.height + 44;
  for (const Line& line : chart_lines) {
    s += "<line class=\"" + std::string(line.css) + "\" x1=\"" + num(x) + "\" x2=\"" + num(x + 24) +
         "\" y1=\"" + num(y - 4) + "\" y2=\"" + num(y - 4) + "\"/>";
    s += "<text class=\"legend\" x=\"" + num(x + 30) + "\" y=\"" + num(y) + "\">" + line.it +
         " / " + line.en + "</text>";
    x += 160;
  }
  return s;
}

std::string chart_svg(const ProgrammeReport& r) {
  Frame f;
  f.n = r.series.size();
  Cents max = 0;
  for (const auto& p : r.series) {
    for (const Line& line : chart_lines) max = std::max(max, p.*(line.field));
  }
  const Cents step = axis_step(max);
  f.y_max = std::max<Cents>(step, (max + step - 1) / step * step);
  std::string s =
      "<svg class=\"chart\" viewBox=\"0 0 760 290\" role=\"img\" "
      "aria-label=\"Andamento / Over time\"><title>Andamento / Over time</title>";
  s += chart_axes(f, r.series, step);
  for (const Line& line : chart_lines) {
    std::string points;
    for (std::size_t i = 0; i < r.series.size(); ++i) {
      points += num(f.x(i)) + "," + num(f.y(r.series[i].*(line.field))) + " ";
    }
    s += "<polyline class=\"" + std::string(line.css) + "\" points=\"" + points + "\"/>";
  }
  s += chart_legend(f) + "</svg>";
  return s;
}

constexpr std::string_view page_css = R"css(
:root { --ink: #1d2329; --muted: #5b6670; --rule: #d5dbe0; --band: #f3f5f7; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 62rem; padding: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .5rem; border-bottom: 2px solid var(--ink); padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.en { color: var(--muted); font-weight: normal; font-size: .85em; }
.en::before { content: "/ "; }
.meta { color: var(--muted); margin: 0; }
.id { color: var(--muted); font-weight: normal; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; }
table { border-collapse: collapse; width: 100%; margin: .25rem 0 1rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
thead th { background: var(--band); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.totals { width: auto; min-width: 28rem; }
.none { color: var(--muted); font-style: italic; }
figure { margin: .25rem 0 1rem; }
figcaption { color: var(--muted); font-size: .85rem; }
svg.chart { width: 100%; max-width: 760px; height: auto; font-family: inherit; }
svg .grid { stroke: var(--rule); stroke-width: 1; }
svg .ylabel { font-size: 11px; text-anchor: end; fill: var(--muted); }
svg .xlabel { font-size: 11px; text-anchor: middle; fill: var(--muted); }
svg .legend { font-size: 12px; fill: var(--ink); }
svg polyline, svg line.issued, svg line.redeemed, svg line.outstanding, svg line.expired { fill: none; stroke-width: 2.5; }
svg .issued { stroke: #1f5fa8; }
svg .redeemed { stroke: #2e7d32; stroke-dasharray: 7 4; }
svg .outstanding { stroke: #c25e00; }
svg .expired { stroke: #6d6d6d; stroke-dasharray: 2 3; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--rule); padding-top: .5rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  section.programme + section.programme { break-before: page; }
  table, figure { break-inside: avoid; }
  thead th { background: none; }
}
)css";

std::string row(std::string_view it, std::string_view en, const std::string& value) {
  return "<tr><th scope=\"row\">" + label(it, en) + "</th><td class=\"n\">" + markup_escape(value) +
         "</td></tr>\n";
}

std::string totals_table(const engine::Programme& p) {
  const Cents outstanding = p.issued_cents - p.redeemed_cents + p.refunded_cents - p.expired_cents;
  std::string s = "<table class=\"totals\"><tbody>\n";
  s += row("Stanziamento", "Budget", format_euro(p.budget_cents));
  s += row("Emesso sulle carte", "Issued to cards", format_euro(p.issued_cents));
  s += row("Speso nei negozi", "Redeemed at shops", format_euro(p.redeemed_cents));
  s += row("Rimborsato", "Refunded", format_euro(p.refunded_cents));
  s += row("In autorizzazione", "Held", format_euro(p.held_cents));
  s += row("In circolazione", "Outstanding", format_euro(outstanding));
  s += row("Scaduto", "Expired", format_euro(p.expired_cents));
  s += row("Non ancora emesso", "Not yet issued", format_euro(p.budget_cents - p.issued_cents));
  s += row("Carte", "Cards", count_text(p.card_count));
  return s + "</tbody></table>\n";
}

std::string shops_table(const ProgrammeReport& r) {
  if (r.top_shops.empty()) {
    return "<p class=\"none\">" + label("Nessuna spesa registrata.", "No redemptions yet.") +
           "</p>\n";
  }
  std::string s = "<table class=\"shops\"><thead><tr><th class=\"n\">#</th><th>" +
                  label("Negozio", "Shop") + "</th><th class=\"n\">" + label("Speso", "Redeemed") +
                  "</th><th class=\"n\">" + label("Operazioni", "Redemptions") +
                  "</th><th class=\"n\">" + label("Rimborsi", "Refunds") +
                  "</th></tr></thead><tbody>\n";
  std::size_t rank = 0;
  for (const ShopTotal& shop : r.top_shops) {
    s += "<tr><td class=\"n\">" + std::to_string(++rank) + "</td><td>" +
         markup_escape(shop.name.empty() ? shop.merchant : shop.name) + " <span class=\"id\">" +
         markup_escape(shop.merchant) + "</span></td><td class=\"n\">" +
         markup_escape(format_euro(shop.redeemed_cents)) + "</td><td class=\"n\">" +
         count_text(shop.redemptions) + "</td><td class=\"n\">" +
         markup_escape(format_euro(shop.refunded_cents)) + " (" + count_text(shop.refunds) +
         ")</td></tr>\n";
  }
  s += "</tbody></table>\n";
  if (r.shops_total > r.top_shops.size()) {
    s += "<p class=\"meta\">" +
         label("Primi " + std::to_string(r.top_shops.size()) + " di " +
                   std::to_string(r.shops_total) + " negozi.",
               "Top " + std::to_string(r.top_shops.size()) + " of " +
                   std::to_string(r.shops_total) + " shops.") +
         "</p>\n";
  }
  return s;
}

std::string cards_table(const CardCounts& c) {
  std::string s = "<table class=\"totals cards\"><tbody>\n";
  s += row("Attive", "Active", count_text(c.active));
  s += row("Bloccate", "Blocked", count_text(c.blocked));
  s += row("Revocate", "Revoked", count_text(c.revoked));
  s += row("Scadute", "Expired", count_text(c.expired));
  s += row("A saldo zero (attive o bloccate)", "Zero balance (active or blocked)",
           count_text(c.zero_balance));
  s += row("Totale", "Total", count_text(c.total));
  return s + "</tbody></table>\n";
}

std::string chart_figure(const ProgrammeReport& r) {
  if (r.series.empty()) {
    return "<p class=\"none\">" + label("Nessun movimento.", "No movements yet.") + "</p>\n";
  }
  return "<figure>" + chart_svg(r) + "<figcaption>" +
         label(r.weekly ? "Totali progressivi, per settimana (lunedì)."
                        : "Totali progressivi, per giorno (UTC).",
               r.weekly ? "Running totals, per week (Monday)." : "Running totals, per day (UTC).") +
         "</figcaption></figure>\n";
}

std::string programme_section(const ProgrammeReport& r) {
  const engine::Programme& p = r.programme;
  std::string s = "<section class=\"programme\">\n<h2>" + markup_escape(p.name) +
                  " <span class=\"id\">" + markup_escape(p.id) + "</span></h2>\n";
  s += "<p class=\"meta\">" + label("Validità", "Valid") + ": " +
       markup_escape(engine::format_day(p.valid_from_day)) + " – " +
       markup_escape(engine::format_day(p.valid_until_day)) + " · " +
       (p.status == engine::ProgrammeStatus::closed ? label("chiuso", "closed")
                                                    : label("aperto", "open")) +
       "</p>\n";
  s += "<h3>" + label("Totali", "Totals") + "</h3>\n" + totals_table(p);
  s += "<h3>" + label("Andamento", "Over time") + "</h3>\n" + chart_figure(r);
  s += "<h3>" + label("Negozi per importo speso", "Top shops by redeemed amount") + "</h3>\n" +
       shops_table(r);
  s += "<h3>" + label("Carte per stato", "Cards by status") + "</h3>\n" + cards_table(r.cards);
  return s + "</section>\n";
}

}  // namespace

std::string render_report_html(const Report& report) {
  const std::string generated = markup_escape(engine::format_time(report.generated_at_ms));
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Rapporto buoni spesa / Food voucher report</title>\n<style>";
  s += page_css;
  s += "</style>\n</head>\n<body>\n<header>\n<h1>" +
       label("Rapporto buoni spesa", "Food voucher report") + "</h1>\n<p class=\"meta\">" +
       label("Generato il", "Generated") + ": " + generated + " · " +
       label("Registro fino alla voce", "Ledger up to entry") + " " +
       std::to_string(report.head_seq) + "</p>\n</header>\n<main>\n";
  if (report.programmes.empty()) {
    s += "<p class=\"none\">" + label("Nessun programma.", "No programmes.") + "</p>\n";
  }
  for (const auto& p : report.programmes) s += programme_section(p);
  s += "</main>\n<footer>" +
       label("Importi in euro; dati dal registro firmato, letti in sola lettura.",
             "Amounts in euro; figures from the signed ledger, read-only.") +
       "</footer>\n</body>\n</html>\n";
  return s;
}

}  // namespace buoni::api
