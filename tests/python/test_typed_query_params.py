"""Typed query parameters declared in the handler's, on_connect's and on_close's
signatures, and the rejection of connections whose parameters do not fit."""

from __future__ import annotations

import enum
import json
import uuid
from typing import Optional
from urllib.parse import quote

import anyio
import pytest

from conftest import eventually, serving
from roost import App, QueryParams

pytestmark = pytest.mark.anyio


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def describe(value: object) -> object:
    if isinstance(value, list):
        return [describe(v) for v in value]
    if isinstance(value, enum.Enum):
        return ["Color", value.value]
    if isinstance(value, uuid.UUID):
        return ["UUID", str(value)]
    return [type(value).__name__, value]


def typed_app() -> App:
    app = App(__file__)

    @app.websocket("/typed")
    async def typed(
        websocket,
        room: str,
        count: int = 7,
        ratio: float = 0.5,
        flag: bool = False,
        maybe: int | None = None,
        tags: list[str] = [],  # noqa: B006 (a list default is what is under test)
        nums: list[int] = [],  # noqa: B006
        color: Color = Color.RED,
        ident: uuid.UUID | None = None,
        plain="dflt",
    ):
        await websocket.send_json(
            {
                "room": describe(room),
                "count": describe(count),
                "ratio": describe(ratio),
                "flag": describe(flag),
                "maybe": describe(maybe),
                "tags": describe(tags),
                "nums": describe(nums),
                "color": describe(color),
                "ident": describe(ident),
                "plain": describe(plain),
            }
        )
        await websocket.receive_text()

    return app


async def typed_values(connect, url: str, query: str) -> dict:
    async with connect(f"{url}/typed?{query}") as ws:
        return json.loads(await ws.recv())


async def test_conversions_to_declared_types(connect) -> None:
    ident = uuid.uuid4()
    async with serving(typed_app()) as url:
        values = await typed_values(
            connect,
            url,
            f"room=lobby&count=42&ratio=2.5&flag=yes&maybe=-3&tags=a&tags=b%20c&nums=1&nums=2"
            f"&color=green&ident={ident}&plain=x",
        )
        assert values == {
            "room": ["str", "lobby"],
            "count": ["int", 42],
            "ratio": ["float", 2.5],
            "flag": ["bool", True],
            "maybe": ["int", -3],
            "tags": [["str", "a"], ["str", "b c"]],
            "nums": [["int", 1], ["int", 2]],
            "color": ["Color", "green"],
            "ident": ["UUID", str(ident)],
            "plain": ["str", "x"],
        }


async def test_defaults_make_parameters_optional_and_optional_gives_none(connect) -> None:
    async with serving(typed_app()) as url:
        values = await typed_values(connect, url, "room=r")
        assert values == {
            "room": ["str", "r"],
            "count": ["int", 7],
            "ratio": ["float", 0.5],
            "flag": ["bool", False],
            "maybe": ["NoneType", None],
            "tags": [],
            "nums": [],
            "color": ["Color", "red"],
            "ident": ["NoneType", None],
            "plain": ["str", "dflt"],
        }


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("Yes", True),
        ("oN", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("", False),
        ("FALSE", False),
        ("No", False),
        ("OFF", False),
    ],
)
async def test_bool_spellings(connect, raw: str, expected: bool) -> None:
    app = App(__file__)

    @app.websocket("/b")
    async def handler(websocket, flag: bool):
        await websocket.send_json(flag)

    async with serving(app) as url:
        async with connect(f"{url}/b?flag={raw}") as ws:
            assert json.loads(await ws.recv()) is expected


async def test_bare_key_is_an_empty_bool_and_an_empty_str(connect) -> None:
    app = App(__file__)

    @app.websocket("/b")
    async def handler(websocket, flag: bool, name: str):
        await websocket.send_json([flag, name])

    async with serving(app) as url:
        async with connect(f"{url}/b?flag&name") as ws:
            assert json.loads(await ws.recv()) == [False, ""]


async def test_the_last_value_of_a_repeated_key_wins_for_scalars(connect) -> None:
    app = App(__file__)

    @app.websocket("/r")
    async def handler(websocket, page: int):
        await websocket.send_json(page)

    async with serving(app) as url:
        async with connect(f"{url}/r?page=1&page=2&page=3") as ws:
            assert json.loads(await ws.recv()) == 3


async def test_a_parameter_named_query_params_receives_the_whole_object(connect) -> None:
    app = App(__file__)
    seen: list[object] = []

    @app.websocket("/q")
    async def handler(websocket, query_params, room: str = "x"):
        seen.append(query_params)
        await websocket.send_json(
            [
                isinstance(query_params, QueryParams),
                query_params is websocket.query_params,
                query_params.to_dict(),
                room,
            ]
        )

    async with serving(app) as url:
        async with connect(f"{url}/q?room=r1&a=1&a=2") as ws:
            assert json.loads(await ws.recv()) == [
                True,
                True,
                {"room": ["r1"], "a": ["1", "2"]},
                "r1",
            ]


