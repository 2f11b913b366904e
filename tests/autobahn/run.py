#!/usr/bin/env python3
"""Autobahn|Testsuite conformance run (`make conformance`).

Runs the suite's fuzzing client against Roost's echo servers, all on 127.0.0.1:

    roost-c       examples/c/echo_server PORT 127.0.0.1 16778240, route /echo
                  (ROOST_COMPRESSION=deflate-per-connection: a compression context
                  kept per connection, so that the two servers cover both modes)
    roost-python  tests/autobahn/echo_server.py (asyncio, compression="deflate"), route /echo
    roost-python-trio   the same on trio (only with --servers ...,python-trio)

then reduces the reports to tests/autobahn/reports/results.json, {agent: {case:
behavior}}, prints a table per server, and compares the behaviors with the baseline
tests/autobahn/expected-results.json: a case that got worse than its baseline fails
the run. `--update-baseline` writes the baseline from this run instead.

The suite (autobahntestsuite 25.10.1) runs only on CPython 2.7. The first run makes a
2.7 virtualenv in tests/autobahn/.venv27 (with virtualenv<20.22, installed into
tests/autobahn/.tools) and installs the pinned requirements-py27.txt into it; later
runs reuse it. Without a 2.7 interpreter the run says so and exits with status 2.
Sections 1 to 10 take about 40 s (the 16 MiB performance cases 9.* about 8 s per
server); 12.* and 13.* (permessage-deflate, 1,000 messages a case, compressed by the
suite's Python 2.7 client) about 15 minutes per server. Making the environment adds 15
to 40 s the first time.

A behavior is Autobahn's `behavior` of the case (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED), with " (close: X)" appended when the closing handshake was not
right (`behaviorClose` X): WRONG CODE or FAILED BY CLIENT count as NON-STRICT, UNCLEAN
or FAILED as FAILED. Worse means, in order: OK / INFORMATIONAL, UNIMPLEMENTED,
NON-STRICT, FAILED. A few cases are timing-dependent (TIMING_DEPENDENT below): for
them OK and NON-STRICT are both accepted, whatever the baseline says.

Options: --servers c,python[,python-trio], --cases '1.*,9.1.*' (a quick partial run,
compared as far as it goes), --timeout SECONDS (wstest's whole run), --python27 PATH.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = HERE / ".venv27"
TOOLS = HERE / ".tools"
REPORTS = HERE / "reports"
CONFIG = HERE / "fuzzingclient.json"
REQUIREMENTS = HERE / "requirements-py27.txt"
BASELINE = HERE / "expected-results.json"
C_SERVER = ROOT / "examples" / "c" / "echo_server"
PY_SERVER = HERE / "echo_server.py"

MAX_MESSAGE_SIZE = 16 * 1024 * 1024 + 1024
DEFAULT_SERVERS = ("c", "python")
AGENTS = {"c": "roost-c", "python": "roost-python", "python-trio": "roost-python-trio"}
CATEGORIES = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
RANK = {"OK": 0, "INFORMATIONAL": 0, "UNIMPLEMENTED": 1, "NON-STRICT": 2, "FAILED": 3}
CLOSE_FINE = ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
CLOSE_NON_STRICT = ("WRONG CODE", "FAILED BY CLIENT")

# Cases whose outcome depends on timing, and the worst behavior tolerated for them
# whatever the baseline says. Each sends a valid message and then, byte by byte, a
# frame the server must fail the connection for: OK if the echo of the message leaves
# before the server has read the bad frame, NON-STRICT if the connection fails first.
# The core fails a connection as soon as it reads a protocol error, while the echo
# takes a round trip through the consumer (C poll loop or Python handler). The bad
# opcode of 4.1.5 / 4.2.5 is seen two bytes into the frame (4.2.5 came out both ways
# in repeated runs); bad reserved bits (3.4 to 3.7) only once all 19 bytes of the frame
# are in, which leaves the echo more time but guarantees nothing (3.4 came out
# NON-STRICT under CPU load). Where the bad frame arrives in the same segment as the
# message (3.2, 3.3, 4.1.3, 4.1.4, 4.2.3, 4.2.4, 5.15) the result is NON-STRICT every
# time and is compared as usual.
TIMING_DEPENDENT = {case: "NON-STRICT" for case in ("3.4", "3.5", "3.6", "3.7", "4.1.5", "4.2.5")}


class Abort(Exception):
    """Ends the run with a message and an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def log(message: str) -> None:
    print(message, flush=True)


