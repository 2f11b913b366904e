"""The public surface: names, decorators, the websocket object's identity."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest

import roost
import roost.testing as roost_testing
from conftest import RawClient, eventually, open_socket, port_of, serving
from roost import App, Robyn, WebSocketDisconnect

pytestmark = pytest.mark.anyio


def test_robyn_is_app() -> None:
    assert Robyn is App
    app = Robyn(__file__)
    assert isinstance(app, App)


def test_app_takes_file_path_or_nothing() -> None:
    assert App(__file__).file_path == __file__
    assert App().file_path is None


def test_decorator_returns_the_handler_and_callback_decorators_return_their_function() -> None:
    app = App(__file__)

    async def handler(websocket):
        pass

    decorated = app.websocket("/ws")(handler)
    assert decorated is handler

    def on_connect(websocket):
        return None

    async def on_close(websocket):
        return None

    assert handler.on_connect(on_connect) is on_connect
    assert handler.on_close(on_close) is on_close


def test_websocket_disconnect_defaults_and_attributes() -> None:
    assert issubclass(WebSocketDisconnect, Exception)
    default = WebSocketDisconnect()
    assert (default.code, default.reason) == (1000, "")
    custom = WebSocketDisconnect(code=4001, reason="bye")
    assert (custom.code, custom.reason) == (4001, "bye")
    positional = WebSocketDisconnect(1006, "dropped")
    assert (positional.code, positional.reason) == (1006, "dropped")
    with pytest.raises(Exception) as caught:
        raise WebSocketDisconnect(1001, "going")
    assert caught.value.code == 1001


def test_public_names() -> None:
    for name in ("App", "Robyn", "WebSocketDisconnect", "QueryParams", "Request", "Response"):
        assert hasattr(roost, name), name
    for name in roost.__all__:
        assert hasattr(roost, name), name
    for name in ("TestClient", "TestResponse", "TestWebSocket", "UpgradeRefused"):
        assert name in roost_testing.__all__ and hasattr(roost_testing, name), name
    assert isinstance(roost.__version__, str) and roost.__version__


async def test_first_parameter_may_have_any_name(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(conn):
        await conn.send_text(f"first parameter works: {await conn.receive_text()}")

    @handler.on_connect
    def greet(client):
        return f"hello {client.id}"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            assert (await ws.recv()).startswith("hello ")
            await ws.send("x")
            assert await ws.recv() == "first parameter works: x"


async def test_id_is_a_canonical_uuid4_and_the_same_everywhere(connect) -> None:
    app = App(__file__)
    seen: dict[str, list[str]] = {"handler": [], "on_connect": [], "on_close": []}

    @app.websocket("/ws")
    async def handler(websocket):
        seen["handler"].append(websocket.id)
        await websocket.send_text(websocket.id)
        await websocket.receive_text()

    @handler.on_connect
    async def on_connect(websocket):
        seen["on_connect"].append(websocket.id)

    @handler.on_close
    def on_close(websocket):
        seen["on_close"].append(websocket.id)

    async with serving(app) as url:
        ids = []
        for _ in range(3):
            async with connect(url + "/ws") as ws:
                ids.append(await ws.recv())
        await eventually(lambda: len(seen["on_close"]) == 3, what="on_close x3")

    for connection_id in ids:
        assert isinstance(connection_id, str)
        parsed = uuid.UUID(connection_id)
        assert parsed.version == 4
        assert str(parsed) == connection_id  # canonical: lower-case, hyphenated
    assert len(set(ids)) == 3
    assert seen["handler"] == ids
    assert seen["on_connect"] == ids
    assert sorted(seen["on_close"]) == sorted(ids)


async def test_headers_as_sent_are_trimmed_joined_and_decoded_as_latin_1() -> None:
    """A hand-made request: padding around values, a repeated header, a value with
    bytes above 0x7f (one of them 0x85, a line break to str.splitlines), and a header
    without a value."""
    app = App(__file__)
    seen: list[dict[str, str]] = []

    @app.websocket("/h")
    async def handler(websocket):
        seen.append(dict(websocket.headers))
        await websocket.send_text("ok")
        await websocket.receive_text()

    async with serving(app) as url:
        stream = await open_socket(port_of(url))
        client = RawClient(stream)
        key = base64.b64encode(os.urandom(16))
        await client.send_raw(
            b"GET /h HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"X-Padded:    a value   \t\r\nX-Dup: one\r\nx-dup:two\r\n"
            b"X-Latin: caf\xe9\x85!\r\nX-Empty:\r\nX-Last: end\r\n\r\n"
        )
        head = await client.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        await eventually(lambda: bool(seen), what="the handler")
        await client.aclose()
    headers = seen[0]
    assert headers["x-padded"] == "a value"
    assert headers["x-dup"] == "one, two"
    assert headers["x-latin"] == "caf\xe9\x85!"
    assert headers["x-empty"] == ""
    assert headers["x-last"] == "end"
    assert headers["host"] == "x"
    assert list(headers)[:2] == ["host", "upgrade"]


async def test_headers_path_and_client_address(connect) -> None:
    app = App(__file__)

    @app.websocket("/info")
    async def handler(websocket):
        await websocket.send_json(
            {
                "path": websocket.path,
                "custom": websocket.headers.get("x-custom-thing"),
                "lower": all(name == name.lower() for name in websocket.headers),
                "upgrade": websocket.headers.get("upgrade"),
                "client": [websocket.client.host, websocket.client.port],
                "named": [websocket.client[0], websocket.client[1]],
            }
        )
        await websocket.receive_text()

    async with serving(app) as url:
        async with connect(
            url + "/info?a=1", additional_headers={"X-Custom-Thing": "Value 1"}
        ) as ws:
            info = json.loads(await ws.recv())
            assert info["path"] == "/info"
            assert info["custom"] == "Value 1"
            assert info["lower"] is True
            assert info["upgrade"].lower() == "websocket"
            assert info["client"] == ["127.0.0.1", ws.local_port]
            assert info["named"] == info["client"]
