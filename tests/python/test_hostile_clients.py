"""Hostile clients: every limit is enforced, nothing crashes, nothing grows without
bound. Real sockets, both backends, each test bounded in time (conftest.TEST_LIMIT).

The server runs inside the test process, so its memory is this process's resident set
(VmRSS in /proc/self/status); the clients live here too, which only makes the bounds
conservative. Each memory check states its bound and prints its figures
(`pytest -rP` shows them; assertion messages carry them too).

The issue's list, case -> where it is tested (observed answer):

    message over max_message_size -> 1009, RSS bounded
        test_messages_over_the_limit_close_with_1009_and_memory_stays_bounded (here);
        single and fragmented 1009 also in test_limits.py
    frame over max_frame_size -> 1009
        test_a_frame_over_max_frame_size_closes_with_1009 (here)
    invalid UTF-8 text -> 1007
        test_limits.py::test_invalid_utf8_in_a_text_message_closes_with_1007,
        test_limits.py::test_invalid_utf8_split_across_fragments_closes_with_1007;
        more encodings (overlong, surrogate, > U+10FFFF, truncated, close reason):
        test_more_invalid_utf8_closes_with_1007 (here)
    unmasked frame, reserved bits, unknown opcode, fragmented control frame -> 1002
        test_limits.py::test_a_protocol_error_closes_with_1002 (those four and a
        continuation without a start); more: test_more_protocol_errors_close_with_1002
        (here: unknown control opcode, oversized control frame, a new message inside
        a fragmented one, 1-byte close payload, reserved bits on control and
        continuation frames)
    handshake trickled one byte at a time, slower than handshake_timeout -> closed
        test_a_handshake_trickled_byte_by_byte_is_dropped_after_the_timeout (here);
        a silent client: test_limits.py::test_a_client_that_never_sends_its_handshake_is_dropped
    garbage instead of a handshake -> 400
        test_callbacks.py::test_malformed_handshake_gets_400 ("HELLO THERE");
        test_garbage_instead_of_a_handshake_gets_400 (here: binary, NUL, HTTP/2
        preface, ...); test_a_tls_client_hello_is_dropped_by_the_handshake_timeout (here)
    beyond max_connections -> 503, the others keep being served
        test_limits.py::test_connections_over_max_connections_get_http_503;
        test_a_burst_beyond_max_connections_gets_503_while_the_others_are_served (here)
    a client that never reads: send waits, broadcast closes it with 1008, RSS bounded
        test_a_client_that_never_reads_makes_send_wait_and_memory_stays_bounded,
        test_clients_that_never_read_broadcasts_are_closed_with_1008_and_memory_stays_bounded
        (here); ordering details in test_sending.py and test_broadcast.py
    a client that sends faster than its handler reads -> RSS bounded
        test_clients_sending_faster_than_their_handlers_read_keep_memory_bounded (here);
        TCP pushback itself: test_receiving.py::test_a_full_inbound_queue_stops_reading_the_socket
    a client that vanishes without a close frame -> WebSocketDisconnect(1006), on_close
        test_a_client_that_vanishes_without_a_close_frame (here: idle, mid-frame,
        mid-message, TCP reset); test_receiving.py::test_tcp_drop_without_close_frame_gives_1006
    a client that stops answering pings -> closed (1011) after the pong timeout, even
    while a busy handler blocks the Python loop
        test_keepalive_closes_a_silent_client_while_a_busy_handler_blocks_the_loop (here);
        test_limits.py::test_keepalive_runs_in_the_core_while_the_python_loop_is_blocked
    (beyond the list) a ping flood from a client that never reads -> RSS bounded
        test_a_ping_flood_from_a_client_that_never_reads_keeps_memory_bounded (here)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute

from conftest import (
    HOST,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Frame,
    RawClient,
    blocking_handshake,
    close_payload,
    encode_frame,
    eventually,
    http_exchange,
    open_socket,
    parse_frames,
    port_of,
    serving,
    status_of,
)
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio

MiB = 1 << 20
KiB = 1 << 10


# ---------------------------------------------------------------------------------
# Memory and descriptors of this process (the server runs in it)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class RssWatch:
    label: str
    baseline: float
    peak: float = 0.0
    last: float = 0.0

    def sample(self) -> None:
        self.last = rss_mib()
        self.peak = max(self.peak, self.last)

    @property
    def growth(self) -> float:
        return self.peak - self.baseline

    def report(self, bound: float) -> str:
        return (
            f"RSS[{self.label}]: baseline {self.baseline:.1f} MiB, peak {self.peak:.1f} MiB "
            f"(+{self.growth:.1f}), last {self.last:.1f} MiB; bound +{bound:.0f} MiB"
        )

    def check(self, bound: float) -> None:
        report = self.report(bound)
        print(report)
        assert self.growth <= bound, report


@contextlib.asynccontextmanager
async def watching_rss(label: str) -> AsyncIterator[RssWatch]:
    """Samples this process's RSS every 20 ms while the body runs (and once at each
    end; a body that blocks the loop is still sampled at its end)."""
    watch = RssWatch(label, rss_mib())
    watch.sample()

    async def sampler() -> None:
        while True:
            watch.sample()
            await anyio.sleep(0.02)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sampler)
        try:
            yield watch
        finally:
            watch.sample()
            tg.cancel_scope.cancel()


def observed(case: str, what: Any) -> None:
    print(f"[hostile] {case}: {what}")


# ---------------------------------------------------------------------------------
# An app that records what its handlers and on_close saw


@dataclass
class Record:
    disconnects: list[int] = field(default_factory=list)
    on_close: list[str] = field(default_factory=list)
    received: dict[str, int] = field(default_factory=dict)


def echo_app(**limits: Any) -> tuple[App, Record]:
    """/ws answers every message with `got LEN`; the handler records the code of the
    WebSocketDisconnect that ends it, on_close records the connection's id."""
    app = App(__file__, **limits)
    record = Record()

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            while True:
                message = await websocket.receive()
                await websocket.send_text(f"got {len(message)}")
        except WebSocketDisconnect as disconnect:
            record.disconnects.append(disconnect.code)

    @handler.on_close
    def on_close(websocket):
        record.on_close.append(websocket.id)

    return app, record


