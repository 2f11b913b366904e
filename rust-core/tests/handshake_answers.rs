//! The HTTP side of the upgrade: every refusal gets its status, a text body, and a
//! closed socket; a successful upgrade reports path, raw query, headers, uuid and peer.

mod common;

use common::*;

fn answer(request: &[u8]) -> HttpAnswer {
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    let request = request.to_vec();
    // raw_exchange reads to EOF: returning at all proves the socket was closed.
    run(10, async move { raw_exchange(port, &request).await })
}

fn assert_text_body(a: &HttpAnswer) {
    assert!(a.header("content-type").is_some_and(|v| v.starts_with("text/plain")), "content type of {a:?}");
    assert!(!a.body.trim().is_empty(), "empty body in {a:?}");
    assert_eq!(a.header("content-length"), Some(a.body.len().to_string().as_str()));
}

#[test]
fn unknown_path_gets_404_with_text_body() {
    let a = answer(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(a.status, 404, "{a:?}");
    assert_text_body(&a);
    assert!(a.body.contains("Not Found"), "{a:?}");
}

#[test]
fn plain_get_on_a_route_gets_426() {
    let a = answer(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(a.status, 426, "{a:?}");
    assert_text_body(&a);
    assert!(a.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")), "{a:?}");
}

#[test]
fn garbage_request_gets_400() {
    let a = answer(b"\x16\x03\x01\x00\xa5\x01\x00 garbage \xff\xfe\r\n\r\n");
    assert_eq!(a.status, 400, "{a:?}");
    assert_text_body(&a);
}

#[test]
fn wrong_websocket_version_gets_426_naming_13() {
    let a = answer(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert_eq!(a.status, 426, "{a:?}");
    assert_eq!(a.header("sec-websocket-version"), Some("13"), "{a:?}");
    assert_text_body(&a);
}

#[test]
fn missing_key_gets_400() {
    let a = answer(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(a.status, 400, "{a:?}");
    assert_text_body(&a);
    assert!(a.body.contains("Sec-WebSocket-Key"), "{a:?}");
}

#[test]
fn repeated_key_or_version_is_refused() {
    let a = answer(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(a.status, 400, "{a:?}");
    let a = answer(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert_eq!(a.status, 426, "{a:?}");
}

#[test]
fn successful_upgrade_reports_path_query_headers_uuid_and_peer() {
    let (h, mut events) = Harness::echo(test_config(), &["/other", "/ws"]);
    let port = h.port;
    run(10, async move {
        let ws = ws_connect_with_header(port, "/ws?room=a&x=1", "x-roost-test", "hello there").await;
        let local = match ws.get_ref() {
            tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
            _ => unreachable!(),
        };
        let info = events.connect().await;
        assert_eq!(info.path(), b"/ws");
        assert_eq!(info.query(), b"room=a&x=1");
        assert_eq!(info.route, 1, "second route added gets id 1");
        let headers: Vec<(String, String)> = info
            .headers()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(headers.len(), info.header_count());
        assert!(
            headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("x-roost-test") && v == "hello there"),
            "custom header missing from {headers:?}"
        );
        assert!(headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key")));
        // A canonical UUID4.
        let uuid = info.uuid.as_bytes();
        assert_eq!(uuid.len(), 36, "{}", info.uuid);
        for (i, &b) in uuid.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(b, b'-', "{}", info.uuid);
            } else {
                assert!(b.is_ascii_hexdigit() && !b.is_ascii_uppercase(), "{}", info.uuid);
            }
        }
        assert_eq!(uuid[14], b'4', "version nibble of {}", info.uuid);
        assert!(matches!(uuid[19], b'8' | b'9' | b'a' | b'b'), "variant of {}", info.uuid);
        assert_eq!(info.peer, local.to_string());
        drop(ws);
    });
}

#[test]
fn path_without_query_has_empty_query_and_raw_query_is_not_decoded() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        let _a = ws_connect(port, "/ws").await;
        let info = events.connect().await;
        assert_eq!(info.path(), b"/ws");
        assert_eq!(info.query(), b"");
        let _b = ws_connect(port, "/ws?name=J%C3%BCrgen&a=%20").await;
        let info = events.connect().await;
        assert_eq!(info.query(), b"name=J%C3%BCrgen&a=%20");
        assert_ne!(info.id, 0);
    });
}

fn upgrades(request: &[u8]) -> bool {
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    let request = request.to_vec();
    run(10, async move {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(&request).await.unwrap();
        let head = read_head(&mut s).await;
        parse_http(&head).status == 101
    })
}

#[test]
fn connection_token_lists_and_header_case_are_accepted() {
    // Firefox sends "Connection: keep-alive, Upgrade"; names and tokens are case-insensitive.
    assert!(upgrades(b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"));
}

#[test]
fn request_arriving_byte_by_byte_upgrades_and_a_pipelined_frame_is_delivered() {
    let (h, mut events) = Harness::echo(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        use tokio::io::AsyncWriteExt;
        // One byte per write (the head's end is split across reads).
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        for b in upgrade_request(port, "/ws?slow=1").as_bytes() {
            s.write_all(&[*b]).await.unwrap();
            s.flush().await.unwrap();
        }
        assert_eq!(parse_http(&read_head(&mut s).await).status, 101);
        assert_eq!(events.connect().await.query(), b"slow=1");

        // Request and first frame in one write: the frame must not be lost.
        let mut s2 = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut bytes = upgrade_request(port, "/ws").into_bytes();
        bytes.extend(client_frame(true, OP_TEXT, b"early bird"));
        s2.write_all(&bytes).await.unwrap();
        assert_eq!(parse_http(&read_head(&mut s2).await).status, 101);
        let id = events.connect().await.id;
        assert_eq!(events.message(id).await.1.as_ref(), b"early bird");
        let echo = read_frame(&mut s2).await.unwrap().unwrap();
        assert_eq!(echo.payload, b"early bird");
        drop(s);
    });
}

#[test]
fn oversized_head_and_too_many_headers_get_431() {
    let mut big = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20 << 10));
    big.extend(b"\r\n\r\n");
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    let a = run(10, async move { raw_exchange_allow_reset(port, &big).await });
    assert_eq!(a.status, 431, "{a:?}");
    assert_text_body(&a);

    let mut many = b"GET /ws HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..80 {
        many.extend(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend(b"\r\n");
    let a = answer(&many);
    assert_eq!(a.status, 431, "{a:?}");
}

#[test]
fn silent_client_is_dropped_after_handshake_timeout() {
    let config = roost::Config { handshake_timeout: std::time::Duration::from_millis(300), ..test_config() };
    let h = Harness::new(config, &["/ws"]);
    let port = h.port;
    run(10, async move {
        use tokio::io::AsyncReadExt;
        let started = std::time::Instant::now();
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut buf = Vec::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut buf))
            .await
            .expect("socket still open 3 s after a 300 ms handshake timeout")
            .unwrap_or(0);
        assert_eq!(n, 0, "server wrote {buf:?}");
        assert!(started.elapsed() >= std::time::Duration::from_millis(250), "{:?}", started.elapsed());
    });
}

