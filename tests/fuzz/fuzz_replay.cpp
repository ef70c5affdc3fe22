// fuzz_replay: runs the fuzz targets without libFuzzer, so their seed
// corpora and kept crashes (tests/fuzz/corpus/<target>/,
// tests/fuzz/regressions/<target>/) run in every build as the ctest
// `fuzz_replay`. Each target's source is compiled with its
// LLVMFuzzerTestOneInput renamed to buoni_fuzz_<target> (replay.cmake).
//
//   fuzz_replay                      every target over its corpus and regressions
//   fuzz_replay TARGET PATH...       one target over files or directories
//
// A broken property aborts: the process dies and the ctest fails, after the
// input being replayed is named on stderr. A target without a corpus
// directory is a failure too (exit 1).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_targets.h"

#define BUONI_DECLARE_TARGET(name) \
  extern "C" int buoni_fuzz_##name(const std::uint8_t* data, std::size_t size);
BUONI_FUZZ_TARGETS(BUONI_DECLARE_TARGET)
#undef BUONI_DECLARE_TARGET

namespace {

namespace fs = std::filesystem;
using Run = int (*)(const std::uint8_t*, std::size_t);

struct Target {
  std::string_view name;
  Run run;
};

#define BUONI_TARGET_ROW(name) Target{#name, buoni_fuzz_##name},
const Target kTargets[] = {BUONI_FUZZ_TARGETS(BUONI_TARGET_ROW)};
#undef BUONI_TARGET_ROW

// The input being replayed, for the crash message (a fixed buffer: the
// signal handler may only write(2) it).
char g_current[4096] = "";

void on_crash(int signal_number) {
  constexpr std::string_view what = "\nfuzz_replay: crashed on input: ";
  static_cast<void>(write(STDERR_FILENO, what.data(), what.size()));
  static_cast<void>(write(STDERR_FILENO, g_current, std::strlen(g_current)));
  static_cast<void>(write(STDERR_FILENO, "\n", 1));
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void install_crash_handlers() {
  for (int s : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(s, on_crash);
}

// The files under `path` (or `path` itself), sorted; none if it does not exist.
std::vector<fs::path> inputs_of(const fs::path& path) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  if (!fs::is_directory(path, ec)) return files;
  for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
    if (e.is_regular_file() && !e.path().filename().string().starts_with(".")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::size_t replay(const Target& target, const std::vector<fs::path>& files) {
  for (const fs::path& file : files) {
    std::snprintf(g_current, sizeof(g_current), "%s %s", std::string(target.name).c_str(),
                  file.c_str());
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  return files.size();
}

const Target* find_target(std::string_view name) {
  for (const Target& t : kTargets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int replay_all() {
  const fs::path root = BUONI_FUZZ_DIR;
  int failures = 0;
  for (const Target& t : kTargets) {
    const fs::path corpus = root / "corpus" / t.name;
    std::vector<fs::path> seeds = inputs_of(corpus);
    if (seeds.empty()) {
      std::fprintf(stderr, "fuzz_replay: %s: no seed corpus in %s\n", std::string(t.name).c_str(),
                   corpus.c_str());
      ++failures;
      continue;
    }
    std::size_t n = replay(t, seeds);
    std::size_t r = replay(t, inputs_of(root / "regressions" / t.name));
    std::printf("%-14s %4zu seeds, %3zu regressions: ok\n", std::string(t.name).c_str(), n, r);
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  install_crash_handlers();
  if (argc == 1) return replay_all();
  const Target* target = find_target(argv[1]);
  if (target == nullptr || argc < 3) {
    std::fprintf(stderr, "usage: fuzz_replay [TARGET PATH...]; targets:");
    for (const Target& t : kTargets) std::fprintf(stderr, " %s", std::string(t.name).c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  std::size_t n = 0;
  for (int i = 2; i < argc; ++i) n += replay(*target, inputs_of(argv[i]));
  std::printf("%s: %zu inputs: ok\n", argv[1], n);
  return 0;
}