def fast_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame, masked with whole-integer XOR (fast for big payloads)."""
    key = os.urandom(4)
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return bytes(head) + key + masked


SEND_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError, OSError)


class PlainSocket:
    """The stream interface RawClient uses, over a bare non-blocking socket. asyncio's
    transports drop what the kernel has received but not yet delivered once a send
    fails (the server reset the connection), and with it the server's close frame;
    plain recv(2) still returns it. Used by clients that go on sending after the
    server closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                data = self.sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                await anyio.wait_writable(self.sock)

    async def aclose(self) -> None:
        self.sock.close()


async def plain_client(url: str, path: str = "/ws") -> RawClient:
    """An upgraded RawClient over a PlainSocket."""
    sock = socket.create_connection((HOST, port_of(url)), timeout=10)
    sock.setblocking(False)
    client = RawClient(PlainSocket(sock))  # type: ignore[arg-type]
    key = base64.b64encode(os.urandom(16)).decode()
    await client.send_raw(UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", key.encode()))
    head = await client.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return client


async def read_frames_until_eof(
    raw: RawClient, frames: list[Frame], closed: anyio.Event, *, timeout: float = 15.0
) -> None:
    """Collects the server's frames until it ends the TCP connection; answers its close
    frame as a client should, and never answers pings."""
    with anyio.move_on_after(timeout):
        while True:
            frame = await raw.recv_frame(timeout)
            if frame is None:
                break
            frames.append(frame)
            if frame.opcode == OP_CLOSE:
                closed.set()
                with contextlib.suppress(Exception):
                    await raw.send_frame(OP_CLOSE, frame.payload[:2])
    closed.set()


async def send_until_closed(raw: RawClient, chunks: Any, frames: list[Frame]) -> int:
    """Sends `chunks` while reading the server's frames; stops at the server's close
    frame (or a failed send). Returns the bytes sent."""
    closed = anyio.Event()
    sent = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(read_frames_until_eof, raw, frames, closed)
        for chunk in chunks:
            if closed.is_set():
                break
            try:
                await raw.stream.send(chunk)
            except SEND_ERRORS:
                break  # reset by the server; what it sent before is still readable
            sent += len(chunk)
        with anyio.fail_after(15):
            await closed.wait()
    return sent


def close_codes(frames: list[Frame]) -> list[int | None]:
    return [f.close_code for f in frames if f.opcode == OP_CLOSE]


# ---------------------------------------------------------------------------------
# Size limits


async def test_messages_over_the_limit_close_with_1009_and_memory_stays_bounded() -> None:
    """Default limits (1 MiB). Three ways of sending too much, eight clients each, all
    at once: a single frame whose header announces 1 GiB (the client goes on streaming
    it), a message of 64 KiB fragments that never ends, and a 64-bit length with the
    most significant bit set. Every one is closed with 1009 (the last may be 1002: RFC
    6455 forbids that bit) and the server's memory stays near the limit per client."""
    app, record = echo_app()
    per_way = 8
    budget = 16 * MiB  # what each client tries to send
    chunk = b"z" * (64 * KiB)
    fragment = fast_frame(OP_CONT, chunk, fin=False)

    def one_gib_frame():
        yield bytes([0x80 | OP_BINARY, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + os.urandom(4)
        for _ in range(budget // len(chunk)):
            yield chunk

    def endless_message():
        yield fast_frame(OP_BINARY, chunk, fin=False)
        for _ in range(budget // len(chunk)):
            yield fragment

    def msb_length():
        yield bytes([0x80 | OP_BINARY, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + os.urandom(4)
        for _ in range(budget // len(chunk)):
            yield chunk

    ways = {
        "1 GiB frame header": one_gib_frame,
        "endless fragments": endless_message,
        "length with MSB set": msb_length,
    }
    results: dict[str, list[tuple[list[int | None], int]]] = {way: [] for way in ways}

    async def hostile(url: str, way: str) -> None:
        async with await plain_client(url) as raw:
            frames: list[Frame] = []
            sent = await send_until_closed(raw, ways[way](), frames)
            results[way].append((close_codes(frames), sent))

    async with serving(app) as url:
        async with watching_rss("1009 x 24 clients") as rss:
            async with anyio.create_task_group() as tg:
                for way in ways:
                    for _ in range(per_way):
                        tg.start_soon(hostile, url, way)
        await eventually(
            lambda: len(record.disconnects) == per_way * len(ways),
            what="every handler's disconnect",
        )
        await eventually(lambda: app.connection_count() == 0, what="no connection left")
        disconnects = list(record.disconnects)
        # The server goes on serving.
        async with await RawClient.open(url, "/ws") as fine:
            await fine.send_frame(OP_TEXT, b"still here")
            frame = await fine.recv_frame()
            assert frame is not None and frame.payload == b"got 10"

    summary = {way: sorted({str(codes) for codes, _ in runs}) for way, runs in results.items()}
    sent_mib = {way: round(max(sent for _, sent in runs) / MiB, 2) for way, runs in results.items()}
    observed(
        "message over the limit", f"close frames {summary}; most sent before close (MiB) {sent_mib}"
    )
    for way in ("1 GiB frame header", "endless fragments"):
        assert all(codes == [1009] for codes, _ in results[way]), (way, results[way])
    assert all(codes in ([1009], [1002]) for codes, _ in results["length with MSB set"]), results
    assert sorted(set(disconnects)) in ([1009], [1002, 1009]), disconnects
    assert len(record.on_close) == per_way * len(ways) + 1
    # Nobody got through all of it: the limit (plus the kernel's buffers) stopped them.
    assert all(sent < budget for runs in results.values() for _, sent in runs), sent_mib
    # 24 clients x (1 MiB of message + buffers), and room for allocator slack.
    rss.check(bound=64)


async def test_a_frame_over_max_frame_size_closes_with_1009() -> None:
    app, record = echo_app(max_frame_size=16 * KiB, max_message_size=1 * MiB)
    async with serving(app) as url:
        async with await plain_client(url) as raw:
            await raw.send_raw(fast_frame(OP_BINARY, b"a" * (16 * KiB)))  # at the limit
            frame = await raw.recv_frame()
            assert frame is not None and frame.payload == f"got {16 * KiB}".encode()
            # A message larger than a frame, in frames that each fit: fine.
            await raw.send_raw(
                b"".join(
                    fast_frame(OP_BINARY if i == 0 else OP_CONT, b"b" * (16 * KiB), fin=i == 7)
                    for i in range(8)
                )
            )
            frame = await raw.recv_frame()
            assert frame is not None and frame.payload == f"got {128 * KiB}".encode()
            frames: list[Frame] = []
            await send_until_closed(raw, [fast_frame(OP_BINARY, b"c" * (16 * KiB + 1))], frames)
        await eventually(lambda: bool(record.disconnects), what="the handler's disconnect")
    observed(
        "frame over the limit", f"close frames {close_codes(frames)}, handler {record.disconnects}"
    )
    assert [f.opcode for f in frames] == [OP_CLOSE]
    assert frames[0].close_code == 1009
    assert record.disconnects == [1009]


# ---------------------------------------------------------------------------------
# Invalid UTF-8 and protocol errors beyond those in test_limits.py


@pytest.mark.parametrize(
    "what, frames",
    [
        ("overlong encoding", [(OP_TEXT, b"\xc0\xaf", True)]),
        ("UTF-16 surrogate", [(OP_TEXT, b"ok \xed\xa0\x80", True)]),
        ("code point above U+10FFFF", [(OP_TEXT, b"\xf4\x90\x80\x80", True)]),
        ("truncated at the end of the message", [(OP_TEXT, b"abc\xe2\x82", True)]),
        ("invalid in the last fragment", [(OP_TEXT, b"fine ", False), (OP_CONT, b"\x80", True)]),
        ("close frame reason", [(OP_CLOSE, close_payload(1000) + b"bye \xff", True)]),
    ],
)
async def test_more_invalid_utf8_closes_with_1007(what: str, frames: list) -> None:
    app, record = echo_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            for opcode, payload, fin in frames:
                await raw.send_frame(opcode, payload, fin=fin)
            answer = await raw.recv_all()
        await eventually(lambda: bool(record.disconnects), what="the handler's disconnect")
    observed(
        f"invalid UTF-8 ({what})",
        f"close frames {close_codes(answer)}, handler {record.disconnects}",
    )
    assert [f.opcode for f in answer] == [OP_CLOSE], what
    assert answer[0].close_code == 1007, what
    assert record.disconnects == [1007], what
    assert len(record.on_close) == 1


@pytest.mark.parametrize(
    "what, data",
    [
        ("unknown control opcode 0xB", encode_frame(0xB, b"")),
        ("unknown data opcode 0x7", encode_frame(0x7, b"data")),
        ("control frame over 125 bytes", encode_frame(OP_PING, b"p" * 126)),
        (
            "new message inside a fragmented one",
            encode_frame(OP_TEXT, b"first", fin=False) + encode_frame(OP_TEXT, b"second"),
        ),
        ("close payload of one byte", encode_frame(OP_CLOSE, b"\x03")),
        ("reserved bit on a control frame", encode_frame(OP_PING, b"", rsv=0b010)),
        (
            "reserved bit on a continuation",
            encode_frame(OP_TEXT, b"a", fin=False) + encode_frame(OP_CONT, b"b", rsv=0b001),
        ),
    ],
)
async def test_more_protocol_errors_close_with_1002(what: str, data: bytes) -> None:
    app, record = echo_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_raw(data)
            answer = await raw.recv_all()
        await eventually(lambda: bool(record.disconnects), what="the handler's disconnect")
    observed(
        f"protocol error ({what})",
        f"close frames {[(f.close_code, f.close_reason) for f in answer if f.opcode == OP_CLOSE]}",
    )
    assert [f.opcode for f in answer] == [OP_CLOSE], what
    assert answer[0].close_code == 1002, what
    assert record.disconnects == [1002], what


# ---------------------------------------------------------------------------------
# The handshake


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_handshake_trickled_byte_by_byte_is_dropped_after_the_timeout() -> None:
    """Eight clients send a valid upgrade request one byte every 50 ms (8.5 s for the
    whole request); handshake_timeout is 0.5 s for the whole head, not per byte, so
    each is dropped after about 0.5 s without an answer. A normal client is served
    meanwhile, and the descriptors come back."""
    app, record = echo_app(handshake_timeout=0.5)
    slow = 8
    outcomes: list[tuple[float, int, bytes]] = []

    async def trickle(url: str) -> None:
        client = RawClient(await open_socket(port_of(url)))
        async with client:
            started = anyio.current_time()
            sent = 0
            reader_done = anyio.Event()

            async def reader() -> None:
                with anyio.move_on_after(5):
                    while await client._fill():
                        pass
                reader_done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for byte in UPGRADE:
                    if reader_done.is_set():
                        break
                    try:
                        await client.stream.send(bytes([byte]))
                    except SEND_ERRORS:
                        break
                    sent += 1
                    await anyio.sleep(0.05)
                await reader_done.wait()
            outcomes.append((anyio.current_time() - started, sent, bytes(client.buffer)))

    # One connection first: an event loop may open a descriptor of its own the first
    # time it connects (uvloop keeps one on /dev/null), which is not this test's.
    warm_up, _ = echo_app()
    async with serving(warm_up) as url:
        async with await RawClient.open(url, "/ws"):
            pass
    fds_before = open_fds()
    async with serving(app) as url:
        async with anyio.create_task_group() as tg:
            for _ in range(slow):
                tg.start_soon(trickle, url)
            await anyio.sleep(0.2)
            async with await RawClient.open(url, "/ws") as normal:
                await normal.send_frame(OP_TEXT, b"served meanwhile")
                frame = await normal.recv_frame()
                assert frame is not None and frame.payload == b"got 16"
        assert app.connection_count() == 0
    times = sorted(round(t, 2) for t, _, _ in outcomes)
    observed(
        "handshake trickled byte by byte",
        f"closed after {times} s having sent {sorted({s for _, s, _ in outcomes})} of "
        f"{len(UPGRADE)} bytes; answers {sorted({a for _, _, a in outcomes})}",
    )
    assert len(outcomes) == slow
    for elapsed, sent, answer in outcomes:
        assert 0.4 <= elapsed < 2.0, outcomes
        assert sent < len(UPGRADE), outcomes
        assert answer == b"", outcomes  # dropped without an answer
    assert len(record.on_close) == 1  # only the normal client reached the app
    await eventually(lambda: open_fds() <= fds_before, what="descriptors back to their number")


@pytest.mark.parametrize(
    "what, request_bytes",
    [
        ("binary noise", bytes(range(256)) + b"\r\n\r\n"),
        ("NUL in the request line", b"GET /ws\x00 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("header without a colon", b"GET /ws HTTP/1.1\r\nHost x\r\n\r\n"),
        ("space in a header name", b"GET /ws HTTP/1.1\r\nBad Header: x\r\n\r\n"),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("empty head", b"\r\n\r\n"),
    ],
)
async def test_garbage_instead_of_a_handshake_gets_400(what: str, request_bytes: bytes) -> None:
    app, record = echo_app()
    async with serving(app) as url:
        head = await http_exchange(url, request_bytes)
        observed(f"garbage handshake ({what})", head.split("\r\n", 1)[0])
        assert status_of(head) == 400, (what, head)
        async with await RawClient.open(url, "/ws") as fine:  # the server goes on
            await fine.send_frame(OP_TEXT, b"ok")
            frame = await fine.recv_frame()
            assert frame is not None and frame.payload == b"got 2"
    assert len(record.on_close) == 1


async def test_a_tls_client_hello_is_dropped_by_the_handshake_timeout() -> None:
    """A TLS ClientHello never ends a request head: the connection is dropped when the
    handshake timeout expires; an answer, if any, must be a 400."""
    app, record = echo_app(handshake_timeout=0.5)
    hello = bytes.fromhex("16030100a5010000a10303") + os.urandom(32) + b"\x00" * 130
    async with serving(app) as url:
        client = RawClient(await open_socket(port_of(url)))
        async with client:
            started = anyio.current_time()
            await client.send_raw(hello)
            with anyio.fail_after(3):
                while await client._fill():
                    pass
            elapsed = anyio.current_time() - started
        answer = bytes(client.buffer)
    observed("TLS ClientHello", f"dropped after {elapsed:.2f} s, answer {answer[:30]!r}")
    assert elapsed < 2.0
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer
    assert record.on_close == []


async def test_a_burst_beyond_max_connections_gets_503_while_the_others_are_served() -> None:
    """Three clients fill max_connections and keep echoing while forty more try at
    once: each gets HTTP 503; afterwards the count is exact and there is room again."""
    app, record = echo_app(max_connections=3)
    statuses: list[int] = []

    async def intruder(url: str) -> None:
        key = base64.b64encode(os.urandom(16))
        head = await http_exchange(url, UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", key))
        statuses.append(status_of(head))

    async with serving(app) as url:
        members = [await RawClient.open(url, "/ws") for _ in range(3)]
        try:
            await eventually(lambda: app.connection_count() == 3, what="three connections")
            echoed = 0
            async with anyio.create_task_group() as tg:
                for _ in range(40):
                    tg.start_soon(intruder, url)
                for round_ in range(20):
                    for member in members:
                        await member.send_frame(OP_TEXT, b"x" * round_)
                        frame = await member.recv_frame()
                        assert frame is not None and frame.payload == f"got {round_}".encode()
                        echoed += 1
            assert app.connection_count() == 3
        finally:
            for member in members:
                await member.aclose()
        await eventually(lambda: app.connection_count() == 0, what="the members to leave")
        async with await RawClient.open(url, "/ws") as later:  # room again
            await later.send_frame(OP_TEXT, b"in")
            frame = await later.recv_frame()
            assert frame is not None and frame.payload == b"got 2"
    observed(
        "beyond max_connections",
        f"statuses {sorted(set(statuses))} x{len(statuses)}; "
        f"{echoed} echoes to the members meanwhile",
    )
    assert statuses == [503] * 40
    assert echoed == 60


# ---------------------------------------------------------------------------------
# Clients that do not read, and clients that send too fast


async def wait_until_stable(counter: Any, settle: float = 0.5, limit: float = 20.0) -> None:
    """Waits until `counter()` has not changed for `settle` seconds."""
    previous, since = -1, anyio.current_time()
    with anyio.fail_after(limit):
        while anyio.current_time() - since < settle:
            value = counter()
            if value != previous:
                previous, since = value, anyio.current_time()
            await anyio.sleep(0.05)


async def test_a_client_that_never_reads_makes_send_wait_and_memory_stays_bounded() -> None:
    """Eight clients never read while their handlers send 64 KiB messages (up to 16 MiB
    each). The sends end up waiting with about outbound_queue_bytes (1 MiB, the
    default) plus the kernel's buffers queued per client; nobody is closed."""
    app = App(__file__)
    clients, size, most = 8, 64 * KiB, 256
    sent: dict[str, int] = {}
    disconnects: list[int] = []

    @app.websocket("/ws")
    async def handler(websocket):
        sent[websocket.id] = 0
        payload = os.urandom(size)
        try:
            for _ in range(most):
                await websocket.send_bytes(payload)
                sent[websocket.id] += 1
            await websocket.receive()
        except WebSocketDisconnect as disconnect:
            disconnects.append(disconnect.code)

    async with serving(app) as url:
        async with watching_rss("send to 8 non-readers") as rss:
            # Plain blocking sockets that are never read: a client in the test's own
            # event loop may go on reading into its buffers (uvloop's transports do).
            never_read = functools.partial(blocking_handshake, port_of(url), rcvbuf=4096)
            raws = [await anyio.to_thread.run_sync(never_read) for _ in range(clients)]
            await eventually(lambda: len(sent) == clients, what="every handler")
            await wait_until_stable(lambda: sum(sent.values()))
        counts = sorted(sent.values())
        still_open = app.connection_count()
        for raw in raws:
            raw.close()
        await eventually(lambda: len(disconnects) == clients, what="the waiting sends to raise")
    observed(
        "never reads (send)",
        f"sends done per client {counts} of {most} "
        f"({max(counts) * size / MiB:.1f} MiB at most); "
        f"open while stalled {still_open}; then {sorted(set(disconnects))}",
    )
    assert still_open == clients  # send waits; it does not close anybody
    assert max(counts) < most, counts
    assert disconnects == [1006] * clients
    # Per client: 1 MiB queue + one message in the writer; plus allocator slack.
    rss.check(bound=8 * 2 + 24)


async def test_clients_that_never_read_broadcasts_are_closed_with_1008_and_memory_stays_bounded(
    connect,
) -> None:
    """Eight raw clients never read while broadcasts of 32 KiB go out, paced by one
    client that reads everything. The eight are closed with 1008 once their queues
    overflow; the reader gets every broadcast in order; memory stays bounded."""
    app = App(__file__)
    slow_clients, size, most = 8, 32 * KiB, 3000
    members: dict[str, Any] = {}
    codes: dict[str, int] = {}

    @app.websocket("/room")
    async def room(websocket, role: str):
        members[websocket.id] = (role, websocket)
        try:
            async for _ in websocket:
                pass
        except WebSocketDisconnect:
            pass

    @room.on_close
    def on_close(websocket, role: str):
        codes[websocket.id] = websocket._closed.code if websocket._closed else -1

    def body(i: int) -> bytes:
        return i.to_bytes(4, "big") * (size // 4)

    async with serving(app) as url:
        slow = [
            await RawClient.open(url, "/room?role=slow", rcvbuf=4096) for _ in range(slow_clients)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for raw in slow:
                await stack.enter_async_context(raw)
            reader = await stack.enter_async_context(
                connect(url + "/room?role=reader", max_size=None)
            )
            await eventually(lambda: len(members) == slow_clients + 1, what="every member")
            sender = next(ws for role, ws in members.values() if role == "reader")
            slow_ids = {cid for cid, (role, _) in members.items() if role == "slow"}
            received = 0

            async def read_all() -> None:
                nonlocal received
                while True:
                    message = await reader.recv()
                    if message == "end":
                        return
                    assert message == body(received), f"broadcast {received} out of order"
                    received += 1

            sent = 0
            async with watching_rss("broadcast to 8 non-readers") as rss:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(read_all)
                    while sent < most and not slow_ids <= codes.keys():
                        await sender.broadcast(body(sent))
                        sent += 1
                        with anyio.fail_after(10):
                            while sent - received > 8:  # keep the reader well within its limit
                                await anyio.sleep(0.001)
                    await sender.broadcast("end")
            await eventually(lambda: slow_ids <= codes.keys(), what="on_close of every slow client")
            slow_frames = []
            for raw in slow:
                # Dropped after one short try to send the close frame: the socket may
                # end inside a frame. The complete frames before that count.
                with anyio.fail_after(10):
                    while await raw._fill():
                        pass
                frames = parse_frames(bytes(raw.buffer))
                slow_frames.append(
                    (
                        [f.close_code for f in frames if f.opcode == OP_CLOSE],
                        len([f for f in frames if f.opcode == OP_BINARY]),
                    )
                )
            reader_still_open = sender._closed is None

    slow_codes = sorted(codes[cid] for cid in slow_ids)
    observed(
        "never reads (broadcast)",
        f"{sent} broadcasts of {size // KiB} KiB; slow clients closed with {sorted(set(slow_codes))}; "
        f"what they then read (close codes, messages): {sorted(set(map(str, slow_frames)))}",
    )
    assert slow_codes == [1008] * slow_clients
    assert received == sent and reader_still_open
    for close, messages in slow_frames:
        assert messages < sent
        assert close in ([1008], []), slow_frames  # the close frame, or a dropped socket
    rss.check(bound=8 * 2 + 24)


async def test_clients_sending_faster_than_their_handlers_read_keep_memory_bounded() -> None:
    """Four clients stream 256 KiB messages as fast as loopback allows for 3 s while
    their handlers take one message every 20 ms: the server holds at most about
    inbound_queue_depth (16) messages in the core plus as many in Python per client."""
    app = App(__file__)
    clients, size = 4, 256 * KiB
    taken: dict[str, int] = {}
    sent_bytes: list[int] = [0] * clients

    @app.websocket("/ws")
    async def handler(websocket):
        taken[websocket.id] = 0
        try:
            while True:
                data = await websocket.receive_bytes()
                assert len(data) == size
                taken[websocket.id] += 1
                await anyio.sleep(0.02)
        except WebSocketDisconnect:
            pass

    frame = fast_frame(OP_BINARY, os.urandom(size))

    async def flood(raw: RawClient, index: int) -> None:
        with anyio.move_on_after(3):
            while True:
                await raw.stream.send(frame)
                sent_bytes[index] += len(frame)

    async with serving(app) as url:
        raws = [await RawClient.open(url, "/ws") for _ in range(clients)]
        async with watching_rss("4 clients flood slow handlers") as rss:
            async with anyio.create_task_group() as tg:
                for i, raw in enumerate(raws):
                    tg.start_soon(flood, raw, i)
        for raw in raws:
            await raw.aclose()  # mid-frame, maybe: the handlers see 1006
        await eventually(lambda: app.connection_count() == 0, what="no connection left")
    sent_mib = [round(b / MiB, 1) for b in sent_bytes]
    observed(
        "sends faster than read",
        f"sent MiB per client {sent_mib}, messages taken {sorted(taken.values())}",
    )
    # The clients were held back: they could not send much more than was taken plus
    # the queues and the kernel's buffers.
    for b, t in zip(sorted(sent_bytes), sorted(taken.values()), strict=False):
        assert b < (t + 2 * 16 + 8) * size + 16 * MiB, (sent_mib, taken)
    # Per client: 16 messages in the core, up to 16 in Python, one being read: ~8.5 MiB.
    rss.check(bound=clients * 9 + 24)


async def test_a_ping_flood_from_a_client_that_never_reads_keeps_memory_bounded() -> None:
    """A client sends pings (125 bytes each) as fast as it can and never reads the
    pongs. The server may coalesce its answers (RFC 6455 5.5.3 allows answering only
    the latest ping) or close the client, but must not keep a pong for every ping."""
    app, record = echo_app()
    budget = 256 * MiB
    bound = 48
    burst = encode_frame(OP_PING, b"p" * 125) * 512  # 64 KiB of pings
    sent = 0
    async with serving(app) as url:
        raw = await RawClient.open(url, "/ws", rcvbuf=4096)
        async with raw, watching_rss("ping flood") as rss:
            with anyio.move_on_after(4):  # a bounded server holds the flood back
                while sent < budget and rss_mib() - rss.baseline <= 2 * bound:
                    try:
                        await raw.stream.send(burst)
                    except SEND_ERRORS:
                        break  # closed by the server: fine too
                    sent += len(burst)
        await eventually(lambda: app.connection_count() == 0, what="the flooder to be gone")
    observed(
        "ping flood, never reads",
        f"sent {sent / MiB:.0f} MiB of pings; closed with {record.disconnects}",
    )
    rss.check(bound=bound)


# ---------------------------------------------------------------------------------
# Clients that vanish, and clients that stop answering pings


@pytest.mark.parametrize("how", ["idle", "mid-frame", "mid-message", "tcp reset"])
async def test_a_client_that_vanishes_without_a_close_frame(how: str) -> None:
    """The TCP connection ends without a close frame: while the handler waits, after
    half a frame, after the first fragment of a message, or with a reset (RST). The
    handler gets WebSocketDisconnect(1006), on_close runs once, the core forgets the
    connection."""
    app, record = echo_app()
    async with serving(app) as url:
        raw = await RawClient.open(url, "/ws")
        await raw.send_frame(OP_TEXT, b"hello")
        frame = await raw.recv_frame()
        assert frame is not None and frame.payload == b"got 5"
        if how == "mid-frame":
            await raw.send_raw(encode_frame(OP_TEXT, b"y" * 1000)[:300])
        elif how == "mid-message":
            await raw.send_frame(OP_TEXT, b"first part", fin=False)
        elif how == "tcp reset":
            sock = raw.stream.extra(SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await anyio.sleep(0.05)
        left_at = anyio.current_time()
        await raw.aclose()
        await eventually(
            lambda: bool(record.disconnects) and bool(record.on_close),
            timeout=3,
            what="WebSocketDisconnect and on_close",
        )
        noticed_after = anyio.current_time() - left_at
        await eventually(lambda: app.connection_count() == 0, what="the core to forget it")
        await anyio.sleep(0.1)  # a second on_close would show now
    observed(
        f"vanishes ({how})",
        f"handler {record.disconnects}, on_close x{len(record.on_close)}, "
        f"after {noticed_after:.3f} s",
    )
    assert record.disconnects == [1006]
    assert len(record.on_close) == 1
    assert noticed_after < 1.0


@pytest.mark.core_thread
async def test_keepalive_closes_a_silent_client_while_a_busy_handler_blocks_the_loop() -> None:
    """A handler of another connection blocks the event loop with time.sleep(3). A raw
    client that never answers pings (ping_interval 0.2 s, ping_timeout 1 s) is
    closed by the core with 1011 during those 3 s, before the busy handler returns;
    once the loop runs again its handler gets WebSocketDisconnect(1011) and on_close
    runs. Both clients run in threads of their own (the busy one with websockets' sync
    client, which answers pings by itself): the test's event loop is the one blocked."""
    from websockets.sync.client import connect as sync_connect

    # The silent client is closed about 1.2 s after it connects, well inside the busy
    # handler's 3 s even when a loaded machine delays the handler's start.
    app = App(__file__, ping_interval=0.2, ping_timeout=1.0)
    times: dict[str, float] = {}
    outcome: list[object] = []
    silent_ready = anyio.Event()
    busy_connected, go = threading.Event(), threading.Event()
    busy_replies: list[object] = []

    @app.websocket("/busy")
    async def busy(websocket):
        await websocket.receive_text()
        times["busy started"] = time.monotonic()
        time.sleep(3)  # noqa: ASYNC251 (synchronous: the whole event loop stands still)
        times["busy returned"] = time.monotonic()
        await websocket.send_text("done")
        await websocket.receive_text()

    @app.websocket("/silent")
    async def silent(websocket):
        silent_ready.set()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as disconnect:
            outcome.append(("handler", disconnect.code))

    @silent.on_close
    def silent_closed(websocket):
        outcome.append("on_close")

    def busy_client(url: str) -> None:
        with sync_connect(url, ping_interval=None, open_timeout=5) as ws:
            busy_connected.set()
            go.wait(10)
            ws.send("work")
            busy_replies.append(ws.recv(timeout=10))

    received = bytearray()

    def watch_silent(sock: socket.socket) -> None:
        """Reads everything, answers nothing, notes when the close frame and the end
        of the connection come."""
        sock.settimeout(0.05)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            received.extend(chunk)
            if "close frame" not in times and any(
                f.opcode == OP_CLOSE for f in parse_frames(bytes(received))
            ):
                times["close frame"] = time.monotonic()
        times["socket closed"] = time.monotonic()

    async with serving(app) as url:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, busy_client, url + "/busy")
            await eventually(busy_connected.is_set, what="the busy client to connect")
            sock = blocking_handshake(port_of(url), "/silent")
            try:
                tg.start_soon(anyio.to_thread.run_sync, watch_silent, sock)
                with anyio.fail_after(5):
                    await silent_ready.wait()
                go.set()  # the busy handler blocks the loop from its next message on
            finally:
                pass
        sock.close()
        await eventually(lambda: len(outcome) == 2, what="the silent handler and on_close")

    frames = parse_frames(bytes(received))
    codes = [f.close_code for f in frames if f.opcode == OP_CLOSE]
    relative = {k: round(v - times["busy started"], 3) for k, v in times.items()}
    observed(
        "stops answering pings, loop blocked",
        f"frames {[f.opcode for f in frames]}, close codes {codes}, "
        f"times from busy start {relative}, {outcome}",
    )
    assert busy_replies == ["done"]
    # Closed while the loop stood still: after the busy handler began, before it returned.
    assert times["busy started"] < times["socket closed"] < times["busy returned"], relative
    if "close frame" in times:
        assert times["close frame"] < times["busy returned"], relative
    assert codes in ([1011], []), frames  # the close frame, unless the peer was just dropped
    assert all(f.opcode in (OP_PING, OP_CLOSE) for f in frames), frames
    assert sorted(map(str, outcome)) == ["('handler', 1011)", "on_close"], outcome
