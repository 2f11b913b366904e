//! The plain C types of the ABI: statuses, options, events, statistics.
#![allow(non_camel_case_types)]

use std::ffi::c_void;
use std::time::Duration;

use super::boundary::Extensible;
use crate::config::{Compression, Config, SlowConsumer};
use crate::error::Error;

/// A server handle. Opaque: created by `roost_server_new`, released by
/// `roost_server_free`. Handles are never reused, so a freed handle is recognised and
/// gives `ROOST_INVALID_ARGUMENT` instead of undefined behaviour.
pub struct roost_server {
    _opaque: [u8; 0],
}

/// The result of every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum roost_status {
    /// Success; out-parameters were written.
    ROOST_OK = 0,
    /// The connection's send queue is full: nothing was queued. Retry after a
    /// `ROOST_EVENT_WRITABLE` event for that connection.
    ROOST_WOULD_BLOCK = 1,
    /// The connection is closing or closed, or the server has stopped. The normal end
    /// of a connection, not a misuse.
    ROOST_CLOSED = 2,
    /// No such connection or route: the id is unknown or was retired after its
    /// disconnect event.
    ROOST_NOT_FOUND = 3,
    /// An argument was invalid: NULL, unknown or freed server handle, bad length,
    /// text that is not UTF-8, a close code a server may not send.
    ROOST_INVALID_ARGUMENT = 4,
    /// Not allowed now: start twice, add a route after start, start without a route.
    ROOST_INVALID_STATE = 5,
    /// The operating system refused (the address is in use, out of descriptors).
    ROOST_IO = 6,
    /// A panic inside the core was caught at the boundary.
    ROOST_PANIC = 7,
}

impl roost_status {
    pub(crate) fn of(err: &Error) -> roost_status {
        match err {
            Error::WouldBlock => roost_status::ROOST_WOULD_BLOCK,
            Error::Closed => roost_status::ROOST_CLOSED,
            Error::NotFound => roost_status::ROOST_NOT_FOUND,
            Error::InvalidArgument(_) => roost_status::ROOST_INVALID_ARGUMENT,
            Error::InvalidState(_) => roost_status::ROOST_INVALID_STATE,
            Error::Io(_) => roost_status::ROOST_IO,
            Error::Panic(_) => roost_status::ROOST_PANIC,
        }
    }
}

/// The library's version, as the header it was compiled with gives it: major.
pub const ROOST_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const ROOST_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const ROOST_VERSION_PATCH: u32 = 0;
/// The version as one number, `major << 16 | minor << 8 | patch`; compare it with
/// `roost_version_number()` to tell the header from the library a program runs with.
pub const ROOST_VERSION_NUMBER: u32 = 0x00_01_00;

/// The longest close reason a server may send, in bytes of UTF-8 (a close frame's
/// payload is at most 125 bytes, two of them the code).
pub const ROOST_MAX_CLOSE_REASON: u32 = 123;

