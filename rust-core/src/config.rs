//! Every limit and tunable of a server, in one place, with its default and trade-off.

use std::time::Duration;

use crate::tls::TlsIdentity;

/// The server's policy for a recipient of a broadcast or publish that does not keep up:
/// one whose send queue is over `outbound_queue_bytes` (a direct send to it gets
/// `WouldBlock` instead). Either way the other recipients get every message, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowConsumer {
    /// Close it with 1008 (policy violation), dropping what is queued for it: a client
    /// that misses nothing or is gone. Counted as `Stats::slow_consumers_closed`.
    Close,
    /// Leave it connected, and let it miss each message that finds it over the limit
    /// (counted as `Stats::deliveries_skipped`) until its queue drains below the limit:
    /// for feeds where the latest value matters more than every value.
    Skip,
}

/// Whether the server speaks permessage-deflate (RFC 7692) with clients that offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression: offers are declined, every frame goes out as it is.
    Off,
    /// Accept the first valid permessage-deflate offer, with no context takeover on
    /// either side: each compressed message stands alone, so a broadcast or publish is
    /// compressed once and that one frame is shared by every recipient that negotiated
    /// compression (the others share the plain frame), and a connection keeps no
    /// compression state between messages. Clients' compressed messages are inflated
    /// within `max_message_size`. Messages smaller than `compression_min_size` go out
    /// uncompressed.
    Deflate,
    /// Accept permessage-deflate with server context takeover: each connection keeps
    /// its own compressor from message to message, so a message may refer to the ones
    /// before it and small, similar messages (chat lines, ticks of the same JSON shape)
    /// shrink far more. The price: every recipient's copy of a broadcast or publish is
    /// compressed separately, by the connection's task, and a connection that has sent
    /// a compressed message holds its compressor (about 310 KiB with the full window)
    /// until it ends. A client that asks for `server_no_context_takeover` gets the
    /// shared frames of `Deflate`. Clients still compress without context takeover.
    DeflatePerConnection,
}

