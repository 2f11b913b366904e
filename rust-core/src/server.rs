//! The server: routes, the runtime and its listener, and the calls a consumer makes
//! (poll, send, broadcast, publish, subscribe, close, stop). Every method takes `&self` and may be called
//! from any thread.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::config::Config;
use crate::connection_state::ConnectionState;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::frames::{self, DataKind};
use crate::inline_io;
use crate::listener;
use crate::outgoing::Encoded;
use crate::routes::{self, Routes};
use crate::scheduling;
use crate::server_state::ServerState;
use crate::stats::Stats;
use crate::topics::check_topic;
use crate::upgrade_rules::Subprotocols;

#[derive(Debug)]
enum Lifecycle {
    Created { routes: Routes },
    Running { runtime: Runtime, port: u16 },
    Stopped,
}

/// A WebSocket server. Create it, add routes, start it, then poll its events when its
/// ready descriptor is readable.
#[derive(Debug)]
pub struct Server {
    state: Arc<ServerState>,
    lifecycle: Mutex<Lifecycle>,
}

impl Server {
    /// Creates a stopped server with the given limits.
    pub fn new(config: Config) -> Result<Server> {
        config.validate().map_err(Error::InvalidArgument)?;
        Ok(Server {
            state: Arc::new(ServerState::new(config)?),
            lifecycle: Mutex::new(Lifecycle::Created { routes: Routes::default() }),
        })
    }

    fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's limits.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Serves WebSocket upgrades on `path` (exact match, without query string) and
    /// returns its route id. WebSocket and HTTP routes take their ids from one
    /// sequence, counted from 0 in the order routes are added.
    pub fn add_route(&self, path: &str) -> Result<u32> {
        routes::check_path(path)?;
        self.change_routes(|routes| routes.add_websocket(path))
    }

    /// Serves HTTP requests for `method` (an upper-case token: GET, POST...) on `path`
    /// (exact match, without query string) and returns its route id. Each becomes an
    /// `Event::Request`, answered with `respond`. A GET route serves HEAD too, unless
    /// the path has a HEAD route of its own. A path may have a WebSocket route as well:
    /// upgrades go to that one.
    pub fn add_http_route(&self, method: &str, path: &str) -> Result<u32> {
        // Bad arguments are told as such whatever the state.
        routes::check_method(method)?;
        routes::check_path(path)?;
        self.change_routes(|routes| routes.add_http(method, path))
    }

    /// Serves the files of `directory` (which must exist; it is canonicalized now)
    /// under the URL prefix `prefix` (starting with '/'), from the core itself: GET and
    /// HEAD, with their type, validators (304) and byte ranges, never a listing nor
    /// anything outside the directory. The longest prefix that covers a path serves
    /// it. Requests for HTTP routes come first.
    pub fn add_static(&self, prefix: &str, directory: impl AsRef<std::path::Path>) -> Result<()> {
        self.change_routes(|routes| routes.add_static(prefix, directory.as_ref()))
    }

    /// Makes the upgrades of a WebSocket route wait for the consumer (true), which
    /// gets an `Event::UpgradeRequest` for each and answers with `accept_upgrade` or
    /// `respond`; or upgrades them at once (false, the default).
    pub fn vet_upgrades(&self, route: u32, vet: bool) -> Result<()> {
        self.change_routes(|routes| routes.set_vet_upgrades(route, vet))
    }

    /// Gives `route` the subprotocols it speaks, in the server's order of preference
    /// (each an RFC 6455 token, none twice), replacing any it had. An upgrade gets the
    /// first of them that the client offers in its `Sec-WebSocket-Protocol` headers,
    /// whatever the client's own order; the 101 names it and the connect event carries
    /// it (`ConnectInfo::subprotocol`). A client that offers none of them is upgraded
    /// without a subprotocol, or, when `required`, refused with 400. Only before start.
    pub fn route_subprotocols(&self, route: u32, protocols: &[&str], required: bool) -> Result<()> {
        let protocols = Subprotocols::new(protocols, required)?;
        self.change_routes(|routes| routes.set_subprotocols(route, protocols))
    }

