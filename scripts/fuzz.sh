#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) and runs each for SECONDS (default 60)
# from its seed corpus; fails if any target crashes, hangs or runs out of
# memory. What the targets cover and how to reproduce a crash:
# docs/fuzzing.md.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET…]
# FUZZ_PROFILE=dev builds the targets without optimisation (CI: a build of
# about a quarter of the time; fewer executions a second), and
# FUZZ_SEED=N with FUZZ_RUNS=N (libFuzzer's -seed and -runs: that many
# executions, SECONDS only a cap) makes a run repeat itself exactly; a run
# of so many seconds does not, as it gets further on a faster machine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(checkpoint records sql pgwire)
fi

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Stable Rust: no AddressSanitizer (it needs nightly's -Zsanitizer), which
# Weir's safe Rust does not need; libFuzzer's coverage instrumentation
# works on stable. Debug assertions turn integer overflow into a finding.
# 16 codegen units: cargo fuzz's default of 1 makes the instrumented
# DataFusion build far longer on small machines.
build=(--sanitizer none --debug-assertions --codegen-units 16)
if [ "${FUZZ_PROFILE:-release}" = dev ]; then
  build+=(--dev)
fi
seed=()
if [ -n "${FUZZ_SEED:-}" ]; then
  seed=(-seed="$FUZZ_SEED")
fi
if [ -n "${FUZZ_RUNS:-}" ]; then
  seed+=(-runs="$FUZZ_RUNS")
fi
cargo fuzz build "${build[@]}"
# The logs' directory: fuzz/target is not made when CARGO_TARGET_DIR
# puts the build elsewhere.
mkdir -p fuzz/target

failed=()
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus (ignored by git); the seeds are read.
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  log=fuzz/target/$target.log
  echo "fuzzing $target for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
  if ! cargo fuzz run "${build[@]}" "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 "${seed[@]}" >"$log" 2>&1; then
    failed+=("$target")
    tail -n 60 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "$target: ${execs:-?} executions, ${rate:-?}/s"
done

if ((${#failed[@]})); then
  echo "error: fuzz targets failed: ${failed[*]} (inputs in fuzz/artifacts/; see docs/fuzzing.md)" >&2
  exit 1
fi
