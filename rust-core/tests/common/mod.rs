//! Shared pieces of the integration tests: a started server with a consumer thread that
//! follows the wake-up protocol, real WebSocket clients, a raw TCP client with a tiny
//! frame encoder/decoder, and process measurements (RSS, CPU time).
#![allow(dead_code)]

pub mod http_client;
pub mod redis_server;
pub mod tls;

use std::future::Future;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use roost::{Config, ConnectInfo, Event, Server, Stats};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A real WebSocket client.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

// ---------------------------------------------------------------------------------
// Running async test bodies
// ---------------------------------------------------------------------------------

/// Runs `body` on a fresh two-thread tokio runtime (the clients' side), failing the
/// test if it takes longer than `secs` seconds. The server has a runtime of its own.
pub fn run<F: Future>(secs: u64, body: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let out = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(secs), body).await })
        .unwrap_or_else(|_| panic!("test body did not finish within {secs} s"));
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// `rt.block_on(body)`, failing the test if it takes longer than `secs` seconds. For
/// tests that interleave client steps with synchronous server calls.
pub fn block_on<F: Future>(rt: &tokio::runtime::Runtime, secs: u64, body: F) -> F::Output {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(secs), body).await })
        .unwrap_or_else(|_| panic!("client step did not finish within {secs} s"))
}

/// A config for tests: defaults with pings off (tests that want pings turn them on).
pub fn test_config() -> Config {
    Config { ping_interval: None, close_timeout: Duration::from_secs(2), ..Config::default() }
}

// ---------------------------------------------------------------------------------
// Server + consumer
// ---------------------------------------------------------------------------------

/// What the consumer thread does with each event before forwarding it to the test.
pub type Handler = Box<dyn FnMut(&Server, &Event) + Send>;

/// A handler that answers each message with the same message (text or binary).
pub fn echo_handler() -> Handler {
    Box::new(|server: &Server, event: &Event| {
        if let Event::Message { id, binary, data, .. } = event {
            let _ = if *binary {
                server.send_binary(*id, data.clone())
            } else {
                server.send_text(*id, data.clone())
            };
        }
    })
}

/// A handler that only records (the test sees every event through `Events`).
pub fn record_handler() -> Handler {
    Box::new(|_: &Server, _: &Event| {})
}

/// A started server and, optionally, its consumer thread.
pub struct Harness {
    server: Option<Arc<Server>>,
    pub port: u16,
    pub routes: Vec<u32>,
    consumer: Option<Consumer>,
}

impl Harness {
    /// Creates a server with `config` and `paths`, starts it on 127.0.0.1:0. No consumer.
    pub fn new(config: Config, paths: &[&str]) -> Harness {
        Harness::with_routes(config, |server| {
            paths.iter().map(|p| server.add_route(p).expect("add_route")).collect()
        })
    }

    /// Creates a server with `config`, lets `add` add its routes (returning their
    /// ids), starts it on 127.0.0.1:0. No consumer.
    pub fn with_routes(config: Config, add: impl FnOnce(&Server) -> Vec<u32>) -> Harness {
        let server = Server::new(config).expect("Server::new");
        let routes = add(&server);
        Harness::start(server, routes)
    }

    /// Starts a server the test has set up (its `routes` added, and whatever else
    /// must come before start) on 127.0.0.1:0. No consumer.
    pub fn start(server: Server, routes: Vec<u32>) -> Harness {
        let port = server.start("127.0.0.1", 0).expect("start");
        assert_ne!(port, 0);
        Harness { server: Some(Arc::new(server)), port, routes, consumer: None }
    }

    /// As `new`, with a consumer thread running `handler` on every event.
    pub fn with_consumer(config: Config, paths: &[&str], handler: Handler) -> (Harness, Events) {
        let mut h = Harness::new(config, paths);
        let events = h.start_consumer(handler);
        (h, events)
    }

