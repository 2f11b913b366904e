"""Connections whose handler does not read: the client leaving must still be noticed
promptly (on_close runs, the core forgets the connection), also once the inbound
queue is full and the server has stopped reading the socket."""

from __future__ import annotations

import anyio
import pytest

from conftest import eventually, serving
from roost import App

pytestmark = pytest.mark.anyio


def idle_app() -> tuple[App, list[float], anyio.Event]:
    app = App(__file__, inbound_queue_depth=16, shutdown_grace=1.0)
    closed_at: list[float] = []
    done = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket):
        await done.wait()  # never reads: waits for something else entirely

    @handler.on_close
    def on_close(websocket):
        closed_at.append(anyio.current_time())

    return app, closed_at, done


@pytest.mark.parametrize("how", ["close frame", "tcp drop"])
async def test_a_client_leaving_with_a_few_unread_messages_is_noticed(connect, how) -> None:
    app, closed_at, done = idle_app()
    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            for i in range(3):
                await ws.send(f"unread {i}")
            await anyio.sleep(0.1)
            left_at = anyio.current_time()
            if how == "tcp drop":
                ws.abort()
            else:
                await ws.close(1000)
        await eventually(lambda: bool(closed_at), timeout=2, what="on_close")
        assert closed_at[0] - left_at < 1.0
        await eventually(lambda: app.connection_count() == 0, timeout=2, what="count 0")
        done.set()


async def test_a_tcp_drop_behind_a_full_inbound_queue_is_noticed(connect) -> None:
    """With more unread messages than the queue holds, the server stops reading the
    socket; a dropped TCP connection must still end the connection promptly."""
    app, closed_at, done = idle_app()
    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            for i in range(40):
                await ws.send(f"unread {i}")
            await anyio.sleep(0.2)  # the server has read up to its limit and paused
            left_at = anyio.current_time()
            ws.abort()
        await eventually(
            lambda: bool(closed_at),
            timeout=3,
            what="on_close after a TCP drop behind a full inbound queue",
        )
        assert closed_at[0] - left_at < 2.0
        await eventually(lambda: app.connection_count() == 0, timeout=2, what="count 0")
        done.set()
