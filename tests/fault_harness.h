// The rig the power-loss, I/O-fault and simulation tests share: a real
// RocksDB over a FaultFs (tests/fault_fs.h) under a real Engine, the record
// of what was acknowledged, a random workload, and the check that a
// recovered store is exactly what it may be.
//
// What a recovery must give (Rig::recover):
//  - state: every key of every space equals what the writes that returned ok
//    wrote (RecordingStore folds them into `expected`), or that plus the one
//    write that failed (in doubt: it may have reached the disk whole). No
//    other state is allowed: no lost acknowledged batch, no half batch.
//  - every acknowledged request's idempotency record holds the fingerprint
//    and the exact outcome its caller was told;
//  - the audit (engine/audit.h: chain, checkpoints, balances, conservation,
//    indexes) is clean, and the engine reopens on the chain head;
//  - a retry of every request answered with an error is answered ok, and is
//    `replayed` exactly when its record survived (applied once, never twice).
// Failures are returned as text (never doctest assertions), so the `sim`
// executable can use this without doctest.
//
// Ownership: a Rig owns its FaultFs/FaultEnv, store, engine, clock, key and
// random source; its directory is the caller's. Thread safety: execute(),
// note_ack(), note_in_doubt() and Pools may be used from several threads
// while the engine runs; everything else from one thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/store.h"
#include "fault_fs.h"
#include "storage/rocks_store.h"

namespace buoni::test {

// Every key and value of the four spaces.
using StoreImage = std::array<std::map<std::string, std::string>, engine::space_count>;

[[nodiscard]] StatusOr<StoreImage> read_image(const engine::Store& store);
void apply_write(StoreImage& image, const engine::WriteSet& set);
// "" when equal, else where they first differ.
[[nodiscard]] std::string image_difference(const StoreImage& want, const StoreImage& got);
[[nodiscard]] std::uint64_t image_digest(const StoreImage& image);
// FNV-1a, for trace digests.
[[nodiscard]] std::uint64_t mix(std::uint64_t digest, std::string_view bytes);

// Forwards to the store attached (none while closed) and records every
// write: ok ones folded into expected(), failed ones kept as in doubt.
class RecordingStore final : public engine::Store {
 public:
  void attach(engine::Store* inner) { inner_ = inner; }
  [[nodiscard]] StatusOr<std::optional<std::string>> get(engine::Space space,
                                                         std::string_view key) const override;
  [[nodiscard]] Status scan(engine::Space space, std::string_view prefix, std::string_view start,
                            const engine::ScanVisitor& visit) const override;
  [[nodiscard]] Status write(const engine::WriteSet& set) override;

  [[nodiscard]] StoreImage expected() const;
  [[nodiscard]] std::vector<engine::WriteSet> in_doubt() const;
  [[nodiscard]] std::uint64_t writes_ok() const;
  // After a recovery: what is on disk is the new truth.
  void rebase(StoreImage image);

 private:
  engine::Store* inner_ = nullptr;
  mutable std::mutex mutex_;
  StoreImage expected_;
  std::vector<engine::WriteSet> in_doubt_;
  std::uint64_t writes_ok_ = 0;
};

struct Ack {
  engine::Request request;
  engine::Result result;
};

// The ids the workload draws on, learned from acknowledged answers.
class Pools {
 public:
  void learn(const engine::Request& request, const engine::Result& result);
  // A random redemption, hold, capture, void, refund, issue or load; `key`
  // is its idempotency key (unique in the data directory).
  [[nodiscard]] engine::Request next(std::mt19937_64& rng, const std::string& key);

