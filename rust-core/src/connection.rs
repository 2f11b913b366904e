//! One connection's life in one task: the upgrade, then a single future that writes
//! the outbox, reads messages into the event queue while inbound credit lasts, and
//! keeps the peer alive with pings; then the close handshake and exactly one
//! disconnect event.
//!
//! One task per connection (not a reader and a writer) keeps an idle connection to a
//! task, a socket, a read buffer and a small shared handle.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant, Sleep};

use crate::transport::Transport;

use crate::connection_state::{ConnectionState, Taken};
use crate::deflate::ConnectionCompressor;
use crate::events::{ConnectInfo, Event};
use crate::frame_reader::{FrameReader, Incoming, Limits, Violation};
use crate::frames;
use crate::handshake::{self, Refusal, Refused};
use crate::http_serve::{self, Upgrade};
use crate::server_state::{Limit, Place, ServerState};
use crate::socket::ConnectionSocket;

/// Messages read in one go before the task yields to others.
const READ_BUDGET: usize = 32;
/// Longest wait for a close frame to reach a peer that is being dropped.
const ABORT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a connection whose reading is held back checks that its peer is still
/// there (nothing else would notice: its socket is not being read).
const HELD_BACK_CHECK: Duration = Duration::from_millis(500);

/// Serves one accepted socket until it is closed: HTTP requests (`http_serve`) until
/// one upgrades it, then WebSocket. `handshake` is its place under
/// `max_pending_handshakes`, held while it serves HTTP and until the upgrade is
/// answered; an upgraded connection then holds a place under `max_connections` until
/// its task ends. On a TLS server the TLS handshake comes first; `handshake_timeout`
/// covers it and the first request.
pub(crate) async fn serve(socket: TcpStream, peer: SocketAddr, shared: Arc<ServerState>, handshake: Place) {
    let _ = socket.set_nodelay(true);
    let config = &shared.config;
    let deadline = Instant::now() + config.handshake_timeout;
    let mut socket = match &shared.tls {
        None => Transport::Plain(socket),
        Some(tls) => match tls.accept(socket, deadline).await {
            Some(stream) => Transport::Tls(Box::new(stream)),
            None => return,
        },
    };

    let Some(Upgrade { request, id }) = http_serve::serve(&mut socket, peer, &shared, deadline).await else {
        return;
    };
    let place = match shared.take_place(Limit::Connection) {
        Some(place) if !shared.stopping.load(Ordering::Acquire) => place,
        _ => {
            let refused = Refused::upgrade(Refusal::TooManyConnections);
            return handshake::refuse(&mut socket, refused, &shared.counters.refusals).await;
        }
    };
    let answered = timeout(config.handshake_timeout, async {
        socket.write_all(&request.response()).await?;
        socket.flush().await
    })
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        return;
    }
    drop(handshake);

    let handle = Arc::new(
        ConnectionState::new(id, request.route, config.outbound_queue_bytes, config.inbound_queue_depth)
            .with_compression(request.deflate.is_some_and(|a| a.takes_compressed()))
            .with_inline_io(shared.inline.clone()),
    );
    let socket = ConnectionSocket::new(socket, config.read_buffer_size, request.rest);
    let mut registration = Registration::new(shared.clone(), handle.clone(), place);
    shared.events.push(
        Event::Connect(Box::new(
            ConnectInfo::new(id, request.route, peer.to_string(), request.head)
                .with_subprotocol(request.subprotocol),
        )),
        None,
    );
    // A stop that began while this connection was upgrading did not see it.
    if shared.stopping.load(Ordering::Acquire) {
        handle.shutdown();
    }

    let compressor = request.deflate.and_then(|a| a.own_compressor_window()).map(ConnectionCompressor::new);
    let driver =
        Driver::new(socket, FrameReader::new(request.deflate.is_some()), compressor, handle, shared.clone());
    let ended = AssertUnwindSafe(driver.run()).catch_unwind().await;
    (registration.code, registration.reason) = ended.unwrap_or_else(|_| internal_error());
}

fn internal_error() -> (u16, String) {
    (1011, "internal error".into())
}

