"""inline_io=True: the core runs on the event loop's thread, inside each poll. Echo
under load, a large message to a slow reader, timers with no other activity, a
publish from another thread, the options it refuses, and its documented price: while
the loop is blocked no socket is served, not even a ping.

(`make test-python-inline` also runs the whole suite with ROOST_INLINE_IO=1.)"""

from __future__ import annotations

import os
import threading
import time

import anyio
import pytest
from anyio.abc import SocketAttribute

from conftest import (
    OP_BINARY,
    OP_PING,
    OP_PONG,
    RawClient,
    encode_frame,
    eventually,
    open_socket,
    parse_frames,
    port_of,
    serving,
)
from roost import App

pytestmark = pytest.mark.anyio


def echo_app(**options) -> App:
    app = App(__file__, inline_io=True, ping_interval=None, **options)

    @app.websocket("/ws")
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    return app


async def test_many_clients_echo_many_messages(connect) -> None:
    app = echo_app()
    async with serving(app) as url:

        async def client(n: int) -> None:
            async with connect(url + "/ws") as ws:
                for i in range(200):
                    await ws.send(f"{n}:{i}")
                for i in range(200):
                    assert await ws.recv() == f"{n}:{i}"

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(client, n)


async def test_a_large_message_reaches_a_slow_reader() -> None:
    """A megabyte to a client with a small receive buffer that reads in small steps:
    the connection's writes wait for the socket to drain, and the set wakes the loop
    each time it does."""
    app = echo_app(max_message_size=4 << 20)
    payload = bytes(range(256)) * (4 << 10)  # 1 MiB
    async with serving(app) as url:
        async with await RawClient.open(url, rcvbuf=16 << 10) as client:
            await client.send_frame(OP_BINARY, payload)
            frame = await client.recv_frame(timeout=20)
            assert frame is not None and frame.opcode == OP_BINARY
            assert frame.payload == payload


async def test_timers_fire_on_an_otherwise_idle_server() -> None:
    """No client activity at all: the handshake timeout still closes a silent socket,
    driven by the timer tick."""
    app = echo_app(handshake_timeout=0.3)
    async with serving(app) as url:
        started = anyio.current_time()
        stream = await open_socket(port_of(url))
        with anyio.fail_after(3):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                while True:
                    await stream.receive()
        assert 0.25 <= anyio.current_time() - started < 2.0
        await stream.aclose()


async def test_a_publish_from_another_thread_wakes_the_loop(connect) -> None:
    """The loop is asleep (nothing to do) when a thread publishes: the message goes
    out at once, not at the next timer tick or client message."""
    app = App(__file__, inline_io=True, ping_interval=None)

    @app.websocket("/sub")
    async def sub(websocket):
        websocket.subscribe("news")
        await websocket.send_text("subscribed")
        async for _ in websocket:
            pass

    async with serving(app) as url, connect(url + "/sub") as ws:
        assert await ws.recv() == "subscribed"
        delays = []
        for i in range(20):
            await anyio.sleep(0.037)  # not a multiple of the 10 ms tick
            sent = time.monotonic()
            thread = threading.Thread(target=app.publish, args=("news", f"n{i}"))
            thread.start()
            assert await ws.recv() == f"n{i}"
            delays.append(time.monotonic() - sent)
            thread.join()
        delays.sort()
        # Far below the 10 ms timer tick, which alone would give about 5 ms at the
        # median. The median, not a high percentile: a loaded machine delays some wakes
        # whatever wakes them, while a wake that waited for the tick would delay most.
        assert delays[len(delays) // 2] < 0.003, delays


async def test_while_the_loop_is_blocked_nothing_is_served() -> None:
    """The price of inline_io, as documented: a ping sent while a handler blocks the
    loop is answered only once the loop runs again (with the core's own thread it is
    answered at once: test_limits' keepalive tests)."""
    app = echo_app()
    async with serving(app) as url, await RawClient.open(url) as client:
        # The handshake needs the loop; what follows blocks it.
        # The client's socket is non-blocking (the loop's): read and written by hand.
        fd = client.stream.extra(SocketAttribute.raw_socket).fileno()
        blocked_for = 0.5
        started = time.monotonic()
        os.write(fd, encode_frame(OP_PING, b"hello"))
        time.sleep(blocked_for)  # noqa: ASYNC251 - blocks the loop on purpose
        assert not _pong_arrived(fd), "answered while the loop was blocked"
        await eventually(lambda: _pong_arrived(fd), timeout=3, what="the pong")
        assert time.monotonic() - started >= blocked_for


def _pong_arrived(fd: int) -> bool:
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return False
    frames = parse_frames(data)
    return bool(frames) and frames[0].opcode == OP_PONG and frames[0].payload == b"hello"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_threads": 2}, "worker_threads must be 1"),
        ({"backplane": "redis://127.0.0.1:6379"}, "does not combine with a backplane"),
    ],
)
def test_options_it_does_not_combine_with_are_refused(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        App(__file__, inline_io=True, **options)


def test_inline_io_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="inline_io must be a bool, not int"):
        App(inline_io=1)  # type: ignore[arg-type]
