//! The state a server's calls and its tasks (listener, connections) share: the limits,
//! the event queue, the registry of connections, the routes, the answers the consumer
//! owes, the traffic counters, and the counters that hold the server to
//! `max_pending_handshakes` and `max_connections`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::answers::Answers;
use crate::backplane::Backplane;
use crate::config::Config;
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::events::EventQueue;
use crate::fanout::Fanout;
use crate::handshake::Route;
use crate::inline_io::InlineIo;
use crate::registry::Registry;
use crate::routes::Routes;
use crate::stats::Stats;
use crate::tls::Tls;

/// State shared by the server's calls and its tasks.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) config: Config,
    pub(crate) events: EventQueue,
    pub(crate) registry: Registry,
    /// Delivers broadcasts and publishes under the slow-consumer policy.
    pub(crate) fanout: Fanout,
    /// The link to the other servers through Redis, when `Config::backplane` is set.
    pub(crate) backplane: Option<Arc<Backplane>>,
    /// The TLS acceptor and its failure count, when `Config::tls` is set.
    pub(crate) tls: Option<Tls>,
    /// Sockets accepted whose upgrade is not finished (for `max_pending_handshakes`).
    pending_handshakes: AtomicUsize,
    /// Upgraded connections whose task has not ended (for `max_connections`).
    connections: AtomicUsize,
    pub(crate) next_id: AtomicU64,
    pub(crate) stopping: AtomicBool,
    routes: OnceLock<Routes>,
    /// HTTP requests and vetted upgrades waiting for the consumer's answer.
    pub(crate) answers: Answers,
    /// HTTP requests answered by the HTTP side (`Stats::http_requests`).
    pub(crate) http_requests: AtomicU64,
    /// Messages and bytes each way, upgrades refused.
    pub(crate) counters: Counters,
    /// HTTP requests between their first byte and the end of their answer: a stop
    /// waits for them (within its grace period) as it waits for connections to close.
    http_in_flight: AtomicUsize,
    /// Tells HTTP connections waiting for their next request that the server stops.
    pub(crate) stop_idle: Notify,
    /// One send may write straight to an idle connection's socket; each poll that
    /// returns events grants it anew (see `connection_state` on write-through).
    pub(crate) write_through: AtomicBool,
    /// Signalled when the last connection leaves during a stop.
    pub(crate) drained: Notify,
    pub(crate) stop_accepting: Notify,
    /// The consumer's descriptor and step when the runtime runs on its thread
    /// (`Config::inline_io`).
    pub(crate) inline: Option<Arc<InlineIo>>,
}

/// Which limit a `Place` counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `max_pending_handshakes`: a socket whose upgrade request is still being read.
    Handshake,
    /// `max_connections`: an upgraded connection.
    Connection,
}

/// A place under one of the server's limits, given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    state: Arc<ServerState>,
    limit: Limit,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.state.counter(self.limit).fetch_sub(1, Ordering::AcqRel);
    }
}

/// An HTTP request in flight, counted until dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Arc<ServerState>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.http_in_flight.fetch_sub(1, Ordering::AcqRel);
        self.state.notify_if_drained();
    }
}

impl ServerState {
    pub(crate) fn new(config: Config) -> Result<ServerState> {
        let fanout = Fanout::new(config.slow_consumer);
        let backplane = match &config.backplane {
            Some(url) => {
                Some(Arc::new(Backplane::new(url, config.backplane_queue).map_err(Error::InvalidArgument)?))
            }
            None => None,
        };
        let tls = config.tls.as_ref().map(Tls::new).transpose()?;
        let events = EventQueue::new()?;
        let inline = if config.inline_io { Some(Arc::new(InlineIo::new(events.fd())?)) } else { None };
        Ok(ServerState {
            tls,
            inline,
            events,
            registry: Registry::new(backplane.as_ref().map(|b| b.interest())),
            config,
            fanout,
            backplane,
            pending_handshakes: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            routes: OnceLock::new(),
            counters: Counters::default(),
            answers: Answers::default(),
            http_requests: AtomicU64::new(0),
            http_in_flight: AtomicUsize::new(0),
            stop_idle: Notify::new(),
            write_through: AtomicBool::new(false),
            drained: Notify::new(),
            stop_accepting: Notify::new(),
        })
    }

