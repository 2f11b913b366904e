//! max_connections: a client over the limit gets HTTP 503 and the others are served.

mod common;

use common::*;
use futures_util::SinkExt;
use roost::Config;
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
