//! TLS (wss://): a real TLS client trusting a CA made for the run. Echo, close codes,
//! limits, keepalive, backpressure, broadcast, publish and shutdown work as over TCP;
//! plaintext, garbage and handshakes cut short or too slow are closed and counted; a
//! TLS client on a plain port is answered 400 at once; a bad certificate or key is
//! refused when the server is made.

mod common;

use std::time::{Duration, Instant};

use common::tls::*;
use common::*;
use futures_util::SinkExt;
use roost::{Config, Error, Event, Server, TlsIdentity};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn tls_config() -> Config {
    Config { tls: Some(identity()), ..test_config() }
}

/// The first flight of a real TLS client: its ClientHello.
fn client_hello() -> Vec<u8> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut client = ClientConnection::new(client_config(), name).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16, "a handshake record");
    hello
}

/// Writes `bytes` (all or as much as the server takes), then reads until the server
/// closes; returns what it sent. Panics if the server does not close within 5 s.
async fn send_and_read_to_close(port: u16, bytes: &[u8], then_half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = s.write_all(bytes).await;
    if then_half_close {
        let _ = s.shutdown().await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not close the connection");
    answer
}

/// Waits until the server has counted `n` failed TLS handshakes.
async fn failures_reach(server: &Server, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().tls_handshakes_failed < n {
        assert!(Instant::now() < deadline, "failures: {}", server.stats().tls_handshakes_failed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.stats().tls_handshakes_failed, n);
}

#[test]
fn echo_over_tls_with_a_client_trusting_the_test_ca() {
    let (h, mut events) = Harness::echo(tls_config(), &["/ws"]);
    let port = h.port;
    run(20, async move {
        let mut ws = wss_connect(port, "/ws?room=1").await;
        let info = events.connect().await;
        assert_eq!(info.query(), b"room=1");
        for i in 0..20 {
            ws_echo_text(&mut ws, &format!("hello {i}")).await;
        }
        // Larger than a TLS record (16 KiB) and than the socket takes at once.
        let big: Vec<u8> = (0..700_000u32).map(|i| i as u8).collect();
        ws.send(Message::binary(big.clone())).await.unwrap();
        match ws_recv(&mut ws).await {
            Message::Binary(data) => assert!(data[..] == big[..], "the big message came back changed"),
            other => panic!("expected binary, got {other:?}"),
        }
        ws.close(Some(CloseFrame { code: CloseCode::from(4001), reason: "bye".into() })).await.unwrap();
        assert_eq!(events.disconnect(info.id).await, (4001, "bye".to_string()));
    });
    assert_eq!(h.server().stats().tls_handshakes_failed, 0);
}

#[test]
fn server_close_limits_and_keepalive_over_tls() {
    let config = Config {
        max_message_size: 1000,
        ping_interval: Some(Duration::from_millis(100)),
        ping_timeout: Duration::from_secs(5),
        ..tls_config()
    };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        // Keepalive: pings arrive (the client answers them as it reads).
        let mut ws = wss_connect(port, "/ws").await;
        let first = events.connect().await.id;
        let mut pings = 0;
        while pings < 2 {
            if let Some(Ok(Message::Ping(_))) = futures_util::StreamExt::next(&mut ws).await {
                pings += 1;
            }
        }
        // The server closes with a code and reason of its choosing.
        server.close(first, 4002, "done").unwrap();
        assert_eq!(ws_expect_close(&mut ws).await, (4002, "done".to_string()));
        assert_eq!(events.disconnect(first).await.0, 4002);

        // A message over the limit closes with 1009.
        let mut ws = wss_connect(port, "/ws").await;
        let second = events.connect().await.id;
        ws.send(Message::binary(vec![0u8; 1001])).await.unwrap();
        assert_eq!(ws_expect_close(&mut ws).await.0, 1009);
        assert_eq!(events.disconnect(second).await.0, 1009);
    });
}

