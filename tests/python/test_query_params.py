"""websocket.query_params: parsed as a URL query string, seen through a real client."""

from __future__ import annotations

import json

import pytest

from conftest import serving
from roost import App, QueryParams

pytestmark = pytest.mark.anyio


def inspecting_app() -> App:
    app = App(__file__)

    @app.websocket("/q")
    async def handler(websocket):
        q = websocket.query_params
        asked = json.loads(await websocket.receive_text())
        await websocket.send_json(
            {
                "get": {name: q.get(name) for name in asked},
                "get_default": {name: q.get(name, "DEFAULT") for name in asked},
                "get_all": {name: q.get_all(name) for name in asked},
                "in": {name: name in q for name in asked},
                "keys": list(q.keys()),
                "items": [list(item) for item in q.items()],
                "to_dict": q.to_dict(),
            }
        )

    return app


async def inspect(connect, url: str, query: str, *names: str) -> dict:
    async with connect(f"{url}/q?{query}" if query else f"{url}/q") as ws:
        await ws.send(json.dumps(list(names)))
        return json.loads(await ws.recv())


async def test_percent_decoding_and_plus_as_space(connect) -> None:
    async with serving(inspecting_app()) as url:
        r = await inspect(
            connect,
            url,
            "greeting=hello+world&path=%2Fa%2Fb%3Fc%3Dd&emoji=%E2%9C%93&sp=a%20b"
            "&pl=1%2B1&na%6De=encoded+key&amp=%26",
            "greeting",
            "path",
            "emoji",
            "sp",
            "pl",
            "name",
            "amp",
        )
    assert r["get"] == {
        "greeting": "hello world",
        "path": "/a/b?c=d",
        "emoji": "✓",
        "sp": "a b",
        "pl": "1+1",
        "name": "encoded key",
        "amp": "&",
    }


async def test_bare_key_and_empty_value_give_empty_strings(connect) -> None:
    async with serving(inspecting_app()) as url:
        r = await inspect(connect, url, "bare&empty=&full=1", "bare", "empty", "full", "absent")
    assert r["get"] == {"bare": "", "empty": "", "full": "1", "absent": None}
    assert r["get_default"] == {"bare": "", "empty": "", "full": "1", "absent": "DEFAULT"}
    assert r["in"] == {"bare": True, "empty": True, "full": True, "absent": False}


async def test_keys_are_case_sensitive(connect) -> None:
    async with serving(inspecting_app()) as url:
        r = await inspect(connect, url, "Name=upper&name=lower", "Name", "name", "NAME")
    assert r["get"] == {"Name": "upper", "name": "lower", "NAME": None}
    assert r["keys"] == ["Name", "name"]


async def test_repeated_keys_get_last_and_get_all_every_value(connect) -> None:
    async with serving(inspecting_app()) as url:
        r = await inspect(connect, url, "a=1&b=x&a=2&a=3", "a", "b", "c")
    assert r["get"] == {"a": "3", "b": "x", "c": None}
    assert r["get_all"] == {"a": ["1", "2", "3"], "b": ["x"], "c": []}
    assert r["keys"] == ["a", "b"]
    assert r["items"] == [["a", "3"], ["b", "x"]]
    assert r["to_dict"] == {"a": ["1", "2", "3"], "b": ["x"]}


async def test_no_query_string_gives_an_empty_object(connect) -> None:
    async with serving(inspecting_app()) as url:
        r = await inspect(connect, url, "", "a")
    assert r["get"] == {"a": None}
    assert r["keys"] == [] and r["items"] == [] and r["to_dict"] == {}


def test_query_params_class_directly() -> None:
    q = QueryParams("x=1&y=%C3%A9&x=2&z")
    assert q.get("x") == "2"
    assert q.get_all("x") == ["1", "2"]
    assert q.get("y") == "é"
    assert q.get("z") == ""
    assert q.get("missing", "d") == "d"
    assert "z" in q and "Z" not in q
    assert q.keys() == ["x", "y", "z"]
    assert q.items() == [("x", "2"), ("y", "é"), ("z", "")]
    assert q.to_dict() == {"x": ["1", "2"], "y": ["é"], "z": [""]}
    # to_dict() gives a copy
    q.to_dict()["x"].append("3")
    assert q.get_all("x") == ["1", "2"]
