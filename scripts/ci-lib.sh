# Shared by scripts/ci-*.sh (sourced): phase timing and clang's packages.

# phase_start NAME / phase_end: prints how long the phase took, and appends
# it to $BUONI_CI_TIMES when set (.ci/run prints them all at the end).
phase_start() {
  _phase_name=$1
  _phase_t0=$(date +%s)
  echo "== $_phase_name" >&2
}
phase_end() {
  local s=$(($(date +%s) - _phase_t0))
  local line
  line=$(printf '%-58s %3dm%02ds' "$_phase_name" $((s / 60)) $((s % 60)))
  echo "== done: $line" >&2
  if [ -n "${BUONI_CI_TIMES:-}" ]; then echo "$line" >>"$BUONI_CI_TIMES"; fi
}

# clang 14 and its sanitizer/libFuzzer runtimes (Debian 12), with the rest
# (scripts/install-deps.sh): quiet when already there.
ci_install_clang() {
  bash "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh" clang libclang-rt-14-dev
}