/// A registered connection. Dropping it (normally, on panic, or when the runtime is
/// shut down) retires the id and sends the one disconnect event.
struct Registration {
    shared: Arc<ServerState>,
    handle: Arc<ConnectionState>,
    /// The connection's place under `max_connections`.
    place: Option<Place>,
    code: u16,
    reason: String,
}

impl Registration {
    fn new(shared: Arc<ServerState>, handle: Arc<ConnectionState>, place: Place) -> Self {
        shared.registry.insert(handle.clone(), shared.config.join_broadcast_on_connect);
        Registration { shared, handle, place: Some(place), code: 1006, reason: String::new() }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Free the connection's place first: a client reconnecting as soon as it hears
        // of the disconnect must not find the server full.
        self.place.take();
        self.shared.registry.remove(self.handle.id);
        self.shared.events.push(
            Event::Disconnect {
                id: self.handle.id,
                route: self.handle.route,
                code: self.code,
                reason: std::mem::take(&mut self.reason),
            },
            None,
        );
        self.shared.notify_if_drained();
    }
}

/// Why the main loop ended.
enum End {
    /// The peer sent a close frame, with this code and reason (none: 1005).
    PeerClosed(Option<(u16, String)>),
    /// The socket ended without a close frame, or reading or writing it failed.
    Dropped,
    /// The peer broke a rule of the protocol or a limit.
    Violated(Violation),
    /// The consumer (or shutdown) asked to close after the queued messages.
    LocalClose(u16, String),
    /// Close at once, dropping what is queued: slow consumer, dead peer, panic.
    Abort(u16, &'static str),
}

/// Messages one step read, and their payload bytes.
#[derive(Default)]
struct Received {
    messages: u64,
    bytes: u64,
}

/// Ping schedule: wait `interval`, ping, wait up to `timeout` for any frame.
struct Keepalive {
    timer: Pin<Box<Sleep>>,
    interval: Duration,
    timeout: Duration,
    ping_sent: Option<Instant>,
}

struct Driver {
    socket: ConnectionSocket,
    reader: FrameReader,
    handle: Arc<ConnectionState>,
    shared: Arc<ServerState>,
    /// Encoded frames on their way to the socket: data frames taken from the outbox,
    /// and the task's own control frames.
    batch: VecDeque<Bytes>,
    /// Bytes of the outbox's frames in the batch, released from the outbox's count
    /// once written.
    batch_bytes: usize,
    /// The connection's own compressor when the server keeps a compression context
    /// per connection: the task compresses each data frame it takes from the outbox,
    /// in the order they go out.
    compressor: Option<ConnectionCompressor>,
    /// The pong owed for the latest ping, not yet in the batch. It joins the batch when
    /// the frames before it are written; a newer ping replaces it (RFC 6455 5.5.3), so
    /// a peer that pings without reading is owed one pong, not one per ping.
    pong: Option<Bytes>,
    keepalive: Option<Keepalive>,
    /// Timer of the peer checks while reading is held back (made when first needed).
    held_back_check: Option<Pin<Box<Sleep>>>,
    /// The peer hung up while reading was held back: read what it sent before
    /// hanging up, whatever the credit (the kernel's buffer bounds it).
    peer_hung_up: bool,
    /// Messages this step queued owe the consumer a wake-up, given when the step ends.
    signal_due: bool,
}

impl Driver {
    fn new(
        socket: ConnectionSocket,
        reader: FrameReader,
        compressor: Option<ConnectionCompressor>,
        handle: Arc<ConnectionState>,
        shared: Arc<ServerState>,
    ) -> Self {
        let config = &shared.config;
        let keepalive = config.ping_interval.map(|interval| Keepalive {
            timer: Box::pin(tokio::time::sleep(interval)),
            interval,
            timeout: config.ping_timeout,
            ping_sent: None,
        });
        Driver {
            socket,
            reader,
            handle,
            shared,
            batch: VecDeque::new(),
            batch_bytes: 0,
            compressor,
            pong: None,
            keepalive,
            held_back_check: None,
            peer_hung_up: false,
            signal_due: false,
        }
    }

