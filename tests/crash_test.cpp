// kill -9 test: what the engine acknowledged survives a crash, exactly once.
//
// A data directory is set up with the real `buoni` command (a programme, one
// shop, cards). Then, round after round, crash_child redeems on it from 8
// threads and prints an "ack" line for each redemption execute() reported
// durable; this test reads the acks as they come and kills the child with
// SIGKILL at a random moment (30-400 ms after it started: sometimes while
// RocksDB is still opening or replaying its WAL). After each kill it opens the
// store itself and checks every ack of every round so far:
//   - the idempotency record (caller "m:<shop>", the ack's key) exists and its
//     stored outcome is ok, with the acked redemption id, amount and card;
//   - the redemption object exists with that amount and card;
//   - the ledger holds exactly ONE redeem entry whose ref is that id (and no
//     redeem ref appears twice at all), seqs are dense from 1;
//   - the sum of acked amounts <= the total redeemed in the ledger;
//   - a retry of a few acked requests through a fresh Engine is answered with
//     the stored outcome (replayed, same id) and changes nothing; the same key
//     with another amount is idempotency_conflict;
// then closes the store and runs `buoni audit`, which must exit 0.
//
// Randomness: the kill times come from a seed that is printed; BUONI_SEED=N
// replays them (the child's own thread timing is not replayable).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/card_number.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "storage/rocks_store.h"
#include "support.h"

extern char** environ;

namespace {

using namespace buoni;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using buoni::test::day_string;
using buoni::test::Ran;

constexpr int min_rounds = 20;
constexpr int max_rounds = 30;
// Stop adding rounds past min_rounds once this much time has gone.
constexpr auto soft_time_budget = std::chrono::seconds(25);
constexpr int card_count = 50;
constexpr std::int64_t card_cents = 1'000'000;         // EUR 10,000 a card
constexpr std::uint64_t start_index_step = 1'000'000;  // crash_child's keys per thread per run
const std::string merchant = "crash-shop";

std::string describe(const std::vector<std::string>& args, const Ran& r) {
  std::string s = "$";
  for (const auto& a : args) s += " '" + a + "'";
  s += "\n  exit " + std::to_string(r.rc) + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
  return s;
}

// Runs `buoni args...` and captures stdout, stderr and the exit code; a
// child still running after 30 s is killed (the test fails on its exit code).
Ran run_buoni(const std::vector<std::string>& args) {
  return buoni::test::run_program(BUONI_BIN, args, {.timeout = std::chrono::seconds(30)});
}

// The string value of "name" in a flat JSON answer (enough for card ids).
std::string json_string(const std::string& text, const std::string& name) {
  const std::string marker = "\"" + name + "\":\"";
  auto at = text.find(marker);
  if (at == std::string::npos) return "";
  at += marker.size();
  auto end = text.find('"', at);
  return end == std::string::npos ? "" : text.substr(at, end - at);
}

struct Ack {
  std::string key, id, card;
  std::int64_t amount = 0;
  int round = 0;
};

struct Round {
  std::vector<Ack> acks;
  int cut_lines = 0;                   // a last line without its newline: not an ack
  std::vector<std::string> malformed;  // complete lines that are not "ack ..."
  bool killed_by_us = false;
  std::string how_it_ended;
};

// One run of crash_child, killed with SIGKILL after `kill_after`.
Round run_child(const std::string& dir, const std::string& cards_file, std::uint64_t start_index,
                std::chrono::milliseconds kill_after, int round_no) {
  Round round;
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<std::string> all{BUONI_CRASH_CHILD, dir, merchant, cards_file,
                               std::to_string(start_index)};
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const auto started = Clock::now();
  int spawned = posix_spawn(&pid, BUONI_CRASH_CHILD, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  REQUIRE(spawned == 0);

  std::string pending;
  auto take_lines = [&] {
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      std::istringstream in(line);
      std::string word;
      Ack a;
      in >> word >> a.key >> a.id >> a.amount >> a.card;
      if (word != "ack" || in.fail() || !in.eof()) {
        round.malformed.push_back(line);
        continue;
      }
      a.round = round_no;
      round.acks.push_back(a);
    }
  };
  auto read_some = [&](int timeout_ms) -> bool {  // false at EOF
    pollfd p{out[0], POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready <= 0) return true;
    char buf[8192];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) return false;
    pending.append(buf, static_cast<std::size_t>(n));
    take_lines();
    return true;
  };

