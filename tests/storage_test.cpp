// Tests of storage::RocksStore against a real RocksDB in a fresh temp dir.
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/rocks_store.h"
#include "support.h"

namespace {

using buoni::StatusCode;
using buoni::engine::Space;
using buoni::engine::WriteSet;
using buoni::storage::open_primary;
using buoni::storage::open_read_only;
using buoni::storage::open_secondary;
using buoni::storage::RocksOptions;
using buoni::storage::RocksStore;
using Rows = std::vector<std::pair<std::string, std::string>>;

// A fresh directory under /tmp, removed with everything in it at scope end.
struct TempDir : buoni::test::TempDir {
  TempDir() : buoni::test::TempDir("/tmp/buoni_storage_test_XXXXXX") {}
};

std::unique_ptr<RocksStore> create(const std::string& dir) {
  auto store = open_primary(dir, RocksOptions{.create_if_missing = true, .sync = true});
  REQUIRE_MESSAGE(store.ok(), store.status().to_string());
  return std::move(store).value();
}

std::unique_ptr<RocksStore> reopen(const std::string& dir) {
  auto store = open_primary(dir, RocksOptions{});
  REQUIRE_MESSAGE(store.ok(), store.status().to_string());
  return std::move(store).value();
}

void put(RocksStore& store, Space space, const std::string& key, const std::string& value) {
  WriteSet set;
  set.put(space, key, value);
  const auto status = store.write(set);
  REQUIRE_MESSAGE(status.ok(), status.to_string());
}

// The value under key, or "<none>".
std::string get(const RocksStore& store, Space space, const std::string& key) {
  auto value = store.get(space, key);
  REQUIRE_MESSAGE(value.ok(), value.status().to_string());
  return value->value_or("<none>");
}

Rows scan(const RocksStore& store, Space space, const std::string& prefix,
          const std::string& start = "", std::size_t limit = 1000) {
  Rows rows;
  const auto status = store.scan(space, prefix, start, [&](std::string_view k, std::string_view v) {
    rows.emplace_back(std::string(k), std::string(v));
    return rows.size() < limit;
  });
  REQUIRE_MESSAGE(status.ok(), status.to_string());
  return rows;
}

std::vector<std::string> keys(const Rows& rows) {
  std::vector<std::string> out;
  for (const auto& row : rows) out.push_back(row.first);
  return out;
}

}  // namespace

TEST_CASE("opening a directory without a database fails with not_found unless asked to create") {
  TempDir dir;
  auto missing = open_primary(dir.sub("db"), RocksOptions{});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::not_found);
  CHECK_FALSE(std::filesystem::exists(dir.sub("db")));  // and created nothing

  auto empty_dir = open_primary(dir.path, RocksOptions{});  // exists, but no database
  REQUIRE_FALSE(empty_dir.ok());
  CHECK(empty_dir.status().code() == StatusCode::not_found);

  auto read_only = open_read_only(dir.sub("db"));
  REQUIRE_FALSE(read_only.ok());
  CHECK(read_only.status().code() == StatusCode::not_found);
  auto secondary = open_secondary(dir.sub("db"), dir.sub("secondary"));
  REQUIRE_FALSE(secondary.ok());
  CHECK(secondary.status().code() == StatusCode::not_found);

  auto created = create(dir.sub("db"));
  CHECK(std::filesystem::exists(dir.sub("db/CURRENT")));
}

TEST_CASE("put, get and delete in each space; the spaces are separate") {
  TempDir dir;
  auto store = create(dir.path);
  const Space spaces[] = {Space::state, Space::ledger, Space::idempotency, Space::meta};
  for (Space space : spaces) {
    CHECK(get(*store, space, "k") == "<none>");
    put(*store, space, "k", std::string("value in ") + buoni::engine::space_name(space));
  }
  for (Space space : spaces) {
    CHECK(get(*store, space, "k") == std::string("value in ") + buoni::engine::space_name(space));
  }

  WriteSet erase;
  erase.erase(Space::ledger, "k");
  erase.erase(Space::state, "never-written");  // deleting a missing key is fine
  REQUIRE(store->write(erase).ok());
  CHECK(get(*store, Space::ledger, "k") == "<none>");
  CHECK(get(*store, Space::state, "k") == "value in state");
  CHECK(get(*store, Space::idempotency, "k") == "value in idempotency");
  CHECK(get(*store, Space::meta, "k") == "value in meta");

  put(*store, Space::state, "k", "overwritten");
  CHECK(get(*store, Space::state, "k") == "overwritten");
  CHECK(scan(*store, Space::ledger, "").empty());
  CHECK(keys(scan(*store, Space::meta, "")) == std::vector<std::string>{"k"});
  CHECK(store->write(WriteSet{}).ok());  // an empty set is a no-op
  CHECK(store->refresh().ok());          // a primary is always current
}