    fn change_routes<T>(&self, change: impl FnOnce(&mut Routes) -> Result<T>) -> Result<T> {
        match &mut *self.lifecycle() {
            Lifecycle::Created { routes } => change(routes),
            _ => Err(Error::InvalidState("routes must be added before start".into())),
        }
    }

    /// Answers the HTTP request or refuses the upgrade `request` (an id from an
    /// `Event::Request` or `Event::UpgradeRequest`) with `status` (200-599 for a
    /// request, 300-599 for an upgrade), `headers` (zero or more `Name: value\r\n`
    /// lines; `Content-Length`, `Transfer-Encoding` and `Connection` are the core's)
    /// and `body`, copied. May be called from any thread. `NotFound` when nothing
    /// waits for that answer (answered already, timed out, client gone).
    pub fn respond(&self, request: u64, status: u16, headers: &[u8], body: &[u8]) -> Result<()> {
        self.state.answers.respond(request, status, headers, body)?;
        self.state.want_step();
        Ok(())
    }

    /// Lets the vetted upgrade `request` go ahead: the client gets its 101 and the
    /// consumer an `Event::Connect` with the same id. May be called from any thread.
    /// `NotFound` as for `respond`.
    pub fn accept_upgrade(&self, request: u64) -> Result<()> {
        self.state.answers.accept(request)?;
        self.state.want_step();
        Ok(())
    }

