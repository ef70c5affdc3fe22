#include "engine/engine.h"

#include <chrono>
#include <future>
#include <optional>

#include "engine/apply.h"
#include "engine/batch.h"
#include "engine/codec.h"
#include "engine/ledger.h"
#include "engine/limits.h"

namespace buoni::engine {

StatusOr<ChainHead> read_head(const Store& store) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::meta, keys::head));
  ChainHead head;
  if (raw) BUONI_RETURN_IF_ERROR(decode(*raw, head));
  return head;
}

namespace {
// The head must name the ledger's last entry: same seq, same hash, nothing after.
Status check_head(const Store& store, const ChainHead& head) {
  if (head.seq > 0) {
    BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::ledger, keys::ledger(head.seq)));
    if (!raw) return corruption("chain head names a missing ledger entry");
    Entry last;
    BUONI_RETURN_IF_ERROR(decode(*raw, last));
    if (last.hash != head.hash) return corruption("chain head hash differs from the ledger");
  }
  BUONI_ASSIGN_OR_RETURN(auto after, store.get(Space::ledger, keys::ledger(head.seq + 1)));
  if (after) return corruption("ledger has entries past the chain head");
  return Status();
}
}  // namespace

StatusOr<std::unique_ptr<Engine>> Engine::open(Store& store, const SigningKey& key,
                                               const Clock& clock, Random& random) {
  BUONI_ASSIGN_OR_RETURN(ChainHead head, read_head(store));
  BUONI_RETURN_IF_ERROR(check_head(store, head));
  return std::unique_ptr<Engine>(new Engine(store, key, clock, random, head));
}

Engine::Engine(Store& store, const SigningKey& key, const Clock& clock, Random& random,
               ChainHead head)
    : store_(store), key_(key), clock_(clock), random_(random), head_(head) {
  writer_ = std::thread([this] { writer_loop(); });
}

Engine::~Engine() {
  stop();
}

void Engine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

bool Engine::failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

ChainHead Engine::head() const {
  std::lock_guard lock(mutex_);
  return head_;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Engine::submit(Request request, Callback done) {
  Status refused;
  {
    std::lock_guard lock(mutex_);
    if (failed_) {
      refused = unavailable("the engine stopped after a failed write; restart to recover");
    } else if (stopping_) {
      refused = unavailable("the engine is shutting down");
    } else if (queue_.size() >= limits::queue_commands_max) {
      refused = busy("the writer queue is full");
    } else {
      queue_.push_back({std::move(request), std::move(done)});
    }
  }
  if (!refused.ok()) {
    done(refused);
    return;
  }
  wake_.notify_one();
}

StatusOr<Result> Engine::execute(Request request) {
  std::promise<StatusOr<Result>> promise;
  auto future = promise.get_future();
  submit(std::move(request), [&promise](StatusOr<Result> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Engine::writer_loop() {
  std::vector<Pending> batch;
  batch.reserve(limits::batch_commands_max);
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && batch.size() < limits::batch_commands_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (failed_) {
        lock.unlock();
        fail_all(batch, unavailable("the engine stopped after a failed write"));
        batch.clear();
        continue;
      }
    }
    run_batch(batch);
    batch.clear();
  }
}

void Engine::fail_all(std::vector<Pending>& batch, const Status& status) {
  for (auto& p : batch) p.done(status);
}

void Engine::run_batch(std::vector<Pending>& pending) {
  const TimeMs now_ms = clock_.now_ms();
  ChainHead start;
  {
    std::lock_guard lock(mutex_);
    start = head_;
  }
  Batch batch(store_, start);
  std::vector<StatusOr<Result>> results;
  results.reserve(pending.size());
  Status failure;
  auto swept = expire_holds(batch, now_ms, limits::hold_expiries_per_batch_max);
  if (!swept.ok()) failure = swept.status();
  for (std::size_t i = 0; i < pending.size() && failure.ok(); ++i) {
    auto r = apply(batch, pending[i].request, now_ms, random_);
    if (!r.ok()) failure = r.status();
    results.push_back(std::move(r));
  }
  if (failure.ok() && batch.head().seq != start.seq) {
    Checkpoint c = sign_checkpoint(key_, batch.head(), now_ms);
    batch.put(Space::meta, keys::checkpoint(c.seq), encode(c));
    batch.put(Space::meta, std::string(keys::head), encode(batch.head()));
  }
  std::optional<double> commit_seconds;  // set when a write happened
  if (failure.ok()) {
    WriteSet set = batch.write_set();
    if (!set.empty()) {
      const auto start_time = std::chrono::steady_clock::now();
      failure = store_.write(set);
      commit_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    }
  }
  if (!failure.ok()) {
    {
      std::lock_guard lock(mutex_);
      failed_ = true;
    }
    fail_all(pending, unavailable("batch not written: " + failure.to_string()));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    head_ = batch.head();
    stats_.batches += 1;
    stats_.commands += pending.size();
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, pending.size());
    stats_.batch_size.record(static_cast<double>(pending.size()));
    if (commit_seconds) stats_.commit_seconds.record(*commit_seconds);
  }
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i].done(std::move(results[i]));
}

}  // namespace buoni::engine