TEST_CASE("scan honours prefix, start, order and an early stop") {
  TempDir dir;
  auto store = create(dir.path);
  WriteSet set;  // inserted out of order on purpose
  for (const char* key : {"b", "ab", "a/2", "a", "a/1", "a/10", "a0", "0"}) {
    set.put(Space::state, key, std::string("v:") + key);
  }
  set.put(Space::ledger, "a/3", "other space");
  REQUIRE(store->write(set).ok());

  using V = std::vector<std::string>;
  CHECK(keys(scan(*store, Space::state, "a/")) == V{"a/1", "a/10", "a/2"});
  CHECK(keys(scan(*store, Space::state, "a")) == V{"a", "a/1", "a/10", "a/2", "a0", "ab"});
  CHECK(keys(scan(*store, Space::state, "")) == V{"0", "a", "a/1", "a/10", "a/2", "a0", "ab", "b"});
  const Rows rows = scan(*store, Space::state, "a/");
  REQUIRE_FALSE(rows.empty());
  CHECK(rows.front().second == "v:a/1");
  // start inside the prefix range; start before the prefix; start past it.
  CHECK(keys(scan(*store, Space::state, "a/", "a/10")) == V{"a/10", "a/2"});
  CHECK(keys(scan(*store, Space::state, "a/", "a/11")) == V{"a/2"});
  CHECK(keys(scan(*store, Space::state, "a/", "0")) == V{"a/1", "a/10", "a/2"});
  CHECK(scan(*store, Space::state, "a/", "a0").empty());
  CHECK(keys(scan(*store, Space::state, "", "a0")) == V{"a0", "ab", "b"});
  // visit returning false stops the scan after that row.
  CHECK(keys(scan(*store, Space::state, "a", "", 2)) == V{"a", "a/1"});
  CHECK(keys(scan(*store, Space::state, "", "", 1)) == V{"0"});
  CHECK(scan(*store, Space::state, "c").empty());
  CHECK(keys(scan(*store, Space::ledger, "a")) == V{"a/3"});
}

TEST_CASE("binary keys: zero bytes and 0xff bytes, including in scan prefixes") {
  TempDir dir;
  auto store = create(dir.path);
  using namespace std::string_literals;
  const std::string k1 = "a\0b"s, k2 = "a\0c"s, k3 = "a"s, k4 = "a\xff\x01"s, k5 = "a\xff\xff"s,
                    k6 = "b"s, k7 = "\xff\xff"s, k8 = "\xff\xff\0"s;
  WriteSet set;
  for (const auto& k : {k1, k2, k3, k4, k5, k6, k7, k8}) set.put(Space::ledger, k, "v" + k);
  set.put(Space::ledger, "zero value"s, "\0\0\0"s);
  REQUIRE(store->write(set).ok());

  CHECK(get(*store, Space::ledger, k1) == "v" + k1);
  CHECK(get(*store, Space::ledger, k2) == "v" + k2);
  CHECK(get(*store, Space::ledger, "a\0"s) == "<none>");  // not a truncation of k1
  CHECK(get(*store, Space::ledger, "zero value") == "\0\0\0"s);
  using V = std::vector<std::string>;
  CHECK(keys(scan(*store, Space::ledger, "a\0"s)) == V{k1, k2});
  CHECK(keys(scan(*store, Space::ledger, "a\0"s, "a\0c"s)) == V{k2});
  // A prefix ending in 0xff: its successor is "b", which must be excluded.
  CHECK(keys(scan(*store, Space::ledger, "a\xff"s)) == V{k4, k5});
  // A prefix of only 0xff bytes has no successor: no upper bound at all.
  CHECK(keys(scan(*store, Space::ledger, "\xff\xff"s)) == V{k7, k8});
  CHECK(keys(scan(*store, Space::ledger, "a"s)) == V{k3, k1, k2, k4, k5});
}

TEST_CASE("a multi-op WriteSet across spaces survives a reopen as a whole") {
  TempDir dir;
  {
    auto store = create(dir.path);
    put(*store, Space::state, "old", "to be deleted");
    WriteSet set;
    set.put(Space::state, "card/1", "balance 10");
    set.put(Space::ledger, "seq/1", "entry 1");
    set.put(Space::idempotency, "client/key", "result");
    set.put(Space::meta, "head", "seq/1");
    set.erase(Space::state, "old");
    set.put(Space::state, "card/1", "balance 7");  // later op on the same key wins
    REQUIRE(store->write(set).ok());
  }
  auto store = reopen(dir.path);
  CHECK(get(*store, Space::state, "card/1") == "balance 7");
  CHECK(get(*store, Space::ledger, "seq/1") == "entry 1");
  CHECK(get(*store, Space::idempotency, "client/key") == "result");
  CHECK(get(*store, Space::meta, "head") == "seq/1");
  CHECK(get(*store, Space::state, "old") == "<none>");
}

