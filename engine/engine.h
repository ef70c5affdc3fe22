// Engine: the single writer. Every change to buoni goes through here.
//
//  1. Callers (CLI, HTTP threads) submit() a Request with a callback.
//  2. The writer thread drains the queue in batches (everything waiting, up
//     to limits::batch_commands_max), reads the clock once, expires lapsed
//     holds, and applies each command in order (engine/apply.h), so later
//     commands see earlier ones.
//  3. The commit thread writes the whole batch -- state, ledger entries,
//     idempotency records, chain head and a signed checkpoint -- as ONE
//     Store::write(). Meanwhile the writer applies the next batch on top of
//     it (engine/batch.h: it reads through the batch being written), so the
//     CPU of applying and the fsync of writing overlap. At most one batch is
//     being written and one applied; batches are written in order.
//  4. Only after a batch's write returns ok are its callbacks run with
//     results (on the commit thread), and only then are results of the
//     batch applied on top of it released: nothing is answered from state
//     that is not durable, declines included. If a write fails, every
//     request of that batch and of the batch applied on top of it gets
//     Status unavailable, and so does every later one: the engine fails stop
//     and never retries an fsync. Reopening the store recovers the last
//     acknowledged state.
//
// Ownership: the Engine borrows the Store, Clock, Random and SigningKey; they
// must outlive it. Thread safety: submit()/execute() and the read functions
// may be called from any thread; callbacks run on the commit thread and must
// not block (they may submit()). stop() (also run by the destructor)
// finishes queued requests, then joins both threads.
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
#include <optional>
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

class Batch;  // engine/batch.h

class Engine {
 public:
  using Callback = std::function<void(StatusOr<Result>)>;

  // Reads the chain head (and checks it against the ledger's last entry),
  // then starts the writer and commit threads.
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
  // A batch the writer applied, handed to the commit thread.
  struct Applied {
    std::vector<Pending> pending;
    std::vector<StatusOr<Result>> results;  // one per pending request
    WriteSet set;                           // empty: nothing to write
    ChainHead head;                         // the chain head once written
  };
  Engine(Store& store, const SigningKey& key, const Clock& clock, Random& random, ChainHead head);
  void writer_loop();
  // Applies `applied.pending` in `batch`: results, checkpoint, write set.
  // A failed Status (a read failed) leaves the batch unusable.
  [[nodiscard]] Status apply_batch(Batch& batch, Applied& applied);
  // Waits until the commit thread is idle, then hands it `applied`; false
  // (and `applied` untouched) when the engine failed meanwhile.
  [[nodiscard]] bool hand_to_commit(Applied& applied);
  void commit_loop();
  void commit(Applied& applied);
  void fail_all(std::vector<Pending>& batch, const Status& status);

  Store& store_;
  const SigningKey& key_;
  const Clock& clock_;
  Random& random_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;         // the writer: queue_ or stopping_ changed
  std::condition_variable commit_wake_;  // the commit thread: to_commit_ or commit_stop_
  std::condition_variable commit_idle_;  // the writer: the commit thread took to_commit_
  std::deque<Pending> queue_;
  std::optional<Applied> to_commit_;
  bool committing_ = false;  // a batch is handed over and not yet written
  bool stopping_ = false;
  bool commit_stop_ = false;
  bool failed_ = false;
  ChainHead head_;  // the durable head; guarded by mutex_, written by the commit thread
  EngineStats stats_;
  std::thread writer_;
  std::thread committer_;
};

// Reads the committed chain head from a store (seq 0 on an empty ledger).
[[nodiscard]] StatusOr<ChainHead> read_head(const Store& store);

}  // namespace buoni::engine
