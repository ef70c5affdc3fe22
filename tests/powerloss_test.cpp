// Power-loss test: random engine operations on a real RocksDB over FaultFs
// (tests/fault_fs.h), with the power cut at random points, hundreds of times.
//
// Each round, 1-3 threads run random redemptions, holds, captures, voids,
// refunds, issues and loads through one Engine (so the writer batches them)
// until the power goes: at a random disk change (an armed cut: in the middle
// of a WAL append, between append and fsync, in a flush, a MANIFEST write, a
// directory fsync) or after a random time. The disk keeps only what was
// synced (plus, at random, a prefix of the rest; or nothing of it; or, as a
// process crash, all of it); a quarter of the reopens are cut again a few
// disk changes into RocksDB's recovery. Then Rig::recover
// (tests/fault_harness.h) checks: the recovered store is exactly the acknowledged writes, or
// those plus the one write in doubt, whole; every acknowledged answer is the
// stored one; the ledger has every redemption/hold/capture/refund once; the
// audit is clean; the engine reopens; every request that got an error,
// retried, is replayed exactly when its batch survived.
//
// The first case tests FaultFs's model itself on plain files. The last runs
// the power cuts with the engine's sync off and must find lost acknowledged
// operations: proof that the checks can fail.
//
// Seed: printed; BUONI_SEED=N replays the choices (cut points, losses,
// operations), though not the threads' interleaving (sim_test replays exactly).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fault_fs.h"
#include "fault_harness.h"
#include "support.h"

namespace {

using namespace buoni;
using buoni::test::Loss;
using buoni::test::RecoveryReport;
using buoni::test::Rig;
using Steady = std::chrono::steady_clock;

using buoni::test::run_seed;
using buoni::test::tmpfs_pattern;

struct Totals {
  std::uint64_t cuts = 0, armed_cuts = 0, crashes = 0, cuts_in_recovery = 0, epochs = 0;
  std::uint64_t ops_acked = 0, acks_checked = 0, acks_lost = 0, state_differs = 0;
  std::uint64_t in_doubt_present = 0, retried = 0, retries_replayed = 0;
  std::uint64_t bytes_dropped = 0, entries_undone = 0;
  std::string first_difference;
  double run_seconds = 0, recover_seconds = 0;
};

struct Plan {
  bool sync = true;
  std::uint64_t cuts_min = 0, cuts_max = 0, cuts_per_epoch = 0;
  std::chrono::seconds budget{0};
};

Loss pick_loss(std::mt19937_64& rng, bool sync) {
  const auto r = rng() % 100;
  if (!sync) return r < 50 ? Loss::power_random : Loss::power_drop_all;  // a crash loses nothing
  if (r < 55) return Loss::power_random;
  if (r < 85) return Loss::power_drop_all;
  return Loss::crash;
}

// Threads submit until the disk freezes (an armed cut, or the timer here).
void run_until_cut(Rig& rig, std::mt19937_64& rng, std::atomic<std::uint64_t>& keys,
                   Totals& totals) {
  const bool armed = rng() % 100 < 65;
  if (armed) rig.fs().arm_cut_after(1 + rng() % 160);
  const auto timer = std::chrono::microseconds(armed ? 400'000 : rng() % 25'000);
  const int threads = 1 + static_cast<int>(rng() % 3);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> acked{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, thread_seed = rng()] {
      std::mt19937_64 own(thread_seed);
      while (!stop.load()) {
        const engine::Request request = rig.pools.next(own, "k" + std::to_string(++keys));
        auto answer = rig.execute(request);
        rig.note(request, answer);
        if (!answer.ok()) return;
        acked.fetch_add(1);
      }
    });
  }
  const auto until = Steady::now() + timer;
  while (!rig.fs().frozen() && Steady::now() < until) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (rig.fs().frozen()) totals.armed_cuts += 1;
  rig.fs().freeze();
  stop.store(true);
  for (auto& t : pool) t.join();
  totals.ops_acked += acked.load();
}

