"""HTTP routes beside the WebSocket ones: what handlers return, what a request carries,
keep-alive, HEAD, the core's own answers (404, 405, 413), handler errors, and static
files served by the core. Raw sockets on the wire; every test on asyncio and trio."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketAttribute
from websockets.exceptions import InvalidStatus

from conftest import (
    RawClient,
    host_of,
    http_request,
    open_socket,
    port_of,
    read_answer,
    serving,
)
from roost import App, Headers, Request, Response

pytestmark = pytest.mark.anyio


def request_bytes(
    method: str, target: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """A keep-alive request (HTTP/1.1's default) as bytes."""
    fields = {"Host": host_of(url), **(headers or {})}
    if body:
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


async def raw_connection(url: str) -> RawClient:
    return RawClient(await open_socket(port_of(url)))


# ---- what handlers return --------------------------------------------------------


async def test_each_return_kind_becomes_its_response() -> None:
    app = App(__file__)

    @app.get("/str")
    async def text(request):
        return "héllo"

    @app.get("/bytes")
    async def raw(request):
        return b"\x00\xff"

    @app.get("/dict")
    async def mapping(request):
        return {"a": [1, 2], "é": None}

    @app.get("/list")
    async def sequence(request):
        return [1, "two"]

    @app.get("/response")
    async def full(request):
        return Response(
            status_code=201,
            headers=[("X-One", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            description="made",
        )

    @app.get("/typed")
    async def typed(request):
        return Response(200, {"Content-Type": "text/html; charset=utf-8"}, b"<p>hi</p>")

    @app.get("/none")
    async def nothing(request):
        return None

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/str")
        assert (answer.status, answer.text) == (200, "héllo")
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.headers["content-length"] == str(len("héllo".encode()))

        answer = await http_request(url, "GET", "/bytes")
        assert (answer.status, answer.body) == (200, b"\x00\xff")
        assert answer.headers["content-type"] == "application/octet-stream"

        answer = await http_request(url, "GET", "/dict")
        assert answer.status == 200 and answer.headers["content-type"] == "application/json"
        assert json.loads(answer.body) == {"a": [1, 2], "é": None}

        answer = await http_request(url, "GET", "/list")
        assert json.loads(answer.body) == [1, "two"]

        answer = await http_request(url, "GET", "/response")
        assert (answer.status, answer.text) == (201, "made")
        assert answer.headers["x-one"] == "1"
        assert answer.headers["set-cookie"] == "a=1, b=2"
        assert answer.head.count("Set-Cookie:") == 2
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"

        answer = await http_request(url, "GET", "/typed")
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.body == b"<p>hi</p>"

        answer = await http_request(url, "GET", "/none")
        assert (answer.status, answer.body) == (204, b"")
        assert "content-type" not in answer.headers


async def test_sync_async_and_argumentless_handlers_for_every_method() -> None:
    app = App(__file__)

    @app.get("/item")
    def read(request):
        return f"sync {request.method}"

    @app.post("/item")
    async def create(request):
        await anyio.sleep(0.001)
        return f"async {request.method} {request.text()}"

    @app.put("/item")
    def replace():
        return "no argument"

    @app.patch("/item")
    async def amend():
        return "async, no argument"

    @app.delete("/item")
    async def remove(request):
        return None

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/item")).text == "sync GET"
        answer = await http_request(url, "POST", "/item", body=b"x=1")
        assert answer.text == "async POST x=1"
        assert (await http_request(url, "PUT", "/item", body=b"y")).text == "no argument"
        assert (await http_request(url, "PATCH", "/item")).text == "async, no argument"
        assert (await http_request(url, "DELETE", "/item")).status == 204


async def test_a_request_carries_its_method_path_query_headers_body_and_client() -> None:
    app = App(__file__)
    seen: list[Request] = []

    @app.post("/echo")
    async def echo(request):
        seen.append(request)
        return {
            "method": request.method,
            "path": request.path,
            "url_path": request.url.path,
            "host": request.url.host,
            "tag": request.query_params.get("tag"),
            "tags": request.query_params.get_all("tag"),
            "space": request.query_params.get("q"),
            "token": request.headers.get("x-token"),
            "TOKEN": request.headers["X-TOKEN"],
            "has": "X-Token" in request.headers,
            "missing": request.headers.get("x-missing", "default"),
            "json": request.json(),
            "text": request.text(),
            "ip": request.ip_addr,
            "client": request.client,
        }

    async with serving(app) as url:
        body = json.dumps({"n": 1}).encode()
        client = await raw_connection(url)
        async with client:
            await client.send_raw(
                request_bytes(
                    "POST",
                    "/echo?tag=a&tag=b&q=one+two",
                    url,
                    {"X-Token": "t0k", "Content-Type": "application/json"},
                    body,
                )
            )
            answer = await read_answer(client)
            local_port = client.stream.extra(SocketAttribute.local_port)
    assert answer.status == 200, answer.head
    fields = json.loads(answer.body)
    assert fields == {
        "method": "POST",
        "path": "/echo",
        "url_path": "/echo",
        "host": host_of(url),
        "tag": "b",
        "tags": ["a", "b"],
        "space": "one two",
        "token": "t0k",
        "TOKEN": "t0k",
        "has": True,
        "missing": "default",
        "json": {"n": 1},
        "text": '{"n": 1}',
        "ip": "127.0.0.1",
        "client": f"127.0.0.1:{local_port}",
    }
    assert isinstance(seen[0].body, bytes) and seen[0].body == body
    assert isinstance(seen[0].headers, Headers)


# ---- the connection ----------------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_socket_pipelined_too() -> None:
    app = App(__file__)
    clients: list[str] = []

    @app.get("/n")
    async def number(request):
        clients.append(request.client)
        return request.query_params.get("i", "")

    async with serving(app) as url:
        client = await raw_connection(url)
        async with client:
            for i in range(3):
                await client.send_raw(request_bytes("GET", f"/n?i={i}", url))
                answer = await read_answer(client)
                assert (answer.status, answer.text) == (200, str(i))
                assert "close" not in answer.headers.get("connection", "")
            # Three requests in one write: answered in order.
            await client.send_raw(b"".join(request_bytes("GET", f"/n?i={i}", url) for i in "abc"))
            assert [(await read_answer(client)).text for _ in range(3)] == ["a", "b", "c"]
            # Connection: close is honoured: the answer says so and the socket ends.
            await client.send_raw(request_bytes("GET", "/n?i=last", url, {"Connection": "close"}))
            answer = await read_answer(client)
            assert answer.text == "last" and answer.headers["connection"] == "close"
            assert await client.read_exactly(1) is None
    assert len(set(clients)) == 1 and len(clients) == 7


async def test_head_on_a_get_route_sends_the_headers_without_the_body() -> None:
    app = App(__file__)
    methods: list[str] = []

    @app.get("/page")
    async def page(request):
        methods.append(request.method)
        return "x" * 1000

    async with serving(app) as url:
        client = await raw_connection(url)
        async with client:
            await client.send_raw(request_bytes("HEAD", "/page", url))
            answer = await read_answer(client, bodiless=True)
            assert answer.status == 200 and answer.headers["content-length"] == "1000"
            # Had a body followed, this second answer would not parse.
            await client.send_raw(request_bytes("GET", "/page", url))
            answer = await read_answer(client)
            assert answer.body == b"x" * 1000
    assert methods == ["HEAD", "GET"]


async def test_unknown_path_is_404_and_a_known_path_with_another_method_is_405() -> None:
    app = App(__file__)

    @app.get("/only-get")
    async def only_get(request):
        return "ok"

    @app.post("/only-get/post")
    async def post(request):
        return "ok"

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/nowhere")).status == 404
        answer = await http_request(url, "DELETE", "/only-get")
        assert answer.status == 405
        assert "GET" in answer.headers["allow"]
        assert (await http_request(url, "GET", "/only-get/post")).status == 405


async def test_a_body_over_max_http_body_size_is_413_and_the_limit_is_inclusive() -> None:
    app = App(__file__, max_http_body_size=1000)
    sizes: list[int] = []

    @app.post("/upload")
    async def upload(request):
        sizes.append(len(request.body))
        return "stored"

    async with serving(app) as url:
        answer = await http_request(url, "POST", "/upload", body=b"a" * 1000)
        assert (answer.status, answer.text) == (200, "stored")
        client = await raw_connection(url)
        async with client:
            await client.send_raw(request_bytes("POST", "/upload", url, body=b"b" * 1001))
            answer = await read_answer(client)
            assert answer.status == 413
            assert answer.headers["connection"] == "close"
            assert await client.read_exactly(1) is None
    assert sizes == [1000]


async def test_a_chunked_body_arrives_decoded() -> None:
    app = App(__file__)

    @app.post("/upload")
    async def upload(request):
        return request.body[::-1]

    async with serving(app) as url:
        client = await raw_connection(url)
        async with client:
            await client.send_raw(
                request_bytes("POST", "/upload", url, {"Transfer-Encoding": "chunked"})
                + b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            )
            answer = await read_answer(client)
    assert (answer.status, answer.body) == (200, b"gfedcba")


# ---- handler errors ----------------------------------------------------------------


async def test_a_handler_that_raises_gives_500_and_its_traceback_is_logged(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)

    @app.get("/boom")
    async def boom(request):
        raise KeyError("the missing thing")

    @app.get("/sync-boom")
    def sync_boom(request):
        return 1 / 0

    @app.get("/wrong-type")
    async def wrong_type(request):
        return 42

    @app.get("/fine")
    async def fine(request):
        return "still serving"

    async with serving(app) as url:
        for path in ("/boom", "/sync-boom", "/wrong-type"):
            answer = await http_request(url, "GET", path)
            assert (answer.status, answer.text) == (500, "Internal Server Error"), path
        assert (await http_request(url, "GET", "/fine")).text == "still serving"
    errors = [r for r in caplog.records if r.name == "roost" and r.levelno >= logging.ERROR]
    assert len(errors) == 3
    assert "GET /boom" in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
    assert "the missing thing" in caplog.text
    assert "ZeroDivisionError" in caplog.text
    assert "must return str, bytes, dict, list, Response or None, not int" in caplog.text


async def test_a_response_with_a_header_the_server_writes_is_500(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)

    @app.get("/length")
    async def length(request):
        response = Response(200, {}, "body")
        response.headers["Content-Length"] = "4"
        return response

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/length")).status == 500
    assert "Content-Length" in caplog.text


async def test_a_handler_slower_than_http_response_timeout_gets_its_client_503(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__, http_response_timeout=0.3)
    finished = anyio.Event()

    @app.get("/slow")
    async def slow(request):
        await anyio.sleep(0.6)
        finished.set()
        return "too late"

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/slow")
        assert answer.status == 503
        with anyio.fail_after(5):
            await finished.wait()
        await anyio.sleep(0.05)
    # The late answer is dropped quietly: the client has had its answer.
    assert [r for r in caplog.records if r.name == "roost"] == []


# ---- HTTP and WebSocket together ---------------------------------------------------


async def test_http_and_websocket_clients_at_once_on_one_port(connect) -> None:
    app = App(__file__)

    @app.websocket("/chat")
    async def chat(websocket):
        async for message in websocket:
            await websocket.send_text(f"ws: {message}")

    @app.get("/chat")
    async def chat_page(request):
        return "the chat page"

    @app.get("/count")
    async def count(request):
        return str(app.connection_count())

    async with serving(app) as url:
        async with connect(url + "/chat") as ws1, connect(url + "/chat") as ws2:
            async with anyio.create_task_group() as tg:

                async def talk(ws, name):
                    for i in range(20):
                        await ws.send(f"{name}{i}")
                        assert await ws.recv() == f"ws: {name}{i}"

                async def ask():
                    client = await raw_connection(url)
                    async with client:
                        for _ in range(20):
                            await client.send_raw(request_bytes("GET", "/chat", url))
                            assert (await read_answer(client)).text == "the chat page"

                tg.start_soon(talk, ws1, "a")
                tg.start_soon(talk, ws2, "b")
                tg.start_soon(ask)
            assert (await http_request(url, "GET", "/count")).text == "2"
        # A WebSocket upgrade after HTTP requests on the same kept-alive connection.
        client = await raw_connection(url)
        async with client:
            await client.send_raw(request_bytes("GET", "/chat", url))
            assert (await read_answer(client)).text == "the chat page"
            await client.send_raw(
                request_bytes(
                    "GET",
                    "/chat",
                    url,
                    {
                        "Upgrade": "websocket",
                        "Connection": "Upgrade",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                        "Sec-WebSocket-Version": "13",
                    },
                )
            )
            head = (await client.read_until(b"\r\n\r\n")).decode()
            assert head.startswith("HTTP/1.1 101"), head


async def test_an_app_with_http_routes_only_serves() -> None:
    app = App(__file__)

    @app.get("/")
    async def root(request):
        return "home"

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/")).text == "home"


# ---- static files ------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "css" / "app.css").write_text("body { color: red }")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (tmp_path / "secret.txt").write_text("not for you")
    return root


async def test_static_files_are_served_with_their_type(site: Path) -> None:
    app = App(__file__)
    app.static("/assets", site)
    app.serve_directory("/robyn", str(site))

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/assets/css/app.css")
        assert (answer.status, answer.text) == (200, "body { color: red }")
        assert answer.headers["content-type"].startswith("text/css")
        answer = await http_request(url, "GET", "/assets/")
        assert (answer.status, answer.text) == (200, "<h1>home</h1>")
        assert answer.headers["content-type"].startswith("text/html")
        assert (await http_request(url, "GET", "/robyn/index.html")).text == "<h1>home</h1>"
        assert (await http_request(url, "GET", "/assets/nothing.txt")).status == 404


async def test_a_large_static_file_arrives_byte_exact(site: Path) -> None:
    app = App(__file__)
    app.static("/files", site)
    expected = (site / "big.bin").read_bytes()

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/files/big.bin")
    assert answer.status == 200
    assert int(answer.headers["content-length"]) == len(expected)
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(expected).digest()


@pytest.mark.parametrize(
    "target",
    [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2E%2E%2Fsecret.txt",
        "/assets/css/../../secret.txt",
        "/assets/..%5csecret.txt",
        "/assets/%00index.html",
    ],
)
async def test_paths_that_climb_out_of_the_directory_are_404(site: Path, target: str) -> None:
    app = App(__file__)
    app.static("/assets", site)

    async with serving(app) as url:
        answer = await http_request(url, "GET", target)
    assert answer.status == 404, (target, answer.head)
    assert b"not for you" not in answer.body


async def test_a_symbolic_link_out_of_the_directory_is_404(site: Path) -> None:
    (site / "escape.txt").symlink_to(site.parent / "secret.txt")
    app = App(__file__)
    app.static("/assets", site)

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/assets/escape.txt")
    assert answer.status == 404 and b"not for you" not in answer.body


async def test_a_conditional_request_for_an_unchanged_file_is_304(site: Path) -> None:
    app = App(__file__)
    app.static("/assets", site)

    async with serving(app) as url:
        first = await http_request(url, "GET", "/assets/css/app.css")
        etag = first.headers["etag"]
        answer = await http_request(
            url, "GET", "/assets/css/app.css", headers={"If-None-Match": etag}
        )
        assert (answer.status, answer.body) == (304, b"")
        answer = await http_request(
            url,
            "GET",
            "/assets/css/app.css",
            headers={"If-Modified-Since": first.headers["last-modified"]},
        )
        assert answer.status == 304
        answer = await http_request(
            url, "GET", "/assets/css/app.css", headers={"If-None-Match": '"other"'}
        )
        assert answer.status == 200


async def test_a_range_request_gets_206_with_the_part_asked_for(site: Path) -> None:
    app = App(__file__)
    app.static("/files", site)
    expected = (site / "big.bin").read_bytes()

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/files/big.bin", headers={"Range": "bytes=10-19"})
    assert answer.status == 206
    assert answer.body == expected[10:20]
    assert answer.headers["content-range"] == f"bytes 10-19/{len(expected)}"


async def test_hidden_names_are_404_but_well_known(site: Path) -> None:
    (site / ".env").write_text("SECRET=1")
    (site / ".well-known").mkdir()
    (site / ".well-known" / "security.txt").write_text("Contact: x")
    app = App(__file__)
    app.static("/", site)

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/.env")).status == 404
        answer = await http_request(url, "GET", "/.well-known/security.txt")
        assert (answer.status, answer.text) == (200, "Contact: x")


async def test_an_http_route_wins_over_a_static_mount(site: Path) -> None:
    app = App(__file__)
    app.static("/", site)

    @app.get("/index.html")
    async def dynamic(request):
        return "from Python"

    async with serving(app) as url:
        assert (await http_request(url, "GET", "/index.html")).text == "from Python"
        assert (await http_request(url, "GET", "/css/app.css")).status == 200


# ---- health and metrics ------------------------------------------------------------


async def test_the_health_path_answers_ok() -> None:
    app = App(__file__, health_path="/healthz")

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    async with serving(app) as url:
        answer = await http_request(url, "GET", "/healthz")
        assert (answer.status, answer.body) == (200, b"ok\n")
        assert answer.headers["content-type"].startswith("text/plain")
        head = await http_request(url, "HEAD", "/healthz")
        assert head.status == 200 and head.headers["content-length"] == "3"


async def test_the_metrics_path_answers_prometheus_text_of_the_counters(connect) -> None:
    app = App(__file__, metrics_path="/metrics")

    @app.websocket("/ws")
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("12345")
            assert await ws.recv() == "12345"
            answer = await http_request(url, "GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in answer.text.splitlines()
        if line and not line.startswith("#")
    }
    assert all(name.startswith("roost_") for name in samples)
    assert samples["roost_connections"] == 1
    assert samples["roost_messages_received_total"] == 1
    assert samples["roost_received_bytes_total"] == 5
    assert samples["roost_messages_sent_total"] == 1
    assert samples["roost_sent_bytes_total"] == 5


# ---- stats -------------------------------------------------------------------------


async def test_stats_count_messages_bytes_requests_and_refused_upgrades(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        async for message in websocket:
            await websocket.broadcast(message)

    @app.get("/page")
    async def page(request):
        return "p"

    async with serving(app) as url:
        async with connect(url + "/ws") as a, connect(url + "/ws") as b:
            await a.send("abcd")
            assert await a.recv() == "abcd" and await b.recv() == "abcd"
            await b.send(b"\x00\x01")
            assert await a.recv() == b"\x00\x01" and await b.recv() == b"\x00\x01"
            for _ in range(3):
                await http_request(url, "GET", "/page")
            await http_request(url, "GET", "/nowhere")
            with pytest.raises(InvalidStatus):
                async with connect(url + "/not-a-route"):
                    pass
            stats = app.stats()
    assert stats.messages_received == 2
    assert stats.bytes_received == 6
    # Each broadcast reached both clients.
    assert stats.messages_sent == 4
    assert stats.bytes_sent == 12
    assert stats.http_requests == 4
    assert stats.upgrades_refused_404 == 1
    assert stats.upgrades_refused_403 == stats.upgrades_refused_400 == 0


# ---- registration errors -----------------------------------------------------------


@pytest.mark.parametrize("path", ["hello", "", "/x?y=1"])
def test_a_route_path_not_starting_with_a_slash_is_a_value_error(path: str) -> None:
    app = App(__file__)
    with pytest.raises(ValueError, match="'/'"):
        app.get(path)


def test_a_route_path_that_is_not_a_str_is_a_type_error() -> None:
    app = App(__file__)
    with pytest.raises(TypeError, match="str"):
        app.post(b"/x")  # type: ignore[arg-type]


def test_the_same_method_and_path_twice_is_a_value_error() -> None:
    app = App(__file__)

    @app.get("/x")
    def first():
        return "1"

    with pytest.raises(ValueError, match="GET /x is already registered"):

        @app.get("/x")
        def second():
            return "2"

    # Another method on the path, and a WebSocket route there, are fine.
    @app.post("/x")
    def third():
        return "3"

    @app.websocket("/x")
    async def ws(websocket):
        pass


def test_a_handler_that_is_not_callable_is_a_type_error() -> None:
    app = App(__file__)
    with pytest.raises(TypeError, match="GET /x"):
        app.get("/x")("not a function")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((199,), ValueError, "200 to 599"),
        ((600,), ValueError, "200 to 599"),
        (("200",), TypeError, "int"),
        ((True,), TypeError, "int"),
        ((200, {"Bad Name": "x"}), ValueError, "not a header name"),
        ((200, {"X": "a\r\nInjected: 1"}), ValueError, "line break"),
        ((200, {"X": 1}), TypeError, "str"),
        ((200, {"Content-Length": "3"}), ValueError, "server itself"),
        ((200, {"Transfer-Encoding": "chunked"}), ValueError, "server itself"),
        ((200, {"Connection": "close"}), ValueError, "server itself"),
        ((200, "X: y"), TypeError, "str"),
        ((200, {}, 42), TypeError, "description"),
    ],
)
def test_a_response_with_a_bad_status_or_header_raises(args, error, match) -> None:
    with pytest.raises(error, match=match):
        Response(*args)


def test_static_registration_errors_name_what_is_wrong(tmp_path: Path) -> None:
    app = App(__file__)
    with pytest.raises(ValueError, match="missing"):
        app.static("/assets", tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="directory"):
        app.static("/assets", tmp_path / "file.txt")
    with pytest.raises(ValueError, match="/"):
        app.static("assets", tmp_path)
    with pytest.raises(TypeError):
        app.static("/assets", 42)  # type: ignore[arg-type]
    app.static("/assets", tmp_path)
    with pytest.raises(ValueError, match="already"):
        app.static("/assets/", tmp_path)
    with pytest.raises(ValueError, match="listing"):
        app.serve_directory("/other", str(tmp_path), show_files_listing=True)
    with pytest.raises(ValueError, match="index"):
        app.serve_directory("/other", str(tmp_path), index_file="home.html")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"health_path": "health"}, ValueError, "health_path"),
        ({"metrics_path": 5}, TypeError, "metrics_path"),
        ({"allowed_origins": "http://a.example"}, TypeError, "list of origins"),
        ({"allowed_origins": []}, ValueError, "empty"),
        ({"allowed_origins": ["http://a.example,http://b.example"]}, ValueError, "origin"),
        ({"max_http_body_size": 0}, ValueError, "max_http_body_size"),
        ({"max_http_body_size": -1}, ValueError, "max_http_body_size"),
        ({"max_http_body_size": 1.5}, TypeError, "max_http_body_size"),
        ({"http_idle_timeout": "5"}, TypeError, "http_idle_timeout"),
        ({"http_idle_timeout": 0}, ValueError, "http_idle_timeout"),
    ],
)
def test_bad_http_options_raise_naming_the_option(options, error, match) -> None:
    with pytest.raises(error, match=match):
        App(__file__, **options)


def test_http_limits_default_to_the_cores() -> None:
    app = App(__file__)
    assert app.limits.max_http_body_size == 1 << 20
    assert app.limits.http_idle_timeout == 5.0
    assert app.limits.http_response_timeout == 30.0
