//! Keepalive: a peer that never answers pings is closed with 1011 after ping_interval +
//! ping_timeout; a client that reads (and so answers pings) stays connected.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use roost::{Config, Event};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn silent_peer_is_closed_with_1011_while_a_reading_client_stays() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(200)),
        // Well above what the reading client needs to answer, also on a loaded machine.
        ping_timeout: Duration::from_millis(600),
        close_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let started = Instant::now();
        let mut silent = raw_upgrade(port, "/ws").await;
        let silent_id = events.connect().await.id;
        let ws = ws_connect(port, "/ws").await;
        let ws_id = events.connect().await.id;

        // The tungstenite client is read continuously, which answers pings.
        let (data_tx, mut data_rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut ws = ws;
            let mut pings = 0usize;
            while let Some(Ok(m)) = ws.next().await {
                match m {
                    Message::Ping(_) => pings += 1,
                    Message::Close(_) => break,
                    other => {
                        let _ = data_tx.send((pings, other));
                    }
                }
            }
            pings
        });

        // The silent peer: disconnect 1011 within 2 s, not before interval + timeout.
        let deadline = started + Duration::from_secs(2);
        let (code, reason) = tokio::time::timeout_at(deadline.into(), events.disconnect(silent_id))
            .await
            .expect("silent peer not disconnected within 2 s");
        let after = started.elapsed();
        assert_eq!(code, 1011, "reason {reason:?}");
        assert!(after >= Duration::from_millis(750), "closed after only {after:?}");
        // What it was sent: at least one ping, then a close frame with 1011.
        let mut saw_ping = false;
        let close = loop {
            let f = read_frame(&mut silent).await.expect("read").expect("frame");
            match f.opcode {
                OP_PING => saw_ping = true,
                OP_CLOSE => break u16::from_be_bytes([f.payload[0], f.payload[1]]),
                op => panic!("unexpected opcode {op}"),
            }
        };
        assert!(saw_ping, "no ping was sent before the close");
        assert_eq!(close, 1011);

        // The reading client is still connected at the 2 s mark.
        while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
            match events.next_within(remaining).await {
                Some(Event::Disconnect { id, code, .. }) if id == ws_id => {
                    panic!("reading client disconnected with {code} after {:?}", started.elapsed())
                }
                Some(_) => {}
                None => break,
            }
        }
        server.send_text(ws_id, Bytes::from_static(b"alive")).expect("reading client still registered");
        let (pings, m) = data_rx.recv().await.expect("reader ended");
        assert_eq!(m, Message::text("alive"));
        assert!(pings >= 3, "only {pings} pings in 2 s with a 200 ms interval");
        assert!(!reader.is_finished());
        reader.abort();
    });
}

/// A client kept busy by a flood the consumer does not poll is not a dead peer: the core
/// stopped reading it (so its pongs wait in the socket), and it must not be closed with
/// 1011 for that. Once the consumer polls, everything arrives.
#[test]
fn inbound_backpressure_does_not_count_as_a_missed_pong() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(100)),
        ping_timeout: Duration::from_millis(200),
        inbound_queue_depth: 2,
        ..test_config()
    };
    let mut h = Harness::new(config, &["/ws"]);
    let port = h.port;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ws = block_on(&rt, 10, ws_connect(port, "/ws"));
    let (mut sink, mut stream) = ws.split();
    // The client answers pings (its reader runs) and sends 300 messages (the core
    // reads two, then stops reading).
    let reader = rt.spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Close(frame) = m {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    });
    let writer = rt.spawn(async move {
        use futures_util::SinkExt;
        for i in 0..300 {
            sink.send(Message::binary(vec![i as u8; 8 << 10])).await.unwrap();
        }
        sink
    });
    // Ten ping intervals with nobody polling.
    std::thread::sleep(Duration::from_millis(1000));
    let mut events = h.start_consumer(record_handler());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            let id = events.connect().await.id;
            for i in 0..300usize {
                match events.next().await {
                    Event::Message { id: got, data, .. } => {
                        assert_eq!(got, id);
                        assert_eq!(data[0], i as u8, "message {i}");
                    }
                    Event::Disconnect { code, reason, .. } => {
                        panic!("closed with {code} ({reason}) after {i} messages while held back by the core")
                    }
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
        .expect("messages did not arrive")
    });
    assert!(!reader.is_finished(), "client got a close frame");
    let _sink = block_on(&rt, 10, writer).unwrap();
    drop(h);
    drop(rt);
}

/// A client that reads steadily, only slower than the server could write, is alive:
/// the keepalive must not close it with 1011 just because the socket was full when a
/// ping was due.
#[test]
fn slow_but_steady_reader_of_a_saturating_stream_is_not_closed_by_keepalive() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(200)),
        ping_timeout: Duration::from_millis(1000),
        outbound_queue_bytes: 256 << 10,
        ..test_config()
    };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let mut ws = ws_connect(port, "/ws").await;
        let id = events.connect().await.id;
        // The client reads one 16 KiB message per millisecond or so (~16 MB/s) and
        // answers pings as tungstenite does while reading.
        let reader = tokio::spawn(async move {
            let mut pings = 0usize;
            let mut messages = 0usize;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(_))) => {
                        messages += 1;
                        if messages.is_multiple_of(4) {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    Some(Ok(Message::Close(f))) => return (pings, messages, f.map(|f| u16::from(f.code))),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return (pings, messages, None),
                }
            }
        });
        // The consumer keeps the connection's queue full for 3 s: send until WouldBlock,
        // wait for the writable event, repeat.
        let started = std::time::Instant::now();
        let payload = Bytes::from(vec![0x42u8; 16 << 10]);
        let mut disconnected = None;
        'outer: while started.elapsed() < Duration::from_secs(3) {
            loop {
                match server.send_binary(id, payload.clone()) {
                    Ok(()) => {}
                    Err(roost::Error::WouldBlock) => break,
                    Err(e) => panic!("send after {:?}: {e:?}", started.elapsed()),
                }
            }
            loop {
                match events.next_within(Duration::from_secs(2)).await {
                    Some(Event::Writable { id: w }) if w == id => break,
                    Some(Event::Disconnect { code, reason, .. }) => {
                        disconnected = Some((code, reason, started.elapsed()));
                        break 'outer;
                    }
                    Some(_) => {}
                    None => panic!("no writable event within 2 s although the client reads"),
                }
            }
        }
        if let Some((code, reason, after)) = disconnected {
            let (pings, messages, close) = reader.await.unwrap();
            panic!(
                "a reading client was disconnected with {code} ({reason}) after {after:?}; \
                 it had read {messages} messages and {pings} pings, close frame {close:?}"
            );
        }
        assert!(!reader.is_finished(), "client was closed: {:?}", reader.await);
        reader.abort();
    });
}