# ---- the Python 2.7 environment -------------------------------------------------------


def find_python27(explicit: str | None) -> str:
    candidates: list[str] = []
    if explicit:
        candidates.append(explicit)
    elif os.environ.get("AUTOBAHN_PYTHON27"):
        candidates.append(os.environ["AUTOBAHN_PYTHON27"])
    else:
        for name in ("python2.7", "python2"):
            found = shutil.which(name)
            if found:
                candidates.append(found)
        roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
        pyenv = shutil.which("pyenv")
        if pyenv:
            try:
                roots.insert(
                    0,
                    subprocess.run(
                        [pyenv, "root"], capture_output=True, text=True, timeout=10
                    ).stdout.strip(),
                )
            except (OSError, subprocess.SubprocessError):
                pass
        for root in filter(None, roots):
            candidates += sorted(
                glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python2.7")), reverse=True
            )
        candidates += ["/usr/bin/python2.7", "/usr/local/bin/python2.7"]
    for candidate in dict.fromkeys(candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (2, 7))"],
                capture_output=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    raise Abort(
        "conformance: no CPython 2.7 interpreter found, and the Autobahn|Testsuite "
        "(autobahntestsuite 25.10.1) runs only on 2.7.\n"
        "  Install one (e.g. `pyenv install 2.7.18`) or name it with "
        "AUTOBAHN_PYTHON27=/path/to/python2.7 or --python27.\n"
        "  Tried: " + (", ".join(dict.fromkeys(candidates)) or "nothing"),
        status=2,
    )