#[test]
fn backpressure_over_tls_counts_bytes_until_they_are_on_the_wire() {
    let config = Config { outbound_queue_bytes: 256 << 10, ..tls_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(30, async move {
        let mut ws = wss_connect(port, "/ws").await;
        let id = events.connect().await.id;
        // The client reads nothing yet: sends fill the socket, the TLS session and the
        // queue, then give WouldBlock.
        let chunk = vec![b'x'; 32 << 10];
        let mut sent = 0usize;
        loop {
            match server.send_binary(id, &chunk) {
                Ok(()) => sent += 1,
                Err(Error::WouldBlock) => break,
                Err(err) => panic!("send: {err}"),
            }
            assert!(sent < 10_000, "sends never gave WouldBlock");
        }
        let reader = tokio::spawn(async move {
            for _ in 0..sent {
                match ws_recv(&mut ws).await {
                    Message::Binary(data) => assert_eq!(data.len(), 32 << 10),
                    other => panic!("expected binary, got {other:?}"),
                }
            }
            ws
        });
        events.writable(id).await;
        let mut ws = reader.await.unwrap();
        server.send_text(id, "after").unwrap();
        assert_eq!(ws_recv(&mut ws).await, Message::text("after"));
    });
}

#[test]
fn broadcast_and_publish_over_tls_reach_every_tls_client() {
    let (h, mut events) = Harness::with_consumer(tls_config(), &["/ws"], record_handler());
    let (port, route, server) = (h.port, h.routes[0], h.server().clone());
    run(20, async move {
        let mut clients = Vec::new();
        for _ in 0..3 {
            let ws = wss_connect(port, "/ws").await;
            clients.push((ws, events.connect().await.id));
        }
        for i in 0..50 {
            assert_eq!(server.broadcast_text(route, format!("b{i}")).unwrap(), 3);
        }
        let (first, second) = (clients[0].1, clients[1].1);
        server.subscribe(first, b"room").unwrap();
        server.subscribe(second, b"room").unwrap();
        assert_eq!(server.publish_binary(b"room", [1, 2, 3], Some(second)).unwrap(), 1);
        assert_eq!(server.publish_text(b"room", "all", None).unwrap(), 2);
        for (ws, id) in &mut clients {
            for i in 0..50 {
                assert_eq!(ws_recv(ws).await, Message::text(format!("b{i}")));
            }
            if *id == first {
                assert_eq!(ws_recv(ws).await, Message::binary(vec![1, 2, 3]));
            }
            if *id == first || *id == second {
                assert_eq!(ws_recv(ws).await, Message::text("all"));
            }
        }
    });
    assert_eq!(h.server().stats().tls_handshakes_failed, 0);
}

#[test]
fn graceful_stop_over_tls_closes_every_client_with_1001() {
    let (h, mut events) = Harness::with_consumer(tls_config(), &["/ws"], record_handler());
    let port = h.port;
    run(20, async {
        let mut a = wss_connect(port, "/ws").await;
        let mut b = wss_connect(port, "/ws").await;
        let (ia, ib) = (events.connect().await.id, events.connect().await.id);
        let closing =
            tokio::spawn(async move { (ws_expect_close(&mut a).await, ws_expect_close(&mut b).await) });
        h.stop(Duration::from_secs(3)).await.unwrap();
        let (ca, cb) = closing.await.unwrap();
        assert_eq!((ca.0, cb.0), (1001, 1001));
        let mut codes = std::collections::HashMap::new();
        while codes.len() < 2 {
            if let Event::Disconnect { id, code, .. } = events.next().await {
                codes.insert(id, code);
            }
        }
        assert_eq!((codes[&ia], codes[&ib]), (1001, 1001));
    });
}

#[test]
fn plaintext_garbage_and_cut_short_handshakes_are_closed_and_counted() {
    let (h, mut events) = Harness::echo(tls_config(), &["/ws"]);
    let (port, server) = (h.port, h.server().clone());
    run(30, async move {
        // A plain ws:// client on the TLS port: no HTTP answer, closed.
        let answer = send_and_read_to_close(port, upgrade_request(port, "/ws").as_bytes(), false).await;
        assert!(!answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
        failures_reach(&server, 1).await;

        // Garbage, and garbage that starts like a TLS record.
        send_and_read_to_close(port, b"\x00\xff garbage \r\n\r\n", false).await;
        failures_reach(&server, 2).await;
        send_and_read_to_close(port, b"\x16\x03\x01\x00\x05hello and more", false).await;
        failures_reach(&server, 3).await;

        // Half a ClientHello, then the client's end of the stream.
        let hello = client_hello();
        send_and_read_to_close(port, &hello[..hello.len() / 2], true).await;
        failures_reach(&server, 4).await;

        // A client that connects and leaves at once.
        drop(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        failures_reach(&server, 5).await;

        // None of them became a connection, and the server serves on.
        let mut ws = wss_connect(port, "/ws").await;
        ws_echo_text(&mut ws, "still here").await;
        assert!(matches!(events.next().await, Event::Connect(_)));
    });
    assert_eq!(h.server().stats().tls_handshakes_failed, 5);
}

#[test]
fn the_handshake_timeout_covers_tls_and_the_upgrade_together() {
    let config = Config { handshake_timeout: Duration::from_millis(600), ..tls_config() };
    let (h, _events) = Harness::echo(config, &["/ws"]);
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        // Silent: closed at the deadline, counted as a failed TLS handshake.
        let started = Instant::now();
        send_and_read_to_close(port, b"", false).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(3), "{waited:?}");
        failures_reach(&server, 1).await;

        // Slow TLS, then a slow request: each step is within the timeout, the two
        // together are not, so no upgrade.
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(client_config()).connect(name, tcp).await.unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let _ = tls.write_all(upgrade_request(port, "/ws").as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await.unwrap();
        assert!(answer.is_empty(), "upgraded after the deadline: {:?}", String::from_utf8_lossy(&answer));
        assert_eq!(server.stats().tls_handshakes_failed, 1, "the TLS part succeeded");
    });
}

#[test]
fn a_tls_client_on_a_plain_port_gets_400_at_once() {
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let started = Instant::now();
        let answer = parse_http(&send_and_read_to_close(port, &client_hello(), false).await);
        assert_eq!(answer.status, 400, "{answer:?}");
        assert!(answer.body.contains("TLS"), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "it waited out the handshake timeout");
        // And a real TLS client fails its handshake instead of hanging.
        assert!(tls_connect(port).await.is_err());
    });
    assert_eq!(h.server().stats().tls_handshakes_failed, 0, "no TLS on this server");
}

