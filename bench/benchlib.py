"""Shared helpers of the benchmark drivers: starting the C echo server, reading its
/proc figures, and running loadgen while following its PHASE lines.

Everything here talks to 127.0.0.1 only.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SERVER = os.path.join(ROOT, "examples", "c", "echo_server")
DEFAULT_LOADGEN = os.path.join(ROOT, "bench", "loadgen", "target", "release", "loadgen")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def preexec(nofile=None, cpus=None):
    """A preexec_fn that raises the open-file limit and pins the child to `cpus`."""

    def setup():
        if nofile:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            try:
                # Raising the hard limit needs CAP_SYS_RESOURCE; keep the old one without it.
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, max(nofile, hard)))
            except (ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return setup


class Server:
    """The C echo server on an ephemeral port of 127.0.0.1 (it prints the bound port)."""

    def __init__(self, path, nofile=None, cpus=None, extra_env=None, command=None):
        if command is None and not os.access(path, os.X_OK):
            raise BenchError(f"server {path} not found or not executable (run `make examples`)")
        env = dict(os.environ)
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            command or [path, "0", "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec(nofile, cpus),
            env=env,
        )
        self.pid = self.proc.pid
        self.stdout_lines = []
        self.stderr_lines = []
        line = self.proc.stdout.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            rest, err = self.proc.communicate(timeout=5)
            raise BenchError(f"server did not start: {line!r} {rest!r} {err!r}")
        self.port = int(m.group(1))
        self.stdout_lines.append(line.rstrip("\n"))
        self._drains = [
            threading.Thread(
                target=self._drain, args=(self.proc.stdout, self.stdout_lines), daemon=True
            ),
            threading.Thread(
                target=self._drain, args=(self.proc.stderr, self.stderr_lines), daemon=True
            ),
        ]
        for t in self._drains:
            t.start()

    @staticmethod
    def _drain(stream, lines):
        for line in stream:
            lines.append(line.rstrip("\n"))

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def alive(self):
        return self.proc.poll() is None

    def status(self):
        """/proc/PID/status as a dict of strings."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
        return out

    def rss_kib(self):
        return int(self.status()["VmRSS"].split()[0])

    def memory(self):
        s = self.status()
        kib = lambda k: int(s.get(k, "0 kB").split()[0])  # noqa: E731
        return {
            "rss_kib": kib("VmRSS"),
            "rss_anon_kib": kib("RssAnon"),
            "rss_file_kib": kib("RssFile"),
            "hwm_kib": kib("VmHWM"),
            "threads": int(s.get("Threads", "0")),
        }

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile_limit(self):
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def cpu(self):
        """(user, system) CPU seconds of the whole process, from /proc/PID/stat."""
        return cpu_of(f"/proc/{self.pid}/stat")

    def thread_cpu(self):
        """{thread name: CPU seconds (user+sys)} for each thread."""
        out = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                u, s = cpu_of(f"/proc/{self.pid}/task/{tid}/stat")
            except OSError:
                continue
            key = f"{name}[{tid}]"
            out[key] = u + s
        return out

    def stop(self, timeout=15):
        """SIGINT, then wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        for t in self._drains:
            t.join(timeout=2)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cpu_of(stat_path):
    with open(stat_path) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_busy(cpus):
    """{cpu: (busy seconds, of which irq+softirq)} from /proc/stat for the given CPUs:
    user+nice+system+irq+softirq+steal, whoever used it."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            cpu = int(name[3:])
            if cpu in cpus:
                v = [int(x) for x in vals]
                user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
                out[cpu] = (
                    (user + nice + system + irq + softirq + steal) / CLK_TCK,
                    (irq + softirq) / CLK_TCK,
                )
    return out


def wait_quiet(max_wait, threshold=0.10, interval=1.0):
    """Waits (up to `max_wait` seconds) for a second in which the machine's CPUs were
    less than `threshold` busy on average. Returns that last measured fraction."""
    cpus = set(os.sched_getaffinity(0)) | {0, 1}
    deadline = time.monotonic() + max_wait
    while True:
        a = cpu_busy(cpus)
        time.sleep(interval)
        b = cpu_busy(cpus)
        frac = sum(b[c][0] - a[c][0] for c in b if c in a) / (interval * max(1, len(b)))
        if frac < threshold or time.monotonic() >= deadline:
            return frac


def run_loadgen(loadgen, args, on_phase=None, nofile=None, cpus=None, timeout=600, quiet=False):
    """Runs loadgen, echoing its output (unless `quiet`), calling on_phase(name, detail)
    for each PHASE line as it arrives. Returns (exit code, RESULT dict or None, output
    lines)."""
    if not os.access(loadgen, os.X_OK):
        raise BenchError(f"loadgen {loadgen} not found (cargo build --release in bench/loadgen)")
    proc = subprocess.Popen(
        [loadgen] + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec(nofile, cpus),
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    result = None
    lines = []
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if line.startswith("PHASE "):
                parts = line.split(" ", 2)
                if on_phase:
                    on_phase(parts[1], parts[2] if len(parts) > 2 else "")
                if not quiet:
                    print(f"    loadgen: {line}", flush=True)
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
            elif not quiet:
                print(f"    loadgen: {line}", flush=True)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, result, lines


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan")
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def log(msg):
    print(msg, flush=True)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
