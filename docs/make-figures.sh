#!/usr/bin/env bash
# Regenerates the deterministic figures of README.md and docs/ (virtual time and event counts:
# the same on any machine): the SVG plots, and every value marked <!--fig ...--> in the Markdown
# (harness/tests/doc_figures.rs checks those in CI and rewrites them here).
# Usage: docs/make-figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p harness
# The report's figures, each alone (figure16.svg is `figure16 --trials 1000`); the page itself
# goes to target/ (open it in a browser).
./target/release/consensus-lab report --no-real -o target/report.html --svg-dir docs/img
UPDATE_DOCS=1 cargo test -q -p harness --test doc_figures
git status --short README.md docs/
