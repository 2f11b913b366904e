"""The server handle: owns the core's `roost_server *`, frees it exactly once, and is
the one place where statuses become exceptions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import anyio

from ._errors import ERRORS_BY_STATUS, RoostError
from ._http_options import NO_HTTP_OPTIONS, HttpOptions
from ._roost_ffi import ffi, lib
from ._stats import Stats
from ._tls import TlsFiles

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


def connection_gone(status: int) -> bool:
    """Whether a status says the connection is closing or gone: the one place that
    decides it (a closing connection gives CLOSED, a retired id NOT_FOUND)."""
    return status == CLOSED or status == NOT_FOUND


def check_unless_gone(status: int) -> None:
    """Like `check`, but a connection that is closing or already gone is not an error:
    for calls whose only purpose ends with the connection (close, pause, join)."""
    if status != OK and not connection_gone(status):
        check(status)


def check_close(code: int, reason: bytes) -> None:
    """Raises `InvalidArgument` (a ValueError) unless the core would send this close
    code and reason: the core's rule, not a copy of it."""
    check(lib.roost_close_check(code, reason, len(reason)))


def publish_call(
    server: Any, name: bytes, payload: bytes, text: bool, exclude: int
) -> tuple[int, int]:
    """Publishes through the core; returns its status and the number of recipients."""
    call = lib.roost_server_publish_text if text else lib.roost_server_publish_binary
    recipients = ffi.new("size_t *")
    status = call(server, name, len(name), payload, len(payload), exclude, recipients)
    return status, int(recipients[0])


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


class LimitOptions(TypedDict, total=False):
    """The core's limits as `App` takes them, in bytes and seconds. Every one left out
    keeps the core's default (`Limits.defaults()`)."""

    max_message_size: int
    max_frame_size: int | None
    inbound_queue_depth: int
    outbound_queue_bytes: int
    read_buffer_size: int
    write_buffer_size: int
    ping_interval: float | None
    ping_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_connections: int
    max_pending_handshakes: int
    worker_threads: int
    slow_consumer: str
    backplane_queue: int
    compression: str | None
    compression_min_size: int
    inline_io: bool
    max_http_body_size: int
    http_idle_timeout: float
    http_response_timeout: float


#: Limits counted in bytes or items: the same number in Python and in roost_options.
_COUNTS = (
    "max_message_size",
    "max_frame_size",
    "inbound_queue_depth",
    "outbound_queue_bytes",
    "read_buffer_size",
    "write_buffer_size",
    "max_connections",
    "max_pending_handshakes",
    "worker_threads",
    "backplane_queue",
    "compression_min_size",
    "max_http_body_size",
)
#: Limits in seconds here and in milliseconds in roost_options.
_SECONDS = {
    "ping_interval": "ping_interval_ms",
    "ping_timeout": "ping_timeout_ms",
    "handshake_timeout": "handshake_timeout_ms",
    "close_timeout": "close_timeout_ms",
    "http_idle_timeout": "http_idle_timeout_ms",
    "http_response_timeout": "http_response_timeout_ms",
}
#: `slow_consumer` by name, and its values in roost_options.
SLOW_CONSUMER_POLICIES = {
    "close": lib.ROOST_SLOW_CONSUMER_CLOSE,
    "skip": lib.ROOST_SLOW_CONSUMER_SKIP,
}
#: `compression` by name (None: off), and its values in roost_options.
COMPRESSION_MODES: dict[str | None, int] = {
    None: lib.ROOST_COMPRESSION_OFF,
    "deflate": lib.ROOST_COMPRESSION_DEFLATE,
    "deflate-per-connection": lib.ROOST_COMPRESSION_DEFLATE_PER_CONNECTION,
}
#: Limits whose None has a meaning, written as 0 in roost_options: no pings; a frame
#: limit that follows the message limit.
_NONE_IS_ZERO = ("ping_interval", "max_frame_size")


def _new_options() -> Any:
    """A roost_options filled with the core's defaults."""
    options = ffi.new("roost_options *")
    check(lib.roost_options_init(options, ffi.sizeof("roost_options")))
    return options


