# Types of the cffi extension built from roost.h (see _build_ffi.py). Pointers and
# structs are cffi cdata objects.
from typing import Any

CData = Any

class _FFI:
    NULL: CData
    def new(self, cdecl: str, init: Any = ...) -> CData: ...
    def buffer(self, cdata: CData, size: int = ...) -> Any: ...
    def string(self, cdata: CData, maxlen: int = ...) -> bytes: ...
    def from_buffer(
        self, cdecl_or_data: Any, data: Any = ..., require_writable: bool = ...
    ) -> CData: ...
    def unpack(self, cdata: CData, length: int) -> bytes: ...
    def cast(self, cdecl: str, value: Any) -> CData: ...
    def new_handle(self, value: Any) -> CData: ...
    def from_handle(self, handle: CData) -> Any: ...
    def def_extern(self, name: str = ..., error: Any = ..., onerror: Any = ...) -> Any: ...
    def sizeof(self, cdecl: str) -> int: ...

class _Lib:
    ROOST_OK: int
    ROOST_WOULD_BLOCK: int
    ROOST_CLOSED: int
    ROOST_NOT_FOUND: int
    ROOST_INVALID_ARGUMENT: int
    ROOST_INVALID_STATE: int
    ROOST_IO: int
    ROOST_PANIC: int
    ROOST_EVENT_CONNECT: int
    ROOST_EVENT_TEXT: int
    ROOST_EVENT_BINARY: int
    ROOST_EVENT_DISCONNECT: int
    ROOST_EVENT_WRITABLE: int
    ROOST_EVENT_REQUEST: int
    ROOST_EVENT_UPGRADE_REQUEST: int
    ROOST_VERSION_MAJOR: int
    ROOST_VERSION_MINOR: int
    ROOST_VERSION_PATCH: int
    ROOST_VERSION_NUMBER: int
    ROOST_MAX_CLOSE_REASON: int
    ROOST_MAX_TOPIC_LENGTH: int
    ROOST_NO_CONNECTION: int
    ROOST_SLOW_CONSUMER_CLOSE: int
    ROOST_SLOW_CONSUMER_SKIP: int
    ROOST_COMPRESSION_OFF: int
    ROOST_COMPRESSION_DEFLATE: int
    ROOST_COMPRESSION_DEFLATE_PER_CONNECTION: int
    roost_py_collect_topic: CData
    def roost_version(self) -> CData: ...
    def roost_version_number(self) -> int: ...
    def roost_last_error(self) -> CData: ...
    def roost_options_init(self, out: CData, size: int) -> int: ...
    def roost_close_check(self, code: int, reason: bytes, reason_len: int) -> int: ...
    def roost_server_new(self, options: CData, out: CData) -> int: ...
    def roost_server_free(self, server: CData) -> int: ...
    def roost_server_add_route(
        self, server: CData, path: bytes, path_len: int, out_route: CData
    ) -> int: ...
    def roost_server_add_http_route(
        self,
        server: CData,
        method: bytes,
        method_len: int,
        path: bytes,
        path_len: int,
        out_route: CData,
    ) -> int: ...
    def roost_server_add_static(
        self,
        server: CData,
        url_prefix: bytes,
        prefix_len: int,
        directory: bytes,
        directory_len: int,
    ) -> int: ...
    def roost_server_route_subprotocols(
        self, server: CData, route: int, list: bytes, list_len: int, required: bool
    ) -> int: ...
    def roost_server_route_vet_upgrades(self, server: CData, route: int, vet: bool) -> int: ...
    def roost_request_respond(
        self,
        server: CData,
        request: int,
        status: int,
        headers: bytes,
        headers_len: int,
        body: bytes,
        body_len: int,
    ) -> int: ...
    def roost_upgrade_accept(self, server: CData, request: int) -> int: ...
    def roost_server_start(
        self, server: CData, host: bytes, host_len: int, port: int, out_port: CData
    ) -> int: ...
    def roost_server_ready_fd(self, server: CData, out_fd: CData) -> int: ...
    def roost_server_poll(
        self, server: CData, events: CData, capacity: int, event_size: int, out_count: CData
    ) -> int: ...
    def roost_connection_send_text(
        self, server: CData, connection: int, data: bytes, len: int
    ) -> int: ...
    def roost_connection_send_binary(
        self, server: CData, connection: int, data: bytes, len: int
    ) -> int: ...
    def roost_server_broadcast_text(
        self, server: CData, route: int, data: bytes, len: int, out_recipients: CData
    ) -> int: ...
    def roost_server_broadcast_binary(
        self, server: CData, route: int, data: bytes, len: int, out_recipients: CData
    ) -> int: ...
    def roost_connection_close(
        self, server: CData, connection: int, code: int, reason: bytes, reason_len: int
    ) -> int: ...
    def roost_connection_join_broadcast(self, server: CData, connection: int) -> int: ...
    def roost_connection_pause_reading(
        self, server: CData, connection: int, paused: bool
    ) -> int: ...
    def roost_topic_check(self, topic: bytes, topic_len: int) -> int: ...
    def roost_connection_subscribe(
        self, server: CData, connection: int, topic: bytes, topic_len: int, out: CData
    ) -> int: ...
    def roost_connection_unsubscribe(
        self, server: CData, connection: int, topic: bytes, topic_len: int, out: CData
    ) -> int: ...
    def roost_connection_topics(
        self, server: CData, connection: int, visit: CData, context: CData, out_count: CData
    ) -> int: ...
    def roost_server_publish_text(
        self,
        server: CData,
        topic: bytes,
        topic_len: int,
        data: bytes,
        len: int,
        exclude: int,
        out_recipients: CData,
    ) -> int: ...
    def roost_server_publish_binary(
        self,
        server: CData,
        topic: bytes,
        topic_len: int,
        data: bytes,
        len: int,
        exclude: int,
        out_recipients: CData,
    ) -> int: ...
    def roost_server_subscriber_count(
        self, server: CData, topic: bytes, topic_len: int, out_count: CData
    ) -> int: ...
    def roost_server_stats(self, server: CData, out: CData, size: int) -> int: ...
    def roost_server_stop(self, server: CData, grace_ms: int) -> int: ...
    def roost_server_connection_count(self, server: CData, out_count: CData) -> int: ...

ffi: _FFI
lib: _Lib
