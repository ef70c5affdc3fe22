// engine_bench: durable redemptions per second through the single writer on
// a real RocksDB (sync writes), at several numbers of concurrent submitters.
// The baseline, measured in the same run, is one submitter: one redemption
// per fsync, which is what a design without group commit would get.
//
//   engine_bench [DIR] [SECONDS_PER_STEP] [SUBMITTERS,...]   (default 1,16,64,256)
// Each submitter keeps one redemption of 1 cent in flight in a closed loop:
// the next one is submitted from the callback of the last (Engine::submit,
// as the server's sessions do), on 10,000 cards.
// Prints one line per concurrency: redemptions/s, mean batch size,
// p50/p99/p999 latency, and the ratio to the 1-submitter baseline; and one
// machine-readable line per step for bench/run.sh:
//   RESULT engine c=64 per_s=... p50_ms=... p99_ms=... p999_ms=... batch=... cpu_us_per_op=...
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/calendar.h"
#include "engine/engine.h"
#include "storage/rocks_store.h"

using namespace buoni;
using namespace buoni::engine;
using Wall = std::chrono::steady_clock;

namespace {

constexpr int cards_count = 10'000;

std::vector<CardId> seed(Engine& e, TimeMs now_ms) {
  Day today = day_of(now_ms);
  auto ok = [](const StatusOr<Result>& r) { return r.ok() && r->outcome.ok(); };
  if (!ok(e.execute(
          {Caller::admin(), "",
           CreateProgramme{"bench", "bench", 90'000'000'000, today, today + 30, false, 0, 0}})) ||
      !ok(e.execute({Caller::admin(), "",
                     AddMerchant{"shop", "shop", "01234567897", {"bench"}, Hash32{}}}))) {
    std::fprintf(stderr, "engine_bench: seeding failed\n");
    std::exit(1);
  }
  std::vector<CardId> cards;
  std::atomic<int> done{0};
  for (int i = 0; i < cards_count; ++i) {
    e.submit({Caller::admin(), "", IssueCard{"bench", "b" + std::to_string(i), 5'000'000}},
             [&cards, &done](StatusOr<Result> r) {
               if (r.ok() && r->outcome.ok())
                 cards.push_back(*parse_card_number(r->outcome.card).id);
               done.fetch_add(1);
             });
  }
  while (done.load() < cards_count) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return cards;
}

struct StepResult {
  double per_s = 0, p50_ms = 0, p99_ms = 0, p999_ms = 0, mean_batch = 0;
  double cpu_us_per_op = 0;  // the whole process's CPU time (user + system) per redemption
};

// This process's CPU time so far, all threads (the machine is shared: CPU
// per redemption is steadier than wall-clock rates when neighbours load it).
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

double percentile_ms(const std::vector<double>& sorted_ms, double fraction) {
  if (sorted_ms.empty()) return 0;
  auto at = static_cast<std::size_t>(fraction * static_cast<double>(sorted_ms.size()));
  return sorted_ms[std::min(at, sorted_ms.size() - 1)];
}

// "1,16,64,256" -> {1, 16, 64, 256}; exits on a malformed list.
std::vector<int> parse_submitters(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    int n = std::atoi(item.c_str());
    if (n < 1 || n > 4096) {
      std::fprintf(stderr, "engine_bench: bad submitter count '%s'\n", item.c_str());
      std::exit(2);
    }
    out.push_back(n);
  }
  return out;
}

// One closed-loop submitter: its next redemption is submitted from the
// callback of its last one, as the server's sessions do (Engine::submit with
// a callback, no thread parked per request). Callbacks run on the writer
// thread, so a slot's latencies need no lock.
struct Slot {
  std::uint64_t next_card = 0;
  Wall::time_point sent;
  std::vector<double> latencies_ms;
};

struct Loop {
  Engine& engine;
  const std::vector<CardId>& cards;
  int submitters;
  std::atomic<bool> stop{false};
  std::atomic<int> in_flight{0};
  std::uint64_t key_counter = 0;  // touched by callbacks only (the commit thread)

  void send(Slot& slot, std::uint64_t key_number) {
    slot.sent = Wall::now();
    std::string key = "s" + std::to_string(submitters) + "-" + std::to_string(key_number);
    CardId card = cards[(slot.next_card++) % cards.size()];
    engine.submit({Caller::merchant("shop"), std::move(key), Redeem{card, 1, ""}},
                  [this, &slot](StatusOr<Result> r) { done(slot, r); });
  }
  void done(Slot& slot, const StatusOr<Result>& r) {
    if (!r.ok() || !r->outcome.ok()) {
      std::fprintf(stderr, "engine_bench: redemption failed: %s\n",
                   r.ok() ? std::string(code_name(r->outcome.code)).c_str()
                          : r.status().to_string().c_str());
      std::abort();
    }
    slot.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(Wall::now() - slot.sent).count());
    if (stop.load(std::memory_order_relaxed)) {
      in_flight.fetch_sub(1);
    } else {
      send(slot, key_counter++);
    }
  }
};

StepResult run_step(Engine& e, const std::vector<CardId>& cards, int submitters, double seconds) {
  EngineStats before = e.stats();
  const double cpu_before_s = process_cpu_s();
  std::vector<Slot> slots(submitters);
  Loop loop{e, cards, submitters};
  loop.key_counter = static_cast<std::uint64_t>(submitters);
  loop.in_flight = submitters;
  auto start = Wall::now();
  for (int t = 0; t < submitters; ++t) {
    slots[t].next_card = static_cast<std::uint64_t>(t) * 7919;
  }
  // The first round's keys are 0..submitters-1; later ones come from key_counter.
  for (int t = 0; t < submitters; ++t) loop.send(slots[t], static_cast<std::uint64_t>(t));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  loop.stop.store(true);
  while (loop.in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double elapsed = std::chrono::duration<double>(Wall::now() - start).count();
  std::vector<double> all;
  for (auto& s : slots) all.insert(all.end(), s.latencies_ms.begin(), s.latencies_ms.end());
  std::sort(all.begin(), all.end());
  EngineStats after = e.stats();
  StepResult r;
  r.per_s = static_cast<double>(all.size()) / elapsed;
  r.cpu_us_per_op = all.empty() ? 0 : (process_cpu_s() - cpu_before_s) * 1e6 / all.size();
  r.p50_ms = percentile_ms(all, 0.50);
  r.p99_ms = percentile_ms(all, 0.99);
  r.p999_ms = percentile_ms(all, 0.999);
  std::uint64_t batches = after.batches - before.batches;
  r.mean_batch = batches ? static_cast<double>(after.commands - before.commands) / batches : 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp/buoni-engine-bench";
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  std::vector<int> steps = parse_submitters(argc > 3 ? argv[3] : "1,16,64,256");
  std::filesystem::remove_all(dir);
  storage::RocksOptions options;
  options.create_if_missing = true;
  auto store = storage::open_primary(dir, options);
  if (!store.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", store.status().to_string().c_str());
    return 1;
  }
  SigningKey key = SigningKey::generate(1);
  SystemClock clock;
  SystemRandom random;
  auto engine = Engine::open(**store, key, clock, random);
  if (!engine.ok()) return 1;
  std::vector<CardId> cards = seed(**engine, clock.now_ms());
  std::printf(
      "engine_bench: durable redemptions through the single writer, RocksDB sync=true, "
      "%d cards, %.1f s per step\n",
      cards_count, seconds);
  std::printf("%11s %14s %11s %9s %9s %9s %14s %14s\n", "submitters", "redemptions/s", "mean_batch",
              "p50_ms", "p99_ms", "p999_ms", "x_1_submitter", "cpu_us_per_op");
  std::vector<StepResult> results;
  double baseline = 0;
  for (int submitters : steps) {
    StepResult r = run_step(**engine, cards, submitters, seconds);
    if (submitters == 1) baseline = r.per_s;
    results.push_back(r);
    std::printf("%11d %14.0f %11.1f %9.2f %9.2f %9.2f %14.1f %14.1f\n", submitters, r.per_s,
                r.mean_batch, r.p50_ms, r.p99_ms, r.p999_ms,
                baseline > 0 ? r.per_s / baseline : 0.0, r.cpu_us_per_op);
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const StepResult& r = results[i];
    std::printf(
        "RESULT engine c=%d per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f batch=%.1f "
        "cpu_us_per_op=%.1f\n",
        steps[i], r.per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.mean_batch, r.cpu_us_per_op);
  }
  (*engine)->stop();
  std::filesystem::remove_all(dir);
  return 0;
}
