//! permessage-deflate (RFC 7692) end to end: the answer to a client's offers, compressed
//! messages in (whole and fragmented) and out, a decompression bomb, and a broadcast to
//! compressing and plain recipients at once. The client is raw: frames compressed with
//! flate2 as a browser would.

mod common;

use common::*;
use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress};
use roost::{Compression, Config};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const RSV1: u8 = 4;

fn deflate_config() -> Config {
    Config { compression: Compression::Deflate, ..test_config() }
}

/// Upgrades with `offer` as the Sec-WebSocket-Extensions header (none when empty) and
/// returns the socket and the server's answer to it.
async fn upgrade_offering(port: u16, offer: &str) -> (TcpStream, Option<String>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let extra =
        if offer.is_empty() { String::new() } else { format!("Sec-WebSocket-Extensions: {offer}\r\n") };
    s.write_all(upgrade_request_with(port, "/ws", &extra).as_bytes()).await.unwrap();
    let answer = parse_http(&read_head(&mut s).await);
    assert_eq!(answer.status, 101, "{answer:?}");
    (s, answer.header("sec-websocket-extensions").map(str::to_owned))
}

/// `data` as one raw deflate stream without its final 00 00 ff ff (RFC 7692 7.2.1).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Level::default(), false, 15);
    let mut out = Vec::with_capacity(data.len() + 64);
    while c.total_in() < data.len() as u64 || out.len() == out.capacity() {
        out.reserve(out.capacity().max(1024));
        c.compress_vec(&data[c.total_in() as usize..], &mut out, FlushCompress::Sync).unwrap();
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let input = [data, &[0, 0, 0xff, 0xff]].concat();
    let mut out = Vec::with_capacity(data.len() * 8 + 1024);
    while (d.total_in() as usize) < input.len() {
        out.reserve(out.capacity());
        d.decompress_vec(&input[d.total_in() as usize..], &mut out, FlushDecompress::Sync).unwrap();
    }
    out
}

/// Reads the next data frame and returns it uncompressed, with whether it was compressed.
async fn read_message(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let (payload, compressed) = read_raw(s).await;
    (if compressed { inflate(&payload) } else { payload }, compressed)
}

fn json(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"roost\",\"tags\":[\"a\",\"b\"]}}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn offers_get_the_agreed_parameters_or_no_extension_and_never_a_failed_handshake() {
    let (h, _events) = Harness::echo(deflate_config(), &["/ws"]);
    let port = h.port;
    let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let table = [
        ("", None),
        ("permessage-deflate; client_max_window_bits", Some(both.to_owned())),
        ("permessage-deflate; server_max_window_bits=10", Some(format!("{both}; server_max_window_bits=10"))),
        ("permessage-deflate; bogus=1", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; server_max_window_bits=99, permessage-deflate", Some(both.to_owned())),
        ("x-webkit-deflate-frame", None),
    ];
    run(10, async move {
        for (offer, expected) in table {
            assert_eq!(upgrade_offering(port, offer).await.1, expected, "offer {offer:?}");
        }
    });
    // With compression off every offer is declined.
    let (h, _events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        assert_eq!(upgrade_offering(port, "permessage-deflate").await.1, None);
    });
}

#[test]
fn compressed_messages_are_inflated_and_echoes_go_out_compressed() {
    let (h, mut events) = Harness::echo(deflate_config(), &["/ws"]);
    let (port, server) = (h.port, h.server().clone());
    run(10, async move {
        let (mut s, answer) = upgrade_offering(port, "permessage-deflate").await;
        assert!(answer.is_some());
        let id = events.connect().await.id;
        let text = json(50);
        // One compressed frame.
        s.write_all(&frame(true, RSV1, OP_TEXT, &compress(text.as_bytes()), Some([1, 2, 3, 4])))
            .await
            .unwrap();
        assert_eq!(events.message(id).await.1, text.as_bytes());
        assert_eq!(read_message(&mut s).await, (text.as_bytes().to_vec(), true));
        // Fragmented: RSV1 on the first frame only, a ping in between.
        let compressed = compress(text.as_bytes());
        let (a, b) = compressed.split_at(compressed.len() / 3);
        s.write_all(&frame(false, RSV1, OP_BINARY, a, Some([9, 8, 7, 6]))).await.unwrap();
        s.write_all(&client_frame(true, OP_PING, b"p")).await.unwrap();
        s.write_all(&frame(true, 0, OP_CONT, b, Some([5, 5, 5, 5]))).await.unwrap();
        let (binary, data) = events.message(id).await;
        assert!(binary);
        assert_eq!(data, text.as_bytes());
        // The pong, then the echo.
        let mut pong = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut pong).await.unwrap();
        assert_eq!(pong, [0x8a, 1, b'p']);
        assert_eq!(read_message(&mut s).await, (text.as_bytes().to_vec(), true));
        // Small messages go both ways uncompressed.
        s.write_all(&client_frame(true, OP_TEXT, b"small")).await.unwrap();
        assert_eq!(events.message(id).await.1.as_ref(), b"small");
        assert_eq!(read_message(&mut s).await, (b"small".to_vec(), false));
        // Counted as the consumer sees them, inflated, and as it sent them, before
        // compression.
        let payload = 2 * text.len() as u64 + 5;
        let stats = stats_when(&server, |s| s.messages_sent == 3).await;
        assert_eq!((stats.messages_received, stats.bytes_received), (3, payload));
        assert_eq!((stats.messages_sent, stats.bytes_sent), (3, payload));
    });
}

