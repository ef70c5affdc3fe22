// The operators' and auditors' report (`buoni report --html`): the figures
// it shows, gathered from committed state and the ledger, and one
// self-contained HTML page drawn from them.
//
// ReportBuilder is fed programmes, shops, cards and ledger entries (in any
// order: the caller scans the store) and sums them; render_report_html()
// turns the result into a page with inline CSS and inline SVG charts: no
// script, no network resource, no external font. Every string that comes
// from data is escaped (markup_escape). Labels are Italian, each with its
// English subtitle.
//
// Pure: no I/O, no clock (the caller passes the generation time). Not
// thread-safe (one builder per thread); render_report_html is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/model.h"

namespace buoni::api {

// Running totals at the end of one day or week (the bucket starting `day`).
struct ReportPoint {
  engine::Day day = 0;
  engine::Cents issued_cents = 0;       // issue + load, since the start
  engine::Cents redeemed_cents = 0;     // redemptions + captures, since the start
  engine::Cents outstanding_cents = 0;  // issued - redeemed + refunded - expired
  engine::Cents expired_cents = 0;
};

// Money moved on one day (entry times, UTC).
struct DayFlow {
  engine::Cents issued = 0;
  engine::Cents redeemed = 0;
  engine::Cents refunded = 0;
  engine::Cents expired = 0;
};

struct ShopTotal {
  std::string merchant;  // id
  std::string name;      // "" when the shop record was not given
  engine::Cents redeemed_cents = 0;
  std::int64_t redemptions = 0;  // redemptions and captures
  engine::Cents refunded_cents = 0;
  std::int64_t refunds = 0;
};

struct CardCounts {
  std::int64_t active = 0;
  std::int64_t blocked = 0;
  std::int64_t revoked = 0;
  std::int64_t expired = 0;
  std::int64_t zero_balance = 0;  // active or blocked cards with nothing available or held
  std::int64_t total = 0;
};

struct ProgrammeReport {
  engine::Programme programme;       // its stored totals
  std::vector<ReportPoint> series;   // oldest first; starts with a zero point
  bool weekly = false;               // buckets are ISO weeks (Monday) rather than days
  std::vector<ShopTotal> top_shops;  // by redeemed amount, largest first
  std::size_t shops_total = 0;       // shops with any redemption (top_shops may be fewer)
  CardCounts cards;
};

struct Report {
  engine::TimeMs generated_at_ms = 0;
  std::uint64_t head_seq = 0;  // the last ledger entry the report read
  std::vector<ProgrammeReport> programmes;
};

// Series longer than this many days are drawn per week.
inline constexpr engine::Day report_daily_days_max = 120;
// Shops listed per programme.
inline constexpr std::size_t report_top_shops = 10;

class ReportBuilder {
 public:
  // The programmes to report on; everything about other programmes is ignored.
  explicit ReportBuilder(std::vector<engine::Programme> programmes);
  void add_merchant(const engine::Merchant& merchant);
  void add_card(const engine::Card& card);
  void add_entry(const engine::Entry& entry);
  [[nodiscard]] Report finish(engine::TimeMs generated_at_ms, std::uint64_t head_seq) const;

 private:
  struct Sums {
    std::map<engine::Day, DayFlow> days;
    std::map<std::string, ShopTotal> shops;
    CardCounts cards;
  };
  [[nodiscard]] ProgrammeReport programme_report(const engine::Programme& p,
                                                 const Sums& sums) const;
  std::vector<engine::Programme> programmes_;
  std::map<std::string, Sums> sums_;               // by programme id
  std::map<std::string, std::string> shop_names_;  // id -> name
};

// The series of `days` (flows per day) as running totals, per day or, past
// report_daily_days_max days, per week. Exposed for tests.
[[nodiscard]] std::vector<ReportPoint> report_series(const std::map<engine::Day, DayFlow>& days,
                                                     bool& weekly);

// "1.234,56 €" (Italian grouping and decimal comma).
[[nodiscard]] std::string format_euro(engine::Cents cents);

// The whole page: <!DOCTYPE html> ... </html>.
[[nodiscard]] std::string render_report_html(const Report& report);

}  // namespace buoni::api
