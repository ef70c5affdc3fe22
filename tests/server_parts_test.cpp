// Tests for the server's parts that need no socket: the Prometheus registry
// (text format, cumulative buckets, counts under concurrent recording), the
// engine's writer histograms, the per-client rate limiter (pinned time), and
// the access log with its masking of card numbers and tokens.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/access_log.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "crypto/card_number.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "crypto/token.h"
#include "engine/clock.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/memory_store.h"

namespace {

using buoni::api::AccessLog;
using buoni::api::AccessRecord;
using buoni::api::LogLevel;
using buoni::api::mask_target;
using buoni::api::Metrics;
using buoni::api::RateLimiter;
using buoni::engine::EngineStats;

// ---- exposition parsing ----------------------------------------------------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses `name{k="v",...} value` (label values unescaped); REQUIREs the shape.
Sample parse_sample(const std::string& line) {
  Sample s;
  std::size_t i = 0;
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':';
  };
  while (i < line.size() && name_char(line[i])) s.name += line[i++];
  REQUIRE_MESSAGE(!s.name.empty(), line);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::string key, value;
      while (i < line.size() && name_char(line[i])) key += line[i++];
      REQUIRE_MESSAGE(!key.empty(), line);
      REQUIRE_MESSAGE(line.compare(i, 2, "=\"") == 0, line);
      i += 2;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          REQUIRE(i + 1 < line.size());
          char e = line[i + 1];
          REQUIRE_MESSAGE((e == '\\' || e == '"' || e == 'n'), line);
          value += e == 'n' ? '\n' : e;
          i += 2;
        } else {
          value += line[i++];
        }
      }
      REQUIRE_MESSAGE(i < line.size(), line);
      ++i;  // closing quote
      s.labels[key] = value;
      if (i < line.size() && line[i] == ',') ++i;
    }
    REQUIRE_MESSAGE(i < line.size(), line);
    ++i;  // '}'
  }
  REQUIRE_MESSAGE((i < line.size() && line[i] == ' '), line);
  std::string value = line.substr(i + 1);
  REQUIRE_MESSAGE(!value.empty(), line);
  if (value == "+Inf") {
    s.value = 1e308 * 10;
  } else {
    std::size_t used = 0;
    s.value = std::stod(value, &used);
    REQUIRE_MESSAGE(used == value.size(), line);
  }
  return s;
}

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family -> TYPE
};

// Every line is a HELP, a TYPE or a sample; every sample belongs to a family
// declared by TYPE before it.
Exposition parse_exposition(const std::string& text) {
  Exposition e;
  REQUIRE((!text.empty() && text.back() == '\n'));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE_MESSAGE(!line.empty(), "empty line in the exposition");
    if (line.starts_with("# HELP ")) continue;
    if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string family, type;
      words >> family >> type;
      REQUIRE_MESSAGE((type == "counter" || type == "gauge" || type == "histogram"), line);
      REQUIRE_MESSAGE(e.types.count(family) == 0, "TYPE twice: " << line);
      e.types[family] = type;
      continue;
    }
    REQUIRE_MESSAGE(line[0] != '#', line);
    Sample s = parse_sample(line);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string f = s.name.substr(0, s.name.size() - std::string(suffix).size());
      if (s.name.ends_with(suffix) && e.types.count(f) && e.types[f] == "histogram") family = f;
    }
    REQUIRE_MESSAGE(e.types.count(family) == 1, "sample without TYPE: " << line);
    e.samples.push_back(std::move(s));
  }
  return e;
}

// The samples named `name` whose labels include `want`.
std::vector<Sample> find(const Exposition& e, const std::string& name,
                         const std::map<std::string, std::string>& want = {}) {
  std::vector<Sample> out;
  for (const Sample& s : e.samples) {
    if (s.name != name) continue;
    bool all = std::all_of(want.begin(), want.end(), [&s](const auto& kv) {
      auto it = s.labels.find(kv.first);
      return it != s.labels.end() && it->second == kv.second;
    });
    if (all) out.push_back(s);
  }
  return out;
}

double value_of(const Exposition& e, const std::string& name,
                const std::map<std::string, std::string>& want = {}) {
  auto found = find(e, name, want);
  REQUIRE_MESSAGE(found.size() == 1, name << ": " << found.size() << " samples");
  return found[0].value;
}

