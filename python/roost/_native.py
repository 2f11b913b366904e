"""The server handle: owns the core's `roost_server *`, frees it exactly once, and is
the one place where statuses become exceptions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Optional

import anyio

from ._errors import ERRORS_BY_STATUS, RoostError
from ._roost_ffi import ffi, lib

OK = lib.ROOST_OK
WOULD_BLOCK = lib.ROOST_WOULD_BLOCK
CLOSED = lib.ROOST_CLOSED
NOT_FOUND = lib.ROOST_NOT_FOUND


def last_error() -> str:
    return ffi.string(lib.roost_last_error()).decode("utf-8", "replace")


def check(status: int) -> None:
    """Raises the exception that matches a failed status."""
    if status != OK:
        cls = ERRORS_BY_STATUS.get(status, RoostError)
        raise cls(last_error())


def check_unless_gone(status: int) -> None:
    """Like `check`, but a connection that is closing or already gone is not an error:
    for calls whose only purpose ends with the connection (close, pause, join)."""
    if status not in (OK, CLOSED, NOT_FOUND):
        check(status)


def is_real_cancellation() -> bool:
    """Whether the running task itself is being cancelled, by its own scope or (a plain
    asyncio task) by `task.cancel()`; else a cancellation exception was merely raised
    by code that awaited something cancelled elsewhere."""
    if anyio.current_effective_deadline() == float("-inf"):
        return True
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not on asyncio
        return False
    return task is not None and task.cancelling() > 0


@dataclass(frozen=True)
class Limits:
    """The core's limits, in Python units (bytes, seconds). Defaults are the core's."""

    max_message_size: int = 1 << 20
    max_frame_size: int = 1 << 20
    inbound_queue_depth: int = 16
    outbound_queue_bytes: int = 1 << 20
    read_buffer_size: int = 4 << 10
    write_buffer_size: int = 16 << 10
    ping_interval: Optional[float] = 20.0
    ping_timeout: float = 20.0
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    max_connections: int = 100_000
    worker_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_message_size", "max_frame_size", "inbound_queue_depth",
                     "outbound_queue_bytes", "read_buffer_size", "write_buffer_size",
                     "max_connections", "worker_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        for name in ("ping_interval", "ping_timeout", "handshake_timeout", "close_timeout"):
            value = getattr(self, name)
            if value is None and name == "ping_interval":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    def to_options(self) -> Any:
        options = ffi.new("roost_options *")
        check(lib.roost_options_init(options))
        for name in ("max_message_size", "max_frame_size", "inbound_queue_depth",
                     "outbound_queue_bytes", "read_buffer_size", "write_buffer_size",
                     "max_connections", "worker_threads"):
            setattr(options, name, getattr(self, name))
        options.ping_interval_ms = _ms(self.ping_interval or 0)
        options.ping_timeout_ms = _ms(self.ping_timeout)
        options.handshake_timeout_ms = _ms(self.handshake_timeout)
        options.close_timeout_ms = _ms(self.close_timeout)
        # A client joins its path's broadcasts only after on_connect's greeting went
        # out (and never when its query parameters are rejected).
        options.join_broadcast_on_connect = False
        return options


def _ms(seconds: float) -> int:
    return min(int(seconds * 1000), 0xFFFF_FFFF)


class NativeServer:
    """One core server. Not thread-safe on its own: the app's event loop owns it."""

    def __init__(self, limits: Limits) -> None:
        out = ffi.new("roost_server **")
        check(lib.roost_server_new(limits.to_options(), out))
        self.ptr: Any = out[0]
        self._freed = False

    def add_route(self, path: str) -> int:
        raw = path.encode("utf-8")
        out = ffi.new("uint32_t *")
        check(lib.roost_server_add_route(self.ptr, raw, len(raw), out))
        return int(out[0])

    def start(self, host: str, port: int) -> int:
        raw = host.encode("utf-8")
        out = ffi.new("uint16_t *")
        status = lib.roost_server_start(self.ptr, raw, len(raw), port, out)
        if status != OK:
            cls = ERRORS_BY_STATUS.get(status, RoostError)
            raise cls(f"cannot serve on {host}:{port}: {last_error()}")
        return int(out[0])

    def ready_fd(self) -> int:
        out = ffi.new("int *")
        check(lib.roost_server_ready_fd(self.ptr, out))
        return int(out[0])

    def connection_count(self) -> int:
        out = ffi.new("size_t *")
        check(lib.roost_server_connection_count(self.ptr, out))
        return int(out[0])

    def stop(self, grace: float) -> None:
        """Blocks for up to `grace` seconds: call it from a worker thread."""
        check(lib.roost_server_stop(self.ptr, _ms(grace)))

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            check(lib.roost_server_free(self.ptr))
