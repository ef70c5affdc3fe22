// crash_child: the process crash_test kills with SIGKILL.
//
//   crash_child DATA_DIR MERCHANT_ID CARDS_FILE START_INDEX
//
// Opens DATA_DIR/db as the primary store and an Engine on it (system clock,
// system randomness, signing key DATA_DIR/keys/signing-1.key), then runs
// `threads` threads that redeem 1..5 cents from a random card of CARDS_FILE
// (one card number or id per line) for merchant MERCHANT_ID, in a loop.
// Thread t's n-th request (n from START_INDEX up) has the idempotency key
// "k-<t>-<n>", so a parent that gives every run a START_INDEX above the last
// run's keys never repeats a key.
//
// Only after execute() returned a durable Code::ok does a thread print
//   ack <key> <redemption id> <amount_cents> <card id>
// on stdout and flush it (one write(2) of less than PIPE_BUF bytes, under a
// mutex): a line the parent reads completely is a promise the store must keep.
// It runs until killed, at most `max_run` (so it never lives forever), then
// exits 0. Exit 3: it could not start or the engine failed.
#include <signal.h>
#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/rocks_store.h"

namespace {

using namespace buoni;

constexpr int threads = 8;
constexpr auto max_run = std::chrono::seconds(60);
// Keys per thread per run; the parent spaces START_INDEX further apart.
constexpr std::uint64_t keys_per_run_max = 1'000'000;

int fail(const std::string& what) {
  std::fprintf(stderr, "crash_child: %s\n", what.c_str());
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: crash_child DATA_DIR MERCHANT_ID CARDS_FILE START_INDEX\n");
    return 2;
  }
  // Die with the parent (a test that failed half-way must leave nothing running).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string data_dir = argv[1];
  const std::string merchant = argv[2];
  const std::string cards_file = argv[3];
  const std::uint64_t start_index = std::strtoull(argv[4], nullptr, 10);

  std::vector<CardId> cards;
  {
    std::ifstream in(cards_file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto parsed = parse_card_number(line);
      if (!parsed.id) return fail("bad card in " + cards_file + ": " + line);
      cards.push_back(*parsed.id);
    }
  }
  if (cards.empty()) return fail("no cards in " + cards_file);

  auto key = load_signing_key(data_dir + "/keys/signing-1.key");
  if (!key.ok()) return fail("signing key: " + key.status().to_string());
  auto store = storage::open_primary(data_dir + "/db", storage::RocksOptions{});
  if (!store.ok()) return fail("store: " + store.status().to_string());
  engine::SystemClock clock;
  SystemRandom random;
  auto engine = engine::Engine::open(**store, *key, clock, random);
  if (!engine.ok()) return fail("engine: " + engine.status().to_string());

  std::mutex out_mutex;
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(std::random_device{}() ^ (static_cast<std::uint64_t>(t) << 32));
      std::uniform_int_distribution<std::size_t> pick(0, cards.size() - 1);
      std::uniform_int_distribution<engine::Cents> amount(1, 5);
      for (std::uint64_t n = start_index; n < start_index + keys_per_run_max && !stop; ++n) {
        const std::string k = "k-" + std::to_string(t) + "-" + std::to_string(n);
        const CardId card = cards[pick(rng)];
        const engine::Cents cents = amount(rng);
        auto result = (*engine)->execute(
            {engine::Caller::merchant(merchant), k, engine::Redeem{card, cents, ""}});
        if (!result.ok()) {
          std::fprintf(stderr, "crash_child: %s: %s\n", k.c_str(),
                       result.status().to_string().c_str());
          failed = true;
          stop = true;
          return;
        }
        if (result->outcome.code != engine::Code::ok || result->replayed) {
          // Not an ack; the parent sees nothing for this key. A decline here
          // means the setup ran out of money or the key space overlapped.
          std::fprintf(stderr, "crash_child: %s: %s%s\n", k.c_str(),
                       std::string(engine::code_name(result->outcome.code)).c_str(),
                       result->replayed ? " (replayed)" : "");
          continue;
        }
        const std::string line = "ack " + k + " " + result->outcome.id + " " +
                                 std::to_string(cents) + " " + format_card_id(card) + "\n";
        std::lock_guard lock(out_mutex);
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fflush(stdout);
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + max_run;
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& w : workers) w.join();
  (*engine)->stop();
  return failed ? 3 : 0;
}
