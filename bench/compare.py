#!/usr/bin/env python3
"""`make bench`: Roost and its peers side by side, same scenarios, one run.

Contenders: Roost's C example (the ceiling), Roost with Python handlers on asyncio and
on trio, and the peers robyn, websockets, picows, aiohttp and socketify, installed from
PyPI into bench/.venv (bench/requirements.txt). Every server serves /ws ("Echo: <msg>"),
/chat (each message to every /chat client, the sender included), and /sub?topic=T and
/pub?topic=T (each message sent on /pub reaches every subscriber of its topic, not the
publisher), each peer with its own natural means: topics where it has them, else a dict
of topic -> connections.

Besides these, scenarios over TLS (echo32-tls, connrate-tls, idle-tls: Roost against
aiohttp and websockets, each serving wss:// with its own SSL setup from one test
certificate that trustme makes for the run, in the output folder's tls/) and with
permessage-deflate (echo4k-json-deflate, idle-deflate: Roost (C and Python) against aiohttp
and websockets, each with compression turned on the way its users do). A contender that
does not take part in a scenario is absent from its row.

And plain HTTP beside the WebSockets, requests per second over keep-alive connections
(http-hello: GET /hello, an async handler returning "Hello, world!"; http-static4k: a
4 KiB file that the harness writes into the output folder's static/, served under
/static/ by the framework itself): Roost's Python servers against Robyn, which runs in
its fast mode (--fast, what its command line offers for speed) with one process, as
every server here has. Every response is checked: status 200, the body byte for byte.

Rounds are interleaved: for each round, each scenario, each contender (A B C A B C ...)
a fresh server is started pinned to CPU 0 and loaded by bench/loadgen pinned to CPU 1.
Everything goes to the output folder (--out, bench/results/ by default): results.md
(medians, ratios, the machine) and chart.png, which are committed, and results.json,
every run's raw record, which is not (it would rewrite thousands of lines of history
with each run). The table is printed at the end.

    python3 bench/compare.py [--rounds 3] [--quick] [--only roost-asyncio,aiohttp]
                             [--scenarios echo32,pingpong,echo32-tls]
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import report  # noqa: E402

from benchlib import DEFAULT_LOADGEN, ROOT, cpu_of, log, preexec, run_loadgen  # noqa: E402

VENV = os.path.join(BENCH, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = os.path.join(BENCH, "requirements.txt")
SERVERS = os.path.join(BENCH, "servers")
RESULTS = os.path.join(BENCH, "results")
C_SERVER = os.path.join(ROOT, "examples", "c", "echo_server")
IDLE_CONNECTIONS = 5000
NOFILE = 20000
# A server's exit status at start for "this server lacks what the scenario needs" (sysexits'
# EX_UNAVAILABLE): the run is reported as not supported, not as failed.
EXIT_UNSUPPORTED = 69
SERVER_CPUS, LOADGEN_CPUS = {0}, {1}
# The HTTP scenarios: keep-alive connections, and requests outstanding on each
# (pipelined), as the echo scenarios keep several messages in flight; and what GET
# /hello answers.
HTTP_CONNECTIONS, HTTP_PIPELINE = 50, 4
HELLO = "Hello, world!"


def python_server(script, *extra, http_flags=()):
    """A server script of bench/servers; `http_flags` are its extra flags in the HTTP
    scenarios."""

    def command(port, tls=None, compression=False, static_dir=None):
        cmd = [VENV_PYTHON, os.path.join(SERVERS, script), "--port", str(port), *extra]
        if tls:
            cmd += ["--tls-cert", tls.cert, "--tls-key", tls.key]
        if compression:
            cmd.append("--compression")
        if static_dir:
            cmd += ["--static-dir", static_dir, *http_flags]
        return cmd, {}

    return command


def c_server(port, tls=None, compression=False, static_dir=None):
    env = {"ROOST_TLS_CERT": tls.cert, "ROOST_TLS_KEY": tls.key} if tls else {}
    if compression:
        env["ROOST_COMPRESSION"] = "deflate"
    return [C_SERVER, str(port), "127.0.0.1"], env


def inline_io(command):
    """The same server with the core on the event loop's thread (inline_io)."""

    def wrapped(port, tls=None, compression=False, static_dir=None):
        argv, env = command(port, tls, compression, static_dir)
        return argv, {**env, "ROOST_INLINE_IO": "1"}

    return wrapped


