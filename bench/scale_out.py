#!/usr/bin/env python3
"""`make bench-scale-out` (part of `make bench`): one broadcast to 1,000 receivers, served
by one process, by two processes joined by the Redis backplane, and by two hosts
(network namespaces made here) joined by it; and the same over Robyn's multi-process
mode, which has no backplane.

Every setup serves /chat of bench/servers (each message to every /chat client, the
sender included). bench/loadgen's `broadcast` mode connects one sender and 1,000
receivers (spread over the hosts' addresses in turn; over one port's processes by the
kernel), checks that every receiver gets every message once and in order, and measures
delivery latency from send to receipt on one clock. Two loads:

- paced: 100 messages/s, that is 100,000 deliveries/s. Its latency against the one
  process of the same server is what the backplane adds (p50, p99).
- flat out: as fast as a window of 64 messages not yet at every receiver allows
  (deliveries/s), Roost only.

A receiver that never gets the start of a paced run (on a process the broadcast does
not reach) counts as losing every message: loadgen's --start-unsynced.

Servers, their Redis and their processes are pinned to CPU 0, loadgen to CPU 1. Rounds
are interleaved (each round runs every setup once); medians are reported. Making the
namespaces needs root and iproute2 (`make system-packages` installs it and redis-server).
Writes scale-out.md (committed) and scale-out.json (raw, ignored) to --out, and exits 1
when a Roost run lost, duplicated or reordered a delivery, or failed.

    python3 bench/scale_out.py [--rounds 3] [--quick] [--out bench/results]
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from benchlib import DEFAULT_LOADGEN, ROOT, log, preexec, run_loadgen  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from network_hosts import two_hosts  # noqa: E402
from redis_server import redis_server  # noqa: E402

VENV_PYTHON = os.path.join(BENCH, ".venv", "bin", "python")
SERVERS = os.path.join(BENCH, "servers")
RESULTS = os.path.join(BENCH, "results")
SERVER_CPUS, LOADGEN_CPUS = {0}, {1}
NOFILE = 20000
RECEIVERS = 1000
PACED_RATE = 100  # messages/s: 100,000 deliveries/s to 1,000 receivers
ADDED_P99_TARGET_US = 2000
# Setups whose runs must all be whole: every delivery once, in order.
REQUIRED = ("roost, 1 process", "roost, 2 processes", "roost, 2 hosts")


def free_port(address="127.0.0.1"):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class ServerProcess:
    """One benchmark server (with whatever processes it forks), in a session of its own
    so that stopping it reaches them all; ready once `address:port` accepts."""

    def __init__(self, command, address, port, log_file, prefix=()):
        self.proc = subprocess.Popen(
            [*prefix, *command],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=SERVERS,
            preexec_fn=preexec(NOFILE, SERVER_CPUS),
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{command[1]} exited with {self.proc.returncode} at start")
            try:
                socket.create_connection((address, port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{command[1]} did not accept within 60 s") from None
                time.sleep(0.05)

    def stop(self):
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                pass


def roost(address, port, processes=1, backplane=None):
    command = [VENV_PYTHON, "roost_server.py", "--host", address, "--port", str(port)]
    command += ["--processes", str(processes)]
    return command + (["--backplane", backplane] if backplane else [])


def robyn(address, port, processes=1):
    command = [VENV_PYTHON, "robyn_server.py", "--host", address, "--port", str(port)]
    return command + ["--processes", str(processes)]


def wait_for_channel(redis, subscribers):
    """Until every server has joined the /chat route's channel."""
    deadline = time.monotonic() + 30
    while redis.subscribers("roost:route:/chat") < subscribers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {subscribers} servers joined the backplane in 30 s")
        time.sleep(0.05)


def pin_redis(redis):
    info = redis.command("INFO", "server")
    pid = next(line.split(":")[1] for line in info.splitlines() if line.startswith("process_id"))
    os.sched_setaffinity(int(pid), SERVER_CPUS)


@contextlib.contextmanager
def one_process(server, log_file):
    port = free_port()
    process = ServerProcess(server("127.0.0.1", port), "127.0.0.1", port, log_file)
    try:
        yield [f"ws://127.0.0.1:{port}/chat"]
    finally:
        process.stop()