  const auto kill_at = started + kill_after;
  bool eof = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now());
    if (left.count() <= 0) break;
    eof = !read_some(static_cast<int>(std::min<long long>(left.count(), 50)));
  }
  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  // The pipe keeps what the child wrote before it died; read it to EOF.
  while (!eof) eof = !read_some(1000);
  close(out[0]);
  if (!pending.empty()) round.cut_lines = 1;
  round.killed_by_us = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  round.how_it_ended = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                           : "exit " + std::to_string(WEXITSTATUS(status));
  return round;
}

struct LedgerFacts {
  std::map<std::string, int> redeem_refs;  // ref -> redeem entries
  std::int64_t redeemed_cents = 0;
  std::uint64_t entries = 0;
  bool dense = true;
  std::string first_problem;
};

LedgerFacts scan_ledger(const engine::Store& store) {
  LedgerFacts f;
  Status s =
      store.scan(engine::Space::ledger, "", "", [&](std::string_view key, std::string_view value) {
        engine::Entry e;
        Status d = engine::decode(value, e);
        if (!d.ok()) {
          f.dense = false;
          f.first_problem = "undecodable ledger entry: " + d.to_string();
          return false;
        }
        ++f.entries;
        if (e.seq != f.entries || engine::keys::seq_of(key) != e.seq) {
          f.dense = false;
          f.first_problem =
              "ledger seq " + std::to_string(e.seq) + " at position " + std::to_string(f.entries);
          return false;
        }
        if (e.kind == engine::EntryKind::redeem) {
          f.redeem_refs[e.ref] += 1;
          f.redeemed_cents += e.amount_cents;
        }
        return true;
      });
  if (!s.ok() && f.first_problem.empty()) f.first_problem = "scan: " + s.to_string();
  return f;
}

