"""permessage-deflate (RFC 7692) with the `websockets` client, which offers it by
default as browsers do: what the server answers, messages both ways, the message limit
on the inflated size, and clients that do not compress."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import serving
from roost import App, Limits, WebSocket, WebSocketDisconnect

pytestmark = pytest.mark.anyio

AGREED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def echo_app(**limits: object) -> App:
    app = App(__file__, **limits)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        try:
            while True:
                await websocket.send(await websocket.receive())
        except WebSocketDisconnect:
            pass

    return app


def document(items: int) -> str:
    return json.dumps([{"id": i, "name": "roost", "tags": ["a", "b"]} for i in range(items)])


async def test_a_compressing_client_gets_deflate_and_messages_round_trip(connect) -> None:
    async with serving(echo_app(compression="deflate")) as url:
        async with connect(url + "/ws") as ws:
            assert ws.conn.response.headers["Sec-WebSocket-Extensions"] == AGREED
            for message in (document(200), document(200).encode(), "small", b"", "é" * 500):
                await ws.send(message)
                assert await ws.recv() == message


async def test_a_client_without_compression_is_served_uncompressed(connect) -> None:
    async with serving(echo_app(compression="deflate")) as url:
        async with connect(url + "/ws", compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.conn.response.headers
            await ws.send(document(100))
            assert await ws.recv() == document(100)


async def test_compression_off_declines_the_offer(connect) -> None:
    async with serving(echo_app()) as url:
        async with connect(url + "/ws") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.conn.response.headers
            await ws.send(document(100))
            assert await ws.recv() == document(100)


async def test_the_message_limit_applies_to_the_inflated_size(connect) -> None:
    # 4 KiB of one letter compresses to a few dozen bytes; inflated it is over 2 KiB.
    async with serving(echo_app(compression="deflate", max_message_size=2048)) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("a" * 2048)
            assert await ws.recv() == "a" * 2048
            await ws.send("a" * 4096)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009


async def test_a_broadcast_reaches_compressing_and_plain_clients(connect) -> None:
    app = App(__file__, compression="deflate")

    @app.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        try:
            while True:
                if await websocket.receive() == "go":
                    await websocket.broadcast(document(300))
                else:
                    await websocket.send_text("ready")
        except WebSocketDisconnect:
            pass

    async with serving(app) as url:
        async with (
            connect(url + "/ws") as deflating,
            connect(url + "/ws", compression=None) as plain,
        ):
            for ws in (deflating, plain):
                await ws.send("hello")
                assert await ws.recv() == "ready"
            await plain.send("go")
            assert await deflating.recv() == document(300)
            assert await plain.recv() == document(300)


async def test_per_connection_compression_keeps_each_clients_context(connect) -> None:
    # The server keeps its context: the client inflates every message with the window
    # of the ones before (a wrong byte anywhere would fail its inflater), direct sends
    # and broadcasts interleaved, while its own messages still stand alone.
    app = App(__file__, compression="deflate-per-connection")

    @app.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        try:
            while True:
                message = await websocket.receive_text()
                await websocket.send_text(message)
                await websocket.broadcast(f"all: {message}")
        except WebSocketDisconnect:
            pass

    async with serving(app) as url:
        async with connect(url + "/ws") as one, connect(url + "/ws") as other:
            agreed = "permessage-deflate; client_no_context_takeover"
            assert one.conn.response.headers["Sec-WebSocket-Extensions"] == agreed
            for i in range(20):
                message = document(10 + i % 3)
                await one.send(message)
                assert await one.recv() == message
                assert await one.recv() == f"all: {message}"
                assert await other.recv() == f"all: {message}"


def test_compression_options_are_checked() -> None:
    assert Limits.defaults().compression is None
    assert Limits.defaults().compression_min_size == 256
    assert (
        App(__file__, compression="deflate", compression_min_size=1).limits.compression == "deflate"
    )
    assert App(__file__, compression="deflate-per-connection").limits.compression == (
        "deflate-per-connection"
    )
    with pytest.raises(
        ValueError, match="compression must be one of None, 'deflate', 'deflate-per-connection'"
    ):
        App(__file__, compression="gzip")
    with pytest.raises(TypeError, match="compression must be a str or None"):
        App(__file__, compression=True)
    with pytest.raises(TypeError, match="compression_min_size must be an int"):
        App(__file__, compression_min_size="big")
    with pytest.raises(ValueError, match="compression_min_size must be at least 1"):
        App(__file__, compression_min_size=0)
