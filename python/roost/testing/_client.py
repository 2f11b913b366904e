"""`TestClient`: serves an app on a free port of 127.0.0.1 inside the caller's event
loop, and talks to it over real sockets."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketStream, TaskGroup

from .._headers import HeadersArg
from ._http_client import (
    ConnectionLost,
    HttpConnection,
    QueryArg,
    TestResponse,
    request_body,
    request_headers,
    request_target,
)
from ._websocket_client import TestWebSocket

if TYPE_CHECKING:
    from .._app import App

HOST = "127.0.0.1"


class TestClient:
    """Serves `app` for the body of `async with TestClient(app) as client:`, on a free
    port of 127.0.0.1, in the running event loop (asyncio or trio), and sends it real
    HTTP requests and WebSocket connections.

    On leaving the block the app stops gracefully (as `app.stop()`); when the block
    raised, it stops at once (as a cancelled `serve`) and the exception goes on.

    Args:
        app: The `roost.App` to serve; it must not be serving already.
        timeout: Seconds any request, connection or receive may take before it raises
            TimeoutError.

    Attributes:
        port: The port the app serves on (inside the block).
    """

    __test__ = False  # not a test class, for pytest

    def __init__(self, app: App, *, timeout: float = 10.0) -> None:
        self.app = app
        self.timeout = timeout
        self.port = 0
        self._tasks: TaskGroup | None = None
        self._idle: list[HttpConnection] = []

    @property
    def base_url(self) -> str:
        """ "http://127.0.0.1:PORT", for other clients."""
        return f"http://{HOST}:{self.port}"

    async def __aenter__(self) -> TestClient:
        if self._tasks is not None:
            raise RuntimeError("this TestClient is already open")
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        try:
            with anyio.fail_after(self.timeout):
                self.port = await tasks.start(functools.partial(self.app.serve, HOST, 0))
        except BaseException:
            tasks.cancel_scope.cancel()
            await tasks.__aexit__(None, None, None)
            raise
        self._tasks = tasks
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        with anyio.CancelScope(shield=True):
            for connection in self._idle:
                await connection.aclose()
        self._idle.clear()
        if exc is not None and isinstance(exc, anyio.get_cancelled_exc_class()):
            # The caller is being cancelled: so is the app, as its task group says.
            await tasks.__aexit__(exc_type, exc, traceback)
            return
        if exc is None:
            self.app.stop()
            # A clean stop ends serve() by itself; this only bounds a stuck one.
            tasks.cancel_scope.deadline = anyio.current_time() + self.timeout
        else:
            tasks.cancel_scope.cancel()
        # The body's own exception (if any) goes on as it is, not inside a group.
        await tasks.__aexit__(None, None, None)

    # ---- HTTP --------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: QueryArg = None,
        headers: HeadersArg = None,
        content: str | bytes | None = None,
        json: Any = None,
    ) -> TestResponse:
        """Sends one request and reads its response, over a kept-alive connection
        when one is free (a connection the server closed meanwhile is replaced).

        Args:
            method: "GET", "POST", ... as sent.
            path: The path, starting with "/", possibly with a query string.
            params: Query parameters to add, a dict or (name, value) pairs.
            headers: Request headers; Host and Content-Length are added unless given.
            content: The body, str (sent as UTF-8) or bytes.
            json: A value sent as a JSON body (with Content-Type application/json).

        Raises:
            TimeoutError: no response within the client's timeout.
            TypeError, ValueError: bad arguments.
        """
        if self._tasks is None:
            raise RuntimeError("use the TestClient inside `async with TestClient(app) as client:`")
        target = request_target(path, params)
        prepared = request_headers(headers, f"{HOST}:{self.port}")
        body = request_body(prepared, content, json, method)
        with anyio.fail_after(self.timeout):
            while True:
                connection = self._idle.pop() if self._idle else await self._connect()
                try:
                    response, keep_alive = await connection.exchange(method, target, prepared, body)
                except ConnectionLost:
                    await connection.aclose()
                    if connection.reused:
                        continue  # the server closed an idle connection: use a new one
                    raise
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await connection.aclose()
                    raise
                break
        if keep_alive:
            self._idle.append(connection)
        else:
            await connection.aclose()
        return response

    async def _connect(self) -> HttpConnection:
        return HttpConnection(await anyio.connect_tcp(HOST, self.port))

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("GET", path, ...)`."""
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("HEAD", path, ...)`: the response has headers and no content."""
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("POST", path, ...)`."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("PUT", path, ...)`."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("PATCH", path, ...)`."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """`request("DELETE", path, ...)`."""
        return await self.request("DELETE", path, **kwargs)

    # ---- WebSocket ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def websocket_connect(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        headers: HeadersArg = None,
    ) -> AsyncIterator[TestWebSocket]:
        """`async with client.websocket_connect("/ws?x=1") as ws:` a WebSocket
        connection to the app, closed (1000) at the end of the block unless it is
        closed already. Needs `pip install 'roost[testing]'` (the websockets package).

        Args:
            path: The path, starting with "/", possibly with a query string.
            subprotocols: Subprotocols to offer, in order of preference.
            headers: More request headers (an Origin, a cookie...); those the client
                would send itself (Host, Sec-WebSocket-Protocol) are replaced.

        Raises:
            UpgradeRefused: the server answered with another status than 101 (its
                `status_code`, `headers` and `content`).
            TimeoutError: no answer within the client's timeout.
        """
        if self._tasks is None:
            raise RuntimeError("use the TestClient inside `async with TestClient(app) as client:`")
        target = request_target(path, None)
        stream: SocketStream = await anyio.connect_tcp(HOST, self.port)
        try:
            websocket = await TestWebSocket.open(
                stream,
                f"ws://{HOST}:{self.port}{target}",
                subprotocols=subprotocols,
                headers=headers,
                timeout=self.timeout,
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        try:
            yield websocket
        finally:
            with anyio.CancelScope(shield=True):
                await websocket.close()
