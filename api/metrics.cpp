#include "api/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "engine/limits.h"

namespace buoni::api {

namespace {

constexpr std::size_t rate_limiters_max = 8;

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// name{labels} value\n; `labels` is the inside of the braces, "" for none.
void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += format_metric_value(value);
  out += '\n';
}

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += escape_label_value(value);
  out += '"';
  return out;
}

// The _bucket (cumulative, ending in le="+Inf"), _sum and _count lines of one
// histogram; `labels` are its other labels ("" for none).
template <std::size_t N>
void histogram_samples(std::string& out, std::string_view name, const std::string& labels,
                       const engine::Histogram<N>& h) {
  const std::string bucket = std::string(name) + "_bucket";
  const std::string prefix = labels.empty() ? std::string() : labels + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += h.counts[i];
    sample(out, bucket, prefix + label("le", format_metric_value(h.bounds[i])),
           static_cast<double>(cumulative));
  }
  cumulative += h.counts[N];
  sample(out, bucket, prefix + "le=\"+Inf\"", static_cast<double>(cumulative));
  sample(out, std::string(name) + "_sum", labels, h.sum);
  sample(out, std::string(name) + "_count", labels, static_cast<double>(h.count));
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.0e15) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  // Plain decimals ("0.0005", not "5e-04") where that stays short.
  const double magnitude = std::fabs(value);
  const auto format =
      magnitude >= 1e-9 && magnitude < 1e15 ? std::chars_format::fixed : std::chars_format::general;
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value, format);
  if (ec != std::errc()) return "NaN";  // cannot happen: 64 chars hold these
  return std::string(buf.data(), end);
}

void Metrics::record_request(std::string_view route, unsigned status, std::int64_t duration_us) {
  if (route.empty()) route = "unmatched";
  const double seconds = static_cast<double>(duration_us < 0 ? 0 : duration_us) / 1e6;
  std::lock_guard lock(mutex_);
  auto it = routes_.find(route);
  if (it == routes_.end()) {
    if (routes_.size() >= limits::metrics_routes_max) route = "other";
    it = routes_.try_emplace(std::string(route)).first;
  }
  RouteStats& r = it->second;
  r.duration.record(seconds);
  for (StatusCount& s : r.statuses) {
    if (s.status == status) {
      s.count += 1;
      return;
    }
  }
  r.statuses.push_back({status, 1});
}

void Metrics::record_redemption(std::int64_t amount_cents) {
  redemptions_.fetch_add(1, std::memory_order_relaxed);
  if (amount_cents > 0) {
    redeemed_cents_.fetch_add(static_cast<std::uint64_t>(amount_cents), std::memory_order_relaxed);
  }
}

void Metrics::record_rate_limited(std::string_view limiter) {
  std::lock_guard lock(mutex_);
  for (auto& [name, count] : rate_limited_) {
    if (name == limiter) {
      count += 1;
      return;
    }
  }
  if (rate_limited_.size() >= rate_limiters_max) limiter = "other";
  for (auto& [name, count] : rate_limited_) {
    if (name == limiter) {
      count += 1;
      return;
    }
  }
  rate_limited_.emplace_back(std::string(limiter), 1);
}

void Metrics::connection_opened() {
  connections_open_.fetch_add(1, std::memory_order_relaxed);
  connections_total_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::connection_closed() {
  connections_open_.fetch_sub(1, std::memory_order_relaxed);
}

void Metrics::render_requests(std::string& out) const {
  std::map<std::string, RouteStats, std::less<>> routes;
  std::vector<std::pair<std::string, std::uint64_t>> limited;
  {
    std::lock_guard lock(mutex_);
    routes = routes_;
    limited = rate_limited_;
  }
  header(out, "http_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (auto& [route, stats] : routes) {
    std::sort(stats.statuses.begin(), stats.statuses.end(),
              [](const StatusCount& a, const StatusCount& b) { return a.status < b.status; });
    for (const StatusCount& s : stats.statuses) {
      sample(out, "http_requests_total",
             label("route", route) + "," + label("status", std::to_string(s.status)),
             static_cast<double>(s.count));
    }
  }
  header(out, "http_request_duration_seconds", "histogram",
         "Time from reading a request to handing its answer to the socket, by route.");
  for (const auto& [route, stats] : routes) {
    histogram_samples(out, "http_request_duration_seconds", label("route", route), stats.duration);
  }
  header(out, "buoni_rate_limited_total", "counter",
         "Requests refused with 429 rate_limited, by limiter.");
  for (const auto& [name, count] : limited) {
    sample(out, "buoni_rate_limited_total", label("limiter", name), static_cast<double>(count));
  }
}

std::string Metrics::render(const engine::EngineStats& engine_stats, bool engine_failed) const {
  std::string out;
  out.reserve(16 * 1024);
  render_requests(out);
  auto plain = [&out](std::string_view name, std::string_view type, std::string_view help,
                      double value) {
    header(out, name, type, help);
    sample(out, name, "", value);
  };
  plain("buoni_redemptions_total", "counter", "Approved redemptions and captures.",
        static_cast<double>(redemptions_.load(std::memory_order_relaxed)));
  plain("buoni_redeemed_cents_total", "counter", "Cents of approved redemptions and captures.",
        static_cast<double>(redeemed_cents_.load(std::memory_order_relaxed)));
  plain("buoni_connections_open", "gauge", "Client connections open now.",
        static_cast<double>(connections_open_.load(std::memory_order_relaxed)));
  plain("buoni_connections_total", "counter", "Client connections accepted.",
        static_cast<double>(connections_total_.load(std::memory_order_relaxed)));
  plain("buoni_engine_failed", "gauge",
        "1 once the engine stopped after a failed write (restart to recover), else 0.",
        engine_failed ? 1 : 0);
  header(out, "buoni_writer_batch_size", "histogram", "Commands per committed writer batch.");
  histogram_samples(out, "buoni_writer_batch_size", "", engine_stats.batch_size);
  header(out, "buoni_writer_commit_seconds", "histogram",
         "Seconds one durable batch write (Store::write, fsync) took.");
  histogram_samples(out, "buoni_writer_commit_seconds", "", engine_stats.commit_seconds);
  return out;
}

}  // namespace buoni::api