 private:
  struct Owned {
    std::string id, merchant;
  };
  std::mutex mutex_;
  std::vector<CardId> cards_;
  std::vector<Owned> holds_, redemptions_;
};

// The programme, two shops and `cards` cards every data directory starts with.
[[nodiscard]] std::vector<engine::Request> setup_requests(int cards);
inline constexpr engine::TimeMs kSimStartMs =
    20'513LL * 86'400'000 + 10 * 3'600'000;  // 2026-03-01 10:00Z

struct RigOptions {
  std::string dir;  // the database directory (created)
  bool sync = true;
  bool manual_background = false;  // FaultEnv runs flushes/compactions in run_background()
  std::uint64_t seed = 1;          // the signing key and the engine's random ids
};

enum class Loss {
  crash,           // the process dies: every byte written survives
  power_drop_all,  // power cut: every unsynced byte and directory change is lost
  power_random,    // power cut: random prefixes survive (CutMode::random_prefix)
};
[[nodiscard]] const char* loss_name(Loss loss);

struct RecoveryReport {
  bool in_doubt_present = false;  // the failed write survived whole
  bool state_differs = false;     // neither allowed state (a loss or a half batch)
  std::string state_difference;
  std::uint64_t acks_checked = 0;
  std::uint64_t acks_lost = 0;  // acknowledged, record missing
  std::uint64_t retried = 0;    // requests answered with an error, retried
  std::uint64_t retries_replayed = 0;
  std::uint64_t open_attempts = 0;  // > 1: power was cut while recovering too
  std::uint64_t ledger_entries = 0;
  std::uint64_t image_digest = 0;
  CutReport cut;
  std::string problem;  // anything else that is wrong; "" if none
};

class Rig {
 public:
  explicit Rig(RigOptions options);
  ~Rig();
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  // Opens store and engine (a new database when create).
  [[nodiscard]] Status open(bool create);
  // Stops the engine (queued requests finish or fail) and closes the store.
  void close();
  // close() and open() again, cleanly (RocksDB's block cache starts cold).
  [[nodiscard]] Status reopen();
  // Runs the setup requests; "" or what failed.
  [[nodiscard]] std::string setup(int cards);

  // Runs queued background work first (manual mode), then the request.
  [[nodiscard]] StatusOr<engine::Result> execute(const engine::Request& request);
  // Records an answer: ok ones are acknowledged, errors in doubt.
  void note(const engine::Request& request, const StatusOr<engine::Result>& answer);

  // The power goes off (or the process dies) now -- unless an armed cut
  // already froze the disk -- then: close, lose what `loss` loses, reopen
  // (cut_during_open > 0 arms a cut that many disk changes into each
  // reopen), check, retry the requests in doubt. Fails the report's
  // `problem` on anything wrong; a lost ack or a state difference is in
  // the report for the caller to judge (sync off expects them).
  [[nodiscard]] RecoveryReport recover(Loss loss, std::mt19937_64& rng,
                                       std::uint64_t cut_during_open = 0);

  [[nodiscard]] engine::Engine& engine() { return *engine_; }
  [[nodiscard]] const engine::Store& store() const { return record_; }
  [[nodiscard]] FaultFs& fs() { return *fs_; }
  [[nodiscard]] FaultEnv& env() { return *env_; }
  [[nodiscard]] engine::ManualClock& clock() { return clock_; }
  [[nodiscard]] const SigningKey& key() const { return key_; }
  [[nodiscard]] RecordingStore& record() { return record_; }
  [[nodiscard]] std::size_t acks() const;
  [[nodiscard]] std::size_t in_doubt_requests() const;
  // Learns ids from every ack (for the workload).
  Pools pools;

 private:
  [[nodiscard]] Status open_store(bool create);
  void check(RecoveryReport& report, const StoreImage& image);
  void retry_in_doubt(RecoveryReport& report, const StoreImage& image);

  RigOptions options_;
  std::shared_ptr<FaultFs> fs_;
  std::shared_ptr<FaultEnv> env_;
  SigningKey key_;
  engine::ManualClock clock_{kSimStartMs};
  SeededRandom random_;
  RecordingStore record_;
  std::unique_ptr<storage::RocksStore> store_;
  std::unique_ptr<engine::Engine> engine_;
  mutable std::mutex mutex_;
  std::vector<Ack> acks_;
  std::vector<engine::Request> in_doubt_;
};

}  // namespace buoni::test
