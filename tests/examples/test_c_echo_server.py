"""The C example server, run as a user would, answering a real `websockets` client."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
import websockets

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "c" / "echo_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, *, expect_scheme: str = "ws", **env: str) -> subprocess.Popen[str]:
    """An echo_server on `port`, with `env` added to its environment, once it listens
    (on `expect_scheme`://, wss with ROOST_TLS_CERT and ROOST_TLS_KEY)."""
    proc = subprocess.Popen(
        [str(SERVER), str(port)], stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert f" {expect_scheme}://127.0.0.1:{port}" in line, line
    return proc


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


@pytest.fixture(params=["core-thread", "inline-io"])
def server_url(request):
    """The example with the core on a thread of its own, and on the program's thread
    (ROOST_INLINE_IO=1, roost_options.inline_io)."""
    port = free_port()
    proc = start_server(port, **({"ROOST_INLINE_IO": "1"} if request.param == "inline-io" else {}))
    yield f"ws://127.0.0.1:{port}"
    stop_server(proc)


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


# ---- several processes: the Redis backplane and a shared port ---------------------


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10
    ).stdout


@pytest.fixture
def redis_port():
    """A redis-server of this test's own, without persistence, on a free port."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server (and redis-cli) not found: run `make system-packages`")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while redis_cli(port, "PING").strip() != "PONG":
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def wait_for_subscribers(redis: int, channel: str, count: int) -> None:
    """Until `count` servers are subscribed to `channel` in Redis."""
    deadline = time.monotonic() + 10
    while True:
        numsub = redis_cli(redis, "PUBSUB", "NUMSUB", channel).split()
        if numsub[1:] == [str(count)]:
            return
        assert time.monotonic() < deadline, f"{channel}: {numsub}"
        time.sleep(0.05)


def test_backplane_carries_publishes_and_broadcasts_between_servers(redis_port):
    ports = [free_port(), free_port()]
    backplane = f"redis://127.0.0.1:{redis_port}"
    servers = [start_server(port, ROOST_BACKPLANE=backplane) for port in ports]
    urls = [f"ws://127.0.0.1:{port}" for port in ports]
    try:

        async def scenario():
            subscribers = [await websockets.connect(f"{url}/sub?topic=news") for url in urls]
            publisher = await websockets.connect(f"{urls[0]}/pub?topic=news")
            chat = [await websockets.connect(f"{url}/chat") for url in urls]
            await asyncio.to_thread(wait_for_subscribers, redis_port, "roost:topic:news", 2)
            await asyncio.to_thread(wait_for_subscribers, redis_port, "roost:route:/chat", 2)
            for message in ["one", "two ✓", b"\x00\xff"]:
                await publisher.send(message)
            for ws in subscribers:
                assert [await ws.recv() for _ in range(3)] == ["one", "two ✓", b"\x00\xff"]
            await chat[0].send("hello from server 1")
            for ws in chat:
                assert await ws.recv() == "hello from server 1"
            # Exactly once: nothing more, and nothing to the publisher.
            for ws in [*subscribers, publisher, *chat]:
                await nothing_arrives(ws)
            for ws in [*subscribers, publisher, *chat]:
                await ws.close()

        run(scenario())
    finally:
        for proc in servers:
            stop_server(proc)


def test_bad_backplane_url_exits_1_with_the_core_message():
    result = subprocess.run(
        [str(SERVER), str(free_port())],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "ROOST_BACKPLANE": "http://127.0.0.1:6379"},
    )
    assert result.returncode == 1
    assert "roost_server_new failed" in result.stderr
    assert "backplane must be a redis://" in result.stderr, result.stderr


def test_reuse_port_lets_two_servers_share_a_port():
    port = free_port()
    first, second = (start_server(port, ROOST_REUSE_PORT="1") for _ in range(2))

    async def answered(count: int) -> None:
        for i in range(count):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send(f"hi {i}")
                assert await ws.recv() == f"Echo: hi {i}"

    try:
        run(answered(8))
        # The second server listens on its own: the port still answers without the first.
        stop_server(first)
        run(answered(4))
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                stop_server(proc)


# ---- TLS: certificate and key from ROOST_TLS_CERT and ROOST_TLS_KEY ----------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA made for the run, a certificate it issued for 127.0.0.1 and its key (as
    files), and a client SSL context that trusts the CA."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = directory / "chain.pem", directory / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return str(cert), str(key), context


def test_tls_echo_and_chat_over_wss(tls_files):
    cert, key, context = tls_files
    port = free_port()
    proc = start_server(port, ROOST_TLS_CERT=cert, ROOST_TLS_KEY=key, expect_scheme="wss")

    async def scenario():
        url = f"wss://127.0.0.1:{port}"
        async with websockets.connect(f"{url}/ws", ssl=context) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "Echo: over tls"
            await ws.send(b"\x00\x01" * 40_000)
            assert await ws.recv() == b"\x00\x01" * 40_000
        async with (
            websockets.connect(f"{url}/chat", ssl=context) as first,
            websockets.connect(f"{url}/chat", ssl=context) as second,
        ):
            await first.send("to the room")
            assert await first.recv() == "to the room"
            assert await second.recv() == "to the room"
        # A plain ws:// client gets no WebSocket on the wss:// port.
        with pytest.raises((websockets.exceptions.InvalidHandshake, OSError, EOFError)):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5):
                pass

    try:
        run(scenario())
    finally:
        stop_server(proc)


def test_tls_with_an_unreadable_or_bad_file_exits_1_naming_it(tls_files, tmp_path):
    cert, key, _ = tls_files
    missing = str(tmp_path / "missing.pem")
    env = {**os.environ, "ROOST_TLS_CERT": missing, "ROOST_TLS_KEY": key}
    result = subprocess.run([str(SERVER), "0"], capture_output=True, text=True, env=env, timeout=10)
    assert result.returncode == 1
    assert f"cannot read {missing}" in result.stderr, result.stderr

    env = {**os.environ, "ROOST_TLS_CERT": cert, "ROOST_TLS_KEY": cert}
    result = subprocess.run([str(SERVER), "0"], capture_output=True, text=True, env=env, timeout=10)
    assert result.returncode == 1
    assert "TLS private key has no PRIVATE KEY" in result.stderr, result.stderr
