//! Data frames and control frames leave through one writer, and senders may write an
//! idle socket directly. While a slow peer's socket takes large frames only part at a
//! time, the pongs and keepalive pings written meanwhile must land between frames,
//! never inside one; a peer that pings without reading is owed one pong, not one per
//! ping; and a broadcast's one shared frame must reach every recipient intact.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use roost::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// About 10 MiB: more than the kernel buffers between a non-reading peer and the server.
const MESSAGES: usize = 160;

fn payload(i: usize) -> Vec<u8> {
    vec![(i % 251) as u8; (64 << 10) + i * 7]
}

/// Keepalive pings every 20 ms, and room to queue everything a test sends.
fn pinging_config() -> Config {
    Config {
        ping_interval: Some(Duration::from_millis(20)),
        ping_timeout: Duration::from_secs(10),
        outbound_queue_bytes: 64 << 20,
        ..test_config()
    }
}

/// Pings for 400 ms without reading: each ping makes the server owe a pong, and
/// keepalive pings come due, while the server's writes are stuck part-way.
async fn ping_without_reading(client: &mut tokio::net::TcpStream) {
    for i in 0..40u8 {
        client.write_all(&client_frame(true, OP_PING, &[i])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A raw client of /ws that reads nothing until told to (an 8 KiB receive buffer),
/// and its id, once the consumer has polled its connect.
async fn connect_slow_reader(port: u16, events: &mut Events) -> (TcpStream, u64) {
    let client = raw_upgrade_small_rcvbuf(port, "/ws", 8 << 10).await;
    (client, events.connect().await.id)
}

/// What a client read until a number of data frames had arrived.
struct Received {
    data: Vec<Vec<u8>>,
    pongs: usize,
    pings: usize,
}

/// Reads frames until `count` binary ones arrived, each checked to be whole and
/// unmasked; pongs and pings are counted, anything else fails.
async fn read_data_frames(client: &mut TcpStream, count: usize) -> Received {
    let mut received = Received { data: Vec::new(), pongs: 0, pings: 0 };
    while received.data.len() < count {
        let frame = read_frame(client).await.unwrap().expect("stream ended early");
        assert!(frame.fin && !frame.masked, "frame {frame:?}");
        match frame.opcode {
            OP_BINARY => received.data.push(frame.payload),
            OP_PONG => received.pongs += 1,
            OP_PING => received.pings += 1,
            other => panic!("unexpected opcode {other} after {} messages", received.data.len()),
        }
    }
    received
}

#[test]
fn control_frames_never_split_a_partly_written_data_frame() {
    let (h, mut events) = Harness::with_consumer(pinging_config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(30, async move {
        let (mut client, id) = connect_slow_reader(port, &mut events).await;
        for i in 0..MESSAGES {
            server.send_binary(id, Bytes::from(payload(i))).unwrap();
        }
        // Ping without reading while the server's writes are stuck part-way through
        // frames: each ping makes the server owe a pong, and keepalive pings come due.
        ping_without_reading(&mut client).await;

        let got = read_data_frames(&mut client, MESSAGES).await;
        for (i, data) in got.data.iter().enumerate() {
            assert!(*data == payload(i), "message {i} arrived damaged");
        }
        eprintln!("{} pongs and {} pings among {MESSAGES} data frames", got.pongs, got.pings);
        assert!(got.pongs > 0, "no pong among the data frames");
        assert!(got.pings > 0, "no keepalive ping among the data frames");
    });
}

#[test]
fn every_recipient_of_a_broadcast_reads_the_shared_frame_intact() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/chat"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(30, async move {
        let mut clients = Vec::new();
        for _ in 0..20 {
            clients.push(raw_upgrade_small_rcvbuf(port, "/chat", 8 << 10).await);
            events.connect().await;
        }
        let text = "shared frame ".repeat(10_000);
        for _ in 0..3 {
            assert_eq!(server.broadcast_text(0, text.as_bytes()).unwrap(), clients.len());
        }
        assert_eq!(server.broadcast_binary(0, [1u8, 2, 3]).unwrap(), clients.len());
        for client in &mut clients {
            for _ in 0..3 {
                let frame = read_frame(client).await.unwrap().unwrap();
                assert_eq!((frame.fin, frame.opcode), (true, OP_TEXT));
                assert!(frame.payload == text.as_bytes(), "broadcast text arrived damaged");
            }
            let frame = read_frame(client).await.unwrap().unwrap();
            assert_eq!((frame.opcode, frame.payload), (OP_BINARY, vec![1, 2, 3]));
        }
    });
}

#[test]
fn a_reply_the_socket_takes_in_part_is_finished_before_anything_else() {
    // After a poll that returned events, one send may write the socket itself from the
    // sender's thread. A 4 MiB message does not fit in a non-reading peer's buffers, so
    // the connection's task must finish it, while the peer's pings make the server owe
    // pongs, keepalive pings come due and more messages queue up behind it.
    let (h, mut events) = Harness::with_consumer(pinging_config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(30, async move {
        // The consumer polled the connect: the next send may be written straight out.
        let (mut client, id) = connect_slow_reader(port, &mut events).await;
        let large: Vec<u8> = (0..4usize << 20).map(|i| (i % 253) as u8).collect();
        server.send_binary(id, Bytes::from(large.clone())).unwrap();
        for i in 0..20 {
            server.send_binary(id, Bytes::from(payload(i))).unwrap();
        }
        ping_without_reading(&mut client).await;

        let got = read_data_frames(&mut client, 21).await;
        assert!(got.data[0] == large, "the large message arrived damaged");
        for (i, data) in got.data[1..].iter().enumerate() {
            assert!(*data == payload(i), "message {} arrived damaged", i + 1);
        }
        assert!(got.pongs > 0, "no pong among the data frames");
    });
}

#[test]
fn pongs_owed_while_a_reply_is_written_straight_out_land_between_frames() {
    // Each round the peer pings around a message; the reply (large, so the socket takes
    // it in part) is written from the sender's thread while the connection's task reads
    // those pings and writes their pongs.
    let (h, mut events) = Harness::with_consumer(test_config(), &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(60, async move {
        let (mut client, id) = connect_slow_reader(port, &mut events).await;
        let mut pongs = 0;
        for round in 0..40usize {
            let reply: Vec<u8> = (0..(256 << 10) + round).map(|i| (i % 241) as u8).collect();
            let mut burst = Vec::new();
            for i in 0..8u8 {
                burst.extend(client_frame(true, OP_PING, &[i]));
            }
            burst.extend(client_frame(true, OP_TEXT, b"go"));
            for i in 0..8u8 {
                burst.extend(client_frame(true, OP_PING, &[i]));
            }
            client.write_all(&burst).await.unwrap();
            events.message(id).await;
            server.send_binary(id, Bytes::from(reply.clone())).unwrap();
            client.write_all(&client_frame(true, OP_PING, b"late")).await.unwrap();
            let got = read_data_frames(&mut client, 1).await;
            assert!(got.data[0] == reply, "round {round}: the reply arrived damaged");
            assert_eq!(got.pings, 0, "round {round}: a ping with keepalive off");
            pongs += got.pongs;
        }
        assert!(pongs > 0, "no pong at all");
    });
}

#[test]
fn a_peer_that_pings_without_reading_is_owed_one_pong_and_is_still_read() {
    // 100,000 pings of 125 bytes would owe 12.7 MB of pongs, more than the kernel's
    // buffers between the server and a client that reads nothing (8 KiB receive
    // buffer) can hold. The server keeps reading (the message after the pings
    // arrives) and keeps only the pong of the latest ping unsent.
    let (h, mut events) = Harness::with_consumer(test_config(), &["/ws"], record_handler());
    let port = h.port;
    run(30, async move {
        let (mut client, id) = connect_slow_reader(port, &mut events).await;
        const PINGS: usize = 100_000;
        let mut pings = Vec::new();
        for i in 0..PINGS {
            let mut payload = [0u8; 125];
            payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
            pings.extend(client_frame(true, OP_PING, &payload));
        }
        pings.extend(client_frame(true, OP_TEXT, b"after the pings"));
        client.write_all(&pings).await.unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"after the pings");
        client.write_all(&client_frame(true, OP_CLOSE, &close_payload(1000, ""))).await.unwrap();
        let (mut pongs, mut last) = (0, None);
        loop {
            let frame = read_frame(&mut client).await.unwrap().expect("a frame before the end");
            match frame.opcode {
                OP_PONG => {
                    pongs += 1;
                    last = Some(u64::from_be_bytes(frame.payload[..8].try_into().unwrap()));
                }
                OP_CLOSE => break,
                other => panic!("unexpected opcode {other}"),
            }
        }
        eprintln!("{pongs} pongs for {PINGS} pings");
        assert!(pongs < PINGS / 2, "{pongs} pongs for {PINGS} pings: one owed per ping");
        assert_eq!(last, Some(PINGS as u64 - 1), "the last pong does not answer the last ping");
    });
}
