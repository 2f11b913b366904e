//! The Redis backplane, against a real redis-server that each test starts on a port of
//! its own (tests/common/redis_server.rs): publishes and broadcasts reach the clients of
//! two servers once each and in order, the excluded connection is excluded on its own
//! server only, a server is subscribed to a topic's channel only while it has local
//! subscribers, Redis unreachable at start, killed and restarted, or stopped (SIGSTOP)
//! never holds up local delivery or the calls, malformed envelopes are counted and
//! ignored, and the C options take the URL.

mod common;

use std::ffi::CStr;
use std::time::{Duration, Instant};

use common::redis_server::{free_port, url_of, RedisServer};
use common::*;
use futures_util::StreamExt;
use roost::{Config, Server, Stats};
use tokio_tungstenite::tungstenite::Message;

const TOPIC_CHANNEL: &[u8] = b"roost:topic:room";
const ROUTE_CHANNEL: &[u8] = b"roost:route:/chat";

fn config(url: &str) -> Config {
    Config { backplane: Some(url.to_string()), ..test_config() }
}

/// A started server on /chat with the backplane at `url`, and its consumer's events.
fn node(url: &str) -> (Harness, Events) {
    Harness::with_consumer(config(url), &["/chat"], record_handler())
}

/// Connects a client to /chat and returns it with its connection id.
async fn client(port: u16, events: &mut Events) -> (Ws, u64) {
    let ws = ws_connect(port, "/chat").await;
    (ws, events.connect().await.id)
}

/// Connects a client to each server and subscribes both to "room".
async fn room(a: (&Harness, &mut Events), b: (&Harness, &mut Events)) -> ((Ws, u64), (Ws, u64)) {
    let mut clients = Vec::new();
    for (h, events) in [a, b] {
        let (ws, id) = client(h.port, events).await;
        h.server().subscribe(id, b"room").unwrap();
        clients.push((ws, id));
    }
    let b = clients.pop().unwrap();
    (clients.pop().unwrap(), b)
}

/// Waits until `ready()` holds, checking every 20 ms; fails the test after `secs` s.
/// Returns how long it took.
async fn until(what: &str, secs: u64, mut ready: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(secs), "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn nothing_arrives(ws: &mut Ws) {
    let got = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(got.is_err(), "received {got:?}");
}

/// The payload of a data message as text (binary messages are ASCII in these tests).
fn text_of(message: Message) -> String {
    match message {
        Message::Text(t) => t.to_string(),
        Message::Binary(b) => String::from_utf8(b.to_vec()).expect("ASCII payload"),
        other => panic!("not a data message: {other:?}"),
    }
}

/// Receives messages until one equals `wanted` (messages before it are skipped).
async fn skip_to(ws: &mut Ws, wanted: &str) {
    while text_of(ws_recv(ws).await) != wanted {}
}

fn stats(h: &Harness) -> Stats {
    h.server().stats()
}

/// Waits (up to `secs` s) until both servers are connected and Redis counts
/// `subscribers` connections on `channel`; returns how long it took.
async fn ready_within(
    secs: u64,
    redis: &RedisServer,
    servers: [&Harness; 2],
    channel: &[u8],
    subscribers: usize,
) -> Duration {
    until("both backplanes connected and subscribed", secs, || {
        servers.iter().all(|h| stats(h).backplane_connected) && redis.subscribers(channel) == subscribers
    })
    .await
}

async fn ready(redis: &RedisServer, servers: [&Harness; 2], channel: &[u8], subscribers: usize) {
    ready_within(15, redis, servers, channel, subscribers).await;
}

/// Publishes `text` to "room" on `server` and expects its local subscriber `ws` to
/// have it within a second.
async fn delivered_locally(server: &Server, ws: &mut Ws, text: &str) {
    assert_eq!(server.publish_text(b"room", text, None).unwrap(), 1);
    let got = tokio::time::timeout(Duration::from_secs(1), ws_recv(ws)).await;
    assert_eq!(text_of(got.expect("local delivery within 1 s")), text);
}

