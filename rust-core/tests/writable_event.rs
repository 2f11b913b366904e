//! After a send is refused with WouldBlock, the consumer hears a writable event for
//! that connection once the client reads, and the next send succeeds.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use roost::{Config, Error, Event};

const LIMIT: usize = 64 << 10;
const MESSAGE: usize = 16 << 10;

fn payload(seq: usize) -> Bytes {
    let mut p = vec![0x5a; MESSAGE];
    p[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    Bytes::from(p)
}

#[test]
fn writable_event_follows_would_block_once_the_client_reads() {
    let config = Config { outbound_queue_bytes: LIMIT, ..test_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(20, async move {
        let mut client = raw_upgrade_small_rcvbuf(port, "/ws", 16 << 10).await;
        let id = events.connect().await.id;

        // Fill queue and socket until sends are refused and stay refused with no
        // writable event following on its own (the kernel's buffers are full and the
        // client does not read). A send may still succeed after a refusal while the queue
        // drains to above half its limit, which is not worth a writable event.
        let mut sent = 0usize;
        let mut settled = false;
        for _round in 0..100 {
            loop {
                match server.send_binary(id, payload(sent)) {
                    Ok(()) => sent += 1,
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("send: {e:?}"),
                }
                assert!(sent < 4096, "64 MiB accepted for a client that does not read");
            }
            match events.next_within(Duration::from_millis(200)).await {
                Some(Event::Writable { id: w }) if w == id => continue, // room again: fill more
                Some(other) => panic!("unexpected event {other:?}"),
                None => {}
            }
            match server.send_binary(id, payload(sent)) {
                Ok(()) => sent += 1,
                Err(Error::WouldBlock) => {
                    settled = true;
                    break;
                }
                Err(e) => panic!("send: {e:?}"),
            }
        }
        assert!(settled, "sends kept being accepted for a client that does not read");
        // The client starts reading everything.
        let (count_tx, mut count) = tokio::sync::watch::channel(0usize);
        let reader = tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let f = read_frame(&mut client).await.expect("read").expect("frame");
                assert_eq!(f.opcode, OP_BINARY);
                assert_eq!(f.payload.len(), MESSAGE);
                let seq = u64::from_be_bytes(f.payload[..8].try_into().unwrap()) as usize;
                assert_eq!(seq, n, "frame order");
                n += 1;
                let _ = count_tx.send(n);
            }
        });

        events.writable(id).await;
        server.send_binary(id, payload(sent)).expect("send after writable event");
        sent += 1;
        count.wait_for(|&n| n == sent).await.expect("reader ended early");
        assert!(!reader.is_finished(), "reader failed");
        reader.abort();
    });
}

#[test]
fn would_block_is_reported_per_connection_and_a_single_big_message_still_goes_out() {
    let config = Config { outbound_queue_bytes: LIMIT, ..test_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(20, async move {
        let _sleeper = raw_upgrade_small_rcvbuf(port, "/ws", 16 << 10).await;
        let sleeper = events.connect().await.id;
        let mut ws = ws_connect(port, "/ws").await;
        let reader = events.connect().await.id;
        let mut refused = false;
        for i in 0..4096 {
            match server.send_binary(sleeper, payload(i)) {
                Ok(()) => {}
                Err(Error::WouldBlock) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(refused);
        // The other connection is unaffected, and a message bigger than the whole limit
        // is accepted when its queue is empty.
        let big = Bytes::from(vec![3u8; 4 * LIMIT]);
        server.send_binary(reader, big.clone()).unwrap();
        match ws_recv(&mut ws).await {
            tokio_tungstenite::tungstenite::Message::Binary(b) => assert_eq!(b, big),
            other => panic!("{other:?}"),
        }
    });
}