// Buckets of one histogram series: le ascending by position, cumulative,
// ending in +Inf equal to _count.
void check_histogram(const Exposition& e, const std::string& name,
                     const std::map<std::string, std::string>& want = {}) {
  auto buckets = find(e, name + "_bucket", want);
  REQUIRE(buckets.size() >= 2);
  double previous_le = -1, previous_count = 0;
  for (const Sample& b : buckets) {
    REQUIRE(b.labels.count("le") == 1);
    double le = b.labels.at("le") == "+Inf" ? 1e308 * 10 : std::stod(b.labels.at("le"));
    CHECK(le > previous_le);
    CHECK(b.value >= previous_count);
    previous_le = le;
    previous_count = b.value;
  }
  CHECK(buckets.back().labels.at("le") == "+Inf");
  CHECK(buckets.back().value == value_of(e, name + "_count", want));
  CHECK(value_of(e, name + "_sum", want) >= 0);
}

}  // namespace

// ---- metrics ---------------------------------------------------------------

TEST_CASE("metrics: an empty registry renders a valid exposition") {
  Metrics m;
  Exposition e = parse_exposition(m.render(EngineStats{}, false));
  CHECK(e.types.at("http_requests_total") == "counter");
  CHECK(e.types.at("http_request_duration_seconds") == "histogram");
  CHECK(e.types.at("buoni_writer_batch_size") == "histogram");
  CHECK(e.types.at("buoni_writer_commit_seconds") == "histogram");
  CHECK(e.types.at("buoni_engine_failed") == "gauge");
  CHECK(e.types.at("buoni_connections_open") == "gauge");
  CHECK(e.types.at("buoni_connections_total") == "counter");
  CHECK(e.types.at("buoni_rate_limited_total") == "counter");
  CHECK(value_of(e, "buoni_redemptions_total") == 0);
  CHECK(value_of(e, "buoni_engine_failed") == 0);
  check_histogram(e, "buoni_writer_batch_size");
  check_histogram(e, "buoni_writer_commit_seconds");
}

