#!/usr/bin/env bash
# Regenerates the deterministic figures of docs/ (virtual time: the same on any machine).
# Usage: docs/make-figures.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p harness
./target/release/consensus-lab figure16 --trials 1000 -o docs/img/figure16.svg
