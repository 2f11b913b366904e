"""What a new client hears first: on_connect's greeting, or a rejection's error
message, comes before anything else, broadcasts from other clients included.

SEMANTICS: on_connect's "return value is the first message the client receives"; a
rejected client "receives exactly one text message ... then a close frame 1008"."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from conftest import eventually, serving
from roost import App

pytestmark = pytest.mark.anyio


async def test_a_broadcast_during_on_connect_comes_after_the_greeting(connect) -> None:
    app = App(__file__)
    members: list = []
    release = anyio.Event()

    @app.websocket("/room")
    async def room(websocket, name: str):
        members.append(websocket)
        await websocket.receive_text()

    @room.on_connect
    async def greet(websocket, name: str):
        if name == "late":
            await release.wait()  # a slow on_connect (a database lookup, say)
        return f"welcome {name}"

    async with serving(app) as url:
        async with connect(url + "/room?name=early") as early:
            assert await early.recv() == "welcome early"
            await eventually(lambda: len(members) == 1, what="the first member")
            async with connect(url + "/room?name=late") as late:
                await anyio.sleep(0.1)  # late is connected, its on_connect still running
                await members[0].broadcast("news")
                release.set()
                first = await late.recv()
                assert first == "welcome late", f"first message was {first!r}"


async def test_a_rejected_client_hears_only_its_error_even_while_others_broadcast(connect) -> None:
    app = App(__file__)
    members: list = []

    @app.websocket("/room")
    async def room(websocket, name: str):
        members.append(websocket)
        await websocket.receive_text()

    async with serving(app) as url:
        async with connect(url + "/room?name=chatty") as _chatty:
            await eventually(lambda: len(members) == 1, what="the first member")
            stop = anyio.Event()

            async def keep_broadcasting() -> None:
                while not stop.is_set():
                    await members[0].broadcast("tick")
                    await anyio.lowlevel.checkpoint()

            heard: list[list] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_broadcasting)
                for _ in range(5):
                    async with connect(url + "/room") as rejected:  # no name: rejected
                        messages, end = await rejected.recv_closed()
                        heard.append(messages)
                        assert end.code == 1008
                stop.set()
            assert heard == [["Error: Missing required parameter: 'name'"]] * 5
