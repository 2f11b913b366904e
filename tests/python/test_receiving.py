"""Receiving: whole messages in order, conversions, JSON, buffering, disconnects."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from conftest import eventually, serving
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


async def test_messages_arrive_whole_and_in_order_even_when_fragmented(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        while True:
            message = await websocket.receive()
            await websocket.send_json(
                [type(message).__name__, message if isinstance(message, str) else message.hex()]
            )

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("one")
            await ws.send(["fra", "gmen", "ted ✓"])  # one text message in three frames
            await ws.send([b"\x00\x01", b"\x02", b"\xff"])  # one binary message in three frames
            await ws.send("x" * 100_000)
            await ws.send("last")
            replies = [json.loads(await ws.recv()) for _ in range(5)]
            assert replies == [
                ["str", "one"],
                ["str", "fragmented ✓"],
                ["bytes", "000102ff"],
                ["str", "x" * 100_000],
                ["str", "last"],
            ]


async def test_receive_text_decodes_binary_and_receive_bytes_encodes_text(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        text = await websocket.receive_text()  # a binary message
        data = await websocket.receive_bytes()  # a text message
        await websocket.send_json(
            {"text": [type(text).__name__, text], "bytes": [type(data).__name__, data.hex()]}
        )

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("héllo".encode())
            await ws.send("wörld")
            assert json.loads(await ws.recv()) == {
                "text": ["str", "héllo"],
                "bytes": ["bytes", "wörld".encode().hex()],
            }


async def test_receive_returns_str_or_bytes_by_frame_type(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        kinds = [type(await websocket.receive()).__name__ for _ in range(3)]
        await websocket.send_text(",".join(kinds))

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("a")
            await ws.send(b"b")
            await ws.send("")
            assert await ws.recv() == "str,bytes,str"


async def test_receive_json_from_text_and_binary_and_invalid_json_is_consumed(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        while True:
            try:
                value = await websocket.receive_json()
            except json.JSONDecodeError as error:
                await websocket.send_text(f"JSONDecodeError at {error.pos}")
            else:
                await websocket.send_json({"got": value})

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send('{"a": [1, 2.5, null, true], "b": "ü"}')
            assert json.loads(await ws.recv()) == {"got": {"a": [1, 2.5, None, True], "b": "ü"}}
            await ws.send(json.dumps({"bin": 1}).encode())
            assert json.loads(await ws.recv()) == {"got": {"bin": 1}}
            await ws.send("{not json")
            assert (await ws.recv()).startswith("JSONDecodeError")
            # The bad message was consumed and the connection goes on.
            await ws.send("[3]")
            assert json.loads(await ws.recv()) == {"got": [3]}


async def test_async_for_yields_messages_until_the_client_leaves(connect) -> None:
    app = App(__file__)
    collected: list[object] = []
    finished = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        async for message in websocket:
            collected.append(message)
        finished.set()  # the loop ends quietly on disconnect

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("a")
            await ws.send(b"b")
            await ws.send("c")
        with anyio.fail_after(5):
            await finished.wait()
    assert collected == ["a", b"b", "c"]


async def test_messages_sent_before_the_handler_asks_are_kept_in_order(connect) -> None:
    app = App(__file__)
    go = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        await go.wait()
        received = [await websocket.receive_text() for _ in range(12)]
        await websocket.send_json(received)

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            for i in range(12):
                await ws.send(f"m{i}")
            await anyio.sleep(0.3)  # all of them reach the server before anyone asks
            go.set()
            assert json.loads(await ws.recv()) == [f"m{i}" for i in range(12)]


async def test_a_full_inbound_queue_stops_reading_the_socket(connect) -> None:
    """With nobody receiving, the server keeps only a bounded number of messages and
    stops reading the socket: the client's sends end up waiting. Once the handler
    reads, everything arrives in order."""
    app = App(__file__, inbound_queue_depth=4)
    go = anyio.Event()
    total = 80
    size = 256 * 1024
    received: list[int] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await go.wait()
        for _ in range(total):
            data = await websocket.receive_bytes()
            assert len(data) == size
            received.append(data[0])
        await websocket.send_text("all received")

    sent = 0

    async def sender(ws):
        nonlocal sent
        for i in range(total):
            await ws.conn.send(bytes([i]) * size)
            sent += 1

    async with serving(app) as url:
        async with connect(url + "/ws", max_size=None) as ws:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender, ws)
                # Wait until the client's sends stall...
                previous, stable_since = -1, anyio.current_time()
                with anyio.fail_after(20):
                    while anyio.current_time() - stable_since < 0.5:
                        if sent != previous:
                            previous, stable_since = sent, anyio.current_time()
                        await anyio.sleep(0.05)
                assert sent < total, "the server read everything although nobody received"
                assert received == []
                go.set()
            assert await ws.recv() == "all received"
            assert received == list(range(total))


async def test_client_close_raises_websocket_disconnect_with_its_code_and_reason(connect) -> None:
    app = App(__file__)
    outcome: list[tuple[int, str, float]] = []
    waiting = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            waiting.set()
            await websocket.receive_text()
        except WebSocketDisconnect as disconnect:
            outcome.append((disconnect.code, disconnect.reason, time.monotonic()))
            raise

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            with anyio.fail_after(5):
                await waiting.wait()
            closed_at = time.monotonic()
            await ws.close(4321, "see you")
        await eventually(lambda: bool(outcome), what="WebSocketDisconnect in the handler")
    code, reason, when = outcome[0]
    assert (code, reason) == (4321, "see you")
    assert when - closed_at < 1.0  # at once


async def test_receive_after_the_client_left_raises_after_queued_messages(connect) -> None:
    app = App(__file__)
    outcome: list[object] = []
    left = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        await left.wait()
        try:
            while True:
                outcome.append(await websocket.receive_text())
        except WebSocketDisconnect as disconnect:
            outcome.append((disconnect.code, disconnect.reason))
        try:
            await websocket.receive_bytes()
        except WebSocketDisconnect as again:
            outcome.append(("again", again.code))

    @handler.on_close
    def on_close(websocket):
        left.set()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("before close")
            await ws.close(1000, "done")
        await eventually(lambda: len(outcome) == 3, what="the handler to finish")
    assert outcome == ["before close", (1000, "done"), ("again", 1000)]


async def test_tcp_drop_without_close_frame_gives_1006(connect) -> None:
    app = App(__file__)
    outcome: list[int] = []
    waiting = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        waiting.set()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as disconnect:
            outcome.append(disconnect.code)

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            with anyio.fail_after(5):
                await waiting.wait()
            ws.abort()
            await eventually(lambda: bool(outcome), what="WebSocketDisconnect after a TCP drop")
    assert outcome == [1006]


async def test_two_tasks_receiving_at_once_get_a_clear_error(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        errors: list[str] = []
        first_waiting = anyio.Event()

        async def first():
            first_waiting.set()
            await websocket.receive_text()

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await first_waiting.wait()
            await anyio.sleep(0.05)
            try:
                await websocket.receive_text()
            except RuntimeError as error:
                errors.append(str(error))
            tg.cancel_scope.cancel()
        await websocket.send_text(f"RuntimeError: {errors[0]}" if errors else "no error")
        # The first receiver was cancelled; receiving works again afterwards.
        await websocket.send_text(f"then: {await websocket.receive_text()}")

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            reply = await ws.recv()
            assert reply.startswith("RuntimeError: ") and "receiv" in reply
            await ws.send("fine")
            assert await ws.recv() == "then: fine"


async def test_receive_text_on_a_binary_message_that_is_not_utf8_raises_and_consumes_it(
    connect,
) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            await websocket.receive_text()
        except UnicodeDecodeError:
            await websocket.send_text("UnicodeDecodeError")
        await websocket.send_text(f"next: {await websocket.receive_text()}")

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send(b"\xff\xfe")
            await ws.send("fine")
            assert await ws.recv() == "UnicodeDecodeError"
            assert await ws.recv() == "next: fine"
