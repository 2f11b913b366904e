"""Answering what the core hands to Python over HTTP: a request to an HTTP route (its
handler's return value becomes the response) and, when the app has a `before_upgrade`
hook, an upgrade to vet (accepted, or refused with the hook's response)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import anyio

from ._http import Request, Response, to_response
from ._http_routes import HttpRoute
from ._native import OK, check, connection_gone, is_real_cancellation, last_error
from ._roost_ffi import lib

logger = logging.getLogger("roost")

#: What a client gets when the handler (or the hook) failed: the traceback is logged,
#: never sent.
INTERNAL_ERROR = Response(500, None, "Internal Server Error")

ExitRequested = Callable[[BaseException], None]


async def answer_request(
    server: Any,
    request_id: int,
    route: HttpRoute,
    request: Request,
    exit_requested: ExitRequested,
) -> None:
    """Runs the route's handler (sync or async) and sends what it returned. A handler
    that raises, or returns what cannot be sent, gets the client a 500 and its
    traceback logged; SystemExit and KeyboardInterrupt also stop the app, as from a
    WebSocket handler."""
    what = f"HTTP handler for {route.method} {route.path}"
    try:
        result = route.handler(request) if route.takes_request else route.handler()
        if inspect.isawaitable(result):
            result = await result
        response = to_response(result)
        wire = response.wire()
    except BaseException as error:
        if not _recoverable(error, what, exit_requested):
            raise
        wire = INTERNAL_ERROR.wire()
    _respond(server, request_id, wire, what)


async def vet_upgrade(
    server: Any,
    request_id: int,
    hook: Callable[[Request], Any],
    request: Request,
    exit_requested: ExitRequested,
) -> None:
    """Runs the `before_upgrade` hook: None accepts the upgrade, a `Response` (status
    300 to 599) refuses it; anything else, or an exception, refuses it with 500 and is
    logged."""
    what = f"before_upgrade hook for {request.path}"
    try:
        result = hook(request)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            _accept(server, request_id)
            return
        if not isinstance(result, Response):
            raise TypeError(
                f"before_upgrade must return None or a Response, not {type(result).__name__}"
            )
        wire = result.wire()
        if wire[0] < 300:
            raise ValueError(
                f"before_upgrade refused with status {wire[0]}: a refusal's status is 300 to 599"
            )
    except BaseException as error:
        if not _recoverable(error, what, exit_requested):
            raise
        wire = INTERNAL_ERROR.wire()
    _respond(server, request_id, wire, what)


def _recoverable(error: BaseException, what: str, exit_requested: ExitRequested) -> bool:
    """Logs what a handler or hook raised; False for what must propagate (the task's
    own cancellation: the app is stopping)."""
    if isinstance(error, anyio.get_cancelled_exc_class()) and is_real_cancellation():
        return False
    if isinstance(error, (SystemExit, KeyboardInterrupt)):
        logger.info("%s raised %s; stopping the server", what, type(error).__name__)
        exit_requested(error)
        return True
    logger.error("%s raised; answering 500", what, exc_info=error)
    return True


def _accept(server: Any, request_id: int) -> None:
    status = lib.roost_upgrade_accept(server, request_id)
    # NOT_FOUND: the client left, or the core answered 503 meanwhile; CLOSED: the
    # server is stopping.
    if not connection_gone(status):
        check(status)


def _respond(server: Any, request_id: int, wire: tuple[int, bytes, bytes], what: str) -> None:
    status_code, headers, body = wire
    status = lib.roost_request_respond(
        server, request_id, status_code, headers, len(headers), body, len(body)
    )
    if status == OK or connection_gone(status):
        # NOT_FOUND: the client left, or waited too long and got 503 from the core;
        # CLOSED: the server is stopping.
        return
    # The core refused the response itself (a header the checks here let through):
    # the client still gets an answer.
    logger.error("%s: the core refused its response (%s); answering 500", what, last_error())
    status_code, headers, body = INTERNAL_ERROR.wire()
    status = lib.roost_request_respond(
        server, request_id, status_code, headers, len(headers), body, len(body)
    )
    if not connection_gone(status):
        check(status)
