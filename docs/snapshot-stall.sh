#!/usr/bin/env bash
# Does a node stop while it takes a snapshot? Three `serve` nodes on loopback with file logs,
# 64 closed-loop writers through the ZooKeeper front-end (or the HTTP API) for SECS seconds,
# a snapshot every THRESHOLD applied entries; then the writes per second, the latencies, the
# failed writes, the nodes' CPU time per write and how many times, under the load, a node lost
# its leader (a role change to Looking, Candidate or PreCandidate, or a follower without one).
#
# A node that stops longer than its followers wait for it (ZAB's syncLimit, 300 ms; Raft's
# election timeout, 150-300 ms) loses them: docs/performance.md, "Snapshots off the node's loop".
#
# Usage: docs/snapshot-stall.sh [BINARY]   (default: this checkout's release build, built first)
# Environment: PROTOCOL (zab, the default, or raft), SYSTEM (zookeeper, the default, or lab: the
#   HTTP API), THRESHOLD (default 100000, the node's default; 0: never), SECS (default 40),
#   BASE (first port of three consecutive ranges of 3, default 24100: BASE+1..3 peers,
#   BASE+1001..3 HTTP, BASE+3001..3 ZooKeeper).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then
  bin=$1
else
  cargo build --release -q -p harness
  bin=$PWD/target/release/consensus-lab
fi
PROTOCOL=${PROTOCOL:-zab}
SYSTEM=${SYSTEM:-zookeeper}
THRESHOLD=${THRESHOLD:-100000}
SECS=${SECS:-40}
BASE=${BASE:-24100}
dir=$(mktemp -d)
peers=1=127.0.0.1:$((BASE + 1)),2=127.0.0.1:$((BASE + 2)),3=127.0.0.1:$((BASE + 3))
http=1=127.0.0.1:$((BASE + 1001)),2=127.0.0.1:$((BASE + 1002)),3=127.0.0.1:$((BASE + 1003))
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
for i in 1 2 3; do
  "$bin" serve --protocol "$PROTOCOL" --id $i --peers "$peers" --peer-http "$http" \
    --data-dir "$dir/d$i" --http 127.0.0.1:$((BASE + 1000 + i)) \
    --zk-listen 127.0.0.1:$((BASE + 3000 + i)) --snapshot-threshold "$THRESHOLD" \
    >"$dir/n$i.log" 2>&1 &
  pids+=($!)
done
case $SYSTEM in
  zookeeper) endpoints=127.0.0.1:$((BASE + 3001)),127.0.0.1:$((BASE + 3002)),127.0.0.1:$((BASE + 3003)) ;;
  lab) endpoints=127.0.0.1:$((BASE + 1001)),127.0.0.1:$((BASE + 1002)),127.0.0.1:$((BASE + 1003)) ;;
  *) echo "SYSTEM must be zookeeper or lab, not $SYSTEM" >&2; exit 2 ;;
esac
sleep 3
# Only what happens under the load counts (Raft's first election is logged as a leader lost).
declare -A before
for i in 1 2 3; do before[$i]=$(wc -l <"$dir/n$i.log"); done
"$bin" load --system "$SYSTEM" --endpoints "$endpoints" --clients 64 --seconds "$SECS" --json \
  >"$dir/load.json"
ticks=0
for p in "${pids[@]}"; do
  ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat")))
done
lost=$(for i in 1 2 3; do tail -n +$((before[$i] + 1)) "$dir/n$i.log"; done |
  grep -c 'role="Looking"\|role="Candidate"\|role="PreCandidate"\|role="Follower".*leader=None' ||
  true)
python3 - "$dir/load.json" "$ticks" "$(getconf CLK_TCK)" "$SECS" "$lost" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ticks, hz, secs, lost = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
l = r["latency"]
per_write = ticks / hz * 1e6 / max(1, r["ops_per_sec"] * secs)
print(f"{r['ops_per_sec']:.0f} writes/s, p50 {l['p50_ms']:.2f} ms, p99 {l['p99_ms']:.2f} ms, "
      f"{r['errors']} failed, {per_write:.0f} us CPU per write (3 nodes, start-up included), "
      f"leader lost {lost} times")
EOF
