//! A client that does not read cannot make the server hold unbounded memory: sends to
//! it are refused with WouldBlock once its queue is full, and under broadcast it is
//! closed with 1008 while the clients that keep up receive everything.
//!
//! The tests of this file measure the process's RSS, so they run one at a time.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use roost::{Config, Error, Event};

static SERIAL: Mutex<()> = Mutex::new(());

const LIMIT: usize = 64 << 10;
const MESSAGE: usize = 16 << 10;

fn config() -> Config {
    Config { outbound_queue_bytes: LIMIT, close_timeout: Duration::from_millis(500), ..test_config() }
}

#[test]
fn sends_to_a_client_that_never_reads_hit_would_block_and_memory_stays_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (h, mut events) = Harness::with_consumer(config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(30, async move {
        // Never read from it; a small receive buffer so the kernel holds little.
        let _sleeper = raw_upgrade_small_rcvbuf(port, "/ws", 16 << 10).await;
        let id = events.connect().await.id;

        let attempts = 200 * MIB / MESSAGE; // 12,800 sends of 16 KiB: 200 MiB offered
        let rss_before = rss_bytes();
        let (mut accepted, mut refused) = (0usize, 0usize);
        let started = Instant::now();
        for i in 0..attempts {
            // A fresh payload each time: queueing it would cost real memory.
            let payload = Bytes::from(vec![(i % 251) as u8; MESSAGE]);
            match server.send_binary(id, payload) {
                Ok(()) => accepted += 1,
                Err(Error::WouldBlock) => refused += 1,
                Err(e) => panic!("send {i}: unexpected {e:?}"),
            }
            if i % 256 == 255 {
                // Give the core's thread time to move what it can into the socket.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let rss_after = rss_bytes();
        let growth = rss_after.saturating_sub(rss_before);
        eprintln!(
            "accepted {accepted} ({} KiB), refused {refused}, RSS {} -> {} MiB (+{} KiB) in {:?}",
            accepted * MESSAGE / 1024,
            rss_before / MIB,
            rss_after / MIB,
            growth / 1024,
            started.elapsed()
        );
        assert!(refused > 0, "never refused: the queue has no bound");
        // What was accepted went into the queue (64 KiB) and the kernel's socket buffers
        // (the client's receive buffer is 16 KiB, the server's send buffer at most
        // net.ipv4.tcp_wmem's 4 MiB by default): far less than the 200 MiB offered.
        assert!(accepted * MESSAGE < 16 * MIB, "accepted {accepted} messages of 16 KiB");
        assert!(growth < 32 * MIB, "RSS grew by {} MiB for a client that does not read", growth / MIB);
        // The connection is still alive (it is slow, not dead), and its queue is still
        // bounded. The last pause may have let the worker move queued frames into a send
        // buffer the kernel has since grown, so a few more sends can be accepted before
        // one is refused; 1 MiB accepted in a row (16 queues' worth) would mean no bound.
        let tries = 16 * LIMIT / MESSAGE;
        let more_accepted =
            (0..tries).take_while(|_| server.send_binary(id, Bytes::from(vec![0; MESSAGE])).is_ok()).count();
        assert!(more_accepted < tries, "{more_accepted} more sends accepted without a refusal");
        assert_eq!(server.connection_count(), 1);
    });
}

#[test]
fn broadcast_closes_a_non_reader_with_1008_while_a_reader_gets_everything() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (h, mut events) = Harness::with_consumer(config(), &["/room"], record_handler());
    let port = h.port;
    let route = h.routes[0];
    let server = h.server().clone();
    run(30, async move {
        let mut reader = ws_connect(port, "/room").await;
        let reader_id = events.connect().await.id;
        let _sleeper = raw_upgrade_small_rcvbuf(port, "/room", 16 << 10).await;
        let sleeper_id = events.connect().await.id;

        let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
        let reading = tokio::spawn(async move {
            // Returns the count and the client, which must stay connected.
            let mut n = 0usize;
            loop {
                let data = match ws_recv(&mut reader).await {
                    tokio_tungstenite::tungstenite::Message::Binary(b) => b,
                    other => panic!("expected binary, got {other:?}"),
                };
                assert_eq!(data.len(), MESSAGE);
                let seq = u64::from_be_bytes(data[..8].try_into().unwrap()) as usize;
                assert_eq!(seq, n, "reader got broadcast {seq}, expected {n}");
                n += 1;
                let _ = progress_tx.send(n);
                if data[8] == 1 {
                    return (n, reader); // the last one
                }
            }
        });

        let rss_before = rss_bytes();
        let max_messages = 64 * MIB / MESSAGE;
        let mut sent = 0usize;
        let mut killed_at = None;
        let mut disconnect = None;
        while sent < max_messages {
            // Keep the reader at most two messages behind: it must never be over its limit.
            progress.wait_for(|&got| got + 2 > sent).await.unwrap();
            let mut payload = vec![0u8; MESSAGE];
            payload[..8].copy_from_slice(&(sent as u64).to_be_bytes());
            let last = killed_at.is_some_and(|k: usize| sent >= k + 20);
            payload[8] = u8::from(last);
            let n = server.broadcast_binary(route, Bytes::from(payload)).unwrap();
            sent += 1;
            match (n, killed_at) {
                (2, None) => {}
                (1, None) => killed_at = Some(sent - 1),
                (1, Some(_)) => {}
                other => {
                    panic!("broadcast {} reached {} recipients (killed at {:?})", sent - 1, other.0, other.1)
                }
            }
            while let Some(event) = events.try_next() {
                if let Event::Disconnect { id, code, .. } = event {
                    assert_eq!(id, sleeper_id, "the reader was disconnected (code {code})");
                    disconnect = Some(code);
                }
            }
            if last {
                break;
            }
        }
        let killed_at = killed_at.expect("the non-reading client was never closed by broadcast");
        let (received, _reader) = reading.await.expect("reader failed");
        assert_eq!(received, sent, "reader must receive every broadcast");
        let code = match disconnect {
            Some(code) => code,
            None => events.disconnect(sleeper_id).await.0,
        };
        assert_eq!(code, 1008, "non-reader's disconnect code");
        let growth = rss_bytes().saturating_sub(rss_before);
        eprintln!("non-reader closed at broadcast {killed_at} of {sent}; RSS +{} KiB", growth / 1024);
        assert!(growth < 32 * MIB, "RSS grew by {} MiB", growth / MIB);
        // The reader is still connected and served.
        assert!(server.send_binary(reader_id, Bytes::from_static(b"still here")).is_ok());
        assert!(matches!(server.send_binary(sleeper_id, Bytes::from_static(b"x")), Err(Error::NotFound)));
    });
}
