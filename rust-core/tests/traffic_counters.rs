//! The traffic counters: whole messages and payload bytes each way (an echo counts
//! each message once in and once out, fragments as one; a broadcast or publish counts
//! once per recipient), and upgrade refusals once each under their status, through
//! `Server::stats` and `roost_server_stats`.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use roost::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn an_echo_counts_each_message_once_each_way_with_its_payload_bytes() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let sizes = [0usize, 1, 125, 126, 4096, 70_000];
        for &size in &sizes {
            ws_echo_text(&mut ws, &"x".repeat(size)).await;
            ws.send(Message::binary(vec![7u8; size])).await.unwrap();
            assert_eq!(ws_recv(&mut ws).await.into_data().len(), size);
        }
        // A message in three fragments is one message.
        let mut raw = raw_upgrade(port, "/ws").await;
        raw.write_all(&client_frame(false, OP_TEXT, b"frag")).await.unwrap();
        raw.write_all(&client_frame(false, OP_CONT, b"men")).await.unwrap();
        raw.write_all(&client_frame(true, OP_CONT, b"ted")).await.unwrap();
        assert_eq!(read_frame(&mut raw).await.unwrap().unwrap().payload, b"fragmented");

        let messages = 2 * sizes.len() as u64 + 1;
        let bytes = 2 * sizes.iter().sum::<usize>() as u64 + 10;
        let stats =
            stats_when(&server, |s| s.messages_sent == messages && s.messages_received == messages).await;
        assert_eq!((stats.messages_received, stats.bytes_received), (messages, bytes));
        assert_eq!((stats.messages_sent, stats.bytes_sent), (messages, bytes));
        // Pings and close frames are not messages.
        ws.send(Message::Ping(b"ping".to_vec().into())).await.unwrap();
        ws.close(None).await.unwrap();
        let id = events.connect().await.id;
        events.disconnect(id).await;
        let after = server.stats();
        assert_eq!((after.messages_received, after.messages_sent), (messages, messages), "{after:?}");
    });
}

#[test]
fn a_broadcast_or_publish_counts_once_per_recipient_and_a_refused_send_not_at_all() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/ws"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        const K: usize = 5;
        let mut clients = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..K {
            clients.push(ws_connect(port, "/ws").await);
            ids.push(events.connect().await.id);
        }
        let payload = "b".repeat(100);
        assert_eq!(server.broadcast_text(0, &payload).unwrap(), K);
        let stats = server.stats();
        assert_eq!((stats.messages_sent, stats.bytes_sent), (K as u64, (K * 100) as u64));
        for id in &ids {
            server.subscribe(*id, b"news").unwrap();
        }
        assert_eq!(server.publish_binary(b"news", [1u8; 10], Some(ids[0])).unwrap(), K - 1);
        assert_eq!(server.publish_binary(b"nobody", [1u8; 10], None).unwrap(), 0);
        let stats = server.stats();
        assert_eq!(stats.messages_sent, (2 * K - 1) as u64);
        assert_eq!(stats.bytes_sent, (K * 100 + (K - 1) * 10) as u64);
        for ws in &mut clients {
            assert_eq!(ws_recv(ws).await.into_data().len(), 100);
        }
        // A send to a closing connection is refused, and not counted.
        server.close(ids[0], 1000, "").unwrap();
        assert!(server.send_text(ids[0], "late").is_err());
        assert_eq!(server.stats().messages_sent, (2 * K - 1) as u64);
        assert_eq!(server.stats().messages_received, 0);
    });
}

/// The status of the answer to `request` (read to the end of the stream).
async fn refusal(port: u16, request: &[u8]) -> u16 {
    raw_exchange_allow_reset(port, request).await.status
}

/// The refusal counts of a `Stats` or a `roost_stats` (the same names), in the order
/// 400, 403, 404, 426, 431, 503, other.
macro_rules! refusals {
    ($stats:expr) => {{
        let s = &$stats;
        [
            s.upgrades_refused_400,
            s.upgrades_refused_403,
            s.upgrades_refused_404,
            s.upgrades_refused_426,
            s.upgrades_refused_431,
            s.upgrades_refused_503,
            s.upgrades_refused_other,
        ]
    }};
}

