#include "engine/calendar.h"

#include <chrono>
#include <cstdio>

namespace buoni::engine {

namespace {
bool digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}
int number(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}
}  // namespace

std::optional<Day> parse_day(std::string_view t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  if (!digits(t.substr(0, 4)) || !digits(t.substr(5, 2)) || !digits(t.substr(8, 2))) {
    return std::nullopt;
  }
  using namespace std::chrono;
  int y = number(t.substr(0, 4));
  if (y < 2000 || y > 2999) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(number(t.substr(5, 2)))},
                     day{static_cast<unsigned>(number(t.substr(8, 2)))}};
  if (!ymd.ok()) return std::nullopt;
  return static_cast<Day>(sys_days(ymd).time_since_epoch().count());
}

std::string format_day(Day d) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{days{d}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string format_time(TimeMs t_ms) {
  Day d = day_of(t_ms);
  TimeMs in_day_ms = t_ms - static_cast<TimeMs>(d) * ms_per_day;
  auto s = static_cast<int>(in_day_ms / 1000);
  auto ms = static_cast<int>(in_day_ms % 1000);
  char buf[40];
  if (ms == 0) {
    std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02dZ", format_day(d).c_str(), s / 3600,
                  (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d.%03dZ", format_day(d).c_str(), s / 3600,
                  (s / 60) % 60, s % 60, ms);
  }
  return buf;
}

}  // namespace buoni::engine
