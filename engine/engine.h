// Engine: the single writer. Every change to buoni goes through here.
//
//  1. Callers (CLI, HTTP threads) submit() a Request with a callback.
//  2. One writer thread drains the queue in batches (everything waiting, up
//     to limits::batch_commands_max), reads the clock once, expires lapsed
//     holds, and applies each command in order (engine/apply.h), so later
//     commands see earlier ones.
//  3. It writes the whole batch -- state, ledger entries, idempotency
//     records, chain head and a signed checkpoint -- as ONE Store::write().
//  4. Only after that write returns ok are the callbacks run with results.
//     If it fails, every request of the batch gets Status unavailable, and
//     so does every later one: the engine fails stop and never retries an
//     fsync. Reopening the store recovers the last acknowledged state.
//
// Ownership: the Engine borrows the Store, Clock, Random and SigningKey; they
// must outlive it. Thread safety: submit()/execute() and the read functions
// may be called from any thread; callbacks run on the writer thread and must
// not block. stop() (also run by the destructor) finishes queued requests,
// then joins the writer.
//
// Stats: the writer records every committed batch's size (commands) and the
// latency of its Store::write (steady clock) into fixed-bucket histograms,
// under the lock it already takes to publish the new head; stats() copies
// them (for /metrics).
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/command.h"
#include "engine/store.h"

namespace buoni::engine {

// Observations counted into fixed buckets: counts[i] holds the values in
// (bounds[i-1], bounds[i]] (not cumulative), counts[N] those above the last
// bound. bounds are ascending upper bounds (Prometheus "le"). A plain value
// type: not thread-safe by itself (the Engine guards its copies).
template <std::size_t N>
struct Histogram {
  std::array<double, N> bounds{};
  std::array<std::uint64_t, N + 1> counts{};
  double sum = 0;
  std::uint64_t count = 0;

  void record(double value) {
    std::size_t i = 0;
    while (i < N && value > bounds[i]) ++i;
    counts[i] += 1;
    sum += value;
    count += 1;
  }
};

// Commands per committed batch: powers of two up to limits::batch_commands_max.
inline constexpr std::array<double, 11> batch_size_buckets{1,  2,   4,   8,   16,  32,
                                                           64, 128, 256, 512, 1024};
// Seconds one Store::write took (an fsync on RocksDB): 0.1 ms to 2.5 s.
inline constexpr std::array<double, 14> commit_seconds_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

struct EngineStats {
  std::uint64_t batches = 0;
  std::uint64_t commands = 0;
  std::uint64_t largest_batch = 0;
  // Every committed batch's command count (a batch whose commands changed
  // nothing is counted too: it answered its callers).
  Histogram<batch_size_buckets.size()> batch_size{batch_size_buckets};
  // Every Store::write that returned ok (batches with nothing to write skip it).
  Histogram<commit_seconds_buckets.size()> commit_seconds{commit_seconds_buckets};
};

class Engine {
 public:
  using Callback = std::function<void(StatusOr<Result>)>;

  // Reads the chain head (and checks it against the ledger's last entry),
  // then starts the writer thread.
  [[nodiscard]] static StatusOr<std::unique_ptr<Engine>> open(Store& store, const SigningKey& key,
                                                              const Clock& clock, Random& random);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues the request. The callback runs exactly once: with the result after
  // it is durable, or with busy (queue full) / unavailable (engine failed or
  // stopping) -- those two before anything was applied.
  void submit(Request request, Callback done);
  // submit() and wait.
  [[nodiscard]] StatusOr<Result> execute(Request request);

  void stop();
  [[nodiscard]] bool failed() const;
  [[nodiscard]] ChainHead head() const;
  [[nodiscard]] EngineStats stats() const;
  [[nodiscard]] const Store& store() const { return store_; }

 private:
  struct Pending {
    Request request;
    Callback done;
  };
  Engine(Store& store, const SigningKey& key, const Clock& clock, Random& random, ChainHead head);
  void writer_loop();
  void run_batch(std::vector<Pending>& batch);
  void fail_all(std::vector<Pending>& batch, const Status& status);

  Store& store_;
  const SigningKey& key_;
  const Clock& clock_;
  Random& random_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool failed_ = false;
  ChainHead head_;  // guarded by mutex_ for readers; written by the writer
  EngineStats stats_;
  std::thread writer_;
};

// Reads the committed chain head from a store (seq 0 on an empty ledger).
[[nodiscard]] StatusOr<ChainHead> read_head(const Store& store);

}  // namespace buoni::engine
