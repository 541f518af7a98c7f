#!/usr/bin/env bash
# Installs what Weir's tests need, then runs every test of the workspace.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a C toolchain for crates that build C code. Installed
# only when missing, with Debian's packages (the project's machines are
# Debian; other systems: install the equivalents yourself).
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found: install Rust 1.94 or newer (https://rustup.rs)" >&2
  exit 1
fi

cargo test --workspace --locked "$@"