/// Limits and options of a server. Fill it with `roost_options_init` (which sets
/// `size`), change what you need, pass it to `roost_server_new`. Sizes are bytes,
/// times milliseconds.
///
/// The struct grows at its end in later versions, and `size` says which version a
/// program was compiled with: a library accepts any size from the first version's
/// (0.1.0, 80 bytes) on. The fields a smaller struct (an older header's) lacks get
/// their defaults: 0 means the default in every field added since. A larger struct
/// (from a newer header) is accepted when the fields this library does not know are
/// zero, and refused with `ROOST_INVALID_ARGUMENT` otherwise.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct roost_options {
    /// `sizeof(roost_options)` as the program was compiled; set by `roost_options_init`.
    pub size: u32,
    /// Largest message accepted, in bytes, inclusive; larger closes with 1009.
    /// Default 1048576 (1 MiB).
    pub max_message_size: u64,
    /// Largest frame accepted, inclusive; larger closes with 1009. Default 0:
    /// follows `max_message_size`.
    pub max_frame_size: u64,
    /// Unpolled messages per connection before the core stops reading its socket.
    /// Default 16.
    pub inbound_queue_depth: u32,
    /// Most bytes read from a socket per system call, held only while unread (idle
    /// connections keep none). Default 4096.
    pub read_buffer_size: u32,
    /// Queued outgoing bytes per connection above which sends give
    /// `ROOST_WOULD_BLOCK` and broadcasts and publishes treat the recipient as slow
    /// (`slow_consumer`).
    /// Default 1048576 (1 MiB).
    pub outbound_queue_bytes: u64,
    /// Bytes of queued frames taken for one batch of socket writes. Default 16384.
    pub write_buffer_size: u32,
    /// Keepalive ping interval; 0 disables pings. Default 20000.
    pub ping_interval_ms: u32,
    /// Time a ping may go unanswered before closing with 1011. Default 20000.
    pub ping_timeout_ms: u32,
    /// Time a client has to send its first request (upgrade or HTTP) after it
    /// connects (a head not complete by then: closed without an answer; a body: 408),
    /// and each later HTTP request from its first byte to its last (else 408).
    /// Default 10000.
    pub handshake_timeout_ms: u32,
    /// Time a closing connection waits for the peer's close frame. Default 5000.
    pub close_timeout_ms: u32,
    /// Upgraded connections above which new clients get HTTP 503. Default 100000.
    pub max_connections: u32,
    /// Sockets not upgraded yet (first request being read, or an HTTP connection,
    /// which holds its place while it is open) above which a new socket gets HTTP 503
    /// at once. Default 10000.
    pub max_pending_handshakes: u32,
    /// Threads of the core's runtime. Default 1.
    pub worker_threads: u32,
    /// Whether connections receive their route's broadcasts as soon as they are
    /// upgraded. When false, a connection joins with `roost_connection_join_broadcast`
    /// (for a consumer that greets or vets clients first). Default true.
    pub join_broadcast_on_connect: bool,
    /// What broadcasts and publishes do with a recipient whose send queue is over
    /// `outbound_queue_bytes`: `ROOST_SLOW_CONSUMER_CLOSE` (0, the default) closes it
    /// with 1008; `ROOST_SLOW_CONSUMER_SKIP` lets it miss each message that finds it
    /// over the limit. Either is counted in `roost_stats`.
    pub slow_consumer: u32,
    /// The Redis server whose pub/sub carries broadcasts and publishes to the servers
    /// of other processes and hosts: a `redis://[user:password@]host[:port][/db]` URL
    /// of `backplane_url_len` bytes (not NUL-terminated), copied by `roost_server_new`.
    /// NULL or length 0, the default, keeps every message on this server. A URL that
    /// is not one gives `ROOST_INVALID_ARGUMENT` from `roost_server_new`, saying why.
    /// The server connects when it starts and reconnects by itself: an unreachable
    /// Redis never fails a call.
    pub backplane_url: *const u8,
    /// Length of `backplane_url` in bytes.
    pub backplane_url_len: usize,
    /// Messages waiting to be published to the backplane's Redis, above which a
    /// broadcast or publish is delivered on this server only and counted in
    /// `roost_stats.backplane_dropped`. Default 10000; 0 means the default.
    pub backplane_queue: u32,
    /// Whether the listening socket gets `SO_REUSEPORT` before it is bound (Linux), so
    /// that several processes, each with its own server, listen on the same host and
    /// port and the kernel spreads new connections over them. Every server sharing
    /// the port must set it (and run as the same user); without it, starting on a port
    /// in use gives `ROOST_IO`. Each process keeps its own connections: broadcasts and
    /// publishes reach the clients of other servers only through the backplane.
    /// Default false.
    pub reuse_port: bool,
    /// The server's TLS certificate chain as PEM (one or more `CERTIFICATE` sections,
    /// the server's own first), `tls_certificate_chain_len` bytes, copied by
    /// `roost_server_new`. With `tls_private_key`, the server speaks TLS (wss://) on
    /// every connection: the TLS handshake comes before the upgrade request, and
    /// `handshake_timeout_ms` covers both. Both lengths 0, the default: plain ws://.
    /// One without the other, or a certificate or key that cannot be used, gives
    /// `ROOST_INVALID_ARGUMENT` from `roost_server_new`, saying which and why. Over
    /// TLS, sends never write the socket from the caller's thread: every frame goes
    /// through the connection's own task, which encrypts it.
    pub tls_certificate_chain: *const u8,
    /// Length of `tls_certificate_chain` in bytes.
    pub tls_certificate_chain_len: usize,
    /// The private key of the chain's first certificate as PEM (a `PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY` section, not encrypted),
    /// `tls_private_key_len` bytes, copied by `roost_server_new`.
    pub tls_private_key: *const u8,
    /// Length of `tls_private_key` in bytes.
    pub tls_private_key_len: usize,
    /// permessage-deflate (RFC 7692) with the clients that offer it:
    /// `ROOST_COMPRESSION_OFF` (0, the default) declines every offer;
    /// `ROOST_COMPRESSION_DEFLATE` accepts the first valid one, without context
    /// takeover, so that a broadcast or publish is compressed once for all the
    /// recipients that negotiated it and a connection keeps no compression state
    /// between messages. `ROOST_COMPRESSION_DEFLATE_PER_CONNECTION` keeps a
    /// compressor per connection (server context takeover): better ratios for small,
    /// similar messages, each recipient's copy compressed separately, and about
    /// 310 KiB per connection once it has sent a compressed message. Compressing costs
    /// CPU for every message sent at or above `compression_min_size`, and inflating
    /// clients' messages costs CPU too; `max_message_size` applies to the inflated
    /// size.
    pub compression: u32,
    /// Smallest message, in bytes, sent compressed to a client that negotiated
    /// compression; smaller ones go out uncompressed. Default 256; 0 means the default.
    pub compression_min_size: u64,
    /// Runs the core on the thread that calls `roost_server_poll`, with no thread of
    /// its own: each poll first reads and writes the sockets that are ready and fires
    /// due timers, and `roost_server_ready_fd` is readable whenever a poll has work.
    /// For a process with one core to itself (no hand-off between threads per
    /// message). While the program does not poll, no socket is served, not even
    /// keepalive pings; timers fire up to 10 ms late. Other calls may come from any
    /// thread, as always. Not with a
    /// backplane or more than one worker thread (`ROOST_INVALID_ARGUMENT`).
    /// Default false.
    pub inline_io: bool,
    /// Largest HTTP request body accepted, in bytes after chunked decoding, inclusive;
    /// a larger one gets 413 and the connection is closed. Default 1048576 (1 MiB); 0
    /// means the default.
    pub max_http_body_size: u64,
    /// Time a kept-alive HTTP connection may wait for its next request before it is
    /// closed. Default 5000; 0 means the default.
    pub http_idle_timeout_ms: u32,
    /// Time the program has to answer a `ROOST_EVENT_REQUEST` (`roost_request_respond`)
    /// or a `ROOST_EVENT_UPGRADE_REQUEST` (`roost_upgrade_accept`); past it the client
    /// gets 503. Writing one response (a static file included) is bounded by it too.
    /// Default 30000; 0 means the default.
    pub http_response_timeout_ms: u32,
    /// The path of a health check answered by the library (`health_path_len` bytes,
    /// starting with '/', copied by `roost_server_new`): GET or HEAD gives 200 `ok`,
    /// and 503 `stopping` once the server is stopping. NULL, the default: none.
    pub health_path: *const u8,
    /// Length of `health_path` in bytes.
    pub health_path_len: usize,
    /// The path where the library serves the server's counters as Prometheus text
    /// (`metrics_path_len` bytes, starting with '/', copied by `roost_server_new`).
    /// NULL, the default: none.
    pub metrics_path: *const u8,
    /// Length of `metrics_path` in bytes.
    pub metrics_path_len: usize,
    /// The origins whose pages may open WebSockets, comma separated (spaces around
    /// entries are ignored), `allowed_origins_len` bytes, copied by `roost_server_new`;
    /// each `scheme://host[:port]` as browsers send it in `Origin` (no path; the port
    /// only when it is not the scheme's default), e.g.
    /// `"https://example.com, http://localhost:8080"`. An upgrade request whose
    /// `Origin` is not one of them (ASCII case-insensitive) gets 403 `Forbidden origin`
    /// before the upgrade's other checks; a request without `Origin` (not from a
    /// browser page) is not held to the list; an upgrade for a path no route serves
    /// gets 404 whatever its origin. NULL or length 0, the default: any origin. An
    /// entry that is not an origin gives `ROOST_INVALID_ARGUMENT` from
    /// `roost_server_new`, saying which.
    pub allowed_origins: *const u8,
    /// Length of `allowed_origins` in bytes.
    pub allowed_origins_len: usize,
}