/// Receives `n` messages and checks that those of each publisher (the prefix before
/// the number) came in the order published, each once.
async fn receive_in_order(ws: &mut Ws, n: usize, publishers: &[&str]) {
    let mut next = vec![0usize; publishers.len()];
    for _ in 0..n {
        let text = text_of(ws_recv(ws).await);
        let p = publishers
            .iter()
            .position(|p| text.starts_with(p))
            .unwrap_or_else(|| panic!("from whom? {text}"));
        assert_eq!(text, format!("{}{}", publishers[p], next[p]), "out of order or repeated");
        next[p] += 1;
    }
}

#[test]
fn a_publish_reaches_the_subscribers_on_both_servers_once_and_in_order() {
    let redis = RedisServer::start();
    let (a, mut ea) = node(&redis.url());
    let (b, mut eb) = node(&redis.url());
    run(60, async {
        let ((mut wa, _), (mut wb, _)) = room((&a, &mut ea), (&b, &mut eb)).await;
        ready(&redis, [&a, &b], TOPIC_CHANNEL, 2).await;

        const N: usize = 500;
        for i in 0..N {
            assert_eq!(a.server().publish_text(b"room", format!("a{i}"), None).unwrap(), 1);
            assert_eq!(b.server().publish_binary(b"room", format!("b{i}"), None).unwrap(), 1);
        }
        for ws in [&mut wa, &mut wb] {
            receive_in_order(ws, 2 * N, &["a", "b"]).await;
        }
        nothing_arrives(&mut wa).await;
        nothing_arrives(&mut wb).await;
        for h in [&a, &b] {
            let s = stats(h);
            assert_eq!((s.backplane_published, s.backplane_received), (N as u64, N as u64), "{s:?}");
            assert_eq!((s.backplane_dropped, s.backplane_malformed, s.backplane_reconnects), (0, 0, 0));
        }
    });
}

#[test]
fn a_broadcast_reaches_the_route_on_both_servers_once_and_in_order() {
    let redis = RedisServer::start();
    let paths = ["/chat", "/other"];
    let (a, mut ea) = Harness::with_consumer(config(&redis.url()), &paths, record_handler());
    let (b, mut eb) = Harness::with_consumer(config(&redis.url()), &paths, record_handler());
    run(60, async {
        let (mut wa, _) = client(a.port, &mut ea).await;
        let (mut wb, _) = client(b.port, &mut eb).await;
        let mut elsewhere = ws_connect(b.port, "/other").await;
        ready(&redis, [&a, &b], ROUTE_CHANNEL, 2).await;
        assert_eq!(redis.subscribers(b"roost:route:/other"), 2, "every route's channel");

        const N: usize = 300;
        for i in 0..N {
            assert_eq!(a.server().broadcast_text(0, format!("a{i}")).unwrap(), 1);
            assert_eq!(b.server().broadcast_binary(0, format!("b{i}")).unwrap(), 1);
        }
        for ws in [&mut wa, &mut wb] {
            receive_in_order(ws, 2 * N, &["a", "b"]).await;
        }
        nothing_arrives(&mut wa).await;
        nothing_arrives(&mut wb).await;
        nothing_arrives(&mut elsewhere).await;
        assert_eq!(stats(&b).backplane_received, N as u64);
    });
}

#[test]
fn the_excluded_connection_is_excluded_on_its_own_server_only() {
    let redis = RedisServer::start();
    let (a, mut ea) = node(&redis.url());
    let (b, mut eb) = node(&redis.url());
    run(30, async {
        let ((mut wa, ida), (mut wb, idb)) = room((&a, &mut ea), (&b, &mut eb)).await;
        assert_eq!(ida, idb, "ids count per server: the two clients share one");
        ready(&redis, [&a, &b], TOPIC_CHANNEL, 2).await;

        assert_eq!(a.server().publish_text(b"room", "from a", Some(ida)).unwrap(), 0);
        assert_eq!(text_of(ws_recv(&mut wb).await), "from a");
        assert_eq!(b.server().publish_text(b"room", "from b", Some(idb)).unwrap(), 0);
        assert_eq!(text_of(ws_recv(&mut wa).await), "from b");
        nothing_arrives(&mut wa).await;
        nothing_arrives(&mut wb).await;
    });
}