# name -> command(port, tls, compression, static_dir) -> (argv, extra environment). The
# order is the order of columns.
# aiohttp and picows run on uvloop, as their users run them for speed (picows' docs
# recommend it; aiohttp deployments install it); aiohttp-asyncio is aiohttp on the
# stock loop, for reference. websockets documents no uvloop setup, and stays on asyncio.
# The -inline rows are Roost with inline_io (the core on the consumer's thread), the
# setting for a process with one core to itself, as every server here has.
CONTENDERS = {
    "roost-c": c_server,
    "roost-asyncio": python_server("roost_server.py", "--backend", "asyncio"),
    "roost-uvloop": python_server("roost_server.py", "--backend", "uvloop"),
    "roost-trio": python_server("roost_server.py", "--backend", "trio"),
    "roost-c-inline": inline_io(c_server),
    "roost-asyncio-inline": inline_io(python_server("roost_server.py", "--backend", "asyncio")),
    "roost-trio-inline": inline_io(python_server("roost_server.py", "--backend", "trio")),
    "socketify": python_server("socketify_server.py"),
    "picows": python_server("picows_server.py", "--loop", "uvloop"),
    "aiohttp": python_server("aiohttp_server.py", "--loop", "uvloop"),
    "aiohttp-asyncio": python_server("aiohttp_server.py"),
    "websockets": python_server("websockets_server.py"),
    "robyn": python_server("robyn_server.py", http_flags=["--fast"]),
}
# Who takes part in the TLS and in the compression scenarios: the peers whose users turn
# these on in the server itself, as Roost's do (the others sit behind a proxy for TLS,
# or have no permessage-deflate of their own to compare).
TLS_CONTENDERS = ("roost-c", "roost-asyncio", "roost-uvloop", "roost-trio", "aiohttp", "websockets")
DEFLATE_CONTENDERS = (
    "roost-c",
    "roost-asyncio",
    "roost-uvloop",
    "roost-trio",
    "aiohttp",
    "websockets",
)
# Who takes part in the HTTP scenarios: Roost's Python servers (the C example serves
# WebSockets only) and Robyn, whose decorator API Roost's follows.
HTTP_CONTENDERS = (
    "roost-asyncio",
    "roost-uvloop",
    "roost-trio",
    "roost-asyncio-inline",
    "roost-trio-inline",
    "robyn",
)
PYTHON_NATIVE = ("websockets", "aiohttp", "picows")


# ---- environment -----------------------------------------------------------------


def ensure_env():
    """bench/.venv with the peers (re-installed when requirements.txt changes), the
    Debian library socketify loads, and Roost from ./python (always re-installed)."""
    if not os.path.exists(VENV_PYTHON):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    stamp = os.path.join(VENV, "requirements.sha256")
    digest = hashlib.sha256(open(REQUIREMENTS, "rb").read()).hexdigest()
    if not os.path.exists(stamp) or open(stamp).read() != digest:
        log("bench: installing peers into bench/.venv")
        subprocess.run(pip + ["-r", REQUIREMENTS], check=True)
        with open(stamp, "w") as f:
            f.write(digest)
    if (
        "libuv.so.1"
        not in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    ):
        log("bench: installing libuv1 (socketify loads it)")
        apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "apt-get"]
        subprocess.run(apt + ["update", "-qq"], check=True)
        subprocess.run(apt + ["install", "-y", "-qq", "libuv1"], check=True)
    subprocess.run(pip + [os.path.join(ROOT, "python")], check=True)


