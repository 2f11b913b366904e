"""broadcast(): every client of the same path, the sender included, in order; a
recipient too slow to keep up is disconnected with 1008."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from conftest import OP_BINARY, RawClient, eventually, serving
from roost import App

pytestmark = pytest.mark.anyio


def chat_app() -> tuple[App, list]:
    app = App(__file__)
    connected: list = []

    @app.websocket("/chat")
    async def chat(websocket):
        connected.append(websocket)
        async for message in websocket:
            await websocket.broadcast(message)

    @app.websocket("/other")
    async def other(websocket):
        connected.append(websocket)
        async for message in websocket:
            await websocket.send_text(f"other got {message}")

    return app, connected


async def test_broadcast_reaches_every_client_of_the_path_sender_included(connect) -> None:
    app, connected = chat_app()
    async with serving(app) as url:
        async with (
            connect(url + "/chat") as a,
            connect(url + "/chat") as b,
            connect(url + "/chat") as c,
            connect(url + "/other") as outsider,
        ):
            await eventually(lambda: len(connected) == 4, what="four connections")
            await a.send("hello room")
            assert await a.recv() == "hello room"
            assert await b.recv() == "hello room"
            assert await c.recv() == "hello room"
            await outsider.recv_nothing(0.3)  # another path hears nothing
            await outsider.send("ping")
            assert await outsider.recv() == "other got ping"


async def test_broadcast_sends_str_as_text_and_bytes_as_binary(connect) -> None:
    app, connected = chat_app()
    async with serving(app) as url:
        async with connect(url + "/chat") as a, connect(url + "/chat") as b:
            await eventually(lambda: len(connected) == 2, what="two connections")
            await a.send("text ✓")
            await a.send(b"\x00binary\xff")
            for ws in (a, b):
                first, second = await ws.recv(), await ws.recv()
                assert (type(first), first) == (str, "text ✓")
                assert (type(second), second) == (bytes, b"\x00binary\xff")


async def test_each_recipient_sees_broadcasts_in_the_order_they_were_issued(connect) -> None:
    app = App(__file__)
    connected: list = []

    @app.websocket("/room")
    async def room(websocket):
        connected.append(websocket)
        message = await websocket.receive_text()
        for i in range(200):
            await websocket.broadcast(f"{message}:{i}")
            if i % 10 == 0:
                await anyio.lowlevel.checkpoint()  # let the other sender interleave
        await websocket.receive_text()

    async with serving(app) as url:
        async with (
            connect(url + "/room") as a,
            connect(url + "/room") as b,
            connect(url + "/room") as c,
        ):
            await eventually(lambda: len(connected) == 3, what="three connections")
            await a.send("A")
            await b.send("B")
            sequences = []
            for ws in (a, b, c):
                sequences.append([await ws.recv() for _ in range(400)])
            for sequence in sequences:
                for sender in "AB":
                    assert [m for m in sequence if m.startswith(sender)] == [
                        f"{sender}:{i}" for i in range(200)
                    ]
            # Issued one after the other in one event loop: one global order for all.
            assert sequences[0] == sequences[1] == sequences[2]


async def test_a_too_slow_recipient_is_disconnected_with_1008_and_others_get_everything(
    connect,
) -> None:
    """Broadcasts go out in rounds that the two fast clients acknowledge, so their
    queues stay under the limit; a raw client that never reads falls behind and is
    closed with 1008 instead of holding back the others or growing memory."""
    limit = 65536
    app = App(__file__, outbound_queue_bytes=limit)
    round_size, message_size, max_messages = 4, 8192, 3000
    connected: dict[str, object] = {}
    acks: dict[str, int] = {}
    disconnects: dict[str, int] = {}
    changed = anyio.Event()

    @app.websocket("/room")
    async def room(websocket, role: str):
        nonlocal changed
        connected[role] = websocket
        try:
            async for message in websocket:
                acks[role] = int(message)
                changed.set()
        finally:
            changed.set()

    @room.on_close
    def on_close(websocket, role: str):
        disconnects[role] = websocket._closed.code if websocket._closed else -1
        changed.set()

    def body(i: int) -> bytes:
        return i.to_bytes(4, "big") * (message_size // 4)

    async def fast_reader(ws, role: str, received: list[int]) -> None:
        while True:
            message = await ws.recv()
            if message == "end":
                return
            assert message == body(len(received)), f"{role}: message {len(received)} out of order"
            received.append(len(received))
            if len(received) % round_size == 0:
                await ws.send(str(len(received)))

    async with serving(app) as url:
        slow = await RawClient.open(url, "/room?role=slow", rcvbuf=4096)
        async with slow, connect(url + "/room?role=a") as a, connect(url + "/room?role=b") as b:
            await eventually(lambda: len(connected) == 3, what="three connections")
            sender = connected["a"]
            received: dict[str, list[int]] = {"a": [], "b": []}
            sent = 0
            async with anyio.create_task_group() as tg:
                tg.start_soon(fast_reader, a, "a", received["a"])
                tg.start_soon(fast_reader, b, "b", received["b"])
                # Enough to overflow the slow client's socket buffers several times over.
                while sent < max_messages and (sent < 1500 or "slow" not in disconnects):
                    for _ in range(round_size):
                        await sender.broadcast(body(sent))
                        sent += 1
                    with anyio.fail_after(10):
                        while not (acks.get("a") == sent and acks.get("b") == sent):
                            changed = anyio.Event()
                            await changed.wait()
                await sender.broadcast("end")
            # The server gives up on a peer that does not read within its short wait
            # for the close frame to go out (about a second), possibly in the middle of
            # a frame. Reading only after that keeps the outcome free of timing.
            await eventually(
                lambda: "slow" in disconnects, timeout=10, what="on_close of the slow client"
            )
            frames = await slow.recv_all(timeout=10, truncated_ok=True)
            fast_still_connected = "a" not in disconnects and "b" not in disconnects

        # The fast clients got every message, in order, and stayed connected.
        assert received["a"] == list(range(sent))
        assert received["b"] == list(range(sent))
        assert fast_still_connected
        # The slow one was closed with 1008 (as its handler and on_close saw it)...
        assert disconnects["slow"] == 1008
        # ...after getting an in-order prefix of the broadcasts, far from all of them.
        data = [f for f in frames if f.opcode == OP_BINARY]
        assert 0 < len(data) < sent
        assert [f.payload for f in data] == [body(i) for i in range(len(data))]
