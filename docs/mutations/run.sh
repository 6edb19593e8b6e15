#!/usr/bin/env bash
# The mutation table of docs/simulator.md: for each deliberately broken core, apply its patch,
# sweep seeds with `check`, and print the first failing seed; then restore the code.
# Usage: docs/mutations/run.sh [SEEDS] [NODES]   (defaults: 1..200 and 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${1:-1..200}
nodes=${2:-5}
for patch in docs/mutations/*.patch; do
  name=$(basename "$patch" .patch)
  case "$name" in raft-*) proto=raft ;; *) proto=zab ;; esac
  # A patch may name extra `check` flags in a leading `# check: ...` line.
  extra=$(sed -n 's/^# check: //p' "$patch" | head -1)
  git apply "$patch"
  trap 'git apply -R "$patch"' EXIT
  cargo build --release -q -p harness
  out=$(./target/release/consensus-lab check --protocol "$proto" --faults chaos --seeds "$seeds" \
    --nodes "$nodes" --jobs 2 $extra 2>&1 || true)
  git apply -R "$patch"
  trap - EXIT
  first=$( (grep -o -- '--seed [0-9]*' <<<"$out" || true) | head -1 | awk '{print $2}')
  summary=$( (grep -E 'seeds of' <<<"$out" || true) | tail -1)
  why=$( (grep -m1 'FAILED:' <<<"$out" || true) | sed 's/.*FAILED: //' | cut -c1-160)
  echo "$name | first failing seed: ${first:-none} | $summary | $why"
done
cargo build --release -q -p harness