impl Extensible for roost_options {
    /// Through `slow_consumer`, in version 0.1.0.
    const FIRST_SIZE: usize = 80;
    const NAME: &'static str = "roost_options";
}
const _: () = assert!(roost_options::FIRST_SIZE == std::mem::offset_of!(roost_options, backplane_url));

/// `roost_options.compression`: no compression (the default).
pub const ROOST_COMPRESSION_OFF: u32 = 0;
/// `roost_options.compression`: permessage-deflate without context takeover.
pub const ROOST_COMPRESSION_DEFLATE: u32 = 1;
/// `roost_options.compression`: permessage-deflate, the server keeping a compression
/// context per connection.
pub const ROOST_COMPRESSION_DEFLATE_PER_CONNECTION: u32 = 2;

/// `roost_options.slow_consumer`: close a slow recipient with 1008 (the default).
pub const ROOST_SLOW_CONSUMER_CLOSE: u32 = 0;
/// `roost_options.slow_consumer`: a slow recipient misses messages while over its limit.
pub const ROOST_SLOW_CONSUMER_SKIP: u32 = 1;

/// The longest topic name, in bytes (topics are exact-match byte strings of 1 to this
/// many bytes).
pub const ROOST_MAX_TOPIC_LENGTH: u32 = 1024;
const _: () = assert!(ROOST_MAX_TOPIC_LENGTH as usize == crate::topics::MAX_TOPIC_LENGTH);

