//! The state a server's calls and its tasks (listener, connections) share: the limits,
//! the event queue, the registry of connections, the routes, and the counters that
//! hold the server to `max_pending_handshakes` and `max_connections`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::backplane::Backplane;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::EventQueue;
use crate::fanout::Fanout;
use crate::registry::Registry;
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
    routes: OnceLock<HashMap<Box<[u8]>, u32>>,
    /// One send may write straight to an idle connection's socket; each poll that
    /// returns events grants it anew (see `connection_state` on write-through).
    pub(crate) write_through: AtomicBool,
    /// Signalled when the last connection leaves during a stop.
    pub(crate) drained: Notify,
    pub(crate) stop_accepting: Notify,
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
        Ok(ServerState {
            tls,
            events: EventQueue::new()?,
            registry: Registry::new(backplane.as_ref().map(|b| b.interest())),
            config,
            fanout,
            backplane,
            pending_handshakes: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            routes: OnceLock::new(),
            write_through: AtomicBool::new(false),
            drained: Notify::new(),
            stop_accepting: Notify::new(),
        })
    }

    /// Fixes the routing table, path to route id; once, at start.
    pub(crate) fn set_routes(&self, routes: HashMap<Box<[u8]>, u32>) {
        let _ = self.routes.set(routes);
    }

    /// The route serving `path`, if any.
    pub(crate) fn route_of(&self, path: &[u8]) -> Option<u32> {
        self.routes.get()?.get(path).copied()
    }

    /// Number of routes (0 before start).
    pub(crate) fn route_count(&self) -> usize {
        self.routes.get().map_or(0, HashMap::len)
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

    pub(crate) fn notify_if_drained(&self) {
        if self.stopping.load(Ordering::Acquire) && self.registry.len() == 0 {
            self.drained.notify_one();
        }
    }
}
