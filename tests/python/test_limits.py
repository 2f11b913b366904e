"""Limits and protocol enforcement: message size (1009), invalid UTF-8 (1007),
protocol errors (1002) and the keepalive that closes a peer which stops answering."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawClient,
    blocking_handshake,
    close_payload,
    eventually,
    open_socket,
    parse_frames,
    port_of,
    serving,
)
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


def recording_app(**limits) -> tuple[App, list[object]]:
    app = App(__file__, **limits)
    outcome: list[object] = []

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            while True:
                message = await websocket.receive()
                outcome.append(len(message))
                await websocket.send_text(f"got {len(message)}")
        except WebSocketDisconnect as disconnect:
            outcome.append(("disconnect", disconnect.code))

    return app, outcome


async def test_a_message_over_the_size_limit_closes_with_1009(connect) -> None:
    app, outcome = recording_app(max_message_size=1024)
    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            await ws.send("a" * 1024)  # at the limit: fine
            assert await ws.recv() == "got 1024"
            try:
                await ws.send(b"b" * 1025)
            except ConnectionClosed:
                pass  # the server may close before the client finishes sending
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1009)
        await eventually(lambda: len(outcome) == 2, what="the handler's disconnect")
    assert outcome == [1024, ("disconnect", 1009)]


async def test_the_default_size_limit_is_one_mebibyte(connect) -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with connect(url + "/ws", max_size=None) as ws:
            await ws.send(b"a" * (1 << 20))
            assert await ws.recv() == f"got {1 << 20}"
            try:
                await ws.send(b"a" * ((1 << 20) + 1))
            except ConnectionClosed:
                pass  # the server may close before the client finishes sending
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1009)


async def test_a_fragmented_message_over_the_size_limit_closes_with_1009(connect) -> None:
    app, outcome = recording_app(max_message_size=1024)
    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            try:
                await ws.send(["x" * 600, "y" * 600])  # each frame fits, the message does not
            except ConnectionClosed:
                pass  # the server may close before the client finishes sending
            messages, end = await ws.recv_closed()
            assert (messages, end.code) == ([], 1009)


async def test_invalid_utf8_in_a_text_message_closes_with_1007() -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_TEXT, "ok ✓".encode())
            frame = await raw.recv_frame()
            assert frame is not None and frame.payload == b"got 4"
            await raw.send_frame(OP_TEXT, b"\xff\xfe")
            frames = await raw.recv_all()
            assert [f.opcode for f in frames] == [OP_CLOSE]
            assert frames[0].close_code == 1007
        await eventually(lambda: len(outcome) == 2, what="the handler's disconnect")
    assert outcome == [4, ("disconnect", 1007)]


async def test_invalid_utf8_split_across_fragments_closes_with_1007() -> None:
    app, _ = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_TEXT, b"abc\xc3", fin=False)  # an incomplete sequence...
            await raw.send_frame(OP_CONT, b"(", fin=True)  # ...that never completes
            frames = await raw.recv_all()
            assert [f.opcode for f in frames] == [OP_CLOSE]
            assert frames[0].close_code == 1007


@pytest.mark.parametrize(
    "what, frame",
    [
        ("unmasked frame", dict(opcode=OP_TEXT, payload=b"hi", mask=False)),
        ("reserved opcode", dict(opcode=0x3, payload=b"")),
        ("reserved bits", dict(opcode=OP_TEXT, payload=b"hi", rsv=0b100)),
        ("continuation without start", dict(opcode=OP_CONT, payload=b"x")),
        ("fragmented control frame", dict(opcode=OP_PING, payload=b"", fin=False)),
    ],
)
async def test_a_protocol_error_closes_with_1002(what: str, frame: dict) -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(**frame)
            frames = await raw.recv_all()
            assert [f.opcode for f in frames] == [OP_CLOSE], what
            assert frames[0].close_code == 1002, what
        await eventually(lambda: bool(outcome), what="the handler's disconnect")
    assert outcome == [("disconnect", 1002)]


@pytest.mark.parametrize("code", [1005, 1006, 999, 1015, 5000])
async def test_a_close_frame_with_a_code_a_peer_may_not_send_closes_with_1002(code: int) -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_CLOSE, close_payload(code))
            frames = await raw.recv_all()
            assert [f.opcode for f in frames] == [OP_CLOSE]
            assert frames[0].close_code == 1002
        await eventually(lambda: bool(outcome), what="the handler's disconnect")
    assert outcome == [("disconnect", 1002)]


async def test_an_empty_close_frame_is_answered_and_reported_as_1005() -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_CLOSE, b"")
            frame = await raw.recv_frame()
            assert frame is not None and frame.opcode == OP_CLOSE
            assert await raw.recv_frame() is None
        await eventually(lambda: bool(outcome), what="the handler's disconnect")
    assert outcome == [("disconnect", 1005)]


async def test_a_client_ping_is_answered_with_a_pong() -> None:
    app, outcome = recording_app()
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            await raw.send_frame(OP_PING, b"are you there")
            frame = await raw.recv_frame()
            assert frame is not None and (frame.opcode, frame.payload) == (
                OP_PONG,
                b"are you there",
            )
            await raw.send_frame(OP_TEXT, b"and data")
            frame = await raw.recv_frame()
            assert frame is not None and frame.payload == b"got 8"
    assert outcome[0] == 8


async def test_keepalive_closes_a_peer_that_never_answers_pings() -> None:
    app, outcome = recording_app(ping_interval=0.2, ping_timeout=0.3)
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            started = anyio.current_time()
            frames = await raw.recv_all(timeout=5, answer_pings=False)
            elapsed = anyio.current_time() - started
            # Pings are left out of `frames`; all that remains is the closing frame.
            assert [f.opcode for f in frames] in ([OP_CLOSE], []), frames
            assert elapsed < 2.0, f"closed after {elapsed:.2f} s"
        await eventually(lambda: bool(outcome), timeout=2, what="the handler's disconnect")
    assert isinstance(outcome[0], tuple) and outcome[0][0] == "disconnect"


async def test_keepalive_pings_are_sent_and_a_peer_that_answers_stays() -> None:
    # A pong timeout well above the interval: a loaded machine may delay the test's
    # own answers, which must not read as a dead peer.
    app, outcome = recording_app(ping_interval=0.2, ping_timeout=1.0)
    async with serving(app) as url:
        async with await RawClient.open(url, "/ws") as raw:
            pings = 0
            with anyio.move_on_after(1.2):
                while True:
                    frame = await raw.recv_frame()
                    assert frame is not None, "the server closed a peer that answers pings"
                    assert frame.opcode == OP_PING, frame
                    pings += 1
                    await raw.send_frame(OP_PONG, frame.payload)
            assert pings >= 3
            await raw.send_frame(OP_BINARY, b"still here")
            frame = await raw.recv_frame()
            while frame is not None and frame.opcode == OP_PING:
                frame = await raw.recv_frame()
            assert frame is not None and frame.payload == b"got 10"
    assert outcome[0] == 10


@pytest.mark.core_thread
async def test_keepalive_runs_in_the_core_while_the_python_loop_is_blocked() -> None:
    app, outcome = recording_app(ping_interval=0.2, ping_timeout=0.3)
    async with serving(app) as url:
        sock = blocking_handshake(port_of(url), "/ws")
        try:
            # Everything below blocks this thread, and with it the event loop that
            # runs the app's Python side: only the core can ping and close.
            sock.settimeout(0.2)
            received = b""
            started = time.monotonic()
            while time.monotonic() - started < 4.0:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                received += chunk
            elapsed = time.monotonic() - started
        finally:
            sock.close()
        assert elapsed < 2.5, f"the socket was still open after {elapsed:.2f} s"
        frames = parse_frames(received)
        assert frames and frames[0].opcode == OP_PING
        assert all(f.opcode in (OP_PING, OP_CLOSE) for f in frames), frames
        await eventually(lambda: bool(outcome), timeout=2, what="the handler's disconnect")
    assert isinstance(outcome[0], tuple) and outcome[0][0] == "disconnect"


async def test_a_busy_python_loop_does_not_break_a_healthy_connection() -> None:
    """The client runs in a thread of its own (websockets' sync client, which answers
    pings by itself) while the event loop running the app is blocked for several ping
    timeouts: the core keeps the connection alive on its own."""
    from websockets.sync.client import connect as sync_connect

    app, outcome = recording_app(ping_interval=0.1, ping_timeout=0.5)
    connected, go = threading.Event(), threading.Event()
    replies: list[object] = []

    def client(url: str) -> None:
        with sync_connect(url, ping_interval=None, open_timeout=5) as ws:
            connected.set()
            go.wait(10)
            ws.send("alive")
            replies.append(ws.recv(timeout=5))

    async with serving(app) as url:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, client, url + "/ws")
            await eventually(connected.is_set, what="the client thread to connect")
            time.sleep(2.0)  # noqa: ASYNC251 (blocks the event loop: four ping timeouts' worth)
            go.set()
    assert replies == ["got 5"]
    assert outcome[0] == 5


async def test_connections_over_max_connections_get_http_503(connect) -> None:
    app, _ = recording_app(max_connections=2)
    async with serving(app) as url:
        async with connect(url + "/ws") as a, connect(url + "/ws") as _b:
            await eventually(lambda: app.connection_count() == 2, what="two connections")
            with pytest.raises(InvalidStatus) as caught:
                async with connect(url + "/ws"):
                    pass
            assert caught.value.response.status_code == 503
            await a.send("x")
            assert await a.recv() == "got 1"
        await eventually(lambda: app.connection_count() == 0, what="both to close")
        async with connect(url + "/ws") as c:  # room again
            await c.send("y")
            assert await c.recv() == "got 1"


async def test_silent_sockets_count_against_max_pending_handshakes_not_max_connections(
    connect,
) -> None:
    app, _ = recording_app(max_connections=1, max_pending_handshakes=1)
    async with serving(app) as url:
        async with RawClient(await open_socket(port_of(url))) as silent:
            await silent.send_raw(b"GET /ws HTTP/1.1\r\n")  # and nothing more
            await anyio.sleep(0.1)
            # The one handshake place is taken: a second socket is answered 503 at once.
            with pytest.raises(InvalidStatus) as caught:
                async with connect(url + "/ws"):
                    pass
            assert caught.value.response.status_code == 503
        # The silent socket is gone: a client upgrades, and takes the one connection place.
        await anyio.sleep(0.1)
        async with connect(url + "/ws") as ws:
            await ws.send("x")
            assert await ws.recv() == "got 1"


async def test_a_client_that_never_sends_its_handshake_is_dropped() -> None:
    app, outcome = recording_app(handshake_timeout=0.3)
    async with serving(app) as url:
        stream = await open_socket(port_of(url))
        async with RawClient(stream) as silent:
            started = anyio.current_time()
            with anyio.fail_after(3):
                while await silent._fill():
                    pass  # whatever the server says, it must then hang up
            assert anyio.current_time() - started < 2.0
    assert outcome == []  # no connection ever reached the app


# ---- the size limits at their boundaries ------------------------------------------

LIMIT = 64 * 1024


async def _outcome_of_message(connect, app, outcome, size: int, pieces: int):
    """Sends one binary message of `size` bytes in `pieces` frames; returns the length
    the handler saw, or the close code when the server closed instead."""
    async with serving(app) as url:
        async with connect(url + "/ws", max_size=None) as ws:
            payload = b"m" * size
            step = -(-size // pieces)
            fragments = [payload[i : i + step] for i in range(0, size, step)]
            try:
                await ws.send(fragments if pieces > 1 else payload)
            except ConnectionClosed:
                pass  # the server may close before the client finishes sending
            try:
                reply = await ws.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            assert reply == f"got {size}"
            return outcome[-1]


@pytest.mark.parametrize("pieces", [1, 4], ids=["one frame", "fragmented"])
async def test_the_message_limit_is_inclusive_however_the_message_is_framed(
    connect, pieces
) -> None:
    for size, expected in ((LIMIT - 1, LIMIT - 1), (LIMIT, LIMIT), (LIMIT + 1, 1009)):
        app, outcome = recording_app(max_message_size=LIMIT)
        assert await _outcome_of_message(connect, app, outcome, size, pieces) == expected, size


async def test_raising_only_the_message_limit_lets_one_frame_of_that_size_through(connect) -> None:
    # The frame limit follows the message limit: past the 1 MiB default in one frame.
    limit = (1 << 20) + 1024
    app, outcome = recording_app(max_message_size=limit)
    assert app.limits.max_frame_size is None
    assert await _outcome_of_message(connect, app, outcome, limit, 1) == limit
    app, outcome = recording_app(max_message_size=limit)
    assert await _outcome_of_message(connect, app, outcome, limit + 1, 1) == 1009


async def test_an_explicit_frame_limit_is_inclusive_and_bounds_frames_only(connect) -> None:
    frame_limit = 16 * 1024
    for size, pieces, expected in (
        (frame_limit, 1, frame_limit),
        (frame_limit + 1, 1, 1009),
        (LIMIT, LIMIT // frame_limit, LIMIT),
    ):
        app, outcome = recording_app(max_message_size=LIMIT, max_frame_size=frame_limit)
        assert await _outcome_of_message(connect, app, outcome, size, pieces) == expected, size


def test_defaults_come_from_the_core_and_unknown_limits_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from roost import LimitOptions, Limits
    from roost._roost_ffi import ffi, lib

    # App's keyword arguments and the resolved limits name the same limits.
    assert list(LimitOptions.__annotations__) == list(Limits.__dataclass_fields__)

    options = ffi.new("roost_options *")
    assert lib.roost_options_init(options, ffi.sizeof("roost_options")) == lib.ROOST_OK
    defaults = Limits.defaults()
    assert defaults.max_message_size == options.max_message_size
    assert defaults.max_pending_handshakes == options.max_pending_handshakes
    assert defaults.ping_interval == options.ping_interval_ms / 1000
    monkeypatch.delenv("ROOST_INLINE_IO", raising=False)
    assert App().limits == defaults
    with pytest.raises(TypeError, match="unknown limit 'max_mesage_size'"):
        App(max_mesage_size=10)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_frame_size must be positive"):
        App(max_frame_size=0)