TEST_CASE("reopening restores data, across several sessions") {
  TempDir dir;
  for (int session = 0; session < 3; ++session) {
    auto store = session == 0 ? create(dir.path) : reopen(dir.path);
    for (int earlier = 0; earlier < session; ++earlier) {
      CHECK(get(*store, Space::ledger, "s" + std::to_string(earlier)) == std::to_string(earlier));
    }
    put(*store, Space::ledger, "s" + std::to_string(session), std::to_string(session));
  }
  auto store = reopen(dir.path);
  CHECK(scan(*store, Space::ledger, "s").size() == 3);
}

TEST_CASE("a second primary in the same process is refused with busy") {
  TempDir dir;
  auto first = create(dir.path);
  auto second = open_primary(dir.path, RocksOptions{});
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::busy);
  CHECK(second.status().message().find("in use by another process") != std::string::npos);
  put(*first, Space::state, "still", "works");  // the refused open did not disturb it
  first.reset();
  auto third = reopen(dir.path);  // the lock is released on close
  CHECK(get(*third, Space::state, "still") == "works");
}

TEST_CASE("readers on other threads run concurrently with the writer") {
  TempDir dir;
  auto store = create(dir.path);
  constexpr int writes = 200;
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::atomic<int> went_backwards{0};
  auto reader = [&] {
    int last = -1;
    while (!done.load()) {
      auto value = store->get(Space::state, "counter");
      if (!value.ok()) ++read_errors;
      const int seen = value.ok() && *value ? std::stoi(**value) : -1;
      if (seen < last) ++went_backwards;  // a write that returned ok stays visible
      last = seen;
      const auto status = store->scan(Space::ledger, "", "", [](auto, auto) { return true; });
      if (!status.ok()) ++read_errors;
    }
  };
  std::thread reader_a(reader), reader_b(reader);
  bool writes_ok = true;  // no REQUIRE while the readers run: it would skip join()
  for (int i = 0; i < writes && writes_ok; ++i) {
    WriteSet set;
    set.put(Space::state, "counter", std::to_string(i));
    set.put(Space::ledger, "seq/" + std::to_string(1000 + i), "entry");
    writes_ok = store->write(set).ok();
  }
  done = true;
  reader_a.join();
  reader_b.join();
  REQUIRE(writes_ok);
  CHECK(read_errors.load() == 0);
  CHECK(went_backwards.load() == 0);
  CHECK(get(*store, Space::state, "counter") == std::to_string(writes - 1));
  CHECK(scan(*store, Space::ledger, "seq/").size() == static_cast<std::size_t>(writes));
}

namespace {

// Forks a child that waits for one byte on a pipe, then tries open_primary on
// dir and exits: 0 opened, 1 busy, 2 any other error. It forks before the
// parent opens anything, so the child does not inherit RocksDB's in-process
// record of the parent's lock: only the OS file lock can stop it.
struct ChildOpener {
  pid_t pid = -1;
  int go_fd = -1;
  explicit ChildOpener(const std::string& dir) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[1]);
      ::alarm(60);  // never hang the test run
      char byte = 0;
      if (::read(fds[0], &byte, 1) != 1) ::_exit(3);
      auto store = open_primary(dir, RocksOptions{});
      const int code = store.ok() ? 0 : store.status().code() == StatusCode::busy ? 1 : 2;
      ::_exit(code);  // no destructors, no doctest reporting in the child
    }
    ::close(fds[0]);
    go_fd = fds[1];
  }
  // Lets the child try, and returns its exit code.
  int run() {
    REQUIRE(::write(go_fd, "x", 1) == 1);
    ::close(go_fd);
    go_fd = -1;
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  }
  // If a REQUIRE cut the test short: the closed pipe makes the child exit.
  ~ChildOpener() {
    if (go_fd >= 0) ::close(go_fd);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  ChildOpener(const ChildOpener&) = delete;
  ChildOpener& operator=(const ChildOpener&) = delete;
};

}  // namespace

TEST_CASE("another process cannot open the primary while it is open: busy") {
  TempDir dir;
  create(dir.path).reset();
  ChildOpener while_open(dir.path);
  ChildOpener after_close(dir.path);
  auto primary = reopen(dir.path);
  CHECK(while_open.run() == 1);
  primary.reset();
  CHECK(after_close.run() == 0);  // the same child code succeeds once the lock is free
}