/// Limits and options of one server. `Config::default()` is sized for many mostly idle
/// connections: small buffers, bounded queues, and a keepalive that finds dead peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest message accepted from a client, in bytes after reassembly of its
    /// fragments; a message of exactly this size is accepted. A larger one closes the
    /// connection with 1009. Default 1 MiB.
    pub max_message_size: usize,
    /// Largest single frame accepted from a client (inclusive, like the message limit);
    /// a larger one closes the connection with 1009. `None`, the default, follows
    /// `max_message_size`: a message that fits arrives however the client frames it.
    /// Set it lower only to bound the memory one frame may claim before it is complete.
    pub max_frame_size: Option<usize>,
    /// Messages received on one connection that the consumer has not polled yet. When
    /// this many wait, the core stops reading that socket and TCP pushes back on the
    /// client. Default 16. Memory bound per connection: this times `max_message_size`.
    pub inbound_queue_depth: usize,
    /// Bytes queued for sending to one connection above which `send` reports
    /// `WouldBlock` (and a writable event follows when the queue has drained to half)
    /// and a broadcast closes that recipient with 1008. Default 1 MiB.
    pub outbound_queue_bytes: usize,
    /// Most bytes read from a socket per system call. The buffer holding them exists
    /// only while some are unparsed: idle connections keep none of it. Default 4 KiB.
    pub read_buffer_size: usize,
    /// Bytes of queued frames taken for one batch of socket writes (a `writev` takes up
    /// to 64 frames); a batch is always written when the send queue runs empty.
    /// Default 16 KiB.
    pub write_buffer_size: usize,
    /// Interval between keepalive pings; `None` disables the keepalive. Default 20 s.
    pub ping_interval: Option<Duration>,
    /// Time a ping may go unanswered before the connection is closed with 1011.
    /// Default 20 s.
    pub ping_timeout: Duration,
    /// Time a client has to send its first request (the upgrade request, or an HTTP
    /// request and its body) from the moment its socket is accepted; past it a socket
    /// whose request head is not complete is closed without an answer, and one whose
    /// body is late gets 408. Each later request on a kept-alive HTTP connection has
    /// as long from its first byte to its last, else 408. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time a closing connection waits for the client's close frame before the socket
    /// is dropped. Default 5 s.
    pub close_timeout: Duration,
    /// Upgraded connections above which new clients get HTTP 503 (at the end of their
    /// handshake). Default 100,000.
    pub max_connections: usize,
    /// Sockets not upgraded yet above which a newly accepted socket gets HTTP 503 at
    /// once: sockets whose first request is still being read, and HTTP connections,
    /// each of which holds its place while it is open (kept alive between requests
    /// for at most `http_idle_timeout`). Separate from `max_connections`, so that
    /// silent sockets cannot take the places of real clients; each costs a task and a
    /// buffer of up to 16 KiB (and a request body while one is read, up to
    /// `max_http_body_size`). Default 10,000.
    pub max_pending_handshakes: usize,
    /// Whether a connection receives broadcasts to its route from the moment it is
    /// upgraded. A consumer that first greets or vets a client (and must not let a
    /// broadcast overtake that) sets it to false and calls `Server::join_broadcast`
    /// when ready. Default true.
    pub join_broadcast_on_connect: bool,
    /// What a broadcast or publish does with a recipient whose send queue is over
    /// `outbound_queue_bytes`. Default `Close`.
    pub slow_consumer: SlowConsumer,
    /// Threads of the core's tokio runtime. Default 1: the consumer's event loop runs on
    /// another core, and one thread drives tens of thousands of connections.
    pub worker_threads: usize,
    /// The Redis server whose pub/sub carries broadcasts and publishes to the servers of
    /// other processes and hosts, as a `redis://[user:password@]host[:port][/db]` URL
    /// (the database number does not scope pub/sub: see docs/design.md, "The
    /// backplane"). `None`, the default, keeps every message on this server.
    pub backplane: Option<String>,
    /// Messages waiting to be published to the backplane's Redis. A broadcast or
    /// publish that finds this many waiting is delivered locally only, and counted as
    /// `Stats::backplane_dropped`. Default 10,000.
    pub backplane_queue: usize,
    /// Whether the listening socket is bound with `SO_REUSEPORT` (Linux), so that
    /// several processes, each with its own server, can listen on the same host and
    /// port; the kernel spreads new connections over them. Every socket of such a group
    /// must set it (and belong to the same user); without it a second bind of a port in
    /// use fails with `Error::Io`. Each process keeps its own connections: a broadcast
    /// or publish reaches the clients of other servers only through the `backplane`.
    /// Default false.
    pub reuse_port: bool,
    /// permessage-deflate with the clients that offer it (every browser does). Default
    /// `Off`: compressing costs the server CPU for every message it sends at or above
    /// `compression_min_size` (once per broadcast, not per recipient) and inflating a
    /// client's messages costs CPU too, in return for fewer bytes on the wire; worth it
    /// for text (JSON shrinks to a third or less) on links slower than the server's CPU,
    /// not for small or already compressed messages. See docs/design.md,
    /// "permessage-deflate", for the measured costs.
    pub compression: Compression,
    /// Smallest message, in bytes, that is sent compressed to a client that negotiated
    /// compression; smaller ones go out uncompressed (RSV1 clear), as RFC 7692 allows.
    /// Default 256: each compressed message stands alone, and below a few hundred bytes
    /// deflate saves too little to pay for its CPU (a 200-byte JSON message shrinks by
    /// a third, a 100-byte one by a seventh). A message that compression would not make
    /// smaller is always sent uncompressed.
    pub compression_min_size: usize,
    /// The certificate chain and private key that make the server speak TLS (wss://)
    /// on every connection: the TLS handshake comes before the upgrade request, and
    /// `handshake_timeout` covers both. Over TLS, sends never write the socket from
    /// the sender's thread: every frame goes through the connection's task, which
    /// encrypts it. `None`, the default, serves plain WebSocket (ws://).
    pub tls: Option<TlsIdentity>,
    /// Runs the core on the consumer's thread: no thread of its own, every socket read
    /// and written inside `Server::poll`, and `Server::ready_fd` readable whenever
    /// `poll` has work. For a process that has one core to itself: no hand-off between
    /// threads per message and no second thread competing for the core. The price:
    /// while the consumer does not poll (a handler that blocks its event loop), no
    /// socket is served at all, not even keepalive pings; timers fire up to 10 ms
    /// late. Does not combine with `backplane` or with more than one worker thread.
    /// Default false. See docs/design.md, "I/O on the consumer's thread".
    pub inline_io: bool,
    /// Largest HTTP request body accepted, in bytes after chunked decoding; a body of
    /// exactly this size is accepted. A larger declared or sent body gets 413 and the
    /// connection is closed. The whole body is held in memory until the consumer has
    /// polled its request, so this bounds what one request may claim. Default 1 MiB.
    pub max_http_body_size: usize,
    /// Time a kept-alive HTTP connection may wait for the first byte of its next
    /// request before it is closed, silently. Each such connection holds a place under
    /// `max_pending_handshakes` while it is open. Default 5 s.
    pub http_idle_timeout: Duration,
    /// Time the consumer has to answer an HTTP request (`Server::respond`) or vet an
    /// upgrade (`Server::accept_upgrade`); past it the client gets 503 and a late
    /// answer `Error::NotFound`. Writing one response to a client (a static file
    /// included) is bounded by it too, so that a client that does not read cannot hold
    /// its connection for ever. Default 30 s.
    pub http_response_timeout: Duration,
    /// The path of a health check answered by the core: GET or HEAD gives 200 `ok`,
    /// and 503 `stopping` once the server is stopping, so that a load balancer drains
    /// it. `None`, the default, serves no health check.
    pub health_path: Option<String>,
    /// The path where the core serves the server's counters (`Stats`) as Prometheus
    /// text (exposition format 0.0.4). `None`, the default, serves no metrics.
    pub metrics_path: Option<String>,
    /// The origins whose pages may open WebSockets, each `scheme://host[:port]` as a
    /// browser sends it in `Origin` (no path; the port only when it is not the
    /// scheme's default). An upgrade request whose `Origin` is not one of them (exact,
    /// ASCII case-insensitive) gets 403 before any other check of the upgrade; one
    /// without `Origin` (not from a browser page) is not held to the list. Browsers
    /// send `Origin` with every WebSocket request and do not apply the same-origin
    /// policy to WebSockets, so this is what stops another site's page from using its
    /// visitors' cookies on this server. An upgrade for a path no route serves gets 404
    /// whatever its origin. Empty, the default: any origin.
    pub allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 1 << 20,
            max_frame_size: None,
            inbound_queue_depth: 16,
            outbound_queue_bytes: 1 << 20,
            read_buffer_size: 4 << 10,
            write_buffer_size: 16 << 10,
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_connections: 100_000,
            max_pending_handshakes: 10_000,
            join_broadcast_on_connect: true,
            slow_consumer: SlowConsumer::Close,
            worker_threads: 1,
            backplane: None,
            backplane_queue: 10_000,
            reuse_port: false,
            compression: Compression::Off,
            compression_min_size: 256,
            tls: None,
            inline_io: false,
            max_http_body_size: 1 << 20,
            http_idle_timeout: Duration::from_secs(5),
            http_response_timeout: Duration::from_secs(30),
            health_path: None,
            metrics_path: None,
            allowed_origins: Vec::new(),
        }
    }
}