/// The connect event's (path, query) for an upgrade request with target `target`, on a
/// server with routes "/" and "/ws"; None when the upgrade was refused.
fn connected_target(target: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (h, mut events) = Harness::echo(test_config(), &["/", "/ws"]);
    let port = h.port;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    run(10, async move {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        if parse_http(&read_head(&mut s).await).status != 101 {
            return None;
        }
        let info = events.connect().await;
        Some((info.path().to_vec(), info.query().to_vec()))
    })
}

#[test]
fn absolute_form_targets_are_served_like_their_path() {
    let expect = |path: &str, query: &str| Some((path.as_bytes().to_vec(), query.as_bytes().to_vec()));
    assert_eq!(connected_target("http://example.com/ws"), expect("/ws", ""));
    assert_eq!(connected_target("HTTP://example.com:8080/ws?room=a"), expect("/ws", "room=a"));
    assert_eq!(connected_target("ws://[::1]:9/ws?x"), expect("/ws", "x"));
    assert_eq!(connected_target("https://example.com"), expect("/", ""));
    assert_eq!(connected_target("http://example.com?q=1"), expect("/", "q=1"));
    // Not a scheme this server speaks: the target is taken as a path, which is unknown.
    assert_eq!(connected_target("ftp://example.com/ws"), None);
}
