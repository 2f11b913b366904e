//! Close codes in both directions: what the client sees in the server's close frame and
//! what the consumer sees in the disconnect event; ids retired after their disconnect.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use roost::{Config, Error};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn client_close_1000_gives_disconnect_1000_with_reason_and_retires_the_id() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        ws_echo_text(&mut ws, "before").await;
        ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "done here".into() })).await.unwrap();
        // The server answers the close with the same code.
        match ws.next().await {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1000),
            other => panic!("expected the close reply, got {other:?}"),
        }
        assert_eq!(events.disconnect(id).await, (1000, "done here".to_string()));
        assert!(matches!(server.send_text(id, Bytes::from_static(b"x")), Err(Error::NotFound)));
        assert!(matches!(server.send_binary(id, Bytes::from_static(b"x")), Err(Error::NotFound)));
        assert!(matches!(server.close(id, 1000, ""), Err(Error::NotFound)));
        assert!(matches!(server.set_reading_paused(id, true), Err(Error::NotFound)));
        assert_eq!(server.connection_count(), 0);
    });
}

#[test]
fn close_frame_without_code_gives_1005() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&client_frame(true, OP_CLOSE, &[])).await.unwrap();
        assert_eq!(read_close(&mut s).await.0, 1005);
        assert_eq!(events.disconnect(id).await.0, 1005);
    });
}

#[test]
fn server_close_4000_reaches_client_then_disconnect_and_sends_while_closing_are_closed() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        // Codes and reasons a server may not send are refused up front.
        assert!(matches!(server.close(id, 1005, ""), Err(Error::InvalidArgument(_))));
        assert!(matches!(server.close(id, 999, ""), Err(Error::InvalidArgument(_))));
        assert!(matches!(server.close(id, 4000, &"r".repeat(124)), Err(Error::InvalidArgument(_))));

        server.send_text(id, Bytes::from_static(b"last words")).unwrap();
        server.close(id, 4000, "bye").unwrap();
        // Closing: further sends and closes are refused with Closed.
        assert!(matches!(server.send_text(id, Bytes::from_static(b"late")), Err(Error::Closed)));
        assert!(matches!(server.close(id, 1000, ""), Err(Error::Closed)));
        // The message queued before the close still goes out, then the close frame.
        assert_eq!(ws_recv(&mut ws).await, Message::text("last words"));
        assert_eq!(ws_expect_close(&mut ws).await, (4000, "bye".to_string()));
        // Reading on lets tungstenite answer the close; the stream then ends.
        while let Some(Ok(_)) = ws.next().await {}
        assert_eq!(events.disconnect(id).await, (4000, "bye".to_string()));
        assert!(matches!(server.send_text(id, Bytes::from_static(b"x")), Err(Error::NotFound)));
    });
}

#[test]
fn stop_closes_every_client_with_1001() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(15, async {
        let mut ids = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..5 {
            let mut ws = ws_connect(port, "/ws").await;
            ids.push(events.connect().await.id);
            readers.push(tokio::spawn(async move { ws_expect_close(&mut ws).await }));
        }
        h.stop(Duration::from_secs(3)).await.unwrap();
        for r in readers {
            assert_eq!(r.await.unwrap().0, 1001);
        }
        let mut seen = Vec::new();
        while seen.len() < ids.len() {
            if let roost::Event::Disconnect { id, code, .. } = events.next().await {
                assert_eq!(code, 1001, "disconnect code of {id} after stop");
                seen.push(id);
            }
        }
        seen.sort();
        assert_eq!(seen, ids);
        assert!(matches!(server.send_text(ids[0], Bytes::from_static(b"x")), Err(Error::Closed)));
        assert!(matches!(server.broadcast_text(0, Bytes::from_static(b"x")), Err(Error::Closed)));
        assert_eq!(server.connection_count(), 0);
        // New clients are not accepted any more.
        assert!(tokio_tungstenite::connect_async(h.url("/ws")).await.is_err());
    });
}

/// Upgrades a raw client, sends `bytes`, and returns (code in the server's close frame,
/// code in the disconnect event).
fn violation(config: Config, bytes: Vec<u8>) -> (u16, u16) {
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&bytes).await.unwrap();
        let (client_code, _) = read_close(&mut s).await;
        let (event_code, _) = events.disconnect(id).await;
        (client_code, event_code)
    })
}

#[test]
fn unmasked_client_frame_closes_with_1002() {
    let bytes = frame(true, 0, OP_TEXT, b"not masked", None);
    assert_eq!(violation(test_config(), bytes), (1002, 1002));
}

