"""Faults in the application's Python code stay with their own connection: exceptions
in on_connect, in on_close and in the handler, a handler that never receives, a
cancelled handler, a slow on_connect. Where the code raises, the traceback is logged
on the "roost" logger; meanwhile other connections keep echoing.

Already covered elsewhere (not repeated here): a handler raising an ordinary exception
(test_closing.py::test_handler_raising_logs_the_traceback_closes_with_1011_and_spares_others),
on_connect raising closes with 1011 without running the handler
(test_callbacks.py::test_an_on_connect_error_closes_with_1011_without_running_the_handler),
a handler ignoring the connection and the shutdown
(test_running.py::test_a_stuck_handler_does_not_keep_the_process_alive).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from conftest import HOST, OP_BINARY, blocking_handshake, encode_frame, eventually, port_of, serving
from roost import App

pytestmark = pytest.mark.anyio


def roost_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "roost" and r.levelno >= logging.ERROR]


def add_echo(app: App) -> None:
    """/echo: the bystander route whose clients must keep being served."""

    @app.websocket("/echo")
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)


@contextlib.asynccontextmanager
async def bystanders(url: str, connect: Any, count: int = 3) -> AsyncIterator[Any]:
    """`count` /echo clients that keep echoing in the background for the body; yields
    a check() that asserts each of them is still served promptly (an echo round trip
    under 1 s) and returns the number of round trips so far."""
    stats = {"round trips": 0, "slowest": 0.0}
    errors: list[BaseException] = []

    async def chatter(ws: Any, index: int) -> None:
        i = 0
        try:
            while True:
                started = anyio.current_time()
                await ws.send(f"{index}:{i}")
                assert await ws.recv(timeout=5) == f"{index}:{i}"
                stats["slowest"] = max(stats["slowest"], anyio.current_time() - started)
                stats["round trips"] += 1
                i += 1
                await anyio.sleep(0.02)
        except BaseException as error:  # noqa: BLE001 - reported by check()
            if not isinstance(error, anyio.get_cancelled_exc_class()):
                errors.append(error)
            raise

    def check() -> int:
        assert not errors, errors
        assert stats["slowest"] < 1.0, stats
        return stats["round trips"]

    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(url + "/echo")) for _ in range(count)]
        async with anyio.create_task_group() as tg:
            for index, ws in enumerate(clients):
                tg.start_soon(chatter, ws, index)
            await anyio.sleep(0.1)
            before = check()
            yield check
            # Still served after whatever the body did: more round trips come.
            after = check()
            await eventually(
                lambda: check() >= after + 2 * count,
                timeout=2,
                what="the bystanders to go on echoing",
            )
            assert check() > before
            tg.cancel_scope.cancel()


# ---------------------------------------------------------------------------------
# Exceptions


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_an_exception_in_on_connect_stays_with_its_connection(connect, caplog, style) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)
    add_echo(app)
    handler_ran: list[str] = []
    closes: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        handler_ran.append(websocket.id)

    if style == "sync":

        @handler.on_connect
        def on_connect(websocket):
            raise LookupError(f"on_connect failed for {websocket.id}")
    else:

        @handler.on_connect
        async def on_connect(websocket):
            await anyio.sleep(0.01)
            raise LookupError(f"on_connect failed for {websocket.id}")

    @handler.on_close
    def on_close(websocket):
        closes.append(websocket.id)

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            for _ in range(5):
                async with connect(url + "/ws") as doomed:
                    messages, end = await doomed.recv_closed()
                    assert (messages, end.code) == ([], 1011)
                check()
            await eventually(lambda: len(closes) == 5, what="on_close of every failed connection")
    records = roost_errors(caplog)
    assert len(records) == 5, caplog.text
    for record, closed_id in zip(records, closes, strict=False):
        assert record.exc_info is not None and record.exc_info[0] is LookupError
        assert closed_id in str(record.exc_info[1])
        assert "/ws" in record.getMessage()
    assert "Traceback" in caplog.text and "on_connect failed" in caplog.text
    assert handler_ran == []


@pytest.mark.parametrize("style", ["sync", "async"])
@pytest.mark.parametrize("how", ["handler returns", "server closes 4001", "client closes"])
async def test_an_exception_in_on_close_is_logged_and_the_close_completes(
    connect, caplog, style, how
) -> None:
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)
    add_echo(app)
    handler_ended: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket, how: str):
        try:
            await websocket.send_text("hi")
            if how == "handler returns":
                return
            if how == "server closes 4001":
                await websocket.close(4001, "bye")
                return
            await websocket.receive_text()
        finally:
            handler_ended.append(how)

    if style == "sync":

        @handler.on_close
        def on_close(websocket, how: str):
            raise KeyError(f"on_close failed ({how})")
    else:

        @handler.on_close
        async def on_close(websocket, how: str):
            await anyio.sleep(0.01)
            raise KeyError(f"on_close failed ({how})")

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            async with connect(f"{url}/ws?how={how.replace(' ', '+')}") as ws:
                assert await ws.recv() == "hi"
                if how == "client closes":
                    await ws.close(4100, "leaving")
                    assert ws.close_code == 4100  # the server answered the close frame
                else:
                    messages, end = await ws.recv_closed()
                    assert messages == []  # on_close raised: no final message
                    assert (end.code, end.reason) == (
                        (1000, "") if how == "handler returns" else (4001, "bye")
                    )
            await eventually(lambda: bool(roost_errors(caplog)), what="the logged on_close error")
            check()
        await eventually(lambda: handler_ended == [how], what="the handler's end")
    records = roost_errors(caplog)
    assert len(records) == 1, caplog.text
    assert records[0].exc_info is not None and records[0].exc_info[0] is KeyError
    assert "on_close" in records[0].getMessage()
    assert "Traceback" in caplog.text and f"on_close failed ({how})" in caplog.text


async def test_a_handler_exception_from_its_own_task_group_stays_with_its_connection(
    connect, caplog
) -> None:
    """An exception group (a failing child task of the handler) is an exception like
    any other: logged with its traceback, 1011 for that connection only."""
    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)
    add_echo(app)

    @app.websocket("/ws")
    async def handler(websocket):
        async def worker():
            await websocket.receive_text()
            raise ValueError("a child task of the handler failed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            await anyio.sleep_forever()

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            async with connect(url + "/ws") as doomed:
                await doomed.send("go")
                messages, end = await doomed.recv_closed()
                assert (messages, end.code) == ([], 1011)
            check()
    records = roost_errors(caplog)
    assert len(records) == 1, caplog.text
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], BaseExceptionGroup)
    assert "a child task of the handler failed" in caplog.text


@pytest.mark.parametrize("roost_backend", ["asyncio"])  # trio's Cancelled cannot be raised by hand
@pytest.mark.parametrize("where", ["handler", "on_connect", "on_close"])
async def test_a_stray_cancelled_error_stays_with_its_connection(connect, caplog, where) -> None:
    """asyncio code can end with a CancelledError that is not a cancellation of the
    handler: awaiting a task that someone else cancelled. That is an error of this
    connection like any other (logged, 1011 or just logged for on_close), not a reason
    to stop the whole server."""
    import asyncio

    caplog.set_level(logging.ERROR, logger="roost")
    app = App(__file__)
    add_echo(app)

    async def await_a_cancelled_task() -> None:
        task = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        await task  # raises CancelledError here, in the caller

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.receive_text()
        if where == "handler":
            await await_a_cancelled_task()
        await websocket.send_text("fine")

    if where == "on_connect":

        @handler.on_connect
        async def on_connect(websocket):
            await await_a_cancelled_task()
    elif where == "on_close":

        @handler.on_close
        async def on_close(websocket):
            await await_a_cancelled_task()

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            async with connect(url + "/ws") as doomed:
                await doomed.send("go")
                messages, end = await doomed.recv_closed(timeout=5)
            expected = ([], 1011) if where != "on_close" else (["fine"], 1000)
            assert (messages, end.code) == expected, f"{where}: {messages}, {end}"
            await eventually(lambda: bool(roost_errors(caplog)), what="the logged error")
            check()
            assert app.port is not None, "the server stopped"
    records = roost_errors(caplog)
    assert len(records) == 1, caplog.text
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is asyncio.CancelledError


# ---------------------------------------------------------------------------------
# Handlers that never receive, cancelled handlers


async def test_a_handler_that_never_receives_holds_back_only_its_own_client(
    connect, caplog
) -> None:
    """Its client sends far more than the inbound queue holds: the server stops reading
    that socket, the client's sends end up waiting; everyone else is served; when the
    client leaves, on_close runs at once although the handler never looks."""
    caplog.set_level(logging.WARNING, logger="roost")
    app = App(__file__, inbound_queue_depth=4)
    add_echo(app)
    release = anyio.Event()
    closed: list[str] = []
    handler_done: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await release.wait()  # never receives
        handler_done.append(websocket.id)

    @handler.on_close
    def on_close(websocket):
        closed.append(websocket.id)

    frame = encode_frame(OP_BINARY, b"x" * 65536)
    sent = 0

    def flood_then_reset(port: int) -> None:
        """In a thread: sends until the server stops taking data (two seconds at most),
        then leaves with a reset. (A plain close would queue its FIN behind the data
        the server is not reading, and the server could not see it.)"""
        nonlocal sent
        sock = blocking_handshake(port, "/ws")
        sock.settimeout(0.5)
        deadline = time.monotonic() + 2
        try:
            while time.monotonic() < deadline:
                sock.sendall(frame)
                sent += 1
        except TimeoutError:
            pass  # held back
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            await anyio.to_thread.run_sync(flood_then_reset, port_of(url))
            check()
            assert sent < 200, f"{sent} messages of 64 KiB went into an unread connection"
            await eventually(lambda: bool(closed), timeout=2, what="on_close")
            assert app.connection_count() == 3  # the bystanders only
            check()
        release.set()
        await eventually(lambda: bool(handler_done), what="the released handler")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.parametrize("how", ["cancels its own scope", "times out its receive"])
async def test_a_handler_cancelling_itself_goes_on_normally(connect, caplog, how) -> None:
    caplog.set_level(logging.WARNING, logger="roost")
    app = App(__file__)
    add_echo(app)

    @app.websocket("/ws")
    async def handler(websocket):
        if how == "cancels its own scope":
            with anyio.CancelScope() as scope:
                scope.cancel()
                await websocket.receive_text()
            outcome = f"scope cancelled: {scope.cancelled_caught}"
        else:
            with anyio.move_on_after(0.2) as scope:
                await websocket.receive_text()
            outcome = f"timed out: {scope.cancelled_caught}"
        await websocket.send_text(outcome)
        # Receiving still works after the cancelled receive, and nothing was lost.
        await websocket.send_text(f"then {await websocket.receive_text()}")

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            async with connect(url + "/ws") as ws:
                first = await ws.recv()
                assert first in ("scope cancelled: True", "timed out: True")
                await ws.send("after")
                assert await ws.recv() == "then after"
                messages, end = await ws.recv_closed()
                assert (messages, end.code) == ([], 1000)
            check()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_handlers_cancelled_at_shutdown_clean_up_quietly(connect, caplog) -> None:
    """serve() is cancelled while handlers wait in receive, in a sleep, and in a send
    held back by a client that does not read: every handler's `finally` runs, every
    on_close runs once, clients get 1001, and nothing is logged as an error."""
    caplog.set_level(logging.WARNING, logger="roost")
    app = App(__file__, outbound_queue_bytes=65536, shutdown_grace=1.0)
    cleaned: list[str] = []
    closes: list[str] = []
    sending = anyio.Event()

    @app.websocket("/ws")
    async def handler(websocket, state: str):
        try:
            if state == "receive":
                await websocket.receive_text()
            elif state == "sleep":
                await anyio.sleep_forever()
            else:
                while True:
                    with anyio.move_on_after(0.3) as scope:
                        await websocket.send_bytes(b"s" * 16384)
                    if scope.cancelled_caught:
                        sending.set()
                        await websocket.send_bytes(b"s" * 16384)  # waits until cancelled
        finally:
            cleaned.append(state)

    @handler.on_close
    def on_close(websocket, state: str):
        closes.append(state)

    server_scope = anyio.CancelScope()

    async def run_server(*, task_status) -> None:
        with server_scope:
            await app.serve(HOST, 0, task_status=task_status)

    states = ["receive", "sleep", "send"]
    async with anyio.create_task_group() as tg:
        port = await tg.start(run_server)
        url = f"ws://{HOST}:{port}"
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                state: await stack.enter_async_context(
                    connect(f"{url}/ws?state={state}", max_queue=2)
                )
                for state in states
            }
            await eventually(lambda: app.connection_count() == 3, what="three connections")
            with anyio.fail_after(20):
                await sending.wait()
            server_scope.cancel()
            for state in ("receive", "sleep"):
                _, end = await clients[state].recv_closed()
                assert end.code == 1001, state
            clients["send"].abort()  # it never read; its close frame is behind the data
    assert sorted(cleaned) == sorted(states)
    assert sorted(closes) == sorted(states)
    assert app.port is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


# ---------------------------------------------------------------------------------
# A slow on_connect


async def test_a_slow_on_connect_holds_back_only_its_own_connection(connect, caplog) -> None:
    """Five clients whose on_connect sleeps 1 s each, at once: the bystanders keep
    echoing during that second, the five are greeted after about 1 s (not 5), and what
    they sent meanwhile reaches their handlers afterwards, in order."""
    caplog.set_level(logging.WARNING, logger="roost")
    app = App(__file__)
    add_echo(app)
    started: dict[str, float] = {}

    @app.websocket("/ws")
    async def handler(websocket, name: str):
        started[name] = anyio.current_time()
        for _ in range(3):
            await websocket.send_text(f"{name} got {await websocket.receive_text()}")

    @handler.on_connect
    async def on_connect(websocket, name: str):
        await anyio.sleep(1)
        return f"welcome {name}"

    results: dict[str, list[str]] = {}

    async def slow_client(url: str, name: str) -> None:
        async with connect(f"{url}/ws?name={name}") as ws:
            for i in range(3):
                await ws.send(f"m{i}")  # before the greeting: kept in order
            results[name] = [await ws.recv(timeout=5) for _ in range(4)]

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            began = anyio.current_time()
            async with anyio.create_task_group() as tg:
                for n in range(5):
                    tg.start_soon(slow_client, url, f"c{n}")
                await anyio.sleep(0.5)
                trips_half_way = check()
            elapsed = anyio.current_time() - began
            trips = check()
    assert 1.0 <= elapsed < 2.0, f"five slow on_connects took {elapsed:.2f} s"
    assert trips > trips_half_way > 0
    for n in range(5):
        name = f"c{n}"
        assert results[name] == [f"welcome {name}"] + [f"{name} got m{i}" for i in range(3)]
        assert started[name] - began >= 0.95
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


class CustomBaseError(BaseException):
    """A BaseException that is neither a cancellation nor a request to exit."""


async def test_a_custom_base_exception_stays_with_its_connection(connect, caplog) -> None:
    app = App()
    add_echo(app)

    @app.websocket("/ws")
    async def raises(websocket):
        await websocket.receive_text()
        raise CustomBaseError("handler gave up")

    async with serving(app) as url:
        async with bystanders(url, connect) as check:
            async with connect(url + "/ws") as ws:
                await ws.send("go")
                messages, end = await ws.recv_closed()
                assert (messages, end.code) == ([], 1011)
            check()
            # The server still takes new connections on the same route.
            async with connect(url + "/ws") as again:
                await again.send("go")
                assert (await again.recv_closed())[1].code == 1011
    assert any(r.exc_info and r.exc_info[0] is CustomBaseError for r in roost_errors(caplog))


async def test_system_exit_in_a_handler_stops_the_server_gracefully_then_serve_raises_it(
    connect,
) -> None:
    app = App()
    add_echo(app)

    @app.websocket("/exit")
    async def exits(websocket):
        await websocket.receive_text()
        raise SystemExit(3)

    raised: list[BaseException] = []

    async def serve(*, task_status: Any) -> None:
        try:
            await app.serve(HOST, 0, task_status=task_status)
        except SystemExit as request:
            raised.append(request)

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve)
        url = f"ws://{HOST}:{port}"
        async with connect(url + "/echo") as bystander, connect(url + "/exit") as leaving:
            await bystander.send("still here")
            assert await bystander.recv() == "still here"
            await leaving.send("exit now")
            # Every client is closed as in a graceful stop: 1001.
            assert (await bystander.recv_closed())[1].code == 1001
            assert (await leaving.recv_closed())[1].code == 1001
    assert [type(r) for r in raised] == [SystemExit]
    assert raised[0].code == 3
    assert app.port is None
