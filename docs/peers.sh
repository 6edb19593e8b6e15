#!/usr/bin/env bash
# etcd, ZooKeeper and consensus-lab (Raft and ZAB) measured in one sitting with one load
# generator (`consensus-lab load --system ...`), one system at a time on this machine: 3 nodes on
# loopback, fsync on (etcd's WAL and ZooKeeper's transaction log sync every batch, as this
# project's file log does), 100-byte values, closed-loop clients.
#
# For each system: a warm-up load (ZooKeeper's JIT needs it; every system gets the same), then
# writes with 1 client, writes with 64 clients, reads with 64 clients at each read level the
# system serves, and local reads with every client on one node. Prints each row as it is
# measured (on stderr) and the markdown table at the end (on stdout); the JSON reports stay in
# $OUT (default: a new temporary directory). Beside each row's rate and latency:
# the CPU time (user + system, from /proc/<pid>/stat) the three nodes spent over the run,
# divided by the operations answered: what an operation costs each system, whatever share of
# the two shared cores it got.
#
# Needs Debian's etcd-server and zookeeper packages:
#   apt-get install etcd-server zookeeper
# Usage: docs/peers.sh [system ...]   systems: etcd zookeeper raft zab (this project's HTTP API),
#   raft-etcd zab-etcd (this project through its etcd front-end, driven as etcd is),
#   raft-zk zab-zk (through its ZooKeeper front-end, driven as ZooKeeper is); default: all eight
# Environment: SECS (seconds per row, default 10), WARM (warm-up seconds, default 20: ZooKeeper's
#   throughput was still climbing after 10),
#   OUT (where to keep the reports),
#   ROWS (all: the rows above, the default; local: only local reads, with every client on 1, 2
#   and 3 nodes),
#   CAP (a fraction of one CPU, e.g. 0.25: each node process runs in its own cgroup limited to
#   that share, as if every node had a machine of its own that small; needs root and cgroup
#   v1's cpu controller at /sys/fs/cgroup/cpu. On this 2-core machine every node otherwise
#   shares the same two cores with the others and the load generator, so serving reads on more
#   nodes cannot show more capacity: `CAP=0.25 ROWS=local docs/peers.sh` measures how local
#   reads scale with the nodes that serve them).
set -euo pipefail
cd "$(dirname "$0")/.."
source docs/bench-lib.sh # wait_ports, cpu_ticks
SECS=${SECS:-10}
ROWS=${ROWS:-all}
CAP=${CAP:-}
WARM=${WARM:-20}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cargo build --release -q -p harness
bin=$PWD/target/release/consensus-lab
systems=("${@:-etcd raft-etcd zab-etcd zookeeper raft-zk zab-zk raft zab}")
systems=(${systems[*]})

pids=()
nodes=()
cgroups=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  cgroups=()
}
trap stop_all EXIT

if [ -n "$CAP" ] && [ ! -w /sys/fs/cgroup/cpu ]; then
  echo "CAP needs root and cgroup v1's cpu controller at /sys/fs/cgroup/cpu" >&2
  exit 2
fi

# cap_nodes PID...: each process (with its threads) into its own cgroup limited to $CAP of one
# CPU. Nothing without CAP.
cap_nodes() {
  [ -n "$CAP" ] || return 0
  local quota i=0
  quota=$(python3 -c "print(int(float('$CAP') * 100000))")
  for pid in "$@"; do
    i=$((i + 1))
    local g=/sys/fs/cgroup/cpu/consensus-lab-peers-$i
    mkdir -p "$g"
    echo 100000 >"$g/cpu.cfs_period_us"
    echo "$quota" >"$g/cpu.cfs_quota_us"
    echo "$pid" >"$g/cgroup.procs"
    cgroups+=("$g")
  done
  echo "== each of $# nodes limited to $CAP of a CPU" >&2
}

start_etcd() {
  command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server)" >&2; exit 1; }
  local cluster=e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$OUT/etcd/d$i" \
      --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
      --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
      --initial-cluster "$cluster" --initial-cluster-state new --log-level warn \
      >"$OUT/etcd-$i.log" 2>&1 &
    pids+=($!)
  done
  endpoints=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793
  wait_ports 127.0.0.1:23791 127.0.0.1:23792 127.0.0.1:23793
  nodes=("${pids[@]}")
}

start_zookeeper() {
  [ -f /usr/share/java/zookeeper.jar ] || { echo "ZooKeeper is not installed (apt-get install zookeeper)" >&2; exit 1; }
  for i in 1 2 3; do
    mkdir -p "$OUT/zk/d$i"
    echo "$i" >"$OUT/zk/d$i/myid"
    # forceSync is on by default: the transaction log is fsynced before a proposal is acked.
    # maxClientCnxns=0: no limit on connections from one address (the default, 60, refuses
    # part of the 64 clients when they all go to one server, as in the local-read row).
    cat >"$OUT/zk/z$i.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$OUT/zk/d$i
clientPort=2181$i
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr
maxClientCnxns=0
server.1=127.0.0.1:28881:38881
server.2=127.0.0.1:28882:38882
server.3=127.0.0.1:28883:38883
EOF
    java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar -Dzookeeper.log.dir="$OUT/zk" \
      -Dzookeeper.root.logger=WARN,CONSOLE org.apache.zookeeper.server.quorum.QuorumPeerMain \
      "$OUT/zk/z$i.cfg" >"$OUT/zookeeper-$i.log" 2>&1 &
    pids+=($!)
  done
  endpoints=127.0.0.1:21811,127.0.0.1:21812,127.0.0.1:21813
  wait_ports 127.0.0.1:21811 127.0.0.1:21812 127.0.0.1:21813
  nodes=("${pids[@]}")
}

