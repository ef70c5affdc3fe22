// http_load: a closed-loop HTTP/1.1 load client for `buoni serve` (plain
// http, loopback). N kept-alive connections, each a coroutine that sends its
// next request as soon as the last answer arrived, for a warm-up and then D
// measured seconds. The mix: R% redemptions (POST /v1/redemptions with a
// fresh Idempotency-Key and a small amount, on a random card of the list),
// the rest balance look-ups (GET /v1/cards/{card}), as a shop does.
//
//   http_load --url http://127.0.0.1:PORT --key mk_... --cards FILE
//             [--connections 64] [--seconds 10] [--warmup-seconds 2]
//             [--redeem-percent 90] [--amount-cents 1] [--threads 1] [--label http]
// FILE holds one card number (or id) per line. Prints a summary and
//   RESULT <label> c=N req_per_s=... redeem_per_s=... p50_ms=... p99_ms=...
//          p999_ms=... errors=...
//   STATUS <label> 201=... 200=... [402=...] [transport=...]
// An answer other than 201 (redemption) or 200 (look-up) is an error; a
// broken connection counts as status "transport" and is reopened.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Wall = std::chrono::steady_clock;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// One request must be answered within this, else the connection is reopened.
constexpr std::chrono::seconds request_timeout_s{10};
constexpr int status_transport = 0;

struct Args {
  std::string host = "127.0.0.1", port = "8080", key, cards_file, label = "http";
  int connections = 64, threads = 1, redeem_percent = 90;
  double seconds = 10, warmup_seconds = 2;
  long amount_cents = 1;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "http_load: %s\nusage: http_load --url http://HOST:PORT --key KEY --cards FILE "
               "[--connections N] [--seconds S] [--warmup-seconds S] [--redeem-percent P] "
               "[--amount-cents C] [--threads T] [--label L]\n",
               why.c_str());
  std::exit(2);
}

void parse_url(std::string_view url, Args& a) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) usage("--url must be http://HOST:PORT");
  url.remove_prefix(scheme.size());
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos) usage("--url needs a port");
  a.host = std::string(url.substr(0, colon));
  a.port = std::string(url.substr(colon + 1));
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) usage("a flag without its value");
    std::string value = argv[++i];
    if (flag == "--url") parse_url(value, a);
    else if (flag == "--key") a.key = value;
    else if (flag == "--cards") a.cards_file = value;
    else if (flag == "--label") a.label = value;
    else if (flag == "--connections") a.connections = std::atoi(value.c_str());
    else if (flag == "--threads") a.threads = std::atoi(value.c_str());
    else if (flag == "--redeem-percent") a.redeem_percent = std::atoi(value.c_str());
    else if (flag == "--seconds") a.seconds = std::atof(value.c_str());
    else if (flag == "--warmup-seconds") a.warmup_seconds = std::atof(value.c_str());
    else if (flag == "--amount-cents") a.amount_cents = std::atol(value.c_str());
    else usage("unknown flag " + std::string(flag));
  }
  if (a.key.empty() || a.cards_file.empty()) usage("--key and --cards are required");
  if (a.connections < 1 || a.threads < 1 || a.seconds <= 0 || a.warmup_seconds < 0 ||
      a.redeem_percent < 0 || a.redeem_percent > 100 || a.amount_cents < 1) {
    usage("a value is out of range");
  }
  return a;
}

std::vector<std::string> read_cards(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> cards;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) cards.push_back(line);
  }
  if (cards.empty()) usage("no cards in " + path);
  return cards;
}

// What every connection shares (read-only once started).
struct Plan {
  Args args;
  std::vector<std::string> cards;
  asio::ip::tcp::resolver::results_type endpoints;
  std::string run_id;  // makes idempotency keys unique across runs on one store
  Wall::time_point measure_from, until;
};

// One connection's tally; only its own coroutine writes it.
struct Tally {
  std::vector<double> latencies_ms;
  std::map<int, std::uint64_t> statuses;
  std::uint64_t redemptions_ok = 0;
};

