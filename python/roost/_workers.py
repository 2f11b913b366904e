"""Serving one port from several processes (`App.start(workers=N)`, Linux only).

The parent process forks N workers before any core thread or event loop exists; each
worker binds the same host and port with SO_REUSEPORT and runs its own core and event
loop, and the kernel spreads new connections over them. The parent serves nothing: it
holds the port (a bound, non-listening SO_REUSEPORT socket receives no connections),
waits until every worker serves, prints the serving line, and supervises:

- SIGINT or SIGTERM: SIGTERM to every worker (each stops gracefully: its clients get
  1001), wait for them, exit 0. A worker still running `shutdown_grace` + 5 s later is
  killed.
- A worker that dies (killed, crashed, or stopped by a signal of its own) is logged on
  stderr with its pid and exit status or signal, and replaced. `RESTART_LIMIT` deaths
  within `RESTART_WINDOW` seconds stop the others and exit 1: a worker that dies that
  often will not serve.
- A worker that fails before it serves (its address cannot be bound) stops the others
  and exits 1 with the worker's message.
- A handler that raises SystemExit or KeyboardInterrupt asks the whole program to end:
  its worker stops gracefully, the parent stops the others and exits with its status.

Workers die with the parent: the kernel sends them SIGTERM when it dies
(PR_SET_PDEATHSIG), and a worker that has not ended `shutdown_grace` + 5 s after its
parent's death exits at once (it watches a pipe only the parent holds).
"""

from __future__ import annotations

import collections
import ctypes
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

#: Deaths of running workers within RESTART_WINDOW seconds that stop the program.
RESTART_LIMIT = 5
RESTART_WINDOW = 10.0
#: Seconds beyond the app's shutdown_grace that a stopping worker is given before it
#: is killed (its event loop may be blocked by a handler).
STOP_MARGIN = 5.0

_PR_SET_PDEATHSIG = 1


def worker_count(workers: int | None) -> int:
    """The number of worker processes: `workers`, else `$ROOST_WORKERS`, else 1.

    Raises:
        TypeError: `workers` is not an int.
        ValueError: it is below 1, or `$ROOST_WORKERS` is not an integer of at least 1.
        RuntimeError: more than one worker outside Linux.
    """
    if workers is None:
        raw = os.environ.get("ROOST_WORKERS", "").strip()
        if not raw:
            return 1
        try:
            count = int(raw)
        except ValueError:
            raise ValueError(
                f"ROOST_WORKERS must be an integer of at least 1, not {raw!r}"
            ) from None
        if count < 1:
            raise ValueError(f"ROOST_WORKERS must be at least 1, not {count}")
    else:
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers must be an int, not {type(workers).__name__}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        count = workers
    if count > 1 and not sys.platform.startswith("linux"):
        raise RuntimeError(
            f"workers > 1 needs Linux (SO_REUSEPORT spreading connections over processes); "
            f"on {sys.platform} serve with one worker"
        )
    return count


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT and not listening: it holds the
    port (a free one for port 0) for the workers, which bind it too, and receives no
    connections itself.

    Raises:
        OSError: the address cannot be bound (in use without SO_REUSEPORT, say).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise OSError(error.errno, f"cannot serve on {host}:{port}: {error.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot serve on {host}:{port}: {error.strerror}") from None
    return sock


