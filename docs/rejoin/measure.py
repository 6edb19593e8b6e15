#!/usr/bin/env python3
"""Rejoin time after a heal on a real 3-process cluster (issue 10, bug 4).

Starts three `consensus-lab serve` processes on 127.0.0.1 with every peer link to and from
node 3 running through a small TCP proxy of this script's own, writes a few values, cuts node 3
off (the proxies close its connections and refuse new ones) for --isolate seconds while more
values are written, heals, and measures the wall time until node 3 follows the leader with the
leader's commit position. Prints one line per protocol and round. Every process it starts is
stopped by its PID; every wait is bounded.

Usage: docs/rejoin/measure.py [--binary target/release/consensus-lab] [--isolate 20] [--rounds 3]
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proxy:
    """Forwards one listening port to a target; while cut, closes and refuses connections."""

    def __init__(self, target_port):
        self.port = free_port()
        self.target = target_port
        self.cut = False
        self.conns = set()

    async def start(self):
        self.server = await asyncio.start_server(self.accept, HOST, self.port)

    async def accept(self, reader, writer):
        if self.cut:
            writer.close()
            return
        try:
            tr, tw = await asyncio.open_connection(HOST, self.target)
        except OSError:
            writer.close()
            return
        pair = (writer, tw)
        self.conns.add(pair)

        async def pipe(r, w):
            try:
                while not self.cut:
                    data = await r.read(65536)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        try:
            await asyncio.gather(pipe(reader, tw), pipe(tr, writer))
        except asyncio.CancelledError:
            pass  # the loop is closing at the end of a round
        self.conns.discard(pair)

    def set_cut(self, cut):
        self.cut = cut
        if cut:
            for a, b in list(self.conns):
                a.close()
                b.close()


def http(method, url, body=None, timeout=2.0):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def status(port):
    code, body = http("GET", f"http://{HOST}:{port}/status", timeout=0.5)
    return json.loads(body) if code == 200 else None


async def put_through_leader(http_ports, key, value, deadline):
    while time.monotonic() < deadline:
        for p in http_ports:
            st = status(p)
            if st and st["role"] == "Leader":
                code, _ = http("PUT", f"http://{HOST}:{p}/kv/{key}", value.encode())
                if code == 200:
                    return True
        await asyncio.sleep(0.02)
    return False


async def round_(binary, protocol, isolate, tmp):
    # Proxied connections cut at the end of a round are not errors worth a traceback.
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)
    peer = [free_port() for _ in range(3)]
    web = [free_port() for _ in range(3)]
    # Links touching node 3 go through proxies: 3 -> 1, 3 -> 2 (node 3's view of its peers)
    # and 1 -> 3, 2 -> 3 (the others' view of node 3).
    to1, to2, to3 = Proxy(peer[0]), Proxy(peer[1]), Proxy(peer[2])
    for p in (to1, to2, to3):
        await p.start()
    views = {
        1: [peer[0], peer[1], to3.port],
        2: [peer[0], peer[1], to3.port],
        3: [to1.port, to2.port, peer[2]],
    }
    http_list = ",".join(f"{i + 1}={HOST}:{web[i]}" for i in range(3))
    procs = []
    try:
        for n in (1, 2, 3):
            peers = ",".join(f"{i + 1}={HOST}:{views[n][i]}" for i in range(3))
            procs.append(
                subprocess.Popen(
                    [binary, "serve", "--protocol", protocol, "--id", str(n), "--peers", peers,
                     "--peer-http", http_list, "--http", f"{HOST}:{web[n - 1]}",
                     "--data-dir", os.path.join(tmp, f"{protocol}-{peer[0]}-n{n}")],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 20
        assert await put_through_leader(web, "before", "1", deadline), "no leader at start"
        cut = lambda c: [p.set_cut(c) for p in (to1, to2, to3)]
        cut(True)
        await asyncio.sleep(1.0)
        assert await put_through_leader(web[:2], "during", "2", time.monotonic() + 10), \
            "the majority side took no write"
        await asyncio.sleep(max(0.0, isolate - 1.0))
        assert await put_through_leader(web[:2], "late", "3", time.monotonic() + 10)
        cut(False)
        healed = time.monotonic()
        while time.monotonic() - healed < 30:
            leader = next((s for s in map(status, web[:2]) if s and s["role"] == "Leader"), None)
            me = status(web[2])
            if leader and me and me["role"] == "Follower" and me["leader"] == leader["id"] \
                    and me["commit"] == leader["commit"]:
                return time.monotonic() - healed
            await asyncio.sleep(0.01)
        return None
    finally:
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
        for p in (to1, to2, to3):
            p.server.close()


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--binary", default="target/release/consensus-lab")
    a.add_argument("--isolate", type=float, default=20.0)
    a.add_argument("--rounds", type=int, default=3)
    a.add_argument("--protocol", choices=["raft", "zab", "both"], default="both")
    args = a.parse_args()
    protocols = ["raft", "zab"] if args.protocol == "both" else [args.protocol]
    with tempfile.TemporaryDirectory() as tmp:
        for proto in protocols:
            for r in range(args.rounds):
                t = asyncio.run(round_(args.binary, proto, args.isolate, tmp))
                verdict = "never (30 s)" if t is None else f"{t:.3f} s"
                print(f"{proto} round {r + 1}: node 3 cut off {args.isolate:.0f} s, "
                      f"following the leader with its commit {verdict} after the heal",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
