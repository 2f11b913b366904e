"""The application: route registration (WebSocket and HTTP routes, static files, the
upgrade hook), and serving on asyncio or trio."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, Unpack

import anyio
from anyio.abc import TaskStatus

from ._dispatcher import Dispatcher
from ._endpoint import Endpoint
from ._http import Request
from ._http_options import HttpOptions
from ._http_routes import HttpRoute, check_path
from ._native import LimitOptions, Limits, NativeServer, scratch_server
from ._route_table import RouteTable
from ._stats import Stats
from ._tls import PathArg, TlsFiles, load_tls
from ._topics import check_topic_name, message, topic_name
from ._workers import Supervisor, WorkerLink, reserve_port, worker_count

F = TypeVar("F", bound=Callable[..., Any])
Hook = TypeVar("Hook", bound=Callable[[Request], Any])

#: What `start(backend=...)` takes: "uvloop" is asyncio on uvloop's event loop.
BACKENDS = ("asyncio", "uvloop", "trio")
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
        health_path: A path where GET and HEAD answer 200 `ok` (503 `stopping`
            while the app stops), for load balancers; default None: none.
        metrics_path: A path where GET and HEAD answer the core's counters in
            Prometheus' text format; default None: none.
        allowed_origins: The origins (`scheme://host[:port]`, compared without
            regard to case) whose browsers may open WebSockets; an upgrade with
            another `Origin` header gets 403 and no handler runs. Default None:
            any. A request without an Origin header (not from a browser) passes.
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
            - inline_io: Runs the core on the event loop's thread (default True when
              `$ROOST_INLINE_IO` is "1", else False): every socket is read and
              written while the loop polls the core, with no thread of the core's
              own, so no message is handed between threads. For a process with one
              core to itself (`workers=N` on N cores). The price: while a handler
              blocks the event loop no socket is served, not even keepalive pings,
              and timers fire up to 10 ms late. Not with a backplane, nor with
              worker_threads above 1 (ValueError).
            - max_http_body_size: Largest HTTP request body accepted, in bytes,
              inclusive (larger: 413).
            - http_idle_timeout: Seconds a kept-alive HTTP connection may wait for
              its next request before the core closes it.
            - http_response_timeout: Seconds an HTTP handler or the
              `before_upgrade` hook has to answer before the client gets 503.

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
        health_path: str | None = None,
        metrics_path: str | None = None,
        allowed_origins: Sequence[str] | None = None,
        **limits: Unpack[LimitOptions],
    ) -> None:
        self.file_path = file_path
        self.limits = Limits.resolve(limits)
        if "inline_io" not in limits and os.environ.get("ROOST_INLINE_IO") == "1":
            self.limits = dataclasses.replace(self.limits, inline_io=True)
        if backplane is None:
            backplane = os.environ.get("ROOST_BACKPLANE") or None
        if backplane is not None and not isinstance(backplane, str):
            raise TypeError(f"backplane must be a str URL, not {type(backplane).__name__}")
        #: The Redis URL whose pub/sub carries broadcasts and publishes to the app's
        #: other processes and hosts, or None.
        self.backplane = backplane
        #: The health and metrics paths and the allowed origins.
        self.http_options = HttpOptions.of(health_path, metrics_path, allowed_origins)
        # The core checks the limits together, the URL and the HTTP options (and says
        # what is wrong) when a server is made; making one starts no thread.
        NativeServer(self.limits, backplane=backplane, http=self.http_options).free()
        #: SystemExit or KeyboardInterrupt raised by a handler: the server stops
        #: gracefully, then `start` / `serve` raise it.
        self._exit_request: BaseException | None = None
        self.shutdown_grace = float(shutdown_grace)
        self._endpoints: dict[str, Endpoint] = {}
        self._http_routes: dict[tuple[str, str], HttpRoute] = {}
        #: (URL prefix, directory) of each static mount, in registration order.
        self._static_mounts: list[tuple[str, str]] = []
        self._before_upgrade: Callable[[Request], Any] | None = None
        self._stop_requested: anyio.Event | None = None
        self._native: NativeServer | None = None
        #: The bound port while serving, else None.
        self.port: int | None = None

    def websocket(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        require_subprotocol: bool = False,
    ) -> Callable[[F], F]:
        """Decorator registering an `async def handler(websocket, ...)` for `path`
        (exact match). The handler gains `handler.on_connect` and `handler.on_close`
        decorators.

        Args:
            path: The exact path, starting with "/".
            subprotocols: The subprotocols this path speaks, preferred first: the
                first of them that the client offers (`Sec-WebSocket-Protocol`) is
                selected, echoed in the answer and given as `websocket.subprotocol`.
            require_subprotocol: Refuse (400 `No supported subprotocol`) a client
                that offers none of them; by default it connects without one.

        Raises:
            TypeError: the handler is not an async function, or `subprotocols` is not
                a list of str.
            ValueError: `path` is not a path or is already registered, a subprotocol
                is not a token, or `require_subprotocol` without `subprotocols`.
        """
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(
                f"WebSocket path must be a str starting with '/', without '?': {path!r}"
            )
        if path in self._endpoints:
            raise ValueError(f"WebSocket path {path!r} is already registered")
        offered = _subprotocols(subprotocols, require_subprotocol)
        if offered:
            # The core's rules for the list, when the program states it.
            with scratch_server() as scratch:
                scratch.set_subprotocols(scratch.add_route(path), offered, require_subprotocol)

        def register(handler: F) -> F:
            if path in self._endpoints:
                raise ValueError(f"WebSocket path {path!r} is already registered")
            endpoint = Endpoint(path, handler, offered, require_subprotocol)
            handler.on_connect = endpoint.set_on_connect  # type: ignore[attr-defined]
            handler.on_close = endpoint.set_on_close  # type: ignore[attr-defined]
            self._endpoints[path] = endpoint
            return handler

        return register

    def get(self, path: str) -> Callable[[F], F]:
        """Decorator registering a handler for GET requests to `path` (exact match,
        without the query string), and HEAD ones, whose response the core sends
        without its body. It returns the handler itself.

        The handler, `def` or `async def`, takes the `Request` (or nothing) and
        returns the response: str (200 text/plain), bytes (200
        application/octet-stream), dict or list (200 application/json), a `Response`,
        or None (204). When it raises, the client gets 500 and the traceback is
        logged on the `roost` logger. A sync handler runs on the event loop: keep it
        short, or make it async and hand blocking work to a thread.

        Raises:
            TypeError: `path` is not a str, or the handler is not callable.
            ValueError: `path` does not start with "/" or holds a "?", or the same
                method and path are already registered.
        """
        return self._http_route("GET", path)

    def post(self, path: str) -> Callable[[F], F]:
        """Decorator registering a handler for POST requests to `path` (as `get`)."""
        return self._http_route("POST", path)

    def put(self, path: str) -> Callable[[F], F]:
        """Decorator registering a handler for PUT requests to `path` (as `get`)."""
        return self._http_route("PUT", path)

    def patch(self, path: str) -> Callable[[F], F]:
        """Decorator registering a handler for PATCH requests to `path` (as `get`)."""
        return self._http_route("PATCH", path)

    def delete(self, path: str) -> Callable[[F], F]:
        """Decorator registering a handler for DELETE requests to `path` (as `get`)."""
        return self._http_route("DELETE", path)

    def _http_route(self, method: str, path: str) -> Callable[[F], F]:
        check_path(path, "an HTTP route's path")
        if (method, path) in self._http_routes:
            raise ValueError(f"{method} {path} is already registered")
        # The core's rules for a method and a path (a token, what a path may hold).
        with scratch_server() as scratch:
            scratch.add_http_route(method, path)

        def register(handler: F) -> F:
            if (method, path) in self._http_routes:
                raise ValueError(f"{method} {path} is already registered")
            self._http_routes[(method, path)] = HttpRoute(method, path, handler)
            return handler

        return register

    def static(self, url_prefix: str, directory: str | os.PathLike[str]) -> None:
        """Serves the files under `directory` at `url_prefix` (`/assets/app.js` is
        `directory/app.js`). The core serves them: their bytes never pass through
        Python. A directory's `index.html` answers for it; there are no listings.
        A path that would leave the directory (`..`, a symbolic link out) gets 404.
        Files get a Content-Type by extension, ETag and Last-Modified (with 304
        answers to conditional requests) and byte ranges. An HTTP route on the same
        path wins; the longest matching prefix serves.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: (`InvalidArgument`) `url_prefix` does not start with "/" or
                is already mounted, or `directory` does not exist or is not a
                directory.
        """
        if not isinstance(url_prefix, str):
            raise TypeError(f"url_prefix must be a str, not {type(url_prefix).__name__}")
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path, not {type(directory).__name__}")
        directory = os.fspath(directory)
        mounts = [*self._static_mounts, (url_prefix, directory)]
        # The core's rules (the prefix, one mount per prefix, the directory), now.
        with scratch_server() as scratch:
            for prefix, path in mounts:
                scratch.add_static(prefix, path)
        self._static_mounts = mounts

    def serve_directory(
        self,
        route: str,
        directory_path: str | os.PathLike[str],
        index_file: str | None = None,
        show_files_listing: bool = False,
    ) -> None:
        """Robyn's name for `static(route, directory_path)`.

        Args:
            route: The URL prefix.
            directory_path: The directory.
            index_file: None or "index.html": a directory's index.html answers for it.
            show_files_listing: Must be False: no directory listings are served.

        Raises:
            ValueError: another `index_file`, or `show_files_listing`; as `static`.
        """
        if index_file not in (None, "index.html"):
            raise ValueError(
                f"index_file {index_file!r} is not served: a directory's index is index.html"
            )
        if show_files_listing:
            raise ValueError("show_files_listing is not supported: no directory listings")
        self.static(route, directory_path)

    def before_upgrade(self, hook: Hook) -> Hook:
        """Decorator registering the app's upgrade hook, `hook(request)`, sync or
        async: it sees every WebSocket upgrade request (a `Request`) that passed the
        core's own checks (route, origin, subprotocol), before the upgrade. It returns
        None to accept it, or a `Response` (status 300 to 599) to refuse it; then the
        client gets that response and no WebSocket handler runs. If it raises (or
        returns anything else), the client gets 500 and the traceback is logged.

        Raises:
            TypeError: `hook` is not callable.
            ValueError: the app already has a hook.
        """
        if not callable(hook):
            raise TypeError(f"before_upgrade takes a function, got {hook!r}")
        if self._before_upgrade is not None:
            raise ValueError(f"the app already has a before_upgrade hook: {self._before_upgrade!r}")
        self._before_upgrade = hook
        return hook

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
            backend: "asyncio", "uvloop" (asyncio on uvloop's loop: `pip install
                roost[uvloop]`) or "trio"; default `$ROOST_BACKEND` or "asyncio".
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
            RuntimeError: nothing to serve, the app is already serving, or `workers`
                > 1 outside Linux.
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
                run_on(chosen, self._serve_until_signal, host, port, chosen, None, tls)
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
        self._new_native(reuse_port=True, tls=tls)[0].free()
        reservation = reserve_port(host, port)
        try:
            bound = reservation.getsockname()[1]

            def serve_as_worker(link: WorkerLink) -> None:
                run_on(backend, self._serve_until_signal, host, bound, backend, link, tls)

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
        served = self._bind(host, port, reuse_port=worker is not None, tls=tls)
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
                    await self._run(served, anyio.TASK_STATUS_IGNORED)
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
            RuntimeError: nothing to serve (no route, no static files, no health or
                metrics path), or the app is already serving.
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

    def _new_native(
        self, *, reuse_port: bool, tls: TlsFiles | None
    ) -> tuple[NativeServer, RouteTable]:
        """A core server with this app's limits and routes, not started, and what its
        route ids stand for."""
        if not (
            self._endpoints
            or self._http_routes
            or self._static_mounts
            or self.http_options.health_path
            or self.http_options.metrics_path
        ):
            raise RuntimeError(
                "nothing to serve: register a route (@app.websocket(path), @app.get(path), "
                "...) or static files (app.static)"
            )
        if self._stop_requested is not None:
            raise RuntimeError("this app is already serving")
        native = NativeServer(
            self.limits,
            reuse_port=reuse_port,
            backplane=self.backplane,
            tls=tls,
            http=self.http_options,
        )
        table = RouteTable(
            before_upgrade=self._before_upgrade, scheme="http" if tls is None else "https"
        )
        try:
            for endpoint in self._endpoints.values():
                route = native.add_route(endpoint.path)
                table.websocket[route] = endpoint
                if endpoint.subprotocols:
                    native.set_subprotocols(
                        route, endpoint.subprotocols, endpoint.require_subprotocol
                    )
                if self._before_upgrade is not None:
                    native.vet_upgrades(route)
            for http_route in self._http_routes.values():
                table.http[native.add_http_route(http_route.method, http_route.path)] = http_route
            for prefix, directory in self._static_mounts:
                native.add_static(prefix, directory)
        except BaseException:
            native.free()
            raise
        return native, table

    def _bind(
        self,
        host: str | None,
        port: int | None,
        *,
        reuse_port: bool = False,
        tls: TlsFiles | None = None,
    ) -> tuple[NativeServer, RouteTable]:
        native, table = self._new_native(reuse_port=reuse_port, tls=tls)
        try:
            self.port = native.start(self._host(host), self._port(port))
        except BaseException:
            native.free()
            raise
        self._stop_requested = anyio.Event()
        self._native = native
        return native, table

    async def _run(
        self, served: tuple[NativeServer, RouteTable], task_status: TaskStatus[int]
    ) -> None:
        assert self._stop_requested is not None and self.port is not None
        native, table = served
        try:
            async with anyio.create_task_group() as tasks:
                dispatcher = Dispatcher(
                    native,
                    table,
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
        connections, topics in use, what the `slow_consumer` policy did, messages and
        bytes each way, HTTP requests answered and upgrades refused. Safe from any
        thread."""
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


