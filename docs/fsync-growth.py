#!/usr/bin/env python3
"""What an fdatasync costs when it grows the file, and when it does not.

Appends a 2,000-byte record and fdatasyncs it, 2,000 times, in three files: one that grows
with every record (what the file log did before 2026-12-02), one preallocated with
posix_fallocate, and one written with zeros ahead of the records (what the file log does now,
a step of 1 MiB at a time). A fourth run writes each record over zeros ahead with one
`pwritev(..., RWF_DSYNC)` instead of a write and an fdatasync (one system call: does it cost
less CPU?). Prints the median and 99th percentile of the fdatasync calls (of the pwritev
calls, in the fourth), and the CPU time per record (user + system, this process).

Usage: docs/fsync-growth.py [DIR]   (DIR: where the test file goes, default: the current
directory; put it on the disk the nodes' data directories are on)
"""
import os
import sys
import time

RECORDS = 2000
RECORD = b"x" * 2000


def measure(dirname, how):
    path = os.path.join(dirname, f"fsync-growth-{os.getpid()}.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        size = RECORDS * len(RECORD) + 4096
        if how in ("zeros ahead", "RWF_DSYNC"):
            os.write(fd, b"\0" * size)
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        elif how == "fallocate":
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        times = []
        cpu = time.process_time()
        for i in range(RECORDS):
            if how == "RWF_DSYNC":
                t = time.perf_counter()
                os.pwritev(fd, [RECORD], i * len(RECORD), os.RWF_DSYNC)
                times.append(time.perf_counter() - t)
                continue
            os.write(fd, RECORD)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[len(times) // 2], times[len(times) * 99 // 100], cpu / RECORDS


def main():
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        sys.exit(2 if len(sys.argv) > 2 else 0)
    dirname = sys.argv[1] if len(sys.argv) == 2 else "."
    if not os.path.isdir(dirname):
        print(f"not a directory: {dirname}", file=sys.stderr)
        sys.exit(2)
    for rnd in (1, 2):
        for how in ("grows", "fallocate", "zeros ahead", "RWF_DSYNC"):
            p50, p99, cpu = measure(dirname, how)
            call = "pwritev" if how == "RWF_DSYNC" else "fdatasync"
            print(f"round {rnd}, {how:>11}: {call} p50 {p50 * 1e6:4.0f} µs, "
                  f"p99 {p99 * 1e6:4.0f} µs; CPU {cpu * 1e6:4.1f} µs per record")


if __name__ == "__main__":
    main()
