"""Many connections opened and closed leave nothing behind in the core."""

from __future__ import annotations

import contextlib

import pytest

from conftest import eventually, serving
from roost import App

pytestmark = pytest.mark.anyio

TOTAL = 1000
AT_ONCE = 50


async def test_a_thousand_connections_open_and_close_cleanly(connect) -> None:
    app = App(__file__)
    connects: set[str] = set()
    closes: list[str] = []
    handlers_done = 0

    @app.websocket("/ws")
    async def handler(websocket):
        nonlocal handlers_done
        try:
            async for message in websocket:
                await websocket.send_text(f"{message}!")
        finally:
            handlers_done += 1

    @handler.on_connect
    def on_connect(websocket):
        connects.add(websocket.id)

    @handler.on_close
    def on_close(websocket):
        closes.append(websocket.id)

    peak = 0
    async with serving(app) as url:
        assert app.connection_count() == 0
        for _batch in range(TOTAL // AT_ONCE):
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(connect(url + "/ws")) for _ in range(AT_ONCE)
                ]
                for i, ws in enumerate(clients):
                    await ws.send(str(i))
                for i, ws in enumerate(clients):
                    assert await ws.recv() == f"{i}!"
                peak = max(peak, app.connection_count())
            # Leaving the exit stack closes the batch with close frames.
        await eventually(
            lambda: app.connection_count() == 0,
            timeout=10,
            what="the core's connection count to reach 0",
        )
        await eventually(
            lambda: len(closes) == TOTAL and handlers_done == TOTAL,
            timeout=10,
            what=f"{TOTAL} on_close calls and handler ends",
        )

    assert peak == AT_ONCE
    assert len(connects) == TOTAL
    assert len(closes) == TOTAL and set(closes) == connects
    assert handlers_done == TOTAL


async def test_connections_dropped_without_close_frames_are_cleaned_up_too(connect) -> None:
    app = App(__file__)
    closes: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("hello")
        async for _ in websocket:
            pass

    @handler.on_close
    def on_close(websocket):
        closes.append(websocket.id)

    async with serving(app) as url:
        for _ in range(4):
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(connect(url + "/ws")) for _ in range(AT_ONCE)
                ]
                for ws in clients:
                    assert await ws.recv() == "hello"
                assert app.connection_count() == AT_ONCE
                for ws in clients:
                    ws.abort()
            await eventually(
                lambda: app.connection_count() == 0,
                timeout=10,
                what="the core's connection count to reach 0",
            )
        await eventually(lambda: len(closes) == 4 * AT_ONCE, timeout=10, what="on_close calls")
