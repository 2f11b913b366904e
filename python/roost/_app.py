"""The application: route registration, and serving on asyncio or trio."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar, Unpack

import anyio
from anyio.abc import TaskStatus

from ._dispatcher import Dispatcher
from ._endpoint import Endpoint
from ._native import LimitOptions, Limits, NativeServer
from ._stats import Stats
from ._tls import PathArg, TlsFiles, load_tls
from ._topics import check_topic_name, message, topic_name
from ._workers import Supervisor, WorkerLink, reserve_port, worker_count

F = TypeVar("F", bound=Callable[..., Any])

BACKENDS = ("asyncio", "trio")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class App:
    """A WebSocket application (also exported as `Robyn`).

    Args:
        file_path: Accepted for compatibility with `Robyn(__file__)`; unused.
        shutdown_grace: Seconds a graceful stop waits for connections to close.
        backplane: A Redis URL, `redis://[user:password@]host[:port][/db]` (default
            `$ROOST_BACKPLANE`, else none): every broadcast and publish also goes
            through that Redis's pub/sub to the app's other processes and hosts, and
            theirs come to this one's clients. Local delivery never waits for Redis:
            when it is unreachable, messages reach this process's clients only, and
            the core reconnects by itself (`stats()` counts all of it).
        **limits: The core's limits, each defaulting to the core's own value
            (`roost.Limits.defaults()`; the header roost.h documents them):

            - max_message_size: Largest message accepted, in bytes, inclusive
              (larger: close 1009).
            - max_frame_size: Largest frame accepted, inclusive (larger: close 1009).
              Default None: follows max_message_size, so a message that fits arrives
              however the client frames it.
            - inbound_queue_depth: Messages kept per connection before the server stops
              reading that socket (TCP then pushes back on the client).
            - outbound_queue_bytes: Bytes queued per connection above which `send_*`
              waits and a broadcast or publish treats that recipient as slow.
            - read_buffer_size: Most bytes read from a socket per system call (held
              only while unread).
            - write_buffer_size: Bytes gathered per socket write.
            - ping_interval: Seconds between keepalive pings; None disables them.
            - ping_timeout: Seconds a ping may go unanswered before closing with 1011.
            - handshake_timeout: Seconds a client has to send its upgrade request.
            - close_timeout: Seconds a closing connection waits for the client's close
              frame.
            - max_connections: Upgraded connections above which clients get HTTP 503.
            - max_pending_handshakes: Upgrades in progress above which a new client
              gets HTTP 503 at once (silent sockets never take a client's place).
            - worker_threads: Threads of the core's I/O runtime.
            - backplane_queue: Messages waiting to go to the backplane's Redis, over
              which a broadcast or publish reaches this process's clients only.
            - slow_consumer: What a broadcast or publish does with a slow recipient
              (one over outbound_queue_bytes): "close" it with 1008 (the default: it
              misses nothing, or is gone), or "skip" the message for it while it is
              over (it stays connected; for feeds where the latest value matters
              most). The others get every message, in order; `stats()` counts both.
            - compression: permessage-deflate (RFC 7692) with the clients that offer
              it, as every browser does: None (the default: offers are declined,
              messages go out as they are), "deflate" (the first valid offer is
              accepted without context takeover, so a broadcast or publish is
              compressed once for every recipient that negotiated it) or
              "deflate-per-connection" (each connection keeps its compressor from
              message to message: far smaller similar messages, each recipient's copy
              compressed separately, about 310 KiB per connection that has sent a
              compressed message). A client that offers nothing, or only what is
              declined, is served uncompressed. max_message_size applies to a
              compressed message's inflated size.
            - compression_min_size: Smallest message, in bytes, sent compressed
              (default 256); smaller ones, and those compression would not shrink,
              go out uncompressed.

    Raises:
        TypeError: an unknown limit, or a value of the wrong type.
        ValueError: a value out of range.
    """

    def __init__(
        self,
        file_path: str | None = None,
        *,
        shutdown_grace: float = 5.0,
        backplane: str | None = None,
        **limits: Unpack[LimitOptions],
    ) -> None:
        self.file_path = file_path
        self.limits = Limits.resolve(limits)
        if backplane is None:
            backplane = os.environ.get("ROOST_BACKPLANE") or None
        if backplane is not None and not isinstance(backplane, str):
            raise TypeError(f"backplane must be a str URL, not {type(backplane).__name__}")
        #: The Redis URL whose pub/sub carries broadcasts and publishes to the app's
        #: other processes and hosts, or None.
        self.backplane = backplane
        if backplane is not None:
            # The core checks the URL (and says what is wrong) when a server is made;
            # making one starts no thread.
            NativeServer(self.limits, backplane=backplane).free()
        #: SystemExit or KeyboardInterrupt raised by a handler: the server stops
        #: gracefully, then `start` / `serve` raise it.
        self._exit_request: BaseException | None = None
        self.shutdown_grace = float(shutdown_grace)
        self._endpoints: dict[str, Endpoint] = {}
        self._stop_requested: anyio.Event | None = None
        self._native: NativeServer | None = None
        #: The bound port while serving, else None.
        self.port: int | None = None

    def websocket(self, path: str) -> Callable[[F], F]:
        """Decorator registering an `async def handler(websocket, ...)` for `path`
        (exact match). The handler gains `handler.on_connect` and `handler.on_close`
        decorators.

        Raises:
            TypeError: the handler is not an async function.
            ValueError: `path` is not a path or is already registered.
        """
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(
                f"WebSocket path must be a str starting with '/', without '?': {path!r}"
            )
        if path in self._endpoints:
            raise ValueError(f"WebSocket path {path!r} is already registered")

        def register(handler: F) -> F:
            if path in self._endpoints:
                raise ValueError(f"WebSocket path {path!r} is already registered")
            endpoint = Endpoint(path, handler)
            handler.on_connect = endpoint.set_on_connect  # type: ignore[attr-defined]
            handler.on_close = endpoint.set_on_close  # type: ignore[attr-defined]
            self._endpoints[path] = endpoint
            return handler

        return register

    def start(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        backend: str | None = None,
        workers: int | None = None,
        ssl_certfile: PathArg | None = None,
        ssl_keyfile: PathArg | None = None,
        ssl_keyfile_password: str | bytes | None = None,
    ) -> None:
        """Serves until SIGINT or SIGTERM, then stops gracefully (every client gets
        close 1001). Blocks; runs its own event loop.

        With `ssl_certfile` and `ssl_keyfile` every connection speaks TLS (wss://);
        both files are read, and checked by the core, before anything is served.

        With `workers` > 1 (Linux only) the process forks that many worker processes,
        each serving the same host and port with its own core and event loop; the
        kernel spreads connections over them. Each worker has its own connections:
        `broadcast`, `publish` and `connection_count` reach only its own clients. This
        process supervises them: a worker that dies is replaced (5 deaths within 10 s
        stop the program with status 1), and SIGINT or SIGTERM stop them all. Call it
        before starting threads: a process with threads cannot be forked safely.

        Args:
            host: Address to bind; default `$ROOST_HOST` or 127.0.0.1.
            port: Port to bind (0 picks one); default `$ROOST_PORT` or 8080.
            backend: "asyncio" or "trio"; default `$ROOST_BACKEND` or "asyncio".
            workers: Processes serving the port; default `$ROOST_WORKERS` or 1 (this
                process serves, no fork).
            ssl_certfile: PEM file of the server's certificate chain, its own
                certificate first: serve wss:// instead of ws://.
            ssl_keyfile: PEM file of that certificate's private key.
            ssl_keyfile_password: The password of an encrypted `ssl_keyfile`
                (decrypting needs the `cryptography` package: `pip install
                'roost[tls]'`).

        Raises:
            TypeError: `workers` is not an int, or a TLS argument of the wrong type.
            ValueError: unknown backend, or `workers` (or `$ROOST_WORKERS`) below 1,
                or only one of `ssl_certfile` and `ssl_keyfile`.
            TLSConfigError: a TLS file that cannot be read or used (a ValueError; its
                message and `filename` name the file).
            RuntimeError: no route is registered, the app is already serving, or
                `workers` > 1 outside Linux.
            SystemExit: the address cannot be bound (exit status 1, message on stderr);
                with workers, also when they keep dying (status 1) or when a handler
                raised SystemExit (its status).
        """
        chosen = backend or os.environ.get("ROOST_BACKEND") or "asyncio"
        if chosen not in BACKENDS:
            raise ValueError(f"unknown backend {chosen!r}: expected one of {', '.join(BACKENDS)}")
        count = worker_count(workers)
        tls = load_tls(ssl_certfile, ssl_keyfile, ssl_keyfile_password)
        try:
            if count == 1:
                anyio.run(self._serve_until_signal, host, port, chosen, None, tls, backend=chosen)
                return
            status = self._supervise(self._host(host), self._port(port), chosen, count, tls)
        except OSError as error:
            print(f"roost: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        if status != 0:
            raise SystemExit(status)

    def _supervise(
        self, host: str, port: int, backend: str, count: int, tls: TlsFiles | None
    ) -> int:
        """The parent of `count` workers (see `_workers`); returns the exit status."""
        # Refuse what a worker would refuse (no route, limits or TLS files the core
        # rejects) here, once; no core thread starts in this process.
        self._new_native(reuse_port=True, tls=tls).free()
        reservation = reserve_port(host, port)
        try:
            bound = reservation.getsockname()[1]

            def serve_as_worker(link: WorkerLink) -> None:
                anyio.run(
                    self._serve_until_signal, host, bound, backend, link, tls, backend=backend
                )

            def announce() -> None:
                print(
                    f"Roost serving on {_scheme(tls)}://{host}:{bound} "
                    f"({backend}, {count} workers); "
                    "Ctrl+C stops",
                    flush=True,
                )

            supervisor = Supervisor(
                count, serve_as_worker, announce, self.shutdown_grace, [reservation]
            )
            return supervisor.run()
        finally:
            reservation.close()

    async def _serve_until_signal(
        self,
        host: str | None,
        port: int | None,
        backend: str,
        worker: WorkerLink | None,
        tls: TlsFiles | None,
    ) -> None:
        """Serves until a stop signal: SIGINT or SIGTERM, or for a worker SIGTERM only
        (its parent decides on Ctrl+C); a worker tells its parent when it serves
        instead of printing the serving line."""
        native = self._bind(host, port, reuse_port=worker is not None, tls=tls)
        stop_signals = (signal.SIGINT, signal.SIGTERM) if worker is None else (signal.SIGTERM,)
        with anyio.open_signal_receiver(*stop_signals) as signals:
            if worker is None:
                print(
                    f"Roost serving on {_scheme(tls)}://{self._host(host)}:{self.port} "
                    f"({backend}); "
                    "Ctrl+C stops",
                    flush=True,
                )
            else:
                worker.ready()
            exit_request: list[BaseException] = []

            async def run() -> None:
                # A handler's SystemExit or KeyboardInterrupt leaves this task group
                # as itself, not inside an exception group.
                try:
                    await self._run(native, anyio.TASK_STATUS_IGNORED)
                except (SystemExit, KeyboardInterrupt) as request:
                    exit_request.append(request)
                    tasks.cancel_scope.cancel()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(run)
                async for _ in signals:
                    self.stop()
                    break
        if exit_request:
            raise exit_request[0]

    async def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        ssl_certfile: PathArg | None = None,
        ssl_keyfile: PathArg | None = None,
        ssl_keyfile_password: str | bytes | None = None,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serves inside an asyncio or trio program that is already running, until
        `stop()` (graceful: every client gets 1001, handlers finish, `on_close` runs)
        or until cancelled (clients still get 1001; handlers are cancelled).

        Under trio or anyio, `port = await nursery.start(app.serve, host, 0)` gives
        the bound port; it is also in `app.port`.

        Args:
            host: Address to bind; default `$ROOST_HOST` or 127.0.0.1.
            port: Port to bind (0 picks one); default `$ROOST_PORT` or 8080.
            ssl_certfile: PEM file of the certificate chain: serve wss:// (as `start`).
            ssl_keyfile: PEM file of its private key.
            ssl_keyfile_password: The password of an encrypted `ssl_keyfile`.

        Raises:
            RuntimeError: no route is registered, or the app is already serving.
            OSError: the address cannot be bound.
            TypeError, ValueError: TLS arguments as `start` says.
            TLSConfigError: a TLS file that cannot be read or used.
        """
        tls = load_tls(ssl_certfile, ssl_keyfile, ssl_keyfile_password)
        await self._run(self._bind(host, port, tls=tls), task_status)

    @staticmethod
    def _host(host: str | None) -> str:
        return host or os.environ.get("ROOST_HOST") or DEFAULT_HOST

    @staticmethod
    def _port(port: int | None) -> int:
        return int(os.environ.get("ROOST_PORT", DEFAULT_PORT)) if port is None else port

    def _new_native(self, *, reuse_port: bool, tls: TlsFiles | None) -> NativeServer:
        """A core server with this app's limits and routes, not started."""
        if not self._endpoints:
            raise RuntimeError("no WebSocket route: decorate a handler with @app.websocket(path)")
        if self._stop_requested is not None:
            raise RuntimeError("this app is already serving")
        native = NativeServer(self.limits, reuse_port=reuse_port, backplane=self.backplane, tls=tls)
        try:
            for endpoint in self._endpoints.values():
                native.add_route(endpoint.path)
        except BaseException:
            native.free()
            raise
        return native

    def _bind(
        self,
        host: str | None,
        port: int | None,
        *,
        reuse_port: bool = False,
        tls: TlsFiles | None = None,
    ) -> NativeServer:
        native = self._new_native(reuse_port=reuse_port, tls=tls)
        try:
            self.port = native.start(self._host(host), self._port(port))
        except BaseException:
            native.free()
            raise
        self._stop_requested = anyio.Event()
        self._native = native
        return native

    async def _run(self, native: NativeServer, task_status: TaskStatus[int]) -> None:
        assert self._stop_requested is not None and self.port is not None
        try:
            async with anyio.create_task_group() as tasks:
                dispatcher = Dispatcher(
                    native,
                    list(self._endpoints.values()),
                    self.limits.inbound_queue_depth,
                    tasks,
                    self._exit_requested,
                )
                tasks.start_soon(dispatcher.run)
                task_status.started(self.port)
                try:
                    await self._stop_requested.wait()
                    await self._stop_gracefully(native, dispatcher)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._stop_at_once(native, dispatcher)
                        await dispatcher.cancel_handlers()
                    tasks.cancel_scope.cancel()
        finally:
            native.free()
            self.port = None
            self._native = None
            self._stop_requested = None
        exit_request, self._exit_request = self._exit_request, None
        if exit_request is not None:
            raise exit_request

    def _exit_requested(self, request: BaseException) -> None:
        """A handler raised SystemExit or KeyboardInterrupt: the program wants to end.
        Every client is closed as in a graceful stop, then `serve` raises it."""
        if self._exit_request is None:
            self._exit_request = request
        self.stop()

    def connection_count(self) -> int:
        """Connections open in the core right now (0 when not serving)."""
        return self._native.connection_count() if self._native is not None else 0

    def publish(self, topic: str, data: str | bytes | bytearray | memoryview) -> int:
        """Sends `data` to every subscriber of `topic` (`websocket.subscribe`): `str` as
        text, bytes as binary, one shared copy for all recipients. Returns the number
        of recipients: 0 when no one is subscribed, and when the app is not serving.

        It never blocks or awaits: it queues the message for each recipient and
        returns, so call it as it is from a handler or a background task on the app's
        loop, and from any other thread (a worker, a blocking client library's
        callback); no `call_soon_threadsafe` or `trio.from_thread` is needed. Messages
        one thread publishes reach each recipient in that order.

        Raises:
            TypeError: `topic` is not a str, or `data` neither str nor bytes.
            ValueError: `topic` is empty or longer than 1024 bytes of UTF-8.
        """
        name = topic_name(topic)
        payload, text = message(data, "publish()")
        native = self._native
        if native is None:
            check_topic_name(name)
            return 0
        return native.publish(name, payload, text)

    def subscriber_count(self, topic: str) -> int:
        """Connections subscribed to `topic` now (0 when the app is not serving). Safe
        from any thread.

        Raises:
            TypeError: `topic` is not a str.
            ValueError: `topic` is empty or longer than 1024 bytes of UTF-8.
        """
        name = topic_name(topic)
        native = self._native
        if native is None:
            check_topic_name(name)
            return 0
        return native.subscriber_count(name)

    def stats(self) -> Stats:
        """The core's counters now (all 0 when the app is not serving): open
        connections, topics in use, and what the `slow_consumer` policy did. Safe from
        any thread."""
        native = self._native
        return native.stats() if native is not None else Stats()

    def stop(self) -> None:
        """Asks a serving app to stop gracefully. Call it from the app's event loop."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def _stop_gracefully(self, native: NativeServer, dispatcher: Dispatcher) -> None:
        # Each connection is closed as `websocket.close(1001)` would: on_close runs and
        # its return value is the last message. Then the core closes whatever is left
        # (also 1001) while the dispatcher goes on delivering disconnects, so handlers
        # end as they would for a client that left.
        with anyio.move_on_after(self.shutdown_grace):
            async with anyio.create_task_group() as closing:
                for ws in dispatcher.open_connections():
                    closing.start_soon(ws._close, 1001, "server shutting down")
        await anyio.to_thread.run_sync(native.stop, self.shutdown_grace)
        with anyio.move_on_after(self.shutdown_grace):
            while dispatcher.poll_once():
                pass
            await dispatcher.wait_handlers_done()

    async def _stop_at_once(self, native: NativeServer, dispatcher: Dispatcher) -> None:
        # Idempotent after a graceful stop; after a cancellation it still sends 1001,
        # and on_close runs here since the task group is already cancelled.
        open_connections = dispatcher.open_connections()
        dispatcher.spawn_on_close = False
        await anyio.to_thread.run_sync(native.stop, min(self.shutdown_grace, 1.0))
        while dispatcher.poll_once():
            pass
        with anyio.move_on_after(1.0):
            for ws in open_connections:
                await ws._run_on_close(False)


def _scheme(tls: TlsFiles | None) -> str:
    """The URL scheme clients use: wss with TLS."""
    return "ws" if tls is None else "wss"
