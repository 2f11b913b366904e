"""Misuse gets a clear error, at decoration time where possible."""

from __future__ import annotations

import json

import anyio
import pytest

from conftest import eventually, serving
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


def test_a_non_async_handler_is_a_type_error_at_decoration() -> None:
    app = App(__file__)
    with pytest.raises(TypeError, match="async"):

        @app.websocket("/ws")
        def handler(websocket):
            pass

    with pytest.raises(TypeError, match="async"):
        app.websocket("/gen")(lambda websocket: None)

    # The failed registration left the path free.
    @app.websocket("/ws")
    async def fine(websocket):
        pass


def test_a_path_registered_twice_is_a_value_error() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def first(websocket):
        pass

    with pytest.raises(ValueError, match="/ws"):

        @app.websocket("/ws")
        async def second(websocket):
            pass

    # Another app is independent.
    other = App(__file__)

    @other.websocket("/ws")
    async def third(websocket):
        pass


@pytest.mark.parametrize("path", ["ws", "", "/ws?x=1", 42])
def test_an_invalid_path_is_a_value_error(path) -> None:
    app = App(__file__)
    with pytest.raises(ValueError):
        app.websocket(path)


def test_start_with_an_unknown_backend_is_a_value_error() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    with pytest.raises(ValueError, match="backend"):
        app.start(port=0, backend="x")


async def test_serve_with_no_routes_is_a_runtime_error() -> None:
    app = App(__file__)
    with pytest.raises(RuntimeError, match="route"):
        await app.serve("127.0.0.1", 0)


async def test_serving_twice_at_once_is_a_runtime_error() -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    async with serving(app):
        with pytest.raises(RuntimeError, match="already serving"):
            await app.serve("127.0.0.1", 0)


async def test_an_app_serves_again_after_stopping(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("hi")

    for _ in range(2):
        async with serving(app) as url:
            async with connect(url + "/ws") as ws:
                assert await ws.recv() == "hi"
        assert app.port is None


async def test_wrong_close_arguments(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        results = {}
        for label, args in [
            ("1005", (1005,)),
            ("1006", (1006,)),
            ("1004", (1004,)),
            ("999", (999,)),
            ("5000", (5000,)),
            ("1015", (1015,)),
            ("long reason", (1000, "x" * 124)),
        ]:
            try:
                await websocket.close(*args)
                results[label] = "closed"
            except ValueError:
                results[label] = "ValueError"
        for label, args in [
            ("str code", ("1000",)),
            ("bytes reason", (1000, b"r")),
            ("bool code", (True,)),
        ]:
            try:
                await websocket.close(*args)
                results[label] = "closed"
            except TypeError:
                results[label] = "TypeError"
        await websocket.send_json(results)
        await websocket.close(4999, "x" * 123)  # the largest valid ones still work

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            messages, end = await ws.recv_closed()
    assert [json.loads(m) for m in messages] == [
        {
            "1005": "ValueError",
            "1006": "ValueError",
            "1004": "ValueError",
            "999": "ValueError",
            "5000": "ValueError",
            "1015": "ValueError",
            "long reason": "ValueError",
            "str code": "TypeError",
            "bytes reason": "TypeError",
            "bool code": "TypeError",
        }
    ]
    assert (end.code, end.reason) == (4999, "x" * 123)


async def test_send_after_close_and_two_receivers(connect) -> None:
    app = App(__file__)
    results: dict[str, str] = {}

    @app.websocket("/ws")
    async def handler(websocket):
        async with anyio.create_task_group() as tg:
            started = anyio.Event()

            async def first_receiver():
                started.set()
                try:
                    await websocket.receive_bytes()
                except WebSocketDisconnect:
                    results["first receiver"] = "WebSocketDisconnect"

            tg.start_soon(first_receiver)
            await started.wait()
            try:
                await websocket.receive_json()
            except RuntimeError as error:
                results["second receiver"] = f"RuntimeError: {error}"
            await websocket.close()
        try:
            await websocket.send_text("late")
        except WebSocketDisconnect:
            results["send after close"] = "WebSocketDisconnect"
        try:
            await websocket.receive_text()
        except WebSocketDisconnect:
            results["receive after close"] = "WebSocketDisconnect"

    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.recv_closed()
        await eventually(lambda: len(results) == 4, what="the handler to finish")
    assert results.pop("second receiver").startswith("RuntimeError: ")
    assert results == {
        "first receiver": "WebSocketDisconnect",
        "send after close": "WebSocketDisconnect",
        "receive after close": "WebSocketDisconnect",
    }


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        App(__file__, max_message_size=-1)
    with pytest.raises(TypeError):
        App(__file__, outbound_queue_bytes="big")
    with pytest.raises(ValueError):
        App(__file__, ping_timeout=-1)


def test_a_handler_without_a_websocket_parameter_is_a_type_error() -> None:
    app = App(__file__)
    with pytest.raises(TypeError):

        @app.websocket("/ws")
        async def handler():
            pass