TEST_CASE("metrics: requests, buckets, redemptions, connections, failure gauge") {
  Metrics m;
  m.record_request("/v1/cards/{card}", 200, 300);         // 0.3 ms
  m.record_request("/v1/cards/{card}", 200, 7'000);       // 7 ms
  m.record_request("/v1/cards/{card}", 404, 20'000'000);  // 20 s: above every bound
  m.record_request("", 404, 100);
  m.record_redemption(1250);
  m.record_redemption(50);
  m.record_rate_limited("public");
  m.record_rate_limited("public");
  m.connection_opened();
  m.connection_opened();
  m.connection_closed();
  Exposition e = parse_exposition(m.render(EngineStats{}, true));
  const std::map<std::string, std::string> card{{"route", "/v1/cards/{card}"}};
  CHECK(value_of(e, "http_requests_total", {{"route", "/v1/cards/{card}"}, {"status", "200"}}) ==
        2);
  CHECK(value_of(e, "http_requests_total", {{"route", "/v1/cards/{card}"}, {"status", "404"}}) ==
        1);
  CHECK(value_of(e, "http_requests_total", {{"route", "unmatched"}, {"status", "404"}}) == 1);
  check_histogram(e, "http_request_duration_seconds", card);
  check_histogram(e, "http_request_duration_seconds", {{"route", "unmatched"}});
  CHECK(value_of(e, "http_request_duration_seconds_count", card) == 3);
  CHECK(value_of(e, "http_request_duration_seconds_bucket",
                 {{"route", "/v1/cards/{card}"}, {"le", "0.0005"}}) == 1);
  CHECK(value_of(e, "http_request_duration_seconds_bucket",
                 {{"route", "/v1/cards/{card}"}, {"le", "0.01"}}) == 2);
  CHECK(value_of(e, "http_request_duration_seconds_bucket",
                 {{"route", "/v1/cards/{card}"}, {"le", "10"}}) == 2);
  CHECK(value_of(e, "http_request_duration_seconds_bucket",
                 {{"route", "/v1/cards/{card}"}, {"le", "+Inf"}}) == 3);
  CHECK(value_of(e, "http_request_duration_seconds_sum", card) == doctest::Approx(20.0073));
  CHECK(value_of(e, "buoni_redemptions_total") == 2);
  CHECK(value_of(e, "buoni_redeemed_cents_total") == 1300);
  CHECK(value_of(e, "buoni_rate_limited_total", {{"limiter", "public"}}) == 2);
  CHECK(value_of(e, "buoni_connections_open") == 1);
  CHECK(value_of(e, "buoni_connections_total") == 2);
  CHECK(value_of(e, "buoni_engine_failed") == 1);
}

TEST_CASE("metrics: label values are escaped") {
  CHECK(buoni::api::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  Metrics m;
  m.record_request("/odd\"route\\\n", 500, 1);
  Exposition e = parse_exposition(m.render(EngineStats{}, false));
  CHECK(value_of(e, "http_requests_total", {{"route", "/odd\"route\\\n"}, {"status", "500"}}) == 1);
}

TEST_CASE("metrics: value formatting") {
  using buoni::api::format_metric_value;
  CHECK(format_metric_value(0) == "0");
  CHECK(format_metric_value(1024) == "1024");
  CHECK(format_metric_value(0.0005) == "0.0005");
  CHECK(format_metric_value(2.5) == "2.5");
  CHECK(format_metric_value(1e308 * 10) == "+Inf");
}

TEST_CASE("metrics: route labels are bounded") {
  Metrics m;
  for (std::size_t i = 0; i < buoni::limits::metrics_routes_max + 10; ++i) {
    m.record_request("/r" + std::to_string(i), 200, 1);
  }
  Exposition e = parse_exposition(m.render(EngineStats{}, false));
  CHECK(find(e, "http_requests_total").size() == buoni::limits::metrics_routes_max + 1);
  CHECK(value_of(e, "http_requests_total", {{"route", "other"}}) == 10);
}

TEST_CASE("metrics: counts are exact under 8 threads recording at once") {
  Metrics m;
  constexpr int threads = 8, per_thread = 5000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&m, t] {
      const std::array<std::string, 3> routes{"/v1/redemptions", "/v1/cards/{card}", ""};
      for (int i = 0; i < per_thread; ++i) {
        m.record_request(routes[static_cast<std::size_t>(i % 3)], i % 2 ? 201 : 402,
                         (i % 7) * 1000);
        if (i % 5 == 0) m.record_redemption(100);
        m.connection_opened();
        m.connection_closed();
        if (i % 1000 == 0) static_cast<void>(m.render(EngineStats{}, t % 2 == 0));
      }
    });
  }
  for (auto& th : pool) th.join();
  Exposition e = parse_exposition(m.render(EngineStats{}, false));
  double total = 0;
  for (const Sample& s : find(e, "http_requests_total")) total += s.value;
  CHECK(total == threads * per_thread);
  double counted = 0;
  for (const char* route : {"/v1/redemptions", "/v1/cards/{card}", "unmatched"}) {
    check_histogram(e, "http_request_duration_seconds", {{"route", route}});
    counted += value_of(e, "http_request_duration_seconds_count", {{"route", route}});
  }
  CHECK(counted == threads * per_thread);
  CHECK(value_of(e, "buoni_redemptions_total") == threads * per_thread / 5);
  CHECK(value_of(e, "buoni_redeemed_cents_total") == threads * per_thread / 5 * 100);
  CHECK(value_of(e, "buoni_connections_open") == 0);
  CHECK(value_of(e, "buoni_connections_total") == threads * per_thread);
}

TEST_CASE("engine: the writer records batch sizes and commit latency") {
  buoni::engine::MemoryStore store;
  buoni::engine::ManualClock clock(1'772'359'200'000);  // 2026-03-01T10:00:00Z
  buoni::SeededRandom random(7);
  buoni::SigningKey key = buoni::SigningKey::generate(1);
  auto opened = buoni::engine::Engine::open(store, key, clock, random);
  REQUIRE(opened.ok());
  auto engine = std::move(opened).value();
  for (int i = 0; i < 3; ++i) {
    buoni::engine::CreateProgramme c;
    c.id = "p" + std::to_string(i);
    c.name = "Programme";
    c.budget_cents = 1000;
    c.valid_from_day = 20513;
    c.valid_until_day = 20543;
    auto r = engine->execute({buoni::engine::Caller::admin(), "", c});
    REQUIRE(r.ok());
  }
  EngineStats stats = engine->stats();
  CHECK(stats.batch_size.count == stats.batches);
  CHECK(stats.batch_size.sum == static_cast<double>(stats.commands));
  CHECK(stats.commands == 3);
  CHECK(stats.commit_seconds.count == 3);  // each batch wrote
  std::uint64_t in_buckets = 0;
  for (auto c : stats.commit_seconds.counts) in_buckets += c;
  CHECK(in_buckets == 3);
  CHECK(stats.batch_size.counts[0] == 3);  // execute() waits: one command per batch
  Metrics m;
  Exposition e = parse_exposition(m.render(stats, engine->failed()));
  check_histogram(e, "buoni_writer_batch_size");
  check_histogram(e, "buoni_writer_commit_seconds");
  CHECK(value_of(e, "buoni_writer_batch_size_count") == 3);
  CHECK(value_of(e, "buoni_writer_batch_size_bucket", {{"le", "1"}}) == 3);
  CHECK(value_of(e, "buoni_writer_commit_seconds_count") == 3);
}

