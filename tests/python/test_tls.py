"""TLS (wss://): `ssl_certfile` / `ssl_keyfile` on `app.serve` and `app.start`, with a
certificate authority made for the run (trustme) that the `websockets` client trusts.
Echo and broadcast over wss://, a plain client on the TLS port counted, files that
are missing, malformed, mismatched or encrypted refused naming the file, the `wss://`
serving line, and worker processes serving TLS with a broadcast through the backplane."""

from __future__ import annotations

import contextlib
import ssl
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from redis_server import redis_server
from worker_pids import JOINED

from conftest import (
    HOST,
    TLS_SERVING_PREFIX,
    RawClient,
    eventually,
    running_program,
    serving,
)
from roost import App, TLSConfigError

pytestmark = pytest.mark.anyio

WORKER_PIDS = str(Path(__file__).with_name("worker_pids.py"))


class Pki:
    """A test CA, a server certificate and key it issued (as files), and a client
    SSL context that trusts the CA."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        issued = self.ca.issue_cert(HOST, "localhost")
        self.certfile = directory / "chain.pem"
        self.keyfile = directory / "key.pem"
        self.certfile.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        self.keyfile.write_bytes(issued.private_key_pem.bytes())
        self.client_context = ssl.create_default_context()
        self.ca.configure_trust(self.client_context)

    def options(self) -> dict[str, Any]:
        return {"ssl_certfile": str(self.certfile), "ssl_keyfile": self.keyfile}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def echo_app() -> App:
    app = App(__file__)

    @app.websocket("/ws")
    async def echo(websocket: Any) -> None:
        async for message in websocket:
            await websocket.send_text(f"echo: {message}")

    return app


async def test_echo_over_wss_with_a_client_trusting_the_ca(connect, pki: Pki) -> None:
    app = echo_app()
    async with serving(app, **pki.options()) as url:
        assert url.startswith("wss://")
        async with connect(url + "/ws", ssl=pki.client_context) as ws:
            for text in ("hello", "é" * 5000):
                await ws.send(text)
                assert await ws.recv() == f"echo: {text}"
        assert app.stats().tls_handshakes_failed == 0


async def test_broadcast_over_wss_reaches_every_client(connect, pki: Pki) -> None:
    app = App(__file__)

    @app.websocket("/chat")
    async def chat(websocket: Any) -> None:
        async for message in websocket:
            await websocket.broadcast(message)

    async with serving(app, **pki.options()) as url:
        async with (
            connect(url + "/chat", ssl=pki.client_context) as first,
            connect(url + "/chat", ssl=pki.client_context) as second,
        ):
            await eventually(lambda: app.connection_count() == 2, what="two clients")
            await first.send("to all")
            assert await first.recv() == "to all"
            assert await second.recv() == "to all"


async def test_a_plain_client_on_the_wss_port_is_closed_and_counted(pki: Pki) -> None:
    app = echo_app()
    async with serving(app, **pki.options()) as url:
        plain = url.replace("wss://", "ws://")
        with pytest.raises(AssertionError, match="EOF"):
            await RawClient.open(plain, "/ws")
        await eventually(lambda: app.stats().tls_handshakes_failed == 1, what="the count")
        assert app.connection_count() == 0


def refused(error: pytest.ExceptionInfo[TLSConfigError], path: Path, *words: str) -> None:
    assert error.value.filename == str(path)
    message = str(error.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message


async def test_missing_or_malformed_files_are_refused_naming_the_file(
    pki: Pki, tmp_path: Path
) -> None:
    app = echo_app()
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (missing, pki.keyfile, missing, "cannot read ssl_certfile"),
        (pki.certfile, missing, missing, "cannot read ssl_keyfile"),
        (garbage, pki.keyfile, garbage, "certificate chain"),
        (pki.certfile, garbage, garbage, "private key"),
    ]
    for certfile, keyfile, blamed, words in cases:
        with pytest.raises(TLSConfigError) as error:
            await app.serve(HOST, 0, ssl_certfile=certfile, ssl_keyfile=keyfile)
        refused(error, blamed, words)

    # A key of another certificate: both files are named.
    other = tmp_path / "other-key.pem"
    other.write_bytes(pki.ca.issue_cert("other.example").private_key_pem.bytes())
    with pytest.raises(TLSConfigError) as error:
        await app.serve(HOST, 0, ssl_certfile=pki.certfile, ssl_keyfile=other)
    assert str(pki.certfile) in str(error.value) and str(other) in str(error.value)

    with pytest.raises(ValueError, match="ssl_certfile is given without ssl_keyfile"):
        await app.serve(HOST, 0, ssl_certfile=pki.certfile)
    with pytest.raises(ValueError, match="ssl_keyfile is given without ssl_certfile"):
        await app.serve(HOST, 0, ssl_keyfile=pki.keyfile)
    with pytest.raises(TypeError, match="ssl_certfile must be"):
        await app.serve(HOST, 0, ssl_certfile=42, ssl_keyfile=pki.keyfile)
    # Nothing was served: the app can still serve.
    assert app.port is None
    async with serving(app, **pki.options()):
        pass


async def test_an_encrypted_key_needs_its_password(connect, pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.keyfile.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    app = echo_app()
    with pytest.raises(TLSConfigError) as error:
        await app.serve(HOST, 0, ssl_certfile=pki.certfile, ssl_keyfile=encrypted)
    refused(error, encrypted, "encrypted", "ssl_keyfile_password")
    with pytest.raises(TLSConfigError) as error:
        await app.serve(
            HOST, 0, ssl_certfile=pki.certfile, ssl_keyfile=encrypted, ssl_keyfile_password="no"
        )
    refused(error, encrypted, "cannot be decrypted")

    options = {"ssl_certfile": pki.certfile, "ssl_keyfile": encrypted}
    async with serving(app, ssl_keyfile_password="s3cret", **options) as url:
        async with connect(url + "/ws", ssl=pki.client_context) as ws:
            await ws.send("locked")
            assert await ws.recv() == "echo: locked"


async def test_start_prints_wss_and_serves_tls(connect, pki: Pki, tmp_path: Path) -> None:
    program = tmp_path / "tls_echo.py"
    program.write_text(
        textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_tls import echo_app
            echo_app().start(
                host={HOST!r}, port=0, ssl_certfile={str(pki.certfile)!r},
                ssl_keyfile={str(pki.keyfile)!r},
            )
        """)
    )
    async with running_program([str(program)]) as running:
        assert running.first_line.startswith(f"{TLS_SERVING_PREFIX}{HOST}:{running.port} ")
        async with connect(f"wss://{HOST}:{running.port}/ws", ssl=pki.client_context) as ws:
            await ws.send("from start")
            assert await ws.recv() == "echo: from start"


