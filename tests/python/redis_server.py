"""A real redis-server for the backplane's tests, on a free port of 127.0.0.1, stopped
at the end. `make redis-server` installs Debian's package when the machine lacks it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Redis:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

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
def redis_server() -> Iterator[Redis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise AssertionError("redis-server is not installed: run `make redis-server`")
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        redis = Redis(port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.command("PING").strip() == "PONG":
                    break
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not answer within 10 s")
            time.sleep(0.05)
        yield redis
    finally:
        process.terminate()
        process.wait(10)
