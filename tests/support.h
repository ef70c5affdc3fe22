// Helpers shared by the test executables (link buoni_test_support): running a
// program with its output captured, temporary directories, reading the
// --json answers of the buoni command, and small text checks. Helpers that
// fail a test do so with doctest's REQUIRE, so call them inside a test case.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace buoni::test {

// ---- processes -------------------------------------------------------------

// What a finished child left: its exit code (128 + signal number when a
// signal ended it; -1 when it never ran) and all it wrote to stdout/stderr.
struct Ran {
  int rc = -1;
  std::string out, err;
};

struct RunOptions {
  // The child's whole environment ("NAME=value" items); none: ours, as is.
  std::optional<std::vector<std::string>> env;
  // A child still running (or holding its pipes open) this long is killed
  // with SIGKILL, and so exits 137.
  std::chrono::seconds timeout{60};
};

// Spawns `program args...` (a name without '/' is looked up on PATH) with
// stdin /dev/null and stdout/stderr captured, waits for it and returns what
// it left. Never fails the test itself: when the pipes or the spawn fail,
// rc stays -1 and err says what failed.
Ran run_program(const std::string& program, const std::vector<std::string>& args,
                const RunOptions& options = {});

// ---- directories -----------------------------------------------------------

// A fresh directory made by mkdtemp(3) from `pattern` (a path ending in
// XXXXXX; REQUIREs success), removed with everything in it at scope end.
struct TempDir {
  std::string path;
  explicit TempDir(std::string pattern);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // path + "/" + name (nothing is created).
  [[nodiscard]] std::string sub(const std::string& name) const { return path + "/" + name; }
};

// A TempDir pattern "<root>/<name>-XXXXXX" on tmpfs (/dev/shm) when there is
// one, else /tmp: for tests whose own fault file system decides what is
// durable, so the real disk's syncs only cost time.
[[nodiscard]] std::string tmpfs_pattern(const std::string& name);

// ---- randomness ------------------------------------------------------------

// One seed per process, from BUONI_SEED when set, else random; a test prints
// it so that every case of the run replays from the one number.
[[nodiscard]] std::uint64_t run_seed();

// ---- JSON answers ----------------------------------------------------------

// `text` parsed as one JSON object; REQUIREs that it is one.
boost::json::object parse_object(const std::string& text);

// {"error": {"code": "..."}} -> the code; "" when `out` is not such an object.
std::string error_code(const std::string& out);

// The integer field `name` of `o`; REQUIREs that it is there and an int64.
std::int64_t int_field(const boost::json::object& o, const char* name);

// The string field `name` of `o`; REQUIREs that it is there and a string.
std::string str_field(const boost::json::object& o, const char* name);

// ---- text and files --------------------------------------------------------

// How many times `what` (not empty) starts in `text`, overlaps included.
std::size_t count_of(const std::string& text, const std::string& what);

// True when `text` is exactly one line: not empty, one '\n', at its end.
bool one_line(const std::string& text);

// True when `what` occurs in `text`.
bool contains(const std::string& text, const std::string& what);

// The whole file's bytes; "" when it cannot be read.
std::string read_file(const std::string& path);

// The UTC date `offset_days` days from now, as YYYY-MM-DD.
std::string day_string(int offset_days);

}  // namespace buoni::test
