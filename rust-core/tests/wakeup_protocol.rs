//! The wake-up protocol loses nothing: a consumer that polls until a poll returns 0 and
//! then only waits for the ready descriptor sees every event, however the pushes from
//! many connections interleave with its empty polls.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use roost::{Config, Event, Server};
use tokio_tungstenite::tungstenite::Message;

const CONNECTIONS: usize = 200;
const PER_CONNECTION: usize = 25;

#[derive(Debug, Default)]
struct Seen {
    connects: usize,
    messages: usize,
    empty_polls: usize,
    wakeups: usize,
    /// Set when the descriptor stayed unreadable for 5 s while events were missing.
    lost_wakeup: bool,
}

/// Polls strictly by the protocol until every connect and message was seen, or until a
/// 5 s wait on the descriptor times out (which counts as a lost wake-up).
fn strict_consumer(server: &Server) -> Seen {
    let mut seen = Seen::default();
    let mut next_seq: HashMap<u64, usize> = HashMap::new();
    let mut batch = Vec::new();
    let fd = server.ready_fd();
    let total = CONNECTIONS * PER_CONNECTION;
    loop {
        loop {
            batch.clear();
            // A small batch, so that polls interleave with pushes as much as possible.
            if server.poll(&mut batch, 7) == 0 {
                seen.empty_polls += 1;
                break;
            }
            for event in batch.drain(..) {
                match event {
                    Event::Connect(info) => {
                        seen.connects += 1;
                        next_seq.insert(info.id, 0);
                    }
                    Event::Message { id, data, .. } => {
                        let text = std::str::from_utf8(&data).unwrap();
                        let seq: usize = text.rsplit(' ').next().unwrap().parse().unwrap();
                        let expected = next_seq.get_mut(&id).expect("message before connect");
                        assert_eq!(seq, *expected, "order of connection {id}");
                        *expected += 1;
                        seen.messages += 1;
                    }
                    Event::Disconnect { id, code, .. } => panic!("unexpected disconnect {id} ({code})"),
                    Event::Writable { .. } => {}
                    Event::Request(_) | Event::UpgradeRequest(_) => panic!("a request without HTTP routes"),
                }
            }
        }
        if seen.connects == CONNECTIONS && seen.messages == total {
            return seen;
        }
        if !fd_readable(fd, 5000) {
            seen.lost_wakeup = true;
            return seen;
        }
        seen.wakeups += 1;
    }
}

#[test]
fn strict_consumer_receives_every_message_from_200_concurrent_connections() {
    // Two core threads, so that pushes race each other as well as the consumer.
    let config = Config { worker_threads: 2, ..test_config() };
    let h = Harness::new(config, &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    let consumer = std::thread::spawn(move || strict_consumer(&server));

    run(30, async move {
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(ws_connect(port, "/ws").await);
        }
        let senders: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, mut ws)| {
                tokio::spawn(async move {
                    for i in 0..PER_CONNECTION {
                        ws.send(Message::text(format!("client {c} message {i}"))).await.unwrap();
                        if (i + c) % 3 == 0 {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                    }
                    ws
                })
            })
            .collect();
        let mut keep = Vec::new();
        for s in senders {
            keep.push(s.await.unwrap());
        }
        // Keep the clients open until the consumer has seen everything.
        tokio::task::spawn_blocking(move || {
            let seen = consumer.join().expect("consumer panicked");
            eprintln!("{seen:?}");
            assert!(!seen.lost_wakeup, "lost wake-up: {seen:?}");
            assert_eq!(seen.connects, CONNECTIONS);
            assert_eq!(seen.messages, CONNECTIONS * PER_CONNECTION);
            assert!(seen.wakeups > 0);
        })
        .await
        .unwrap();
        drop(keep);
    });
}

#[test]
fn empty_poll_rearms_and_the_next_event_makes_the_descriptor_readable() {
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    let fd = server.ready_fd();
    let mut batch = Vec::new();
    // Nothing happened yet: an empty poll, and the descriptor is not readable.
    assert_eq!(server.poll(&mut batch, 16), 0);
    assert!(!fd_readable(fd, 0));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ws = block_on(&rt, 10, ws_connect(port, "/ws"));
    assert!(fd_readable(fd, 5000), "connect did not make the descriptor readable");
    // A non-empty poll does not re-arm: still readable until a poll returns 0.
    assert_eq!(server.poll(&mut batch, 16), 1);
    assert!(matches!(batch[0], Event::Connect(_)));
    assert_eq!(server.poll(&mut batch, 16), 0);
    assert!(!fd_readable(fd, 0), "descriptor still readable after an empty poll");
    // Several events while armed: readable once, all of them in one drain.
    let _a = block_on(&rt, 10, async {
        let mut a = ws_connect(port, "/ws").await;
        a.send(Message::text("x")).await.unwrap();
        a.send(Message::text("y")).await.unwrap();
        a // kept open for the rest of the test
    });
    assert!(fd_readable(fd, 5000));
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got < 3 {
        batch.clear();
        let n = server.poll(&mut batch, 16);
        got += n;
        if n == 0 {
            assert!(fd_readable(fd, 5000), "lost wake-up after {got} events");
        }
        assert!(std::time::Instant::now() < deadline);
    }
    assert_eq!(server.poll(&mut batch, 16), 0);
    assert!(!fd_readable(fd, 100));
}

#[test]
fn zero_capacity_poll_does_not_swallow_the_wakeup() {
    // poll(out, 0) takes nothing; it must not re-arm the descriptor while events wait,
    // or a consumer following the protocol ("0 means re-armed: wait") waits forever.
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    let fd = server.ready_fd();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ws = block_on(&rt, 10, ws_connect(port, "/ws"));
    assert!(fd_readable(fd, 5000));
    let mut batch = Vec::new();
    assert_eq!(server.poll(&mut batch, 0), 0);
    assert!(fd_readable(fd, 0), "descriptor re-armed by a zero-capacity poll while an event waits");
    assert_eq!(server.poll(&mut batch, 16), 1);
}
