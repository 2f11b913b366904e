//! Subprotocols per route: the first of the server's list that the client offers (in
//! any of its `Sec-WebSocket-Protocol` headers, whatever its own order) is named in the
//! 101 and carried by the connect event (and by a vetted upgrade's request, before it
//! is accepted), in Rust and in C; a client that offers none is
//! upgraded without one, or refused with 400 when the route requires one; the list is
//! checked when it is set, and only before start.

mod common;

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use common::*;
use roost::ffi::*;
use roost::{Error, Server};
use roost_status::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A server with a consumer: "/chat" speaks v2.chat then v1.chat (required or not),
/// "/plain" has no subprotocols.
fn chat_server(required: bool) -> (Harness, Events) {
    let server = Server::new(test_config()).unwrap();
    let chat = server.add_route("/chat").unwrap();
    let plain = server.add_route("/plain").unwrap();
    server.route_subprotocols(chat, &["v2.chat", "v1.chat"], required).unwrap();
    let mut h = Harness::start(server, vec![chat, plain]);
    let events = h.start_consumer(record_handler());
    (h, events)
}

/// The answer to an upgrade of `target` carrying `extra` header lines, and the socket
/// (open after a 101).
async fn upgrade(port: u16, target: &str, extra: &str) -> (HttpAnswer, TcpStream) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(upgrade_request_with(port, target, extra).as_bytes()).await.unwrap();
    (parse_http(&read_head(&mut s).await), s)
}

#[test]
fn the_servers_first_choice_wins_whatever_the_clients_order_and_the_event_carries_it() {
    let (h, mut events) = chat_server(false);
    let port = h.port;
    run(10, async move {
        let (answer, _s) = upgrade(port, "/chat", "Sec-WebSocket-Protocol: v1.chat, v2.chat\r\n").await;
        assert_eq!(answer.status, 101);
        assert_eq!(answer.header("sec-websocket-protocol"), Some("v2.chat"));
        assert_eq!(events.connect().await.subprotocol(), Some(&b"v2.chat"[..]));

        // Offers spread over repeated headers, with spaces; names compare with case.
        let offers = "Sec-WebSocket-Protocol: V2.CHAT, x\r\nSec-WebSocket-Protocol:  v1.chat ,y\r\n";
        let (answer, _s) = upgrade(port, "/chat", offers).await;
        assert_eq!(answer.header("sec-websocket-protocol"), Some("v1.chat"));
        assert_eq!(events.connect().await.subprotocol(), Some(&b"v1.chat"[..]));

        // A real client that offers both agrees on the server's choice.
        let mut request = format!("ws://127.0.0.1:{port}/chat").into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "v1.chat, v2.chat".parse().unwrap());
        let (_ws, response) = tokio_tungstenite::connect_async(request).await.expect("ws connect");
        assert_eq!(response.headers()["sec-websocket-protocol"], "v2.chat");
        assert_eq!(events.connect().await.subprotocol(), Some(&b"v2.chat"[..]));
    });
}

#[test]
fn no_agreement_upgrades_without_a_subprotocol_unless_the_route_requires_one() {
    let (h, mut events) = chat_server(false);
    let port = h.port;
    run(10, async move {
        for extra in ["", "Sec-WebSocket-Protocol: mqtt\r\n"] {
            let (answer, _s) = upgrade(port, "/chat", extra).await;
            assert_eq!(answer.status, 101, "{extra:?}");
            assert_eq!(answer.header("sec-websocket-protocol"), None, "{extra:?}");
            assert_eq!(events.connect().await.subprotocol(), None);
        }
        // A route without subprotocols names none, whatever the client offers.
        let (answer, _s) = upgrade(port, "/plain", "Sec-WebSocket-Protocol: v2.chat\r\n").await;
        assert_eq!((answer.status, answer.header("sec-websocket-protocol")), (101, None));
        assert_eq!(events.connect().await.subprotocol(), None);
    });

    let (h, mut events) = chat_server(true);
    let (port, server) = (h.port, h.server().clone());
    run(10, async move {
        for extra in ["", "Sec-WebSocket-Protocol: mqtt, V2.chat\r\n"] {
            let request = upgrade_request_with(port, "/chat", extra);
            let answer = raw_exchange(port, request.as_bytes()).await;
            assert_eq!(answer.status, 400, "{extra:?}: {answer:?}");
            assert_eq!(answer.body, "No supported subprotocol\n");
        }
        let (answer, _s) = upgrade(port, "/chat", "Sec-WebSocket-Protocol: v1.chat\r\n").await;
        assert_eq!(answer.header("sec-websocket-protocol"), Some("v1.chat"));
        // The refused never connected: the first connect is the accepted one's.
        assert_eq!(events.connect().await.subprotocol(), Some(&b"v1.chat"[..]));
        assert_eq!(server.stats().upgrades_refused_400, 2);
    });
}