#[test]
fn reserved_bits_close_with_1002() {
    for rsv in [4u8, 2, 1] {
        let bytes = frame(true, rsv, OP_TEXT, b"rsv", Some([1, 2, 3, 4]));
        assert_eq!(violation(test_config(), bytes), (1002, 1002), "rsv bits {rsv:03b}");
    }
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let bytes = client_frame(true, OP_TEXT, b"ok \xc3\x28 not");
    assert_eq!(violation(test_config(), bytes), (1007, 1007));
}

#[test]
fn message_over_max_message_size_closes_with_1009() {
    let config = Config { max_message_size: 1024, ..test_config() };
    // One frame of 2000 bytes (frames may be up to 1 MiB here).
    assert_eq!(violation(config.clone(), client_frame(true, OP_BINARY, &[7; 2000])), (1009, 1009));
    // Two fragments, each within the limit, together over it.
    let mut bytes = client_frame(false, OP_BINARY, &[7; 700]);
    bytes.extend(client_frame(true, OP_CONT, &[7; 700]));
    assert_eq!(violation(config.clone(), bytes), (1009, 1009));
    // Exactly at the limit is fine.
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&client_frame(true, OP_BINARY, &[7; 1024])).await.unwrap();
        assert_eq!(events.message(id).await.1.len(), 1024);
    });
}

#[test]
fn frame_over_max_frame_size_closes_with_1009() {
    let config = Config { max_frame_size: Some(512), max_message_size: 1 << 20, ..test_config() };
    assert_eq!(violation(config, client_frame(true, OP_BINARY, &[9; 1000])), (1009, 1009));
}

#[test]
fn tcp_drop_without_close_gives_1006_and_retires_the_id() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&client_frame(true, OP_TEXT, b"hi")).await.unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"hi");
        drop(s);
        assert_eq!(events.disconnect(id).await.0, 1006);
        assert!(matches!(server.send_text(id, Bytes::from_static(b"x")), Err(Error::NotFound)));
    });
}

#[test]
fn client_ws_drop_mid_message_gives_1006() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        // Half a frame, then the socket goes away.
        let f = client_frame(true, OP_BINARY, &[1; 100]);
        s.write_all(&f[..40]).await.unwrap();
        s.shutdown().await.unwrap();
        drop(s);
        assert_eq!(events.disconnect(id).await.0, 1006);
    });
}

#[test]
fn ws_client_sees_echo_before_its_own_close() {
    // A close right after data: the data is delivered as a message event first.
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        ws.send(Message::text("one")).await.unwrap();
        ws.send(Message::Close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() }))).await.unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"one");
        assert_eq!(events.disconnect(id).await, (1001, String::new()));
    });
}

#[test]
fn client_that_never_answers_a_close_is_dropped_after_close_timeout() {
    let config = Config { close_timeout: Duration::from_millis(300), ..test_config() };
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        server.close(id, 4000, "bye").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(read_close(&mut s).await, (4000, "bye".to_string()));
        // No reply: the server gives up after close_timeout and reports its own code.
        assert_eq!(events.disconnect(id).await, (4000, "bye".to_string()));
        let after = started.elapsed();
        assert!(after >= Duration::from_millis(250), "gave up after {after:?}");
        assert!(after < Duration::from_secs(2), "took {after:?}");
    });
}

#[test]
fn stop_drops_clients_that_do_not_answer_within_grace_with_1006() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async {
        let _silent = raw_upgrade(port, "/ws").await;
        let silent_id = events.connect().await.id;
        let mut ws = ws_connect(port, "/ws").await;
        let ws_id = events.connect().await.id;
        let reader = tokio::spawn(async move { ws_expect_close(&mut ws).await });
        let started = std::time::Instant::now();
        h.stop(Duration::from_millis(300)).await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2500), "stop took {took:?} with a 300 ms grace");
        assert_eq!(reader.await.unwrap().0, 1001);
        let mut codes = std::collections::HashMap::new();
        while codes.len() < 2 {
            if let roost::Event::Disconnect { id, code, .. } = events.next().await {
                assert!(codes.insert(id, code).is_none(), "two disconnect events for {id}");
            }
        }
        assert_eq!(codes[&ws_id], 1001);
        assert_eq!(codes[&silent_id], 1006);
        // Exactly one disconnect each: nothing more arrives.
        assert!(events.next_within(Duration::from_millis(200)).await.is_none());
    });
}
