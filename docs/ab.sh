#!/usr/bin/env bash
# Two builds of consensus-lab measured in turns under the same load: for each round and each
# build, a fresh 3-node `cluster`, a 3-second warm-up, then a measured `load` run. Prints one
# line per run: writes (or reads) per second, p50 / p99, errors, the CPU time (user +
# system, every thread, from /proc/<pid>/stat) the three nodes spent per operation, the CPU
# time the load generator spent per operation (it shares the machine), and how much of the
# machine's CPU time was idle meanwhile (from /proc/stat: a run with idle time left is bound
# by waiting, for the disk or a round trip, rather than by the CPU).
#
# On these shared 2-core machines the rate moves by tens of percent from one hour to the next;
# runs of the two builds in turns, a few minutes apart, and the CPU per operation beside the
# rate, are what can tell a change from the hour.
#
# Usage: docs/ab.sh BIN_A BIN_B PROTOCOL FRONT [load args...]
#   FRONT: http (this project's API), zk (its ZooKeeper front-end, driven as ZooKeeper is) or
#   etcd (its etcd front-end); load args default to `--clients 64`.
# Environment: ROUNDS (default 2), SECS (measured seconds per run, default 5).
# Example: docs/ab.sh /tmp/before/consensus-lab target/release/consensus-lab zab zk --clients 64
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
a=$1 b=$2 proto=$3 front=$4
shift 4
[ $# -gt 0 ] || set -- --clients 64
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
done
case $front in
  http) endpoints=127.0.0.1:25001,127.0.0.1:25002,127.0.0.1:25003 system=lab ;;
  zk) endpoints=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003 system=zookeeper ;;
  etcd) endpoints=127.0.0.1:26001,127.0.0.1:26002,127.0.0.1:26003 system=etcd ;;
  *) echo "FRONT is http, zk or etcd, not $front" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-5}
work=$(mktemp -d)
cluster=
stop() {
  if [ -n "$cluster" ]; then
    kill -INT "$cluster" 2>/dev/null || true
    wait "$cluster" 2>/dev/null || true
    cluster=
  fi
}
trap 'stop; rm -rf "$work"' EXIT

source "$(dirname "$0")/bench-lib.sh" # wait_ports, cpu_ticks, idle_ticks, waited_ticks, print_run

# run NAME BIN: one measured run of one build on a fresh cluster.
run() {
  local name=$1 bin=$2
  shift 2
  rm -rf "$work/data"
  "$bin" cluster --protocol "$proto" --nodes 3 --data-dir "$work/data" --peer-base 24000 \
    --http-base 25000 --etcd-base 26000 --zk-base 27000 >"$work/cluster.log" 2>&1 &
  cluster=$!
  wait_ports ${endpoints//,/ }
  "$bin" load --system "$system" --endpoints "$endpoints" --seconds 3 --clients 64 --json >/dev/null
  local nodes before after idle_before idle_after
  mapfile -t nodes < <(pgrep -P "$cluster")
  if [ "${#nodes[@]}" -ne 3 ]; then
    # Another cluster on these ports (one still stopping) would answer in its place.
    echo "the cluster of $bin did not start its 3 nodes; its log:" >&2
    tail -5 "$work/cluster.log" >&2
    exit 1
  fi
  before=$(cpu_ticks "${nodes[@]}")
  idle_before=$(idle_ticks)
  local load_before load_after
  load_before=$(waited_ticks)
  "$bin" load --system "$system" --endpoints "$endpoints" --seconds "$SECS" --json "$@" >"$work/load.json"
  load_after=$(waited_ticks)
  idle_after=$(idle_ticks)
  after=$(cpu_ticks "${nodes[@]}")
  stop
  print_run "$work/load.json" "$name" nodes "$((after - before))" "$idle_before" "$idle_after" \
    "$((load_after - load_before))"
}

for round in $(seq "$ROUNDS"); do
  run "A" "$a" "$@"
  run "B" "$b" "$@"
done
