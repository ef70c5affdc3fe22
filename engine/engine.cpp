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
  committer_ = std::thread([this] { commit_loop(); });
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
  if (writer_.joinable()) writer_.join();  // it handed over its last batch
  {
    std::lock_guard lock(mutex_);
    commit_stop_ = true;
  }
  commit_wake_.notify_all();
  if (committer_.joinable()) committer_.join();  // it wrote that batch first
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
  // The batch last handed to the commit thread while its write is under
  // way, so that the next batch reads through it; null otherwise.
  std::unique_ptr<Batch> below;
  for (;;) {
    Applied applied;
    ChainHead durable;  // the head written to the Store, when `below` is not used
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is handed over
      applied.pending.reserve(std::min(queue_.size(), limits::batch_commands_max));
      while (!queue_.empty() && applied.pending.size() < limits::batch_commands_max) {
        applied.pending.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (failed_) {
        lock.unlock();
        fail_all(applied.pending, unavailable("the engine stopped after a failed write"));
        continue;
      }
      // Written already: read the Store alone, from the durable head.
      if (!committing_) below.reset();
      durable = head_;
    }
    auto batch =
        below ? std::make_unique<Batch>(store_, *below) : std::make_unique<Batch>(store_, durable);
    Status failure = apply_batch(*batch, applied);
    if (!failure.ok()) {
      {
        std::lock_guard lock(mutex_);
        failed_ = true;
      }
      fail_all(applied.pending, unavailable("batch not written: " + failure.to_string()));
      below.reset();
      continue;
    }
    if (!hand_to_commit(applied)) {
      fail_all(applied.pending, unavailable("the engine stopped after a failed write"));
      below.reset();
      continue;
    }
    below = std::move(batch);
  }
}

Status Engine::apply_batch(Batch& batch, Applied& applied) {
  const TimeMs now_ms = clock_.now_ms();
  const std::uint64_t start_seq = batch.head().seq;
  applied.results.reserve(applied.pending.size());
  auto swept = expire_holds(batch, now_ms, limits::hold_expiries_per_batch_max);
  if (!swept.ok()) return swept.status();
  for (Pending& p : applied.pending) {
    auto r = apply(batch, p.request, now_ms, random_);
    if (!r.ok()) return r.status();
    applied.results.push_back(std::move(r));
  }
  if (batch.head().seq != start_seq) {
    Checkpoint c = sign_checkpoint(key_, batch.head(), now_ms);
    batch.put(Space::meta, keys::checkpoint(c.seq), encode(c));
    batch.put(Space::meta, std::string(keys::head), encode(batch.head()));
  }
  applied.set = batch.write_set();
  applied.head = batch.head();
  return Status();
}

bool Engine::hand_to_commit(Applied& applied) {
  {
    std::unique_lock lock(mutex_);
    // The batch below is written (or failed) once the commit thread is idle.
    commit_idle_.wait(lock, [this] { return !committing_; });
    if (failed_) return false;
    to_commit_ = std::move(applied);
    committing_ = true;
  }
  commit_wake_.notify_one();
  return true;
}

void Engine::commit_loop() {
  for (;;) {
    Applied applied;
    {
      std::unique_lock lock(mutex_);
      commit_wake_.wait(lock, [this] { return to_commit_.has_value() || commit_stop_; });
      if (!to_commit_) return;  // stopping, and the last batch is written
      applied = std::move(*to_commit_);
      to_commit_.reset();
    }
    commit(applied);
  }
}

void Engine::commit(Applied& applied) {
  Status failure;
  std::optional<double> commit_seconds;  // set when a write happened
  if (!applied.set.empty()) {
    const auto start_time = std::chrono::steady_clock::now();
    failure = store_.write(applied.set);
    commit_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  }
  {
    std::lock_guard lock(mutex_);
    if (failure.ok()) {
      head_ = applied.head;
      stats_.batches += 1;
      stats_.commands += applied.pending.size();
      stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, applied.pending.size());
      stats_.batch_size.record(static_cast<double>(applied.pending.size()));
      if (commit_seconds) stats_.commit_seconds.record(*commit_seconds);
    } else {
      failed_ = true;
    }
    committing_ = false;
  }
  commit_idle_.notify_one();
  if (!failure.ok()) {
    fail_all(applied.pending, unavailable("batch not written: " + failure.to_string()));
    return;
  }
  for (std::size_t i = 0; i < applied.pending.size(); ++i) {
    applied.pending[i].done(std::move(applied.results[i]));
  }
}

void Engine::fail_all(std::vector<Pending>& batch, const Status& status) {
  for (auto& p : batch) p.done(status);
}

}  // namespace buoni::engine
