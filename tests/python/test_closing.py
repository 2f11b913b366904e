"""Closing: websocket.close(), the handler's end, client closes, and on_close."""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import pytest

from conftest import OP_CLOSE, OP_TEXT, RawClient, close_payload, eventually, serving
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


async def test_close_sends_on_close_result_then_the_close_frame_and_leaves_the_registry(
    connect,
) -> None:
    app = App(__file__)
    connected: dict[str, object] = {}
    outcome: list[object] = []

    @app.websocket("/room")
    async def room(websocket, role: str):
        connected[role] = websocket
        message = await websocket.receive_text()
        if message == "close me":
            await websocket.close(4002, "closed by server")
            await websocket.broadcast("after close")  # the closed one is not a recipient
            try:
                await websocket.receive_text()
            except WebSocketDisconnect as disconnect:
                outcome.append((disconnect.code, disconnect.reason))
        else:
            await websocket.receive_text()

    @room.on_close
    def on_close(websocket, role: str):
        return f"Goodbye {role}!"

    async with serving(app) as url:
        async with (
            await RawClient.open(url, "/room?role=raw") as raw,
            connect(url + "/room?role=other") as other,
        ):
            await eventually(lambda: len(connected) == 2, what="two connections")
            await raw.send_frame(OP_TEXT, b"close me")
            frames = await raw.recv_all()
            assert [(f.opcode, f.payload) for f in frames[:-1]] == [(OP_TEXT, b"Goodbye raw!")]
            assert frames[-1].opcode == OP_CLOSE
            assert (frames[-1].close_code, frames[-1].close_reason) == (4002, "closed by server")
            assert await other.recv() == "after close"
    assert outcome == [(4002, "closed by server")]


async def test_close_wakes_a_pending_receive(connect) -> None:
    app = App(__file__)
    outcome: list[object] = []

    @app.websocket("/ws")
    async def handler(websocket):
        async def receiver():
            try:
                await websocket.receive_text()
                outcome.append("received")
            except WebSocketDisconnect as disconnect:
                outcome.append(("disconnect", disconnect.code))

        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await anyio.sleep(0.1)
            await websocket.close(1000, "")
        # Closing twice does nothing.
        await websocket.close(1000, "")
        outcome.append("closed twice")

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1000)
        await eventually(lambda: len(outcome) == 2, what="the pending receive to end")
    assert outcome == [("disconnect", 1000), "closed twice"]


async def test_handler_return_closes_with_1000_after_on_close_result(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("last from handler")

    @handler.on_close
    async def on_close(websocket):
        return "final"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            messages, end = await ws.recv_closed()
    assert messages == ["last from handler", "final"]
    assert end.code == 1000


async def test_handler_raising_logs_the_traceback_closes_with_1011_and_spares_others(
    connect, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        async for message in websocket:
            if message == "boom":
                raise ZeroDivisionError("handler exploded on purpose")
            await websocket.send_text(f"echo {message}")

    async with serving(app) as url:
        async with connect(url + "/ws") as doomed, connect(url + "/ws") as survivor:
            await survivor.send("before")
            assert await survivor.recv() == "echo before"
            await doomed.send("boom")
            messages, end = await doomed.recv_closed()
            assert (messages, end.code) == ([], 1011)
            await survivor.send("after")
            assert await survivor.recv() == "echo after"
        async with connect(url + "/ws") as newcomer:
            await newcomer.send("new")
            assert await newcomer.recv() == "echo new"

    records = [r for r in caplog.records if r.name == "roost" and r.levelno >= logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is ZeroDivisionError
    assert "handler exploded on purpose" in caplog.text
    assert "Traceback" in caplog.text


async def test_a_client_close_frame_is_answered_with_a_close_frame() -> None:
    app = App(__file__)
    outcome: list[tuple[int, str]] = []

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as disconnect:
            outcome.append((disconnect.code, disconnect.reason))

    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_CLOSE, close_payload(4001, "client leaves"))
            frame = await raw.recv_frame()
            assert frame is not None and frame.opcode == OP_CLOSE
            assert frame.close_code == 4001  # echoed, as RFC 6455 suggests
            assert await raw.recv_frame() is None  # then the server ends the TCP connection
        await eventually(lambda: bool(outcome), what="WebSocketDisconnect")
    assert outcome == [(4001, "client leaves")]


async def test_on_close_runs_exactly_once_whichever_side_closes(connect) -> None:
    app = App(__file__)
    calls: Counter[str] = Counter()

    @app.websocket("/ws")
    async def handler(websocket, how: str):
        if how == "server-close":
            await websocket.close(1000)
            await websocket.close(1000)
        elif how == "return":
            return
        elif how == "raise":
            raise RuntimeError("on purpose")
        elif how == "close-then-raise":
            await websocket.close(4000)
            raise RuntimeError("after close, on purpose")
        else:
            await websocket.receive_text()

    @handler.on_close
    def on_close(websocket, how: str):
        calls[how] += 1

    scenarios = [
        "client-close",
        "server-close",
        "return",
        "raise",
        "close-then-raise",
        "tcp-drop",
        "server-stop",
    ]
    async with serving(app) as url:
        async with connect(url + "/ws?how=client-close") as ws:
            pass
        for how in ("server-close", "return", "raise", "close-then-raise"):
            async with connect(f"{url}/ws?how={how}") as ws:
                await ws.recv_closed()
        async with connect(url + "/ws?how=tcp-drop") as ws:
            await anyio.sleep(0.05)
            ws.abort()
        async with connect(url + "/ws?how=server-stop") as stopping:
            await eventually(lambda: app.connection_count() >= 1, what="the connection")
            await eventually(lambda: sum(calls.values()) == 6, what="six on_close calls")
            app.stop()
            messages, end = await stopping.recv_closed()
            assert end.code == 1001
    await anyio.sleep(0.2)  # a second call would show up now
    assert dict(calls) == {how: 1 for how in scenarios}


async def test_on_close_runs_promptly_after_a_client_leaves(connect) -> None:
    app = App(__file__)
    closed, done = anyio.Event(), anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        await done.wait()  # the handler never looks at the connection

    @handler.on_close
    def on_close(websocket):
        closed.set()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.close(1000)
        with anyio.fail_after(2):
            await closed.wait()
        done.set()


async def test_a_handler_letting_websocket_disconnect_propagate_is_quiet(connect, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="roost")
    app = App(__file__)
    ended = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            while True:
                await websocket.send_text(f"Got: {await websocket.receive_text()}")
        finally:
            ended.set()

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("a")
            assert await ws.recv() == "Got: a"
        with anyio.fail_after(5):
            await ended.wait()
        await anyio.sleep(0.1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
