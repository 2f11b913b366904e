"""The one task per app that waits on the core's ready descriptor, drains its events in
batches and hands each to its connection or, for HTTP, to a task that answers it; and
the life of one connection's handler."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint

from ._errors import WebSocketDisconnect
from ._handler_tasks import handler_tasks
from ._headers import Headers
from ._http import Request
from ._http_answers import answer_request, vet_upgrade
from ._native import NativeServer, check, is_real_cancellation
from ._params import QueryParamError
from ._roost_ffi import ffi, lib
from ._route_table import RouteTable
from ._signal import signal_factory
from ._websocket import Address, WebSocket

logger = logging.getLogger("roost")

BATCH = 256

CONNECT = lib.ROOST_EVENT_CONNECT
TEXT = lib.ROOST_EVENT_TEXT
BINARY = lib.ROOST_EVENT_BINARY
DISCONNECT = lib.ROOST_EVENT_DISCONNECT
WRITABLE = lib.ROOST_EVENT_WRITABLE
REQUEST = lib.ROOST_EVENT_REQUEST
UPGRADE_REQUEST = lib.ROOST_EVENT_UPGRADE_REQUEST

_poll = lib.roost_server_poll
EVENT_SIZE = ffi.sizeof("roost_event")
_buffer = ffi.buffer


def _text(ptr: Any, length: int) -> str:
    return str(ffi.buffer(ptr, length), "utf-8") if length else ""


def _bytes(ptr: Any, length: int) -> bytes:
    return ffi.buffer(ptr, length)[:] if length else b""


def _header_block(headers: Any, count: int) -> bytes:
    """The request's header lines as sent, from the first name to the end of the last
    value, in one copy: the core's header views point into one request head, in order
    (roost.h, `roost_event.headers`). One copy per connection where copying each name
    and value took two per header, 11 % of this thread in the connection-rate run."""
    if not count:
        return b""
    first, last = headers[0], headers[count - 1]
    start = int(ffi.cast("uintptr_t", first.name))
    end = int(ffi.cast("uintptr_t", last.value)) + last.value_len
    block: bytes = ffi.buffer(first.name, end - start)[:]
    return block


def _header_fields(headers: Any, count: int) -> list[tuple[str, str]]:
    """The core's parsed request headers as (name, value) pairs, in order."""
    return [
        (
            _bytes(h.name, h.name_len).decode("latin-1"),
            _bytes(h.value, h.value_len).decode("latin-1"),
        )
        for h in (headers[i] for i in range(count))
    ]


def _request(event: Any, scheme: str) -> Request:
    """A REQUEST or UPGRADE_REQUEST event as the `Request` Python code gets."""
    return Request(
        method=_text(event.method, event.method_len),
        path=_bytes(event.path, event.path_len).decode("utf-8", "replace"),
        query=_bytes(event.query, event.query_len).decode("utf-8", "replace"),
        headers=Headers._from_parsed(_header_fields(event.headers, event.header_count)),
        body=_bytes(event.data, event.data_len),
        peer=_text(event.peer, event.peer_len),
        scheme=scheme,
    )


def _address(peer: str) -> Address:
    host, _, port = peer.rpartition(":")
    return Address(host.strip("[]"), int(port) if port.isdigit() else 0)


