// What the server does around handle_request (api/server_internal.h).
#include <boost/json.hpp>

#include <atomic>

#include "api/access_log.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "api/render.h"
#include "api/server_internal.h"

namespace buoni::api::detail {

// ---- HandlerPool ----

HandlerPool::HandlerPool(std::size_t threads, std::size_t queue_max) : queue_max_(queue_max) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

HandlerPool::~HandlerPool() {
  stop();
}

bool HandlerPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= queue_max_) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void HandlerPool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    job();
    job = nullptr;  // release what it held before counting it done
    std::lock_guard lock(mutex_);
    --running_;
  }
}

bool HandlerPool::idle() const {
  std::lock_guard lock(mutex_);
  return queue_.empty() && running_ == 0;
}

void HandlerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace buoni::api::detail

namespace buoni::api::detail {

struct Front::State {
  State(const ServerOptions& o)
      : public_limit(o.public_rate_per_s, o.public_burst),
        lookup_limit(o.failed_lookup_rate_per_s, o.failed_lookup_burst),
        sign_in_limit(o.sign_in_rate_per_s, o.sign_in_burst) {
    if (o.log) log.emplace(*o.log);
  }
  Metrics metrics;
  RateLimiter public_limit;   // /v1/public/..., /c/...
  RateLimiter lookup_limit;   // answers unknown_card / invalid_card
  RateLimiter sign_in_limit;  // POST /v1/sessions, right or wrong
  std::optional<AccessLog> log;
  std::atomic<std::uint64_t> next_request_id{1};
};

namespace {

bool is_public(std::string_view route) {
  return route.starts_with("/v1/public/") || route.starts_with("/c/");
}

// The answer names a card that does not exist or does not parse: what a
// client guessing card numbers or tokens gets. The balance page answers
// those as HTML pages, by status alone.
bool failed_lookup(const Exchange& ex, const Response& res) {
  auto status = res.result_int();
  if (status != 404 && status != 400) return false;
  if (ex.route.starts_with("/c/")) return true;
  if (status == 404) return res.body().find("\"unknown_card\"") != std::string::npos;
  return res.body().find("\"invalid_card\"") != std::string::npos;
}

// An approved redemption or capture (not a replay): its amount, for metrics.
std::optional<std::int64_t> redeemed_cents(const Exchange& ex, const Response& res) {
  if (res.result_int() != 201 || res.count("Idempotent-Replayed") != 0) return std::nullopt;
  if (ex.route != "/v1/redemptions" && ex.route != "/v1/authorizations/{id}/capture") {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto body = boost::json::parse(res.body(), ec);
  if (ec || !body.is_object()) return std::nullopt;
  const auto* amount = body.as_object().if_contains("amount_cents");
  if (!amount || !amount->is_int64()) return std::nullopt;
  return amount->as_int64();
}

}  // namespace

Front::Front(ApiContext& ctx, const ServerOptions& options)
    : ctx_(ctx), state_(std::make_unique<State>(options)) {}

Front::~Front() = default;

Exchange Front::begin(const Request& req, const std::string& remote) const {
  Exchange ex;
  ex.start = std::chrono::steady_clock::now();
  ex.remote = remote;
  ex.method = std::string(req.method_string());
  ex.route = std::string(route_of(req));
  if (req.method() == http::verb::get && req.target() == "/metrics") ex.route = "/metrics";
  ex.target = std::string(req.target());
  ex.has_request = true;
  return ex;
}

Response Front::rate_limited(const Request& req, std::string_view limiter) {
  state_->metrics.record_rate_limited(limiter);
  Response res = refusal(429, "rate_limited", "too many requests from this address; retry later");
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::retry_after, "1");
  return res;
}

std::optional<Response> Front::answer_early(const Request& req, const Exchange& ex) {
  std::int64_t now_ms = ctx_.clock.now_ms();
  if (req.method() == http::verb::get && req.target() == "/metrics") {
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.set(http::field::cache_control, "no-store");
    res.body() = state_->metrics.render(ctx_.engine.stats(), ctx_.engine.failed());
    res.keep_alive(req.keep_alive());
    add_security_headers(res);
    return res;
  }
  if (is_public(ex.route) && !state_->public_limit.allow(ex.remote, now_ms)) {
    return rate_limited(req, "public");
  }
  if (ex.route == "/v1/sessions" && req.method() == http::verb::post &&
      !state_->sign_in_limit.allow(ex.remote, now_ms)) {
    return rate_limited(req, "sign_in");
  }
  if (!ex.route.empty() && ex.route != "/healthz" && ex.route != "/readyz" &&
      !state_->lookup_limit.would_allow(ex.remote, now_ms)) {
    return rate_limited(req, "failed_lookup");
  }
  return std::nullopt;
}

void Front::account(const Exchange& ex, const Response& res) {
  if (failed_lookup(ex, res)) (void)state_->lookup_limit.allow(ex.remote, ctx_.clock.now_ms());
  if (auto cents = redeemed_cents(ex, res)) state_->metrics.record_redemption(*cents);
}

Response Front::answer(const Request& req, const Exchange& ex) {
  Response res = handle_request(ctx_, req);
  account(ex, res);
  return res;
}

Prepared Front::prepare(const Request& req, const Exchange& ex) {
  Prepared p = prepare_request(ctx_, req);
  if (p.kind == Prepared::Kind::answer) account(ex, p.answer);
  return p;
}

Response Front::render(const Request& req, const EngineStep& step,
                       const StatusOr<engine::Result>& result, const Exchange& ex) {
  Response res = finish_request(req, step, result);
  account(ex, res);
  return res;
}

Response Front::refusal(int status, std::string_view code, std::string_view message) const {
  Response res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = boost::json::serialize(error_json(code, message));
  res.keep_alive(false);
  add_security_headers(res);
  return res;
}

Response Front::unavailable(std::string_view message) const {
  Response res = refusal(503, "unavailable", message);
  res.set(http::field::retry_after, "1");
  return res;
}

void Front::answered(Exchange& ex, const Response& res) {
  if (ex.has_request) {
    ex.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - ex.start)
                         .count();
  }
  state_->metrics.record_request(ex.route, res.result_int(), ex.duration_us);
}

void Front::finish(const Exchange& ex, const Response& res, std::size_t bytes,
                   const boost::system::error_code& ec) {
  if (!state_->log) return;
  std::string id = std::to_string(state_->next_request_id.fetch_add(1));
  AccessRecord record{ex.remote,        ex.method,      ex.route,       ex.target,
                      res.result_int(), ex.duration_us, ec ? 0 : bytes, id};
  state_->log->log_request(record);
}

void Front::connection_opened() {
  state_->metrics.connection_opened();
}

void Front::connection_closed() {
  state_->metrics.connection_closed();
}

void Front::log_event(std::string_view event, const boost::json::object& fields) {
  if (state_->log) state_->log->log_event(LogLevel::info, event, fields);
}

}  // namespace buoni::api::detail