#[test]
fn lists_are_checked_and_only_taken_before_start() {
    let server = Server::new(test_config()).unwrap();
    let route = server.add_route("/ws").unwrap();
    for bad in [&[][..], &[""], &["a b"], &["a,b"], &["x", "x"], &["\u{e9}t\u{e9}"]] {
        assert!(
            matches!(server.route_subprotocols(route, bad, false), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(server.route_subprotocols(route + 1, &["x"], false), Err(Error::NotFound)));
    server.route_subprotocols(route, &["x"], true).unwrap();
    server.start("127.0.0.1", 0).unwrap();
    assert!(matches!(server.route_subprotocols(route, &["y"], false), Err(Error::InvalidState(_))));
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(roost_last_error()) }.to_string_lossy().into_owned()
}

fn set(s: *mut roost_server, route: u32, list: &[u8], required: bool) -> roost_status {
    // SAFETY: `list` is a valid buffer of its length; a bad handle gives a status.
    unsafe { roost_server_route_subprotocols(s, route, list.as_ptr(), list.len(), required) }
}

#[test]
fn through_c_the_list_is_comma_separated_and_connect_events_carry_the_choice() {
    let mut s = null_mut();
    // SAFETY: default options; `s` is writable.
    assert_eq!(unsafe { roost_server_new(null(), &mut s) }, ROOST_OK);
    let (mut chat, mut plain, mut port) = (0u32, 0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_add_route(s, b"/chat".as_ptr(), 5, &mut chat), ROOST_OK);
        assert_eq!(roost_server_add_route(s, b"/plain".as_ptr(), 6, &mut plain), ROOST_OK);
    }
    for (bad, why) in [
        (&b""[..], "at least one"),
        (b"v1,", "not a token"),
        (b"v1,,v2", "not a token"),
        (b"v1 v2", "not a token"),
        (b"v1, v1", "twice"),
    ] {
        assert_eq!(set(s, chat, bad, false), ROOST_INVALID_ARGUMENT, "{}", String::from_utf8_lossy(bad));
        assert!(last_error().contains(why), "{}: {}", String::from_utf8_lossy(bad), last_error());
    }
    assert_eq!(set(s, chat, b"\xff", false), ROOST_INVALID_ARGUMENT);
    // SAFETY: NULL with a length and NULL server handles are checked.
    unsafe {
        assert_eq!(roost_server_route_subprotocols(s, chat, null(), 3, false), ROOST_INVALID_ARGUMENT);
        assert_eq!(
            roost_server_route_subprotocols(null_mut(), chat, b"x".as_ptr(), 1, false),
            ROOST_INVALID_ARGUMENT
        );
    }
    assert_eq!(set(s, 7, b"v1", false), ROOST_NOT_FOUND);
    assert_eq!(set(s, chat, b" graphql-transport-ws ,graphql-ws", true), ROOST_OK, "{}", last_error());
    // SAFETY: valid buffers and out-pointers.
    assert_eq!(unsafe { roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port) }, ROOST_OK);
    assert_eq!(set(s, chat, b"v1", false), ROOST_INVALID_STATE);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let offer = "Sec-WebSocket-Protocol: graphql-ws, graphql-transport-ws\r\n";
    let (answer, _chat) = block_on(&rt, 10, upgrade(port, "/chat", offer));
    assert_eq!(answer.header("sec-websocket-protocol"), Some("graphql-transport-ws"));
    let protocol = poll_until(s, |e| {
        // SAFETY: the event's pointers are valid until the next poll.
        (e.kind == roost_event_kind::ROOST_EVENT_CONNECT)
            .then(|| unsafe { slice(e.subprotocol, e.subprotocol_len) }.to_vec())
    });
    assert_eq!(protocol, b"graphql-transport-ws");
    let (answer, _plain) = block_on(&rt, 10, upgrade(port, "/plain", offer));
    assert_eq!(answer.status, 101);
    let (pointer, len) = poll_until(s, |e| {
        (e.kind == roost_event_kind::ROOST_EVENT_CONNECT).then_some((e.subprotocol, e.subprotocol_len))
    });
    assert_eq!((pointer, len), (null(), 0), "none agreed: NULL and 0");
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn a_vetted_upgrade_names_the_subprotocol_it_gets_before_it_is_accepted() {
    let mut s = null_mut();
    // SAFETY: default options; `s` is writable.
    assert_eq!(unsafe { roost_server_new(null(), &mut s) }, ROOST_OK);
    let (mut chat, mut port) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    assert_eq!(unsafe { roost_server_add_route(s, b"/chat".as_ptr(), 5, &mut chat) }, ROOST_OK);
    assert_eq!(set(s, chat, b"v2.chat, v1.chat", false), ROOST_OK);
    assert_eq!(roost_server_route_vet_upgrades(s, chat, true), ROOST_OK);
    // SAFETY: valid buffers and out-pointers.
    assert_eq!(unsafe { roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port) }, ROOST_OK);
    // A runtime with a thread of its own: the client upgrades while this thread polls.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for (offer, agreed) in [("Sec-WebSocket-Protocol: v1.chat, v2.chat\r\n", &b"v2.chat"[..]), ("", &b""[..])]
    {
        let upgrading = rt.spawn(upgrade(port, "/chat", offer));
        let (id, named) = poll_until(s, |e| {
            // SAFETY: the event's pointers are valid until the next poll.
            (e.kind == roost_event_kind::ROOST_EVENT_UPGRADE_REQUEST)
                .then(|| (e.connection, unsafe { slice(e.subprotocol, e.subprotocol_len) }.to_vec()))
        });
        assert_eq!(named, agreed, "the upgrade request names what the connection gets");
        assert_eq!(roost_upgrade_accept(s, id), ROOST_OK);
        let (answer, _socket) = block_on(&rt, 10, async { upgrading.await.unwrap() });
        assert_eq!(answer.status, 101);
        let connected = poll_until(s, |e| {
            // SAFETY: the event's pointers are valid until the next poll.
            (e.kind == roost_event_kind::ROOST_EVENT_CONNECT && e.connection == id)
                .then(|| unsafe { slice(e.subprotocol, e.subprotocol_len) }.to_vec())
        });
        assert_eq!(connected, agreed, "and its CONNECT carries the same");
    }
    assert_eq!(roost_server_free(s), ROOST_OK);
}