#[test]
fn each_refused_upgrade_is_counted_once_under_its_status() {
    let config =
        Config { allowed_origins: vec!["http://localhost:8080".into()], max_connections: 1, ..test_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        let key = format!("Sec-WebSocket-Key: {KEY}\r\n");
        let head = |version: &str, extra: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: {version}\r\n{extra}\r\n"
            )
        };
        let mut too_many = head("13", &key);
        too_many.truncate(too_many.len() - 2);
        for i in 0..80 {
            too_many.push_str(&format!("X-H{i}: v\r\n"));
        }
        too_many.push_str("\r\n");
        let cases = [
            (head("13", ""), 400, 0),
            (head("13", &format!("{key}Origin: https://evil.example\r\n")), 403, 1),
            (upgrade_request(port, "/nowhere"), 404, 2),
            (head("8", &key), 426, 3),
            (too_many, 431, 4),
        ];
        let mut expected = [0u64; 7];
        for (request, status, slot) in cases {
            assert_eq!(refusal(port, request.as_bytes()).await, status);
            expected[slot] += 1;
            assert_eq!(refusals!(server.stats()), expected, "after the {status}");
        }
        // Over max_connections: 503.
        let _first = ws_connect(port, "/ws").await;
        events.connect().await;
        assert_eq!(refusal(port, upgrade_request(port, "/ws").as_bytes()).await, 503);
        expected[5] += 1;
        assert_eq!(refusals!(server.stats()), expected);

        // Requests that did not ask for an upgrade are answered, not counted: a plain
        // GET of the route (426) or of another path (404).
        assert_eq!(refusal(port, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await, 426);
        assert_eq!(refusal(port, b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await, 404);
        assert_eq!(refusals!(server.stats()), expected);
        // What could not be parsed could have been an upgrade: counted.
        assert_eq!(refusal(port, b"\x16\x03\x01\x00\xa5 not http\r\n\r\n").await, 400);
        expected[0] += 1;
        assert_eq!(refusals!(server.stats()), expected);
    });
}

#[test]
fn a_socket_refused_over_max_pending_handshakes_is_counted_as_a_503() {
    let config = Config { max_pending_handshakes: 1, ..test_config() };
    let h = Harness::new(config, &["/ws"]);
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        // A silent socket holds the one place (for the handshake timeout).
        let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // Until the server has accepted it, a request may still take the place and
        // be answered 404; once it has, the next gets 503 without being read.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut answered_404 = 0;
        loop {
            match refusal(port, upgrade_request(port, "/nowhere").as_bytes()).await {
                503 => break,
                404 => answered_404 += 1,
                other => panic!("answered {other}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "never refused");
        }
        let stats = server.stats();
        assert_eq!((stats.upgrades_refused_503, stats.upgrades_refused_404), (1, answered_404));
    });
}

#[test]
fn roost_server_stats_reports_the_counters_through_c() {
    use roost::ffi::*;
    use roost_status::ROOST_OK;
    let mut s = std::ptr::null_mut();
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: default options, valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_new(std::ptr::null(), &mut s), ROOST_OK);
        assert_eq!(roost_server_add_route(s, b"/ws".as_ptr(), 3, &mut route), ROOST_OK);
        assert_eq!(roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ws = block_on(&rt, 10, ws_connect(port, "/ws"));
    block_on(&rt, 10, ws.send(Message::text("hello"))).unwrap();
    let id = poll_until(s, |e| (e.kind == roost_event_kind::ROOST_EVENT_TEXT).then_some(e.connection));
    // SAFETY: a valid buffer of its length.
    assert_eq!(unsafe { roost_connection_send_text(s, id, b"hello!".as_ptr(), 6) }, ROOST_OK);
    assert_eq!(ws_recv_on(&rt, &mut ws).into_data().as_ref(), b"hello!");
    assert_eq!(block_on(&rt, 10, refusal(port, upgrade_request(port, "/nowhere").as_bytes())), 404);

    let mut stats = std::mem::MaybeUninit::<roost_stats>::uninit();
    // SAFETY: `stats` is a writable roost_stats of the size passed, which the call fills.
    let stats = unsafe {
        assert_eq!(roost_server_stats(s, stats.as_mut_ptr(), size_of::<roost_stats>()), ROOST_OK);
        stats.assume_init()
    };
    assert_eq!((stats.messages_received, stats.bytes_received), (1, 5));
    assert_eq!((stats.messages_sent, stats.bytes_sent), (1, 6));
    assert_eq!(refusals!(stats), [0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(roost_server_free(s), ROOST_OK);
}

fn ws_recv_on(rt: &tokio::runtime::Runtime, ws: &mut Ws) -> Message {
    block_on(rt, 10, ws_recv(ws))
}
