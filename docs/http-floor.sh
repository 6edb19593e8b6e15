#!/usr/bin/env bash
# The floor under this project's HTTP figures: `consensus-lab load` against three processes of
# the `http_floor` example (the node's HTTP stack, axum on hyper, with no node behind it: a
# read answers a fixed 100-byte value, a write answers 200 at once), in the layout of
# docs/ab.sh (three servers on 127.0.0.1:25001-25003, 64 clients, a 3-second warm-up, then a
# measured run). Prints, per run, the same line as docs/ab.sh: operations per second, p50 /
# p99, the servers' CPU per operation, the load generator's CPU per operation and the machine's
# idle share. What the client and the HTTP path alone cost here bounds every HTTP row of
# docs/performance.md from above.
#
# Usage: docs/http-floor.sh CONSENSUS_LAB HTTP_FLOOR [load args...]
#   HTTP_FLOOR: target/release/examples/http_floor
#   (cargo build --release -p harness --example http_floor); load args default to
#   `--clients 64 --read-ratio 1 --read-consistency lease`.
# Environment: ROUNDS (default 2), SECS (measured seconds per run, default 5).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
lab=$1 floor=$2
shift 2
[ $# -gt 0 ] || set -- --clients 64 --read-ratio 1 --read-consistency lease
for bin in "$lab" "$floor"; do
  [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
done
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-5}
endpoints=127.0.0.1:25001,127.0.0.1:25002,127.0.0.1:25003

source "$(dirname "$0")/bench-lib.sh" # wait_ports, cpu_ticks, idle_ticks, waited_ticks, with_servers, print_run
with_servers

for round in $(seq "$ROUNDS"); do
  for port in 25001 25002 25003; do
    "$floor" "$port" &
    servers+=($!)
  done
  wait_ports ${endpoints//,/ }
  "$lab" load --endpoints "$endpoints" --seconds 3 --json "$@" >/dev/null
  before=$(cpu_ticks "${servers[@]}")
  idle_before=$(idle_ticks)
  load_before=$(waited_ticks)
  "$lab" load --endpoints "$endpoints" --seconds "$SECS" --json "$@" >"$work/load.json"
  load_after=$(waited_ticks)
  idle_after=$(idle_ticks)
  after=$(cpu_ticks "${servers[@]}")
  stop
  print_run "$work/load.json" floor servers "$((after - before))" "$idle_before" "$idle_after" \
    "$((load_after - load_before))"
done