    async fn run(mut self) -> (u16, String) {
        // Over TLS, or when the task compresses each frame, None: senders never write
        // the socket; frames go through the task.
        let direct_write_fd = if self.compressor.is_some() { None } else { self.socket.direct_write_fd() };
        self.handle.set_socket(direct_write_fd);
        let end = std::future::poll_fn(|cx| {
            let step = std::panic::catch_unwind(AssertUnwindSafe(|| self.poll_step(cx)));
            // Whatever the step read, the consumer hears of it now, in one wake-up.
            if std::mem::take(&mut self.signal_due) {
                self.shared.events.signal();
            }
            match step {
                Ok(poll) => poll,
                Err(_) => Poll::Ready(End::Abort(1011, "internal error")),
            }
        })
        .await;
        // Whatever ended the connection, its socket is the task's alone from here on.
        self.handle.set_socket(None);
        // Boxed: the closing steps' state exists only while closing, instead of
        // enlarging every connection's task.
        Box::pin(self.finish(end)).await
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        self.handle.register(cx.waker());
        if let Poll::Ready(end) = self.poll_write(cx) {
            return Poll::Ready(end);
        }
        if let Poll::Ready(end) = self.poll_read(cx) {
            return Poll::Ready(end);
        }
        self.poll_keepalive(cx)
    }

