//! Broadcast fan-out: every member of a route receives every message, in the order
//! broadcast, and only members of that route receive it.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 20;
const MESSAGES: usize = 200;

#[test]
fn every_client_receives_every_broadcast_in_order() {
    let (h, mut events) = Harness::with_consumer(test_config(), &["/room", "/other"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    let (room, other) = (h.routes[0], h.routes[1]);
    run(20, async move {
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(ws_connect(port, "/room").await);
        }
        let mut outsider = ws_connect(port, "/other").await;
        for _ in 0..=CLIENTS {
            events.connect().await;
        }
        assert_eq!(server.connection_count(), CLIENTS + 1);

        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    for i in 0..MESSAGES {
                        let m = ws_recv(&mut ws).await;
                        if i % 2 == 0 {
                            assert_eq!(m, Message::text(format!("message {i}")), "text {i}");
                        } else {
                            assert_eq!(m, Message::binary(format!("binary {i}").into_bytes()), "binary {i}");
                        }
                    }
                    ws
                })
            })
            .collect();

        for i in 0..MESSAGES {
            let n = if i % 2 == 0 {
                server.broadcast_text(room, Bytes::from(format!("message {i}"))).unwrap()
            } else {
                server.broadcast_binary(room, Bytes::from(format!("binary {i}"))).unwrap()
            };
            assert_eq!(n, CLIENTS, "recipients of broadcast {i}");
        }
        for r in readers {
            r.await.expect("reader failed");
        }
        // The other route got nothing.
        let nothing = tokio::time::timeout(Duration::from_millis(200), outsider.next()).await;
        assert!(nothing.is_err(), "client of another route received {nothing:?}");
        assert_eq!(server.broadcast_text(other, Bytes::from_static(b"x")).unwrap(), 1);
        assert_eq!(ws_recv(&mut outsider).await, Message::text("x"));
    });
}

#[test]
fn broadcast_to_unknown_route_is_not_found_and_empty_route_reaches_nobody() {
    let h = Harness::new(test_config(), &["/a", "/b"]);
    let server = h.server();
    assert_eq!(server.broadcast_text(h.routes[1], Bytes::from_static(b"hi")).unwrap(), 0);
    assert!(matches!(server.broadcast_text(7, Bytes::from_static(b"hi")), Err(roost::Error::NotFound)));
    assert!(matches!(
        server.broadcast_text(h.routes[0], Bytes::from_static(b"\xff\xfe")),
        Err(roost::Error::InvalidArgument(_))
    ));
}

#[test]
fn with_join_on_connect_off_a_client_hears_broadcasts_only_after_joining() {
    let config = roost::Config { join_broadcast_on_connect: false, ..test_config() };
    let (h, mut events) = Harness::with_consumer(config, &["/room"], record_handler());
    let port = h.port;
    let server = h.server().clone();
    let room = h.routes[0];
    run(10, async move {
        let mut ws = ws_connect(port, "/room").await;
        let id = events.connect().await.id;
        assert_eq!(server.broadcast_text(room, Bytes::from_static(b"before")).unwrap(), 0);
        server.send_text(id, Bytes::from_static(b"welcome")).unwrap();
        server.join_broadcast(id).unwrap();
        assert_eq!(server.broadcast_text(room, Bytes::from_static(b"after")).unwrap(), 1);
        assert_eq!(ws_recv(&mut ws).await, Message::text("welcome"));
        assert_eq!(ws_recv(&mut ws).await, Message::text("after"));
        assert!(matches!(server.join_broadcast(id + 1000), Err(roost::Error::NotFound)));
    });
}