TEST_CASE("histogram: bucket edges are inclusive upper bounds") {
  buoni::engine::Histogram<3> h{{1, 2, 4}};
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 4.5, 100.0}) h.record(v);
  CHECK(h.counts == std::array<std::uint64_t, 4>{2, 2, 1, 2});
  CHECK(h.count == 7);
  CHECK(h.sum == doctest::Approx(113.5));
}

// ---- rate limiter ----------------------------------------------------------

TEST_CASE("rate limit: a burst, then refusal, then refill with time") {
  RateLimiter limiter(10, 20);  // 10/s, burst 20
  const std::int64_t t0_ms = 1'000'000;
  for (int i = 0; i < 20; ++i) CHECK(limiter.allow("203.0.113.7", t0_ms));
  CHECK_FALSE(limiter.allow("203.0.113.7", t0_ms));
  CHECK_FALSE(limiter.would_allow("203.0.113.7", t0_ms));
  CHECK_FALSE(limiter.allow("203.0.113.7", t0_ms + 50));  // half a token
  CHECK(limiter.allow("203.0.113.7", t0_ms + 110));       // one token back
  CHECK_FALSE(limiter.allow("203.0.113.7", t0_ms + 110));
  // A long pause refills up to the burst, not beyond.
  const std::int64_t later_ms = t0_ms + 3'600'000;
  for (int i = 0; i < 20; ++i) CHECK(limiter.allow("203.0.113.7", later_ms));
  CHECK_FALSE(limiter.allow("203.0.113.7", later_ms));
}

TEST_CASE("rate limit: clients are separate; time going backwards refills nothing") {
  RateLimiter limiter(1, 2);
  CHECK(limiter.allow("a", 5000));
  CHECK(limiter.allow("a", 5000));
  CHECK_FALSE(limiter.allow("a", 5000));
  CHECK(limiter.allow("b", 5000));
  CHECK(limiter.allow("b", 5000));
  CHECK_FALSE(limiter.allow("a", 1000));  // clock went back
  CHECK_FALSE(limiter.allow("a", 5999));
  CHECK(limiter.allow("a", 6001));
  CHECK(limiter.size() == 2);
}

TEST_CASE("rate limit: would_allow takes nothing and tracks nobody (failed look-ups)") {
  RateLimiter failed_lookups(1, 10);
  for (int i = 0; i < 100; ++i) CHECK(failed_lookups.would_allow("x", 0));
  CHECK(failed_lookups.size() == 0);
  for (int i = 0; i < 10; ++i) CHECK(failed_lookups.allow("x", 0));  // ten failures
  CHECK_FALSE(failed_lookups.would_allow("x", 0));
  CHECK_FALSE(failed_lookups.would_allow("x", 999));
  CHECK(failed_lookups.would_allow("x", 1000));
  CHECK(failed_lookups.would_allow("x", 1000));  // still not taken
}

TEST_CASE("rate limit: the table is bounded and forgets the stalest client") {
  RateLimiter limiter(1, 1, 3);
  CHECK(limiter.allow("a", 0));
  CHECK(limiter.allow("b", 1));
  CHECK(limiter.allow("c", 2));
  CHECK_FALSE(limiter.allow("a", 3));  // a is now the most recent; b the stalest
  CHECK(limiter.allow("d", 4));        // evicts b
  CHECK(limiter.size() == 3);
  CHECK_FALSE(limiter.allow("a", 5));  // a kept its (empty) bucket
  CHECK_FALSE(limiter.allow("c", 5));  // c kept its bucket
  CHECK(limiter.allow("b", 6));        // b was forgotten: a full bucket again (evicts d)
  CHECK(limiter.size() == 3);
  CHECK(limiter.allow("d", 7));  // d was evicted
  // Many clients: the size never passes the bound.
  for (int i = 0; i < 1000; ++i) CHECK(limiter.allow("ip" + std::to_string(i), 100 + i));
  CHECK(limiter.size() == 3);
}