    /// Writes the outbox in batches, writing each batch out before taking the next, so
    /// that queued bytes are counted until they reach the socket.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        if let Some(code) = self.handle.killed() {
            return Poll::Ready(End::Abort(code, "too slow to keep up with broadcast"));
        }
        loop {
            match self.socket.poll_write_frames(cx, &mut self.batch) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(End::Dropped),
                Poll::Pending => return Poll::Pending,
            }
            if self.batch_bytes > 0 && self.handle.flushed(std::mem::take(&mut self.batch_bytes)) {
                self.shared.events.push(Event::Writable { id: self.handle.id }, None);
            }
            // The pong goes before the next batch: it is the peer's latency to us.
            if let Some(pong) = self.pong.take() {
                self.send_control(pong);
                continue;
            }
            match self.handle.take_batch(&mut self.batch, self.shared.config.write_buffer_size) {
                Taken::Nothing => return Poll::Pending,
                Taken::Frames(bytes) => {
                    self.batch_bytes = bytes;
                    self.compress_batch();
                }
                Taken::Close(code, reason) => return Poll::Ready(End::LocalClose(code, reason)),
                Taken::Rest(rest) => self.socket.finish_first(rest),
            }
        }
    }

    /// With a compressor of its own, replaces each data frame just taken (the batch
    /// holds nothing else) at or above the compression size by its compressed form.
    fn compress_batch(&mut self) {
        let Some(compressor) = &mut self.compressor else { return };
        let min_size = self.shared.config.compression_min_size;
        for frame in self.batch.iter_mut() {
            if let Some((kind, payload)) = frames::plain_data(frame).filter(|(_, p)| p.len() >= min_size) {
                *frame = frames::encode_compressed(kind, &compressor.compress(&payload));
            }
        }
    }

    /// Puts one of the task's control frames in the batch, after the frames in it,
    /// claiming the socket from direct writers first (a frame one of them left
    /// unfinished is finished before anything else).
    fn send_control(&mut self, frame: Bytes) {
        if let Some(rest) = self.handle.claim_socket() {
            self.socket.finish_first(rest);
        }
        self.batch.push_back(frame);
    }

    /// Parses the next complete frame or message out of the socket's bytes.
    fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, End>> {
        let config = &self.shared.config;
        let limits = Limits { max_frame: config.frame_limit(), max_message: config.max_message_size };
        loop {
            match self.socket.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false) | Err(_)) => return Poll::Ready(Err(End::Dropped)),
            }
            match self.reader.read(self.socket.unread_mut(), limits) {
                Ok((used, done)) => {
                    self.socket.consume(used);
                    if let Some(incoming) = done {
                        return Poll::Ready(Ok(incoming));
                    }
                }
                Err(violation) => return Poll::Ready(Err(End::Violated(violation))),
            }
        }
    }

    /// Reads messages into the event queue while inbound credit lasts, and counts them
    /// in one go: one pair of atomic adds per step, not per message.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let mut received = Received::default();
        let poll = self.read_messages(cx, &mut received);
        if received.messages > 0 {
            self.shared.counters.received.add(received.messages, received.bytes);
        }
        poll
    }

    fn read_messages(&mut self, cx: &mut Context<'_>, received: &mut Received) -> Poll<End> {
        for _ in 0..READ_BUDGET {
            if !self.peer_hung_up && !self.handle.may_read() {
                // Backpressure of our own making, not a dead peer.
                self.postpone_pong_deadline();
                if !self.check_peer_while_held_back(cx) {
                    return Poll::Pending;
                }
            }
            let incoming = match self.poll_incoming(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(end)) => return Poll::Ready(end),
                Poll::Ready(Ok(incoming)) => incoming,
            };
            self.heard_from_peer();
            let (binary, data) = match incoming {
                Incoming::Message { binary, data } => (binary, data),
                Incoming::Close(frame) => return Poll::Ready(End::PeerClosed(frame)),
                Incoming::Ping(payload) => {
                    self.pong = Some(frames::encode_pong(&payload));
                    // Answer at once when the socket takes it; else the pong waits
                    // for the frames before it, and a newer ping replaces it.
                    if let Poll::Ready(end) = self.poll_write(cx) {
                        return Poll::Ready(end);
                    }
                    continue;
                }
                Incoming::Pong => continue,
            };
            #[cfg(feature = "fault-injection")]
            if !binary && &data[..] == b"__roost_panic__" {
                panic!("fault injection: panic inside a connection task");
            }
            received.messages += 1;
            received.bytes += data.len() as u64;
            let event = Event::Message { id: self.handle.id, route: self.handle.route, binary, data };
            self.signal_due |= self.shared.events.push_unsignalled(event, Some(self.handle.clone()));
        }
        // Budget spent: let other connections run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Every `HELD_BACK_CHECK`, asks the kernel whether the peer hung up. Returns true
    /// when it did (`peer_hung_up` is then set).
    fn check_peer_while_held_back(&mut self, cx: &mut Context<'_>) -> bool {
        let timer = self.held_back_check.get_or_insert_with(|| Box::pin(tokio::time::sleep(HELD_BACK_CHECK)));
        while timer.as_mut().poll(cx).is_ready() {
            if peer_hung_up(self.socket.socket()) {
                self.peer_hung_up = true;
                return true;
            }
            timer.as_mut().reset(Instant::now() + HELD_BACK_CHECK);
        }
        false
    }

    fn heard_from_peer(&mut self) {
        if let Some(keepalive) = &mut self.keepalive {
            if let Some(sent) = keepalive.ping_sent.take() {
                let next = (sent + keepalive.interval).max(Instant::now());
                keepalive.timer.as_mut().reset(next);
            }
        }
    }

    fn postpone_pong_deadline(&mut self) {
        if let Some(keepalive) = &mut self.keepalive {
            if keepalive.ping_sent.is_some() {
                let now = Instant::now();
                keepalive.ping_sent = Some(now);
                keepalive.timer.as_mut().reset(now + keepalive.timeout);
            }
        }
    }

    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let Some(keepalive) = &mut self.keepalive else { return Poll::Pending };
        if keepalive.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if keepalive.ping_sent.is_some() {
            return Poll::Ready(End::Abort(1011, "keepalive ping timeout"));
        }
        let now = Instant::now();
        keepalive.ping_sent = Some(now);
        keepalive.timer.as_mut().reset(now + keepalive.timeout);
        // The ping waits behind whatever is being written, even when the socket is
        // full; a peer that never reads then never sees it, and the timeout closes it,
        // which is what a dead peer deserves.
        self.send_control(frames::encode_ping());
        if let Poll::Ready(end) = self.poll_write(cx) {
            return Poll::Ready(end);
        }
        let Some(keepalive) = &mut self.keepalive else { return Poll::Pending };
        // Arm the new deadline with this task's waker.
        match keepalive.timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// The close handshake, bounded by `close_timeout`. Returns the code and reason
    /// the consumer hears.
    async fn finish(mut self, end: End) -> (u16, String) {
        let limit = self.shared.config.close_timeout;
        match end {
            End::PeerClosed(frame) => {
                // Echo the peer's code (RFC 6455 5.5.1) after the frames already taken.
                let code = frame.as_ref().map(|(code, _)| *code);
                let _ = timeout(limit, self.write_close(code, "")).await;
                frame.unwrap_or((1005, String::new()))
            }
            End::Dropped => (1006, String::new()),
            End::Violated(Violation { code, reason }) => {
                self.drop_unsent();
                let _ = timeout(limit, self.write_close(Some(code), reason)).await;
                self.linger(limit.min(ABORT_CLOSE_TIMEOUT)).await;
                (code, reason.to_string())
            }
            End::LocalClose(code, reason) => {
                let _ = timeout(limit, async {
                    self.write_close(Some(code), &reason).await?;
                    // Wait for the peer's close frame; data arriving meanwhile is dropped.
                    while let Ok(incoming) = std::future::poll_fn(|cx| self.poll_incoming(cx)).await {
                        if let Incoming::Close(_) = incoming {
                            break;
                        }
                    }
                    Ok::<(), std::io::Error>(())
                })
                .await;
                (code, reason)
            }
            End::Abort(code, reason) => {
                // The peer is dead or far behind: one short try, then drop it.
                let limit = limit.min(ABORT_CLOSE_TIMEOUT);
                self.drop_unsent();
                let _ = timeout(limit, self.write_close(Some(code), reason)).await;
                self.linger(limit).await;
                (code, reason.to_string())
            }
        }
    }

    /// Drops the frames not yet started: the connection is failing at once. A frame
    /// cut short is still finished, or the close frame would land inside it.
    fn drop_unsent(&mut self) {
        self.batch.clear();
        self.pong = None;
    }

    /// Writes the batch, the pong still owed and then a close frame. The socket is the
    /// task's alone by now; what a direct write left unfinished goes first.
    async fn write_close(&mut self, code: Option<u16>, reason: &str) -> std::io::Result<()> {
        if let Some(pong) = self.pong.take() {
            self.send_control(pong);
        }
        self.send_control(frames::encode_close(code, reason));
        std::future::poll_fn(|cx| self.socket.poll_write_frames(cx, &mut self.batch)).await
    }

    /// Ends our side and discards what the peer still sends, for at most `limit` and
    /// one message's worth of bytes, so that closing with unread data (the rest of an
    /// oversized message) does not reset the connection and destroy the close frame
    /// before the peer has read it, while a hostile peer is still cut off soon.
    async fn linger(&mut self, limit: Duration) {
        let mut budget = self.shared.config.max_message_size;
        let socket = self.socket.shutdown().await;
        // On the heap, not in the future: an array here would make every connection's
        // task 4 KiB larger for the whole of its life.
        let mut discard = vec![0u8; 4096];
        let _ = timeout(limit, async {
            while let Ok(n) = socket.read(&mut discard).await {
                if n == 0 || n >= budget {
                    break;
                }
                budget -= n;
            }
        })
        .await;
    }
}

impl Drop for Driver {
    /// A task dropped before it ends (the runtime shutting down) still withdraws the
    /// socket from direct writers before the socket is closed.
    fn drop(&mut self) {
        self.handle.set_socket(None);
    }
}

/// Whether the peer closed or reset the connection, without reading from it: a
/// level-triggered poll(2) that leaves the runtime's own readiness state alone.
fn peer_hung_up(socket: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    #[cfg(target_os = "linux")]
    let hang_up = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
    #[cfg(not(target_os = "linux"))]
    let hang_up = libc::POLLHUP | libc::POLLERR;
    let mut pollfd = libc::pollfd { fd: socket.as_raw_fd(), events: hang_up, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut pollfd, 1, 0) };
    ready > 0 && pollfd.revents & hang_up != 0
}