#[test]
fn each_message_stands_alone_without_context_takeover() {
    // The same message compresses to the same bytes every time: the server's window is
    // not carried over. The client agreed to the same, and each of its messages is
    // inflated on its own.
    let (h, mut events) = Harness::echo(deflate_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let (mut s, _) = upgrade_offering(port, "permessage-deflate").await;
        let id = events.connect().await.id;
        let text = json(20);
        let mut wire = Vec::new();
        for _ in 0..3 {
            s.write_all(&frame(true, RSV1, OP_TEXT, &compress(text.as_bytes()), Some([1, 2, 3, 4])))
                .await
                .unwrap();
            assert_eq!(events.message(id).await.1, text.as_bytes());
            let mut header = [0u8; 2];
            tokio::io::AsyncReadExt::read_exact(&mut s, &mut header).await.unwrap();
            let mut payload = vec![0; (header[1] & 0x7f) as usize];
            tokio::io::AsyncReadExt::read_exact(&mut s, &mut payload).await.unwrap();
            assert_eq!(header[0], 0xc1);
            wire.push(payload);
        }
        assert!(wire.windows(2).all(|w| w[0] == w[1]), "a message depended on the one before");
    });
}

#[test]
fn a_decompression_bomb_closes_1009_without_inflating_it() {
    // 1 GiB of zeros compresses to about 1 MiB; the server stops at its 1 MiB limit,
    // after reading a few KiB of it.
    let config = Config { max_frame_size: Some(64 << 20), max_message_size: 1 << 20, ..deflate_config() };
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    let mut c = Compress::new_with_window_bits(Level::best(), false, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = Vec::with_capacity(2 << 20);
    for _ in 0..1024 {
        c.compress_vec(&zeros, &mut bomb, FlushCompress::None).unwrap();
        bomb.reserve(64 << 10);
    }
    eprintln!("bomb: {} bytes inflating to 1 GiB", bomb.len());
    run(30, async move {
        let (mut s, _) = upgrade_offering(port, "permessage-deflate").await;
        let id = events.connect().await.id;
        let wire = frame(true, RSV1, OP_BINARY, &bomb, Some([1, 2, 3, 4]));
        // The server closes while this is being written; the rest may not be taken.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.write_all(&wire)).await;
        assert_eq!(events.disconnect(id).await.0, 1009);
    });
}

#[test]
fn a_broadcast_reaches_compressing_and_plain_recipients_each_correctly() {
    let (h, mut events) = Harness::echo(deflate_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let (mut compressing, _) = upgrade_offering(port, "permessage-deflate").await;
        events.connect().await;
        let (mut plain, _) = upgrade_offering(port, "").await;
        events.connect().await;
        let (mut limited, answer) =
            upgrade_offering(port, "permessage-deflate; server_max_window_bits=9").await;
        assert!(answer.unwrap().ends_with("server_max_window_bits=9"));
        events.connect().await;
        let text = json(40);
        assert_eq!(server.broadcast_text(0, text.as_bytes()).unwrap(), 3);
        assert_eq!(read_message(&mut compressing).await, (text.as_bytes().to_vec(), true));
        assert_eq!(read_message(&mut plain).await, (text.as_bytes().to_vec(), false));
        // A client that limited the server's window gets the plain frame.
        assert_eq!(read_message(&mut limited).await, (text.as_bytes().to_vec(), false));
    });
}

