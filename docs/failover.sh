#!/usr/bin/env bash
# Failover under load on a real local cluster, for each protocol: a 3-node `cluster --restart`,
# 64 closed-loop writers for 10 s, the leader SIGKILLed at 4 s. Writes
# docs/img/failover-<protocol>.svg and prints each load report. Wall-clock figures: they vary
# from run to run and machine to machine.
# Usage: docs/failover.sh [protocol ...]   (default: raft zab)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p harness
bin=./target/release/consensus-lab
for protocol in "${@:-raft zab}"; do
  for p in $protocol; do
    dir=$(mktemp -d)
    $bin cluster --protocol "$p" --nodes 3 --restart --data-dir "$dir" >"$dir/cluster.out" 2>"$dir/cluster.err" &
    cluster=$!
    trap 'kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -rf "$dir"' EXIT
    $bin load --seconds 10 --kill-leader-at 4 --plot "docs/img/failover-$p.svg"
    kill -INT "$cluster"
    wait "$cluster" || true
    trap - EXIT
    rm -rf "$dir"
  done
done
