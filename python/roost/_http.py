"""The `Request` an HTTP handler (or the `before_upgrade` hook) receives, the
`Response` it may return, and what its other return values become."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._headers import Headers, HeadersArg
from ._query import QueryParams

TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
JSON = "application/json"

#: Headers the core writes itself, from the body it is given and from whether it keeps
#: the connection open; a handler setting them could only contradict it.
CORE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

#: Statuses whose responses never have a body (RFC 9110).
BODILESS = frozenset({204, 304})

Body = str | bytes | bytearray | memoryview


@dataclass(frozen=True)
class Url:
    """The parts of the requested URL, as Robyn's `request.url` has them.

    Attributes:
        scheme: "http" (or "https" when serving TLS).
        host: The Host header as sent ("" without one).
        path: The path as sent, without the query string.
    """

    scheme: str
    host: str
    path: str


class Request:
    """An HTTP request, whole: its head and its body (up to `max_http_body_size`).

    Attributes:
        method: "GET", "POST", ... ("HEAD" for a HEAD request to a GET route: the
            response's body is then left out on the wire).
        path: The path as sent, without the query string.
        url: `Url` (Robyn's): scheme, host and path.
        query_params: The parsed query string (`QueryParams`).
        headers: Request headers (`Headers`: names case-insensitive).
        body: The body, `b""` when there is none.
        ip_addr: The client's IP address (Robyn's name).
        client: The client's address as "ip:port".
    """

    __slots__ = ("method", "path", "url", "query_params", "headers", "body", "ip_addr", "client")

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        body: bytes,
        peer: str,
        scheme: str = "http",
    ) -> None:
        self.method = method
        self.path = path
        self.query_params = QueryParams(query)
        self.headers = headers
        self.url = Url(scheme, headers.get("host", ""), path)
        self.body = body
        self.client = peer
        self.ip_addr = peer.rpartition(":")[0].strip("[]") if ":" in peer else peer

    def text(self) -> str:
        """The body decoded as UTF-8.

        Raises:
            UnicodeDecodeError: the body is not UTF-8.
        """
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            json.JSONDecodeError: the body is not JSON (a ValueError).
        """
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


class Response:
    """An HTTP response, with Robyn's names. The core adds Content-Length and
    Connection; without a Content-Type header, a non-empty str description goes out
    as text/plain (UTF-8) and a bytes one as application/octet-stream.

    Args:
        status_code: 200 to 599 (a `before_upgrade` refusal: 300 to 599).
        headers: A dict, a list of (name, value) pairs or `Headers`.
        description: The body: str (sent as UTF-8) or bytes.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a status out of range, a body on a 204 or 304, a header that
            cannot be written (a name that is not a token, a value with a line
            break) or one the core writes itself (Content-Length, Transfer-Encoding,
            Connection).
    """

    __slots__ = ("status_code", "headers", "description")

    def __init__(
        self, status_code: int = 200, headers: HeadersArg = None, description: Body = ""
    ) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self.description = description
        self.wire()

    def wire(self) -> tuple[int, bytes, bytes]:
        """The status, the header lines and the body as `roost_request_respond` takes
        them; checked again here since the attributes may have changed.

        Raises:
            TypeError, ValueError: as the constructor.
        """
        status = self.status_code
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"status_code must be an int, not {type(status).__name__}")
        if not 200 <= status <= 599:
            raise ValueError(f"status_code must be 200 to 599, got {status}")
        description = self.description
        if isinstance(description, str):
            body, content_type = description.encode("utf-8"), TEXT
        elif isinstance(description, (bytes, bytearray, memoryview)):
            body, content_type = bytes(description), BINARY
        else:
            raise TypeError(f"description must be str or bytes, not {type(description).__name__}")
        if body and status in BODILESS:
            raise ValueError(f"a {status} response has no body; description must be empty")
        headers = self.headers
        if not isinstance(headers, Headers):
            headers = Headers(headers)
        lines = []
        for name, value in headers.fields():
            if name.lower() in CORE_HEADERS:
                raise ValueError(f"header {name!r} is written by the server itself; leave it out")
            lines.append(f"{name}: {value}\r\n")
        if body and "content-type" not in headers:
            lines.append(f"Content-Type: {content_type}\r\n")
        return status, "".join(lines).encode("latin-1"), body

    def __repr__(self) -> str:
        return f"<Response {self.status_code}>"


def to_response(value: Any) -> Response:
    """What a handler returned, as the response to send: str -> 200 text, bytes ->
    200 binary, dict or list -> 200 JSON, `Response` as it is, None -> 204.

    Raises:
        TypeError: any other value, or a dict or list that is not JSON.
    """
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(204)
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return Response(200, None, value)
    if isinstance(value, (dict, list)):
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return Response(200, {"Content-Type": JSON}, payload.encode("utf-8"))
    raise TypeError(
        "an HTTP handler must return str, bytes, dict, list, Response or None, "
        f"not {type(value).__name__}"
    )
