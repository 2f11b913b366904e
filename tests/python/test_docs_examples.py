"""Each code block of Robyn's WebSockets documentation page, run on Roost with only the
import line changed: `from roost import Robyn, WebSocketDisconnect`. The blocks that
are only a handler get the docs' own surroundings (`app = Robyn(__file__)` before,
`app.start()` after). Each program is run as a subprocess with ROOST_PORT=0 and
ROOST_BACKEND set to asyncio, then trio, and driven by a real client."""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import pytest

from conftest import SERVING_PREFIX, running_program

pytestmark = pytest.mark.anyio

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

IMPORT_LINE = "from roost import Robyn, WebSocketDisconnect"

# The blocks, verbatim from the documentation page.

REQUEST = """\
from robyn import Robyn

app = Robyn(__file__)

@app.websocket("/web_socket")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")

app.start()
"""

RECEIVING = """\
@app.websocket("/ws")
async def handler(websocket):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"Got: {msg}")
    except WebSocketDisconnect:
        print(f"Client {websocket.id} disconnected")
"""

SENDING = """\
@app.websocket("/ws")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")
"""

BROADCASTING = """\
@app.websocket("/chat")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        # Send to all connected clients
        await websocket.broadcast(f"User {websocket.id}: {msg}")
        # Also send a confirmation to this client only
        await websocket.send_text("Your message was sent")
"""

QUERY_PARAMS = """\
@app.websocket("/ws")
async def handler(websocket):
    name = websocket.query_params.get("name")
    role = websocket.query_params.get("role")

    if name == "gordon" and role == "commissioner":
        await websocket.broadcast("Gordon authorized!")

    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Hello {name}: {msg}")
"""

EASY_ACCESS = """\
@app.websocket("/ws")
async def handler(websocket, room: str = "default", page: int = 1):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(
                f"room={room} page={page} msg={msg}"
            )
    except WebSocketDisconnect:
        pass
"""

CLOSING = """\
@app.websocket("/ws")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        if msg == "quit":
            await websocket.close()
            break
        await websocket.send_text(f"Got: {msg}")
"""

CALLBACKS = """\
@app.websocket("/chat")
async def chat(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.broadcast(msg)

@chat.on_connect
def on_connect(websocket):
    return f"Welcome, {websocket.id}!"

@chat.on_close
def on_close(websocket):
    return "Goodbye!"
"""


def program_text(block: str) -> str:
    if block.startswith("from robyn import Robyn\n"):
        return block.replace("from robyn import Robyn\n", IMPORT_LINE + "\n", 1)
    return f"{IMPORT_LINE}\n\napp = Robyn(__file__)\n\n{block}\napp.start()\n"


def docs_program(tmp_path: Path, block: str, backend: str):
    source = program_text(block)
    assert block.rstrip("\n").replace("from robyn import Robyn", IMPORT_LINE) in source
    assert source.rstrip().endswith("app.start()")
    path = tmp_path / "docs_example.py"
    path.write_text(source)
    return running_program(
        [str(path)], env={"ROOST_PORT": "0", "ROOST_BACKEND": backend}, cwd=tmp_path
    )


def check_serving_line(program, backend: str) -> None:
    assert program.first_line == (
        f"{SERVING_PREFIX}127.0.0.1:{program.port} ({backend}); Ctrl+C stops"
    )


async def test_request_echo(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, REQUEST, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/web_socket") as ws:
            await ws.send("Hello, Batman")
            assert await ws.recv() == "Echo: Hello, Batman"
            await ws.send("again")
            assert await ws.recv() == "Echo: again"


async def test_receiving_messages(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, RECEIVING, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/ws") as ws:
            await ws.send("signal")
            assert await ws.recv() == "Got: signal"
            await ws.send("second")
            assert await ws.recv() == "Got: second"
    # The handler caught WebSocketDisconnect and printed (flushed at exit).
    assert re.search(rf"^Client {UUID_RE} disconnected$", program.output.decode(), re.MULTILINE)


async def test_sending_messages(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, SENDING, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/ws") as ws:
            await ws.send("to the Batcave")
            assert await ws.recv() == "Echo: to the Batcave"


async def test_broadcasting(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, BROADCASTING, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/chat") as batman:
            # Batman hears his own broadcast: he has joined before robin connects. (A
            # client joins broadcasts when its handler starts, and which of two new
            # handlers starts first is the event loop's choice; trio varies it.)
            await batman.send("here")
            assert re.fullmatch(rf"User {UUID_RE}: here", await batman.recv())
            assert await batman.recv() == "Your message was sent"
            async with connect(program.url + "/chat") as robin:
                await robin.send("ready")  # robin's handler is running before batman speaks
                from_robin = await robin.recv()
                assert re.fullmatch(rf"User {UUID_RE}: ready", from_robin)
                assert await robin.recv() == "Your message was sent"
                assert await batman.recv() == from_robin
                await batman.send("Joker spotted")
                broadcast = await batman.recv()
                assert re.fullmatch(rf"User {UUID_RE}: Joker spotted", broadcast)
                assert broadcast.split(":")[0] != from_robin.split(":")[0]
                assert await batman.recv() == "Your message was sent"
                assert await robin.recv() == broadcast
                await robin.recv_nothing(0.2)  # the confirmation went to batman only


async def test_query_parameters(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, QUERY_PARAMS, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/ws?name=alfred") as alfred:
            await alfred.send("tea?")
            assert await alfred.recv() == "Hello alfred: tea?"
            async with connect(program.url + "/ws?name=gordon&role=commissioner") as gordon:
                assert await gordon.recv() == "Gordon authorized!"
                assert await alfred.recv() == "Gordon authorized!"
                await gordon.send("status")
                assert await gordon.recv() == "Hello gordon: status"


async def test_easy_access_query_parameters(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, EASY_ACCESS, roost_backend) as program:
        check_serving_line(program, roost_backend)
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


async def test_closing_connections(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, CLOSING, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/ws") as ws:
            await ws.send("hello")
            assert await ws.recv() == "Got: hello"
            await ws.send("quit")
            messages, end = await ws.recv_closed()
            assert messages == []
            assert end.code == 1000


async def test_connect_and_close_callbacks(tmp_path, connect, roost_backend) -> None:
    async with docs_program(tmp_path, CALLBACKS, roost_backend) as program:
        check_serving_line(program, roost_backend)
        async with connect(program.url + "/chat") as a, connect(program.url + "/chat") as b:
            ids = []
            for ws in (a, b):
                welcome = await ws.recv()
                match = re.fullmatch(r"Welcome, (.+)!", welcome)
                assert match, welcome
                assert str(uuid.UUID(match.group(1))) == match.group(1)
                ids.append(match.group(1))
            assert ids[0] != ids[1]
            await a.send("hello league")
            assert await a.recv() == "hello league"
            assert await b.recv() == "hello league"
            program.send_signal(signal.SIGINT)
            for ws in (a, b):
                messages, end = await ws.recv_closed()
                # Whether on_close's "Goodbye!" goes out on shutdown is not specified.
                assert messages in ([], ["Goodbye!"])
                assert end.code == 1001
