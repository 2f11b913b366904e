//! `allowed_origins`: a browser's upgrade from an origin outside the list gets 403 before
//! the upgrade's other checks and never becomes a connection; a listed origin (in any
//! ASCII case) and a request without `Origin` are upgraded; an unknown path stays 404;
//! the list is checked when the server is made, through Rust and through C.

mod common;

use std::ffi::CStr;
use std::time::Duration;

use common::*;
use roost::ffi::*;
use roost::{Config, Error, Server};
use roost_status::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn guarded() -> Config {
    Config {
        allowed_origins: vec!["http://localhost:8080".into(), "https://app.example.com".into()],
        ..test_config()
    }
}

/// Status of the answer to an upgrade of /ws carrying `extra` header lines; the socket
/// is read to its end only when the upgrade was refused.
async fn status_of(port: u16, extra: &str) -> HttpAnswer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(upgrade_request_with(port, "/ws", extra).as_bytes()).await.unwrap();
    parse_http(&read_head(&mut s).await)
}

#[test]
fn listed_origins_in_any_case_and_requests_without_origin_are_upgraded() {
    let (h, mut events) = Harness::with_consumer(guarded(), &["/ws"], record_handler());
    let port = h.port;
    run(10, async move {
        for extra in ["Origin: http://localhost:8080\r\n", "Origin: HTTPS://App.Example.COM\r\n", ""] {
            assert_eq!(status_of(port, extra).await.status, 101, "{extra:?}");
            events.connect().await;
        }
        // A real client, as a page of a listed origin would connect.
        let mut ws = ws_connect_with_header(port, "/ws", "origin", "http://localhost:8080").await;
        events.connect().await;
        ws.close(None).await.unwrap();
    });
}

#[test]
fn an_origin_outside_the_list_gets_403_and_never_connects() {
    let (h, mut events) = Harness::with_consumer(guarded(), &["/ws"], record_handler());
    let (port, server) = (h.port, h.server().clone());
    run(10, async move {
        for origin in ["http://localhost:8081", "http://localhost", "https://evil.example", "null"] {
            let request = upgrade_request_with(port, "/ws", &format!("Origin: {origin}\r\n"));
            let answer = raw_exchange(port, request.as_bytes()).await;
            assert_eq!(answer.status, 403, "{origin}: {answer:?}");
            assert_eq!(answer.body, "Forbidden origin\n");
            assert_eq!(answer.header("content-length"), Some("17"));
        }
        // Two Origin headers: every one must be allowed.
        let two = "Origin: http://localhost:8080\r\nOrigin: https://evil.example\r\n";
        let answer = raw_exchange(port, upgrade_request_with(port, "/ws", two).as_bytes()).await;
        assert_eq!(answer.status, 403, "{answer:?}");
        assert!(
            events.next_within(Duration::from_millis(300)).await.is_none(),
            "a refused upgrade connected"
        );
        assert_eq!(server.connection_count(), 0);
        assert_eq!(server.stats().upgrades_refused_403, 5);
    });
}

#[test]
fn the_origin_is_checked_before_the_upgrades_other_checks_but_after_the_path() {
    let h = Harness::new(guarded(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        // A version the server does not speak and no key: the origin answers first.
        let request = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Version: 8\r\nOrigin: https://evil.example\r\n\r\n";
        assert_eq!(raw_exchange(port, request.as_bytes()).await.status, 403);
        // A path no route serves is 404 whatever the origin.
        let request = upgrade_request_with(port, "/elsewhere", "Origin: https://evil.example\r\n");
        assert_eq!(raw_exchange(port, request.as_bytes()).await.status, 404);
        // A listed origin still meets the other checks.
        let request = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Version: 8\r\nOrigin: http://localhost:8080\r\n\r\n";
        assert_eq!(raw_exchange(port, request.as_bytes()).await.status, 426);
    });
}

#[test]
fn without_a_list_any_origin_is_upgraded() {
    let h = Harness::new(test_config(), &["/ws"]);
    let port = h.port;
    run(10, async move {
        assert_eq!(status_of(port, "Origin: https://anywhere.example\r\n").await.status, 101);
        assert_eq!(status_of(port, "Origin: null\r\n").await.status, 101);
    });
}

#[test]
fn an_entry_that_is_not_an_origin_is_refused_by_name() {
    for bad in ["localhost:8080", "http://localhost:8080/", "http://example.com/app", "http://a:99999", ""] {
        let config =
            Config { allowed_origins: vec!["http://ok.example".into(), bad.into()], ..test_config() };
        match Server::new(config) {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.contains(&format!("{bad:?}")), "{message}")
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(roost_last_error()) }.to_string_lossy().into_owned()
}

/// `roost_server_new` with `allowed_origins` set to `list`: its status, and the server
/// (NULL unless OK; the caller frees it).
fn new_with_origins(list: &[u8]) -> (roost_status, *mut roost_server) {
    let mut options = std::mem::MaybeUninit::<roost_options>::uninit();
    // SAFETY: `options` is a writable roost_options of the size passed.
    let mut options = unsafe {
        assert_eq!(roost_options_init(options.as_mut_ptr(), size_of::<roost_options>()), ROOST_OK);
        options.assume_init()
    };
    options.ping_interval_ms = 0;
    let pointer = if list.is_empty() { std::ptr::null() } else { list.as_ptr() };
    (options.allowed_origins, options.allowed_origins_len) = (pointer, list.len());
    let mut server = std::ptr::null_mut();
    // SAFETY: `options` and the list it points to outlive the call; `server` is writable.
    let status = unsafe { roost_server_new(&options, &mut server) };
    (status, server)
}

#[test]
fn the_c_option_is_a_comma_separated_list_checked_at_creation() {
    for bad in [
        &b"http://ok.example,"[..],
        b"http://ok.example/path",
        b"ok.example",
        b"http://ok.example,,http://b.example",
    ] {
        let (status, server) = new_with_origins(bad);
        assert_eq!(status, ROOST_INVALID_ARGUMENT, "{}", String::from_utf8_lossy(bad));
        assert!(server.is_null());
        assert!(last_error().contains("allowed origin"), "{}", last_error());
    }
    let (status, _) = new_with_origins(b"http://ok.example, \xff");
    assert_eq!(status, ROOST_INVALID_ARGUMENT, "not UTF-8");

    // Entries with spaces around them; the second is held to, the first allowed.
    let (status, server) = new_with_origins(b" http://localhost:8080 ,https://app.example.com");
    assert_eq!(status, ROOST_OK, "{}", last_error());
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_add_route(server, b"/ws".as_ptr(), 3, &mut route), ROOST_OK);
        assert_eq!(roost_server_start(server, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    run(10, async move {
        assert_eq!(status_of(port, "Origin: https://app.example.com\r\n").await.status, 101);
        assert_eq!(status_of(port, "Origin: http://localhost:8080\r\n").await.status, 101);
        assert_eq!(status_of(port, "Origin: http://localhost:8081\r\n").await.status, 403);
    });
    assert_eq!(roost_server_free(server), ROOST_OK);

    // NULL with length 0 is the default: any origin.
    let (status, server) = new_with_origins(b"");
    assert_eq!(status, ROOST_OK);
    assert_eq!(roost_server_free(server), ROOST_OK);
}
