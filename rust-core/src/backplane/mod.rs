//! The backplane: broadcasts and publishes carried to the servers of other processes and
//! hosts through a Redis server's pub/sub (docs/design.md, "The backplane").
//!
//! A broadcast or publish is delivered locally first, then handed to the backplane as
//! an envelope (`envelope.rs`) with a non-blocking send into a bounded queue; the
//! backplane's task (`link.rs`) publishes the queue in order to the message's Redis
//! channel. The same task subscribes to the channels the desired set (`interest.rs`)
//! names and delivers what arrives from other servers through the local fan-out. Redis
//! being slow, stopped or gone never holds up a caller: the queue drops what does not
//! fit and counts it.

mod envelope;
mod interest;
mod link;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use crate::frames::DataKind;
use crate::outgoing::Encoded;
use crate::server_state::ServerState;
use crate::stats::Stats;
pub(crate) use envelope::Target;
use envelope::{channel, Envelope, NodeId};
pub(crate) use interest::Interest;

/// Checks a backplane URL: `redis://`, then what the Redis client accepts (a host, a
/// port, a database number). The message does not repeat the URL, which may hold a
/// password.
pub(crate) fn check_url(url: &str) -> Result<redis::Client, String> {
    if !url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("redis://")) {
        return Err("backplane must be a redis://host:port/db URL".into());
    }
    redis::Client::open(url).map_err(|err| format!("backplane URL is invalid: {err}"))
}

/// A message waiting to be published: its channel and its envelope.
#[derive(Debug)]
struct Outgoing {
    channel: Vec<u8>,
    envelope: Vec<u8>,
}

/// What the backplane counts; read by `Server::stats`.
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    malformed: AtomicU64,
    reconnects: AtomicU64,
    connected: AtomicBool,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A server's part of the backplane: its node id, the desired set, the queue to Redis
/// (from start on) and the counters.
#[derive(Debug)]
pub(crate) struct Backplane {
    client: redis::Client,
    node: NodeId,
    interest: Arc<Interest>,
    queue: usize,
    outgoing: OnceLock<mpsc::Sender<Outgoing>>,
    /// WebSocket route paths by route id, fixed at start.
    routes: OnceLock<HashMap<u32, Box<[u8]>>>,
    counters: Counters,
}

impl Backplane {
    /// A backplane to the Redis server at `url`, with a queue of `queue` messages. It
    /// connects when the server starts.
    pub(crate) fn new(url: &str, queue: usize) -> Result<Backplane, String> {
        Ok(Backplane {
            client: check_url(url)?,
            node: *uuid::Uuid::new_v4().as_bytes(),
            interest: Arc::default(),
            queue,
            outgoing: OnceLock::new(),
            routes: OnceLock::new(),
            counters: Counters::default(),
        })
    }

    /// The desired set, which the registry keeps up to date with the topics in use.
    pub(crate) fn interest(&self) -> Arc<Interest> {
        self.interest.clone()
    }

    /// Subscribes to the channels of `routes` (paths by route id) and starts the task
    /// that talks to Redis on `runtime`. From now on broadcasts and publishes are
    /// queued for Redis.
    pub(crate) fn start(
        self: &Arc<Self>,
        state: Arc<ServerState>,
        routes: HashMap<u32, Box<[u8]>>,
        runtime: &tokio::runtime::Runtime,
    ) {
        for path in routes.values() {
            self.interest.add_route(path);
        }
        let _ = self.routes.set(routes);
        let (sender, receiver) = mpsc::channel(self.queue);
        if self.outgoing.set(sender).is_ok() {
            runtime.spawn(link::run(state, self.clone(), receiver));
        }
    }

    /// Queues a broadcast to `route` for the other servers.
    pub(crate) fn broadcast(&self, route: u32, kind: DataKind, payload: &[u8]) {
        if let Some(path) = self.routes.get().and_then(|paths| paths.get(&route)) {
            self.offer(Target::Route, kind, path, payload, None);
        }
    }

    /// Queues a publish to `topic` for the other servers.
    pub(crate) fn publish(&self, topic: &[u8], kind: DataKind, payload: &[u8], exclude: Option<u64>) {
        self.offer(Target::Topic, kind, topic, payload, exclude);
    }

    /// Queues one envelope without waiting: before start it goes nowhere (as a publish
    /// before start reaches no one), over `backplane_queue` it is dropped and counted.
    fn offer(&self, target: Target, kind: DataKind, name: &[u8], payload: &[u8], exclude: Option<u64>) {
        let Some(queue) = self.outgoing.get() else { return };
        let envelope = Envelope { node: self.node, target, kind, exclude, name, payload };
        let message = Outgoing { channel: channel(target, name), envelope: envelope.encode() };
        if queue.try_send(message).is_err() {
            Counters::add(&self.counters.dropped, 1);
        }
    }

    /// Delivers a message from Redis to this server's recipients: an envelope from
    /// another server, encoded into one frame for all of them. Its own envelopes come
    /// back too and are skipped; what is not an envelope is counted and dropped.
    fn receive(&self, state: &ServerState, message: &[u8]) {
        let envelope = match Envelope::decode(message) {
            Ok(envelope) => envelope,
            Err(_) => return Counters::add(&self.counters.malformed, 1),
        };
        if envelope.node == self.node {
            return;
        }
        Counters::add(&self.counters.received, 1);
        let message = Encoded::new(envelope.kind, envelope.payload, state.config.compress_from());
        match envelope.target {
            Target::Topic => {
                state.registry.deliver_to_topic(envelope.name, None, &message, &state.fanout);
            }
            Target::Route => {
                if let Some(route) = state.route_of(envelope.name) {
                    state.registry.deliver_to_route(route, &message, &state.fanout);
                }
            }
        }
    }

    /// Writes the backplane's counters into `stats`.
    pub(crate) fn fill(&self, stats: &mut Stats) {
        let c = &self.counters;
        stats.backplane_published = c.published.load(Ordering::Relaxed);
        stats.backplane_received = c.received.load(Ordering::Relaxed);
        stats.backplane_dropped = c.dropped.load(Ordering::Relaxed);
        stats.backplane_malformed = c.malformed.load(Ordering::Relaxed);
        stats.backplane_reconnects = c.reconnects.load(Ordering::Relaxed);
        stats.backplane_connected = c.connected.load(Ordering::Relaxed);
    }
}
