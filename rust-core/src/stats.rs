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
}
