"""What an upgrade goes through before a WebSocket handler runs: the allowed origins,
the `before_upgrade` hook, and subprotocol selection."""

from __future__ import annotations

import logging

import anyio
import pytest
from websockets.exceptions import InvalidStatus

from conftest import RawClient, eventually, http_request, open_socket, port_of, read_answer, serving
from roost import App, Request, Response

pytestmark = pytest.mark.anyio

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def upgrade_head(target: str, headers: dict[str, str] | None = None) -> bytes:
    """An upgrade request for `target` as bytes, with `headers` besides."""
    fields = {"Host": "x", **UPGRADE, **(headers or {})}
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"GET {target} HTTP/1.1\r\n{lines}\r\n".encode()


async def upgrade(url: str, target: str, headers: dict[str, str] | None = None):
    """An upgrade request's answer (its head and, unless 101, its body)."""
    return await http_request(url, "GET", target, headers={**UPGRADE, **(headers or {})})


def counting_app(**options) -> tuple[App, list[str]]:
    """An app whose /ws handler records each connection and echoes."""
    app = App(__file__, **options)
    handled: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        handled.append(websocket.id)
        async for message in websocket:
            await websocket.send(message)

    return app, handled


# ---- allowed origins ---------------------------------------------------------------


async def test_an_origin_not_allowed_gets_403_and_the_handler_never_runs(connect) -> None:
    app, handled = counting_app(allowed_origins=["https://app.example", "http://localhost:8080"])

    async with serving(app) as url:
        answer = await upgrade(url, "/ws", {"Origin": "https://evil.example"})
        assert answer.status == 403
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url + "/ws", origin="http://localhost:8081"):
                pass
        assert refused.value.response.status_code == 403
        # Listed origins pass (compared without regard to case), and so does a client
        # that sends no Origin (not a browser).
        async with connect(url + "/ws", origin="HTTPS://App.Example") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
        async with connect(url + "/ws") as ws:
            await ws.send("no origin")
            assert await ws.recv() == "no origin"
        assert len(handled) == 2
        assert app.stats().upgrades_refused_403 == 2


# ---- before_upgrade ----------------------------------------------------------------


async def test_before_upgrade_refuses_with_its_status_headers_and_body(connect) -> None:
    app, handled = counting_app()
    seen: list[Request] = []

    @app.before_upgrade
    def check(request):
        seen.append(request)
        if request.query_params.get("token") != "s3cret":
            return Response(401, {"WWW-Authenticate": "Token"}, "missing token")
        return None

    async with serving(app) as url:
        answer = await upgrade(url, "/ws?token=wrong", {"X-Trace": "42"})
        assert (answer.status, answer.text) == (401, "missing token")
        assert answer.headers["www-authenticate"] == "Token"
        assert answer.headers["connection"] == "close"

        async with connect(url + "/ws?token=s3cret") as ws:
            await ws.send("accepted")
            assert await ws.recv() == "accepted"
        assert len(handled) == 1
        assert app.stats().upgrades_refused_other == 1

    first = seen[0]
    assert (first.method, first.path, first.url.path) == ("GET", "/ws", "/ws")
    assert first.query_params.get("token") == "wrong"
    assert first.headers["x-trace"] == "42" and first.headers["UPGRADE"] == "websocket"
    assert first.body == b"" and first.ip_addr == "127.0.0.1"


async def test_an_async_before_upgrade_sees_every_websocket_route(connect) -> None:
    app = App(__file__)
    vetted: list[str] = []

    @app.websocket("/a")
    async def route_a(websocket):
        await websocket.send_text("a")

    @app.websocket("/b")
    async def route_b(websocket):
        await websocket.send_text("b")

    @app.get("/a")
    async def page(request):
        return "the page"

    @app.before_upgrade
    async def vet(request):
        await anyio.sleep(0.01)
        vetted.append(request.path)
        return Response(403, {}, "no b") if request.path == "/b" else None

    async with serving(app) as url:
        async with connect(url + "/a") as ws:
            assert await ws.recv() == "a"
        assert (await upgrade(url, "/b")).status == 403
        # HTTP requests never reach the hook.
        assert (await http_request(url, "GET", "/a")).text == "the page"
    assert vetted == ["/a", "/b"]


async def test_the_connection_accepted_keeps_the_id_of_its_upgrade(connect) -> None:
    app = App(__file__)
    hooked = 0

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text(websocket.headers["x-who"])

    @app.before_upgrade
    def vet(request):
        nonlocal hooked
        hooked += 1

    async with serving(app) as url:
        for who in ("one", "two"):
            async with connect(url + "/ws", additional_headers={"X-Who": who}) as ws:
                assert await ws.recv() == who
    assert hooked == 2


