"""Leaks: connect / message / close cycles against one in-process server leave
nothing behind. 32 clients run cycles concurrently; after the first 10,000 cycles the
process's RSS is read, then the cycles go on to ROOST_LEAK_CYCLES in total (default
100,000): RSS must stay within 5 % of that figure, the core must count no
connection, on_close must have run once per cycle, and the descriptors must be back.

Each cycle is a raw client (the websockets library would cost more than the server):
the upgrade request with a text frame right behind it, the echo, a close frame, the
server's close frame and the end of the TCP connection.

The test is synchronous and runs its own event loop (anyio.run) for each backend, so
that its time bound is its own (scaled to the number of cycles), not conftest's.

Timing on the 2-core development machine, 100,000 cycles: about 48 s on asyncio and
60 s on trio; both run by default. ROOST_LEAK_BACKENDS (e.g. "asyncio") chooses the
backends and ROOST_LEAK_CYCLES the number of cycles, for quicker local runs.
"""

from __future__ import annotations

import os
import time

import anyio
import pytest

from conftest import HOST, OP_CLOSE, OP_TEXT, close_payload, encode_frame
from roost import App

CYCLES = int(os.environ.get("ROOST_LEAK_CYCLES", "100000"))
BACKENDS = os.environ.get("ROOST_LEAK_BACKENDS", "asyncio,trio").replace(" ", "").split(",")
WARMUP = min(10_000, CYCLES // 2)
CLIENTS = 32
TOLERANCE = 0.05
# Seconds allowed per 1,000 cycles (measured: well under 1 s per 1,000 on 2 cores).
SECONDS_PER_THOUSAND = 3.0
LIMIT = 30 + CYCLES / 1000 * SECONDS_PER_THOUSAND

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MESSAGE = b"cycle"
REQUEST = UPGRADE + encode_frame(OP_TEXT, MESSAGE)
CLOSE = encode_frame(OP_CLOSE, close_payload(1000))
ECHO = bytes([0x80 | OP_TEXT, len(MESSAGE)]) + MESSAGE


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def one_cycle(port: int) -> None:
    stream = await anyio.connect_tcp(HOST, port)
    async with stream:
        await stream.send(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + len(ECHO):
            data += await stream.receive()
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert rest[: len(ECHO)] == ECHO, rest
        await stream.send(CLOSE)
        tail = rest[len(ECHO) :]
        try:
            while True:
                tail += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
        assert tail[:2] == bytes([0x80 | OP_CLOSE, 2]) and tail[2:4] == close_payload(1000), tail


async def soak(figures: dict[str, float]) -> None:
    app = App(__file__)
    closes = 0

    @app.websocket("/ws")
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    @echo.on_close
    def on_close(websocket):
        nonlocal closes
        closes += 1

    done = 0

    async def worker(port: int, until: int) -> None:
        nonlocal done
        while done < until:
            done += 1
            await one_cycle(port)

    async def run_to(port: int, until: int) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(CLIENTS):
                tg.start_soon(worker, port, until)

    with anyio.fail_after(LIMIT):
        fds_before = open_fds()
        async with anyio.create_task_group() as tg:
            port = await tg.start(app.serve, HOST, 0)
            figures["rss at start"] = rss_mib()
            started = time.monotonic()
            await run_to(port, WARMUP)
            figures["seconds for warm-up"] = time.monotonic() - started
            while app.connection_count() or closes < WARMUP:
                await anyio.sleep(0.01)
            figures["rss after warm-up"] = rss_mib()
            await run_to(port, CYCLES)
            figures["seconds in all"] = time.monotonic() - started
            while app.connection_count() or closes < CYCLES:
                await anyio.sleep(0.01)
            figures["rss at the end"] = rss_mib()
            figures["connection count"] = app.connection_count()
            figures["on_close calls"] = closes
            app.stop()
        while open_fds() > fds_before:  # the server's sockets are gone with it
            await anyio.sleep(0.01)


@pytest.mark.timeout(LIMIT + 30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_message_close_cycles_leak_nothing(backend: str) -> None:
    figures: dict[str, float] = {}
    anyio.run(soak, figures, backend=backend)
    after_warmup, end = figures["rss after warm-up"], figures["rss at the end"]
    growth = (end - after_warmup) / after_warmup
    report = (
        f"[leaks] {backend}: {CYCLES} cycles ({CLIENTS} clients at once) in "
        f"{figures['seconds in all']:.1f} s (first {WARMUP}: "
        f"{figures['seconds for warm-up']:.1f} s); RSS at start "
        f"{figures['rss at start']:.1f} MiB, after {WARMUP} {after_warmup:.1f} MiB, "
        f"at the end {end:.1f} MiB ({growth:+.2%}, bound +{TOLERANCE:.0%})"
    )
    print(report)
    assert figures["connection count"] == 0, report
    assert figures["on_close calls"] == CYCLES, report
    assert growth <= TOLERANCE, report
