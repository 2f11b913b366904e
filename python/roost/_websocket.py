"""The `websocket` object a handler receives."""

from __future__ import annotations

import inspect
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
from anyio.lowlevel import checkpoint

from ._errors import WebSocketDisconnect
from ._native import (
    CLOSED,
    OK,
    WOULD_BLOCK,
    check,
    check_close,
    check_unless_gone,
    connection_gone,
    is_real_cancellation,
    publish_call,
)
from ._query import QueryParams
from ._roost_ffi import ffi, lib
from ._signal import Signal
from ._topics import check_topic_name, message, topic_name, topics_of

if TYPE_CHECKING:
    from ._endpoint import Endpoint

logger = logging.getLogger("roost")

Message = str | bytes

#: Receives and sends that find a message waiting or room to send complete without
#: suspending (as a socket read with data buffered would); every this many such calls
#: on one connection yield to the event loop once, so a busy connection cannot keep
#: others, or a cancellation, waiting for long.
CALLS_BETWEEN_YIELDS = 32

_SEND_TEXT = lib.roost_connection_send_text
_SEND_BINARY = lib.roost_connection_send_binary


def _headers_dict(raw_headers: bytes) -> dict[str, str]:
    """The request's header lines as sent, which the core has checked (a name has no
    colon and a value no line break, so the split is exact), as a dict: names
    lower-cased, values without the whitespace around them, repeated headers joined
    by ", "."""
    headers: dict[str, str] = {}
    for line in raw_headers.decode("latin-1").split("\n"):
        name, _, value = line.partition(":")
        name, value = name.lower(), value.strip(" \t\r")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class Address(NamedTuple):
    """A peer's address."""

    host: str
    port: int


