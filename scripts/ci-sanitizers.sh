#!/usr/bin/env bash
# CI: the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/), then the concurrency tests under ThreadSanitizer
# (build-tsan/). Both with clang from Debian: it builds this code with ASan
# about three times faster than GCC does. Tests that run the `buoni` binary
# get the instrumented one of the same build directory. Warnings are not
# errors here (the normal GCC build of scripts/test.sh checks them).
# TSan: engine_test (the batching and fail-stop cases run concurrent
# submitters), handler_test (concurrent redemptions), server_parts_test,
# server_load_test (64 connections against a real `buoni serve`).
# crash_test kills processes and is left to the ASan run.
#   bash scripts/ci-sanitizers.sh [asan|tsan]...   (default: both)
# BUONI_ASAN_BUILD / BUONI_TSAN_BUILD name other build directories.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci-lib.sh
ci_install_clang

[ $# -eq 0 ] && set -- asan tsan
common_flags=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUONI_WERROR=OFF
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG")
asan_dir=${BUONI_ASAN_BUILD:-build-asan}
tsan_dir=${BUONI_TSAN_BUILD:-build-tsan}
tsan_tests=(engine_test handler_test server_parts_test server_load_test)

# Configures `dir` with clang; a directory configured with another compiler
# (an older GCC build-asan/) is started afresh.
configure_clang() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  CC=clang CXX=clang++ cmake -S . -B "$dir" "${common_flags[@]}" "$@" >/dev/null
}

run_asan() {
  phase_start "ASan+UBSan build ($asan_dir, everything)"
  configure_clang "$asan_dir" -DBUONI_SANITIZE=ON
  cmake --build "$asan_dir"
  phase_end
  phase_start "ASan+UBSan: the whole suite (ctest -j2)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$asan_dir" --output-on-failure -j2 --timeout 900
  phase_end
}

run_tsan() {
  phase_start "TSan build ($tsan_dir: buoni and ${tsan_tests[*]})"
  configure_clang "$tsan_dir" -DBUONI_TSAN=ON
  cmake --build "$tsan_dir" --target buoni "${tsan_tests[@]}"
  phase_end
  phase_start "TSan: ${tsan_tests[*]}"
  local pattern
  pattern="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  # setarch -R: older TSan runtimes cannot map their shadow under a kernel's
  # large ASLR (vm.mmap_rnd_bits > 28); the children inherit it.
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
    setarch "$(uname -m)" -R ctest --test-dir "$tsan_dir" -R "$pattern" --output-on-failure -j2 \
    --timeout 900
  phase_end
}

for step in "$@"; do
  case "$step" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "ci-sanitizers: unknown step $step (asan, tsan)" >&2; exit 2 ;;
  esac
done
