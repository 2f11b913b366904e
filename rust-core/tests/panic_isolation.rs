//! A panic inside one connection's task (fault injection: the text "__roost_panic__")
//! closes that connection with 1011 and leaves the server and other connections working.
#![cfg(feature = "fault-injection")]

mod common;

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn panic_in_one_connection_closes_it_with_1011_and_others_keep_working() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let mut victim = ws_connect(port, "/ws").await;
        let victim_id = events.connect().await.id;
        let mut other = ws_connect(port, "/ws").await;
        events.connect().await;
        ws_echo_text(&mut other, "before").await;

        victim.send(Message::text("__roost_panic__")).await.unwrap();
        let (code, _) = ws_expect_close(&mut victim).await;
        assert_eq!(code, 1011, "client's close code");
        assert_eq!(events.disconnect(victim_id).await.0, 1011, "disconnect event code");

        ws_echo_text(&mut other, "after").await;
        // New connections still work, and so does a second panic.
        let mut late = ws_connect(port, "/ws").await;
        let late_id = events.connect().await.id;
        ws_echo_text(&mut late, "new one").await;
        late.send(Message::text("__roost_panic__")).await.unwrap();
        assert_eq!(ws_expect_close(&mut late).await.0, 1011);
        assert_eq!(events.disconnect(late_id).await.0, 1011);
        ws_echo_text(&mut other, "still after").await;
        assert_eq!(server.connection_count(), 1);
    });
}
