//! The counters a server keeps about itself, read all at once by `Server::stats`.

/// A snapshot of a server's counters. Counts are totals since the server was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections upgraded and not yet disconnected.
    pub connections: usize,
    /// Topics with at least one subscriber.
    pub topics: usize,
    /// Messages of broadcasts and publishes that a recipient over its send limit
    /// missed (slow-consumer policy `Skip`).
    pub deliveries_skipped: u64,
    /// Recipients of broadcasts and publishes closed with 1008 for being over their
    /// send limit (slow-consumer policy `Close`).
    pub slow_consumers_closed: u64,
    /// Broadcasts and publishes Redis took from this server for the other servers
    /// (`Config::backplane`; all the backplane's counts stay 0 without one).
    pub backplane_published: u64,
    /// Broadcasts and publishes of other servers that arrived through Redis.
    pub backplane_received: u64,
    /// Broadcasts and publishes that did not go to Redis: the queue was full
    /// (`Config::backplane_queue`), or the backplane was out, or the connection failed
    /// while they were on their way (those may have reached Redis).
    pub backplane_dropped: u64,
    /// Messages on the backplane's channels that were not envelopes this server can
    /// read (another format version, damaged), dropped.
    pub backplane_malformed: u64,
    /// Times the backplane reconnected after losing Redis.
    pub backplane_reconnects: u64,
    /// Whether the backplane is connected to Redis and subscribed now.
    pub backplane_connected: bool,
    /// TLS handshakes that failed or timed out (`Config::tls`): clients speaking plain
    /// HTTP or garbage to the TLS port, handshakes cut short or too slow, clients that
    /// do not trust the certificate.
    pub tls_handshakes_failed: u64,
}
