"""The test client's HTTP/1.1: requests over kept-alive TCP connections to the app,
and the responses as `TestResponse`."""

from __future__ import annotations

import json as json_module
from collections.abc import Iterable, Mapping
from email.message import Message
from typing import Any
from urllib.parse import urlencode

import anyio
from anyio.abc import SocketStream

from .._headers import Headers, HeadersArg

#: Largest response head read (status line and headers).
MAX_HEAD = 64 * 1024

QueryArg = Mapping[str, str] | Iterable[tuple[str, str]] | None


class TestResponse:
    """A response as the test client received it.

    Attributes:
        status_code: The status, e.g. 200.
        reason_phrase: The reason phrase of the status line.
        headers: The response headers (`roost.Headers`: names case-insensitive).
        content: The body as bytes (empty for HEAD, 204 and 304).
    """

    __test__ = False  # not a test class, for pytest

    def __init__(
        self, status_code: int, reason_phrase: str, headers: Headers, content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded with the charset of its Content-Type (UTF-8 by default),
        undecodable bytes replaced."""
        message = Message()
        message["content-type"] = self.headers.get("content-type", "text/plain")
        charset = message.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, "replace")
        except LookupError:
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            json.JSONDecodeError: the body is not JSON.
        """
        return json_module.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code} {self.reason_phrase}>"


class ConnectionLost(Exception):
    """The server closed a kept-alive connection before answering on it."""


class HttpConnection:
    """One TCP connection speaking HTTP/1.1, one request at a time."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        #: Whether a response was already read on it (a reused connection may have
        #: been closed by the server's idle timeout meanwhile).
        self.reused = False

    async def exchange(
        self, method: str, target: str, headers: Headers, body: bytes
    ) -> tuple[TestResponse, bool]:
        """Sends a request and reads its response; returns it and whether the
        connection may carry another request.

        Raises:
            ConnectionLost: the connection ended before any byte of a response.
            ValueError: the server's answer is not HTTP/1.1.
        """
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers.fields()]
        head = "".join(lines).encode("latin-1") + b"\r\n"
        try:
            await self._stream.send(head + body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            raise ConnectionLost(str(error)) from error
        while True:
            status, reason, response_headers, version = await self._read_head()
            # 100 Continue and other interim answers come before the response.
            if not 100 <= status < 200:
                break
        if method == "HEAD" or status in (204, 304):
            content = b""
            length_known = True
        elif "content-length" in response_headers:
            content = await self._read_exactly(int(response_headers["content-length"]))
            length_known = True
        elif "chunked" in response_headers.get("transfer-encoding", "").lower():
            content = await self._read_chunked()
            length_known = True
        else:
            content = await self._read_to_eof()
            length_known = False
        self.reused = True
        closing = "close" in response_headers.get("connection", "").lower() or (
            "close" in headers.get("connection", "").lower()
        )
        keep_alive = length_known and not closing and version == "HTTP/1.1"
        return TestResponse(status, reason, response_headers, content), keep_alive

    async def _read_head(self) -> tuple[int, str, Headers, str]:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise ValueError(f"response head over {MAX_HEAD} bytes")
            if not await self._fill():
                if not self._buffer:
                    raise ConnectionLost("the server closed the connection without answering")
                raise ValueError(f"the connection ended inside a response head: {self._buffer!r}")
        end = self._buffer.index(b"\r\n\r\n")
        raw = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *header_lines = raw.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {status_line!r}")
        fields = []
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"malformed response header line: {line!r}")
            fields.append((name.strip(), value.strip()))
        return int(code), reason, Headers._from_parsed(fields), version

    async def _fill(self) -> bool:
        try:
            self._buffer += await self._stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            return False
        return True

    async def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not await self._fill():
                raise ValueError(
                    f"the connection ended after {len(self._buffer)} of {count} body bytes"
                )
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    async def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if not await self._fill():
                raise ValueError("the connection ended inside a chunked body")
        end = self._buffer.index(b"\r\n")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(((await self._read_line()).split(b";", 1)[0]).strip(), 16)
            if size == 0:
                # Trailer fields, if any, up to the empty line.
                while await self._read_line():
                    pass
                return bytes(body)
            body += await self._read_exactly(size)
            await self._read_line()

    async def _read_to_eof(self) -> bytes:
        while await self._fill():
            pass
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def aclose(self) -> None:
        await self._stream.aclose()


def request_target(path: str, params: QueryArg) -> str:
    """The request target: `path` (which may hold a query already) and `params`.

    Raises:
        ValueError: `path` does not start with "/".
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"the path must be a str starting with '/', got {path!r}")
    if not params:
        return path
    query = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
    return f"{path}{'&' if '?' in path else '?'}{query}"


def request_body(headers: Headers, content: str | bytes | None, json: Any, method: str) -> bytes:
    """The body to send, with Content-Type (for `json`) and Content-Length set in
    `headers` unless the caller set them.

    Raises:
        TypeError: both `content` and `json`, or `content` neither str nor bytes.
    """
    if content is not None and json is not None:
        raise TypeError("pass content or json, not both")
    if json is not None:
        body = json_module.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        if "content-type" not in headers:
            headers["Content-Type"] = "application/json"
    elif content is None:
        body = b""
    elif isinstance(content, str):
        body = content.encode("utf-8")
    elif isinstance(content, (bytes, bytearray, memoryview)):
        body = bytes(content)
    else:
        raise TypeError(f"content must be str or bytes, not {type(content).__name__}")
    if "content-length" not in headers and "transfer-encoding" not in headers:
        if body or method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
    return body


def request_headers(headers: HeadersArg, host: str) -> Headers:
    """The caller's headers, and Host unless they set it."""
    prepared = Headers(headers)
    if "host" not in prepared:
        prepared["Host"] = host
    return prepared
