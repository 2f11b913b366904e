//! `Config::inline_io`: the runtime runs inside `poll`, on the consumer's thread, and
//! the ready descriptor says when a poll has work. The consumer of these tests blocks
//! on that descriptor with no timeout, so a wake-up the set fails to give hangs it and
//! the test's time limit fails.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use roost::{Config, Error, Server};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

fn inline_config() -> Config {
    Config { inline_io: true, ..test_config() }
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn echo_many_clients_and_a_large_message_without_a_thread_of_its_own() {
    let (h, _events) = Harness::echo(inline_config(), &["/ws"]);
    assert!(!thread_names().iter().any(|name| name == "roost-worker"), "{:?}", thread_names());
    let port = h.port;
    run(30, async move {
        let clients = (0..20).map(|n| async move {
            let mut ws = ws_connect(port, "/ws").await;
            for i in 0..100 {
                ws.send(Message::text(format!("{n}:{i}"))).await.unwrap();
            }
            for i in 0..100 {
                match ws_recv(&mut ws).await {
                    Message::Text(t) => assert_eq!(t.as_str(), format!("{n}:{i}")),
                    other => panic!("expected text, got {other:?}"),
                }
            }
        });
        futures_util::future::join_all(clients).await;
        // Larger than the socket buffers: written as the client drains it.
        let big: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut ws = ws_connect(port, "/ws").await;
        ws.send(Message::binary(big.clone())).await.unwrap();
        match ws_recv(&mut ws).await {
            Message::Binary(b) => assert_eq!(b.as_ref(), big.as_slice()),
            other => panic!("expected binary, got {other:?}"),
        }
    });
}

#[test]
fn timers_fire_with_no_other_activity() {
    // Keepalive pings every 100 ms, each answered: between a pong and the next ping
    // only the timer tick makes the set readable.
    let config = Config { ping_interval: Some(Duration::from_millis(100)), ..inline_config() };
    let (h, _events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(10, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let started = Instant::now();
        for _ in 0..3 {
            let frame = read_frame(&mut s).await.unwrap().expect("a ping");
            assert_eq!(frame.opcode, OP_PING);
            // The next ping comes an interval after the pong.
            s.write_all(&client_frame(true, OP_PONG, &frame.payload)).await.unwrap();
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2), "{elapsed:?}");
    });
}

#[test]
fn a_send_from_another_thread_goes_out_while_the_consumer_sleeps() {
    let (h, mut events) = Harness::with_consumer(inline_config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        let mut delays = Vec::new();
        for i in 0..20 {
            // Not a multiple of the 10 ms tick: a send that waited for the tick would
            // arrive at a different point of it each time.
            tokio::time::sleep(Duration::from_millis(37)).await;
            let started = Instant::now();
            let server = server.clone();
            std::thread::spawn(move || server.send_text(id, format!("n{i}")).unwrap()).join().unwrap();
            match ws.next().await.expect("a message").unwrap() {
                Message::Text(t) => assert_eq!(t.as_str(), format!("n{i}")),
                other => panic!("expected text, got {other:?}"),
            }
            delays.push(started.elapsed());
        }
        // Far below the 10 ms timer tick: the send itself woke the consumer. The
        // median, not the slowest: a loaded machine delays some wakes whatever wakes
        // them, while waiting for the tick would delay most by about 5 ms.
        delays.sort();
        assert!(delays[delays.len() / 2] < Duration::from_millis(3), "{delays:?}");
    });
}

#[test]
fn options_it_does_not_combine_with_are_refused() {
    let threads = Config { worker_threads: 2, ..inline_config() };
    let backplane = Config { backplane: Some("redis://127.0.0.1:6379".into()), ..inline_config() };
    for (config, message) in [(threads, "worker_threads must be 1"), (backplane, "backplane")] {
        match Server::new(config) {
            Err(Error::InvalidArgument(text)) => assert!(text.contains(message), "{text}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
fn stop_from_another_thread_closes_clients_with_1001() {
    // The stop runs the runtime on its own thread; the consumer keeps polling.
    let (h, mut events) = Harness::with_consumer(inline_config(), &["/ws"], record_handler());
    let port = h.port;
    run(10, async move {
        let mut ws = ws_connect(port, "/ws").await;
        events.connect().await;
        h.stop(Duration::from_secs(2)).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a close frame, got {other:?}"),
        }
    });
}
