# Sourced by docs/peers.sh and docs/ab.sh.
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
