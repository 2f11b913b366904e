#!/usr/bin/env python3
"""Echo throughput of the Python echo example next to the C example, same load, same
machine, one run, rounds interleaved (C, Python asyncio, Python trio, C, ...).

Each round starts a fresh server pinned to CPU 0 and runs `loadgen echo` pinned to
CPU 1 (50 connections, 16 in flight, 32-byte messages by default). Prints every round,
the medians, and the Python figures as a share of the C figure.

    python3 bench/echo_python_vs_c.py [--rounds 3] [--duration 5] [--warmup 1]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import DEFAULT_LOADGEN, DEFAULT_SERVER, ROOT, Server, log, median, run_loadgen  # noqa: E402

PY_ECHO = os.path.join(ROOT, "examples", "python", "echo.py")

SERVERS = {
    "C example": (None, "/ws"),
    "Python asyncio": (
        [sys.executable, PY_ECHO, "--port", "0", "--backend", "asyncio"],
        "/web_socket",
    ),
    "Python trio": ([sys.executable, PY_ECHO, "--port", "0", "--backend", "trio"], "/web_socket"),
}


def one_round(name, args):
    command, path = SERVERS[name]
    server = Server(DEFAULT_SERVER, command=command, cpus={0}, nofile=4096)
    try:
        rc, result, _ = run_loadgen(
            DEFAULT_LOADGEN,
            [
                "echo",
                "--url",
                server.url(path),
                "--connections",
                args.connections,
                "--inflight",
                args.inflight,
                "--size",
                args.size,
                "--duration",
                args.duration,
                "--warmup",
                args.warmup,
            ],
            cpus={1},
            nofile=4096,
            timeout=args.duration + args.warmup + 120,
        )
    finally:
        code = server.stop()
    if rc != 0 or not result or not result.get("ok") or code != 0:
        raise SystemExit(f"{name}: loadgen exit {rc}, server exit {code}, result {result}")
    return result["msgs_per_sec"], result["p50_us"], result["p99_us"]


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    args = ap.parse_args()
    runs = {name: [] for name in SERVERS}
    for i in range(1, args.rounds + 1):
        for name in SERVERS:
            rate, p50, p99 = one_round(name, args)
            runs[name].append(rate)
            log(f"round {i}: {name}: {rate:.0f} msg/s, RTT p50 {p50:.0f} us, p99 {p99:.0f} us")
    c = median(runs["C example"])
    log("")
    for name, rates in runs.items():
        m = median(rates)
        log(f"{name:15s} median {m:9.0f} msg/s  ({100 * m / c:5.1f}% of the C example)")


if __name__ == "__main__":
    main()