std::uint64_t next_random(std::uint64_t& state) {  // splitmix64
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fills `req` with the next request of connection `conn`; true for a redemption.
bool make_request(const Plan& plan, int conn, std::uint64_t n, std::uint64_t& rng,
                  http::request<http::string_body>& req) {
  const std::string& card = plan.cards[next_random(rng) % plan.cards.size()];
  bool redeem = static_cast<int>(next_random(rng) % 100) < plan.args.redeem_percent;
  req = {};
  req.version(11);
  req.set(http::field::host, plan.args.host);
  req.set(http::field::authorization, "Bearer " + plan.args.key);
  req.keep_alive(true);
  if (redeem) {
    req.method(http::verb::post);
    req.target("/v1/redemptions");
    req.set("Idempotency-Key", plan.run_id + "-" + std::to_string(conn) + "-" + std::to_string(n));
    req.set(http::field::content_type, "application/json");
    req.body() = "{\"card\":\"" + card +
                 "\",\"amount_cents\":" + std::to_string(plan.args.amount_cents) + "}";
  } else {
    req.method(http::verb::get);
    req.target("/v1/cards/" + card);
  }
  req.prepare_payload();
  return redeem;
}

// Opens (or reopens) the connection; false when the server cannot be reached.
asio::awaitable<bool> connect(beast::tcp_stream& stream, const Plan& plan) {
  beast::error_code ignored;
  stream.socket().close(ignored);
  stream.expires_after(request_timeout_s);
  auto [ec, endpoint] = co_await stream.async_connect(plan.endpoints, nothrow_awaitable);
  if (ec) co_return false;
  stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  co_return true;
}

asio::awaitable<void> connection_loop(const Plan& plan, int conn, Tally& tally) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::uint64_t rng = 0x5EED0000ull + static_cast<std::uint64_t>(conn) * 7919;
  bool open = false;
  for (std::uint64_t n = 0; Wall::now() < plan.until; ++n) {
    if (!open && !(open = co_await connect(stream, plan))) {
      tally.statuses[status_transport] += 1;
      co_await asio::steady_timer(stream.get_executor(), std::chrono::milliseconds(10))
          .async_wait(nothrow_awaitable);
      continue;
    }
    bool redeem = make_request(plan, conn, n, rng, req);
    auto t0 = Wall::now();
    stream.expires_after(request_timeout_s);
    auto [write_ec, written] = co_await http::async_write(stream, req, nothrow_awaitable);
    http::response<http::string_body> res;
    beast::error_code read_ec = write_ec;
    if (!write_ec) std::tie(read_ec, std::ignore) =
        co_await http::async_read(stream, buffer, res, nothrow_awaitable);
    auto t1 = Wall::now();
    if (read_ec) {
      open = false;
      buffer.clear();
      if (t0 >= plan.measure_from) tally.statuses[status_transport] += 1;
      continue;
    }
    if (!res.keep_alive()) open = false;
    if (t0 < plan.measure_from || t1 > plan.until) continue;
    int status = static_cast<int>(res.result_int());
    tally.statuses[status] += 1;
    tally.latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (redeem && status == 201) tally.redemptions_ok += 1;
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

double percentile_ms(const std::vector<double>& sorted_ms, double fraction) {
  if (sorted_ms.empty()) return 0;
  auto at = static_cast<std::size_t>(fraction * static_cast<double>(sorted_ms.size()));
  return sorted_ms[std::min(at, sorted_ms.size() - 1)];
}

void report(const Plan& plan, const std::vector<Tally>& tallies) {
  std::vector<double> all;
  std::map<int, std::uint64_t> statuses;
  std::uint64_t redemptions_ok = 0, errors = 0;
  for (const Tally& t : tallies) {
    all.insert(all.end(), t.latencies_ms.begin(), t.latencies_ms.end());
    for (auto [status, count] : t.statuses) statuses[status] += count;
    redemptions_ok += t.redemptions_ok;
  }
  for (auto [status, count] : statuses) {
    if (status != 200 && status != 201) errors += count;
  }
  std::sort(all.begin(), all.end());
  const Args& a = plan.args;
  double window_s = a.seconds;
  std::printf("http_load: %d connections, %.1f s measured after %.1f s warm-up, %d%% redemptions\n",
              a.connections, window_s, a.warmup_seconds, a.redeem_percent);
  std::printf("RESULT %s c=%d req_per_s=%.0f redeem_per_s=%.0f p50_ms=%.3f p99_ms=%.3f "
              "p999_ms=%.3f errors=%llu\n",
              a.label.c_str(), a.connections, static_cast<double>(all.size()) / window_s,
              static_cast<double>(redemptions_ok) / window_s, percentile_ms(all, 0.50),
              percentile_ms(all, 0.99), percentile_ms(all, 0.999),
              static_cast<unsigned long long>(errors));
  std::printf("STATUS %s", a.label.c_str());
  for (auto [status, count] : statuses) {
    std::string name = status == status_transport ? "transport" : std::to_string(status);
    std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(count));
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  Plan plan;
  plan.args = parse_args(argc, argv);
  plan.cards = read_cards(plan.args.cards_file);
  asio::io_context resolve_io;
  beast::error_code ec;
  plan.endpoints = asio::ip::tcp::resolver(resolve_io).resolve(plan.args.host, plan.args.port, ec);
  if (ec) usage("cannot resolve " + plan.args.host + ": " + ec.message());
  plan.run_id = "L" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  auto to_wall = [](double s) {
    return std::chrono::duration_cast<Wall::duration>(std::chrono::duration<double>(s));
  };
  plan.measure_from = Wall::now() + to_wall(plan.args.warmup_seconds);
  plan.until = plan.measure_from + to_wall(plan.args.seconds);
  std::vector<Tally> tallies(static_cast<std::size_t>(plan.args.connections));
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int t = 0; t < plan.args.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  for (int c = 0; c < plan.args.connections; ++c) {
    asio::io_context& io = *ios[static_cast<std::size_t>(c % plan.args.threads)];
    asio::co_spawn(io, connection_loop(plan, c, tallies[static_cast<std::size_t>(c)]),
                   asio::detached);
  }
  std::vector<std::thread> threads;
  for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
  for (auto& t : threads) t.join();
  report(plan, tallies);
  return 0;
}