@contextlib.contextmanager
def robyn_processes(log_file):
    port = free_port()
    process = ServerProcess(robyn("127.0.0.1", port, 2), "127.0.0.1", port, log_file)
    try:
        time.sleep(1.0)  # the second process is not seen to accept: give it time
        yield [f"ws://127.0.0.1:{port}/chat"]
    finally:
        process.stop()


@contextlib.contextmanager
def roost_processes(log_file):
    with redis_server() as redis:
        pin_redis(redis)
        port = free_port()
        command = roost("127.0.0.1", port, 2, redis.url)
        process = ServerProcess(command, "127.0.0.1", port, log_file)
        try:
            wait_for_channel(redis, 2)
            yield [f"ws://127.0.0.1:{port}/chat"]
        finally:
            process.stop()


@contextlib.contextmanager
def roost_hosts(log_file):
    with two_hosts() as hosts:
        gateways = [host.gateway for host in hosts]
        with redis_server(("127.0.0.1", *gateways)) as redis, contextlib.ExitStack() as stack:
            pin_redis(redis)
            urls = []
            for host in hosts:
                # A free port of the root namespace is as good as any in a fresh one.
                port = free_port()
                command = roost(host.address, port, 1, redis.url_on(host.gateway))
                prefix = ["ip", "netns", "exec", host.namespace]
                process = ServerProcess(command, host.address, port, log_file, prefix)
                stack.callback(process.stop)
                urls.append(f"ws://{host.address}:{port}/chat")
            wait_for_channel(redis, 2)
            yield urls


SETUPS = {
    "roost, 1 process": lambda log_file: one_process(roost, log_file),
    "roost, 2 processes": roost_processes,
    "roost, 2 hosts": roost_hosts,
    "robyn, 1 process": lambda log_file: one_process(robyn, log_file),
    "robyn, 2 processes": robyn_processes,
}
# The one-process setup each setup's latency is compared with.
BASELINE = {name: name.split(",")[0] + ", 1 process" for name in SETUPS}


def loads(quick):
    seconds = 1.5 if quick else 5.0
    common = ["--receivers", RECEIVERS, "--duration", seconds]
    return {
        # Robyn's processes lose deliveries for good: waiting 3 s after the last send
        # is enough to count them.
        "paced": [
            *common,
            "--rate",
            PACED_RATE,
            "--sync-timeout",
            5,
            "--start-unsynced",
            "--drain-timeout",
            3,
        ],
        # The drain time is also the longest the window may stall. A 2-process run on
        # a machine busy with other work (a twentieth of its usual rate) stalled past
        # 3 s; on a quiet machine none came near it. A lost delivery stalls for good.
        "flat out": [*common, "--rate", 0, "--window", 64, "--drain-timeout", 10],
    }


def runs_load(setup, load):
    return load == "paced" or setup.startswith("roost")


def run_one(setup, load_args, logs):
    with open(os.path.join(logs, setup.replace(", ", "-").replace(" ", "-") + ".log"), "a") as f:
        with SETUPS[setup](f) as urls:
            args = ["broadcast", *(a for url in urls for a in ("--url", url))]
            rc, result, lines = run_loadgen(
                DEFAULT_LOADGEN,
                args + [str(a) for a in load_args],
                nofile=NOFILE,
                cpus=LOADGEN_CPUS,
                timeout=120,
                quiet=True,
            )
    result = result or {}
    record = {key: result.get(key) for key in FIELDS}
    record["ok"] = bool(rc == 0 and result.get("ok"))
    if not record["ok"]:
        record["error"] = (result.get("first_errors") or " | ".join(lines[-3:]))[:300]
    return record


FIELDS = (
    "deliveries_per_sec",
    "p50_us",
    "p99_us",
    "expected",
    "deliveries",
    "lost",
    "duplicates",
    "out_of_order",
)


def median(records, key):
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(runs):
    """Per setup and load: medians of rates and latencies, sums of losses."""
    out = {}
    for setup, by_load in runs.items():
        out[setup] = {}
        for load, records in by_load.items():
            row = {key: median(records, key) for key in ("deliveries_per_sec", "p50_us", "p99_us")}
            for key in ("expected", "lost", "duplicates", "out_of_order"):
                row[key] = sum(r.get(key) or 0 for r in records)
            row["failed"] = sum(not r["ok"] for r in records)
            out[setup][load] = row
    for setup, by_load in out.items():
        base = out.get(BASELINE[setup], {}).get("paced")
        paced = by_load.get("paced")
        # Latency added means nothing where deliveries were lost: those not made are
        # not in it.
        if base and paced and setup != BASELINE[setup] and not paced["lost"]:
            for key in ("p50_us", "p99_us"):
                if paced[key] is not None and base[key] is not None:
                    paced["added_" + key] = paced[key] - base[key]
    return out


