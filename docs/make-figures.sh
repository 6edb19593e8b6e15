#!/usr/bin/env bash
# Regenerates the deterministic figures of README.md and docs/ (virtual time and event counts:
# the same on any machine): the SVG plots, and every value marked <!--fig ...--> in the Markdown
# (harness/tests/doc_figures.rs checks those in CI and rewrites them here).
# Usage: docs/make-figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p harness
./target/release/consensus-lab figure16 --trials 1000 -o docs/img/figure16.svg
UPDATE_DOCS=1 cargo test -q -p harness --test doc_figures
git status --short README.md docs/
