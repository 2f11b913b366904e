//! Topics: subscribe, unsubscribe, publish with and without an excluded connection,
//! subscriber counts, a connection's topics, publishing from many threads, the end of
//! a connection, bad topics, and both slow-consumer policies.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use roost::{Config, SlowConsumer, MAX_TOPIC_LENGTH};
use tokio_tungstenite::tungstenite::Message;

/// Connects `n` clients to /t and returns them with their connection ids.
async fn clients(port: u16, events: &mut Events, n: usize) -> Vec<(Ws, u64)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ws = ws_connect(port, "/t").await;
        out.push((ws, events.connect().await.id));
    }
    out
}

async fn nothing_arrives(ws: &mut Ws) {
    let got = tokio::time::timeout(Duration::from_millis(150), ws.next()).await;
    assert!(got.is_err(), "received {got:?}");
}

#[test]
fn publish_reaches_the_subscribers_of_its_topic_except_the_excluded_one() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        let mut c = clients(port, &mut events, 3).await;
        let (a, b, outsider) = (c[0].1, c[1].1, c[2].1);
        assert!(server.subscribe(a, b"room").unwrap());
        assert!(!server.subscribe(a, b"room").unwrap(), "a second subscribe is not new");
        assert!(server.subscribe(b, b"room").unwrap());
        assert!(server.subscribe(b, b"other").unwrap());
        assert_eq!(server.subscriber_count(b"room").unwrap(), 2);
        assert_eq!(server.subscriber_count(b"nobody").unwrap(), 0);
        let topics: Vec<Vec<u8>> = server.topics_of(b).unwrap().iter().map(|t| t.to_vec()).collect();
        assert_eq!(topics, [b"room".to_vec(), b"other".to_vec()]);
        assert!(server.topics_of(outsider).unwrap().is_empty());

        assert_eq!(server.publish_text(b"room", "to all", None).unwrap(), 2);
        assert_eq!(server.publish_binary(b"room", [1, 2, 3], Some(a)).unwrap(), 1, "a is excluded");
        assert_eq!(ws_recv(&mut c[0].0).await, Message::text("to all"));
        assert_eq!(ws_recv(&mut c[1].0).await, Message::text("to all"));
        assert_eq!(ws_recv(&mut c[1].0).await, Message::binary(vec![1, 2, 3]));
        nothing_arrives(&mut c[0].0).await;
        nothing_arrives(&mut c[2].0).await;

        assert!(server.unsubscribe(a, b"room").unwrap());
        assert!(!server.unsubscribe(a, b"room").unwrap(), "not a subscriber any more");
        assert_eq!(server.publish_text(b"room", "after", None).unwrap(), 1);
        assert_eq!(ws_recv(&mut c[1].0).await, Message::text("after"));
        nothing_arrives(&mut c[0].0).await;
        // Excluding the only subscriber reaches no one, and a topic nobody joined is a no-op.
        assert_eq!(server.publish_text(b"other", "x", Some(b)).unwrap(), 0);
        assert_eq!(server.publish_text(b"empty", "x", None).unwrap(), 0);
        nothing_arrives(&mut c[1].0).await;
    });
}

#[test]
fn publishes_and_direct_sends_reach_each_recipient_in_the_order_made() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        let c = clients(port, &mut events, 4).await;
        for (_, id) in &c {
            server.subscribe(*id, b"feed").unwrap();
        }
        const N: usize = 300;
        let ids: Vec<u64> = c.iter().map(|(_, id)| *id).collect();
        for i in 0..N {
            // Alternate shared publishes with a direct message to each recipient.
            if i % 3 == 0 {
                for id in &ids {
                    server.send_text(*id, format!("{i}")).unwrap();
                }
            } else {
                assert_eq!(server.publish_text(b"feed", format!("{i}"), None).unwrap(), ids.len());
            }
        }
        for (mut ws, _) in c {
            for i in 0..N {
                assert_eq!(ws_recv(&mut ws).await, Message::text(format!("{i}")));
            }
        }
    });
}

#[test]
fn publishing_from_many_threads_at_once_keeps_each_thread_s_order() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    const THREADS: usize = 4;
    const EACH: usize = 500;
    run(30, async move {
        let c = clients(port, &mut events, 3).await;
        for (_, id) in &c {
            server.subscribe(*id, b"busy").unwrap();
        }
        let publishers: Vec<_> = (0..THREADS)
            .map(|t| {
                let server = server.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        assert_eq!(server.publish_text(b"busy", format!("{t}:{i}"), None).unwrap(), 3);
                        // A topic nobody joined, published to as often: harmless.
                        assert_eq!(server.publish_text(b"quiet", "x", None).unwrap(), 0);
                    }
                })
            })
            .collect();
        for (mut ws, _) in c {
            let mut next = [0usize; THREADS];
            for _ in 0..THREADS * EACH {
                let Message::Text(text) = ws_recv(&mut ws).await else { panic!("not text") };
                let (t, i) = text.split_once(':').unwrap();
                let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
                assert_eq!(i, next[t], "thread {t}'s messages out of order");
                next[t] += 1;
            }
            assert_eq!(next, [EACH; THREADS]);
        }
        for p in publishers {
            p.join().unwrap();
        }
    });
}