@dataclass(frozen=True)
class Limits:
    """The core's limits, in Python units (bytes, seconds). `Limits.resolve` takes
    the ones a program sets and the core's defaults for the rest, so that no default
    is written in Python."""

    max_message_size: int
    max_frame_size: int | None
    inbound_queue_depth: int
    outbound_queue_bytes: int
    read_buffer_size: int
    write_buffer_size: int
    ping_interval: float | None
    ping_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_connections: int
    max_pending_handshakes: int
    worker_threads: int
    #: What a broadcast or publish does with a recipient over `outbound_queue_bytes`:
    #: "close" it with 1008, or "skip" the message for it (counted in `App.stats()`).
    slow_consumer: str
    #: Messages waiting to go to the backplane's Redis; over it a broadcast or publish
    #: reaches this process's clients only (counted in `App.stats()`).
    backplane_queue: int
    #: permessage-deflate with the clients that offer it: None (off) or "deflate"
    #: (without context takeover: a broadcast is compressed once for all).
    compression: str | None
    #: Smallest message, in bytes, sent compressed to a client that negotiated it.
    compression_min_size: int
    #: The core runs on the event loop's thread, inside each poll (no thread of its own).
    inline_io: bool
    #: Largest HTTP request body accepted, inclusive (larger: 413).
    max_http_body_size: int
    #: Seconds a kept-alive HTTP connection may wait for its next request.
    http_idle_timeout: float
    #: Seconds an HTTP handler (or `before_upgrade`) has to answer before the client
    #: gets 503.
    http_response_timeout: float

    @classmethod
    def defaults(cls) -> Limits:
        """The core's defaults (roost_options_init)."""
        options = _new_options()
        values: dict[str, Any] = {name: int(getattr(options, name)) for name in _COUNTS}
        values["slow_consumer"] = next(
            name for name, value in SLOW_CONSUMER_POLICIES.items() if value == options.slow_consumer
        )
        values["compression"] = next(
            name for name, value in COMPRESSION_MODES.items() if value == options.compression
        )
        for name, field in _SECONDS.items():
            values[name] = getattr(options, field) / 1000
        values["inline_io"] = bool(options.inline_io)
        for name in _NONE_IS_ZERO:
            values[name] = values[name] or None
        return cls(**values)

    @classmethod
    def resolve(cls, given: Mapping[str, Any]) -> Limits:
        """The limits `given` sets, the core's defaults for the rest.

        Raises:
            TypeError: an unknown limit, or a value of the wrong type.
            ValueError: a negative value.
        """
        unknown = sorted(set(given) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(
                f"unknown limit {unknown[0]!r}; the limits are "
                f"{', '.join(cls.__dataclass_fields__)}"
            )
        return dataclasses.replace(cls.defaults(), **given)

    def __post_init__(self) -> None:
        for name in _COUNTS:
            value = getattr(self, name)
            if value is None and name in _NONE_IS_ZERO:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.max_frame_size == 0:
            raise ValueError("max_frame_size must be positive, or None to follow max_message_size")
        for name in _SECONDS:
            value = getattr(self, name)
            if value is None and name in _NONE_IS_ZERO:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if not isinstance(self.slow_consumer, str):
            raise TypeError(f"slow_consumer must be a str, not {type(self.slow_consumer).__name__}")
        if self.slow_consumer not in SLOW_CONSUMER_POLICIES:
            raise ValueError(
                f"slow_consumer must be one of {', '.join(map(repr, SLOW_CONSUMER_POLICIES))}, "
                f"not {self.slow_consumer!r}"
            )
        if self.compression is not None and not isinstance(self.compression, str):
            raise TypeError(
                f"compression must be a str or None, not {type(self.compression).__name__}"
            )
        if self.compression not in COMPRESSION_MODES:
            names = ", ".join(repr(name) for name in COMPRESSION_MODES)
            raise ValueError(f"compression must be one of {names}, not {self.compression!r}")
        if self.compression_min_size == 0:
            raise ValueError("compression_min_size must be at least 1")
        # In roost_options 0 stands for the default: these would not mean what they say.
        for name in ("max_http_body_size", "http_idle_timeout", "http_response_timeout"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be positive")
        if not isinstance(self.inline_io, bool):
            raise TypeError(f"inline_io must be a bool, not {type(self.inline_io).__name__}")

    def to_options(self) -> Any:
        options = _new_options()
        for name in _COUNTS:
            setattr(options, name, getattr(self, name) or 0)
        for name, field in _SECONDS.items():
            setattr(options, field, _ms(getattr(self, name) or 0))
        options.slow_consumer = SLOW_CONSUMER_POLICIES[self.slow_consumer]
        options.compression = COMPRESSION_MODES[self.compression]
        options.inline_io = self.inline_io
        # A client joins its path's broadcasts only after on_connect's greeting went
        # out (and never when its query parameters are rejected).
        options.join_broadcast_on_connect = False
        return options


def _set_bytes(options: Any, field: str, value: str) -> Any:
    """Points `options.<field>` (and `<field>_len`) at `value` as UTF-8; returns the
    buffer, which must outlive the call that reads `options`."""
    raw = value.encode("utf-8")
    buffer = ffi.new("uint8_t[]", raw)
    setattr(options, field, buffer)
    setattr(options, f"{field}_len", len(raw))
    return buffer


def _ms(seconds: float) -> int:
    return min(int(seconds * 1000), 0xFFFF_FFFF)


class NativeServer:
    """One core server. The app's event loop owns it; `publish`, `subscriber_count`
    and `stats` may also be called from other threads, even while the loop frees it
    (the core recognises a freed handle, so such a call finds the server gone)."""

    def __init__(
        self,
        limits: Limits,
        *,
        reuse_port: bool = False,
        backplane: str | None = None,
        tls: TlsFiles | None = None,
        http: HttpOptions = NO_HTTP_OPTIONS,
    ) -> None:
        options = limits.to_options()
        # Several processes serving one port (App.start(workers=N)) each bind it so.
        options.reuse_port = reuse_port
        # The core copies the URL in roost_server_new; `url` keeps it alive until then.
        url = ffi.new("uint8_t[]", backplane.encode("utf-8")) if backplane else ffi.NULL
        options.backplane_url = url
        options.backplane_url_len = len(url) if backplane else 0
        # The PEM too; `chain` and `key` keep the pointers valid until then.
        chain = ffi.from_buffer("uint8_t[]", tls.certificate_chain) if tls else ffi.NULL
        key = ffi.from_buffer("uint8_t[]", tls.private_key) if tls else ffi.NULL
        options.tls_certificate_chain, options.tls_private_key = chain, key
        options.tls_certificate_chain_len = len(tls.certificate_chain) if tls else 0
        options.tls_private_key_len = len(tls.private_key) if tls else 0
        # The HTTP side's options (roost_options_init left them NULL: off); `keep`
        # holds the buffers until roost_server_new has copied them.
        keep = [
            _set_bytes(options, field, value)
            for field, value in (
                ("health_path", http.health_path),
                ("metrics_path", http.metrics_path),
                ("allowed_origins", http.origins_list()),
            )
            if value is not None
        ]
        out = ffi.new("roost_server **")
        status = lib.roost_server_new(options, out)
        del keep
        if status != OK and tls is not None and "TLS" in (message := last_error()):
            raise tls.error(message)
        check(status)
        self.ptr: Any = out[0]
        self._freed = False

    def add_route(self, path: str) -> int:
        raw = path.encode("utf-8")
        out = ffi.new("uint32_t *")
        check(lib.roost_server_add_route(self.ptr, raw, len(raw), out))
        return int(out[0])

    def add_http_route(self, method: str, path: str) -> int:
        raw_method, raw_path = method.encode("utf-8"), path.encode("utf-8")
        out = ffi.new("uint32_t *")
        check(
            lib.roost_server_add_http_route(
                self.ptr, raw_method, len(raw_method), raw_path, len(raw_path), out
            )
        )
        return int(out[0])

    def add_static(self, url_prefix: str, directory: str) -> None:
        raw_prefix = url_prefix.encode("utf-8")
        raw_directory = os.fsencode(directory)
        check(
            lib.roost_server_add_static(
                self.ptr, raw_prefix, len(raw_prefix), raw_directory, len(raw_directory)
            )
        )

    def set_subprotocols(self, route: int, subprotocols: Sequence[str], required: bool) -> None:
        raw = ",".join(subprotocols).encode("utf-8")
        check(lib.roost_server_route_subprotocols(self.ptr, route, raw, len(raw), required))

    def vet_upgrades(self, route: int) -> None:
        check(lib.roost_server_route_vet_upgrades(self.ptr, route, True))

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

    def publish(self, name: bytes, payload: bytes, text: bool) -> int:
        """Publishes to a checked topic name from any thread; returns the number of
        recipients, 0 once the server has stopped or been freed."""
        status, recipients = publish_call(self.ptr, name, payload, text, lib.ROOST_NO_CONNECTION)
        if status == CLOSED or (status != OK and self._freed):
            return 0
        check(status)
        return recipients

    def subscriber_count(self, name: bytes) -> int:
        out = ffi.new("size_t *")
        status = lib.roost_server_subscriber_count(self.ptr, name, len(name), out)
        if status != OK and self._freed:
            return 0
        check(status)
        return int(out[0])

    def stats(self) -> Stats:
        out = ffi.new("roost_stats *")
        status = lib.roost_server_stats(self.ptr, out, ffi.sizeof("roost_stats"))
        if status != OK and self._freed:
            return Stats()
        check(status)
        return Stats.from_core(out)

    def stop(self, grace: float) -> None:
        """Blocks for up to `grace` seconds: call it from a worker thread."""
        check(lib.roost_server_stop(self.ptr, _ms(grace)))

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            check(lib.roost_server_free(self.ptr))


@contextlib.contextmanager
def scratch_server() -> Iterator[NativeServer]:
    """A core server that is never started, to have the core check a registration (a
    route, a mount, a subprotocol list) when the program makes it, with the core's own
    rules and messages; making one starts no thread."""
    server = NativeServer(Limits.defaults())
    try:
        yield server
    finally:
        server.free()
