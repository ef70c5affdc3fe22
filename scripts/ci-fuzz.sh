#!/usr/bin/env bash
# CI: builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, in
# build-fuzz/) and runs each for FUZZ_SECONDS (default 30), two at a time,
# from its seed corpus and kept regressions. New inputs go to a temporary
# directory, never into the repository's corpus. A crash, leak, timeout or
# out-of-memory fails the run; its input is copied to
# tests/fuzz/regressions/<target>/, where `fuzz_replay` (a normal ctest)
# replays it from then on. docs/testing.md, "Fuzzing", has the longer runs.
#   FUZZ_SECONDS=300 bash scripts/ci-fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci-lib.sh

build=${BUONI_FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
all_targets=(token card_number api_body http csv export_verify)
targets=("${@:-${all_targets[@]}}")

ci_install_clang
phase_start "fuzz build ($build)"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUONI_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" --target fuzz_all
phase_end

work=$(mktemp -d /tmp/buoni-fuzz-XXXXXX)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Runs one target; its log and result go under $work/<target>/.
run_target() {
  local t=$1 dir=$work/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local seeds=(tests/fuzz/corpus/"$t")
  [ -d tests/fuzz/regressions/"$t" ] && seeds+=(tests/fuzz/regressions/"$t")
  local max_len=4096
  [ "$t" = export_verify ] && max_len=16384
  local rc=0
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

phase_start "fuzz run (${#targets[@]} targets x ${seconds} s, 2 at a time)"
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
phase_end

failed=0
printf '%-14s %10s %12s %8s %s\n' target exec/s executions corpus result
for t in "${targets[@]}"; do
  dir=$work/$t
  stat() { sed -n "s/^stat::$1: *//p" "$dir/log" | tail -1; }
  result=ok
  if [ "$(cat "$dir/rc")" != 0 ]; then
    result="FAILED (exit $(cat "$dir/rc"))"
    failed=1
    mkdir -p tests/fuzz/regressions/"$t"
    for a in "$dir"/artifacts/*; do
      [ -e "$a" ] || continue
      cp "$a" tests/fuzz/regressions/"$t"/
      result+=" kept tests/fuzz/regressions/$t/$(basename "$a")"
    done
  fi
  printf '%-14s %10s %12s %8s %s\n' "$t" "$(stat average_exec_per_sec)" \
    "$(stat number_of_executed_units)" "$(ls "$dir/corpus" | wc -l)" "$result"
done
if [ "$failed" != 0 ]; then
  for t in "${targets[@]}"; do
    if [ "$(cat "$work/$t/rc")" != 0 ]; then
      echo "---- fuzz_$t log (last 60 lines)" >&2
      tail -60 "$work/$t/log" >&2
    fi
  done
  echo "ci-fuzz: a fuzzer failed; its input is kept under tests/fuzz/regressions/ (commit it with the fix)" >&2
  exit 1
fi
rm -rf "$work"
