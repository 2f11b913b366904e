"""Sending: send_text / send_bytes / send_json / send, types, closed connections,
and waiting while a connection's write queue is over its limit."""

from __future__ import annotations

import json

import anyio
import pytest

from conftest import RawClient, eventually, serving
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


async def test_send_text_bytes_and_json(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("plain ✓")
        await websocket.send_text("")
        await websocket.send_bytes(b"\x00\xffraw")
        await websocket.send_bytes(bytearray(b"from bytearray"))
        await websocket.send_bytes(memoryview(b"from memoryview"))
        await websocket.send_json(
            {"name": "Zoë", "list": [1, 2.5, None, True], "nested": {"k": "€"}}
        )
        await websocket.send_json("just a string")
        await websocket.send_json(None)
        await websocket.receive_text()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            assert await ws.recv() == "plain ✓"
            assert await ws.recv() == ""
            assert await ws.recv() == b"\x00\xffraw"
            assert await ws.recv() == b"from bytearray"
            assert await ws.recv() == b"from memoryview"
            # Compact separators, non-ASCII characters kept as they are, sent as text.
            assert await ws.recv() == '{"name":"Zoë","list":[1,2.5,null,true],"nested":{"k":"€"}}'
            assert await ws.recv() == '"just a string"'
            assert await ws.recv() == "null"


async def test_send_picks_the_frame_type_from_the_value(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send("text")
        await websocket.send(b"binary")
        await websocket.send(bytearray(b"ba"))
        await websocket.receive_text()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            first, second, third = await ws.recv(), await ws.recv(), await ws.recv()
            assert (type(first), first) == (str, "text")
            assert (type(second), second) == (bytes, b"binary")
            assert (type(third), third) == (bytes, b"ba")


async def test_wrong_types_raise_type_error_and_the_connection_goes_on(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        attempts = [
            ("send_text", websocket.send_text, b"bytes"),
            ("send_text", websocket.send_text, 42),
            ("send_bytes", websocket.send_bytes, "str"),
            ("send_bytes", websocket.send_bytes, None),
            ("send_json", websocket.send_json, {1, 2}),
            ("send_json", websocket.send_json, object()),
            ("send", websocket.send, 3.5),
            ("broadcast", websocket.broadcast, ["list"]),
        ]
        results = []
        for name, method, value in attempts:
            try:
                await method(value)
                results.append(f"{name}: no error")
            except TypeError:
                results.append(f"{name}: TypeError")
        await websocket.send_json(results)

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            assert json.loads(await ws.recv()) == [
                "send_text: TypeError",
                "send_text: TypeError",
                "send_bytes: TypeError",
                "send_bytes: TypeError",
                "send_json: TypeError",
                "send_json: TypeError",
                "send: TypeError",
                "broadcast: TypeError",
            ]


async def test_send_after_server_close_raises_websocket_disconnect(connect) -> None:
    app = App(__file__)
    outcome: list[tuple[str, int]] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.close(4000, "closing")
        for name, method, value in [
            ("send_text", websocket.send_text, "late"),
            ("send_bytes", websocket.send_bytes, b"late"),
            ("send_json", websocket.send_json, {"late": True}),
        ]:
            try:
                await method(value)
                outcome.append((name, 0))
            except WebSocketDisconnect as disconnect:
                outcome.append((name, disconnect.code))

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            messages, closed = await ws.recv_closed()
            assert messages == []
            assert (closed.code, closed.reason) == (4000, "closing")
        await eventually(lambda: len(outcome) == 3, what="the handler's three sends")
    assert outcome == [("send_text", 4000), ("send_bytes", 4000), ("send_json", 4000)]


async def test_send_after_the_client_left_raises_websocket_disconnect(connect) -> None:
    app = App(__file__)
    outcome: list[object] = []
    left = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        await left.wait()
        try:
            await websocket.send_text("anyone there?")
            outcome.append("sent")
        except WebSocketDisconnect as disconnect:
            outcome.append(disconnect.code)

    @handler.on_close
    def on_close(websocket):
        left.set()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.close(1000)
        await eventually(lambda: bool(outcome), what="the handler's send")
    assert outcome == [1000]


async def test_send_waits_while_the_write_queue_is_over_its_limit(connect) -> None:
    """A client that stops reading makes the handler's sends wait (the queue is bounded)
    instead of growing memory; when it reads again it gets everything, in order."""
    app = App(__file__, outbound_queue_bytes=65536)
    total = 1000
    size = 16 * 1024
    sent = 0

    @app.websocket("/ws")
    async def handler(websocket):
        nonlocal sent
        await websocket.receive_text()
        for i in range(total):
            await websocket.send_bytes(i.to_bytes(4, "big") * (size // 4))
            sent += 1
        await websocket.send_text("done")
        await websocket.receive_text()

    async with serving(app) as url:
        # The client reads nothing: websockets stops reading its socket after
        # max_queue messages, so TCP pushes back on the server.
        async with connect(url + "/ws", max_queue=4) as ws:
            await ws.send("go")
            previous, stable_since = -1, anyio.current_time()
            with anyio.fail_after(20):
                while anyio.current_time() - stable_since < 0.5:
                    if sent != previous:
                        previous, stable_since = sent, anyio.current_time()
                    await anyio.sleep(0.05)
            assert 0 < sent < total, f"{sent} of {total} sends completed with no reader"
            stalled_at = sent
            for i in range(total):
                message = await ws.recv()
                assert message == i.to_bytes(4, "big") * (size // 4), f"message {i}"
            assert await ws.recv() == "done"
            assert sent == total > stalled_at


async def test_a_waiting_send_holds_back_only_its_own_connection(connect) -> None:
    app = App(__file__, outbound_queue_bytes=65536)
    blocked = anyio.Event()
    chunk = b"x" * 16384

    @app.websocket("/slow")
    async def slow(websocket):
        await websocket.receive_text()
        while True:  # until its reader stops reading, then this waits
            with anyio.move_on_after(0.5) as scope:
                await websocket.send_bytes(chunk)
            if scope.cancelled_caught:
                blocked.set()
                await websocket.receive_text()
                return

    @app.websocket("/fast")
    async def fast(websocket):
        async for message in websocket:
            await websocket.send(message)

    async with serving(app) as url:
        async with (
            connect(url + "/slow", max_queue=4) as slow_ws,
            connect(url + "/fast") as fast_ws,
        ):
            await slow_ws.send("go")
            with anyio.fail_after(20):
                await blocked.wait()
            with anyio.fail_after(2):
                for i in range(50):
                    await fast_ws.send(f"m{i}")
                    assert await fast_ws.recv() == f"m{i}"
            slow_ws.abort()  # it never read: no closing handshake to wait for


async def test_a_waiting_send_raises_websocket_disconnect_when_the_client_drops() -> None:
    app = App(__file__, outbound_queue_bytes=65536)
    outcome: list[object] = []
    sent = 0

    @app.websocket("/ws")
    async def handler(websocket):
        nonlocal sent
        try:
            while True:
                await websocket.send_bytes(b"x" * 16384)
                sent += 1
        except WebSocketDisconnect as disconnect:
            outcome.append(disconnect.code)

    async with serving(app) as url:
        raw = await RawClient.open(url, "/ws", rcvbuf=4096)  # never reads
        previous, stable_since = -1, anyio.current_time()
        with anyio.fail_after(20):
            while anyio.current_time() - stable_since < 0.3:
                if sent != previous:
                    previous, stable_since = sent, anyio.current_time()
                await anyio.sleep(0.05)
        assert outcome == []  # the handler is waiting in send_bytes
        await raw.aclose()
        await eventually(lambda: bool(outcome), what="the waiting send to raise")
    assert outcome == [1006]