/// "No connection": the `exclude` argument of `roost_server_publish_text` that
/// excludes no one. Connection ids start at 1.
pub const ROOST_NO_CONNECTION: u64 = 0;

/// A server's counters, filled by `roost_server_stats`. Counts are totals since the
/// server was created. Like `roost_options` it grows at its end in later versions:
/// `size` says how many bytes the program's struct has (at least the first version's,
/// 40), and a library fills as many of its fields as both know.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct roost_stats {
    /// `sizeof(roost_stats)` as the program was compiled; set by `roost_server_stats`.
    pub size: u32,
    /// Connections upgraded and not yet disconnected.
    pub connections: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Messages of broadcasts and publishes that a recipient over its send limit
    /// missed (`ROOST_SLOW_CONSUMER_SKIP`).
    pub deliveries_skipped: u64,
    /// Recipients of broadcasts and publishes closed with 1008 for being over their
    /// send limit (`ROOST_SLOW_CONSUMER_CLOSE`).
    pub slow_consumers_closed: u64,
    /// Broadcasts and publishes Redis took from this server for the other servers
    /// (option `backplane_url`; every backplane count stays 0 without one).
    pub backplane_published: u64,
    /// Broadcasts and publishes of other servers that arrived through Redis.
    pub backplane_received: u64,
    /// Broadcasts and publishes that did not go to Redis: the queue was full
    /// (`backplane_queue`), the backplane was out, or the connection failed while they
    /// were on their way (those may have reached Redis).
    pub backplane_dropped: u64,
    /// Messages on the backplane's channels that were not envelopes this library can
    /// read (another format version, damaged), dropped.
    pub backplane_malformed: u64,
    /// Times the backplane reconnected after losing Redis.
    pub backplane_reconnects: u64,
    /// Whether the backplane is connected to Redis and subscribed now.
    pub backplane_connected: bool,
    /// TLS handshakes that failed or timed out: clients speaking plain HTTP or garbage
    /// to a TLS server, handshakes cut short or too slow, clients that refused the
    /// certificate. 0 on a server without TLS.
    pub tls_handshakes_failed: u64,
    /// Whole messages received from clients (fragments joined) and handed to the
    /// event queue.
    pub messages_received: u64,
    /// Payload bytes of `messages_received` as polled (after permessage-deflate's
    /// inflation; no frame headers).
    pub bytes_received: u64,
    /// Messages queued for a connection, counted per recipient: a broadcast or publish
    /// (this server's, or another's through the backplane) that 1,000 connections take
    /// counts 1,000; a recipient skipped or closed as slow does not count. Queued, not delivered: a message still counts when its
    /// connection ends before it is written.
    pub messages_sent: u64,
    /// Payload bytes of `messages_sent` (as passed to send, broadcast or publish,
    /// before compression and framing), per recipient like the messages.
    pub bytes_sent: u64,
    /// HTTP requests answered by the HTTP side: routes, static files, the health and
    /// metrics paths, and the library's own answers (404, 405, 408, 413, 503...).
    /// Upgrades are not counted here.
    pub http_requests: u64,
    /// Upgrade requests answered 400 (malformed, bad key, no subprotocol the route
    /// requires, TLS on a plain port). The `upgrades_refused_*` counts are of requests
    /// with `Upgrade: websocket`, and of those refused before the library could tell
    /// (not parsed, or not read because the server was over `max_pending_handshakes`).
    pub upgrades_refused_400: u64,
    /// Upgrade requests answered 403: an `Origin` outside `allowed_origins`.
    pub upgrades_refused_403: u64,
    /// Upgrade requests answered 404: a path no route serves.
    pub upgrades_refused_404: u64,
    /// Upgrade requests answered 426: incomplete, or a WebSocket version other than 13.
    pub upgrades_refused_426: u64,
    /// Upgrade requests answered 431: a head over 16 KiB or 64 headers.
    pub upgrades_refused_431: u64,
    /// Upgrade requests answered 503: over `max_connections` or
    /// `max_pending_handshakes`, or the server stopping.
    pub upgrades_refused_503: u64,
    /// Upgrade requests answered with any other status but 101.
    pub upgrades_refused_other: u64,
}

