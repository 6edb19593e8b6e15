# Shell functions shared by docs/peers.sh and docs/ab.sh (sourced, not run).

# wait_ports HOST:PORT...: waits until each accepts TCP connections (30 s at most each).
wait_ports() {
  for addr in "$@"; do
    for _ in $(seq 300); do
      (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
      sleep 0.1
    done
  done
}

# cpu_ticks PID...: the CPU time (user + system, every thread, in clock ticks: `getconf
# CLK_TCK` of them per second) these processes have used so far; one that is gone counts 0.
cpu_ticks() {
  local t=0 pid fields
  for pid in "$@"; do
    # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
    fields=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    set -- $fields
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}

# idle_ticks: the machine's idle and total CPU time so far, all CPUs, in clock ticks (two
# numbers: idle (idle + iowait), then total), from the first line of /proc/stat.
idle_ticks() {
  local cpu user nice system idle iowait irq softirq steal rest
  read -r cpu user nice system idle iowait irq softirq steal rest </proc/stat
  echo "$((idle + iowait)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# waited_ticks: the CPU time (user + system, clock ticks) of this shell's children that it has
# waited for: around a foreground command, the difference is what that command (and the
# processes it waited for) spent. Read from the main shell's /proc entry ($$), so it holds
# inside $(...) too.
waited_ticks() {
  local st
  read -ra st </proc/$$/stat
  # Fields 16 and 17 (cutime, cstime); the name in field 2 is one word for bash.
  echo "$((st[15] + st[16]))"
}

# stop_pids PID...: stops these processes (SIGTERM; background jobs of a script ignore SIGINT
# unless they handle it) and waits for each.
stop_pids() {
  local pid
  for pid in "$@"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# print_run LOAD_JSON NAME WHO SERVER_TICKS IDLE_BEFORE IDLE_AFTER LOAD_TICKS: one line for a
# measured `consensus-lab load --json` run: its rate, p50 / p99 and errors, the CPU per
# operation of the servers (named WHO) and of the load generator, and the machine's idle share
# (IDLE_*: two words each, from idle_ticks).
print_run() {
  python3 - "$1" "$2" "$3" "$4" "$(getconf CLK_TCK)" $5 $6 "$7" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, who, ticks, hz = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
l = r["latency"]
ops = max(r["ops"], 1)
cpu = ticks / hz * 1e6 / ops
idle = (int(sys.argv[8]) - int(sys.argv[6])) / max(int(sys.argv[9]) - int(sys.argv[7]), 1)
load = int(sys.argv[10]) / hz * 1e6 / ops
print(f'{name}: {r["ops_per_sec"]:>8,.0f} ops/s  p50 {l["p50_ms"]:.2f} ms  '
      f'p99 {l["p99_ms"]:.2f} ms  errors {r["errors"]}  {who}\' CPU {cpu:.1f} µs/op  '
      f'load\'s CPU {load:.1f} µs/op  machine idle {100 * idle:.0f}%')
PY
}

# with_servers: sets up `work` (a scratch directory) and `servers` (PIDs the script starts),
# and `stop`, which stops the servers; on exit, both go.
with_servers() {
  work=$(mktemp -d)
  servers=()
  stop() {
    stop_pids "${servers[@]}"
    servers=()
  }
  trap 'stop; rm -rf "$work"' EXIT
}