def run_checked(cmd: list[str], what: str, timeout: float, **kwargs: Any) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise Abort(f"conformance: {what} took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise Abort(
            f"conformance: {what} failed (exit {done.returncode}):\n"
            f"$ {' '.join(cmd)}\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )


def ensure_venv(python27: str) -> Path:
    """The virtualenv's wstest, made and installed on first use."""
    wstest = VENV / "bin" / "wstest"
    stamp_file = VENV / ".roost-stamp"
    stamp = hashlib.sha256(REQUIREMENTS.read_bytes() + python27.encode()).hexdigest()
    if wstest.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return wstest
    started = time.monotonic()
    log(f"conformance: making the Python 2.7 environment {VENV.relative_to(ROOT)} ({python27})")
    shutil.rmtree(VENV, ignore_errors=True)
    # virtualenv 20.22 dropped the creation of 2.7 environments; keep an older one apart
    # from the system's packages.
    if not (TOOLS / "virtualenv").is_dir():
        shutil.rmtree(TOOLS, ignore_errors=True)
        run_checked(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--target",
                str(TOOLS),
                "virtualenv<20.22",
            ],
            "installing virtualenv<20.22",
            timeout=600,
        )
    env = dict(os.environ, PYTHONPATH=str(TOOLS))
    run_checked(
        [sys.executable, "-m", "virtualenv", "--quiet", "--no-download", "-p", python27, str(VENV)],
        "creating the 2.7 virtualenv",
        timeout=300,
        env=env,
    )
    run_checked(
        [
            str(VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            str(REQUIREMENTS),
        ],
        "installing autobahntestsuite into the 2.7 virtualenv",
        timeout=1200,
    )
    if not wstest.exists():
        raise Abort(f"conformance: {wstest} missing after the installation")
    stamp_file.write_text(stamp + "\n")
    log(f"conformance: environment ready in {time.monotonic() - started:.0f} s")
    return wstest


# ---- the servers ----------------------------------------------------------------------


class Server:
    def __init__(self, key: str, cmd: list[str], logfile: Path) -> None:
        self.key = key
        self.agent = AGENTS[key]
        self.logfile = logfile
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            # permessage-deflate on, for 12.* and 13.* (the Python server sets it itself).
            env=dict(os.environ, ROOST_COMPRESSION="deflate-per-connection"),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.port = self._wait_for_port(cmd)

    def _wait_for_port(self, cmd: list[str]) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"ws://127\.0\.0\.1:(\d+)", self.logfile.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise Abort(
            f"conformance: server {self.agent} did not start: $ {' '.join(cmd)}\n"
            + self.logfile.read_text(errors="replace")[-4000:]
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/echo"

    def stop(self) -> int | None:
        """Stops the server (SIGINT, then SIGKILL); returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def start_servers(keys: list[str]) -> list[Server]:
    servers: list[Server] = []
    try:
        for key in keys:
            if key == "c":
                if not C_SERVER.exists():
                    raise Abort(f"conformance: {C_SERVER.relative_to(ROOT)} is missing: run `make`")
                cmd = [str(C_SERVER), "0", "127.0.0.1", str(MAX_MESSAGE_SIZE)]
            else:
                probe = subprocess.run([sys.executable, "-c", "import roost"], capture_output=True)
                if probe.returncode != 0:
                    raise Abort(
                        "conformance: the roost package is not installed: run `make python`"
                    )
                cmd = [
                    sys.executable,
                    str(PY_SERVER),
                    "--port",
                    "0",
                    "--backend",
                    "trio" if key == "python-trio" else "asyncio",
                ]
            servers.append(Server(key, cmd, REPORTS / f"server-{AGENTS[key]}.log"))
            log(f"conformance: {servers[-1].agent} serving on {servers[-1].url}")
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


# ---- wstest ---------------------------------------------------------------------------


def run_wstest(
    wstest: Path, servers: list[Server], cases: list[str] | None, timeout: float
) -> None:
    spec = json.loads(CONFIG.read_text())
    spec["outdir"] = str(REPORTS / "servers")
    spec["servers"] = [{"agent": s.agent, "url": s.url} for s in servers]
    if cases:
        spec["cases"] = cases
    spec_file = REPORTS / "fuzzingclient-spec.json"
    spec_file.write_text(json.dumps(spec, indent=2) + "\n")

    wstest_log = REPORTS / "wstest.log"
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(wstest), "-m", "fuzzingclient", "-s", str(spec_file)],
        cwd=REPORTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    assert proc.stdout is not None
    stdout = proc.stdout

    def follow() -> None:
        section = None
        with open(wstest_log, "w") as out:
            for line in stdout:
                out.write(line)
                out.flush()
                match = re.match(r"Running test case ID (\S+) for agent (\S+)", line)
                if match and (match.group(2), match.group(1).split(".")[0]) != section:
                    section = (match.group(2), match.group(1).split(".")[0])
                    log(
                        f"  {time.monotonic() - started:6.0f} s  {section[0]}: cases {section[1]}.*"
                    )

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(5)
        raise Abort(
            f"conformance: wstest did not finish within {timeout:.0f} s (--timeout); "
            f"its output is in {wstest_log.relative_to(ROOT)}"
        ) from None
    reader.join(5)
    log(f"conformance: wstest finished in {time.monotonic() - started:.0f} s")
    if status != 0:
        raise Abort(f"conformance: wstest exited with {status}; see {wstest_log.relative_to(ROOT)}")


# ---- results --------------------------------------------------------------------------


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def behavior_of(entry: dict[str, Any]) -> str:
    behavior, close = entry["behavior"], entry["behaviorClose"]
    return behavior if close in CLOSE_FINE else f"{behavior} (close: {close})"


def category(value: str) -> str:
    behavior, _, close = value.partition(" (close: ")
    close = close.rstrip(")")
    cat = behavior if behavior in RANK else "FAILED"
    if close and close not in CLOSE_FINE:
        close_cat = "NON-STRICT" if close in CLOSE_NON_STRICT else "FAILED"
        if RANK[close_cat] > RANK[cat]:
            cat = close_cat
    return cat


def read_results(agents: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    index_file = REPORTS / "servers" / "index.json"
    if not index_file.exists():
        raise Abort(
            f"conformance: {index_file.relative_to(ROOT)} was not written; "
            f"see {(REPORTS / 'wstest.log').relative_to(ROOT)}"
        )
    index = json.loads(index_file.read_text())
    results: dict[str, dict[str, str]] = {}
    for agent in agents:
        cases = index.get(agent, {})
        results[agent] = {c: behavior_of(cases[c]) for c in sorted(cases, key=case_key)}
    return results, index


def summary(agent: str, cases: dict[str, str]) -> str:
    sections: dict[int, dict[str, int]] = {}
    for case, value in cases.items():
        row = sections.setdefault(case_key(case)[0], dict.fromkeys(CATEGORIES, 0))
        row[category(value)] += 1
    header = f"{'section':>8}" + "".join(f"{c:>15}" for c in CATEGORIES) + f"{'total':>8}"
    lines = [f"{agent}: {len(cases)} cases", header]
    total = dict.fromkeys(CATEGORIES, 0)
    for section in sorted(sections):
        row = sections[section]
        for c in CATEGORIES:
            total[c] += row[c]
        lines.append(
            f"{section:>8}"
            + "".join(f"{row[c]:>15}" for c in CATEGORIES)
            + f"{sum(row.values()):>8}"
        )
    lines.append(
        f"{'all':>8}" + "".join(f"{total[c]:>15}" for c in CATEGORIES) + f"{sum(total.values()):>8}"
    )
    return "\n".join(lines)


def details(agent: str, cases: dict[str, str], index: dict[str, dict[str, Any]]) -> list[str]:
    """One line per NON-STRICT or FAILED case, with what the suite says about it."""
    lines = []
    for case, value in cases.items():
        if category(value) not in ("NON-STRICT", "FAILED"):
            continue
        entry = index.get(agent, {}).get(case, {})
        report = REPORTS / "servers" / entry.get("reportfile", "")
        detail = (
            json.loads(report.read_text()) if report.is_file() and entry.get("reportfile") else {}
        )
        reason = detail.get("remoteCloseReason")
        note = f"closed with {entry.get('remoteCloseCode')}" + (f" {reason!r}" if reason else "")
        if case in TIMING_DEPENDENT:
            note += " [timing-dependent]"
        lines.append(f"    {case:<9} {value:<24} {note}")
        if detail:

            def short(x: Any) -> str:
                text = json.dumps(x)
                return text if len(text) <= 160 else text[:157] + "..."

            lines.append(
                f"        OK needs {short(detail.get('expected', {}).get('OK'))}, "
                f"received {short(detail.get('received'))}"
            )
            if entry.get("behaviorClose") not in CLOSE_FINE:
                lines.append(f"        close: {detail.get('resultClose')}")
    return lines


def compare(
    results: dict[str, dict[str, str]], baseline: dict[str, dict[str, str]], partial: bool
) -> tuple[list[str], list[str]]:
    """Regressions (fail the run) and improvements (worth a baseline update)."""
    worse, better = [], []
    for agent, cases in results.items():
        expected = baseline.get(agent)
        if expected is None:
            for case, value in cases.items():
                if category(value) == "FAILED":
                    worse.append(f"{agent} {case}: {value} (no baseline for {agent})")
            continue
        for case in sorted(set(cases) | set(expected), key=case_key):
            now, before = cases.get(case), expected.get(case)
            if now is None:
                if not partial:
                    worse.append(f"{agent} {case}: {before} -> not run")
            elif before is None:
                if category(now) == "FAILED":
                    worse.append(f"{agent} {case}: {now} (not in the baseline)")
                else:
                    better.append(f"{agent} {case}: {now} (not in the baseline)")
            elif case in TIMING_DEPENDENT:
                allowed = max(RANK[category(before)], RANK[TIMING_DEPENDENT[case]])
                if RANK[category(now)] > allowed:
                    worse.append(
                        f"{agent} {case}: {before} -> {now} (timing-dependent case, "
                        f"tolerates {TIMING_DEPENDENT[case]})"
                    )
            elif RANK[category(now)] > RANK[category(before)]:
                worse.append(f"{agent} {case}: {before} -> {now}")
            elif now != before:
                better.append(f"{agent} {case}: {before} -> {now}")
    return worse, better


# ---- main -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"write {BASELINE.name} from this run instead of comparing",
    )
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help="comma-separated, of: " + ", ".join(AGENTS) + " (default: %(default)s)",
    )
    parser.add_argument(
        "--cases",
        help="comma-separated case patterns, e.g. '1.*,9.1.*' "
        "(default: all of fuzzingclient.json); compared with the baseline as far as run",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="longest wstest run in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--python27",
        help="the CPython 2.7 interpreter (default: "
        "$AUTOBAHN_PYTHON27, python2.7 on PATH, pyenv's 2.7.*)",
    )
    args = parser.parse_args()

    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in keys if k not in AGENTS]
    if unknown or not keys:
        parser.error(f"unknown server {', '.join(unknown)}; choose from {', '.join(AGENTS)}")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    if args.update_baseline and cases:
        parser.error("--update-baseline needs the full run (no --cases)")

    started = time.monotonic()
    crashed: list[str] = []
    try:
        wstest = ensure_venv(find_python27(args.python27))
        shutil.rmtree(REPORTS, ignore_errors=True)
        REPORTS.mkdir(parents=True)
        servers = start_servers(keys)
        try:
            run_wstest(wstest, servers, cases, args.timeout)
        finally:
            for server in servers:
                if server.proc.poll() is not None:
                    crashed.append(
                        f"{server.agent} exited with {server.proc.returncode} during "
                        f"the run; see {server.logfile.relative_to(ROOT)}"
                    )
                server.stop()
        agents = [s.agent for s in servers]
        results, index = read_results(agents)
    except Abort as abort:
        print(abort, file=sys.stderr, flush=True)
        for line in crashed:
            print(f"conformance: {line}", file=sys.stderr)
        return abort.status

    results_file = REPORTS / "results.json"
    results_file.write_text(json.dumps(results, indent=1) + "\n")
    for agent in agents:
        log("")
        log(summary(agent, results[agent]))
        lines = details(agent, results[agent], index)
        if lines:
            log("  NON-STRICT and FAILED cases:")
            for line in lines:
                log(line)
    log("")
    log(
        f"conformance: reports in {(REPORTS / 'servers').relative_to(ROOT)}/index.html, "
        f"behaviors in {results_file.relative_to(ROOT)}; "
        f"whole run {time.monotonic() - started:.0f} s"
    )
    for line in crashed:
        print(f"conformance: {line}", file=sys.stderr)

    if args.update_baseline:
        if crashed:
            print(
                "conformance: baseline not written: a server did not survive the run",
                file=sys.stderr,
            )
            return 1
        baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        baseline.update(results)
        BASELINE.write_text(json.dumps(baseline, indent=1, sort_keys=False) + "\n")
        log(f"conformance: baseline {BASELINE.relative_to(ROOT)} written for {', '.join(agents)}")
        return 0

    if not BASELINE.exists():
        print(
            f"conformance: no baseline {BASELINE.relative_to(ROOT)}; "
            "run with --update-baseline to write one",
            file=sys.stderr,
        )
        return 1
    baseline = json.loads(BASELINE.read_text())
    for agent in agents:
        if agent not in baseline:
            log(f"conformance: no baseline for {agent}: only its FAILED cases fail the run")
    worse, better = compare(results, baseline, partial=bool(cases))
    if better:
        log(
            f"conformance: {len(better)} case(s) better than the baseline "
            "(`tests/autobahn/run.py --update-baseline` records them):"
        )
        for line in better:
            log(f"    {line}")
    if worse:
        print(
            f"conformance: FAILED, {len(worse)} regression(s) against the baseline:",
            file=sys.stderr,
        )
        for line in worse:
            print(f"    {line}", file=sys.stderr)
        return 1
    if crashed:
        return 1
    log("conformance: passed (no case worse than the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