impl Extensible for roost_stats {
    /// Through `slow_consumers_closed`, in version 0.1.0.
    const FIRST_SIZE: usize = 40;
    const NAME: &'static str = "roost_stats";
}
const _: () = assert!(roost_stats::FIRST_SIZE == std::mem::offset_of!(roost_stats, backplane_published));

impl From<&crate::stats::Stats> for roost_stats {
    fn from(s: &crate::stats::Stats) -> Self {
        roost_stats {
            size: std::mem::size_of::<roost_stats>() as u32,
            connections: s.connections as u64,
            topics: s.topics as u64,
            deliveries_skipped: s.deliveries_skipped,
            slow_consumers_closed: s.slow_consumers_closed,
            backplane_published: s.backplane_published,
            backplane_received: s.backplane_received,
            backplane_dropped: s.backplane_dropped,
            backplane_malformed: s.backplane_malformed,
            backplane_reconnects: s.backplane_reconnects,
            backplane_connected: s.backplane_connected,
            tls_handshakes_failed: s.tls_handshakes_failed,
            messages_received: s.messages_received,
            bytes_received: s.bytes_received,
            messages_sent: s.messages_sent,
            bytes_sent: s.bytes_sent,
            http_requests: s.http_requests,
            upgrades_refused_400: s.upgrades_refused_400,
            upgrades_refused_403: s.upgrades_refused_403,
            upgrades_refused_404: s.upgrades_refused_404,
            upgrades_refused_426: s.upgrades_refused_426,
            upgrades_refused_431: s.upgrades_refused_431,
            upgrades_refused_503: s.upgrades_refused_503,
            upgrades_refused_other: s.upgrades_refused_other,
        }
    }
}