TEST_CASE("rate limit: concurrent clients never get more than their burst") {
  RateLimiter limiter(1, 50, 64);
  std::vector<std::thread> pool;
  std::array<int, 8> allowed{};
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&limiter, &allowed, t] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter.allow("client" + std::to_string(i % 4), 0)) allowed[t] += 1;
      }
    });
  }
  for (auto& th : pool) th.join();
  int total = 0;
  for (int a : allowed) total += a;
  CHECK(total == 4 * 50);
}

// ---- access log and masking -------------------------------------------------

namespace {

buoni::SigningKey test_key() {
  return buoni::SigningKey::from_seed(1, std::array<std::uint8_t, 32>{42});
}

std::string percent_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789ABCDEF";
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// No run of `window` characters of `secret` (its symbols, separators
// removed) appears in `text`, its separators removed too.
bool leaks(const std::string& text, const std::string& secret, std::size_t window = 8) {
  auto strip = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c != '-' && c != ' ') out += c;
    }
    return out;
  };
  std::string t = strip(text), s = strip(secret);
  for (std::size_t i = 0; i + window <= s.size(); ++i) {
    if (t.find(s.substr(i, window)) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("mask_target: real tokens never appear, in any form or place") {
  buoni::SeededRandom random(99);
  const buoni::SigningKey key = test_key();
  for (int round = 0; round < 50; ++round) {
    buoni::CardId card = buoni::CardId::random(random);
    const std::string qr = buoni::make_token(key, card, 21000 + round);
    const std::string link = buoni::make_token_link(key, card, 21000 + round);
    REQUIRE(qr.size() == buoni::kTokenQrTextSize);
    REQUIRE(link.size() == buoni::kTokenLinkSize);
    const std::string qr_encoded = percent_encode(qr);
    std::string qr_lower_escapes = qr_encoded;  // %3a, lower-case hex
    std::transform(qr_lower_escapes.begin(), qr_lower_escapes.end(), qr_lower_escapes.begin(),
                   [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c + 32) : c; });
    const std::vector<std::string> targets{
        "/v1/public/cards/" + qr_encoded,
        "/v1/public/cards/" + qr_lower_escapes,
        "/v1/cards/" + qr_encoded + "/block",
        "/v1/public/cards/" + qr,  // raw, as a careless client sends it
        "/c/" + link,
        "/c/" + link + "?lang=it",
        "/v1/cards?card=" + qr_encoded + "&x=1",
        "/v1/cards?card=" + link,
    };
    for (const std::string& t : targets) {
      std::string masked = mask_target(t);
      CHECK_MESSAGE(!leaks(masked, qr), t << " -> " << masked);
      CHECK_MESSAGE(!leaks(masked, qr_encoded), t << " -> " << masked);
      CHECK_MESSAGE(!leaks(masked, link), t << " -> " << masked);
    }
    CHECK(mask_target("/v1/cards/" + qr_encoded + "/block").ends_with("/block"));
    CHECK(mask_target("/c/" + link + "?lang=it").ends_with("?lang=it"));
    CHECK(mask_target("/c/" + link) == "/c/***" + link.substr(link.size() - 4));
    CHECK(mask_target("/v1/public/cards/" + qr_encoded).starts_with("/v1/public/cards/BS1:***"));
  }
}

TEST_CASE("mask_target: real card numbers keep only their last 4 symbols") {
  buoni::SeededRandom random(5);
  for (int round = 0; round < 50; ++round) {
    buoni::CardId card = buoni::CardId::random(random);
    const std::string number = buoni::format_card_number(card);  // XXXX-XXXX-XXXX-XXXX-C
    const std::string id = buoni::format_card_id(card);          // 16 symbols
    std::string lower = number;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    const std::string spaced = number.substr(0, 4) + "%20" + number.substr(5, 4) + "%20" +
                               number.substr(10, 4) + "%20" + number.substr(15);
    for (const std::string& t :
         {"/v1/cards/" + number, "/v1/cards/" + id, "/v1/cards/" + id + "/loads",
          "/v1/cards/" + lower, "/v1/cards/" + spaced, "/v1/x?card=" + number + "&limit=5"}) {
      std::string masked = mask_target(t);
      CHECK_MESSAGE(!leaks(masked, id, 5), t << " -> " << masked);
      CHECK_MESSAGE(masked.find(id.substr(12)) != std::string::npos, t << " -> " << masked);
    }
    CHECK(mask_target("/v1/cards/" + number) == "/v1/cards/****-****-****-" + number.substr(15));
    CHECK(mask_target("/v1/cards/" + id + "/block") ==
          "/v1/cards/************" + id.substr(12) + "/block");
  }
}

TEST_CASE("mask_target: ordinary targets are unchanged") {
  for (const char* t : {"/", "/healthz", "/readyz", "/metrics", "/v1/redemptions",
                        "/v1/authorizations/hd_12/capture", "/v1/programmes/food-2026/close",
                        "/v1/merchants?after=shop-1&limit=100",
                        "/v1/transactions?from=2026-03-01&to=2026-03-31&limit=50",
                        "/v1/cards/x/unlock-pin", "/v1/refunds", "", "/a//b?&=", "/%41%42"}) {
    CHECK(mask_target(t) == t);
  }
  CHECK(mask_target("/x?key=mk_abcdefghijkl") == "/x?key=mk_***");
}

TEST_CASE("access log: one JSON object per line, masked target, no secrets") {
  std::ostringstream out;
  buoni::engine::ManualClock clock(1'775'035'800'123);  // 2026-04-01T09:30:00.123Z
  AccessLog log(out, &clock);
  buoni::SeededRandom random(1);
  const std::string number = buoni::format_card_number(buoni::CardId::random(random));
  AccessRecord r;
  r.remote = "203.0.113.7";
  r.method = "GET";
  r.route = "/v1/cards/{card}";
  const std::string target = "/v1/cards/" + number;
  r.target = target;
  r.status = 200;
  r.duration_us = 812;
  r.bytes = 341;
  r.request_id = "r-42";
  log.log_request(r);
  r.status = 503;
  r.method = "G\"ET\n\xff";
  log.log_request(r);
  log.log_event(LogLevel::info, "listening",
                {{"address", "127.0.0.1:8080"}, {"threads", 4}, {"level", "overridden?"}});
  std::istringstream in(out.str());
  std::string line;
  std::vector<boost::json::object> lines;
  while (std::getline(in, line)) {
    boost::json::value v = boost::json::parse(line);
    REQUIRE(v.is_object());
    lines.push_back(v.as_object());
  }
  REQUIRE(lines.size() == 3);
  const auto& a = lines[0];
  CHECK(a.at("ts").as_string() == "2026-04-01T09:30:00.123Z");
  CHECK(a.at("level").as_string() == "info");
  CHECK(a.at("event").as_string() == "http_request");
  CHECK(a.at("remote").as_string() == "203.0.113.7");
  CHECK(a.at("method").as_string() == "GET");
  CHECK(a.at("route").as_string() == "/v1/cards/{card}");
  CHECK(a.at("target").as_string() == "/v1/cards/****-****-****-" + number.substr(15));
  CHECK(a.at("status").as_int64() == 200);
  CHECK(a.at("duration_us").as_int64() == 812);
  CHECK(a.at("bytes").to_number<std::int64_t>() == 341);
  CHECK(a.at("request_id").as_string() == "r-42");
  CHECK(lines[1].at("level").as_string() == "error");
  CHECK(lines[1].at("method").as_string() == "G\"ET%0A%FF");
  CHECK(lines[2].at("event").as_string() == "listening");
  CHECK(lines[2].at("level").as_string() == "info");
  CHECK(lines[2].at("address").as_string() == "127.0.0.1:8080");
  CHECK(lines[2].at("threads").as_int64() == 4);
  CHECK(out.str().find(number.substr(0, 4) + "-" + number.substr(5, 4)) == std::string::npos);
}

TEST_CASE("access log: timestamps") {
  using buoni::api::format_rfc3339_ms;
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1'775'035'800'123) == "2026-04-01T09:30:00.123Z");
  CHECK(format_rfc3339_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_rfc3339_ms(951'782'400'000) == "2000-02-29T00:00:00.000Z");
}

TEST_CASE("access log: lines from 8 threads never interleave") {
  std::ostringstream out;
  AccessLog log(out);
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&log, t] {
      for (int i = 0; i < 200; ++i) {
        log.log_event(LogLevel::debug, "tick", {{"thread", t}, {"i", i}});
      }
    });
  }
  for (auto& th : pool) th.join();
  std::istringstream in(out.str());
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    boost::json::value v = boost::json::parse(line);
    REQUIRE(v.is_object());
    ++count;
  }
  CHECK(count == 8 * 200);
}