void add(Totals& totals, const RecoveryReport& r, Loss loss) {
  totals.cuts += 1;
  if (loss == Loss::crash) totals.crashes += 1;
  totals.cuts_in_recovery += r.open_attempts - 1;
  totals.acks_checked += r.acks_checked;
  totals.acks_lost += r.acks_lost;
  totals.in_doubt_present += r.in_doubt_present ? 1 : 0;
  totals.retried += r.retried;
  totals.retries_replayed += r.retries_replayed;
  totals.bytes_dropped += r.cut.bytes_dropped;
  totals.entries_undone += r.cut.entries_undone;
  if (r.state_differs) {
    totals.state_differs += 1;
    if (totals.first_difference.empty()) totals.first_difference = r.state_difference;
  }
}

// One data directory: setup, then cuts until the plan or the budget says stop.
void run_epoch(const Plan& plan, std::mt19937_64& rng, Totals& totals, Steady::time_point start) {
  buoni::test::TempDir dir(tmpfs_pattern("buoni-powerloss"));
  Rig rig({.dir = dir.sub("db"), .sync = plan.sync, .manual_background = false, .seed = rng()});
  Status opened = rig.open(true);
  REQUIRE_MESSAGE(opened.ok(), opened.to_string());
  const std::string setup = rig.setup(12);
  REQUIRE_MESSAGE(setup.empty(), setup);
  totals.epochs += 1;
  std::atomic<std::uint64_t> keys{0};
  for (std::uint64_t i = 0; i < plan.cuts_per_epoch && totals.cuts < plan.cuts_max; ++i) {
    if (totals.cuts >= plan.cuts_min && Steady::now() - start > plan.budget) return;
    auto phase = Steady::now();
    run_until_cut(rig, rng, keys, totals);
    totals.run_seconds += std::chrono::duration<double>(Steady::now() - phase).count();
    phase = Steady::now();
    const Loss loss = pick_loss(rng, plan.sync);
    const std::uint64_t cut_during_open = rng() % 4 == 0 ? 1 + rng() % 40 : 0;
    const RecoveryReport r = rig.recover(loss, rng, cut_during_open);
    totals.recover_seconds += std::chrono::duration<double>(Steady::now() - phase).count();
    INFO("cut " << totals.cuts + 1 << " (" << std::string(buoni::test::loss_name(loss)) << ")");
    REQUIRE_MESSAGE(r.problem.empty(), r.problem);
    add(totals, r, loss);
    if (plan.sync) {
      REQUIRE_MESSAGE(r.acks_lost == 0, r.acks_lost << " acknowledged operations lost");
      REQUIRE_MESSAGE(!r.state_differs, "recovered state: " << r.state_difference);
    }
  }
}

