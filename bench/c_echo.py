#!/usr/bin/env python3
"""Echo throughput of the C echo server, with the server and the load generator on
cores of their own.

Each round starts a fresh examples/c/echo_server pinned to CPU 0 (all its threads:
the C event loop and the core's tokio worker) on an ephemeral port of 127.0.0.1, and
runs `loadgen echo` pinned to CPU 1: 50 connections, 16 messages in flight on each,
32-byte text messages, 10 s measured after 2 s of warm-up. While loadgen runs, the
server's CPU time (utime+stime from /proc/PID/stat, and per thread) is read at the
start and the end of the measured window, which loadgen announces with PHASE lines;
loadgen reports its own CPU time (getrusage) for the same window. After each round
the server gets SIGINT and must exit 0.

The machine may be shared: before each round the script waits (up to --quiet-wait
seconds) for a quiet second, and it counts the busy time of both CPUs in the window
(/proc/stat) that belongs to neither process; a round where that exceeds 5% of the
window is marked disturbed and run again (up to --retries times).

Prints each round, the median messages/second of the rounds, and a RESULT JSON line.
Exits non-zero if any round had an error (bad or missing replies, disconnects, a
server that crashed or did not exit 0).

    python3 bench/c_echo.py [--rounds 3] [--duration 10] [--warmup 2] [--server PATH]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    DEFAULT_LOADGEN,
    DEFAULT_SERVER,
    ROOT,
    BenchError,
    Server,
    cpu_busy,
    fail,
    log,
    median,
    run_loadgen,
    wait_quiet,
)


def one_round(i, args):
    server = Server(args.server, nofile=args.connections + 1024, cpus={args.server_cpu})
    problems = []
    marks = {}
    try:
        log(
            f"round {i}: server pid {server.pid} on port {server.port}, pinned to CPU {args.server_cpu}; "
            f"loadgen pinned to CPU {args.loadgen_cpu}"
        )
        time.sleep(0.3)

        def on_phase(name, _detail):
            if name in ("measure_start", "measure_end") and server.alive():
                marks[name] = (
                    time.monotonic(),
                    server.cpu(),
                    server.thread_cpu(),
                    cpu_busy({args.server_cpu, args.loadgen_cpu}),
                )

        rc, result, _ = run_loadgen(
            args.loadgen,
            [
                "echo",
                "--url",
                server.url("/ws"),
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
            on_phase=on_phase,
            cpus={args.loadgen_cpu},
            nofile=args.connections + 1024,
            timeout=args.duration + args.warmup + 120,
        )
        alive = server.alive()
        total_user, total_sys = server.cpu() if alive else (float("nan"), float("nan"))
    finally:
        code = server.stop()

    if not alive:
        problems.append("server died during the run")
    if rc != 0 or not result or not result.get("ok"):
        detail = (result or {}).get("first_errors") or "no RESULT line"
        problems.append(f"loadgen exited {rc}: {detail}")
    if code != 0:
        problems.append(f"server exited with {code} after SIGINT (expected 0)")
    if server.stderr_lines:
        problems.append("server wrote to stderr: " + " | ".join(server.stderr_lines[-5:]))
    if result:
        for key in ("errors", "bad_replies", "disconnects", "close_errors"):
            if result.get(key):
                problems.append(f"loadgen saw {key} = {result[key]}")
    if "measure_start" not in marks or "measure_end" not in marks:
        problems.append("no server CPU sample for the measured window")
        window_cpu, threads, window_wall, busy = float("nan"), {}, float("nan"), {}
    else:
        (t0, (u0, s0), th0, b0), (t1, (u1, s1), th1, b1) = (
            marks["measure_start"],
            marks["measure_end"],
        )
        window_cpu = (u1 + s1) - (u0 + s0)
        window_wall = t1 - t0
        threads = {k: round(v - th0.get(k, 0.0), 2) for k, v in th1.items()}
        busy = {c: (round(b1[c][0] - b0[c][0], 2), round(b1[c][1] - b0[c][1], 2)) for c in b1}
    r = result or {}
    # Busy time of the two CPUs that neither the server nor loadgen accounts for:
    # interrupts and softirqs charged to no task, and any other process. It should be small.
    other = float("nan")
    if busy and r.get("cpu_window_s") is not None:
        other = sum(b for b, _ in busy.values()) - window_cpu - r["cpu_window_s"]
    return {
        "round": i,
        "msgs_per_sec": r.get("msgs_per_sec", 0.0),
        "messages": r.get("messages", 0),
        "p50_us": r.get("p50_us"),
        "p99_us": r.get("p99_us"),
        "p999_us": r.get("p999_us"),
        "max_us": r.get("max_us"),
        "server_cpu_window_s": round(window_cpu, 3),
        "server_cpu_window_wall_s": round(window_wall, 3),
        "server_threads_cpu_window_s": threads,
        "server_cpu_total_s": round(total_user + total_sys, 3),
        "server_cpu_total_user_s": round(total_user, 3),
        "server_cpu_total_sys_s": round(total_sys, 3),
        "loadgen_cpu_window_s": r.get("cpu_window_s"),
        "loadgen_cpu_total_s": r.get("cpu_s"),
        "loadgen_cpu_total_user_s": r.get("cpu_user_s"),
        "loadgen_cpu_total_sys_s": r.get("cpu_sys_s"),
        "loadgen_wall_s": r.get("wall_s"),
        "cpu_busy_window_s": {f"cpu{c}": b for c, (b, _) in busy.items()},
        "cpu_irq_window_s": {f"cpu{c}": q for c, (_, q) in busy.items()},
        "other_cpu_window_s": round(other, 3),
        "server_exit": code,
        "problems": problems,
    }


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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--loadgen-cpu", type=int, default=1)
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait before each round for the machine to be idle",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a round is run again when other processes took CPU in its window",
    )
    args = ap.parse_args()
    if not os.path.isabs(args.server) and not os.path.exists(args.server):
        args.server = os.path.join(ROOT, args.server)

    usable = os.sched_getaffinity(0)
    if args.server_cpu == args.loadgen_cpu or not {args.server_cpu, args.loadgen_cpu} <= usable:
        raise BenchError(
            f"need two distinct usable CPUs for server ({args.server_cpu}) and loadgen "
            f"({args.loadgen_cpu}); this process may use {sorted(usable)}"
        )

    rounds = []
    for i in range(1, args.rounds + 1):
        for attempt in range(args.retries + 1):
            background = wait_quiet(args.quiet_wait)
            if background >= 0.10:
                log(
                    f"round {i}: the machine is {100 * background:.0f}% busy before the round "
                    f"(waited up to {args.quiet_wait:g} s for it to be quiet)"
                )
            r = one_round(i, args)
            r["background_load_before"] = round(background, 3)
            r["attempt"] = attempt + 1
            r["disturbed"] = bool(r["other_cpu_window_s"] > 0.05 * args.duration)
            if not r["disturbed"] or r["problems"]:
                break
            if attempt < args.retries:
                log(
                    f"round {i}: {r['other_cpu_window_s']:.2f} s of CPU in the window belonged to neither the "
                    f"server nor loadgen ({r['msgs_per_sec']:.0f} msg/s); running the round again"
                )
        rounds.append(r)
        th = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["server_threads_cpu_window_s"].items()))
        log(
            f"round {i}: {r['msgs_per_sec']:.0f} msg/s, RTT p50 {r['p50_us'] or 0:.0f} us p99 {r['p99_us'] or 0:.0f} us; "
            f"CPU in the {args.duration:g} s window: server {r['server_cpu_window_s']:.2f} s ({th}) vs "
            f"loadgen {r['loadgen_cpu_window_s'] or 0:.2f} s; whole run: server {r['server_cpu_total_s']:.2f} s "
            f"vs loadgen {r['loadgen_cpu_total_s'] or 0:.2f} s; CPU busy in the window {r['cpu_busy_window_s']}, "
            f"unaccounted (irq / other processes) {r['other_cpu_window_s']:.2f} s; server exit {r['server_exit']}"
        )
        if r["other_cpu_window_s"] > 0.05 * args.duration:
            log(
                f"round {i}: WARNING: {r['other_cpu_window_s']:.2f} s of CPU in the window belonged to neither "
                "the server nor loadgen; another process may have disturbed the measurement"
            )
        for p in r["problems"]:
            log(f"round {i}: PROBLEM: {p}")

    rates = [r["msgs_per_sec"] for r in rounds]
    med = median(rates)
    problems = [f"round {r['round']}: {p}" for r in rounds for p in r["problems"]]
    disturbed = [r["round"] for r in rounds if r["disturbed"]]
    lg_over = [
        r["round"] for r in rounds if (r["loadgen_cpu_window_s"] or 0) >= r["server_cpu_window_s"]
    ]
    log("")
    log(
        f"C echo server, {args.connections} connections x {args.inflight} in flight, {args.size} B messages, "
        f"{args.duration:g} s after {args.warmup:g} s warm-up, {args.rounds} rounds: median {med:.0f} msg/s "
        f"(rounds: {', '.join(f'{x:.0f}' for x in rates)}); RTT p50 {median([r['p50_us'] or 0 for r in rounds]):.0f} us, "
        f"p99 {median([r['p99_us'] or 0 for r in rounds]):.0f} us (medians of rounds); "
        f"server CPU {median([r['server_cpu_window_s'] for r in rounds]):.2f} s vs loadgen "
        f"{median([r['loadgen_cpu_window_s'] or 0 for r in rounds]):.2f} s per {args.duration:g} s window (medians)"
        + (
            ""
            if not lg_over
            else f"; WARNING: loadgen used as much CPU as the server in rounds {lg_over}"
        )
        + (
            ""
            if not disturbed
            else f"; WARNING: other processes took CPU during rounds {disturbed}"
        )
    )
    report = {
        "benchmark": "c_echo",
        "connections": args.connections,
        "inflight": args.inflight,
        "size": args.size,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "median_msgs_per_sec": round(med, 1),
        "disturbed_rounds": disturbed,
        "rounds": rounds,
        "ok": not problems,
    }
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
