"""Shared fixtures and helpers of the Python test suite.

Every async test runs twice, on asyncio (or uvloop, with ROOST_TEST_UVLOOP=1) and on
trio (anyio's pytest plugin with the `anyio_backend` fixture below). The server runs inside the test's own event loop
(`serving(app)`), and clients are the `websockets` library's asyncio or trio client
to match (`connect(url)`), or a hand-written client speaking raw WebSocket frames over
a TCP socket (`RawClient`) where the test needs to misbehave on purpose.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "python"
HOST = "127.0.0.1"

# Bound on any single wait in a helper; the whole test is bounded by pytest-timeout.
WAIT = 10.0


# Each async test is cancelled (and fails) after this many seconds.
TEST_LIMIT = 40.0


# ROOST_TEST_UVLOOP=1 runs the asyncio half of the suite on uvloop's event loop, and
# the programs the tests start with backend "uvloop" (`make test-python-uvloop`).
ON_UVLOOP = os.environ.get("ROOST_TEST_UVLOOP") == "1"


# ROOST_TEST_LOOPS=asyncio (or trio) runs the async tests on that loop alone
# (`make test-python` does on the Pythons other than the machine's python3).
LOOPS = os.environ.get("ROOST_TEST_LOOPS", "asyncio,trio").split(",")
if not LOOPS or not set(LOOPS) <= {"asyncio", "trio"}:
    raise pytest.UsageError(f"ROOST_TEST_LOOPS names asyncio and/or trio, not {LOOPS}")


@pytest.fixture(params=LOOPS)
def roost_backend(request: pytest.FixtureRequest) -> str:
    """The backend a test serves on, as `App.start(backend=...)` names it."""
    name = str(request.param)
    return "uvloop" if name == "asyncio" and ON_UVLOOP else name


@pytest.fixture
def anyio_backend(roost_backend: str) -> Any:
    """The same backend for anyio's pytest plugin, which runs the test's event loop."""
    if roost_backend == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return roost_backend


def _bounded(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        with anyio.fail_after(TEST_LIMIT):
            return await test(*args, **kwargs)

    return bounded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj)


# ---------------------------------------------------------------------------------
# The server, inside the test's event loop


@contextlib.asynccontextmanager
async def serving(app: Any, *, host: str = HOST, **serve_options: Any) -> AsyncIterator[str]:
    """Serves `app` on a free port of 127.0.0.1 for the body; yields "ws://HOST:PORT"
    ("wss://" with `ssl_certfile`, which goes to `app.serve` with the other
    `serve_options`). At the end, stops the app gracefully (clients get 1001)."""
    scheme = "wss" if serve_options.get("ssl_certfile") else "ws"
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(WAIT):
            port = await tg.start(functools.partial(app.serve, host, 0, **serve_options))
        assert isinstance(port, int) and port > 0
        assert app.port == port
        try:
            yield f"{scheme}://{host}:{port}"
        finally:
            app.stop()
            # A clean stop ends serve() by itself; this only bounds a stuck one.
            tg.cancel_scope.deadline = anyio.current_time() + WAIT


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def host_of(url: str) -> str:
    """The IPv4 address of a ws:// URL."""
    return url.split("://", 1)[1].rsplit(":", 1)[0]


