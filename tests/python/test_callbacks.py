"""Connecting: on_connect / on_close callbacks, and what the handshake answers."""

from __future__ import annotations

import base64
import os

import anyio
import anyio.lowlevel
import pytest
from websockets.exceptions import InvalidStatus

from conftest import eventually, http_exchange, serving, status_of
from roost import App

pytestmark = pytest.mark.anyio


async def test_on_connect_runs_before_the_handler_and_its_str_is_the_first_message(connect) -> None:
    app = App(__file__)
    order: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        order.append("handler")
        await websocket.send_text("from handler")
        await websocket.receive_text()

    @handler.on_connect
    def on_connect(websocket):
        order.append("on_connect")
        return f"Welcome, {websocket.id}!"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            first = await ws.recv()
            assert isinstance(first, str) and first.startswith("Welcome, ") and first.endswith("!")
            assert await ws.recv() == "from handler"
    assert order == ["on_connect", "handler"]


async def test_on_connect_returning_bytes_sends_binary(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("then handler")
        await websocket.receive_text()

    @handler.on_connect
    async def on_connect(websocket):
        await anyio.sleep(0.05)  # the handler still waits for it
        return b"\x01binary hello"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            first = await ws.recv()
            assert (type(first), first) == (bytes, b"\x01binary hello")
            assert await ws.recv() == "then handler"


async def test_on_connect_returning_none_sends_nothing(connect) -> None:
    app = App(__file__)
    ran: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("handler first")
        await websocket.receive_text()

    @handler.on_connect
    def on_connect(websocket):
        ran.append(websocket.id)

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            assert await ws.recv() == "handler first"
    assert len(ran) == 1


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_sync_and_async_callbacks(connect, style: str) -> None:
    app = App(__file__)
    closed: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        if await websocket.receive_text() == "close":
            await websocket.close(4000, "asked")

    if style == "sync":

        @handler.on_connect
        def on_connect(websocket):
            return "hello (sync)"

        @handler.on_close
        def on_close(websocket):
            closed.append(websocket.id)
            return "bye (sync)"
    else:

        @handler.on_connect
        async def on_connect(websocket):
            await anyio.lowlevel.checkpoint()
            return "hello (async)"

        @handler.on_close
        async def on_close(websocket):
            await anyio.lowlevel.checkpoint()
            closed.append(websocket.id)
            return "bye (async)"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("close")
            messages, end = await ws.recv_closed()
            assert messages == [f"hello ({style})", f"bye ({style})"]
            assert (end.code, end.reason) == (4000, "asked")
    assert len(closed) == 1


async def test_callbacks_see_id_and_query_params(connect) -> None:
    app = App(__file__)
    seen: list[tuple[str, str, object]] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.receive_text()

    @handler.on_connect
    def on_connect(websocket):
        seen.append(("connect", websocket.id, websocket.query_params.get("who")))

    @handler.on_close
    def on_close(websocket):
        seen.append(("close", websocket.id, websocket.query_params.get("who")))

    async with serving(app) as url:
        async with connect(url + "/ws?who=gordon"):
            pass
        await eventually(lambda: len(seen) == 2, what="both callbacks")
    assert [s[0] for s in seen] == ["connect", "close"]
    assert seen[0][1] == seen[1][1]
    assert seen[0][2] == seen[1][2] == "gordon"


async def test_an_on_connect_error_closes_with_1011_without_running_the_handler(
    connect, caplog
) -> None:
    app = App(__file__)
    ran: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        ran.append("handler")

    @handler.on_connect
    def on_connect(websocket):
        raise LookupError("on_connect failed")

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            messages, end = await ws.recv_closed()
    assert (messages, end.code) == ([], 1011)
    assert ran == []
    assert "on_connect failed" in caplog.text


async def test_unknown_path_gets_404_at_the_handshake(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    async with serving(app) as url:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(url + "/nowhere"):
                pass
        assert caught.value.response.status_code == 404
        # Paths match exactly.
        for path in ("/ws/", "/WS", "/ws/more"):
            with pytest.raises(InvalidStatus) as caught:
                async with connect(url + path):
                    pass
            assert caught.value.response.status_code == 404, path


async def test_plain_http_get_to_a_websocket_path_gets_426() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    async with serving(app) as url:
        head = await http_exchange(url, b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status_of(head) == 426, head


async def test_malformed_handshake_gets_400() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    key = base64.b64encode(os.urandom(16)).decode()
    async with serving(app) as url:
        # An upgrade request without Sec-WebSocket-Key.
        head = await http_exchange(
            url,
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        assert status_of(head) == 400, head
        # A key that is not 16 base64-encoded bytes.
        head = await http_exchange(
            url,
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n",
        )
        assert status_of(head) == 400, head
        # Not HTTP at all.
        head = await http_exchange(url, b"HELLO THERE\r\n\r\n")
        assert status_of(head) == 400, head
        # A well-formed request on the same server still works.
        head = await http_exchange(
            url,
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode(),
        )
        assert status_of(head) == 101, head