def ms(us):
    return "" if us is None else f"{us / 1000:.2f} ms"


def markdown(summary):
    lines = [
        "# Scale-out: one broadcast to 1,000 receivers",
        "",
        f"{summary['date']}, {summary['rounds']} round(s), medians; `make bench-scale-out` "
        "(bench/scale_out.py). Servers, processes and Redis on CPU 0, loadgen on CPU 1.",
        "",
        f"Paced: {PACED_RATE} messages/s to {RECEIVERS:,} receivers = "
        f"{PACED_RATE * RECEIVERS:,} deliveries/s. *Added* is the latency over the same "
        f"server's one process (target: added p99 at most {ADDED_P99_TARGET_US / 1000:g} ms). "
        "Lost counts deliveries over all rounds, of those expected.",
        "",
        "| setup | paced: lost | p50 | p99 | added p50 | added p99 "
        "| flat out: deliveries/s | lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setup, by_load in summary["summary"].items():
        paced = by_load.get("paced", {})
        flat = by_load.get("flat out")
        cells = [
            setup,
            f"{paced.get('lost', 0):,} of {paced.get('expected', 0):,}",
            ms(paced.get("p50_us")),
            ms(paced.get("p99_us")),
            ms(paced.get("added_p50_us")),
            ms(paced.get("added_p99_us")),
            f"{flat['deliveries_per_sec']:,.0f}" if flat and flat["deliveries_per_sec"] else "",
            f"{flat['lost']:,} of {flat['expected']:,}" if flat else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Roost's processes share their broadcasts through Redis (`backplane=`); Robyn's "
        "multi-process mode (`--processes 2`) has none, so a broadcast reaches only the "
        "clients of the process that sent it.",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    ap.add_argument("--only", help="comma-separated setups, e.g. 'roost, 1 process'")
    ap.add_argument("--out", default=RESULTS, help="output folder (default bench/results)")
    ap.add_argument("--no-setup", action="store_true", help="use bench/.venv as it is")
    args = ap.parse_args()

    if not args.no_setup:
        import compare

        compare.ensure_env()
    if not os.access(DEFAULT_LOADGEN, os.X_OK):
        sys.exit("bench: build first (make bench-scale-out does)")
    names = args.only.split(";") if args.only else list(SETUPS)
    for name in names:
        if name not in SETUPS:
            sys.exit(f"bench: unknown setup {name!r}; known: {'; '.join(SETUPS)}")
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    started = time.time()
    chosen = loads(args.quick)
    runs = {s: {load: [] for load in chosen if runs_load(s, load)} for s in names}
    for round_no in range(1, args.rounds + 1):
        for setup in names:
            for load in runs[setup]:
                try:
                    record = run_one(setup, chosen[load], logs)
                except Exception as error:  # a setup that cannot start is a failed run
                    record = {"ok": False, "error": str(error)}
                runs[setup][load].append(record)
                log(
                    f"round {round_no} {setup:20s} {load:9s} "
                    f"{record.get('deliveries_per_sec') or 0:>12,.0f} deliveries/s "
                    f"p50 {ms(record.get('p50_us'))} p99 {ms(record.get('p99_us'))} "
                    f"lost {record.get('lost')} of {record.get('expected')}"
                    + ("" if record["ok"] else f"  ({record.get('error')})")
                )
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "rounds": args.rounds,
        "quick": args.quick,
        "runs": runs,
        "summary": summarise(runs),
    }
    with open(os.path.join(args.out, "scale-out.json"), "w") as f:
        json.dump(summary, f, indent=1)
    text = markdown(summary)
    with open(os.path.join(args.out, "scale-out.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    broken = [
        f"{setup} {load}: {record.get('error') or 'lost, duplicated or reordered deliveries'}"
        for setup, by_load in runs.items()
        if setup in REQUIRED
        for load, records in by_load.items()
        for record in records
        if not record["ok"]
        or record.get("lost")
        or record.get("duplicates")
        or record.get("out_of_order")
    ]
    if broken:
        sys.exit("bench: Roost runs that were not whole: " + "; ".join(broken))


if __name__ == "__main__":
    main()