async def eventually(
    predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Polls `predicate` until it is true; fails after `timeout` seconds."""
    deadline = anyio.current_time() + timeout
    while not predicate():
        if anyio.current_time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await anyio.sleep(0.01)


# ---------------------------------------------------------------------------------
# The `websockets` client, asyncio or trio flavour


@dataclass
class Closed:
    """How a connection ended, as the client saw it."""

    code: int | None  # None: no close frame received (1006 on the wire)
    reason: str | None


class Client:
    """A `websockets` client connection with one API over both backends."""

    def __init__(self, conn: Any, backend: str) -> None:
        self.conn = conn
        self.backend = backend

    async def send(self, data: Any) -> None:
        with anyio.fail_after(WAIT):
            await self.conn.send(data)

    async def recv(self, timeout: float = WAIT) -> str | bytes:
        with anyio.fail_after(timeout):
            message = await self.conn.recv()
        assert isinstance(message, (str, bytes))
        return message

    async def recv_nothing(self, within: float = 0.3) -> None:
        """Asserts that no message arrives within `within` seconds."""
        with anyio.move_on_after(within):
            message = await self.conn.recv()
            raise AssertionError(f"unexpected message {message!r}")

    async def recv_closed(self, timeout: float = WAIT) -> tuple[list[str | bytes], Closed]:
        """Reads until the connection closes: (messages received before, the close)."""
        messages: list[str | bytes] = []
        with anyio.fail_after(timeout):
            try:
                while True:
                    messages.append(await self.conn.recv())
            except ConnectionClosed as closed:
                rcvd = closed.rcvd
                return messages, Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with anyio.fail_after(WAIT):
            if self.backend == "trio":
                await self.conn.aclose(code, reason)
            else:
                await self.conn.close(code, reason)

    def abort(self) -> None:
        """Drops the TCP connection without a close frame."""
        if self.backend == "trio":
            self.conn.stream.socket.close()
        else:
            self.conn.transport.abort()

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    @property
    def local_port(self) -> int:
        return int(self.conn.local_address[1])


def _unpause_trio_reading(conn: Any) -> None:
    """Works around websockets' trio client hanging for ever on close when its reading
    is paused (its message queue is full): its reader task waits on the flow-control
    event, which nothing sets once the connection closes. Lift flow control so that
    the closing handshake can read through what is left."""
    conn.recv_messages.pause = lambda: None
    if conn.recv_flow_control is not None:
        conn.resume_reading()


@pytest.fixture
def connect(roost_backend: str) -> Callable[..., Any]:
    """`async with connect(url) as ws:` a `websockets` client on the test's backend."""
    if roost_backend == "trio":
        from websockets.trio.client import connect as ws_connect
    else:
        from websockets.asyncio.client import connect as ws_connect

    @contextlib.asynccontextmanager
    async def _connect(url: str, **kwargs: Any) -> AsyncIterator[Client]:
        kwargs.setdefault("open_timeout", WAIT)
        kwargs.setdefault("close_timeout", 3)
        # The server under test sends the pings; the client's own would only add noise.
        kwargs.setdefault("ping_interval", None)
        async with ws_connect(url, **kwargs) as conn:
            try:
                yield Client(conn, roost_backend)
            finally:
                if roost_backend == "trio":
                    _unpause_trio_reading(conn)

    return _connect


# ---------------------------------------------------------------------------------
# A raw client: hand-made handshake and frames, to misbehave on purpose

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class TruncatedFrame(AssertionError):
    """The server's stream ended inside a frame."""


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        assert self.opcode == OP_CLOSE
        return self.payload[2:].decode("utf-8")


def encode_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + key + masked


def parse_frames(data: bytes) -> list[Frame]:
    """The complete server frames in `data` (a trailing partial frame is left out)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        fin, opcode, length = bool(data[i] & 0x80), data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            length, i = struct.unpack("!H", data[i : i + 2])[0], i + 2
        elif length == 127:
            length, i = struct.unpack("!Q", data[i : i + 8])[0], i + 8
        if i + length > len(data):
            break
        frames.append(Frame(fin, opcode, data[i : i + length]))
        i += length
    return frames


def blocking_handshake(port: int, path: str = "/ws", *, rcvbuf: int | None = None) -> socket.socket:
    """A connected, upgraded socket, made with blocking calls (for tests that block
    the event loop on purpose, or need a client no event loop reads for); `rcvbuf` as
    in `open_socket`."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(WAIT)
    sock.connect((HOST, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: leave the frames that follow in the socket
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


async def open_socket(port: int, *, rcvbuf: int | None = None, host: str = HOST) -> SocketStream:
    """A TCP stream to host:port (127.0.0.1 by default); `rcvbuf` shrinks the receive
    buffer before connecting so that a client that does not read pushes back quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(WAIT)
        sock.connect((host, port))
        sock.setblocking(False)
        return await SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise


class RawClient:
    """A WebSocket client written by hand over a TCP stream."""

    def __init__(self, stream: SocketStream, buffered: bytes = b"") -> None:
        self.stream = stream
        self.buffer = bytearray(buffered)
        self.eof = False
        self.response_head = ""

    @classmethod
    async def open(
        cls, url: str, path: str = "/ws", *, rcvbuf: int | None = None, expect_status: int = 101
    ) -> RawClient:
        host = host_of(url)
        stream = await open_socket(port_of(url), rcvbuf=rcvbuf, host=host)
        client = cls(stream)
        key = base64.b64encode(os.urandom(16)).decode()
        await client.send_raw(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await client.read_until(b"\r\n\r\n")
        client.response_head = head.decode("latin-1")
        status = int(client.response_head.split(" ", 2)[1])
        assert status == expect_status, client.response_head
        return client

    async def send_raw(self, data: bytes) -> None:
        with anyio.fail_after(WAIT):
            await self.stream.send(data)

    async def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        await self.send_raw(encode_frame(opcode, payload, **kwargs))

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive(65536)
        except (
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            ConnectionError,
        ):
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_until(self, marker: bytes, timeout: float = WAIT) -> bytes:
        with anyio.fail_after(timeout):
            while marker not in self.buffer:
                if not await self._fill():
                    raise AssertionError(f"EOF before {marker!r}: {bytes(self.buffer)!r}")
        end = self.buffer.index(marker) + len(marker)
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    async def read_exactly(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not await self._fill():
                return None
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def recv_frame(self, timeout: float = WAIT) -> Frame | None:
        """The next frame from the server, or None at EOF. EOF inside a frame raises
        TruncatedFrame."""
        with anyio.fail_after(timeout):
            head = await self.read_exactly(2)
            if head is None:
                return None
            fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
            assert not head[1] & 0x80, "a server must not mask its frames"
            length = head[1] & 0x7F
            if length == 126:
                ext = await self.read_exactly(2)
                assert ext is not None
                length = struct.unpack("!H", ext)[0]
            elif length == 127:
                ext = await self.read_exactly(8)
                assert ext is not None
                length = struct.unpack("!Q", ext)[0]
            payload = await self.read_exactly(length) if length else b""
            if payload is None:
                raise TruncatedFrame(f"EOF inside a frame of {length} bytes")
            return Frame(fin, opcode, payload)

    async def recv_all(
        self, timeout: float = WAIT, *, answer_pings: bool = True, truncated_ok: bool = False
    ) -> list[Frame]:
        """Every frame until the server closes the TCP connection. Pings are answered
        (unless told otherwise) and left out of the result. With `truncated_ok`, a
        connection the server gave up on in the middle of a frame ends the list there."""
        frames: list[Frame] = []
        with anyio.fail_after(timeout):
            while True:
                try:
                    frame = await self.recv_frame(timeout)
                except TruncatedFrame:
                    if truncated_ok:
                        return frames
                    raise
                if frame is None:
                    return frames
                if frame.opcode == OP_PING:
                    if answer_pings:
                        with contextlib.suppress(Exception):
                            await self.send_frame(OP_PONG, frame.payload)
                    continue
                frames.append(frame)
                if frame.opcode == OP_CLOSE:
                    # Answer the close as a client should, then wait for EOF.
                    with contextlib.suppress(Exception):
                        await self.send_frame(OP_CLOSE, frame.payload[:2])

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.stream.aclose()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def http_exchange(url: str, request: bytes, timeout: float = WAIT) -> str:
    """Sends a raw HTTP request; returns the response head (status line and headers)."""
    client = RawClient(await open_socket(port_of(url)))
    async with client:
        await client.send_raw(request)
        return (await client.read_until(b"\r\n\r\n", timeout)).decode("latin-1")


def status_of(response_head: str) -> int:
    return int(response_head.split(" ", 2)[1])


@dataclass
class HttpAnswer:
    """An HTTP response as read off the wire by `read_answer`."""

    status: int
    #: Header names lower-cased; a repeated header's values joined by ", ".
    headers: dict[str, str]
    body: bytes
    head: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


async def read_answer(client: RawClient, *, bodiless: bool = False) -> HttpAnswer:
    """Reads one HTTP response from `client`: its head, then as many body bytes as its
    Content-Length says (none when `bodiless`, for an answer to HEAD)."""
    head = (await client.read_until(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head[:-4].split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    length = 0 if bodiless else int(headers.get("content-length", "0"))
    body = await client.read_exactly(length) if length else b""
    assert body is not None, f"the connection ended inside the body of {status_line!r}"
    return HttpAnswer(int(status_line.split(" ", 2)[1]), headers, body, head)


async def http_request(
    url: str,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> HttpAnswer:
    """One request on a connection of its own (`Connection: close`), its answer read."""
    fields = {"Host": host_of(url), "Connection": "close", **(headers or {})}
    if body:
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    async with RawClient(await open_socket(port_of(url), host=host_of(url))) as client:
        await client.send_raw(head.encode("latin-1") + b"\r\n" + body)
        return await read_answer(client, bodiless=method == "HEAD")


# ---------------------------------------------------------------------------------
# Programs run as a user would run them

SERVING_PREFIX = "Roost serving on ws://"
#: The serving line of an app serving TLS (`ssl_certfile`).
TLS_SERVING_PREFIX = "Roost serving on wss://"


@contextlib.contextmanager
def occupied_port() -> Iterator[int]:
    """A port of 127.0.0.1 that another socket listens on (without SO_REUSEPORT)."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        yield taken.getsockname()[1]


async def run_to_end(
    args: Sequence[str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Runs a Python program that is expected to end by itself (within 15 s); its
    stdin is a pipe nobody writes to, so that a prompt would hang until the timeout."""
    with anyio.fail_after(15):
        return await anyio.run_process(
            [sys.executable, *args],
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            check=False,
        )


@dataclass
class Program:
    process: Any
    port: int
    first_line: str
    stdout_after_first_line: bytearray
    stderr: bytearray
    signalled: bool = False

    @property
    def output(self) -> bytes:
        """What it wrote on stdout after the serving line, so far."""
        return bytes(self.stdout_after_first_line)

    @property
    def errors(self) -> bytes:
        """What it wrote on stderr, so far."""
        return bytes(self.stderr)

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def send_signal(self, signum: int) -> None:
        self.signalled = True
        self.process.send_signal(signum)


async def _drain(stream: Any, sink: bytearray) -> None:
    with contextlib.suppress(Exception):
        async for chunk in stream:
            sink += chunk


@contextlib.asynccontextmanager
async def running_program(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGINT,
    expect_exit: int | None = 0,
    prefix: Sequence[str] = (),
) -> AsyncIterator[Program]:
    """Runs a Python program that calls app.start() and prints Roost's serving line;
    yields it with the bound port. `prefix` goes before the interpreter on the command
    line (`ip netns exec NS`, which execs the interpreter: signals still reach it). At the end sends `stop_signal` (unless the body
    sent one with `program.send_signal`) and checks the exit status. `program.output`
    and `program.errors` give the rest of its stdout and its stderr."""
    full_env = {**os.environ, **(env or {})}
    process = await anyio.open_process(
        [*prefix, sys.executable, *args], env=full_env, cwd=cwd, stdin=subprocess.DEVNULL
    )
    out, err = bytearray(), bytearray()
    try:
        async with anyio.create_task_group() as tg:
            assert process.stderr is not None and process.stdout is not None
            tg.start_soon(_drain, process.stderr, err)
            with anyio.fail_after(WAIT):
                pending = bytearray()
                while b"\n" not in pending:
                    try:
                        pending += await process.stdout.receive()
                    except anyio.EndOfStream:
                        await process.wait()
                        raise AssertionError(
                            f"the program exited ({process.returncode}) before serving: "
                            f"{bytes(pending)!r} {bytes(err).decode(errors='replace')}"
                        ) from None
            line, _, rest = bytes(pending).partition(b"\n")
            out += rest
            first_line = line.decode()
            prefix_seen = next(
                (p for p in (SERVING_PREFIX, TLS_SERVING_PREFIX) if first_line.startswith(p)), None
            )
            assert prefix_seen is not None, (first_line, bytes(err))
            port = int(first_line[len(prefix_seen) :].split(" ", 1)[0].rsplit(":", 1)[1])
            tg.start_soon(_drain, process.stdout, out)
            program = Program(process, port, first_line, out, err)
            yield program
            if not program.signalled:
                program.send_signal(stop_signal)
            with anyio.fail_after(WAIT):
                code = await process.wait()
        if expect_exit is not None:
            assert code == expect_exit, (code, bytes(err).decode(errors="replace"))
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await process.wait()
