"""`roost.testing.TestClient`: the app served inside the test's own event loop, real
HTTP requests and WebSocket connections to it, on asyncio and trio."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from conftest import ROOT, eventually
from roost import App, Response, WebSocketDisconnect
from roost.testing import TestClient, UpgradeRefused

pytestmark = pytest.mark.anyio

# ---- the example of docs/python-api.md, "Testing" (the test below keeps them equal) -

app = App(__file__)


@app.get("/hello")
async def hello(request):
    return f"hello {request.query_params.get('name', 'world')}"


@app.post("/items")
async def create_item(request):
    item = request.json()
    return Response(201, {"Location": f"/items/{item['id']}"}, "created")


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(f"echo: {message}")


async def test_app():
    async with TestClient(app) as client:
        response = await client.get("/hello", params={"name": "ada"})
        assert response.status_code == 200
        assert response.text == "hello ada"

        response = await client.post("/items", json={"id": 7})
        assert response.status_code == 201
        assert response.headers["location"] == "/items/7"

        async with client.websocket_connect("/echo") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "echo: hi"


# ---- end of the example --------------------------------------------------------------


def test_the_documented_example_is_this_files() -> None:
    source = Path(__file__).read_text()
    start = source.index("app = App(__file__)\n")
    example = source[start : source.index("\n\n# ---- end of the example")]
    docs = (ROOT / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert any(example in block for block in blocks), "docs/python-api.md lost the example"


def echo_app() -> App:
    app = App(__file__)

    @app.websocket("/ws")
    async def echo(websocket, prefix: str = "Echo"):
        while True:
            message = await websocket.receive()
            if message == "close please":
                await websocket.close(4001, "as asked")
                return
            if isinstance(message, bytes):
                await websocket.send_bytes(message[::-1])
            else:
                await websocket.send_text(f"{prefix}: {message}")

    return app


async def test_websocket_text_bytes_and_json_round_trips() -> None:
    async with TestClient(echo_app()) as client:
        async with client.websocket_connect("/ws?prefix=Re") as ws:
            await ws.send_text("hello")
            assert await ws.receive_text() == "Re: hello"
            await ws.send_bytes(b"\x00\x01\x02")
            assert await ws.receive_bytes() == b"\x02\x01\x00"
            await ws.send_json({"n": [1, 2], "s": "é"})
            assert await ws.receive_text() == 'Re: {"n":[1,2],"s":"é"}'
            assert ws.subprotocol is None


async def test_a_server_close_gives_its_code_and_reason() -> None:
    async with TestClient(echo_app()) as client:
        async with client.websocket_connect("/ws") as ws:
            await ws.send_text("close please")
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
            assert (closed.value.code, closed.value.reason) == (4001, "as asked")
            assert (ws.close_code, ws.close_reason) == (4001, "as asked")
            # And on every later call.
            with pytest.raises(WebSocketDisconnect):
                await ws.receive()


async def test_the_client_closing_reaches_the_handler_with_its_code() -> None:
    app = App(__file__)
    seen: list[tuple[int, str]] = []

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as gone:
            seen.append((gone.code, gone.reason))

    async with TestClient(app) as client:
        async with client.websocket_connect("/ws") as ws:
            await ws.close(4002, "done here")
            assert ws.close_code == 4002
        await eventually(lambda: bool(seen), what="the handler's WebSocketDisconnect")
        assert seen == [(4002, "done here")]


async def test_receive_text_of_a_binary_message_is_a_type_error() -> None:
    async with TestClient(echo_app()) as client:
        async with client.websocket_connect("/ws") as ws:
            await ws.send_bytes(b"abc")
            with pytest.raises(TypeError, match="binary"):
                await ws.receive_text()
            await ws.send_text("x")
            with pytest.raises(TypeError, match="text"):
                await ws.receive_bytes()


async def test_headers_given_reach_the_handler() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text(websocket.headers["x-token"])

    async with TestClient(app) as client:
        async with client.websocket_connect("/ws", headers={"X-Token": "s3cret"}) as ws:
            assert await ws.receive_text() == "s3cret"


async def test_an_unknown_path_raises_upgrade_refused_with_the_answer() -> None:
    async with TestClient(echo_app()) as client:
        with pytest.raises(UpgradeRefused) as refused:
            async with client.websocket_connect("/nowhere"):
                pass
        assert refused.value.status_code == 404


async def test_receiving_when_nothing_comes_times_out() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def silent(websocket):
        await websocket.receive_text()

    async with TestClient(app, timeout=0.3) as client:
        async with client.websocket_connect("/ws") as ws:
            with pytest.raises(TimeoutError):
                await ws.receive_text()


# ---- HTTP ----------------------------------------------------------------------------


def http_app(**options) -> App:
    http = App(__file__, **options)

    @http.get("/who")
    async def who(request):
        return request.client

    @http.post("/echo")
    async def echo_body(request):
        return Response(
            200,
            {"Content-Type": request.headers.get("content-type", "application/octet-stream")},
            request.body,
        )

    @http.get("/latin")
    async def latin(request):
        return Response(
            200, {"Content-Type": "text/plain; charset=latin-1"}, "café".encode("latin-1")
        )

    @http.get("/query")
    async def query(request):
        return request.query_params.to_dict()

    return http


async def test_requests_share_one_kept_alive_connection() -> None:
    async with TestClient(http_app()) as client:
        clients = {(await client.get("/who")).text for _ in range(5)}
    assert len(clients) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with TestClient(http_app(http_idle_timeout=0.2)) as client:
        first = (await client.get("/who")).text
        await anyio.sleep(0.6)
        second = await client.get("/who")
    assert second.status_code == 200 and second.text != first


async def test_bodies_params_and_decoding() -> None:
    async with TestClient(http_app()) as client:
        response = await client.post("/echo", content=b"\x00raw")
        assert response.content == b"\x00raw"
        response = await client.put("/echo", content="text")
        assert response.status_code == 405
        response = await client.post("/echo", json={"a": "é"})
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"a": "é"}
        response = await client.get("/latin")
        assert response.text == "café"
        response = await client.get("/query?a=1", params=[("b", "2"), ("b", "3 4")])
        assert response.json() == {"a": ["1"], "b": ["2", "3 4"]}
        response = await client.head("/who")
        assert response.status_code == 200 and response.content == b""
        assert int(response.headers["content-length"]) > 0
        response = await client.delete("/nowhere")
        assert response.status_code == 404
        with pytest.raises(TypeError, match="not both"):
            await client.post("/echo", content=b"x", json={})
        with pytest.raises(ValueError, match="'/'"):
            await client.get("who")


async def test_an_exception_in_the_block_goes_on_as_it_is_and_the_app_stops() -> None:
    served = http_app()
    with pytest.raises(ZeroDivisionError):
        async with TestClient(served) as client:
            assert (await client.get("/who")).status_code == 200
            1 / 0  # noqa: B018
    assert served.port is None
    # The app can be served again.
    async with TestClient(served) as client:
        assert (await client.get("/who")).status_code == 200


async def test_the_client_outside_its_block_is_a_runtime_error() -> None:
    client = TestClient(http_app())
    with pytest.raises(RuntimeError, match="async with"):
        await client.get("/who")


async def test_a_refused_upgrade_raises_with_the_answer() -> None:
    served = App(__file__)

    @served.websocket("/ws")
    async def greet(websocket):
        await websocket.send_text("welcome")

    @served.before_upgrade
    def vet(request):
        if "x-key" not in request.headers:
            return Response(401, {}, "no key")

    async with TestClient(served) as client:
        async with client.websocket_connect("/ws", headers={"X-Key": "k"}) as ws:
            assert await ws.receive_text() == "welcome"
        with pytest.raises(UpgradeRefused) as refused:
            async with client.websocket_connect("/ws"):
                pass
        assert (refused.value.status_code, refused.value.text) == (401, "no key")


async def test_the_selected_subprotocol_is_the_connections() -> None:
    served = App(__file__)

    @served.websocket("/ws", subprotocols=["v2", "v1"])
    async def versioned(websocket):
        await websocket.send_text(f"speaking {websocket.subprotocol}")

    async with TestClient(served) as client:
        async with client.websocket_connect("/ws", subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert await ws.receive_text() == "speaking v2"
        async with client.websocket_connect("/ws", subprotocols=["v1"]) as ws:
            assert ws.subprotocol == "v1"
            assert await ws.receive_text() == "speaking v1"
        async with client.websocket_connect("/ws") as ws:
            assert ws.subprotocol is None
            assert await ws.receive_text() == "speaking None"