#[test]
fn a_bad_certificate_or_key_is_refused_naming_which_and_why() {
    let pki = pki();
    let (chain, key) = (pki.chain_pem.as_bytes(), pki.key_pem.as_bytes());
    let refused = |chain: &[u8], key: &[u8]| match TlsIdentity::from_pem(chain, key) {
        Err(Error::InvalidArgument(message)) => message,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert!(refused(b"not pem", key).contains("certificate chain has no CERTIFICATE"));
    assert!(refused(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", key)
        .contains("certificate chain is not valid PEM"));
    let bad_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(refused(bad_der.as_bytes(), key).contains("not usable"));
    assert!(refused(chain, b"").contains("private key has no PRIVATE KEY"));
    assert!(refused(chain, chain).contains("private key has no PRIVATE KEY"));
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    assert!(refused(chain, other_key.as_bytes()).contains("does not belong"));
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(refused(chain, encrypted.as_bytes()).contains("encrypted"));

    let good = TlsIdentity::from_pem(chain, key).unwrap();
    assert_eq!(good.certificate_chain_pem(), chain);
    let shown = format!("{:?}", Config { tls: Some(good), ..Config::default() });
    let key_body = pki.key_pem.lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "Debug shows the key: {shown}");
}

#[test]
fn a_plain_and_a_tls_server_each_reach_only_their_own_clients() {
    let (plain, mut plain_events) = Harness::with_consumer(test_config(), &["/ws"], record_handler());
    let (tls, mut tls_events) = Harness::with_consumer(tls_config(), &["/ws"], record_handler());
    let (plain_port, tls_port) = (plain.port, tls.port);
    let (plain_server, tls_server) = (plain.server().clone(), tls.server().clone());
    run(20, async move {
        let mut ws = ws_connect(plain_port, "/ws").await;
        let mut wss = wss_connect(tls_port, "/ws").await;
        plain_events.connect().await;
        tls_events.connect().await;
        assert_eq!(tls_server.broadcast_text(0, "to tls").unwrap(), 1);
        assert_eq!(plain_server.broadcast_text(0, "to plain").unwrap(), 1);
        assert_eq!(ws_recv(&mut wss).await, Message::text("to tls"));
        assert_eq!(ws_recv(&mut ws).await, Message::text("to plain"));
    });
}
