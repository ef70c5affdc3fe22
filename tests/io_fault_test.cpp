// I/O error test: one in N writes, syncs or reads fail (FaultFs, seeded)
// under a real RocksDB and Engine, round after round.
//
// In each round the test runs random operations (one at a time, and bursts
// queued together so the writer batches them) until the engine fails, then
// checks fail-stop:
//  - every request that got no result got Status unavailable; none of the
//    failed batch was approved (no acknowledged request's idempotency record
//    is in the write that failed);
//  - engine.failed() is true, a new request is refused unavailable, and the
//    HTTP handler's GET /readyz answers 503 unavailable;
// then turns the faults off, closes, sometimes also cuts the power, reopens
// and runs tests/fault_harness.h's recovery check (every acknowledged
// operation present exactly once, the failed batch whole or absent, audit
// clean, retries replayed exactly when their batch survived).
//
// Seed: printed; BUONI_SEED=N replays the choices (not the thread timing).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "api/handler.h"
#include "crypto/hash.h"
#include "engine/codec.h"
#include "fault_harness.h"
#include "support.h"

namespace {

using namespace buoni;
using buoni::test::FaultRates;
using buoni::test::Loss;
using buoni::test::Rig;
namespace http = boost::beast::http;
using Steady = std::chrono::steady_clock;

using buoni::test::run_seed;

enum class Kind { write, sync, read };
const char* kind_name(Kind k) {
  return k == Kind::write ? "write" : k == Kind::sync ? "sync" : "read";
}

FaultRates rates_for(Kind kind, std::mt19937_64& rng) {
  FaultRates r;
  if (kind == Kind::write) r.write_one_in = 10 + static_cast<std::uint32_t>(rng() % 190);
  if (kind == Kind::sync) r.sync_one_in = 5 + static_cast<std::uint32_t>(rng() % 60);
  if (kind == Kind::read) r.read_one_in = 2 + static_cast<std::uint32_t>(rng() % 10);
  return r;
}

struct Round {
  std::uint64_t acked = 0, failed = 0;
  std::set<std::string> acked_records;  // idempotency record keys of acknowledged requests
};

// A burst of n requests queued at once, answered.
using Answered = std::vector<std::pair<engine::Request, StatusOr<engine::Result>>>;
Answered burst(Rig& rig, std::mt19937_64& rng, std::uint64_t& keys, std::size_t n) {
  std::vector<engine::Request> requests;
  for (std::size_t i = 0; i < n; ++i) {
    requests.push_back(rig.pools.next(rng, "k" + std::to_string(++keys)));
  }
  std::vector<std::optional<StatusOr<engine::Result>>> answers(n);
  std::latch done(static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    rig.engine().submit(requests[i], [&answers, &done, i](StatusOr<engine::Result> r) {
      answers[i] = std::move(r);
      done.count_down();
    });
  }
  done.wait();
  Answered out;
  for (std::size_t i = 0; i < n; ++i) {
    rig.note(requests[i], *answers[i]);
    out.emplace_back(requests[i], std::move(*answers[i]));
  }
  return out;
}

// Runs operations until the engine fails (or 600 requests pass).
Round run_until_failure(Rig& rig, std::mt19937_64& rng, std::uint64_t& keys) {
  Round round;
  while (round.acked + round.failed < 600 && round.failed == 0) {
    const std::size_t n = rng() % 4 == 0 ? 2 + rng() % 12 : 1;
    for (const auto& sent : burst(rig, rng, keys, n)) {
      const auto& request = sent.first;  // not a structured binding: clang 14 cannot
      const auto& answer = sent.second;  // capture those in doctest's lambdas
      if (answer.ok()) {
        ++round.acked;
        round.acked_records.insert(
            engine::keys::idempotency(request.caller.key(), request.idempotency_key));
        continue;
      }
      ++round.failed;
      INFO(answer.status().to_string());
      CHECK(answer.status().code() == StatusCode::unavailable);
    }
  }
  return round;
}

// Fail-stop: nothing of the failed batch approved (no acknowledged request
// has its record in the write that failed), later requests refused, /readyz
// unready.
void check_fail_stop(Rig& rig, const Round& round, std::uint64_t& keys) {
  for (const engine::WriteSet& set : rig.record().in_doubt()) {
    for (const engine::WriteOp& op : set.ops) {
      if (op.space != engine::Space::idempotency) continue;
      INFO("a request of the failed batch was acknowledged");
      CHECK(round.acked_records.count(op.key) == 0);
    }
  }
  CHECK(rig.engine().failed());
  std::mt19937_64 rng(keys);
  auto later = rig.execute(rig.pools.next(rng, "k" + std::to_string(++keys)));
  REQUIRE_FALSE(later.ok());
  CHECK(later.status().code() == StatusCode::unavailable);
  // The server's readiness probe, through the pure handler.
  const std::array<std::uint8_t, 32> pepper{7};
  api::ApiContext ctx{rig.engine(), rig.store(),
                      rig.key(),    {rig.key().verify_key()},
                      pepper,       blake2b_256(std::string_view("ak_io_fault")),
                      rig.clock()};
  api::Request req{http::verb::get, "/readyz", 11};
  req.prepare_payload();
  const api::Response res = api::handle_request(ctx, req);
  CHECK(res.result_int() == 503);
  CHECK(res.body().find("\"unavailable\"") != std::string::npos);
}

}  // namespace