// Every key and value of `space` that starts with `prefix`.
std::unordered_map<std::string, std::string> load_range(const engine::Store& store,
                                                        engine::Space space,
                                                        const std::string& prefix) {
  std::unordered_map<std::string, std::string> out;
  Status s = store.scan(space, prefix, prefix, [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  return out;
}

}  // namespace

TEST_CASE("kill -9 while redeeming: every acknowledged redemption is durable exactly once") {
  const auto test_started = Clock::now();
  std::uint64_t seed = 0;
  if (const char* env = std::getenv("BUONI_SEED")) {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  std::printf("crash_test: seed %llu (replay with BUONI_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  INFO("seed " << seed << " (replay with BUONI_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);

  std::string tmpl = (fs::temp_directory_path() / "buoni-crash-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const std::string root = tmpl;
  const std::string dir = root + "/data";
  const std::string cards_file = root + "/cards.txt";
  struct Cleanup {  // kept when the test stops early, for a look at the store
    std::string path;
    bool passed = false;
    ~Cleanup() {
      std::error_code ec;
      if (passed) {
        fs::remove_all(path, ec);
      } else {
        std::printf("crash_test: data kept in %s\n", path.c_str());
      }
    }
  } cleanup{root};

  // --- setup through the real CLI ---------------------------------------
  auto must = [](const std::vector<std::string>& args) {
    Ran r = run_buoni(args);
    INFO(describe(args, r));
    REQUIRE(r.rc == 0);
    return r;
  };
  must({"--data", dir, "init"});
  must({"programme", "create", "--data", dir, "--id", "crash", "--name", "Crash test",
        "--budget-cents", std::to_string(card_cents * card_count * 2), "--valid-from",
        day_string(-1), "--valid-until", day_string(30)});
  must({"merchant", "add", "--data", dir, "--id", merchant, "--name", "Crash shop", "--vat-number",
        "01234567897", "--programme", "crash"});
  {
    std::ofstream cards(cards_file);
    for (int i = 0; i < card_count; ++i) {
      Ran r = must({"card", "issue", "--data", dir, "--json", "--programme", "crash",
                    "--beneficiary-ref", "family-" + std::to_string(i), "--amount-cents",
                    std::to_string(card_cents)});
      std::string id = json_string(r.out, "id");
      INFO(r.out);
      REQUIRE(id.size() == 16);
      cards << id << "\n";
    }
  }
  auto signing_key = load_signing_key(dir + "/keys/signing-1.key");
  REQUIRE(signing_key.ok());
  const std::string caller = engine::Caller::merchant(merchant).key();
  const auto setup_done = Clock::now();

  // --- rounds -------------------------------------------------------------
  std::vector<Ack> acked;
  std::uint64_t replays_checked = 0;
  std::uint64_t ledger_entries = 0;
  int cut_lines = 0;
  int rounds = 0;
  int rounds_without_acks = 0;
  std::uniform_int_distribution<int> kill_ms(30, 400);
  Clock::duration child_time{}, check_time{}, audit_time{};
  for (int round_no = 1; round_no <= max_rounds; ++round_no) {
    if (round_no > min_rounds && Clock::now() - test_started > soft_time_budget) break;
    const auto kill_after = std::chrono::milliseconds(kill_ms(rng));
    CAPTURE(round_no);
    CAPTURE(kill_after.count());
    auto phase = Clock::now();
    Round round =
        run_child(dir, cards_file, static_cast<std::uint64_t>(round_no) * start_index_step,
                  kill_after, round_no);
    INFO("child ended with " << round.how_it_ended);
    REQUIRE(round.killed_by_us);  // it must not have died or given up on its own
    CHECK_MESSAGE(round.malformed.empty(),
                  "malformed lines: " << (round.malformed.empty() ? "" : round.malformed[0]));
    ++rounds;
    cut_lines += round.cut_lines;
    if (round.acks.empty()) ++rounds_without_acks;
    acked.insert(acked.end(), round.acks.begin(), round.acks.end());

    child_time += Clock::now() - phase;
    phase = Clock::now();
    {
      auto store = storage::open_primary(dir + "/db", storage::RocksOptions{});
      INFO("open after kill: " << (store.ok() ? "ok" : store.status().to_string()));
      REQUIRE(store.ok());
      const engine::Store& s = **store;

      LedgerFacts ledger = scan_ledger(s);
      INFO(ledger.first_problem);
      REQUIRE(ledger.dense);
      ledger_entries = ledger.entries;
      auto head = engine::read_head(s);
      REQUIRE(head.ok());
      CHECK(head->seq == ledger.entries);
      std::string repeated;
      for (const auto& [ref, count] : ledger.redeem_refs) {
        if (count != 1) repeated += " " + ref + " x" + std::to_string(count);
      }
      CHECK_MESSAGE(repeated.empty(), "redemptions with more than one redeem entry:" << repeated);

      // Plain comparisons (not one doctest assertion per ack: there are tens
      // of thousands, re-checked every round); problems are listed below.
      std::int64_t acked_cents = 0;
      std::vector<std::string> problems;
      std::size_t problem_count = 0;
      auto problem = [&](const Ack& a, const std::string& what) {
        if (++problem_count <= 20) {
          problems.push_back("ack " + a.key + " " + a.id + " " + std::to_string(a.amount) + " " +
                             a.card + " (round " + std::to_string(a.round) + "): " + what);
        }
      };
      // One sequential pass over each key range is far cheaper than a point
      // get per ack per round.
      const std::string idem_prefix = engine::keys::idempotency(caller, "");
      auto idem = load_range(s, engine::Space::idempotency, idem_prefix);
      auto redemptions = load_range(s, engine::Space::state, engine::keys::redemption(""));
      std::size_t bad_acks = 0;
      for (const Ack& a : acked) {
        acked_cents += a.amount;
        const std::size_t before = problem_count;
        auto record = idem.find(engine::keys::idempotency(caller, a.key));
        if (record == idem.end() || record->second.size() < 32) {
          problem(a, "no idempotency record");
        } else {
          engine::Outcome o;
          Status d = engine::decode(std::string_view(record->second).substr(32), o);
          if (!d.ok()) {
            problem(a, "idempotency record does not decode: " + d.to_string());
          } else if (o.code != engine::Code::ok || o.id != a.id || o.amount_cents != a.amount ||
                     o.card != a.card) {
            problem(a, "stored outcome differs: " + std::string(engine::code_name(o.code)) + " " +
                           o.id + " " + std::to_string(o.amount_cents) + " " + o.card);
          }
        }
        auto it = ledger.redeem_refs.find(a.id);
        const int entries = it == ledger.redeem_refs.end() ? 0 : it->second;
        if (entries != 1) problem(a, std::to_string(entries) + " redeem entries in the ledger");
        auto raw = redemptions.find(engine::keys::redemption(a.id));
        engine::Redemption r;
        if (raw == redemptions.end()) {
          problem(a, "no redemption object");
        } else if (!engine::decode(raw->second, r).ok()) {
          problem(a, "redemption object does not decode");
        } else if (r.amount_cents != a.amount || format_card_id(r.card) != a.card ||
                   r.merchant != merchant) {
          problem(a, "redemption object differs");
        }
        if (problem_count > before) ++bad_acks;
      }
      std::string listed;
      for (const auto& p : problems) listed += "\n  " + p;
      REQUIRE_MESSAGE(problems.empty(), bad_acks
                                            << " of " << acked.size()
                                            << " acknowledged redemptions are wrong:" << listed);
      CHECK(acked_cents <= ledger.redeemed_cents);

      // A POS retrying after the crash gets the acknowledged answer again.
      if (!round.acks.empty()) {
        engine::SystemClock clock;
        SystemRandom random;
        auto engine_or = engine::Engine::open(**store, *signing_key, clock, random);
        INFO("engine open: " << (engine_or.ok() ? "ok" : engine_or.status().to_string()));
        REQUIRE(engine_or.ok());
        auto& e = **engine_or;
        // Its own stream, so the kill times stay a function of the seed alone.
        std::mt19937_64 pick_rng(seed + static_cast<std::uint64_t>(round_no));
        std::uniform_int_distribution<std::size_t> pick(0, round.acks.size() - 1);
        for (int i = 0; i < 3; ++i) {
          const Ack& a = round.acks[pick(pick_rng)];
          CardId card = *parse_card_number(a.card).id;
          auto again = e.execute(
              {engine::Caller::merchant(merchant), a.key, engine::Redeem{card, a.amount, ""}});
          REQUIRE(again.ok());
          CHECK(again->replayed);
          CHECK(again->outcome.code == engine::Code::ok);
          CHECK(again->outcome.id == a.id);
          auto other = e.execute(
              {engine::Caller::merchant(merchant), a.key, engine::Redeem{card, a.amount + 1, ""}});
          REQUIRE(other.ok());
          CHECK(other->outcome.code == engine::Code::idempotency_conflict);
          ++replays_checked;
        }
        CHECK(e.head().seq == ledger.entries);  // retries wrote no entry
        e.stop();
      }
    }  // the store is closed before the audit and the next round

    check_time += Clock::now() - phase;
    phase = Clock::now();
    std::vector<std::string> audit_args{"--data", dir, "audit"};
    Ran audit = run_buoni(audit_args);
    audit_time += Clock::now() - phase;
    INFO(describe(audit_args, audit));
    REQUIRE(audit.rc == 0);
  }

  const double seconds = std::chrono::duration<double>(Clock::now() - test_started).count();
  const double setup_seconds = std::chrono::duration<double>(setup_done - test_started).count();
  std::printf(
      "crash_test: %d rounds (%d killed before any ack), %zu acknowledged redemptions "
      "checked, %llu retries replayed, %d cut lines ignored, %llu ledger entries, "
      "%.1f s (setup %.1f s, children %.1f s, checks %.1f s, audits %.1f s)\n",
      rounds, rounds_without_acks, acked.size(), static_cast<unsigned long long>(replays_checked),
      cut_lines, static_cast<unsigned long long>(ledger_entries), seconds, setup_seconds,
      std::chrono::duration<double>(child_time).count(),
      std::chrono::duration<double>(check_time).count(),
      std::chrono::duration<double>(audit_time).count());
  std::fflush(stdout);
  CHECK(rounds >= min_rounds);
  // Killing too early every time would prove nothing.
  CHECK(acked.size() >= 100);
  cleanup.passed = true;
}
