//! Messages through a consumer and back: text and binary echo, and fragmented messages
//! delivered as one joined message event.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn text_and_binary_echo_in_order() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(15, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        for i in 0..50 {
            ws_echo_text(&mut ws, &format!("héllo {i} ✓")).await;
        }
        // A binary payload with every byte value, and a large one spanning many reads.
        let all: Vec<u8> = (0..=255u8).collect();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for payload in [all, vec![], big] {
            ws.send(Message::binary(payload.clone())).await.unwrap();
            match ws_recv(&mut ws).await {
                Message::Binary(b) => assert_eq!(b.as_ref(), payload.as_slice()),
                other => panic!("expected binary echo, got {other:?}"),
            }
        }
        // The consumer saw the messages with the right kind.
        let (binary, data) = events.message(id).await;
        assert!(!binary);
        assert_eq!(data, Bytes::from("héllo 0 ✓"));
    });
}

#[test]
fn fragmented_text_is_one_message_event() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        let mut bytes = client_frame(false, OP_TEXT, "Hel".as_bytes());
        bytes.extend(client_frame(false, OP_CONT, "lo, wö".as_bytes()));
        bytes.extend(client_frame(true, OP_CONT, "rld".as_bytes()));
        s.write_all(&bytes).await.unwrap();

        match events.next().await {
            roost::Event::Message { id: i, binary, data, .. } => {
                assert_eq!(i, id);
                assert!(!binary);
                assert_eq!(data, Bytes::from("Hello, wörld"));
            }
            other => panic!("expected one message event, got {other:?}"),
        }
        // The echo comes back as a single unfragmented text frame.
        let f = read_frame(&mut s).await.unwrap().expect("echo frame");
        assert!(f.fin && !f.masked);
        assert_eq!(f.opcode, OP_TEXT);
        assert_eq!(f.payload, "Hello, wörld".as_bytes());
    });
}

#[test]
fn fragmented_binary_with_interleaved_ping_is_one_message_event() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        // Binary in three fragments with a ping between them (control frames may be
        // interleaved with the fragments of a message).
        let mut bytes = client_frame(false, OP_BINARY, &[1, 2, 3]);
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(false, OP_CONT, &[4, 5]));
        bytes.extend(client_frame(true, OP_CONT, &[6]));
        s.write_all(&bytes).await.unwrap();

        let (binary, data) = events.message(id).await;
        assert!(binary);
        assert_eq!(data.as_ref(), &[1, 2, 3, 4, 5, 6]);
        // The ping is answered, and the echo is one binary frame.
        let mut got_pong = false;
        let mut got_echo = false;
        while !(got_pong && got_echo) {
            let f = read_frame(&mut s).await.unwrap().expect("frame");
            match f.opcode {
                OP_PONG => {
                    assert_eq!(f.payload, b"p");
                    got_pong = true;
                }
                OP_BINARY => {
                    assert!(f.fin);
                    assert_eq!(f.payload, vec![1, 2, 3, 4, 5, 6]);
                    got_echo = true;
                }
                op => panic!("unexpected opcode {op}"),
            }
        }
        // No second message event was made from the fragments.
        assert!(events.next_within(std::time::Duration::from_millis(100)).await.is_none());
    });
}

#[test]
fn utf8_character_split_across_fragments_is_accepted() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        let word = "añb".as_bytes(); // ñ is two bytes: split between them
        let mut bytes = client_frame(false, OP_TEXT, &word[..2]);
        bytes.extend(client_frame(true, OP_CONT, &word[2..]));
        s.write_all(&bytes).await.unwrap();
        let (binary, data) = events.message(id).await;
        assert!(!binary);
        assert_eq!(data.as_ref(), word);
    });
}