async def test_callbacks_declare_typed_parameters_too(connect) -> None:
    app = App(__file__)
    closed: list[object] = []

    @app.websocket("/cb")
    async def handler(websocket, room: str):
        await websocket.send_text(f"handler {room}")
        await websocket.close()

    @handler.on_connect
    def on_connect(websocket, room: str, page: int = 1):
        return f"connect {room} {page + 1}"

    @handler.on_close
    async def on_close(websocket, page: int, tags: list[int] = []):  # noqa: B006
        closed.append((page, tags))
        return f"close {page * 2} {sum(tags)}"

    async with serving(app) as url:
        async with connect(f"{url}/cb?room=blue&page=20&tags=1&tags=2") as ws:
            messages, end = await ws.recv_closed()
            assert messages == ["connect blue 21", "handler blue", "close 40 3"]
            assert end.code == 1000
    assert closed == [(20, [1, 2])]


def rejecting_app() -> tuple[App, list[str]]:
    app = App(__file__)
    calls: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket, room: str, page: int = 1):
        calls.append("handler")
        await websocket.send_text("handler ran")

    @handler.on_connect
    def on_connect(websocket):
        calls.append("on_connect")
        return "welcome"

    @handler.on_close
    def on_close(websocket):
        calls.append("on_close")

    return app, calls


@pytest.mark.parametrize(
    "query, error",
    [
        ("", "Error: Missing required parameter: 'room'"),
        ("page=2", "Error: Missing required parameter: 'room'"),
        ("room=a&page=abc", "Error: Invalid value 'abc' for parameter 'page': expected int"),
        ("room=a&page=1.5", "Error: Invalid value '1.5' for parameter 'page': expected int"),
    ],
)
async def test_a_rejected_connection_gets_one_error_message_then_1008(
    connect, query: str, error: str
) -> None:
    app, calls = rejecting_app()
    async with serving(app) as url:
        async with connect(f"{url}/ws?{query}") as ws:
            messages, closed = await ws.recv_closed()
        assert messages == [error]
        assert isinstance(messages[0], str)
        assert closed.code == 1008
        await anyio.sleep(0.2)  # nothing runs late either
    assert calls == []


@pytest.mark.parametrize(
    "annotation, raw, type_name",
    [
        ("float", "fast", "float"),
        ("bool", "maybe", "bool"),
        ("Color", "blue", "Color"),
        ("uuid.UUID", "not-a-uuid", "UUID"),
        ("list[int]", "x", "int"),
        ("Optional[int]", "y", "int"),
    ],
)
async def test_invalid_values_of_each_type_are_rejected(
    connect, annotation: str, raw: str, type_name: str
) -> None:
    app = App(__file__)
    namespace = {"Color": Color, "uuid": uuid, "Optional": Optional, "app": app}
    exec(
        "@app.websocket('/ws')\n"
        f"async def handler(websocket, value: {annotation}):\n"
        "    await websocket.send_text('accepted')\n",
        namespace,
    )
    async with serving(app) as url:
        async with connect(f"{url}/ws?value={quote(raw)}") as ws:
            messages, closed = await ws.recv_closed()
    assert messages == [f"Error: Invalid value '{raw}' for parameter 'value': expected {type_name}"]
    assert closed.code == 1008


async def test_a_parameter_required_by_on_close_only_also_rejects(connect) -> None:
    app = App(__file__)
    calls: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        calls.append("handler")

    @handler.on_close
    def on_close(websocket, token: str):
        calls.append("on_close")

    async with serving(app) as url:
        async with connect(f"{url}/ws") as ws:
            messages, closed = await ws.recv_closed()
        assert messages == ["Error: Missing required parameter: 'token'"]
        assert closed.code == 1008
        async with connect(f"{url}/ws?token=t") as ws:
            messages, closed = await ws.recv_closed()
            assert (messages, closed.code) == ([], 1000)
        await eventually(lambda: calls == ["handler", "on_close"], what="handler then on_close")


async def test_optional_without_a_default_is_none_when_absent(connect) -> None:
    app = App(__file__)

    @app.websocket("/o")
    async def handler(websocket, page: int | None, name: str | None, tags: list[int] | None):
        await websocket.send_json([page, name, tags])

    async with serving(app) as url:
        async with connect(f"{url}/o") as ws:
            assert json.loads(await ws.recv()) == [None, None, None]
        async with connect(f"{url}/o?page=3&name=n&tags=1&tags=2") as ws:
            assert json.loads(await ws.recv()) == [3, "n", [1, 2]]