/// Called by `roost_connection_topics` once per topic, with the `context` given to it.
/// `topic` is valid only during the call.
pub type roost_topic_visitor =
    Option<unsafe extern "C" fn(context: *mut c_void, topic: *const u8, topic_len: usize)>;

impl From<&Config> for roost_options {
    fn from(c: &Config) -> Self {
        let ms = |d: Duration| d.as_millis().min(u32::MAX as u128) as u32;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        roost_options {
            size: std::mem::size_of::<roost_options>() as u32,
            max_message_size: c.max_message_size as u64,
            max_frame_size: c.max_frame_size.map_or(0, |n| n as u64),
            inbound_queue_depth: count(c.inbound_queue_depth),
            read_buffer_size: count(c.read_buffer_size),
            outbound_queue_bytes: c.outbound_queue_bytes as u64,
            write_buffer_size: count(c.write_buffer_size),
            ping_interval_ms: c.ping_interval.map_or(0, ms),
            ping_timeout_ms: ms(c.ping_timeout),
            handshake_timeout_ms: ms(c.handshake_timeout),
            close_timeout_ms: ms(c.close_timeout),
            max_connections: count(c.max_connections),
            max_pending_handshakes: count(c.max_pending_handshakes),
            worker_threads: count(c.worker_threads),
            join_broadcast_on_connect: c.join_broadcast_on_connect,
            slow_consumer: match c.slow_consumer {
                SlowConsumer::Close => ROOST_SLOW_CONSUMER_CLOSE,
                SlowConsumer::Skip => ROOST_SLOW_CONSUMER_SKIP,
            },
            // The URL is the program's own memory; `roost_options_init` gives none.
            backplane_url: std::ptr::null(),
            backplane_url_len: 0,
            backplane_queue: count(c.backplane_queue),
            reuse_port: c.reuse_port,
            // The PEM is the program's own memory; `roost_options_init` gives none.
            tls_certificate_chain: std::ptr::null(),
            tls_certificate_chain_len: 0,
            tls_private_key: std::ptr::null(),
            tls_private_key_len: 0,
            compression: match c.compression {
                Compression::Off => ROOST_COMPRESSION_OFF,
                Compression::Deflate => ROOST_COMPRESSION_DEFLATE,
                Compression::DeflatePerConnection => ROOST_COMPRESSION_DEFLATE_PER_CONNECTION,
            },
            compression_min_size: c.compression_min_size as u64,
            inline_io: c.inline_io,
            max_http_body_size: c.max_http_body_size as u64,
            http_idle_timeout_ms: ms(c.http_idle_timeout),
            http_response_timeout_ms: ms(c.http_response_timeout),
            // The paths are the program's own memory; `roost_options_init` gives none.
            health_path: std::ptr::null(),
            health_path_len: 0,
            metrics_path: std::ptr::null(),
            metrics_path_len: 0,
            // The list is the program's own memory; `roost_options_init` gives none.
            allowed_origins: std::ptr::null(),
            allowed_origins_len: 0,
        }
    }
}

impl TryFrom<&roost_options> for Config {
    type Error = Error;