    /// An echo server.
    pub fn echo(config: Config, paths: &[&str]) -> (Harness, Events) {
        Harness::with_consumer(config, paths, echo_handler())
    }

    /// Starts the consumer thread now (for tests that start without one).
    pub fn start_consumer(&mut self, handler: Handler) -> Events {
        assert!(self.consumer.is_none(), "consumer already running");
        let (consumer, events) = Consumer::spawn(self.server().clone(), handler);
        self.consumer = Some(consumer);
        events
    }

    pub fn server(&self) -> &Arc<Server> {
        self.server.as_ref().expect("server")
    }

    pub fn url(&self, target: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, target)
    }

    /// Stops the server on a plain thread (never from a runtime), awaiting the result.
    pub async fn stop(&self, grace: Duration) -> roost::Result<()> {
        stop_off_runtime(self.server().clone(), grace).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.consumer.take());
        if let Some(server) = self.server.take() {
            // Stop and drop on a plain thread: a running server dropped on a thread that
            // is inside a tokio runtime would drop its own runtime there.
            let _ = std::thread::spawn(move || {
                let _ = server.stop(Duration::from_millis(200));
                drop(server);
            })
            .join();
        }
    }
}

/// The server's counters once `done` holds for them, waiting up to 5 s: a count may
/// trail what a client has already seen (a reply is on the wire before its send
/// returns). Panics with the last counters when `done` never holds.
pub async fn stats_when(server: &Server, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "counters never got there: {stats:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Calls `Server::stop` on a new plain thread and awaits its result.
pub async fn stop_off_runtime(server: Arc<Server>, grace: Duration) -> roost::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = server.stop(grace);
        drop(server);
        let _ = tx.send(result);
    });
    rx.await.expect("stop thread died")
}

/// A consumer thread following the protocol strictly: poll until a poll returns 0,
/// then block in `libc::poll` on the ready descriptor with no timeout (plus a private
/// eventfd used only to end the thread). A lost wake-up therefore hangs it, and the
/// test's own time limit fails.
pub struct Consumer {
    stop_fd: RawFd,
    thread: Option<JoinHandle<()>>,
}

