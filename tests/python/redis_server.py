"""A real redis-server for the backplane's tests, on a free port of 127.0.0.1 (and of
any other addresses given to `redis_server`), stopped at the end. `make system-packages` installs Debian's package when the machine lacks it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass
class Redis:
    port: int
    bind: tuple[str, ...] = ("127.0.0.1",)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts redis-server on the port (again, after `kill`), with nothing in it;
        returns once it answers."""
        assert self.process is None, "redis-server is running"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                " ".join(self.bind),
                "--protected-mode",
                "no" if len(self.bind) > 1 else "yes",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING").strip() == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("redis-server did not answer within 10 s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: gone at once, its connections cut, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    @property
    def url(self) -> str:
        return self.url_on("127.0.0.1")

    def url_on(self, address: str) -> str:
        """Its URL through one of the addresses it is bound to."""
        return f"redis://{address}:{self.port}"

    def command(self, *args: str) -> str:
        """One command through redis-cli; its reply as text."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return done.stdout

    def subscribers(self, channel: str) -> int:
        """Clients subscribed to `channel` (one per Roost server)."""
        reply = self.command("PUBSUB", "NUMSUB", channel).split()
        return int(reply[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(bind: Sequence[str] = ("127.0.0.1",)) -> Iterator[Redis]:
    """Bound to the addresses of `bind`; the first one must be 127.0.0.1 (redis-cli
    and the free port use it). Clients of other addresses are let in: protected mode
    would refuse them, as no password is set."""
    assert bind and bind[0] == "127.0.0.1", bind
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise AssertionError("redis-server is not installed: run `make system-packages`")
    redis = Redis(free_port(), tuple(bind))
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()