#[test]
fn a_connection_that_ends_leaves_every_topic() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(60, async move {
        let mut stay = clients(port, &mut events, 1).await.remove(0);
        server.subscribe(stay.1, b"shared").unwrap();
        for round in 0..500 {
            let (mut ws, id) = clients(port, &mut events, 1).await.remove(0);
            for topic in [&b"shared"[..], b"own", format!("round {round}").as_bytes()] {
                server.subscribe(id, topic).unwrap();
            }
            assert_eq!(server.publish_text(b"own", "bye", None).unwrap(), 1);
            assert_eq!(ws_recv(&mut ws).await, Message::text("bye"));
            drop(ws);
            events.disconnect(id).await;
            assert_eq!(server.subscriber_count(b"own").unwrap(), 0, "round {round}");
            assert!(matches!(server.subscribe(id, b"own"), Err(roost::Error::NotFound)));
            assert!(matches!(server.topics_of(id), Err(roost::Error::NotFound)));
        }
        assert_eq!(server.subscriber_count(b"shared").unwrap(), 1);
        assert_eq!(server.stats().topics, 1, "only the topic of the connection that stays is left");
        assert_eq!(server.publish_text(b"shared", "still here", None).unwrap(), 1);
        assert_eq!(ws_recv(&mut stay.0).await, Message::text("still here"));
    });
}

#[test]
fn bad_topics_and_unknown_connections_are_refused_with_a_reason() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(20, async move {
        let (_ws, id) = clients(port, &mut events, 1).await.remove(0);
        let long = vec![b'a'; MAX_TOPIC_LENGTH + 1];
        let longest = vec![b'a'; MAX_TOPIC_LENGTH];
        for bad in [&b""[..], &long] {
            let invalid = |r: roost::Result<usize>| matches!(r, Err(roost::Error::InvalidArgument(_)));
            assert!(invalid(server.publish_text(bad, "x", None)));
            assert!(invalid(server.subscriber_count(bad)));
            assert!(matches!(server.subscribe(id, bad), Err(roost::Error::InvalidArgument(_))));
            assert!(matches!(server.unsubscribe(id, bad), Err(roost::Error::InvalidArgument(_))));
        }
        match server.subscribe(id, &long) {
            Err(e) => assert!(e.to_string().contains("1025 bytes"), "{e}"),
            Ok(_) => panic!("over-long topic accepted"),
        }
        assert!(server.subscribe(id, &longest).unwrap());
        // Topics are bytes, not text: any bytes name a topic.
        assert!(server.subscribe(id, b"\xff\x00binary").unwrap());
        assert!(matches!(server.publish_text(b"t", [0xff], None), Err(roost::Error::InvalidArgument(_))));
        assert!(matches!(server.subscribe(999_999, b"t"), Err(roost::Error::NotFound)));
        // A closing connection may leave topics but join none.
        let (_closing, closing) = clients(port, &mut events, 1).await.remove(0);
        server.subscribe(closing, b"t").unwrap();
        server.close(closing, 1000, "bye").unwrap();
        assert!(matches!(server.subscribe(closing, b"u"), Err(roost::Error::Closed)));
        assert!(server.unsubscribe(closing, b"t").unwrap());
        h.stop(Duration::from_secs(1)).await.unwrap();
        assert!(matches!(server.publish_text(b"t", "x", None), Err(roost::Error::Closed)));
        assert!(matches!(server.subscribe(id, b"t"), Err(roost::Error::Closed)));
    });
}

const LIMIT: usize = 64 << 10;
const MESSAGE: usize = 16 << 10;

/// Publishes numbered 16 KiB messages to a reader that keeps up and a client that
/// never reads, until the slow one has missed 20 publishes (its kernel buffers may
/// take more in between, as they grow), then one
/// marked last, through `publish` (a publish or a broadcast). Returns the number
/// published and, per publish, how many it reached.
async fn publish_past_a_sleeper(publish: impl Fn(Bytes) -> usize, reader: Ws) -> (usize, Vec<usize>, Ws) {
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        let mut reader = reader;
        let mut n = 0usize;
        loop {
            let Message::Binary(data) = ws_recv(&mut reader).await else { panic!("not binary") };
            let seq = u64::from_be_bytes(data[..8].try_into().unwrap()) as usize;
            assert_eq!(seq, n, "the reader got publish {seq}, expected {n}");
            n += 1;
            let _ = progress_tx.send(n);
            if data[8] == 1 {
                return (n, reader);
            }
        }
    });
    let mut reached: Vec<usize> = Vec::new();
    loop {
        let sent = reached.len();
        progress.wait_for(|&got| got + 2 > sent).await.unwrap();
        let last = reached.iter().filter(|&&n| n < 2).count() >= 20;
        let mut payload = vec![0u8; MESSAGE];
        payload[..8].copy_from_slice(&(sent as u64).to_be_bytes());
        payload[8] = u8::from(last);
        let n = publish(Bytes::from(payload));
        reached.push(n);
        if last {
            break;
        }
        assert!(sent < 4096, "the client that does not read was never found slow");
    }
    let (received, reader) = reading.await.expect("reader failed");
    assert_eq!(received, reached.len(), "the reader must get every publish");
    (received, reached, reader)
}