def _subprotocols(subprotocols: Sequence[str] | None, required: bool) -> tuple[str, ...]:
    """`@app.websocket`'s subprotocols as a tuple, their form checked (the core checks
    that each is a token).

    Raises:
        TypeError: not a list of str, or `required` not a bool.
        ValueError: `required` with no subprotocol, or one holding a comma.
    """
    if not isinstance(required, bool):
        raise TypeError(f"require_subprotocol must be a bool, not {type(required).__name__}")
    if subprotocols is None:
        offered: tuple[str, ...] = ()
    elif isinstance(subprotocols, (str, bytes)):
        raise TypeError(
            f"subprotocols must be a list of str, not a single {type(subprotocols).__name__}: "
            f"subprotocols=[{subprotocols!r}]"
        )
    else:
        offered = tuple(subprotocols)
    for name in offered:
        if not isinstance(name, str):
            raise TypeError(f"a subprotocol must be a str, not {type(name).__name__}")
        if "," in name:
            raise ValueError(f"{name!r} is not a subprotocol (a token, without commas)")
    if required and not offered:
        raise ValueError("require_subprotocol=True needs subprotocols=[...]")
    return offered


def _scheme(tls: TlsFiles | None) -> str:
    """The URL scheme clients use: wss with TLS."""
    return "ws" if tls is None else "wss"


def run_on(backend: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Runs `func(*args)` to its end on a new event loop of `backend` (one of BACKENDS)."""
    if backend != "uvloop":
        anyio.run(func, *args, backend=backend)
        return
    if importlib.util.find_spec("uvloop") is None:
        raise ValueError('backend "uvloop" needs the uvloop package: pip install "roost[uvloop]"')
    anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": True})