// The cases draw from separate streams of the one printed seed.
Totals run_plan(const Plan& plan, std::uint64_t seed) {
  std::mt19937_64 rng(plan.sync ? seed : seed ^ 0x5eed0ffULL);
  Totals totals;
  const auto start = Steady::now();
  while (totals.cuts < plan.cuts_max) {
    if (totals.cuts >= plan.cuts_min && Steady::now() - start > plan.budget) break;
    run_epoch(plan, rng, totals, start);
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::printf(
      "powerloss_test [sync %s] BUONI_SEED=%llu: %llu cuts (%llu at an armed disk change, %llu "
      "crashes, %llu more during recovery) in %llu data directories, %llu operations "
      "acknowledged, %llu acknowledgements checked, %llu lost, %llu recoveries with a state "
      "that was not allowed, in-doubt batch survived %llu times, %llu requests retried (%llu "
      "replayed), %llu unsynced bytes dropped, %llu directory changes undone, %.1f s (running %.1f "
      "s, recovering and checking %.1f s)\n",
      plan.sync ? "on" : "off", static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(totals.cuts),
      static_cast<unsigned long long>(totals.armed_cuts),
      static_cast<unsigned long long>(totals.crashes),
      static_cast<unsigned long long>(totals.cuts_in_recovery),
      static_cast<unsigned long long>(totals.epochs),
      static_cast<unsigned long long>(totals.ops_acked),
      static_cast<unsigned long long>(totals.acks_checked),
      static_cast<unsigned long long>(totals.acks_lost),
      static_cast<unsigned long long>(totals.state_differs),
      static_cast<unsigned long long>(totals.in_doubt_present),
      static_cast<unsigned long long>(totals.retried),
      static_cast<unsigned long long>(totals.retries_replayed),
      static_cast<unsigned long long>(totals.bytes_dropped),
      static_cast<unsigned long long>(totals.entries_undone), seconds, totals.run_seconds,
      totals.recover_seconds);
  std::fflush(stdout);
  return totals;
}

// ---- FaultFs's own model, on plain files ----------------------------------

struct FsProbe {
  std::shared_ptr<buoni::test::FaultFs> fs = std::make_shared<buoni::test::FaultFs>();
  rocksdb::IOOptions io;
  std::string dir;

  std::unique_ptr<rocksdb::FSWritableFile> create(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    REQUIRE(fs->NewWritableFile(dir + "/" + name, rocksdb::FileOptions(), &f, nullptr).ok());
    return f;
  }
  void sync_dir() {
    std::unique_ptr<rocksdb::FSDirectory> d;
    REQUIRE(fs->NewDirectory(dir, io, &d, nullptr).ok());
    REQUIRE(d->Fsync(io, nullptr).ok());
  }
  std::string read(const std::string& name) {
    std::error_code ec;
    if (!std::filesystem::exists(dir + "/" + name, ec)) return "<none>";
    return buoni::test::read_file(dir + "/" + name);
  }
  void cut(buoni::test::CutMode mode, std::uint64_t seed = 1) {
    fs->freeze();
    std::mt19937_64 rng(seed);
    (void)fs->power_cut(rng, mode);
    fs->thaw();
  }
};

}  // namespace