class WebSocket:
    """One client connection, given to the handler, `on_connect` and `on_close`.

    Attributes:
        id: The connection's UUID4, the same in the handler and both callbacks.
        path: The request path, without the query string.
        query_params: The parsed query string.
        headers: Request headers, names lower-cased (repeated headers joined by ", ").
        client: The peer's address.
        subprotocol: The subprotocol selected for this connection (the first of the
            route's `subprotocols` that the client offered), or None.
    """

    # Slots keep each connection's object small; "__dict__" still lets applications
    # attach attributes of their own.
    __slots__ = (
        "id",
        "path",
        "query_params",
        "_raw_headers",
        "_headers",
        "client",
        "subprotocol",
        "_server",
        "_connection",
        "_route",
        "_endpoint",
        "_inbox",
        "_inbox_limit",
        "_reading_paused",
        "_message_arrived",
        "_calls_since_yield",
        "_writable",
        "_receiving",
        "_closed",
        "_closed_by_client",
        "_closing",
        "_on_close_started",
        "_on_close_kwargs",
        "__dict__",
    )

    def __init__(
        self,
        *,
        server: Any,
        connection: int,
        route: int,
        endpoint: Endpoint,
        uuid: str,
        path: str,
        query: str,
        raw_headers: bytes,
        client: Address,
        subprotocol: str | None,
        inbox_limit: int,
        new_signal: Callable[[], Signal],
    ) -> None:
        self.id = uuid
        self.path = path
        self.query_params = QueryParams(query)
        # The headers are kept as one bytes object and made a dict on first use: a dict
        # of strings per connection costs more memory than the bytes it comes from.
        self._raw_headers = raw_headers
        self._headers: dict[str, str] | None = None
        self.client = client
        self.subprotocol = subprotocol
        self._server = server
        self._connection = connection
        self._route = route
        self._endpoint = endpoint
        # Made on a message's arrival and dropped once emptied: an idle connection
        # holds no queue.
        self._inbox: deque[Message] | None = None
        self._inbox_limit = inbox_limit
        self._reading_paused = False
        self._message_arrived = new_signal()
        self._calls_since_yield = 0
        self._writable: anyio.Event | None = None
        self._receiving = False
        # Set once the connection is closed: by the client, or by the server.
        self._closed: WebSocketDisconnect | None = None
        self._closed_by_client = False
        self._closing = False
        self._on_close_started = False
        self._on_close_kwargs: dict[str, Any] = {}

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, names lower-cased (repeated headers joined by ", ")."""
        if self._headers is None:
            self._headers = _headers_dict(self._raw_headers) if self._raw_headers else {}
        return self._headers

    def __repr__(self) -> str:
        return f"<WebSocket {self.id} {self.path}>"

    # ---- receiving -------------------------------------------------------------

    async def receive(self) -> Message:
        """Waits for the next message: `str` for a text message, `bytes` for binary.

        Cancel-safe: a message is taken only when this returns. Messages the client
        sent before it closed are delivered first.

        Raises:
            WebSocketDisconnect: the connection is closed.
            RuntimeError: another task is already receiving on this connection.
        """
        message = self._take_waiting_message()
        if message is None:
            message = await self._wait_for_message()
        return message

    def _take_waiting_message(self) -> Message | None:
        """The next message if one is already here and no yield is due; else None, and
        the caller waits in `_wait_for_message`. Never suspends."""
        inbox = self._inbox
        if not inbox or self._receiving or self._calls_since_yield >= CALLS_BETWEEN_YIELDS:
            return None
        if self._closed is not None and not self._closed_by_client:
            return None
        self._calls_since_yield += 1
        return self._pop(inbox)

    async def _wait_for_message(self) -> Message:
        if self._receiving:
            raise RuntimeError(
                "another task is already waiting for a message on this WebSocket; "
                "receive from one task at a time"
            )
        self._receiving = True
        try:
            await self._yield_if_due()
            while True:
                inbox = self._inbox
                closed = self._closed
                # After a server-side close nothing more is delivered; after the
                # client's, what it sent before closing still is.
                if closed is not None and not (self._closed_by_client and inbox):
                    raise WebSocketDisconnect(closed.code, closed.reason)
                if inbox:
                    return self._pop(inbox)
                await self._message_arrived.wait()
                self._calls_since_yield = 0
        finally:
            self._receiving = False

    def _pop(self, inbox: deque[Message]) -> Message:
        message = inbox.popleft()
        if not inbox:
            self._inbox = None
        if self._reading_paused and len(inbox) <= self._inbox_limit // 2:
            self._set_reading_paused(False)
        return message

    async def receive_text(self) -> str:
        """The next message as `str` (a binary message is decoded as UTF-8).

        Raises:
            WebSocketDisconnect: the connection is closed.
            UnicodeDecodeError: a binary message was not UTF-8 (it is consumed).
        """
        message = self._take_waiting_message()
        if message is None:
            message = await self._wait_for_message()
        return message if isinstance(message, str) else message.decode("utf-8")

    async def receive_bytes(self) -> bytes:
        """The next message as `bytes` (a text message is encoded as UTF-8).

        Raises:
            WebSocketDisconnect: the connection is closed.
        """
        message = self._take_waiting_message()
        if message is None:
            message = await self._wait_for_message()
        return message if isinstance(message, bytes) else message.encode("utf-8")

    async def receive_json(self) -> Any:
        """The next message (text or binary) parsed as JSON.

        Raises:
            WebSocketDisconnect: the connection is closed.
            json.JSONDecodeError: the message is not JSON (it is consumed; the
                connection goes on).
        """
        return json.loads(await self.receive())

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                message = await self.receive()
            except WebSocketDisconnect:
                return
            yield message

    # ---- sending ---------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Sends a text message. Waits only while this connection's send queue is full.

        Raises:
            TypeError: `data` is not a `str`.
            WebSocketDisconnect: the connection is closed.
        """
        if not isinstance(data, str):
            raise TypeError(f"send_text() takes a str, not {type(data).__name__}")
        payload = data.encode("utf-8")
        if not self._send_at_once(_SEND_TEXT, payload):
            await self._send(_SEND_TEXT, payload)

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Sends a binary message. Waits only while this connection's send queue is full.

        Raises:
            TypeError: `data` is not bytes-like.
            WebSocketDisconnect: the connection is closed.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() takes bytes, not {type(data).__name__}")
        payload = bytes(data)
        if not self._send_at_once(_SEND_BINARY, payload):
            await self._send(_SEND_BINARY, payload)

    async def send_json(self, data: Any) -> None:
        """Sends `data` as compact JSON text (non-ASCII characters kept).

        Raises:
            TypeError: `data` cannot be encoded as JSON.
            WebSocketDisconnect: the connection is closed.
        """
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if not self._send_at_once(_SEND_TEXT, payload):
            await self._send(_SEND_TEXT, payload)

    async def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Sends `str` as a text message and bytes as a binary one.

        Raises:
            TypeError: `data` is neither.
            WebSocketDisconnect: the connection is closed.
        """
        if isinstance(data, str):
            await self.send_text(data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            await self.send_bytes(data)
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")

    def _send_at_once(self, send: Callable[[Any, int, bytes, int], int], payload: bytes) -> bool:
        """Hands `payload` to the core if it has room and no yield is due; False means
        the caller must take the waiting path (`_send`). Never suspends."""
        if self._closed is not None or self._calls_since_yield >= CALLS_BETWEEN_YIELDS:
            return False
        status = send(self._server, self._connection, payload, len(payload))
        if status == OK:
            self._calls_since_yield += 1
            return True
        if status == WOULD_BLOCK:
            return False
        if connection_gone(status):
            raise WebSocketDisconnect(1006, "connection closed")
        check(status)
        return False

    async def _send(self, send: Callable[[Any, int, bytes, int], int], payload: bytes) -> None:
        await self._yield_if_due()
        while True:
            if self._closed is not None:
                raise WebSocketDisconnect(self._closed.code, self._closed.reason)
            status = send(self._server, self._connection, payload, len(payload))
            if status == OK:
                return
            if status == WOULD_BLOCK:
                if self._writable is None:
                    self._writable = anyio.Event()
                await self._writable.wait()
                self._calls_since_yield = 0
            elif connection_gone(status):
                raise WebSocketDisconnect(1006, "connection closed")
            else:
                check(status)

    async def broadcast(self, data: str | bytes | bytearray | memoryview) -> None:
        """Sends `data` to every client connected to this path, this one included:
        `str` as text, bytes as binary. One shared copy serves all recipients; a
        recipient too slow to keep up is closed with 1008 or skipped, as the app's
        `slow_consumer` says.

        Raises:
            TypeError: `data` is neither str nor bytes.
            WebSocketDisconnect: the server is shutting down.
        """
        payload, text = message(data, "broadcast()")
        send = lib.roost_server_broadcast_text if text else lib.roost_server_broadcast_binary
        await self._yield_if_due()
        self._calls_since_yield += 1
        status = send(self._server, self._route, payload, len(payload), ffi.NULL)
        if status == CLOSED:
            raise WebSocketDisconnect(1001, "server shutting down")
        check(status)

    # ---- topics ----------------------------------------------------------------

    def subscribe(self, topic: str) -> bool:
        """Makes this connection a subscriber of `topic`: it receives what is published
        there (`publish`, `App.publish`) until it unsubscribes or leaves; a connection
        that ends leaves all its topics. Returns False when it already was one.

        Raises:
            TypeError: `topic` is not a str.
            ValueError: `topic` is empty or longer than 1024 bytes of UTF-8.
            WebSocketDisconnect: the connection is closed.
        """
        name = topic_name(topic)
        if self._closed is not None:
            check_topic_name(name)
            raise WebSocketDisconnect(self._closed.code, self._closed.reason)
        out = ffi.new("bool *")
        status = lib.roost_connection_subscribe(
            self._server, self._connection, name, len(name), out
        )
        if connection_gone(status):
            raise WebSocketDisconnect(1006, "connection closed")
        check(status)
        return bool(out[0])

    def unsubscribe(self, topic: str) -> bool:
        """Stops this connection's subscription to `topic`. Returns False when it was
        not subscribed (a closed connection is subscribed to nothing).

        Raises:
            TypeError: `topic` is not a str.
            ValueError: `topic` is empty or longer than 1024 bytes of UTF-8.
        """
        name = topic_name(topic)
        out = ffi.new("bool *")
        status = lib.roost_connection_unsubscribe(
            self._server, self._connection, name, len(name), out
        )
        if connection_gone(status):
            return False
        check(status)
        return bool(out[0])

    @property
    def subscriptions(self) -> frozenset[str]:
        """The topics this connection is subscribed to (empty once it is closed)."""
        status, topics = topics_of(self._server, self._connection)
        if connection_gone(status):
            return frozenset()
        check(status)
        return topics

    async def publish(
        self, topic: str, data: str | bytes | bytearray | memoryview, *, include_self: bool = False
    ) -> int:
        """Sends `data` to every subscriber of `topic` but this connection (unless
        `include_self`), whether or not this connection is subscribed: `str` as text,
        bytes as binary. One shared copy serves all recipients, and a recipient too slow
        to keep up is closed with 1008 or skipped, as the app's `slow_consumer` says.
        Returns the number of recipients.

        Raises:
            TypeError: `topic` is not a str, or `data` neither str nor bytes.
            ValueError: `topic` is empty or longer than 1024 bytes of UTF-8.
            WebSocketDisconnect: the server is shutting down.
        """
        name = topic_name(topic)
        payload, text = message(data, "publish()")
        await self._yield_if_due()
        self._calls_since_yield += 1
        exclude = lib.ROOST_NO_CONNECTION if include_self else self._connection
        status, recipients = publish_call(self._server, name, payload, text, exclude)
        if status == CLOSED:
            raise WebSocketDisconnect(1001, "server shutting down")
        check(status)
        return recipients

    async def _send_value(self, value: Any, what: str) -> None:
        """Sends a callback's return value: str as text, bytes as binary."""
        if value is None:
            return
        if isinstance(value, (str, bytes, bytearray, memoryview)):
            await self.send(value)
        else:
            raise TypeError(f"{what} must return str, bytes or None, not {type(value).__name__}")

    # ---- closing ---------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection: `on_close`'s return value (if any) goes out as the
        last message, then a close frame with `code` and `reason`. A pending or later
        `receive_*` raises WebSocketDisconnect. Closing twice does nothing.

        Raises:
            TypeError: `code` is not an int or `reason` not a str.
            ValueError: `code` is not one a server may send, or `reason` is longer
                than 123 bytes.
        """
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"close code must be an int, not {type(code).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"{code} is not a close code: codes are 16-bit")
        check_close(code, reason.encode("utf-8"))
        await checkpoint()
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed is not None or self._closing:
            return
        self._closing = True
        await self._run_on_close(send_result=True)
        if self._closed is not None:  # the client left while on_close ran
            return
        self._mark_closed(code, reason, by_client=False)
        raw = reason.encode("utf-8")
        check_unless_gone(
            lib.roost_connection_close(self._server, self._connection, code, raw, len(raw))
        )

    async def _run_on_close(self, send_result: bool) -> None:
        """Runs `on_close` once; its errors are logged and stay with this connection."""
        if self._on_close_started or self._endpoint.on_close is None:
            return
        self._on_close_started = True
        try:
            result = self._endpoint.on_close(self, **self._on_close_kwargs)
            if inspect.isawaitable(result):
                result = await result
            if send_result and self._closed is None:
                await self._send_value(result, "on_close")
        except WebSocketDisconnect:
            pass
        except anyio.get_cancelled_exc_class():
            if is_real_cancellation():
                raise
            logger.exception(
                "on_close of %s raised a stray cancellation (connection %s)", self.path, self.id
            )
        except Exception:
            logger.exception("on_close of %s raised (connection %s)", self.path, self.id)

    async def _yield_if_due(self) -> None:
        """Yields to the event loop once CALLS_BETWEEN_YIELDS calls went without."""
        if self._calls_since_yield >= CALLS_BETWEEN_YIELDS:
            self._calls_since_yield = 0
            await checkpoint()

    # ---- called by the dispatcher ------------------------------------------------

    def _mark_closed(self, code: int, reason: str, *, by_client: bool) -> None:
        if self._closed is None:
            self._closed = WebSocketDisconnect(code, reason)
            self._closed_by_client = by_client
        self._message_arrived.set()
        self._wake_writers()

    def _deliver(self, message: Message) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(message)
        self._message_arrived.set()
        if len(inbox) >= self._inbox_limit and not self._reading_paused:
            self._set_reading_paused(True)

    def _wake_writers(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def _join_broadcast(self) -> None:
        check_unless_gone(lib.roost_connection_join_broadcast(self._server, self._connection))

    def _set_reading_paused(self, paused: bool) -> None:
        self._reading_paused = paused
        check_unless_gone(
            lib.roost_connection_pause_reading(self._server, self._connection, paused)
        )
