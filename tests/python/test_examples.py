"""Every program of examples/python, run as a user runs it (`--port 0 --backend X`)
and driven by a real client."""

from __future__ import annotations

import json
import re
import uuid

import anyio
import pytest

from conftest import EXAMPLES, RawClient, open_socket, port_of, running_program, status_of

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


async def test_echo(connect, roost_backend) -> None:
    async with example("echo.py", roost_backend) as program:
        assert f"({roost_backend})" in program.first_line
        async with connect(program.url + "/web_socket") as ws:
            for message in ("hello", "héllo ✓", ""):
                await ws.send(message)
                assert await ws.recv() == f"Echo: {message}"


async def test_receive(connect, roost_backend) -> None:
    async with example("receive.py", roost_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("one")
            assert await ws.recv() == "Got: one"
            await ws.send(b"two")  # binary, decoded by receive_text()
            assert await ws.recv() == "Got: two"
        with anyio.fail_after(5):
            while b"disconnected" not in program.output:
                await anyio.sleep(0.02)
    assert re.search(rf"Client {UUID_RE} disconnected", program.output.decode())


async def test_send(connect, roost_backend) -> None:
    async with example("send.py", roost_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("Zoë")
            assert await ws.recv() == "Echo: Zoë"
            assert await ws.recv() == "Zoë".encode()
            reply = await ws.recv()
            assert reply == '{"echo":"Zoë","length":3}'
            assert json.loads(reply) == {"echo": "Zoë", "length": 3}


async def test_broadcast(connect, roost_backend) -> None:
    async with example("broadcast.py", roost_backend) as program:
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


async def test_query_params(connect, roost_backend) -> None:
    async with example("query_params.py", roost_backend) as program:
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


async def test_typed_query_params(connect, roost_backend) -> None:
    async with example("typed_query_params.py", roost_backend) as program:
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


async def test_close(connect, roost_backend) -> None:
    async with example("close.py", roost_backend) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("a")
            assert await ws.recv() == "Got: a"
            await ws.send("quit")
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1000)


async def test_callbacks(connect, roost_backend) -> None:
    async with example("callbacks.py", roost_backend) as program:
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


async def get(url: str, path: str) -> tuple[str, bytes]:
    """GET `path` over HTTP: (the response head, the body)."""
    async with RawClient(await open_socket(port_of(url))) as client:
        await client.send_raw(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = (await client.read_until(b"\r\n\r\n")).decode("latin-1")
        length = re.search(r"(?im)^content-length: *(\d+)", head)
        assert length, head
        body = await client.read_exactly(int(length.group(1)))
        assert body is not None, head
        return head, body


async def test_chat(connect, roost_backend) -> None:
    async with example("chat.py", roost_backend) as program:
        # The page, its script and its style sheet, beside the WebSocket.
        head, body = await get(program.url, "/")
        assert status_of(head) == 200 and "text/html" in head.lower(), head
        assert b"<title>Roost chat</title>" in body
        for path, kind in (("/chat.js", "javascript"), ("/chat.css", "text/css")):
            head, body = await get(program.url, path)
            assert status_of(head) == 200 and kind in head.lower() and body, head

        def joined(name: str, *people: str) -> dict:
            return {"type": "joined", "name": name, "people": list(people)}

        async def recv_json(ws) -> dict:
            return json.loads(await ws.recv())

        async with connect(program.url + "/chat?name=alice&room=garden") as alice:
            assert await recv_json(alice) == joined("alice", "alice")
            async with connect(program.url + "/chat?name=bob&room=garden") as bob:
                assert await recv_json(bob) == joined("bob", "alice", "bob")
                assert await recv_json(alice) == joined("bob", "alice", "bob")
                await alice.send(json.dumps({"text": "hi bob <b>"}))
                for ws in (alice, bob):
                    assert await recv_json(ws) == {
                        "type": "message",
                        "name": "alice",
                        "text": "hi bob <b>",
                    }
                await bob.send(b'{"text": "binary hi"}')  # JSON in a binary message
                for ws in (alice, bob):
                    assert (await recv_json(ws))["text"] == "binary hi"
                too_long = json.dumps({"text": "x" * 2001})
                for wrong in ("hi", '{"text": ""}', '{"text": 3}', '["hi"]', too_long):
                    await bob.send(wrong)
                    error = await recv_json(bob)
                    assert error["type"] == "error" and "1 to 2000 characters" in error["text"]
                await alice.recv_nothing()  # errors go to the sender only
                async with connect(program.url + "/chat?name=carol&room=kitchen") as carol:
                    assert await recv_json(carol) == joined("carol", "carol")
                    await carol.send('{"text": "anyone?"}')
                    assert (await recv_json(carol))["text"] == "anyone?"
                    await alice.recv_nothing()  # another room hears nothing
            assert await recv_json(alice) == {"type": "left", "name": "bob", "people": ["alice"]}
            # Names and rooms: white space folded, cut to 32 characters; a client
            # without a name gets a guest's, without a room the lobby.
            long_name = "%20Zo%C3%AB%0A%20" + "x" * 40
            async with connect(f"{program.url}/chat?name={long_name}&room=%20garden%20") as zoe:
                name = "Zoë " + "x" * 28  # listed after alice: case does not count
                assert await recv_json(zoe) == joined(name, "alice", name)
                assert await recv_json(alice) == joined(name, "alice", name)
            assert (await recv_json(alice))["type"] == "left"
            async with connect(program.url + "/chat") as guest:
                event = await recv_json(guest)
                assert re.fullmatch(r"guest-[0-9a-f]{4}", event["name"]), event
                assert event == joined(event["name"], event["name"])
            await alice.recv_nothing()  # the guest was in the lobby


async def test_rooms(connect, roost_backend) -> None:
    async with example("rooms.py", roost_backend) as program:
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
