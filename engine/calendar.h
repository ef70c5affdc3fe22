// Dates and times as text: "YYYY-MM-DD" days and RFC 3339 UTC timestamps.
// Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/model.h"

namespace buoni::engine {

// "2026-04-01"; nullopt for anything else, including impossible dates (02-30)
// and years outside 2000..2999.
[[nodiscard]] std::optional<Day> parse_day(std::string_view text);
[[nodiscard]] std::string format_day(Day day);
// "2026-04-01T09:30:00Z" (milliseconds are dropped; ".123" shown when non-zero).
[[nodiscard]] std::string format_time(TimeMs t_ms);

}  // namespace buoni::engine