    fn try_from(o: &roost_options) -> Result<Self, Error> {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let slow_consumer = match o.slow_consumer {
            ROOST_SLOW_CONSUMER_CLOSE => SlowConsumer::Close,
            ROOST_SLOW_CONSUMER_SKIP => SlowConsumer::Skip,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "slow_consumer {other} is not a ROOST_SLOW_CONSUMER_*"
                )))
            }
        };
        let compression = match o.compression {
            ROOST_COMPRESSION_OFF => Compression::Off,
            ROOST_COMPRESSION_DEFLATE => Compression::Deflate,
            ROOST_COMPRESSION_DEFLATE_PER_CONNECTION => Compression::DeflatePerConnection,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "compression {other} is not a ROOST_COMPRESSION_*"
                )))
            }
        };
        Ok(Config {
            max_message_size: size(o.max_message_size),
            max_frame_size: (o.max_frame_size > 0).then(|| size(o.max_frame_size)),
            inbound_queue_depth: o.inbound_queue_depth as usize,
            outbound_queue_bytes: size(o.outbound_queue_bytes),
            read_buffer_size: o.read_buffer_size as usize,
            write_buffer_size: o.write_buffer_size as usize,
            ping_interval: (o.ping_interval_ms > 0).then(|| ms(o.ping_interval_ms)),
            ping_timeout: ms(o.ping_timeout_ms),
            handshake_timeout: ms(o.handshake_timeout_ms),
            close_timeout: ms(o.close_timeout_ms),
            max_connections: o.max_connections as usize,
            max_pending_handshakes: o.max_pending_handshakes as usize,
            worker_threads: o.worker_threads as usize,
            join_broadcast_on_connect: o.join_broadcast_on_connect,
            slow_consumer,
            // Read from `backplane_url` by `roost_server_new`, which may dereference it.
            backplane: None,
            backplane_queue: match o.backplane_queue {
                0 => Config::default().backplane_queue,
                n => n as usize,
            },
            reuse_port: o.reuse_port,
            // Read from `tls_*` by `roost_server_new`, which may dereference them.
            tls: None,
            compression,
            compression_min_size: match o.compression_min_size {
                0 => Config::default().compression_min_size,
                n => size(n),
            },
            inline_io: o.inline_io,
            max_http_body_size: match o.max_http_body_size {
                0 => Config::default().max_http_body_size,
                n => size(n),
            },
            http_idle_timeout: match o.http_idle_timeout_ms {
                0 => Config::default().http_idle_timeout,
                n => ms(n),
            },
            http_response_timeout: match o.http_response_timeout_ms {
                0 => Config::default().http_response_timeout,
                n => ms(n),
            },
            // Read from `health_path` and `metrics_path` by `roost_server_new`, which
            // may dereference them.
            health_path: None,
            metrics_path: None,
            // Read from `allowed_origins` by `roost_server_new`, which may dereference it.
            allowed_origins: Vec::new(),
        })
    }
}

/// What a `roost_event` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum roost_event_kind {
    /// A client completed the upgrade: `connection`, `route`, `uuid`, `path`, `query`,
    /// `headers`, `peer` and `subprotocol` are set.
    ROOST_EVENT_CONNECT = 1,
    /// A whole text message (valid UTF-8) in `data`.
    ROOST_EVENT_TEXT = 2,
    /// A whole binary message in `data`.
    ROOST_EVENT_BINARY = 3,
    /// The connection ended: `close_code`, and the reason in `data`. Its id is retired.
    ROOST_EVENT_DISCONNECT = 4,
    /// A send that gave `ROOST_WOULD_BLOCK` may be retried on `connection`.
    ROOST_EVENT_WRITABLE = 5,
    /// An HTTP request for a route of `roost_server_add_http_route`: `connection` is
    /// the request id (from the sequence of connection ids, never reused), `route`,
    /// `method`, `path`, `query`, `headers` and `peer` are set, and the body is in
    /// `data`. Answer it with `roost_request_respond`; unanswered after
    /// `http_response_timeout_ms`, the client gets 503.
    ROOST_EVENT_REQUEST = 6,
    /// A WebSocket upgrade on a route of `roost_server_route_vet_upgrades`:
    /// `connection` is the id the connection gets if accepted; `route`, `method`,
    /// `path`, `query`, `headers`, `peer` and `subprotocol` are set. Answer with
    /// `roost_upgrade_accept` (a CONNECT with that id follows) or refuse it with
    /// `roost_request_respond`; unanswered after `http_response_timeout_ms`, the client
    /// gets 503.
    ROOST_EVENT_UPGRADE_REQUEST = 7,
}