#[test]
fn rsv1_without_the_extension_or_on_a_continuation_closes_1002() {
    let (h, mut events) = Harness::echo(deflate_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let (mut s, _) = upgrade_offering(port, "").await;
        let id = events.connect().await.id;
        s.write_all(&frame(true, RSV1, OP_TEXT, &compress(b"hello hello"), Some([1, 2, 3, 4])))
            .await
            .unwrap();
        assert_eq!(events.disconnect(id).await.0, 1002);
        let (mut s, _) = upgrade_offering(port, "permessage-deflate").await;
        let id = events.connect().await.id;
        s.write_all(&frame(false, 0, OP_TEXT, b"a", Some([1, 2, 3, 4]))).await.unwrap();
        s.write_all(&frame(true, RSV1, OP_CONT, b"b", Some([1, 2, 3, 4]))).await.unwrap();
        assert_eq!(events.disconnect(id).await.0, 1002);
    });
}

/// Inflates a connection's compressed messages in order with one window, as a client
/// does when the server keeps its compression context.
struct ContextInflater(Decompress);

impl ContextInflater {
    fn new() -> Self {
        ContextInflater(Decompress::new_with_window_bits(false, 15))
    }

    fn inflate(&mut self, data: &[u8]) -> Vec<u8> {
        let input = [data, &[0, 0, 0xff, 0xff]].concat();
        let start = self.0.total_in();
        let mut out = Vec::with_capacity(data.len() * 8 + 1024);
        while ((self.0.total_in() - start) as usize) < input.len() || out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
            let at = (self.0.total_in() - start) as usize;
            self.0.decompress_vec(&input[at..], &mut out, FlushDecompress::Sync).unwrap();
        }
        out
    }
}

/// The next data frame's payload, raw, and whether it is compressed.
async fn read_raw(s: &mut TcpStream) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0] & 0x80, 0x80, "fragmented");
    let len = match head[1] & 0x7f {
        126 => s.read_u16().await.unwrap() as usize,
        127 => s.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.unwrap();
    (payload, head[0] & 0x40 != 0)
}

#[test]
fn per_connection_context_shrinks_repeated_messages_and_keeps_every_send_in_order() {
    let config = Config { compression: Compression::DeflatePerConnection, ..test_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/ws"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let (mut a, answer) = upgrade_offering(port, "permessage-deflate; client_max_window_bits").await;
        assert_eq!(answer.as_deref(), Some("permessage-deflate; client_no_context_takeover"));
        let a_id = events.connect().await.id;
        let (mut b, _) = upgrade_offering(port, "permessage-deflate").await;
        let b_id = events.connect().await.id;
        let (mut plain, _) = upgrade_offering(port, "").await;
        events.connect().await;
        // A client that refuses server context takeover gets the shared frames.
        let (mut stateless, answer) =
            upgrade_offering(port, "permessage-deflate; server_no_context_takeover").await;
        assert_eq!(
            answer.as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        events.connect().await;

        let text = json(8);
        let (mut inflate_a, mut inflate_b) = (ContextInflater::new(), ContextInflater::new());
        let mut sizes = Vec::new();
        for round in 0..3 {
            // A direct send to each, then a broadcast, then another direct send: each
            // connection's compressor must see them in the order they go out.
            server.send_text(a_id, format!("{round} to a {text}")).unwrap();
            server.send_text(b_id, format!("{round} to b {text}")).unwrap();
            assert_eq!(server.broadcast_text(0, text.as_bytes()).unwrap(), 4);
            server.send_text(a_id, format!("{round} after {text}")).unwrap();
            for (s, inflater, name) in [(&mut a, &mut inflate_a, "a"), (&mut b, &mut inflate_b, "b")] {
                let (first, compressed) = read_raw(s).await;
                assert!(compressed);
                assert_eq!(inflater.inflate(&first), format!("{round} to {name} {text}").as_bytes());
                let (shared, compressed) = read_raw(s).await;
                assert!(compressed);
                assert_eq!(inflater.inflate(&shared), text.as_bytes());
                if name == "a" {
                    sizes.push(shared.len());
                    let (after, _) = read_raw(s).await;
                    assert_eq!(inflater.inflate(&after), format!("{round} after {text}").as_bytes());
                }
            }
            assert_eq!(read_message(&mut plain).await, (text.as_bytes().to_vec(), false));
            assert_eq!(read_message(&mut stateless).await, (text.as_bytes().to_vec(), true));
        }
        // With the context kept, a message repeating earlier ones costs a few bytes
        // where compressed alone it costs a hundred or more.
        let alone = compress(text.as_bytes()).len();
        assert!(sizes.iter().all(|&n| n < alone / 4), "sizes {sizes:?}, alone {alone}");
        // The client's own messages are still inflated one by one.
        a.write_all(&frame(true, RSV1, OP_TEXT, &compress(text.as_bytes()), Some([9, 8, 7, 6])))
            .await
            .unwrap();
        assert_eq!(events.message(a_id).await.1, text.as_bytes());
    });
}