async def test_a_before_upgrade_that_raises_refuses_with_500_and_is_logged(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app, handled = counting_app()

    @app.before_upgrade
    def vet(request):
        if request.query_params.get("how") == "raise":
            raise RuntimeError("the vetting failed")
        if request.query_params.get("how") == "wrong-type":
            return "not a response"
        return Response(200, {}, "not a refusal")

    async with serving(app) as url:
        for how in ("raise", "wrong-type", "ok-status"):
            answer = await upgrade(url, f"/ws?how={how}")
            assert (answer.status, answer.text) == (500, "Internal Server Error"), how
    assert handled == []
    assert "the vetting failed" in caplog.text
    assert "must return None or a Response, not str" in caplog.text
    assert "a refusal's status is 300 to 599" in caplog.text


async def test_a_client_that_leaves_while_vetted_is_forgotten(connect) -> None:
    app, handled = counting_app()
    release = anyio.Event()
    entered = anyio.Event()

    @app.before_upgrade
    async def slow(request):
        entered.set()
        await release.wait()

    async with serving(app) as url:
        client = RawClient(await open_socket(port_of(url)))
        async with client:
            await client.send_raw(upgrade_head("/ws"))
            await entered.wait()
        # The core notices the close while it waits (a moment, on loopback); then
        # accepting the upgrade whose client left is not an error: nothing happens.
        await anyio.sleep(0.3)
        release.set()
        await anyio.sleep(0.1)
        assert handled == [] and app.connection_count() == 0


async def test_a_hook_that_does_not_answer_in_time_gets_the_client_503(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app, handled = counting_app(http_response_timeout=0.3)
    finished = anyio.Event()

    @app.before_upgrade
    async def slow(request):
        await anyio.sleep(0.6)
        finished.set()

    async with serving(app) as url:
        assert (await upgrade(url, "/ws")).status == 503
        with anyio.fail_after(5):
            await finished.wait()
        await anyio.sleep(0.05)
        assert handled == [] and app.connection_count() == 0
        assert app.stats().upgrades_refused_503 == 1
    assert [r for r in caplog.records if r.name == "roost"] == []


def test_before_upgrade_takes_one_callable() -> None:
    app = App(__file__)
    with pytest.raises(TypeError, match="function"):
        app.before_upgrade("not callable")  # type: ignore[arg-type]

    @app.before_upgrade
    def first(request):
        return None

    with pytest.raises(ValueError, match="already"):

        @app.before_upgrade
        def second(request):
            return None


# ---- subprotocols ------------------------------------------------------------------


def subprotocol_app(required: bool = False) -> App:
    app = App(__file__)

    @app.websocket(
        "/graphql",
        subprotocols=["graphql-transport-ws", "graphql-ws"],
        require_subprotocol=required,
    )
    async def graphql(websocket):
        await websocket.send_text(str(websocket.subprotocol))

    return app


async def test_the_servers_first_protocol_the_client_offers_is_selected(connect) -> None:
    async with serving(subprotocol_app()) as url:
        offered = ["graphql-ws", "graphql-transport-ws"]
        async with connect(url + "/graphql", subprotocols=offered) as ws:
            assert ws.conn.subprotocol == "graphql-transport-ws"
            assert await ws.recv() == "graphql-transport-ws"
        async with connect(url + "/graphql", subprotocols=["mqtt", "graphql-ws"]) as ws:
            assert await ws.recv() == "graphql-ws"
        # Offered in one header, comma separated, across two headers: the same.
        answer = await upgrade(url, "/graphql", {"Sec-WebSocket-Protocol": "x, graphql-ws"})
        assert answer.status == 101
        assert answer.headers["sec-websocket-protocol"] == "graphql-ws"


async def test_no_protocol_in_common_connects_without_one_unless_required(connect) -> None:
    async with serving(subprotocol_app()) as url:
        async with connect(url + "/graphql", subprotocols=["mqtt"]) as ws:
            assert await ws.recv() == "None"
        async with connect(url + "/graphql") as ws:
            assert await ws.recv() == "None"

    app = subprotocol_app(required=True)
    async with serving(app) as url:
        answer = await upgrade(url, "/graphql", {"Sec-WebSocket-Protocol": "mqtt"})
        assert (answer.status, answer.text.strip()) == (400, "No supported subprotocol")
        assert (await upgrade(url, "/graphql")).status == 400
        async with connect(url + "/graphql", subprotocols=["graphql-ws"]) as ws:
            assert await ws.recv() == "graphql-ws"
        await eventually(lambda: app.stats().upgrades_refused_400 == 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"subprotocols": "graphql-ws"}, TypeError, "list of str"),
        ({"subprotocols": [1]}, TypeError, "str"),
        ({"subprotocols": ["a,b"]}, ValueError, "comma"),
        ({"subprotocols": ["has space"]}, ValueError, "has space"),
        ({"require_subprotocol": True}, ValueError, "subprotocols"),
        ({"subprotocols": ["a"], "require_subprotocol": "yes"}, TypeError, "bool"),
    ],
)
def test_bad_subprotocol_arguments_raise_at_registration(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        App(__file__).websocket("/ws", **kwargs)
    # An empty list is no subprotocol.
    App(__file__).websocket("/ws", subprotocols=[])


async def test_hook_origin_and_subprotocol_checks_refuse_before_the_hook_runs() -> None:
    app = App(__file__, allowed_origins=["https://app.example"])
    hooked: list[str] = []

    @app.websocket("/ws", subprotocols=["v1"], require_subprotocol=True)
    async def handler(websocket):
        pass

    @app.before_upgrade
    def vet(request):
        hooked.append(request.path)

    async with serving(app) as url:
        answer = await upgrade(url, "/ws", {"Origin": "https://evil.example"})
        assert answer.status == 403
        answer = await upgrade(url, "/ws", {"Sec-WebSocket-Protocol": "v2"})
        assert answer.status == 400
        answer = await upgrade(url, "/nowhere")
        assert answer.status == 404
    assert hooked == []


async def test_a_refused_upgrade_answer_is_read_whole() -> None:
    app, _ = counting_app(allowed_origins=["https://app.example"])
    async with serving(app) as url:
        client = RawClient(await open_socket(port_of(url)))
        async with client:
            await client.send_raw(upgrade_head("/ws", {"Origin": "https://evil.example"}))
            answer = await read_answer(client)
            assert answer.status == 403
            assert await client.read_exactly(1) is None
