#!/usr/bin/env bash
# Installs what Weir's tests need, then runs every test of the workspace.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a C toolchain for crates that build C code, and the
# Postgres clients of the pgwire tests (psql; Python with venv, for
# psycopg). Installed only when missing, with Debian's packages (the
# project's machines are Debian; other systems: install the equivalents
# yourself).
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v psql >/dev/null || need+=(postgresql-client)
# The lookup-join tests start a PostgreSQL server of their own.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# The dashboard's tests (tests/dashboard.rs): Debian's chromium, driven
# headless by playwright-core, which npm installs from
# tests/dashboard/package-lock.json.
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found: install Rust 1.94 or newer (https://rustup.rs)" >&2
  exit 1
fi

# A Kafka-compatible broker for the Kafka tests (tests/common/kafka.rs
# starts one per test on loopback): nisshi 0.7.0, the version whose
# transactions and consumer-group offsets the tests were checked against.
# Built once (about 15 minutes on 2 cores) and kept in ~/.cargo/bin.
NISSHI_VERSION=0.7.0
if ! "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi" --version 2>/dev/null | grep -q "$NISSHI_VERSION"; then
  cargo install nisshi --version "$NISSHI_VERSION" --locked --ignore-rust-version \
    --no-default-features --features dynostore,libsql
fi

cargo test --workspace --locked "$@"
# The benchmarks are not run here, but must keep building: they share the
# tests' helpers, and a change to those once broke one unnoticed.
cargo test --workspace --locked --benches --no-run

# A short run of every fuzz target from its seeds, built without
# optimisation (a few minutes; docs/fuzzing.md has the longer runs). A fixed
# seed and number of executions, not of seconds: the same commit fuzzes the
# same inputs on any machine, so a finding is a finding of the change.
FUZZ_PROFILE=dev FUZZ_SEED=1 FUZZ_RUNS=30000 scripts/fuzz.sh 120 checkpoint pgwire
FUZZ_PROFILE=dev FUZZ_SEED=1 FUZZ_RUNS=1500 scripts/fuzz.sh 120 records sql
