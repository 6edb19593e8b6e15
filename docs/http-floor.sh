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
hz=$(getconf CLK_TCK)
endpoints=127.0.0.1:25001,127.0.0.1:25002,127.0.0.1:25003
work=$(mktemp -d)
servers=()
stop() {
  for pid in "${servers[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  servers=()
}
trap 'stop; rm -rf "$work"' EXIT

source "$(dirname "$0")/bench-lib.sh" # wait_ports, cpu_ticks, idle_ticks, waited_ticks

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
  python3 - "$work/load.json" "floor" "$((after - before))" "$hz" $idle_before $idle_after \
    "$((load_after - load_before))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
cpu = int(sys.argv[3]) / int(sys.argv[4]) * 1e6 / max(r["ops"], 1)
idle = (int(sys.argv[7]) - int(sys.argv[5])) / max(int(sys.argv[8]) - int(sys.argv[6]), 1)
load = int(sys.argv[9]) / int(sys.argv[4]) * 1e6 / max(r["ops"], 1)
print(f'{sys.argv[2]}: {r["ops_per_sec"]:>8,.0f} ops/s  p50 {l["p50_ms"]:.2f} ms  '
      f'p99 {l["p99_ms"]:.2f} ms  errors {r["errors"]}  servers\' CPU {cpu:.1f} µs/op  '
      f'load\'s CPU {load:.1f} µs/op  machine idle {100 * idle:.0f}%')
PY
done
