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