# start_lab PROTOCOL [FRONT]: a consensus-lab cluster; FRONT (etcd or zk) points the endpoints
# at that front-end instead of the HTTP API.
start_lab() {
  rm -rf "$OUT/$1-${2:-http}"
  "$bin" cluster --protocol "$1" --nodes 3 --data-dir "$OUT/$1-${2:-http}" --peer-base 24000 --http-base 25000 \
    --etcd-base 26000 --zk-base 27000 >"$OUT/$1-${2:-http}.log" 2>&1 &
  pids+=($!)
  case ${2:-http} in
    http) endpoints=127.0.0.1:25001,127.0.0.1:25002,127.0.0.1:25003 ;;
    etcd) endpoints=127.0.0.1:26001,127.0.0.1:26002,127.0.0.1:26003 ;;
    zk) endpoints=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003 ;;
  esac
  wait_ports ${endpoints//,/ }
  # The nodes are the `cluster` supervisor's children.
  mapfile -t nodes < <(pgrep -P "${pids[-1]}")
}

hz=$(getconf CLK_TCK)

rows=()
# load NAME SYSTEM LABEL ARGS...: one measured row (named $display when set), with the CPU
# time all the nodes spent per operation over the run.
load() {
  local name=$1 system=$2 label=$3
  shift 3
  local file="$OUT/$name-$label.json" before after
  before=$(cpu_ticks "${nodes[@]}")
  "$bin" load --system "$system" --endpoints "${only:-$endpoints}" --seconds "$SECS" --json "$@" >"$file"
  after=$(cpu_ticks "${nodes[@]}")
  local row
  row=$(python3 - "$file" "$system" "$label" "${display:-}" "$((after - before))" "$hz" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
name = sys.argv[4] or (f'consensus-lab {r["protocol"]}' if sys.argv[2] == "lab" else r["protocol"])
cpu = int(sys.argv[5]) / int(sys.argv[6]) * 1e6 / max(r["ops"], 1)
print(f'| {name} | {sys.argv[3]} | {r["ops_per_sec"]:,.0f} | '
      f'{l["p50_ms"]:.2f} / {l["p99_ms"]:.2f} | {cpu:.0f} | {r["errors"]} |')
EOF
)
  echo "$row" >&2 # progress; the table at the end is the output
  rows+=("$row")
}

for s in "${systems[@]}"; do
  case $s in
    etcd) start_etcd; system=etcd; levels="index local"; display= ;;
    zookeeper) start_zookeeper; system=zookeeper; levels="index local"; display= ;;
    raft | zab) start_lab "$s"; system=lab; levels="log index lease local"; display= ;;
    raft-etcd | zab-etcd)
      start_lab "${s%-etcd}" etcd; system=etcd; levels="index local"
      display="consensus-lab ${s%-etcd} (etcd API)" ;;
    raft-zk | zab-zk)
      start_lab "${s%-zk}" zk; system=zookeeper; levels="index local"
      display="consensus-lab ${s%-zk} (ZooKeeper API)" ;;
    *) echo "unknown system $s (etcd, zookeeper, raft, zab, raft-etcd, zab-etcd, raft-zk, zab-zk)" >&2; exit 2 ;;
  esac
  echo "== $s: warming up for $WARM s" >&2
  "$bin" load --system "$system" --endpoints "$endpoints" --seconds "$WARM" --clients 64 --json >/dev/null
  # Capped after the warm-up: a JVM starting on a quarter of a CPU takes longer than the
  # clients wait for their first session.
  cap_nodes "${nodes[@]}"
  if [ "$ROWS" = local ]; then
    # Local reads scale with the nodes that serve them: the same load on 1, 2 and 3 nodes.
    local_reads=(--clients 64 --read-ratio 1 --read-consistency local)
    only=${endpoints%%,*} load "$s" "$system" "reads (local), 64 clients, 1 node" "${local_reads[@]}"
    only=${endpoints%,*} load "$s" "$system" "reads (local), 64 clients, 2 nodes" "${local_reads[@]}"
    load "$s" "$system" "reads (local), 64 clients, 3 nodes" "${local_reads[@]}"
    stop_all
    continue
  fi
  load "$s" "$system" "writes, 1 client" --clients 1
  load "$s" "$system" "writes, 64 clients" --clients 64
  for level in $levels; do
    load "$s" "$system" "reads ($level), 64 clients" --clients 64 --read-ratio 1 --read-consistency "$level"
  done
  # Local reads scale with the nodes that serve them: the same load on one node only.
  only=${endpoints%%,*} load "$s" "$system" "reads (local), 64 clients, 1 node" --clients 64 --read-ratio 1 --read-consistency local
  stop_all
done

echo
echo "| system | load | ops/s | p50 / p99 ms | nodes' CPU µs/op | errors |"
echo "|---|---|---:|---|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "reports in $OUT" >&2