/// A client that reads and one that never does (with a small receive buffer, and its
/// id), both subscribed to "feed".
async fn feed_subscribers(
    port: u16,
    events: &mut Events,
    server: &roost::Server,
) -> (Ws, (tokio::net::TcpStream, u64)) {
    let reader = ws_connect(port, "/t").await;
    let reader_id = events.connect().await.id;
    let sleeper = raw_upgrade_small_rcvbuf(port, "/t", 16 << 10).await;
    let sleeper_id = events.connect().await.id;
    server.subscribe(reader_id, b"feed").unwrap();
    server.subscribe(sleeper_id, b"feed").unwrap();
    (reader, (sleeper, sleeper_id))
}

fn slow_config(policy: SlowConsumer) -> Config {
    Config { outbound_queue_bytes: LIMIT, slow_consumer: policy, ..test_config() }
}

#[test]
fn the_close_policy_closes_a_slow_subscriber_with_1008_and_counts_it() {
    let (h, mut events) = Harness::with_consumer(slow_config(SlowConsumer::Close), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(30, async move {
        let (reader, (_sleeper, sleeper_id)) = feed_subscribers(port, &mut events, &server).await;
        let (_, reached, _reader) =
            publish_past_a_sleeper(|m| server.publish_binary(b"feed", m, None).unwrap(), reader).await;
        assert!(reached.iter().skip_while(|&&n| n == 2).all(|&n| n == 1), "{reached:?}");
        assert_eq!(events.disconnect(sleeper_id).await.0, 1008);
        let stats = server.stats();
        assert_eq!((stats.slow_consumers_closed, stats.deliveries_skipped), (1, 0));
        assert_eq!(server.subscriber_count(b"feed").unwrap(), 1, "the closed one left the topic");
    });
}

#[test]
fn the_skip_policy_keeps_a_slow_subscriber_and_counts_what_it_missed() {
    let (h, mut events) = Harness::with_consumer(slow_config(SlowConsumer::Skip), &["/t"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(30, async move {
        let (reader, (mut sleeper, _)) = feed_subscribers(port, &mut events, &server).await;
        let (sent, reached, _reader) =
            publish_past_a_sleeper(|m| server.publish_binary(b"feed", m, None).unwrap(), reader).await;
        let missed: usize = reached.iter().map(|n| 2 - n).sum();
        assert!(missed >= 20, "{reached:?}");
        let stats = server.stats();
        assert_eq!(stats.deliveries_skipped, missed as u64);
        assert_eq!(stats.slow_consumers_closed, 0);
        assert_eq!(server.connection_count(), 2, "the slow one stays connected");

        // What the slow one did get arrives in order, without a gap inside a run of
        // messages it was not over its limit for; then it catches up.
        let mut got = Vec::new();
        while got.len() < sent - missed {
            let f = read_frame(&mut sleeper).await.unwrap().expect("frame");
            assert_eq!(f.opcode, OP_BINARY);
            got.push(u64::from_be_bytes(f.payload[..8].try_into().unwrap()) as usize);
        }
        let expected: Vec<usize> = (0..sent).filter(|&i| reached[i] == 2).collect();
        assert_eq!(got, expected);
        assert_eq!(server.publish_text(b"feed", "caught up", None).unwrap(), 2);
        let f = read_frame(&mut sleeper).await.unwrap().expect("frame");
        assert_eq!((f.opcode, &f.payload[..]), (OP_TEXT, &b"caught up"[..]));
    });
}

#[test]
fn the_skip_policy_applies_to_broadcast_alike() {
    let (h, mut events) = Harness::with_consumer(slow_config(SlowConsumer::Skip), &["/t"], record_handler());
    let (port, route, server) = (h.port, h.routes[0], h.server().clone());
    run(30, async move {
        let reader = ws_connect(port, "/t").await;
        events.connect().await;
        let _sleeper = raw_upgrade_small_rcvbuf(port, "/t", 16 << 10).await;
        events.connect().await;
        let (_, reached, _reader) =
            publish_past_a_sleeper(|m| server.broadcast_binary(route, m).unwrap(), reader).await;
        let missed: usize = reached.iter().map(|n| 2 - n).sum();
        assert_eq!(server.stats().deliveries_skipped, missed as u64);
        assert_eq!(server.connection_count(), 2);
    });
}