    /// Binds `host:port` (port 0 picks a free port), starts the runtime and accepts
    /// connections. Returns the bound port. With `Config::reuse_port` the port may be
    /// shared with other servers (other processes) that set it too.
    pub fn start(&self, host: &str, port: u16) -> Result<u16> {
        let mut lifecycle = self.lifecycle();
        let Lifecycle::Created { routes } = &mut *lifecycle else {
            return Err(Error::InvalidState("server was already started".into()));
        };
        let config = &self.state.config;
        if routes.is_empty() && config.health_path.is_none() && config.metrics_path.is_none() {
            return Err(Error::InvalidState("add at least one route before start".into()));
        }
        let runtime = if self.state.inline.is_some() {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.state.config.worker_threads)
                .thread_name("roost-worker")
                .on_thread_start(scheduling::yield_to_consumer_on_wakeup)
                .enable_all()
                .build()?
        };
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener::bind(host, port, self.state.config.reuse_port)?)?
        };
        let port = listener.local_addr()?.port();
        if let Some(inline) = &self.state.inline {
            inline.watch(listener.as_raw_fd())?;
        }
        let routes = std::mem::take(routes);
        if let Some(backplane) = &self.state.backplane {
            backplane.start(self.state.clone(), routes.websocket_paths(), &runtime);
        }
        self.state.set_routes(routes);
        runtime.spawn(inline_io::counted(listener::accept_loop(listener, self.state.clone())));
        *lifecycle = Lifecycle::Running { runtime, port };
        Ok(port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> Result<u16> {
        match &*self.lifecycle() {
            Lifecycle::Running { port, .. } => Ok(*port),
            _ => Err(Error::InvalidState("server is not running".into())),
        }
    }

    /// The descriptor that becomes readable when `poll` may return events (with
    /// `inline_io`: when `poll` has work). Valid from creation until the server is
    /// dropped.
    pub fn ready_fd(&self) -> RawFd {
        match &self.state.inline {
            Some(inline) => inline.fd(),
            None => self.state.events.fd(),
        }
    }

    /// Moves up to `max` waiting events into `out` and returns how many. When it
    /// returns 0 the ready descriptor is re-armed: wait for it before polling again.
    /// With `inline_io` it first runs the runtime for one step, on this thread.
    pub fn poll(&self, out: &mut Vec<Event>, max: usize) -> usize {
        if let Some(inline) = &self.state.inline {
            // A stop in progress holds the lifecycle and runs the runtime itself, on
            // its own thread: the step is left to it rather than waited for.
            let lifecycle = match self.lifecycle.try_lock() {
                Ok(lifecycle) => Some(lifecycle),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            match lifecycle.as_deref() {
                Some(Lifecycle::Running { runtime, .. }) => inline.step(Some(runtime)),
                _ => inline.step(None),
            }
        }
        let n = self.state.events.poll(out, max);
        if n == max {
            // More may be waiting, and with inline_io the descriptor may not say so.
            self.state.want_step();
        }
        if n > 0 {
            self.state.write_through.store(true, Ordering::Relaxed);
        }
        n
    }

    fn connection(&self, id: u64) -> Result<Arc<ConnectionState>> {
        self.check_running()?;
        self.state.registry.get(id).ok_or(Error::NotFound)
    }

    /// Queues a text message for one connection. `data` must be UTF-8; it is copied
    /// once, into the encoded frame. The first send after a poll that returned events
    /// may write the frame to an idle connection's socket at once, from this thread.
    pub fn send_text(&self, id: u64, data: impl AsRef<[u8]>) -> Result<()> {
        let data = data.as_ref();
        check_utf8(data)?;
        self.send(id, DataKind::Text, data)
    }

    /// Queues a binary message for one connection.
    pub fn send_binary(&self, id: u64, data: impl AsRef<[u8]>) -> Result<()> {
        self.send(id, DataKind::Binary, data.as_ref())
    }

    fn send(&self, id: u64, kind: DataKind, data: &[u8]) -> Result<()> {
        let connection = self.connection(id)?;
        let message = Encoded::new(kind, data, self.state.config.compress_from());
        connection.send(message.frame_for(&connection).clone(), &self.state.write_through)?;
        self.state.counters.sent.add(1, data.len() as u64);
        Ok(())
    }

    /// Queues a text message for every connection of `route` and returns how many
    /// received it. It is encoded once, and every recipient shares that one frame. A
    /// recipient over its send limit is closed with 1008 or skipped, as the server's
    /// `slow_consumer` policy says.
    pub fn broadcast_text(&self, route: u32, data: impl AsRef<[u8]>) -> Result<usize> {
        let data = data.as_ref();
        check_utf8(data)?;
        self.broadcast(route, DataKind::Text, data)
    }

    /// Binary form of `broadcast_text`.
    pub fn broadcast_binary(&self, route: u32, data: impl AsRef<[u8]>) -> Result<usize> {
        self.broadcast(route, DataKind::Binary, data.as_ref())
    }

    fn broadcast(&self, route: u32, kind: DataKind, data: &[u8]) -> Result<usize> {
        self.check_running()?;
        if !self.state.routes().is_websocket(route) {
            return Err(Error::NotFound);
        }
        let message = Encoded::new(kind, data, self.state.config.compress_from());
        let delivered = self.state.registry.deliver_to_route(route, &message, &self.state.fanout);
        if let Some(backplane) = &self.state.backplane {
            backplane.broadcast(route, kind, data);
        }
        Ok(delivered)
    }

    /// Queues a text message for every subscriber of `topic` except `exclude` (a
    /// connection id) and returns how many received it. Like a broadcast it is encoded
    /// once, shared by every recipient, and subject to the `slow_consumer` policy; a
    /// topic without subscribers costs a lookup and nothing else. May be called from
    /// any thread, before start too (no one is subscribed yet).
    pub fn publish_text(&self, topic: &[u8], data: impl AsRef<[u8]>, exclude: Option<u64>) -> Result<usize> {
        let data = data.as_ref();
        check_utf8(data)?;
        self.publish(topic, DataKind::Text, data, exclude)
    }

    /// Binary form of `publish_text`.
    pub fn publish_binary(
        &self,
        topic: &[u8],
        data: impl AsRef<[u8]>,
        exclude: Option<u64>,
    ) -> Result<usize> {
        self.publish(topic, DataKind::Binary, data.as_ref(), exclude)
    }

    fn publish(&self, topic: &[u8], kind: DataKind, data: &[u8], exclude: Option<u64>) -> Result<usize> {
        check_topic(topic)?;
        self.check_running()?;
        let message = Encoded::new(kind, data, self.state.config.compress_from());
        let delivered = self.state.registry.deliver_to_topic(topic, exclude, &message, &self.state.fanout);
        if let Some(backplane) = &self.state.backplane {
            backplane.publish(topic, kind, data, exclude);
        }
        Ok(delivered)
    }

    /// Makes a connection a subscriber of `topic` (1 to `MAX_TOPIC_LENGTH` bytes, exact
    /// match). Returns false when it already was one; `Closed` when the connection is
    /// closing. The connection leaves all its topics when it ends.
    pub fn subscribe(&self, id: u64, topic: &[u8]) -> Result<bool> {
        check_topic(topic)?;
        self.check_running()?;
        self.state.registry.subscribe(id, topic)
    }

    /// Removes a connection from `topic`. Returns false when it was not a subscriber.
    pub fn unsubscribe(&self, id: u64, topic: &[u8]) -> Result<bool> {
        check_topic(topic)?;
        self.check_running()?;
        self.state.registry.unsubscribe(id, topic).ok_or(Error::NotFound)
    }

    /// The topics a connection is subscribed to.
    pub fn topics_of(&self, id: u64) -> Result<Vec<Arc<[u8]>>> {
        self.check_running()?;
        self.state.registry.topics_of(id).ok_or(Error::NotFound)
    }

    /// The number of connections subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &[u8]) -> Result<usize> {
        check_topic(topic)?;
        Ok(self.state.registry.subscriber_count(topic))
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    fn check_running(&self) -> Result<()> {
        if self.state.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Closes one connection with `code` and `reason` after the messages already
    /// queued for it. Its disconnect event follows when the handshake ends.
    pub fn close(&self, id: u64, code: u16, reason: &str) -> Result<()> {
        frames::check_close(code, reason)?;
        self.connection(id)?.close(code, reason.to_string())
    }

    /// Makes a connection a broadcast recipient of its route, for servers created with
    /// `join_broadcast_on_connect` false (for others it already is one).
    pub fn join_broadcast(&self, id: u64) -> Result<()> {
        self.check_running()?;
        if self.state.registry.join_route(id) {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Stops (true) or restarts (false) reading one connection's socket, for consumers
    /// that buffer messages of their own.
    pub fn set_reading_paused(&self, id: u64, paused: bool) -> Result<()> {
        self.connection(id)?.set_paused(paused);
        Ok(())
    }

    /// Connections upgraded and not yet disconnected.
    pub fn connection_count(&self) -> usize {
        self.state.registry.len()
    }

    /// Stops accepting, closes every connection with 1001 after what is queued for it,
    /// closes HTTP connections between requests, waits up to `grace` for the close
    /// handshakes and the HTTP requests in flight (each answered, then its connection
    /// closed), then drops what is left (those get a 1006 disconnect event). Blocks the caller (from inside a tokio runtime, on a
    /// helper thread, since a runtime cannot be shut down from async context).
    /// Disconnect events stay available to `poll`. Calling it again, or on a server
    /// never started, does nothing.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.stop_here(grace))
                    .join()
                    .map_err(|payload| Error::Panic(crate::error::panic_message(&*payload)))?
            });
        }
        self.stop_here(grace)
    }

    fn stop_here(&self, grace: Duration) -> Result<()> {
        let mut lifecycle = self.lifecycle();
        let runtime = match std::mem::replace(&mut *lifecycle, Lifecycle::Stopped) {
            Lifecycle::Running { runtime, .. } => runtime,
            // Never started (or already stopped): leave it as it was.
            other => {
                *lifecycle = other;
                return Ok(());
            }
        };
        let state = &self.state;
        state.stopping.store(true, Ordering::Release);
        state.stop_accepting.notify_one();
        // HTTP connections between requests close now; those with a request in
        // flight answer it first (and close after it).
        state.stop_idle.notify_waiters();
        for handle in state.registry.all() {
            handle.shutdown();
        }
        runtime.block_on(async {
            // With inline_io, the closes just queued wake their tasks here.
            if let Some(inline) = &state.inline {
                inline.wake_deferred();
            }
            let _ = tokio::time::timeout(grace, async {
                loop {
                    let drained = state.drained.notified();
                    if state.drained() {
                        break;
                    }
                    drained.await;
                }
            })
            .await;
        });
        // Dropping the remaining tasks sends their disconnect events.
        runtime.shutdown_timeout(Duration::from_secs(1));
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop(Duration::ZERO);
    }
}

fn check_utf8(data: &[u8]) -> Result<()> {
    std::str::from_utf8(data)
        .map(drop)
        .map_err(|_| Error::InvalidArgument("text message is not valid UTF-8".into()))
}
