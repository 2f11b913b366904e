//! max_connections and max_pending_handshakes: a client over a limit gets HTTP 503 and
//! the others are served; sockets still handshaking never take an upgraded client's place.

mod common;

use common::*;
use futures_util::SinkExt;
use roost::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn third_client_gets_503_and_the_first_two_still_echo() {
    let config = Config { max_connections: 2, ..test_config() };
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(15, async move {
        let mut a = ws_connect(port, "/ws").await;
        let a_id = events.connect().await.id;
        let mut b = ws_connect(port, "/ws").await;
        events.connect().await;

        let answer = raw_exchange(port, upgrade_request(port, "/ws").as_bytes()).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(!answer.body.trim().is_empty());
        // tungstenite's client sees the refusal too.
        assert!(tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws")).await.is_err());

        ws_echo_text(&mut a, "a still here").await;
        ws_echo_text(&mut b, "b still here").await;

        // A slot freed by a disconnect can be used again.
        a.send(Message::Close(None)).await.unwrap();
        events.disconnect(a_id).await;
        drop(a);
        let mut c = ws_connect(port, "/ws").await;
        ws_echo_text(&mut c, "c got the freed slot").await;
        ws_echo_text(&mut b, "b again").await;
    });
}

/// `count` sockets that start an upgrade request and never finish it.
async fn silent_sockets(port: u16, count: usize) -> Vec<TcpStream> {
    let mut silent = Vec::new();
    for _ in 0..count {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\n").await.unwrap();
        silent.push(s);
    }
    silent
}

#[test]
fn silent_sockets_do_not_take_the_places_of_upgraded_clients() {
    let config = Config { max_connections: 2, ..test_config() };
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(15, async move {
        let silent = silent_sockets(port, 3).await;
        let mut a = ws_connect(port, "/ws").await;
        events.connect().await;
        let mut b = ws_connect(port, "/ws").await;
        events.connect().await;
        ws_echo_text(&mut a, "a upgraded beside silent sockets").await;
        ws_echo_text(&mut b, "b too").await;
        // The limit still holds for upgraded connections.
        let answer = raw_exchange(port, upgrade_request(port, "/ws").as_bytes()).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        drop(silent);
    });
}

#[test]
fn handshakes_over_their_own_limit_get_503_at_once_and_free_their_place() {
    let config = Config { max_pending_handshakes: 2, ..test_config() };
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(15, async move {
        let mut silent = silent_sockets(port, 2).await;
        // Both places are taken until a silent socket leaves: answered 503 before the
        // handshake timeout (10 s in the test config), without waiting for the request.
        let started = std::time::Instant::now();
        let answer = raw_exchange_allow_reset(port, upgrade_request(port, "/ws").as_bytes()).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        silent.pop();
        // The place is given back once the server sees the socket close.
        let mut freed = None;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if let Ok(Ok((ws, _))) = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws")),
            )
            .await
            {
                freed = Some(ws);
                break;
            }
        }
        let mut ws = freed.expect("a freed handshake place is used again");
        events.connect().await;
        ws_echo_text(&mut ws, "upgraded after a silent socket left").await;
    });
}