TEST_CASE("I/O errors: the engine fails stop and a reopen recovers every acknowledged operation") {
  const std::uint64_t seed = run_seed();
  std::printf("io_fault_test: BUONI_SEED=%llu\n", static_cast<unsigned long long>(seed));
  INFO("BUONI_SEED=" << seed);
  std::mt19937_64 rng(seed);
  const auto start = Steady::now();
  constexpr int rounds_per_dir = 6;
  constexpr int rounds = 48;
  std::array<int, 3> failed_rounds{};
  std::uint64_t acked = 0, checked = 0, lost = 0, retried = 0, replayed = 0, survived = 0;
  buoni::test::FaultCounts injected;
  for (int dir_no = 0; dir_no * rounds_per_dir < rounds; ++dir_no) {
    buoni::test::TempDir dir(buoni::test::tmpfs_pattern("buoni-iofault"));
    Rig rig({.dir = dir.sub("db"), .sync = true, .manual_background = false, .seed = rng()});
    REQUIRE(rig.open(true).ok());
    const std::string setup = rig.setup(10);
    REQUIRE_MESSAGE(setup.empty(), setup);
    std::uint64_t keys = 0;
    for (int i = 0; i < rounds_per_dir; ++i) {
      const int round_no = dir_no * rounds_per_dir + i;
      const Kind kind = static_cast<Kind>(round_no % 3);
      CAPTURE(round_no);
      INFO("faults: " << std::string(kind_name(kind)));
      // The recovery check read every block into RocksDB's cache; a clean
      // reopen makes the operations read the files again.
      if (kind == Kind::read) REQUIRE(rig.reopen().ok());
      rig.fs().set_faults(rates_for(kind, rng), rng());
      const Round round = run_until_failure(rig, rng, keys);
      acked += round.acked;
      if (round.failed > 0) {
        failed_rounds[static_cast<std::size_t>(kind)] += 1;
        check_fail_stop(rig, round, keys);
      }
      rig.fs().clear_faults();
      const Loss loss = rng() % 2 == 0 ? Loss::crash : Loss::power_random;
      const auto r = rig.recover(loss, rng);
      REQUIRE_MESSAGE(r.problem.empty(), r.problem);
      CHECK_MESSAGE(r.acks_lost == 0, r.acks_lost << " acknowledged operations lost");
      CHECK_MESSAGE(!r.state_differs, "recovered state: " << r.state_difference);
      checked += r.acks_checked;
      lost += r.acks_lost;
      retried += r.retried;
      replayed += r.retries_replayed;
      survived += r.in_doubt_present ? 1 : 0;
    }
    const buoni::test::FaultCounts c = rig.fs().injected();
    injected.write_errors += c.write_errors;
    injected.sync_errors += c.sync_errors;
    injected.read_errors += c.read_errors;
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::printf(
      "io_fault_test BUONI_SEED=%llu: %d rounds; %llu I/O errors injected (%llu write, %llu "
      "sync, %llu read); engine failed in %d write-error, %d sync-error and %d read-error "
      "rounds; %llu operations acknowledged, %llu acknowledgements checked after reopens, %llu "
      "lost; failed batch survived whole %llu times; %llu requests retried (%llu replayed); "
      "%.1f s\n",
      static_cast<unsigned long long>(seed), rounds,
      static_cast<unsigned long long>(injected.total()),
      static_cast<unsigned long long>(injected.write_errors),
      static_cast<unsigned long long>(injected.sync_errors),
      static_cast<unsigned long long>(injected.read_errors), failed_rounds[0], failed_rounds[1],
      failed_rounds[2], static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(checked), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(survived), static_cast<unsigned long long>(retried),
      static_cast<unsigned long long>(replayed), seconds);
  std::fflush(stdout);
  for (int k = 0; k < 3; ++k) {
    INFO(std::string(kind_name(static_cast<Kind>(k))) << " errors failed the engine too rarely");
    CHECK(failed_rounds[static_cast<std::size_t>(k)] >= rounds / 3 / 2);
  }
}