class WorkerLink:
    """A worker's end of its status pipe: one line to the parent when it serves, when
    it cannot, and when a handler asked the program to end."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.serving = False

    def _say(self, line: str) -> None:
        try:
            os.write(self._fd, line.replace("\n", " ").encode("utf-8", "replace") + b"\n")
        except OSError:
            pass  # the parent is gone; the worker is about to end too

    def ready(self) -> None:
        self.serving = True
        self._say("ready")

    def failed(self, message: str) -> None:
        self._say(f"error {message}")

    def exit_requested(self, code: int) -> None:
        self._say(f"exit {code}")


@dataclass
class _Worker:
    pid: int
    status_fd: int | None
    buffer: bytes = b""
    serving: bool = False
    reported_failure: bool = False


class Supervisor:
    """The parent's side: forks `count` workers that each run `body`, announces them
    with `announce` once all serve, and keeps them running until a stop signal."""

    def __init__(
        self,
        count: int,
        body: Callable[[WorkerLink], None],
        announce: Callable[[], None],
        grace: float,
        inherited: list[socket.socket],
    ) -> None:
        self.count = count
        self.body = body
        self.announce = announce
        self.grace = grace
        #: Sockets of the parent that workers close at once (the port reservation).
        self.inherited = inherited
        self.workers: dict[int, _Worker] = {}
        self.deaths: collections.deque[float] = collections.deque()
        self.announced = False
        self.stopping = False
        #: While stopping: when the workers left are killed (None once they were).
        self.stop_deadline: float | None = None
        self.exit_code = 0
        self.parent_pid = os.getpid()
        self.selector = selectors.PollSelector()
        self.wakeup_r, self.wakeup_w = -1, -1
        self.watch_r, self.watch_w = -1, -1

    # -- the parent -----------------------------------------------------------------

    def run(self) -> int:
        """Runs until every worker has ended; returns the program's exit status."""
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.watch_r, self.watch_w = os.pipe2(os.O_CLOEXEC)
        previous_wakeup = signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
        previous = {signum: signal.signal(signum, _ignore) for signum in handled}
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)
        try:
            for _ in range(self.count):
                self._spawn()
            while self.workers:
                self._step()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for worker in list(self.workers.values()):  # only after an error of our own
                os.kill(worker.pid, signal.SIGKILL)
                os.waitpid(worker.pid, 0)
            self.selector.close()
            for fd in (self.wakeup_r, self.wakeup_w, self.watch_r, self.watch_w):
                os.close(fd)
        return self.exit_code

    def _step(self) -> None:
        timeout = None
        if self.stop_deadline is not None:
            timeout = max(0.0, self.stop_deadline - time.monotonic())
        for key, _ in self.selector.select(timeout):
            if key.fd == self.wakeup_r:
                self._on_signals()
            else:
                self._read_status(key.data)
        self._reap()
        if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
            for worker in self.workers.values():
                _log(
                    f"worker {worker.pid} did not stop within "
                    f"{self.grace + STOP_MARGIN:g} s; killing it"
                )
                os.kill(worker.pid, signal.SIGKILL)
            self.stop_deadline = None

    def _on_signals(self) -> None:
        try:
            received = os.read(self.wakeup_r, 512)
        except BlockingIOError:
            return
        if signal.SIGINT in received or signal.SIGTERM in received:
            self._stop(0)

    def _stop(self, code: int, message: str | None = None) -> None:
        if self.stopping:
            return
        if message is not None:
            _log(message)
        self.stopping = True
        self.exit_code = code
        self.stop_deadline = time.monotonic() + self.grace + STOP_MARGIN
        for worker in self.workers.values():
            os.kill(worker.pid, signal.SIGTERM)

    def _spawn(self) -> int:
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker; it never returns
            os.close(status_r)
            self._run_worker(WorkerLink(status_w))
        os.close(status_w)
        os.set_blocking(status_r, False)
        worker = _Worker(pid, status_r)
        self.workers[pid] = worker
        self.selector.register(status_r, selectors.EVENT_READ, worker)
        return pid

    def _read_status(self, worker: _Worker) -> None:
        fd = worker.status_fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                self.selector.unregister(fd)
                os.close(fd)
                worker.status_fd = None
                break
            worker.buffer += chunk
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            self._on_status(worker, line.decode("utf-8", "replace"))

    def _on_status(self, worker: _Worker, line: str) -> None:
        what, _, rest = line.partition(" ")
        if what == "ready":
            worker.serving = True
            if not self.announced and not self.stopping:
                if sum(w.serving for w in self.workers.values()) == self.count:
                    self.announced = True
                    self.announce()
        elif what == "error":
            worker.reported_failure = True
            self._stop(1, rest)
        elif what == "exit":
            self._stop(int(rest))

    def _reap(self) -> None:
        for worker in list(self.workers.values()):
            pid, status = os.waitpid(worker.pid, os.WNOHANG)
            if pid == 0:
                continue
            self._read_status(worker)  # what it said before it ended
            del self.workers[pid]
            if worker.status_fd is not None:
                self.selector.unregister(worker.status_fd)
                os.close(worker.status_fd)
            if not self.stopping:
                self._on_death(worker, status)

    def _on_death(self, worker: _Worker, status: int) -> None:
        how = _describe_status(status)
        if not worker.serving:
            self._stop(1, f"worker {worker.pid} {how} before it served; stopping")
            return
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - RESTART_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) >= RESTART_LIMIT:
            self._stop(
                1,
                f"worker {worker.pid} {how}: {len(self.deaths)} workers died within "
                f"{RESTART_WINDOW:g} s; stopping",
            )
            return
        replacement = self._spawn()
        _log(f"worker {worker.pid} {how}; started worker {replacement} in its place")

    # -- the worker ------------------------------------------------------------------

    def _run_worker(self, link: WorkerLink) -> None:
        """The forked worker: detaches from the parent's state, serves, and exits with
        os._exit, never returning into the program that called `start`."""
        code = 1
        try:
            self._detach()
            code = self._serve(link)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _serve(self, link: WorkerLink) -> int:
        """Runs the worker's body; returns its exit status, having told the parent why
        it ends when that is not a plain stop."""
        try:
            self.body(link)
        except SystemExit as request:
            code = _exit_status(request.code)
            link.exit_requested(code)
            return code
        except KeyboardInterrupt:
            link.exit_requested(130)
            return 130
        except BaseException as error:
            if link.serving or not isinstance(error, OSError):
                traceback.print_exc()
            if not link.serving:
                message = (
                    str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
                )
                link.failed(message)
            return 1
        return 0

    def _detach(self) -> None:
        signal.set_wakeup_fd(-1)
        # Ctrl+C reaches the whole process group: the parent alone decides, and stops
        # the workers with SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        for worker in self.workers.values():
            if worker.status_fd is not None:
                os.close(worker.status_fd)
        for fd in (self.wakeup_r, self.wakeup_w, self.watch_w):
            os.close(fd)
        for sock in self.inherited:
            sock.close()
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != self.parent_pid:  # the parent died before prctl
            os._exit(1)
        threading.Thread(
            target=_exit_when_orphaned, args=(self.watch_r, self.grace + STOP_MARGIN), daemon=True
        ).start()


def _exit_when_orphaned(watch_fd: int, bound: float) -> None:
    """Waits until the parent is gone (the pipe's write end, which only the parent
    holds, closes); then gives the graceful stop that PR_SET_PDEATHSIG's SIGTERM began
    `bound` seconds and ends the process."""
    while os.read(watch_fd, 1):
        pass
    time.sleep(bound)
    os._exit(1)


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler, so that the signal reaches the wakeup descriptor."""


def _log(message: str) -> None:
    print(f"roost: {message}", file=sys.stderr, flush=True)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _exit_status(code: object) -> int:
    """The status Python gives `SystemExit(code)`: None is 0, an int itself, anything
    else is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