TEST_CASE("fault_fs: a power cut keeps synced bytes and fsync'd directory entries only") {
  buoni::test::TempDir tmp(tmpfs_pattern("buoni-faultfs"));
  FsProbe p{.dir = tmp.path};
  using buoni::test::CutMode;
  // "old" is durable: synced, and its directory fsync'd.
  auto old_file = p.create("old");
  REQUIRE(old_file->Append("durable", p.io, nullptr).ok());
  REQUIRE(old_file->Sync(p.io, nullptr).ok());
  p.sync_dir();
  REQUIRE(old_file->Append("+tail", p.io, nullptr).ok());   // never synced
  REQUIRE(old_file->RangeSync(0, 12, p.io, nullptr).ok());  // not a sync
  REQUIRE(old_file->Close(p.io, nullptr).ok());             // nor is close
  // "tmp" replaces "CURRENT" (durable "v1") by a rename not yet fsync'd.
  auto current = p.create("CURRENT");
  REQUIRE(current->Append("v1", p.io, nullptr).ok());
  REQUIRE(current->Sync(p.io, nullptr).ok());
  p.sync_dir();
  // "new" is synced but its directory entry is not.
  auto new_file = p.create("new");
  REQUIRE(new_file->Append("data", p.io, nullptr).ok());
  REQUIRE(new_file->Sync(p.io, nullptr).ok());
  auto tmp_file = p.create("tmp");
  REQUIRE(tmp_file->Append("v2", p.io, nullptr).ok());
  REQUIRE(tmp_file->Sync(p.io, nullptr).ok());
  REQUIRE(p.fs->RenameFile(tmp.sub("tmp"), tmp.sub("CURRENT"), p.io, nullptr).ok());
  CHECK(p.read("old") == "durable+tail");  // before the cut, the page cache has it all
  CHECK(p.read("CURRENT") == "v2");

  p.cut(CutMode::drop_all);
  CHECK(p.read("old") == "durable");
  CHECK(p.read("new") == "<none>");
  CHECK(p.read("CURRENT") == "v1");
  CHECK(p.read("tmp") == "<none>");

  // After a directory fsync the rename and the new file are durable; a
  // random cut keeps a prefix of unsynced bytes.
  auto again = p.create("tmp2");
  REQUIRE(again->Append("v3", p.io, nullptr).ok());
  REQUIRE(again->Sync(p.io, nullptr).ok());
  REQUIRE(p.fs->RenameFile(tmp.sub("tmp2"), tmp.sub("CURRENT"), p.io, nullptr).ok());
  REQUIRE(again->Append("0123456789", p.io, nullptr).ok());
  p.sync_dir();
  p.cut(CutMode::random_prefix, 3);
  CHECK(p.read("CURRENT").starts_with("v3"));
  CHECK(std::string("v30123456789").starts_with(p.read("CURRENT")));

  // Frozen, nothing changes the disk.
  auto late = p.create("late");
  p.fs->freeze();
  CHECK_FALSE(late->Append("x", p.io, nullptr).ok());
  CHECK_FALSE(late->Sync(p.io, nullptr).ok());
  CHECK_FALSE(p.fs->DeleteFile(tmp.sub("CURRENT"), p.io, nullptr).ok());
  CHECK(p.read("CURRENT").starts_with("v3"));
  p.fs->thaw();
  // An armed cut freezes at the n-th disk change.
  p.fs->arm_cut_after(2);
  CHECK(late->Append("a", p.io, nullptr).ok());
  CHECK_FALSE(late->Append("b", p.io, nullptr).ok());
  CHECK(p.fs->frozen());
  p.fs->thaw();
  // One-in-N errors are injected and counted.
  p.fs->set_faults({.write_one_in = 1}, 9);
  CHECK_FALSE(late->Append("c", p.io, nullptr).ok());
  p.fs->clear_faults();
  CHECK(late->Append("d", p.io, nullptr).ok());
  CHECK(p.fs->injected().write_errors == 1);
  CHECK(p.read("late") == "ad");
}

TEST_CASE("power loss: every acknowledged operation survives exactly once, no batch is torn") {
  const std::uint64_t seed = run_seed();
  std::printf("powerloss_test: BUONI_SEED=%llu\n", static_cast<unsigned long long>(seed));
  INFO("BUONI_SEED=" << seed);
  const Totals t = run_plan({.sync = true,
                             .cuts_min = 200,
                             .cuts_max = 400,
                             .cuts_per_epoch = 10,
                             .budget = std::chrono::seconds(20)},
                            seed);
  CHECK(t.cuts >= 200);
  CHECK(t.acks_lost == 0);
  CHECK(t.state_differs == 0);
  // The cuts must have hit work in flight, not only an idle disk.
  CHECK(t.ops_acked >= 1000);
  CHECK(t.retried > 0);
  CHECK(t.bytes_dropped > 0);
}

TEST_CASE("power loss with sync off: the same checks find lost acknowledged operations") {
  const std::uint64_t seed = run_seed();
  INFO("BUONI_SEED=" << seed);
  const Totals t = run_plan({.sync = false,
                             .cuts_min = 20,
                             .cuts_max = 20,
                             .cuts_per_epoch = 20,
                             .budget = std::chrono::seconds(5)},
                            seed);
  CHECK(t.cuts == 20);
  CHECK_MESSAGE(t.acks_lost > 0,
                "no acknowledged operation was lost with sync off: the "
                "power-loss checks cannot tell durable from not");
  CHECK(t.state_differs > 0);
  if (!t.first_difference.empty()) {
    std::printf("powerloss_test [sync off]: first difference found: %s\n",
                t.first_difference.c_str());
  }
}
