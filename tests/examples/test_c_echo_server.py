"""The C example server, run as a user would, answering a real `websockets` client."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "c" / "echo_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_url():
    port = free_port()
    proc = subprocess.Popen([str(SERVER), str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert f"ws://127.0.0.1:{port}" in line, line
    yield f"ws://127.0.0.1:{port}"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_ws_route_echoes_text_with_prefix(server_url):
    async def scenario():
        async with websockets.connect(f"{server_url}/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "Echo: hi"
            await ws.send("héllo ✓")
            assert await ws.recv() == "Echo: héllo ✓"

    run(scenario())


def test_chat_route_relays_to_every_client_sender_included(server_url):
    async def scenario():
        clients = [await websockets.connect(f"{server_url}/chat") for _ in range(3)]
        await asyncio.sleep(0.1)  # let every connect event reach the server loop
        await clients[0].send("hello room")
        received = [await c.recv() for c in clients]
        assert received == ["hello room"] * 3
        for c in clients:
            await c.close()

    run(scenario())


async def nothing_arrives(ws) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), timeout=0.3)


def test_pub_route_publishes_to_the_subscribers_of_its_topic(server_url):
    async def scenario():
        news = [await websockets.connect(f"{server_url}/sub?topic=news") for _ in range(2)]
        other = await websockets.connect(f"{server_url}/sub?x=1&topic=other")
        publisher = await websockets.connect(f"{server_url}/pub?topic=news")
        await asyncio.sleep(0.1)  # let every connect event reach the server loop
        await publisher.send("headline ✓")
        await publisher.send(b"\x00\xff")
        for ws in news:
            assert await ws.recv() == "headline ✓"
            assert await ws.recv() == b"\x00\xff"
        await nothing_arrives(other)
        await nothing_arrives(publisher)
        # What a subscriber sends goes nowhere.
        await news[0].send("ignored")
        await nothing_arrives(news[1])
        for ws in [*news, other, publisher]:
            await ws.close()

    run(scenario())


@pytest.mark.parametrize("target", ["/sub", "/pub?topic=", "/sub?topics=x"])
def test_topic_routes_close_a_client_without_a_topic_with_1008(server_url, target):
    async def scenario():
        async with websockets.connect(f"{server_url}{target}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    run(scenario())


def test_sigterm_closes_clients_with_1001_and_exits_zero():
    port = free_port()
    proc = subprocess.Popen([str(SERVER), str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send("ping")
            assert await ws.recv() == "Echo: ping"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

    run(scenario())
    assert proc.wait(timeout=10) == 0


def test_occupied_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(SERVER), str(port)], capture_output=True, text=True, timeout=10
        )
    assert result.returncode != 0
    assert "roost_server_start failed" in result.stderr
    assert "in use" in result.stderr.lower()
