"""Exceptions of the public API, and the one mapping from core statuses to them."""

from __future__ import annotations

from ._roost_ffi import lib


class WebSocketDisconnect(Exception):
    """The connection is closed: raised by `receive_*` when the client leaves (or the
    server closed the connection) and by `send_*` on a closed connection.

    Attributes:
        code: The close code (1006 when the connection dropped without a close frame).
        reason: The close reason, possibly empty.
    """

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (
            f": {self.reason}" if self.reason else ""
        )


class RoostError(Exception):
    """An error reported by Roost's core. Subclasses also derive from the matching
    built-in exception, so `except ValueError` and `except OSError` work as expected.

    Attributes:
        status: The core's status code.
    """

    #: The core's status code (roost_status in roost.h); -1 when none applies.
    status: int = -1

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidArgument(RoostError, ValueError):
    """An argument the core rejected (bad close code, text that is not UTF-8, ...)."""

    status = lib.ROOST_INVALID_ARGUMENT


class TLSConfigError(InvalidArgument):
    """A TLS certificate or key file (`ssl_certfile`, `ssl_keyfile`) that cannot be
    read or used: missing, unreadable, not PEM, a key that does not belong to the
    certificate, an encrypted key without its password. The message names the file.

    Attributes:
        filename: The file at fault (the certificate file when it is the pair).
    """

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(message)
        self.filename = filename


class InvalidState(RoostError, RuntimeError):
    """A call not allowed in the server's current state (start twice, ...)."""

    status = lib.ROOST_INVALID_STATE


class ServerIOError(RoostError, OSError):
    """The operating system refused, e.g. the address is already in use."""

    status = lib.ROOST_IO


class CorePanic(RoostError, RuntimeError):
    """A panic inside the core was caught; the server may be unusable."""

    status = lib.ROOST_PANIC


ERRORS_BY_STATUS: dict[int, type[RoostError]] = {
    cls.status: cls for cls in (InvalidArgument, InvalidState, ServerIOError, CorePanic)
}