#[test]
fn a_server_is_subscribed_to_a_topic_s_channel_only_while_it_has_local_subscribers() {
    let redis = RedisServer::start();
    let (a, mut ea) = node(&redis.url());
    run(30, async {
        let routes_only = vec![ROUTE_CHANNEL.to_vec()];
        until("the route's channel", 15, || redis.channels("roost:*") == routes_only).await;
        let (mut w1, id1) = client(a.port, &mut ea).await;
        let (mut w2, id2) = client(a.port, &mut ea).await;
        assert!(a.server().subscribe(id1, b"room").unwrap());
        until("the topic's channel", 5, || redis.subscribers(TOPIC_CHANNEL) == 1).await;
        assert!(a.server().subscribe(id2, b"room").unwrap());
        assert!(a.server().unsubscribe(id1, b"room").unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(redis.subscribers(TOPIC_CHANNEL), 1, "one subscriber is left");

        // The last subscriber's connection ends.
        w2.close(None).await.unwrap();
        ea.disconnect(id2).await;
        until("no topic channel", 5, || redis.channels("roost:*") == routes_only).await;

        // Churn ends where it stands: subscribed to "a", not to "b".
        for _ in 0..200 {
            a.server().subscribe(id1, b"a").unwrap();
            a.server().subscribe(id1, b"b").unwrap();
            a.server().unsubscribe(id1, b"a").unwrap();
            a.server().unsubscribe(id1, b"b").unwrap();
        }
        a.server().subscribe(id1, b"a").unwrap();
        let wanted = vec![ROUTE_CHANNEL.to_vec(), b"roost:topic:a".to_vec()];
        until("only the channel of a", 5, || redis.channels("roost:*") == wanted).await;
        assert_eq!(a.server().publish_text(b"a", "still here", None).unwrap(), 1);
        assert_eq!(text_of(ws_recv(&mut w1).await), "still here");
    });
}

#[test]
fn with_redis_unreachable_at_start_local_delivery_works_at_once_and_the_rest_once_it_is_up() {
    let port = free_port();
    let (a, mut ea) = node(&url_of(port));
    let (b, mut eb) = node(&url_of(port));
    run(60, async {
        let ((mut wa, _), (mut wb, _)) = room((&a, &mut ea), (&b, &mut eb)).await;
        assert_eq!(a.server().publish_text(b"room", "local", None).unwrap(), 1);
        assert_eq!(text_of(ws_recv(&mut wa).await), "local");
        assert!(!stats(&a).backplane_connected);
        until("the message that could not go counted", 10, || stats(&a).backplane_dropped == 1).await;

        tokio::time::sleep(Duration::from_millis(500)).await;
        let redis = RedisServer::start_on(port);
        let took = ready_within(15, &redis, [&a, &b], TOPIC_CHANNEL, 2).await;
        eprintln!("both servers connected {took:?} after Redis started");
        assert_eq!(a.server().publish_text(b"room", "across", None).unwrap(), 1);
        assert_eq!(text_of(ws_recv(&mut wa).await), "across");
        assert_eq!(text_of(ws_recv(&mut wb).await), "across");
        assert_eq!(stats(&a).backplane_reconnects, 0, "a first connection is no reconnect");
    });
}

#[test]
fn with_redis_killed_and_restarted_local_delivery_goes_on_and_the_rest_resumes() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let (a, mut ea) = node(&redis.url());
    let (b, mut eb) = node(&redis.url());
    run(90, async {
        let ((mut wa, _), (mut wb, _)) = room((&a, &mut ea), (&b, &mut eb)).await;
        ready(&redis, [&a, &b], TOPIC_CHANNEL, 2).await;
        a.server().publish_text(b"room", "before", None).unwrap();
        assert_eq!(text_of(ws_recv(&mut wb).await), "before");
        assert_eq!(text_of(ws_recv(&mut wa).await), "before");

        redis.kill();
        until("the loss noticed", 10, || !stats(&a).backplane_connected && !stats(&b).backplane_connected)
            .await;
        for i in 0..20 {
            delivered_locally(a.server(), &mut wa, &format!("during {i}")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        redis = RedisServer::start_on(port);
        let took = ready_within(10, &redis, [&a, &b], TOPIC_CHANNEL, 2).await;
        eprintln!("both servers back {took:?} after Redis restarted");
        a.server().publish_text(b"room", "after", None).unwrap();
        skip_to(&mut wb, "after").await;
        assert_eq!(text_of(ws_recv(&mut wa).await), "after");
        for h in [&a, &b] {
            assert_eq!(stats(h).backplane_reconnects, 1, "{:?}", stats(h));
        }
        assert!(stats(&a).backplane_dropped >= 1, "what was published while out is counted");
    });
}

#[test]
fn a_stopped_redis_never_holds_up_publish_broadcast_or_local_delivery() {
    let redis = RedisServer::start();
    let queue = 64;
    let config_a = Config { backplane_queue: queue, ..config(&redis.url()) };
    let (a, mut ea) = Harness::with_consumer(config_a, &["/chat"], echo_handler());
    let (b, mut eb) = node(&redis.url());
    run(90, async {
        let ((mut wa, _), (mut wb, _)) = room((&a, &mut ea), (&b, &mut eb)).await;
        let (mut echo, _) = client(a.port, &mut ea).await;
        ready(&redis, [&a, &b], TOPIC_CHANNEL, 2).await;

        redis.pause();
        const N: usize = 2000;
        let mut slowest = Duration::ZERO;
        let start = Instant::now();
        for i in 0..N {
            let call = Instant::now();
            assert_eq!(a.server().publish_text(b"room", format!("m{i}"), None).unwrap(), 1);
            slowest = slowest.max(call.elapsed());
        }
        let call = Instant::now();
        a.server().broadcast_text(0, "broadcast").unwrap();
        slowest = slowest.max(call.elapsed());
        eprintln!(
            "{} calls with Redis stopped: {:?} in all, the slowest {slowest:?}",
            N + 1,
            start.elapsed()
        );
        assert!(slowest < Duration::from_millis(250), "a call waited {slowest:?}");

        // Local delivery and the consumer go on.
        receive_in_order(&mut wa, N, &["m"]).await;
        assert_eq!(text_of(ws_recv(&mut wa).await), "broadcast");
        assert_eq!(text_of(ws_recv(&mut echo).await), "broadcast", "a member of the route too");
        ws_echo_text(&mut echo, "still answering").await;
        let s = stats(&a);
        // At most one batch in flight to the stopped Redis and a queue's worth waiting.
        assert!(s.backplane_dropped as usize >= N + 1 - queue - 256, "{s:?}");

        redis.resume();
        // What was on its way when Redis stopped goes out now; then the queue has room.
        until("the queue drained", 20, || {
            let s = stats(&a);
            s.backplane_published + s.backplane_dropped == N as u64 + 1
        })
        .await;
        a.server().publish_text(b"room", "after", None).unwrap();
        let resumed = tokio::time::timeout(Duration::from_secs(20), skip_to(&mut wb, "after")).await;
        assert!(resumed.is_ok(), "nothing after Redis resumed: {:?} {:?}", stats(&a), stats(&b));
    });
}

#[test]
fn a_redis_stopped_past_the_response_timeout_is_lost_and_found_again() {
    let redis = RedisServer::start();
    let (a, mut ea) = node(&redis.url());
    let (b, mut eb) = node(&redis.url());
    run(90, async {
        let ((mut wa, _), (mut wb, _)) = room((&a, &mut ea), (&b, &mut eb)).await;
        ready(&redis, [&a, &b], TOPIC_CHANNEL, 2).await;

        redis.pause();
        let paused = Instant::now();
        let mut i = 0;
        // Local delivery goes on while the publish on its way waits for an answer, and
        // after it has given up.
        while stats(&a).backplane_connected || i < 60 {
            assert!(paused.elapsed() < Duration::from_secs(15), "a stopped Redis not noticed");
            delivered_locally(a.server(), &mut wa, &format!("local {i}")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            i += 1;
        }
        eprintln!("a stopped Redis was noticed within {:?}", paused.elapsed());

        redis.resume();
        let took = ready_within(15, &redis, [&a, &b], TOPIC_CHANNEL, 2).await;
        eprintln!("both servers connected {took:?} after Redis resumed");
        a.server().publish_text(b"room", "after", None).unwrap();
        skip_to(&mut wb, "after").await;
        assert_eq!(stats(&a).backplane_reconnects, 1);
    });
}

/// An envelope as docs/design.md lays it out, written here independently of the core.
fn envelope(version: u8, flags: u8, name: &[u8], name_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut e = vec![version];
    e.extend([9u8; 16]);
    e.push(flags);
    e.extend(0u64.to_be_bytes());
    e.extend(name_len.to_be_bytes());
    e.extend(name);
    e.extend(payload);
    e
}

#[test]
fn malformed_envelopes_are_counted_and_ignored() {
    let redis = RedisServer::start();
    let (a, mut ea) = node(&redis.url());
    run(30, async {
        let (mut wa, ida) = client(a.port, &mut ea).await;
        a.server().subscribe(ida, b"room").unwrap();
        until("subscribed", 15, || stats(&a).backplane_connected && redis.subscribers(TOPIC_CHANNEL) == 1)
            .await;

        let malformed: Vec<(&[u8], Vec<u8>)> = vec![
            (TOPIC_CHANNEL, vec![]),
            (TOPIC_CHANNEL, b"not an envelope".to_vec()),
            (TOPIC_CHANNEL, envelope(2, 0, b"room", 4, b"a later version")),
            (TOPIC_CHANNEL, envelope(0, 0, b"room", 4, b"version 0")),
            (TOPIC_CHANNEL, envelope(1, 0x80, b"room", 4, b"unknown flag")),
            (TOPIC_CHANNEL, envelope(1, 0, b"room", 400, b"name past the end")),
            (TOPIC_CHANNEL, envelope(1, 0, b"", 0, b"empty topic")),
            (TOPIC_CHANNEL, envelope(1, 0, b"room", 4, b"\xff\xfe not UTF-8")),
            (ROUTE_CHANNEL, envelope(1, 1, b"", 0, b"empty path")),
            (ROUTE_CHANNEL, envelope(1, 1, b"/chat", 5, b"\xc3")),
        ];
        for (channel, bytes) in &malformed {
            redis.publish(channel, bytes);
        }
        // Envelopes from another node, well formed: delivered, to a topic and a route.
        redis.publish(TOPIC_CHANNEL, &envelope(1, 0, b"room", 4, b"valid"));
        redis.publish(ROUTE_CHANNEL, &envelope(1, 1 | 2, b"/chat", 5, b"valid route"));
        assert_eq!(ws_recv(&mut wa).await, Message::text("valid"));
        assert_eq!(ws_recv(&mut wa).await, Message::binary(b"valid route".to_vec()));
        nothing_arrives(&mut wa).await;
        let s = stats(&a);
        assert_eq!((s.backplane_malformed, s.backplane_received), (malformed.len() as u64, 2), "{s:?}");
        assert!(s.backplane_connected);
    });
}

#[test]
fn a_backplane_url_is_checked_when_the_server_is_created() {
    let refused = |url: &str| match Server::new(config(url)) {
        Err(roost::Error::InvalidArgument(message)) => message,
        other => panic!("{url}: {other:?}"),
    };
    assert!(refused("http://127.0.0.1:6379").contains("redis://"));
    assert!(refused("127.0.0.1:6379").contains("redis://"));
    assert!(refused("redis://127.0.0.1:6379/not-a-db").contains("database"));
    assert!(refused("redis://127.0.0.1:99999").contains("invalid"));
    let zero = Config { backplane_queue: 0, ..config("redis://127.0.0.1:6379/0") };
    assert!(
        matches!(Server::new(zero), Err(roost::Error::InvalidArgument(m)) if m.contains("backplane_queue"))
    );
    assert!(Server::new(config("redis://user:secret@localhost/3")).is_ok());
    assert!(Server::new(config("REDIS://localhost")).is_ok());
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(roost::ffi::roost_last_error()) }.to_string_lossy().into_owned()
}

#[test]
fn the_c_options_take_a_backplane_url_and_refuse_one_that_is_not() {
    use roost::ffi::*;
    use roost_status::*;

    let redis = RedisServer::start();
    let new_server = |url: Option<&[u8]>, len: usize| {
        let mut o = std::mem::MaybeUninit::<roost_options>::uninit();
        // SAFETY: `o` is a writable roost_options of the size passed.
        let status = unsafe { roost_options_init(o.as_mut_ptr(), std::mem::size_of::<roost_options>()) };
        assert_eq!(status, ROOST_OK);
        // SAFETY: fully written by roost_options_init.
        let mut o = unsafe { o.assume_init() };
        assert_eq!((o.backplane_url, o.backplane_url_len, o.backplane_queue), (std::ptr::null(), 0, 10_000));
        o.backplane_url = url.map_or(std::ptr::null(), <[u8]>::as_ptr);
        o.backplane_url_len = len;
        o.backplane_queue = 0; // the default
        let mut server = std::ptr::null_mut();
        // SAFETY: valid options (the URL, if any, spans its length) and out-pointer.
        let status = unsafe { roost_server_new(&o, &mut server) };
        (status, server)
    };

    let url = redis.url();
    let (status, server) = new_server(Some(url.as_bytes()), url.len());
    assert_eq!(status, ROOST_OK, "{}", last_error());
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_add_route(server, b"/chat".as_ptr(), 5, &mut route), ROOST_OK);
        assert_eq!(roost_server_start(server, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    let connected = || {
        let mut stats = roost_stats::default();
        // SAFETY: a writable roost_stats of the size passed.
        let status = unsafe { roost_server_stats(server, &mut stats, std::mem::size_of::<roost_stats>()) };
        status == ROOST_OK && stats.backplane_connected
    };
    block_on_until(&connected);
    assert_eq!(redis.subscribers(ROUTE_CHANNEL), 1);
    assert_eq!(roost_server_free(server), ROOST_OK);

    // Length 0 is off, whatever the pointer.
    let (status, server) = new_server(Some(b"ignored"), 0);
    assert_eq!(status, ROOST_OK);
    assert_eq!(roost_server_free(server), ROOST_OK);

    let cases: [(Option<&[u8]>, usize, &str); 4] = [
        (Some(b"http://127.0.0.1:6379"), 21, "redis://"),
        (Some(b"redis://127.0.0.1/x"), 19, "database"),
        (None, 5, "backplane_url is NULL"),
        (Some(b"redis://\xff"), 9, "UTF-8"),
    ];
    for (url, len, expected) in cases {
        let (status, server) = new_server(url, len);
        assert_eq!(status, ROOST_INVALID_ARGUMENT, "{url:?}");
        assert!(server.is_null());
        assert!(last_error().contains(expected), "{url:?}: {}", last_error());
    }
}

/// Polls `ready` every 20 ms for up to 15 s.
fn block_on_until(ready: &dyn Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(15), "not connected within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
