//! The counters a server keeps about itself, read all at once by `Server::stats`.
//! Each field is also served as Prometheus text by the metrics path (`metrics.rs`),
//! which lists every field by name: a field added here must be added there too.

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
    /// Whole messages received from clients (fragments joined) and put in the event
    /// queue.
    pub messages_received: u64,
    /// Payload bytes of `messages_received`, as the consumer gets them (after
    /// permessage-deflate's inflation; no frame headers).
    pub bytes_received: u64,
    /// Messages queued for a connection, counted per recipient: a broadcast or publish
    /// (this server's, or another's through the backplane) that 1,000 connections take
    /// counts 1,000, one that skips or closes a slow recipient does not count it. Queued is not delivered: a message still counts
    /// when its connection ends before it is written.
    pub messages_sent: u64,
    /// Payload bytes of `messages_sent` (as given to send, broadcast or publish, before
    /// compression and framing), per recipient like the messages.
    pub bytes_sent: u64,
    /// HTTP requests answered by the HTTP side: the consumer's routes, static files,
    /// the health and metrics paths, and the core's own answers (404, 405, 408, 413,
    /// 503 for a request the consumer did not answer in time...). Upgrades are not
    /// counted here.
    pub http_requests: u64,
    /// Upgrade requests answered 400: malformed, a bad key, no subprotocol the route
    /// requires, a TLS handshake on a plain port. "Upgrade requests" are those with
    /// `Upgrade: websocket`, and those refused before the core could tell (not
    /// parsed, or not read because the server was over `max_pending_handshakes`).
    pub upgrades_refused_400: u64,
    /// Upgrade requests answered 403: an `Origin` outside `Config::allowed_origins`.
    pub upgrades_refused_403: u64,
    /// Upgrade requests answered 404: a path no route serves.
    pub upgrades_refused_404: u64,
    /// Upgrade requests answered 426: incomplete (no `Connection: upgrade`, not GET,
    /// not HTTP/1.1) or of another WebSocket version than 13.
    pub upgrades_refused_426: u64,
    /// Upgrade requests answered 431: a head over 16 KiB or 64 headers.
    pub upgrades_refused_431: u64,
    /// Upgrade requests answered 503: over `max_connections` or
    /// `max_pending_handshakes`, or the server stopping.
    pub upgrades_refused_503: u64,
    /// Upgrade requests answered with any other status than 101 and those above.
    pub upgrades_refused_other: u64,
}