/// One request header of a CONNECT, REQUEST or UPGRADE_REQUEST event.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct roost_header {
    /// Header name as sent (not NUL-terminated).
    pub name: *const u8,
    /// Length of `name`.
    pub name_len: usize,
    /// Header value as sent (not NUL-terminated).
    pub value: *const u8,
    /// Length of `value`.
    pub value_len: usize,
}

/// An event filled in by `roost_server_poll`. Every pointer in it stays valid until
/// the next `roost_server_poll` or `roost_server_free` on the same server; copy what
/// you keep. Pointers that an event kind does not use are NULL with length 0.
///
/// The struct grows at its end in later versions: `roost_server_poll` takes the size
/// the program was compiled with and fills that much of each event.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct roost_event {
    /// What happened.
    pub kind: roost_event_kind,
    /// Close code (DISCONNECT only; 1005 when the peer sent none, 1006 when the
    /// connection dropped without a close frame).
    pub close_code: u16,
    /// Route id of the connection (all kinds but WRITABLE).
    pub route: u32,
    /// Connection id, never reused.
    pub connection: u64,
    /// Message payload (TEXT, BINARY), close reason (DISCONNECT) or request body
    /// (REQUEST).
    pub data: *const u8,
    /// Length of `data`.
    pub data_len: usize,
    /// The connection's UUID4, 36 ASCII characters (CONNECT).
    pub uuid: *const u8,
    /// Length of `uuid`.
    pub uuid_len: usize,
    /// Request path without the query string (CONNECT, REQUEST, UPGRADE_REQUEST).
    pub path: *const u8,
    /// Length of `path`.
    pub path_len: usize,
    /// Raw query string after `?`, not decoded (CONNECT, REQUEST, UPGRADE_REQUEST).
    pub query: *const u8,
    /// Length of `query`.
    pub query_len: usize,
    /// Request headers in the order sent (CONNECT, REQUEST, UPGRADE_REQUEST). Every
    /// name and value points into one copy of the request head, which holds them in
    /// that order.
    pub headers: *const roost_header,
    /// Number of `headers`.
    pub header_count: usize,
    /// Peer address as `ip:port` (CONNECT, REQUEST, UPGRADE_REQUEST).
    pub peer: *const u8,
    /// Length of `peer`.
    pub peer_len: usize,
    /// Request method, e.g. `GET` (REQUEST, UPGRADE_REQUEST). A HEAD request served by
    /// a GET route says `HEAD`: its answer goes out without the body.
    pub method: *const u8,
    /// Length of `method`.
    pub method_len: usize,
    /// The subprotocol agreed on in the upgrade (CONNECT), or the one the connection
    /// gets if accepted (UPGRADE_REQUEST): one of those `roost_server_route_subprotocols`
    /// gave the route. NULL with length 0 when none was (the route has none, or the
    /// client offered none of them).
    pub subprotocol: *const u8,
    /// Length of `subprotocol`.
    pub subprotocol_len: usize,
}

impl Extensible for roost_event {
    /// Through `peer_len`, in version 0.1.0.
    const FIRST_SIZE: usize = std::mem::offset_of!(roost_event, method);
    const NAME: &'static str = "roost_event";
}

impl roost_event {
    pub(crate) fn empty(kind: roost_event_kind, connection: u64) -> Self {
        roost_event {
            kind,
            close_code: 0,
            route: 0,
            connection,
            data: std::ptr::null(),
            data_len: 0,
            uuid: std::ptr::null(),
            uuid_len: 0,
            path: std::ptr::null(),
            path_len: 0,
            query: std::ptr::null(),
            query_len: 0,
            headers: std::ptr::null(),
            header_count: 0,
            peer: std::ptr::null(),
            peer_len: 0,
            method: std::ptr::null(),
            method_len: 0,
            subprotocol: std::ptr::null(),
            subprotocol_len: 0,
        }
    }
}