impl Config {
    /// Checks that the values make sense together, naming the first one that does not.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_message_size", self.max_message_size),
            ("max_frame_size", self.frame_limit()),
            ("inbound_queue_depth", self.inbound_queue_depth),
            ("outbound_queue_bytes", self.outbound_queue_bytes),
            ("read_buffer_size", self.read_buffer_size),
            ("max_connections", self.max_connections),
            ("max_pending_handshakes", self.max_pending_handshakes),
            ("worker_threads", self.worker_threads),
            ("backplane_queue", self.backplane_queue),
            ("max_http_body_size", self.max_http_body_size),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        if self.read_buffer_size > 16 << 20 {
            // Allocated for every connection at upgrade: a typo must not cost gigabytes.
            return Err("read_buffer_size must be at most 16 MiB".into());
        }
        if self.worker_threads > 256 {
            return Err("worker_threads must be at most 256".into());
        }
        if self.handshake_timeout.is_zero() {
            return Err("handshake_timeout must be greater than zero".into());
        }
        if self.http_idle_timeout.is_zero() {
            return Err("http_idle_timeout must be greater than zero".into());
        }
        if self.http_response_timeout.is_zero() {
            return Err("http_response_timeout must be greater than zero".into());
        }
        for (name, path) in [("health_path", &self.health_path), ("metrics_path", &self.metrics_path)] {
            if let Some(path) = path {
                check_route_path(path).map_err(|why| format!("{name} {why}"))?;
            }
        }
        if self.health_path.is_some() && self.health_path == self.metrics_path {
            return Err("health_path and metrics_path must differ".into());
        }
        if self.ping_interval.is_some() && self.ping_timeout.is_zero() {
            return Err("ping_timeout must be greater than zero when pings are on".into());
        }
        if self.backplane_queue > u32::MAX as usize {
            return Err(format!("backplane_queue must be at most {}", u32::MAX));
        }
        if self.inline_io && self.backplane.is_some() {
            return Err("inline_io does not combine with a backplane".into());
        }
        if self.inline_io && self.worker_threads > 1 {
            return Err("inline_io runs the core on the consumer's thread: worker_threads must be 1".into());
        }
        if let Some(url) = &self.backplane {
            crate::backplane::check_url(url).map(drop)?;
        }
        for origin in &self.allowed_origins {
            crate::upgrade_rules::check_origin(origin)?;
        }
        Ok(())
    }

    /// The smallest message sent compressed, `None` when compression is off.
    pub(crate) fn compress_from(&self) -> Option<usize> {
        (self.compression != Compression::Off).then_some(self.compression_min_size)
    }

    /// The frame limit in force: `max_frame_size`, or the message limit when unset.
    pub fn frame_limit(&self) -> usize {
        self.max_frame_size.unwrap_or(self.max_message_size)
    }
}

/// Checks a path that requests are routed by: it starts with '/', and has no query
/// string or white space (a request target could never match it).
pub(crate) fn check_route_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.contains('?') || path.contains(char::is_whitespace) {
        return Err(format!("must start with '/' and contain no '?' or spaces: {path:?}"));
    }
    Ok(())
}
