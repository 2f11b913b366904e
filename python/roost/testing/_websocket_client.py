"""The test client's WebSocket connections: the protocol is the `websockets` package's
sans-I/O client (`pip install roost[testing]`), the I/O anyio's, so that they work on
asyncio and trio alike."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.abc import SocketStream

from .._errors import WebSocketDisconnect
from .._headers import Headers, HeadersArg

if TYPE_CHECKING:
    from websockets.client import ClientProtocol

Message = str | bytes
MessageKind = TypeVar("MessageKind", str, bytes)


class UpgradeRefused(Exception):
    """The server answered the upgrade with something other than 101.

    Attributes:
        status_code: The HTTP status of the answer.
        headers: Its headers (`roost.Headers`).
        content: Its body.
    """

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        super().__init__(f"the server refused the upgrade with HTTP {status_code}: {content!r}")
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")


def _protocol_module() -> Any:
    try:
        import websockets.client
    except ImportError:
        raise ImportError(
            "TestClient.websocket_connect needs the websockets package: "
            "pip install 'roost[testing]'"
        ) from None
    return websockets.client


class TestWebSocket:
    """One WebSocket connection of the test client (`TestClient.websocket_connect`).

    Reading happens while a `receive_*` waits: pings that arrive meanwhile are
    answered then. Every wait is bounded by the client's timeout (TimeoutError).

    Attributes:
        subprotocol: The subprotocol the server selected, or None.
        response_headers: The headers of the server's 101 answer.
        close_code: The code of the server's close frame (1006 when the connection
            ended without one), None while the connection is open.
        close_reason: The reason of that close frame, None while open.
    """

    __test__ = False  # not a test class, for pytest

    def __init__(
        self,
        stream: SocketStream,
        protocol: ClientProtocol,
        response_headers: Headers,
        timeout: float,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._timeout = timeout
        self._messages: deque[Message] = deque()
        self._fragments: list[bytes] = []
        self._fragments_text = False
        self._send_lock = anyio.Lock()
        self._receiving = False
        #: Whether the server's side of the TCP connection has ended.
        self._ended = False
        self.subprotocol: str | None = protocol.subprotocol
        self.response_headers = response_headers
        self.close_code: int | None = None
        self.close_reason: str | None = None

    @classmethod
    async def open(
        cls,
        stream: SocketStream,
        url: str,
        *,
        subprotocols: Sequence[str] | None,
        headers: HeadersArg,
        timeout: float,
    ) -> TestWebSocket:
        """Sends the upgrade request on `stream` and reads the answer.

        Raises:
            UpgradeRefused: the answer was not 101.
        """
        client = _protocol_module()
        from websockets.uri import parse_uri

        if isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a list of str, not a str")
        protocol = client.ClientProtocol(
            parse_uri(url),
            subprotocols=list(subprotocols) if subprotocols is not None else None,
            max_size=None,
        )
        request = protocol.connect()
        given = Headers(headers)
        # The caller's headers replace the ones of the same name the client would send.
        for name in given:
            if name in request.headers:
                del request.headers[name]
        for name, value in given.fields():
            request.headers[name] = value
        protocol.send_request(request)
        with anyio.fail_after(timeout):
            for data in protocol.data_to_send():
                await stream.send(data)
            events: list[Any] = []
            while not events:
                try:
                    data = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                    protocol.receive_eof()
                    ended = True
                else:
                    protocol.receive_data(data)
                    ended = False
                events = protocol.events_received()
                if not events and ended:
                    raise ConnectionError(
                        f"the upgrade failed before an answer: {protocol.handshake_exc}"
                    )
        response = events[0]
        answer_headers = Headers._from_parsed(list(response.headers.raw_items()))
        if response.status_code != 101:
            raise UpgradeRefused(response.status_code, answer_headers, bytes(response.body or b""))
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        websocket = cls(stream, protocol, answer_headers, timeout)
        # Frames the server sent right after the 101 (a greeting) may come with it.
        websocket._take_frames(events[1:])
        return websocket

    # ---- sending -----------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Sends a text message.

        Raises:
            TypeError: `data` is not a str.
            WebSocketDisconnect: the connection is closed.
        """
        if not isinstance(data, str):
            raise TypeError(f"send_text() takes a str, not {type(data).__name__}")
        self._check_open()
        self._protocol.send_text(data.encode("utf-8"))
        await self._flush()

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Sends a binary message.

        Raises:
            TypeError: `data` is not bytes-like.
            WebSocketDisconnect: the connection is closed.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() takes bytes, not {type(data).__name__}")
        self._check_open()
        self._protocol.send_binary(bytes(data))
        await self._flush()

    async def send_json(self, data: Any) -> None:
        """Sends `data` as compact JSON in a text message."""
        await self.send_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False))

    def _check_open(self) -> None:
        if self.close_code is not None or self._protocol.close_sent is not None:
            raise WebSocketDisconnect(self.close_code or 1006, self.close_reason or "")

    async def _flush(self) -> None:
        async with self._send_lock:
            for data in self._protocol.data_to_send():
                if data:
                    with anyio.fail_after(self._timeout):
                        await self._stream.send(data)

    # ---- receiving ---------------------------------------------------------------

    async def receive(self) -> Message:
        """The next message: str for text, bytes for binary.

        Raises:
            WebSocketDisconnect: the server closed the connection (its code and
                reason; 1006 when it ended without a close frame).
            TimeoutError: nothing came within the client's timeout.
            RuntimeError: another task is already receiving.
        """
        if self._receiving:
            raise RuntimeError("another task is already receiving on this WebSocket")
        self._receiving = True
        try:
            with anyio.fail_after(self._timeout):
                while not self._messages:
                    if self.close_code is not None:
                        raise WebSocketDisconnect(self.close_code, self.close_reason or "")
                    await self._read()
                return self._messages.popleft()
        finally:
            self._receiving = False

    async def receive_text(self) -> str:
        """The next message, which must be a text message.

        Raises:
            TypeError: the server sent a binary message (it is consumed).
            WebSocketDisconnect, TimeoutError: as `receive`.
        """
        return await self._receive_kind(str)

    async def receive_bytes(self) -> bytes:
        """The next message, which must be a binary message.

        Raises:
            TypeError: the server sent a text message (it is consumed).
            WebSocketDisconnect, TimeoutError: as `receive`.
        """
        return await self._receive_kind(bytes)

    async def _receive_kind(self, kind: type[MessageKind]) -> MessageKind:
        message = await self.receive()
        if not isinstance(message, kind):
            expected, got = ("text", "binary") if kind is str else ("binary", "text")
            raise TypeError(f"expected a {expected} message, got a {got} one: {message[:80]!r}")
        return message

    async def receive_json(self) -> Any:
        """The next message (text or binary) parsed as JSON."""
        return json.loads(await self.receive())

    async def _read(self) -> None:
        """Reads what the server sent, answers what needs an answer (pings, a close)."""
        try:
            data = await self._stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            self._ended = True
            self._protocol.receive_eof()
        else:
            self._protocol.receive_data(data)
        self._take_frames(self._protocol.events_received())
        # Pongs, and the answer to a close frame.
        await self._flush()
        closed = self._protocol.close_rcvd
        if closed is not None:
            self.close_code, self.close_reason = closed.code, closed.reason
        elif self._ended:
            self.close_code, self.close_reason = 1006, ""

    def _take_frames(self, events: list[Any]) -> None:
        """Assembles the data frames received into messages; the protocol itself
        answers pings and close frames."""
        from websockets.frames import Frame, Opcode

        for frame in events:
            if not isinstance(frame, Frame):
                continue
            if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
                self._fragments = [bytes(frame.data)]
                self._fragments_text = frame.opcode is Opcode.TEXT
            elif frame.opcode is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
            else:
                continue
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._messages.append(payload.decode() if self._fragments_text else payload)

    # ---- closing -----------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection: a close frame, then waits (within the client's
        timeout) for the server's close frame and the end of the connection. Closing
        a closed connection does nothing."""
        try:
            if self.close_code is None and self._protocol.close_sent is None:
                self._protocol.send_close(code, reason)
                await self._flush()
            with anyio.move_on_after(self._timeout):
                while not self._ended:
                    await self._read()
        finally:
            await self._stream.aclose()
        if self.close_code is None:
            self.close_code = 1006
            self.close_reason = ""
