#!/usr/bin/env python3
"""Memory cost of idle WebSocket connections on the C echo server.

Starts examples/c/echo_server on an ephemeral port of 127.0.0.1 with its open-file
limit raised, reads its RSS (VmRSS in /proc/PID/status) once it is up, opens N idle
connections with `loadgen idle` (256 handshakes at a time), samples the RSS again
once all are open and the figure has settled, and reports

    (RSS with N connections - baseline RSS) / N   in KiB per connection

together with the server's open descriptors. Then the connections are closed, the
server gets SIGINT and must exit 0. Exits non-zero if anything went wrong.

    python3 bench/idle_memory.py [--connections 10000] [--server PATH] [--loadgen PATH]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import DEFAULT_LOADGEN, DEFAULT_SERVER, BenchError, Server, fail, log, run_loadgen  # noqa: E402


def tcp_kernel_kib():
    """Kernel memory of all TCP sockets on the machine (/proc/net/sockstat, pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def sample_until_stable(server, max_seconds, interval=0.5, tolerance_kib=64):
    """Samples RSS every `interval` until three samples in a row agree within
    `tolerance_kib`, or `max_seconds` pass. Returns (final memory dict, samples)."""
    samples = []
    deadline = time.monotonic() + max_seconds
    mem = server.memory()
    samples.append(mem["rss_kib"])
    while time.monotonic() < deadline:
        time.sleep(interval)
        mem = server.memory()
        samples.append(mem["rss_kib"])
        last = samples[-3:]
        if len(last) == 3 and max(last) - min(last) <= tolerance_kib:
            break
    return mem, samples


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help="echo server binary (default examples/c/echo_server)",
    )
    ap.add_argument("--loadgen", default=DEFAULT_LOADGEN, help="loadgen binary")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256, help="handshakes under way at once")
    ap.add_argument(
        "--hold", type=float, default=15.0, help="seconds loadgen holds the connections open"
    )
    ap.add_argument("--path", default="/ws")
    args = ap.parse_args()

    server_path = args.server if os.path.isabs(args.server) else os.path.abspath(args.server)
    if not os.path.exists(server_path):
        # Relative paths are also tried from the repository root.
        server_path = os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), args.server
        )
    nofile = args.connections + 1024
    problems = []

    server = Server(server_path, nofile=nofile)
    try:
        limit = server.nofile_limit()
        log(f"server pid {server.pid} on port {server.port}, open-file limit {limit}")
        if limit is not None and limit < args.connections + 16:
            raise BenchError(
                f"server open-file limit {limit} is below {args.connections} connections"
            )
        time.sleep(0.5)
        base, base_samples = sample_until_stable(server, 5.0)
        base_fds = server.open_fds()
        base_tcp = tcp_kernel_kib()
        log(
            f"baseline: RSS {base['rss_kib']} KiB (anon {base['rss_anon_kib']}, file {base['rss_file_kib']}), "
            f"{base['threads']} threads, {base_fds} open fds; samples {base_samples}"
        )

        loaded = {}

        def on_phase(name, detail):
            if name == "all_open":
                # Sample while loadgen holds the connections (it waits --hold seconds).
                mem, samples = sample_until_stable(server, max(1.0, args.hold - 2.0))
                loaded.update(
                    mem=mem,
                    samples=samples,
                    fds=server.open_fds(),
                    detail=detail,
                    alive=server.alive(),
                    tcp_kib=tcp_kernel_kib(),
                )

        rc, result, _ = run_loadgen(
            args.loadgen,
            [
                "idle",
                "--url",
                server.url(args.path),
                "--connections",
                args.connections,
                "--hold",
                args.hold,
                "--concurrency",
                args.concurrency,
            ],
            on_phase=on_phase,
            nofile=nofile,
        )
        if rc != 0 or not result or not result.get("ok"):
            problems.append(
                f"loadgen idle exited {rc} ({(result or {}).get('first_errors', 'no RESULT line')})"
            )
        if not loaded:
            raise BenchError("loadgen never reported all connections open")
        opened = (result or {}).get("opened", 0)
        if opened != args.connections:
            problems.append(f"only {opened} of {args.connections} connections opened")

        time.sleep(1.0)
        after, _ = sample_until_stable(server, 5.0)
        after_fds = server.open_fds()

        mem = loaded["mem"]
        n = opened or args.connections
        per_conn = (mem["rss_kib"] - base["rss_kib"]) / n
        per_conn_anon = (mem["rss_anon_kib"] - base["rss_anon_kib"]) / n
        log(
            f"with {n} idle connections: RSS {mem['rss_kib']} KiB (anon {mem['rss_anon_kib']}), "
            f"{mem['threads']} threads, {loaded['fds']} open fds; samples {loaded['samples']}"
        )
        tcp_per_conn = (loaded["tcp_kib"] - base_tcp) / n
        log(
            f"kernel TCP buffer memory (both ends, whole machine, not in RSS): {base_tcp} KiB -> "
            f"{loaded['tcp_kib']} KiB = {tcp_per_conn:.2f} KiB per connection pair"
        )
        log(f"after closing them: RSS {after['rss_kib']} KiB, {after_fds} open fds")
    finally:
        code = server.stop()
    if code != 0:
        problems.append(f"server exited with {code} after SIGINT (expected 0)")
    if server.stderr_lines:
        log("server stderr: " + " | ".join(server.stderr_lines[-5:]))

    report = {
        "connections": n,
        "baseline_rss_kib": base["rss_kib"],
        "loaded_rss_kib": mem["rss_kib"],
        "kib_per_connection": round(per_conn, 2),
        "anon_kib_per_connection": round(per_conn_anon, 2),
        "baseline_fds": base_fds,
        "loaded_fds": loaded["fds"],
        "kernel_tcp_kib_per_connection_pair": round(tcp_per_conn, 2),
        "after_close_rss_kib": after["rss_kib"],
        "after_close_fds": after_fds,
        "server_threads": mem["threads"],
        "handshakes_per_sec": (result or {}).get("handshakes_per_sec"),
        "handshake_p99_us": (result or {}).get("handshake_p99_us"),
        "loadgen_cpu_s": (result or {}).get("cpu_s"),
        "server_exit": code,
        "ok": not problems,
        "problems": problems,
    }
    log("")
    log(
        f"idle memory: baseline RSS {base['rss_kib'] / 1024:.1f} MiB, with {n} idle connections "
        f"{mem['rss_kib'] / 1024:.1f} MiB -> {per_conn:.2f} KiB per connection "
        f"({per_conn_anon:.2f} KiB anonymous); server fds {loaded['fds']} (baseline {base_fds}); "
        f"server exit {code}"
    )
    print("RESULT " + json.dumps(report), flush=True)
    for p in problems:
        fail(p)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        fail(str(e))
        sys.exit(1)