impl Consumer {
    pub fn spawn(server: Arc<Server>, mut handler: Handler) -> (Consumer, Events) {
        // SAFETY: plain system call, result checked.
        let stop_fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(stop_fd >= 0, "eventfd");
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("test-consumer".into())
            .spawn(move || {
                let ready = server.ready_fd();
                let mut batch = Vec::with_capacity(64);
                loop {
                    loop {
                        batch.clear();
                        if server.poll(&mut batch, 64) == 0 {
                            break;
                        }
                        for event in batch.drain(..) {
                            handler(&server, &event);
                            let _ = tx.send(event);
                        }
                    }
                    let mut fds = [
                        libc::pollfd { fd: ready, events: libc::POLLIN, revents: 0 },
                        libc::pollfd { fd: stop_fd, events: libc::POLLIN, revents: 0 },
                    ];
                    // SAFETY: two live pollfd structs.
                    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                    if rc < 0 {
                        continue; // EINTR
                    }
                    if fds[1].revents != 0 {
                        return;
                    }
                }
            })
            .expect("spawn consumer");
        (Consumer { stop_fd, thread: Some(thread) }, Events { rx })
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes to our own eventfd.
        unsafe { libc::write(self.stop_fd, (&one as *const u64).cast(), 8) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // SAFETY: closed once, after the thread that used it ended.
        unsafe { libc::close(self.stop_fd) };
    }
}

/// The events the consumer saw, in order.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub async fn next(&mut self) -> Event {
        self.rx.recv().await.expect("consumer thread ended")
    }

    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The next event, or None if none arrives within `d`.
    pub async fn next_within(&mut self, d: Duration) -> Option<Event> {
        tokio::time::timeout(d, self.next()).await.ok()
    }

    /// Skips to the next connect event.
    pub async fn connect(&mut self) -> Box<ConnectInfo> {
        loop {
            if let Event::Connect(info) = self.next().await {
                return info;
            }
        }
    }

    /// Skips to the disconnect event of `id`; returns its code and reason.
    pub async fn disconnect(&mut self, id: u64) -> (u16, String) {
        loop {
            if let Event::Disconnect { id: i, code, reason, .. } = self.next().await {
                if i == id {
                    return (code, reason);
                }
            }
        }
    }

    /// Skips to the next message of `id`; returns (binary, data).
    pub async fn message(&mut self, id: u64) -> (bool, Bytes) {
        loop {
            if let Event::Message { id: i, binary, data, .. } = self.next().await {
                if i == id {
                    return (binary, data);
                }
            }
        }
    }

    /// Skips to the next writable event of `id`.
    pub async fn writable(&mut self, id: u64) {
        loop {
            if let Event::Writable { id: i } = self.next().await {
                if i == id {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// WebSocket clients
// ---------------------------------------------------------------------------------

pub async fn ws_connect(port: u16, target: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}{target}");
    let (ws, response) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
    assert_eq!(response.status().as_u16(), 101);
    ws
}

/// Connects with an extra request header.
pub async fn ws_connect_with_header(port: u16, target: &str, name: &'static str, value: &str) -> Ws {
    let mut request = format!("ws://127.0.0.1:{port}{target}").into_client_request().unwrap();
    request.headers_mut().insert(name, value.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("ws connect");
    ws
}

/// The next text or binary message (pings and pongs skipped). Panics on close or end.
pub async fn ws_recv<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Message {
    loop {
        match ws.next().await {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return m,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason. Data messages
/// before it are skipped. Panics if the stream ends without a close frame.
pub async fn ws_expect_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> (u16, String) {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Sends `text` and expects the same text back.
pub async fn ws_echo_text<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: &str) {
    ws.send(Message::text(text.to_owned())).await.expect("send");
    match ws_recv(ws).await {
        Message::Text(t) => assert_eq!(t.as_str(), text),
        other => panic!("expected text echo, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Raw TCP client
// ---------------------------------------------------------------------------------

/// The RFC 6455 sample key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn upgrade_request(port: u16, target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// `upgrade_request` with `extra` header lines ("Name: value\r\n" each) added.
pub fn upgrade_request_with(port: u16, target: &str, extra: &str) -> String {
    let mut request = upgrade_request(port, target);
    request.truncate(request.len() - 2);
    request + extra + "\r\n"
}

/// An HTTP answer read up to the end of the stream.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn parse_http(raw: &[u8]) -> HttpAnswer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("bad header line {l:?}"));
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    HttpAnswer { status, headers, body: body.to_string() }
}

/// Sends `request` and reads the whole answer up to EOF (which proves the server
/// closed the socket).
pub async fn raw_exchange(port: u16, request: &[u8]) -> HttpAnswer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(request).await.expect("write request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read answer to EOF");
    parse_http(&raw)
}

/// As `raw_exchange`, for refusals sent while request bytes are still unread: the
/// server's close may then reach the client as a reset after the answer.
pub async fn raw_exchange_allow_reset(port: u16, request: &[u8]) -> HttpAnswer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    // The server may stop reading (and answer) before the whole request is written.
    let _ = s.write_all(request).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    parse_http(&raw)
}

/// Reads an HTTP response head byte by byte (leaving any frames after it unread).
pub async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = s.read_u8().await.expect("read response head");
        head.push(b);
        assert!(head.len() < 8192, "response head too long");
    }
    head
}

/// Completes a WebSocket upgrade on `s`.
pub async fn raw_upgrade_on(mut s: TcpStream, port: u16, target: &str) -> TcpStream {
    s.write_all(upgrade_request(port, target).as_bytes()).await.expect("write upgrade");
    let head = read_head(&mut s).await;
    let answer = parse_http(&head);
    assert_eq!(answer.status, 101, "upgrade refused: {answer:?}");
    assert_eq!(answer.header("sec-websocket-accept"), Some(ACCEPT));
    s
}

pub async fn raw_upgrade(port: u16, target: &str) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    raw_upgrade_on(s, port, target).await
}

/// A raw client with a small receive buffer, so that a client that does not read
/// fills up quickly.
pub async fn raw_upgrade_small_rcvbuf(port: u16, target: &str, rcvbuf: u32) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    let s = socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect");
    raw_upgrade_on(s, port, target).await
}

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Encodes one frame. `rsv` is the three reserved bits (0..=7); `mask` None sends the
/// frame unmasked (a protocol error from a client).
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push((u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame, as a conforming client sends it.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A close frame payload: code then reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A frame as the server sent it.
#[derive(Debug)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Reads one frame; None at a clean end of stream before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<RawFrame>> {
    let mut h = [0u8; 2];
    match r.read_exact(&mut h[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut h[1..]).await?;
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => r.read_u16().await? as usize,
        127 => r.read_u64().await? as usize,
        n => n as usize,
    };
    let mut key = [0u8; 4];
    if masked {
        r.read_exact(&mut key).await?;
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok(Some(RawFrame { fin, opcode, masked, payload }))
}

/// Reads frames until a close frame; returns its code (1005 if empty) and reason.
pub async fn read_close<R: AsyncRead + Unpin>(r: &mut R) -> (u16, String) {
    loop {
        let f = read_frame(r).await.expect("read frame").expect("stream ended before a close frame");
        assert!(!f.masked, "server frames must not be masked");
        if f.opcode == OP_CLOSE {
            if f.payload.len() < 2 {
                return (1005, String::new());
            }
            let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
            return (code, String::from_utf8(f.payload[2..].to_vec()).expect("utf-8 reason"));
        }
    }
}

// ---------------------------------------------------------------------------------
// The C ABI's side
// ---------------------------------------------------------------------------------

/// Polls a server through the C ABI (waiting on the ready fd by the protocol) until
/// `want` accepts an event; returns what `want` returned.
pub fn poll_until<T>(
    s: *mut roost::ffi::roost_server,
    mut want: impl FnMut(&roost::ffi::roost_event) -> Option<T>,
) -> T {
    use roost::ffi::{roost_event, roost_server_poll, roost_server_ready_fd, roost_status::ROOST_OK};
    use std::mem::MaybeUninit;
    use std::time::Instant;
    let mut fd: std::ffi::c_int = -1;
    // SAFETY: `fd` is writable; a bad handle gives a status.
    assert_eq!(unsafe { roost_server_ready_fd(s, &mut fd) }, ROOST_OK);
    let mut events = [MaybeUninit::<roost_event>::uninit(); 8];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut n = 0usize;
        let events_ptr = events.as_mut_ptr().cast();
        // SAFETY: `events` holds 8 events of this size; `n` is writable.
        let status =
            unsafe { roost_server_poll(s, events_ptr, 8, std::mem::size_of::<roost_event>(), &mut n) };
        assert_eq!(status, ROOST_OK);
        for e in &events[..n] {
            // SAFETY: the first n were written by roost_server_poll.
            if let Some(t) = want(unsafe { e.assume_init_ref() }) {
                return t;
            }
        }
        if n == 0 {
            assert!(fd_readable(fd, 5000), "no wake-up while waiting for an event");
        }
        assert!(Instant::now() < deadline, "event never came");
    }
}

/// The bytes of a pointer and length from a polled event (NULL with 0: none).
///
/// # Safety
/// `p` points to `len` readable bytes that outlive the result, or `len` is 0.
pub unsafe fn slice<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

// ---------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// User plus system CPU time of the whole process.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Waits up to `timeout_ms` for `fd` to be readable; true if it is.
pub fn fd_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    assert!(rc >= 0, "poll failed");
    rc > 0
}

pub const MIB: usize = 1 << 20;
