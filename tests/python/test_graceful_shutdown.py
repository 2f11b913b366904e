"""A graceful stop loses nothing: what a handler sent (or broadcast) before app.stop()
reaches the client, in order, before the close frame 1001; also when the client reads
slowly, so that much of it is still queued in the server when stop() is called."""

from __future__ import annotations

import contextlib

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from conftest import Closed, eventually, serving
from roost import App

pytestmark = pytest.mark.anyio


def numbered(i: int, size: int) -> str:
    head = f"{i:06d}:"
    return head + "m" * (size - len(head))


async def read_to_close(ws, messages: list, *, slow: bool) -> Closed:
    """Appends every message to `messages` until the close, and returns the close; a
    slow reader naps 20 ms every 50 messages."""
    with anyio.fail_after(20):
        try:
            while True:
                messages.append(await ws.conn.recv())
                if slow and len(messages) % 50 == 0:
                    await anyio.sleep(0.02)
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            return Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else None)


@pytest.mark.parametrize("reader", ["fast", "slow"])
@pytest.mark.parametrize("stopper", ["handler", "outside"])
async def test_every_message_sent_before_stop_arrives_before_1001(connect, reader, stopper) -> None:
    """N messages, then stop() (from the handler itself, or from elsewhere as soon as
    the handler's last send returned). The slow case sends 8 MiB (messages of 4 KiB)
    to a client that reads in naps with a small receive queue: the handler's sends
    wait on the 1 MiB send queue, and when stop() comes about 1 MiB plus the kernel's
    buffers are still on their way."""
    count, size = (2000, 4096) if reader == "slow" else (1000, 100)
    app = App(__file__)
    all_sent = anyio.Event()
    closes: list[str] = []
    messages: list = []
    received_at_stop: list[int] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.receive_text()
        for i in range(count):
            await websocket.send_text(numbered(i, size))
        all_sent.set()
        if stopper == "handler":
            received_at_stop.append(len(messages))
            app.stop()
        await websocket.receive_text()  # until the stop ends it

    @handler.on_close
    def on_close(websocket):
        closes.append(websocket.id)
        return "on_close's last word"

    async with serving(app) as url:
        async with connect(
            url + "/ws", max_queue=4 if reader == "slow" else 16, close_timeout=10
        ) as ws:
            await ws.send("go")
            async with anyio.create_task_group() as tg:

                async def stop_when_sent() -> None:
                    await all_sent.wait()
                    received_at_stop.append(len(messages))
                    app.stop()

                if stopper == "outside":
                    tg.start_soon(stop_when_sent)
                end = await read_to_close(ws, messages, slow=reader == "slow")
    expected = [numbered(i, size) for i in range(count)] + ["on_close's last word"]
    missing = len(expected) - len(messages)
    assert messages == expected, f"{missing} messages missing or out of order"
    assert (end.code, end.reason) == (1001, "server shutting down")
    assert len(closes) == 1
    in_flight = count - received_at_stop[0]
    print(
        f"[shutdown] {reader} reader, stop from {stopper}: {in_flight} of {count} messages "
        f"({in_flight * size / (1 << 20):.2f} MiB) not yet read when stop() was called"
    )
    if reader == "slow":
        assert in_flight * size > 1 << 20, "the slow case should stop with data still queued"


@pytest.mark.parametrize("reader", ["fast", "slow"])
async def test_every_broadcast_before_stop_reaches_every_member_before_1001(
    connect, reader
) -> None:
    """Three members; one of them broadcasts N messages then stops the app: each member
    gets all N, in order, then 1001. (Paced so that even the slow readers stay within
    the send queue: a broadcast that overflows it closes that member with 1008 by
    design.)"""
    count, size = 600, 1024
    app = App(__file__)
    members: list = []
    go = anyio.Event()
    acks: dict[int, int] = {}

    @app.websocket("/room")
    async def room(websocket):
        members.append(websocket)
        await go.wait()
        if websocket is members[0]:
            for i in range(count):
                # Stay at most 64 messages (64 KiB) ahead of the slowest member.
                while acks and i - min(acks.values()) > 64:
                    await anyio.sleep(0.001)
                await websocket.broadcast(numbered(i, size))
            app.stop()
        with contextlib.suppress(Exception):
            await websocket.receive_text()

    results: list[tuple[list, object]] = []

    async def member(url: str, index: int) -> None:
        async with connect(url + "/room", close_timeout=10) as ws:
            await eventually(lambda: len(members) == 3, what="three members")
            go.set()
            messages: list = []
            with anyio.fail_after(20):
                try:
                    while True:
                        messages.append(await ws.conn.recv())
                        acks[index] = len(messages)
                        if reader == "slow" and len(messages) % 20 == 0:
                            await anyio.sleep(0.02)
                except ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    results.append((messages, Closed(rcvd.code if rcvd else None, None)))

    async with serving(app) as url:
        async with anyio.create_task_group() as tg:
            for index in range(3):
                acks[index] = 0
                tg.start_soon(member, url, index)
    expected = [numbered(i, size) for i in range(count)]
    assert len(results) == 3
    for messages, end in results:
        assert messages == expected, f"{len(expected) - len(messages)} missing or out of order"
        assert end.code == 1001