async def test_workers_and_the_backplane_serve_tls(connect, roost_backend, pki: Pki) -> None:
    with redis_server() as redis:
        env = {
            "ROOST_PORT": "0",
            "ROOST_HOST": HOST,
            "ROOST_BACKEND": roost_backend,
            "ROOST_BACKPLANE": redis.url,
            "ROOST_TLS_CERT": str(pki.certfile),
            "ROOST_TLS_KEY": str(pki.keyfile),
        }
        async with running_program([WORKER_PIDS, "2"], env=env) as running:
            assert running.first_line.startswith(f"{TLS_SERVING_PREFIX}{HOST}:{running.port} ")
            assert "2 workers" in running.first_line
            url = f"wss://{HOST}:{running.port}"
            pids: set[int] = set()
            with anyio.fail_after(20):
                while len(pids) < 2:
                    async with connect(url + "/pid", ssl=pki.client_context) as ws:
                        pids.add(int(await ws.recv()))
                        await ws.send("over tls")
                        assert await ws.recv() == "over tls"
            # A broadcast reaches the /chat clients of both workers through Redis.
            await eventually(
                lambda: redis.subscribers("roost:route:/chat") == 2, timeout=10, what="2 workers"
            )
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(connect(url + "/chat", ssl=pki.client_context))
                    for _ in range(8)
                ]
                for client in clients:  # now each is a broadcast recipient
                    assert await client.recv() == JOINED
                await clients[0].send("to every worker")
                for client in clients:
                    assert await client.recv() == "to every worker"