TEST_CASE("a secondary follows a running primary after refresh()") {
  TempDir dir;
  const std::string db = dir.sub("db");
  auto primary = create(db);
  put(*primary, Space::state, "before", "1");

  auto opened = open_secondary(db, dir.sub("secondary"));
  REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
  auto secondary = std::move(opened).value();
  CHECK(get(*secondary, Space::state, "before") == "1");

  WriteSet later;
  later.put(Space::state, "after", "2");
  later.put(Space::ledger, "seq/1", "entry");
  later.erase(Space::state, "before");
  REQUIRE(primary->write(later).ok());
  CHECK(get(*secondary, Space::state, "after") == "<none>");  // not yet caught up
  CHECK(get(*secondary, Space::state, "before") == "1");

  REQUIRE(secondary->refresh().ok());
  CHECK(get(*secondary, Space::state, "after") == "2");
  CHECK(get(*secondary, Space::ledger, "seq/1") == "entry");
  CHECK(get(*secondary, Space::state, "before") == "<none>");
  CHECK(keys(scan(*secondary, Space::state, "")) == std::vector<std::string>{"after"});

  WriteSet attempt;
  attempt.put(Space::state, "x", "y");
  const auto refused = secondary->write(attempt);
  CHECK(refused.code() == StatusCode::invalid_argument);
  CHECK(refused.message() == "store is read-only");
  CHECK(get(*primary, Space::state, "x") == "<none>");
}

TEST_CASE("a read-only store reads everything and rejects writes") {
  TempDir dir;
  {
    auto primary = create(dir.path);
    put(*primary, Space::meta, "head", "7");
    put(*primary, Space::ledger, "seq/7", "entry");
  }
  auto opened = open_read_only(dir.path);
  REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
  auto store = std::move(opened).value();
  CHECK(get(*store, Space::meta, "head") == "7");
  CHECK(keys(scan(*store, Space::ledger, "seq/")) == std::vector<std::string>{"seq/7"});
  WriteSet attempt;
  attempt.put(Space::meta, "head", "8");
  const auto refused = store->write(attempt);
  CHECK(refused.code() == StatusCode::invalid_argument);
  CHECK(refused.message() == "store is read-only");
  CHECK(store->refresh().ok());
  CHECK(get(*store, Space::meta, "head") == "7");
  // A read-only store takes no LOCK: a primary can open beside it.
  auto primary = reopen(dir.path);
  CHECK(get(*primary, Space::meta, "head") == "7");
}

namespace {

// Caps the size of any file this process writes (RLIMIT_FSIZE), so that the
// WAL append of a large batch fails with EFBIG, as a full disk would.
struct FileSizeCap {
  rlimit saved{};
  void (*saved_handler)(int) = nullptr;
  explicit FileSizeCap(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    saved_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of death
    rlimit cap = saved;
    cap.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &cap) == 0);
  }
  ~FileSizeCap() {
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, saved_handler);
  }
  FileSizeCap(const FileSizeCap&) = delete;
  FileSizeCap& operator=(const FileSizeCap&) = delete;
};

}  // namespace

TEST_CASE("a failed write stops all later writes and leaves none of its ops behind") {
  TempDir dir;
  {
    auto store = create(dir.path);
    put(*store, Space::state, "kept", "1");
    {
      FileSizeCap cap(1 << 20);
      WriteSet doomed;
      doomed.put(Space::state, "a", "x");
      doomed.put(Space::ledger, "b", "y");
      doomed.put(Space::meta, "big", std::string(4 << 20, 'z'));  // cannot fit under the cap
      const auto failed = store->write(doomed);
      REQUIRE_FALSE(failed.ok());
      CHECK(failed.code() == StatusCode::io_error);
    }
    WriteSet small;
    small.put(Space::state, "after", "1");
    const auto refused = store->write(small);
    CHECK(refused.code() == StatusCode::unavailable);
    CHECK(refused.message().find("store failed earlier: io_error") == 0);
    CHECK(store->write(small).code() == StatusCode::unavailable);  // and stays so
    CHECK(get(*store, Space::state, "kept") == "1");               // reads still work
  }
  auto store = reopen(dir.path);  // WAL replay ends at the torn record
  CHECK(get(*store, Space::state, "kept") == "1");
  CHECK(get(*store, Space::state, "a") == "<none>");
  CHECK(get(*store, Space::ledger, "b") == "<none>");
  CHECK(get(*store, Space::meta, "big") == "<none>");
  CHECK(get(*store, Space::state, "after") == "<none>");
  put(*store, Space::state, "after", "2");  // the reopened store writes again
  CHECK(get(*store, Space::state, "after") == "2");
}