def versions():
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['roost', 'robyn', 'websockets', 'picows', 'aiohttp', 'socketify', 'anyio', 'trio']}))"
    )
    return json.loads(
        subprocess.run([VENV_PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout
    )


# ---- one server ------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Contender:
    """A fresh server of one contender, pinned, on a free port, ready when it accepts;
    serving wss:// with `tls` (a TestCertificate), permessage-deflate with `compression`,
    the files of `static_dir` under /static/ (HTTP scenarios)."""

    def __init__(self, name, logs, tls=None, compression=False, static_dir=None):
        self.name = name
        self.port = free_port()
        self.tls = tls
        self.log_path = os.path.join(logs, f"{name}.log")
        self.log = open(self.log_path, "a")
        self.log.write(f"---- {name}: tls={bool(tls)} compression={compression}\n")
        self.log.flush()
        argv, env = CONTENDERS[name](
            self.port, tls=tls, compression=compression, static_dir=static_dir
        )
        self.proc = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=SERVERS,
            env={**os.environ, **env},
            preexec_fn=preexec(NOFILE, SERVER_CPUS),
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                why = f"{name} exited with {self.proc.returncode} at start: {last_line(self.log_path)}"
                if self.proc.returncode == EXIT_UNSUPPORTED:
                    raise Unsupported(why)
                raise RuntimeError(why)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not accept connections within 60 s") from None
                time.sleep(0.05)
        time.sleep(0.3)

    def url(self, path, http=False):
        scheme = ("https" if self.tls else "http") if http else ("wss" if self.tls else "ws")
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def cpu(self):
        user, system = cpu_of(f"/proc/{self.proc.pid}/stat")
        return user + system

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Unsupported(Exception):
    """The server cannot serve the scenario (a feature it lacks)."""


def last_line(path):
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "(no output)"


class TestCertificate:
    """A test CA and a certificate for 127.0.0.1 and localhost that it signed (ECDSA
    P-256, trustme's default), as PEM files in `folder`: ca.pem for the load generator,
    server.pem (the chain) and server.key for the servers."""

    def __init__(self, folder):
        import trustme  # in bench/.venv (bench/requirements.txt)

        os.makedirs(folder, exist_ok=True)
        ca = trustme.CA(organization_name="Roost bench")
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca = os.path.join(folder, "ca.pem")
        self.cert = os.path.join(folder, "server.pem")
        self.key = os.path.join(folder, "server.key")
        ca.cert_pem.write_to_path(self.ca)
        with open(self.cert, "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())
        cert.private_key_pem.write_to_path(self.key)


class StaticFiles:
    """The folder the servers serve under /static/ in the HTTP scenarios, with one file
    of FILE_SIZE bytes (every byte value, in a fixed order), written anew for each run
    so that every server serves the same bytes, and the load generator compares each
    response's body with them."""

    FILE_SIZE = 4096

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.name = "4k.bin"
        self.file = os.path.join(folder, self.name)
        with open(self.file, "wb") as f:
            f.write(bytes((i * 7 + i // 256) % 256 for i in range(self.FILE_SIZE)))


# ---- scenarios -------------------------------------------------------------------


class Scenario:
    """loadgen's arguments (its mode first) and the route they go to; who takes part
    (None: every contender); whether servers serve wss:// and accept permessage-deflate
    (loadgen then gets --ca-file, and --compression); whether it is an HTTP scenario
    (an http:// URL, the servers serve the static folder)."""

    def __init__(self, args, path, contenders=None, tls=False, compression=False, http=False):
        self.args = [str(a) for a in args]
        self.path = path
        self.contenders = contenders
        self.tls = tls
        self.compression = compression
        self.http = http

    def takes(self, name):
        return self.contenders is None or name in self.contenders


def scenarios(quick, static):
    """Every scenario by name; `static` is the StaticFiles the HTTP scenarios serve."""
    d = 1.5 if quick else 4.0
    w = 0.5 if quick else 1.0
    echo = ["echo", "--connections", 50, "--inflight", 16, "--duration", d, "--warmup", w]
    http = ["http", "--connections", HTTP_CONNECTIONS, "--pipeline", HTTP_PIPELINE]
    http += ["--duration", d, "--warmup", w]
    connrate = ["connrate", "--concurrency", 16, "--duration", d, "--warmup", w]
    idle = ["idle", "--connections", IDLE_CONNECTIONS, "--hold", 2 if quick else 3]
    return {
        "pingpong": Scenario(["pingpong", "--count", 2000 if quick else 10000], "/ws"),
        "echo32": Scenario(echo + ["--size", 32], "/ws"),
        "echo4k": Scenario(echo + ["--size", 4096], "/ws"),
        "broadcast100": Scenario(
            ["broadcast", "--receivers", 100, "--rate", 0, "--window", 64, "--duration", d],
            "/chat",
        ),
        "broadcast1000": Scenario(
            ["broadcast", "--receivers", 1000, "--rate", 0, "--window", 64, "--duration", d],
            "/chat",
        ),
        "pubsub": Scenario(
            [
                "pubsub",
                "--topics",
                10,
                "--subscribers",
                100,
                "--rate",
                0,
                "--window",
                64,
                "--duration",
                d,
            ],
            "",
        ),
        "connrate": Scenario(connrate, "/ws"),
        "idle": Scenario(idle, "/ws"),
        "echo32-tls": Scenario(echo + ["--size", 32], "/ws", TLS_CONTENDERS, tls=True),
        "connrate-tls": Scenario(connrate, "/ws", TLS_CONTENDERS, tls=True),
        "idle-tls": Scenario(idle, "/ws", TLS_CONTENDERS, tls=True),
        "echo4k-json-deflate": Scenario(
            echo + ["--size", 4096, "--payload", "json"],
            "/ws",
            DEFLATE_CONTENDERS,
            compression=True,
        ),
        "idle-deflate": Scenario(idle, "/ws", DEFLATE_CONTENDERS, compression=True),
        "http-hello": Scenario(
            http + ["--expect-body", HELLO], "/hello", HTTP_CONTENDERS, http=True
        ),
        "http-static4k": Scenario(
            http + ["--expect-body-file", static.file],
            f"/static/{static.name}",
            HTTP_CONTENDERS,
            http=True,
        ),
    }


def run_one(name, scenario, spec, logs, certificate=None, static=None):
    """One fresh server, one loadgen run. Returns the record of this run."""
    tls = certificate if spec.tls else None
    static_dir = static.folder if spec.http else None
    server = Contender(name, logs, tls=tls, compression=spec.compression, static_dir=static_dir)
    marks = {}
    args = list(spec.args)
    if tls:
        args += ["--ca-file", tls.ca]
    if spec.compression:
        args.append("--compression")

    def on_phase(phase, _detail):
        if phase in ("measure_start", "measure_end"):
            marks[phase] = (time.monotonic(), server.cpu())
        if phase == "all_open":
            time.sleep(1.0)  # let the server finish what the handshakes started
            marks["loaded_rss"] = server.rss_kib()

    try:
        base_rss = server.rss_kib()
        rc, result, lines = run_loadgen(
            DEFAULT_LOADGEN,
            [args[0], "--url", server.url(spec.path, http=spec.http), *args[1:]],
            on_phase=on_phase,
            nofile=NOFILE,
            cpus=LOADGEN_CPUS,
            timeout=180,
            quiet=True,
        )
    finally:
        server.stop()
    record = {"ok": bool(rc == 0 and result and result.get("ok")), "result": result or {}}
    if not record["ok"]:
        tail = " | ".join(lines[-3:])
        record["error"] = f"loadgen exit {rc}: {(result or {}).get('first_errors') or tail}"[:400]
    if "measure_start" in marks and "measure_end" in marks:
        (t0, c0), (t1, c1) = marks["measure_start"], marks["measure_end"]
        record["server_cpu_share"] = (c1 - c0) / max(t1 - t0, 1e-9)
    if result:
        record["loadgen_cpu_share"] = result.get("cpu_share")
    record["value"] = metric_of(scenario, result or {}, base_rss, marks)
    return record


def metric_of(scenario, result, base_rss, marks):
    """The scenario's headline figures from loadgen's RESULT (and the server's RSS)."""
    if scenario == "pingpong":
        return {"p50_us": result.get("p50_us"), "p99_us": result.get("p99_us")}
    if scenario.startswith("echo"):
        return {"msgs_per_sec": result.get("msgs_per_sec")}
    if scenario.startswith("broadcast") or scenario == "pubsub":
        return {
            "deliveries_per_sec": result.get("deliveries_per_sec"),
            "p99_us": result.get("p99_us"),
            "lost": result.get("lost"),
        }
    if scenario.startswith("http"):
        return {
            "requests_per_sec": result.get("requests_per_sec"),
            "p50_us": result.get("p50_us"),
            "p99_us": result.get("p99_us"),
        }
    if scenario.startswith("connrate"):
        return {"conns_per_sec": result.get("conns_per_sec")}
    if scenario.startswith("idle") and "loaded_rss" in marks:
        return {"kib_per_conn": (marks["loaded_rss"] - base_rss) / IDLE_CONNECTIONS}
    return {}


# ---- main ------------------------------------------------------------------------


def machine():
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "congestion_control": open("/proc/sys/net/ipv4/tcp_congestion_control").read().strip(),
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    ap.add_argument("--only", help="comma-separated contenders")
    ap.add_argument("--scenarios", help="comma-separated scenarios")
    ap.add_argument(
        "--out",
        default=RESULTS,
        help="output folder: results.md, chart.png, results.json "
        "and the servers' logs (default bench/results)",
    )
    ap.add_argument("--no-setup", action="store_true", help="use bench/.venv as it is")
    ap.add_argument(
        "--require",
        help="comma-separated contenders whose every run must succeed "
        "(else exit 1), e.g. for a smoke run in CI; runs of a scenario the "
        "contender does not support (its server says so at start) do not count",
    )
    args = ap.parse_args()

    if not args.no_setup:
        ensure_env()
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        # The chart needs matplotlib, which lives in the bench environment.
        os.execv(VENV_PYTHON, [VENV_PYTHON, __file__, *sys.argv[1:], "--no-setup"])
    if not os.access(DEFAULT_LOADGEN, os.X_OK) or not os.access(C_SERVER, os.X_OK):
        sys.exit("bench: build first (make bench does: make, and cargo build in bench/loadgen)")
    names = args.only.split(",") if args.only else list(CONTENDERS)
    # Absolute: the servers run in bench/servers, and get paths below it (static files,
    # certificates).
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    static = StaticFiles(os.path.join(args.out, "static"))
    all_scenarios = scenarios(args.quick, static)
    chosen = args.scenarios.split(",") if args.scenarios else list(all_scenarios)
    for n in names + chosen:
        if n not in CONTENDERS and n not in all_scenarios:
            sys.exit(f"bench: unknown contender or scenario {n!r}")
    logs = os.path.join(args.out, "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)

    certificate = None
    if any(all_scenarios[s].tls for s in chosen):
        certificate = TestCertificate(os.path.join(args.out, "tls"))

    started = time.time()
    runs = {s: {n: [] for n in names if all_scenarios[s].takes(n)} for s in chosen}
    for round_no in range(1, args.rounds + 1):
        for scenario in chosen:
            for name in runs[scenario]:
                try:
                    record = run_one(
                        name, scenario, all_scenarios[scenario], logs, certificate, static
                    )
                except Unsupported as error:
                    record = {"ok": False, "unsupported": True, "error": str(error), "value": {}}
                except Exception as error:  # a server that cannot start is a failed run
                    record = {"ok": False, "error": str(error), "value": {}}
                runs[scenario][name].append(record)
                log(
                    f"round {round_no} {scenario:19s} {name:14s} {report.describe(scenario, record)}"
                )

    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "rounds": args.rounds,
            "quick": args.quick,
            "server_cpus": sorted(SERVER_CPUS),
            "loadgen_cpus": sorted(LOADGEN_CPUS),
            "idle_connections": IDLE_CONNECTIONS,
            "http_connections": HTTP_CONNECTIONS,
            "http_pipeline": HTTP_PIPELINE,
        },
        "contenders": names,
        "python_native": [n for n in PYTHON_NATIVE if n in names],
        "runs": runs,
        "medians": {
            s: {n: report.medians(rs) for n, rs in by_name.items()} for s, by_name in runs.items()
        },
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    markdown = report.markdown(summary)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown)
    report.chart(summary, os.path.join(args.out, "chart.png"))
    print()
    print(markdown)
    required = args.require.split(",") if args.require else []
    failed = [
        f"{s} {n}"
        for s, by in runs.items()
        for n, rs in by.items()
        if n in required
        for r in rs
        if not r.get("ok") and not r.get("unsupported")
    ]
    if failed:
        sys.exit("bench: required runs failed: " + ", ".join(failed))


if __name__ == "__main__":
    main()
