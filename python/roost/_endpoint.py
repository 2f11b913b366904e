"""A registered WebSocket path: its handler, its callbacks and their query signatures."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._params import QuerySignature

F = TypeVar("F", bound=Callable[..., Any])


class Endpoint:
    """The handler of one path and its optional `on_connect` / `on_close`.

    Args:
        path: The exact path.
        handler: The `async def handler(websocket, ...)`.
        subprotocols: The subprotocols the path speaks, preferred first.
        require_subprotocol: Whether a client that offers none of them is refused.
    """

    def __init__(
        self,
        path: str,
        handler: Callable[..., Any],
        subprotocols: tuple[str, ...] = (),
        require_subprotocol: bool = False,
    ) -> None:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(
                f"the WebSocket handler for {path!r} must be an async function (async def), "
                f"got {handler!r}"
            )
        self.path = path
        self.handler = handler
        self.subprotocols = subprotocols
        self.require_subprotocol = require_subprotocol
        self.handler_signature = QuerySignature(handler)
        self.on_connect: Callable[..., Any] | None = None
        self.on_connect_signature: QuerySignature | None = None
        self.on_close: Callable[..., Any] | None = None
        self.on_close_signature: QuerySignature | None = None

    def set_on_connect(self, fn: F) -> F:
        """Decorator: `fn(websocket, ...)` runs before the handler; its return value
        (str, bytes or None) is the first message the client receives."""
        self.on_connect_signature = self._signature(fn, "on_connect")
        self.on_connect = fn
        return fn

    def set_on_close(self, fn: F) -> F:
        """Decorator: `fn(websocket, ...)` runs once after the connection closes; when
        the server closes, its return value goes out as the last message."""
        self.on_close_signature = self._signature(fn, "on_close")
        self.on_close = fn
        return fn

    def _signature(self, fn: Callable[..., Any], what: str) -> QuerySignature:
        if not callable(fn):
            raise TypeError(f"{what} for {self.path!r} must be a function, got {fn!r}")
        return QuerySignature(fn)
