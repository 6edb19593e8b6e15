#!/usr/bin/env bash
# The same HTTP loads as docs/ab.sh and docs/http-floor.sh, driven by wrk (Debian's package
# `wrk`: a C client, one thread and one epoll loop per process) instead of `consensus-lab
# load`: what a lighter client changes. 64 connections: reads spread over the three servers
# (three wrk processes of 21 connections, each on one server, all reading one stored key);
# writes all to the leader (one wrk process, a PUT of 100 bytes to one of 1,000 keys per
# request), as `load` sends them. A 2-second warm-up, then a measured run. Prints requests
# per second, the servers' CPU per request, wrk's CPU per request and the machine's idle share.
#
# Usage: docs/wrk.sh CONSENSUS_LAB TARGET [PROTOCOL]
#   TARGET: floor (three `http_floor` servers: target/release/examples/http_floor beside
#   CONSENSUS_LAB's directory), writes, or a read level (index, lease, local, log) on a fresh
#   3-node cluster of PROTOCOL (default raft).
# Environment: SECS (measured seconds, default 5).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
lab=$1 target=$2 proto=${3:-raft}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
SECS=${SECS:-5}
hz=$(getconf CLK_TCK)
ports=(25001 25002 25003)
source "$(dirname "$0")/bench-lib.sh" # wait_ports, cpu_ticks, idle_ticks, waited_ticks, with_servers
with_servers

if [ "$target" = floor ]; then
  floor=$(dirname "$lab")/examples/http_floor
  [ -x "$floor" ] || { echo "no $floor: cargo build --release -p harness --example http_floor" >&2; exit 2; }
  for p in "${ports[@]}"; do
    "$floor" "$p" &
    servers+=($!)
  done
  measured=("${servers[@]}")
else
  "$lab" cluster --protocol "$proto" --nodes 3 --data-dir "$work/data" --peer-base 24000 \
    --http-base 25000 >"$work/cluster.log" 2>&1 &
  servers+=($!)
fi
wait_ports "${ports[@]/#/127.0.0.1:}"
if [ "$target" != floor ]; then
  mapfile -t measured < <(pgrep -P "${servers[0]}")
  if [ "${#measured[@]}" -ne 3 ]; then
    echo "the cluster did not start its 3 nodes; its log:" >&2
    tail -5 "$work/cluster.log" >&2
    exit 1
  fi
fi
leader=
for _ in $(seq 50); do
  for p in "${ports[@]}"; do
    if curl -s "http://127.0.0.1:$p/status" | grep -q '"role":"Leader"'; then leader=$p; fi
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader among ${ports[*]}" >&2; exit 1; }
printf 'v%.0s' $(seq 100) >"$work/value"
curl -s -o /dev/null -X PUT --data-binary @"$work/value" "http://127.0.0.1:$leader/kv/k"
cat >"$work/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = string.rep("v", 100)
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/kv/w" .. (n % 1000))
end
LUA

# drive SECONDS: the load of this target, to its end.
drive() {
  local pids=() p
  if [ "$target" = writes ]; then
    wrk -t1 -c64 -d"$1"s -s "$work/put.lua" "http://127.0.0.1:$leader" >"$work/wrk.$leader" &
    pids+=($!)
  else
    for p in "${ports[@]}"; do
      wrk -t1 -c21 -d"$1"s "http://127.0.0.1:$p/kv/k?consistency=$target" >"$work/wrk.$p" &
      pids+=($!)
    done
  fi
  wait "${pids[@]}"
}
drive 2
rm -f "$work"/wrk.*
before=$(cpu_ticks "${measured[@]}")
idle_before=$(idle_ticks)
wrk_before=$(waited_ticks)
drive "$SECS"
wrk_after=$(waited_ticks)
idle_after=$(idle_ticks)
after=$(cpu_ticks "${measured[@]}")
stop
python3 - "$target" "$SECS" "$hz" "$((after - before))" "$((wrk_after - wrk_before))" \
  $idle_before $idle_after "$work"/wrk.* <<'PY'
import re, sys
target, secs, hz, servers, client = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
idle = (int(sys.argv[8]) - int(sys.argv[6])) / max(int(sys.argv[9]) - int(sys.argv[7]), 1)
rate, bad = 0.0, 0
for f in sys.argv[10:]:
    text = open(f).read()
    rate += float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad += int(m.group(1)) if m else 0
ops = rate * secs
print(f"{target}: {rate:>9,.0f} requests/s  non-2xx {bad}  servers' CPU "
      f"{servers / hz * 1e6 / ops:.1f} µs/op  wrk's CPU {client / hz * 1e6 / ops:.1f} µs/op  "
      f"machine idle {100 * idle:.0f}%")
PY