    /// Fixes the routing table, path to route id; once, at start.
    /// With `inline_io`, makes sure the consumer runs a step soon: a call queued work
    /// for connections' tasks.
    pub(crate) fn want_step(&self) {
        if let Some(inline) = &self.inline {
            inline.want_step();
        }
    }

    /// Fixes the routes; once, at start.
    pub(crate) fn set_routes(&self, routes: Routes) {
        let _ = self.routes.set(routes);
    }

    /// The routes (none before start).
    pub(crate) fn routes(&self) -> &Routes {
        static NONE: OnceLock<Routes> = OnceLock::new();
        self.routes.get().unwrap_or_else(|| NONE.get_or_init(Routes::default))
    }

    /// The WebSocket route serving `path`, if any.
    pub(crate) fn route_of(&self, path: &[u8]) -> Option<u32> {
        self.routes().websocket_route(path)
    }

    /// The WebSocket route serving `path`, with what its upgrades must agree on.
    pub(crate) fn upgrade_route(&self, path: &[u8]) -> Option<Route<'_>> {
        let id = self.route_of(path)?;
        Some(Route { id, subprotocols: self.routes().subprotocols(id) })
    }

    /// The server's counters now.
    pub(crate) fn stats(&self) -> Stats {
        let counters = &self.counters;
        let (messages_received, bytes_received) = counters.received.read();
        let (sent, sent_bytes) = counters.sent.read();
        let (fanned_out, fanned_out_bytes) = self.fanout.queued();
        let [refused_400, refused_403, refused_404, refused_426, refused_431, refused_503, refused_other] =
            counters.refusals.read();
        let mut stats = Stats {
            connections: self.registry.len(),
            topics: self.registry.topic_count(),
            deliveries_skipped: self.fanout.skipped(),
            slow_consumers_closed: self.fanout.closed(),
            tls_handshakes_failed: self.tls.as_ref().map_or(0, |tls| tls.failed()),
            messages_received,
            bytes_received,
            messages_sent: sent + fanned_out,
            bytes_sent: sent_bytes + fanned_out_bytes,
            http_requests: self.http_requests.load(Ordering::Relaxed),
            upgrades_refused_400: refused_400,
            upgrades_refused_403: refused_403,
            upgrades_refused_404: refused_404,
            upgrades_refused_426: refused_426,
            upgrades_refused_431: refused_431,
            upgrades_refused_503: refused_503,
            upgrades_refused_other: refused_other,
            ..Stats::default()
        };
        if let Some(backplane) = &self.backplane {
            backplane.fill(&mut stats);
        }
        stats
    }

    /// Counts an HTTP request from its first byte until the guard is dropped.
    pub(crate) fn http_in_flight(self: &Arc<Self>) -> InFlight {
        self.http_in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { state: self.clone() }
    }

    fn counter(&self, limit: Limit) -> &AtomicUsize {
        match limit {
            Limit::Handshake => &self.pending_handshakes,
            Limit::Connection => &self.connections,
        }
    }

    /// Takes a place under `limit`, or None when the limit is reached.
    pub(crate) fn take_place(self: &Arc<Self>, limit: Limit) -> Option<Place> {
        let max = match limit {
            Limit::Handshake => self.config.max_pending_handshakes,
            Limit::Connection => self.config.max_connections,
        };
        let counter = self.counter(limit);
        if counter.fetch_add(1, Ordering::AcqRel) >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place { state: self.clone(), limit })
    }

    /// Whether no connection is open and no HTTP request in flight.
    pub(crate) fn drained(&self) -> bool {
        self.registry.len() == 0 && self.http_in_flight.load(Ordering::Acquire) == 0
    }

    pub(crate) fn notify_if_drained(&self) {
        if self.stopping.load(Ordering::Acquire) && self.drained() {
            self.drained.notify_one();
        }
    }
}
