"""Every program of examples/python, run as a user runs it (`--port 0 --backend X`)
and driven by a real client."""

from __future__ import annotations

import json
import re
import uuid

import anyio
import pytest

from conftest import EXAMPLES, running_program

pytestmark = pytest.mark.anyio

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def example(name: str, backend: str):
    return running_program(
        [str(EXAMPLES / name), "--port", "0", "--backend", backend], cwd=EXAMPLES
    )


def test_every_example_has_a_test() -> None:
    programs = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    tested = {
        name[len("test_") :] + ".py"
        for name in globals()
        if name.startswith("test_") and (EXAMPLES / (name[len("test_") :] + ".py")).exists()
    }
    assert programs == tested


async def test_echo(connect, anyio_backend) -> None:
    async with example("echo.py", anyio_backend) as program:
        assert f"({anyio_backend})" in program.first_line
        async with connect(program.url + "/web_socket") as ws:
            for message in ("hello", "héllo ✓", ""):
                await ws.send(message)
                assert await ws.recv() == f"Echo: {message}"


async def test_receive(connect, anyio_backend) -> None:
    async with example("receive.py", anyio_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("one")
            assert await ws.recv() == "Got: one"
            await ws.send(b"two")  # binary, decoded by receive_text()
            assert await ws.recv() == "Got: two"
        with anyio.fail_after(5):
            while b"disconnected" not in program.output:
                await anyio.sleep(0.02)
    assert re.search(rf"Client {UUID_RE} disconnected", program.output.decode())


async def test_send(connect, anyio_backend) -> None:
    async with example("send.py", anyio_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("Zoë")
            assert await ws.recv() == "Echo: Zoë"
            assert await ws.recv() == "Zoë".encode()
            reply = await ws.recv()
            assert reply == '{"echo":"Zoë","length":3}'
            assert json.loads(reply) == {"echo": "Zoë", "length": 3}


async def test_broadcast(connect, anyio_backend) -> None:
    async with example("broadcast.py", anyio_backend) as program:
        # A client joins the broadcasts just before its handler starts, which a finished
        # handshake does not wait for: each client speaks once, its own broadcast coming
        # back, before it is expected to hear the others. b connects after a has.
        async with connect(program.url + "/chat") as a:
            await a.send("ping")
            match = re.fullmatch(rf"User ({UUID_RE}): ping", await a.recv())
            assert match
            a_id = match.group(1)
            assert await a.recv() == "Your message was sent"
            async with connect(program.url + "/chat") as b:
                await b.send("hello")
                from_b = await b.recv()
                assert re.fullmatch(rf"User ({UUID_RE}): hello", from_b)
                assert a_id not in from_b
                assert await b.recv() == "Your message was sent"
                assert await a.recv() == from_b
                await a.recv_nothing(0.2)  # the receipt went to b only
                await a.send("again")
                from_a = await a.recv()
                assert from_a == f"User {a_id}: again"
                assert await a.recv() == "Your message was sent"
                assert await b.recv() == from_a
                await b.recv_nothing(0.2)  # and this one to a only


async def test_query_params(connect, anyio_backend) -> None:
    async with example("query_params.py", anyio_backend) as program:
        async with connect(program.url + "/ws?name=robin") as robin:
            await robin.send("hi")
            assert await robin.recv() == "Hello robin: hi"
            async with connect(program.url + "/ws?name=gordon&role=commissioner") as gordon:
                assert await gordon.recv() == "Gordon authorized!"
                assert await robin.recv() == "Gordon authorized!"
                await gordon.send("report")
                assert await gordon.recv() == "Hello gordon: report"
            async with connect(program.url + "/ws?name=gordon&role=intern") as intern:
                await intern.send("x")
                assert await intern.recv() == "Hello gordon: x"
            await robin.recv_nothing(0.2)
        async with connect(program.url + "/ws") as anonymous:
            await anonymous.send("y")
            assert await anonymous.recv() == "Hello None: y"


async def test_typed_query_params(connect, anyio_backend) -> None:
    async with example("typed_query_params.py", anyio_backend) as program:
        async with connect(program.url + "/ws?room=chat&page=5") as ws:
            await ws.send("hi")
            assert await ws.recv() == "room=chat page=5 msg=hi"
        async with connect(program.url + "/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "room=default page=1 msg=hi"
        async with connect(program.url + "/ws?page=abc") as ws:
            messages, end = await ws.recv_closed()
            assert messages == ["Error: Invalid value 'abc' for parameter 'page': expected int"]
            assert end.code == 1008
        async with connect(program.url + "/rooms?limit=3") as ws:
            messages, end = await ws.recv_closed()
            assert messages == ["Error: Missing required parameter: 'room'"]
            assert end.code == 1008
        async with connect(program.url + "/rooms?room=r&limit=3") as ws:
            assert await ws.recv() == "joined r (limit 3)"
            await ws.send("m")
            assert await ws.recv() == "r: m"


async def test_close(connect, anyio_backend) -> None:
    async with example("close.py", anyio_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("a")
            assert await ws.recv() == "Got: a"
            await ws.send("quit")
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1000)


async def test_callbacks(connect, anyio_backend) -> None:
    async with example("callbacks.py", anyio_backend) as program:
        async with connect(program.url + "/chat") as a, connect(program.url + "/chat") as b:
            welcome_a, welcome_b = await a.recv(), await b.recv()
            for welcome in (welcome_a, welcome_b):
                match = re.fullmatch(r"Welcome, (.+)!", welcome)
                assert match and str(uuid.UUID(match.group(1))) == match.group(1)
            assert welcome_a != welcome_b
            await a.send("to everyone")
            assert await a.recv() == "to everyone"
            assert await b.recv() == "to everyone"
            await a.send("bye")
            messages, end = await a.recv_closed()
            assert messages == ["Goodbye!"]
            assert end.code == 1000
            await b.send("still here")
            assert await b.recv() == "still here"


async def test_chat(connect, anyio_backend) -> None:
    async with example("chat.py", anyio_backend) as program:
        async with connect(program.url + "/chat?name=alice") as alice:
            assert (await alice.recv()).startswith("Welcome to the chat, alice.")
            assert await alice.recv() == "* alice joined"
            async with connect(program.url + "/chat?name=bob") as bob:
                assert (await bob.recv()).startswith("Welcome to the chat, bob.")
                assert await bob.recv() == "* bob joined"
                assert await alice.recv() == "* bob joined"
                await alice.send("hi bob")
                assert await alice.recv() == "alice: hi bob"
                assert await bob.recv() == "alice: hi bob"
                await bob.send(b"binary hi")
                assert await alice.recv() == "bob: binary hi"
                assert await bob.recv() == "bob: binary hi"
            assert await alice.recv() == "* bob left"
            # Connect while nobody is speaking: a broadcast racing with on_connect can
            # overtake the welcome (see test_welcome_comes_first.py).
            async with connect(program.url + "/chat") as anonymous:
                welcome = await anonymous.recv()
                short_id = re.fullmatch(r"Welcome to the chat, ([0-9a-f]{8})\. .*", welcome)
                assert short_id, welcome
                joined = f"* {short_id.group(1)} joined"
                assert await anonymous.recv() == joined
                assert await alice.recv() == joined


async def test_rooms(connect, anyio_backend) -> None:
    async with example("rooms.py", anyio_backend) as program:
        # One at a time: a client is in the lobby once its handler has started, and
        # which of two new handlers starts first is the event loop's choice.
        async with connect(program.url + "/rooms?name=alice") as alice:
            assert await alice.recv() == "* alice joined lobby"
            async with connect(program.url + "/rooms?name=bob") as bob:
                assert await bob.recv() == "* bob joined lobby"
                assert await alice.recv() == "* bob joined lobby"
                await alice.send("hello lobby")
                for ws in (alice, bob):
                    assert await ws.recv() == "[lobby] alice: hello lobby"
                await bob.send("/join kitchen")
                assert await bob.recv() == "* bob joined kitchen"
                assert await alice.recv() == "* bob left for kitchen"
                await bob.send("anyone?")
                assert await bob.recv() == "[kitchen] bob: anyone?"
                await alice.recv_nothing(0.3)  # another room hears nothing
                await alice.send("/who")
                assert await alice.recv() == "1 in lobby"
                async with connect(program.url + "/rooms?name=carol") as carol:
                    assert await carol.recv() == "* carol joined lobby"
                    assert await alice.recv() == "* carol joined lobby"
                    await carol.send("/join kitchen")
                    assert await carol.recv() == "* carol joined kitchen"
                    assert await bob.recv() == "* carol joined kitchen"
                    assert await alice.recv() == "* carol left for kitchen"
                    await carol.send(b"binary hi")
                    assert await bob.recv() == "[kitchen] carol: binary hi"
                    assert await carol.recv() == "[kitchen] carol: binary hi"
                    await carol.send("/join ")
                    assert await carol.recv() == "usage: /join NAME"
                assert await bob.recv() == "* carol left"
                await alice.recv_nothing(0.3)
