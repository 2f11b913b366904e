//! A client that sends faster than the consumer polls is held back by TCP: the core
//! reads at most `inbound_queue_depth` unpolled messages, then stops reading, so the
//! client's writes stop completing and the server's memory stays bounded; once the
//! consumer polls, every message arrives, in order.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use roost::{Config, Event};
use tokio::io::AsyncWriteExt;

const MESSAGE: usize = 32 << 10;
const COUNT: usize = 1024; // 32 MiB in all

fn payload(i: usize) -> Vec<u8> {
    let mut p = vec![(i % 253) as u8; MESSAGE];
    p[..8].copy_from_slice(&(i as u64).to_be_bytes());
    p
}

#[test]
fn flooding_client_is_blocked_until_the_consumer_polls_then_everything_arrives_in_order() {
    let config = Config { inbound_queue_depth: 4, ..test_config() };
    let mut h = Harness::new(config, &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Phase 1: no consumer polls. The client writes until TCP stops it.
    let progress = Arc::new(AtomicUsize::new(0));
    let (writer, written_before_stall, rss_growth) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_send_buffer_size(64 << 10).unwrap();
            let s = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
            let mut s = raw_upgrade_on(s, port, "/ws").await;
            let rss_before = rss_bytes();
            let counter = progress.clone();
            let writer = tokio::spawn(async move {
                for i in 0..COUNT {
                    s.write_all(&client_frame(true, OP_BINARY, &payload(i))).await.expect("write");
                    counter.store(i + 1, Ordering::Release);
                }
                s // keep the connection open until the test ends
            });
            // Wait until the writes stop completing for 500 ms.
            let mut last = (0, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = progress.load(Ordering::Acquire);
                assert!(
                    now < COUNT,
                    "all {COUNT} messages (32 MiB) were written: nothing held the client back"
                );
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() >= Duration::from_millis(500) {
                    break;
                }
            }
            let growth = rss_bytes().saturating_sub(rss_before);
            (writer, last.0, growth)
        })
        .await
        .expect("phase 1 timed out")
    });
    eprintln!(
        "client blocked after {written_before_stall} messages ({} KiB); RSS +{} KiB",
        written_before_stall * MESSAGE / 1024,
        rss_growth / 1024
    );
    assert!(
        written_before_stall * MESSAGE < 16 * MIB,
        "client wrote {written_before_stall} messages before blocking"
    );
    assert!(rss_growth < 32 * MIB, "RSS grew by {} MiB while the consumer did not poll", rss_growth / MIB);
    assert_eq!(server.connection_count(), 1);

    // Phase 2: the consumer starts polling; every message arrives in order and the writer
    // finishes.
    let mut events = h.start_consumer(record_handler());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            let id = events.connect().await.id;
            for i in 0..COUNT {
                match events.next().await {
                    Event::Message { id: got, binary, data, .. } => {
                        assert_eq!(got, id);
                        assert!(binary);
                        assert_eq!(data.len(), MESSAGE);
                        let seq = u64::from_be_bytes(data[..8].try_into().unwrap()) as usize;
                        assert_eq!(seq, i, "message order");
                        assert_eq!(data[MESSAGE - 1], (i % 253) as u8);
                    }
                    other => panic!("expected message {i}, got {other:?}"),
                }
            }
            let s = writer.await.expect("writer");
            drop(s);
            assert_eq!(events.disconnect(id).await.0, 1006);
        })
        .await
        .expect("phase 2 timed out")
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn paused_reading_holds_messages_back_until_resumed() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&client_frame(true, OP_TEXT, b"first")).await.unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"first");
        server.set_reading_paused(id, true).unwrap();
        s.write_all(&client_frame(true, OP_TEXT, b"second")).await.unwrap();
        // Nothing is delivered while paused.
        assert!(
            events.next_within(Duration::from_millis(300)).await.is_none(),
            "message delivered while paused"
        );
        server.set_reading_paused(id, false).unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"second");
    });
}

#[test]
fn a_peer_that_hangs_up_while_held_back_is_noticed_and_its_messages_still_arrive() {
    // No consumer polls at first: after `inbound_queue_depth` messages the core stops
    // reading. The client then drops TCP; the core must notice within about a second
    // and still deliver what was sent before the drop.
    let config = roost::Config { inbound_queue_depth: 2, ..test_config() };
    let h = Harness::new(config, &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut raw = raw_upgrade(port, "/ws").await;
        for i in 0..10u8 {
            raw.write_all(&client_frame(true, 0x1, &[b'a' + i])).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(raw);
        // Nothing polls: only the held-back check can end the connection.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while server.connection_count() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "hang-up behind a full queue not noticed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut events = Vec::new();
        while server.poll(&mut events, 64) > 0 {}
        let texts: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                roost::Event::Message { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 10, "every message sent before the drop arrives: {events:?}");
        assert!(matches!(events.last(), Some(roost::Event::Disconnect { code: 1006, .. })));
    });
}