class Dispatcher:
    """Routes the core's events to WebSocket objects and runs their handlers."""

    def __init__(
        self,
        native: NativeServer,
        routes: RouteTable,
        inbox_limit: int,
        task_group: TaskGroup,
        exit_requested: Callable[[BaseException], None],
    ) -> None:
        self._native = native
        self._server = native.ptr
        self._routes = routes
        self._inbox_limit = inbox_limit
        self._tasks = handler_tasks(task_group)
        self._exit_requested = exit_requested
        self._connections: dict[int, WebSocket] = {}
        self._active_handlers = 0
        self._idle = anyio.Event()
        self._events = ffi.new("roost_event[]", BATCH)
        self._count = ffi.new("size_t *")
        self._new_signal = signal_factory()
        #: Whether a disconnect starts on_close in a task of its own (off while the
        #: task group is being cancelled).
        self.spawn_on_close = True

    def poll_once(self) -> int:
        """Handles one batch of events; returns how many there were."""
        check(_poll(self._server, self._events, BATCH, EVENT_SIZE, self._count))
        n: int = self._count[0]
        events, connections = self._events, self._connections
        # Messages are most events: they are handled inline, the rest in _handle.
        for i in range(n):
            event = events[i]
            kind = event.kind
            if kind == TEXT:
                ws = connections.get(event.connection)
                if ws is not None:
                    length = event.data_len
                    ws._deliver(str(_buffer(event.data, length), "utf-8") if length else "")
            elif kind == BINARY:
                ws = connections.get(event.connection)
                if ws is not None:
                    ws._deliver(_bytes(event.data, event.data_len))
            else:
                self._handle(event)
        return n

    async def run(self) -> None:
        """Drains events for ever: poll until empty (which re-arms the descriptor),
        then wait for it. Handlers run between batches."""
        async with self._tasks.open():
            await self._run_loop(self._native.ready_fd())

    async def _run_loop(self, fd: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio
            await self._wait_and_drain(fd)
        else:
            await self._drain_as_reader(loop, fd)

    async def _drain_as_reader(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        """asyncio: a reader registered once; waiting anew each time the queue runs dry
        would cost two epoll_ctl calls and a future per wake-up."""
        loop.add_reader(fd, self._drain)
        try:
            await anyio.sleep_forever()
        finally:
            loop.remove_reader(fd)

    async def _wait_and_drain(self, fd: int) -> None:
        """trio: poll until empty (which re-arms the descriptor), then wait for it."""
        while True:
            if self.poll_once():
                await checkpoint()
            else:
                await anyio.wait_readable(fd)

    def _drain(self) -> None:
        """The asyncio reader of the ready descriptor: one batch, then, if that did
        not fill a batch, one more poll, which re-arms the descriptor if the queue is
        empty by then. Until it is, the descriptor stays readable and the loop calls
        this again after the handlers have run."""
        if self.poll_once() < BATCH:
            self.poll_once()

    def _handle(self, event: Any) -> None:
        kind = event.kind
        if kind == CONNECT:
            self._connect(event)
        elif kind == DISCONNECT:
            ws = self._connections.pop(event.connection, None)
            if ws is not None:
                ws._mark_closed(event.close_code, _text(event.data, event.data_len), by_client=True)
                if (
                    self.spawn_on_close
                    and not ws._on_close_started
                    and ws._endpoint.on_close is not None
                ):
                    self._tasks.start_soon(ws._run_on_close, False)
        elif kind == WRITABLE:
            ws = self._connections.get(event.connection)
            if ws is not None:
                ws._wake_writers()
        elif kind == REQUEST:
            route = self._routes.http[event.route]
            request = _request(event, self._routes.scheme)
            self._tasks.start_soon(
                answer_request,
                self._server,
                event.connection,
                route,
                request,
                self._exit_requested,
            )
        elif kind == UPGRADE_REQUEST:
            hook = self._routes.before_upgrade
            assert hook is not None, "the core vets upgrades only for an app with a hook"
            request = _request(event, self._routes.scheme)
            self._tasks.start_soon(
                vet_upgrade, self._server, event.connection, hook, request, self._exit_requested
            )

    def _connect(self, event: Any) -> None:
        ws = WebSocket(
            server=self._server,
            connection=event.connection,
            route=event.route,
            endpoint=self._routes.websocket[event.route],
            uuid=_text(event.uuid, event.uuid_len),
            path=_text(event.path, event.path_len),
            query=_bytes(event.query, event.query_len).decode("utf-8", "replace"),
            raw_headers=_header_block(event.headers, event.header_count),
            client=_address(_text(event.peer, event.peer_len)),
            subprotocol=_text(event.subprotocol, event.subprotocol_len) or None,
            inbox_limit=self._inbox_limit,
            new_signal=self._new_signal,
        )
        self._connections[event.connection] = ws
        self._active_handlers += 1
        self._tasks.start_soon(serve_connection, ws, self._handler_finished, self._exit_requested)

    def _handler_finished(self) -> None:
        self._active_handlers -= 1
        if self._active_handlers == 0:
            self._idle.set()

    async def wait_handlers_done(self) -> None:
        while self._active_handlers:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def cancel_handlers(self) -> None:
        """Cancels every handler and on_close task still running and waits for them."""
        await self._tasks.cancel_and_wait()

    def open_connections(self) -> list[WebSocket]:
        return list(self._connections.values())


async def serve_connection(
    ws: WebSocket, finished: Callable[[], None], exit_requested: Callable[[BaseException], None]
) -> None:
    """Checks typed query parameters, runs `on_connect`, the handler, and the close;
    calls `finished` however it ends. (One coroutine, not two: each frame is
    memory held by every idle connection.)

    What a handler raises decides what happens: WebSocketDisconnect ends it quietly; a
    cancellation of its own task propagates; SystemExit and KeyboardInterrupt ask the
    program to end (`exit_requested`: the server stops gracefully, then re-raises it);
    anything else, another BaseException included, is logged and closes this
    connection with 1011 while the server goes on."""
    try:
        endpoint = ws._endpoint
        try:
            kwargs = endpoint.handler_signature.resolve(ws.query_params)
            connect_kwargs = (
                endpoint.on_connect_signature.resolve(ws.query_params)
                if endpoint.on_connect_signature
                else {}
            )
            if endpoint.on_close_signature:
                ws._on_close_kwargs = endpoint.on_close_signature.resolve(ws.query_params)
        except QueryParamError as rejection:
            # Neither on_connect, the handler nor on_close runs for a rejected client.
            ws._on_close_started = True
            try:
                await ws.send_text(f"Error: {rejection}")
                await ws._close(1008, "")
            except WebSocketDisconnect:
                pass
            return

        try:
            if endpoint.on_connect is not None:
                greeting = endpoint.on_connect(ws, **connect_kwargs)
                if inspect.isawaitable(greeting):
                    greeting = await greeting
                await ws._send_value(greeting, "on_connect")
            ws._join_broadcast()
            await endpoint.handler(ws, **kwargs)
        except WebSocketDisconnect:
            pass
        except anyio.get_cancelled_exc_class():
            if is_real_cancellation():
                raise
            # A cancellation the handler's own code caught from elsewhere (asyncio lets a
            # CancelledError travel): it is an error of this connection, not a shutdown.
            logger.exception(
                "WebSocket handler for %s raised a stray cancellation; closing "
                "connection %s with 1011",
                endpoint.path,
                ws.id,
            )
            await _close_quietly(ws, 1011)
            return
        except (SystemExit, KeyboardInterrupt) as request:
            logger.info(
                "WebSocket handler for %s raised %s; stopping the server",
                endpoint.path,
                type(request).__name__,
            )
            exit_requested(request)
            await _close_quietly(ws, 1001)
            return
        except BaseException:
            logger.exception(
                "WebSocket handler for %s raised; closing connection %s with 1011",
                endpoint.path,
                ws.id,
            )
            await _close_quietly(ws, 1011)
            return
        await _close_quietly(ws, 1000)
    finally:
        finished()


async def _close_quietly(ws: WebSocket, code: int) -> None:
    try:
        await ws._close(code, "")
    except WebSocketDisconnect:
        pass
