//! The C ABI under misuse: NULLs, freed and double-freed handles, stale connection ids,
//! invalid UTF-8, calls in the wrong state, and a port already in use each give their
//! documented status and a message in roost_last_error, never a crash.

mod common;

use std::ffi::{c_int, CStr};
use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

use common::*;
use roost::ffi::*;
use roost_status::*;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(roost_last_error()) }.to_string_lossy().into_owned()
}

/// Asserts a failing status and a non-empty last error; returns the message.
fn fails(status: roost_status, expected: roost_status) -> String {
    assert_eq!(status, expected);
    let msg = last_error();
    assert!(!msg.is_empty(), "roost_last_error is empty after {status:?}");
    msg
}

fn options() -> roost_options {
    let mut o = MaybeUninit::<roost_options>::uninit();
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    assert_eq!(unsafe { roost_options_init(o.as_mut_ptr(), std::mem::size_of::<roost_options>()) }, ROOST_OK);
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    let mut o = unsafe { o.assume_init() };
    o.ping_interval_ms = 0;
    o.close_timeout_ms = 2000;
    o
}

fn new_server() -> *mut roost_server {
    let mut s = null_mut();
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    assert_eq!(unsafe { roost_server_new(&options(), &mut s) }, ROOST_OK);
    assert!(!s.is_null());
    s
}

fn add_route(s: *mut roost_server, path: &str) -> Result<u32, roost_status> {
    let mut route = u32::MAX;
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    match unsafe { roost_server_add_route(s, path.as_ptr(), path.len(), &mut route) } {
        ROOST_OK => Ok(route),
        status => Err(status),
    }
}

fn start(s: *mut roost_server, port: u16) -> Result<u16, roost_status> {
    let host = "127.0.0.1";
    let mut bound = 0u16;
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    match unsafe { roost_server_start(s, host.as_ptr(), host.len(), port, &mut bound) } {
        ROOST_OK => Ok(bound),
        status => Err(status),
    }
}

fn send_text(s: *mut roost_server, id: u64, data: &[u8]) -> roost_status {
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe { roost_connection_send_text(s, id, data.as_ptr(), data.len()) }
}

#[test]
fn null_pointers_give_invalid_argument() {
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe {
        fails(roost_options_init(null_mut(), std::mem::size_of::<roost_options>()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_new(null(), null_mut()), ROOST_INVALID_ARGUMENT);
        let msg =
            fails(roost_server_add_route(null_mut(), "/ws".as_ptr(), 3, &mut 0), ROOST_INVALID_ARGUMENT);
        assert!(msg.contains("NULL"), "{msg}");

        let s = new_server();
        fails(roost_server_add_route(s, "/ws".as_ptr(), 3, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_add_route(s, null(), 3, &mut 0), ROOST_INVALID_ARGUMENT);
        let route = add_route(s, "/ws").unwrap();
        assert_eq!(route, 0);
        fails(
            roost_server_route_subprotocols(null_mut(), route, "x".as_ptr(), 1, false),
            ROOST_INVALID_ARGUMENT,
        );
        fails(roost_server_route_subprotocols(s, route, null(), 1, false), ROOST_INVALID_ARGUMENT);
        fails(roost_server_start(s, "127.0.0.1".as_ptr(), 9, 0, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_start(s, null(), 9, 0, &mut 0), ROOST_INVALID_ARGUMENT);
        fails(roost_server_start(null_mut(), "127.0.0.1".as_ptr(), 9, 0, &mut 0), ROOST_INVALID_ARGUMENT);
        // The refused starts did not start it.
        let port = start(s, 0).expect("start after refused starts");
        assert_ne!(port, 0);

        fails(roost_server_ready_fd(s, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_ready_fd(null_mut(), &mut 0), ROOST_INVALID_ARGUMENT);
        let mut events = [MaybeUninit::<roost_event>::uninit(); 4];
        let ev = events.as_mut_ptr().cast::<roost_event>();
        let mut n = 0usize;
        fails(
            roost_server_poll(s, null_mut(), 4, std::mem::size_of::<roost_event>(), &mut n),
            ROOST_INVALID_ARGUMENT,
        );
        fails(
            roost_server_poll(s, ev, 0, std::mem::size_of::<roost_event>(), &mut n),
            ROOST_INVALID_ARGUMENT,
        );
        fails(
            roost_server_poll(s, ev, 4, std::mem::size_of::<roost_event>(), null_mut()),
            ROOST_INVALID_ARGUMENT,
        );
        fails(
            roost_server_poll(null_mut(), ev, 4, std::mem::size_of::<roost_event>(), &mut n),
            ROOST_INVALID_ARGUMENT,
        );
        assert_eq!(roost_server_poll(s, ev, 4, std::mem::size_of::<roost_event>(), &mut n), ROOST_OK);
        fails(roost_server_connection_count(s, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_connection_count(null_mut(), &mut n), ROOST_INVALID_ARGUMENT);

        fails(roost_connection_send_text(null_mut(), 1, "x".as_ptr(), 1), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_send_binary(null_mut(), 1, "x".as_ptr(), 1), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_send_text(s, 1, null(), 5), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_send_binary(s, 1, null(), 5), ROOST_INVALID_ARGUMENT);
        fails(
            roost_server_broadcast_text(null_mut(), 0, "x".as_ptr(), 1, null_mut()),
            ROOST_INVALID_ARGUMENT,
        );
        fails(roost_server_broadcast_binary(s, 0, null(), 1, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_close(null_mut(), 1, 1000, null(), 0), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_close(s, 1, 1000, null(), 4), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_pause_reading(null_mut(), 1, true), ROOST_INVALID_ARGUMENT);
        fails(roost_server_stop(null_mut(), 0), ROOST_INVALID_ARGUMENT);
        // NULL data with length 0 is an empty message, not an error; recipients may be NULL.
        assert_eq!(roost_server_broadcast_binary(s, 0, null(), 0, null_mut()), ROOST_OK);

        assert_eq!(roost_server_free(null_mut()), ROOST_OK);
        assert_eq!(roost_server_free(s), ROOST_OK);
    }
}

#[test]
fn freed_handle_is_invalid_argument_and_double_free_is_detected() {
    let s = new_server();
    add_route(s, "/ws").unwrap();
    let port = start(s, 0).unwrap();
    assert_eq!(roost_server_free(s), ROOST_OK);
    let msg = fails(roost_server_free(s), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("freed"), "{msg}");
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe {
        assert_eq!(add_route(s, "/x"), Err(ROOST_INVALID_ARGUMENT));
        assert_eq!(start(s, 0), Err(ROOST_INVALID_ARGUMENT));
        let mut fd: c_int = -1;
        fails(roost_server_ready_fd(s, &mut fd), ROOST_INVALID_ARGUMENT);
        let mut events = [MaybeUninit::<roost_event>::uninit(); 4];
        let mut n = 0usize;
        fails(
            roost_server_poll(s, events.as_mut_ptr().cast(), 4, std::mem::size_of::<roost_event>(), &mut n),
            ROOST_INVALID_ARGUMENT,
        );
        fails(send_text(s, 1, b"x"), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_send_binary(s, 1, "x".as_ptr(), 1), ROOST_INVALID_ARGUMENT);
        fails(roost_server_broadcast_text(s, 0, "x".as_ptr(), 1, null_mut()), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_close(s, 1, 1000, null(), 0), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_pause_reading(s, 1, true), ROOST_INVALID_ARGUMENT);
        fails(roost_server_stop(s, 0), ROOST_INVALID_ARGUMENT);
        fails(roost_server_connection_count(s, &mut n), ROOST_INVALID_ARGUMENT);
        fails(roost_server_route_subprotocols(s, 0, "x".as_ptr(), 1, false), ROOST_INVALID_ARGUMENT);
    }
    // A forged handle is refused the same way.
    fails(roost_server_stop(0xdead_0008usize as *mut roost_server, 0), ROOST_INVALID_ARGUMENT);
    // Freeing stopped the server: nobody listens on its port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn calls_in_the_wrong_state_and_bad_arguments() {
    let s = new_server();
    assert_eq!(start(s, 0), Err(ROOST_INVALID_STATE), "start without routes");
    assert_eq!(add_route(s, "ws"), Err(ROOST_INVALID_ARGUMENT));
    assert_eq!(add_route(s, "/a b"), Err(ROOST_INVALID_ARGUMENT));
    assert_eq!(add_route(s, "/a?b"), Err(ROOST_INVALID_ARGUMENT));
    let bad_utf8 = [b'/', 0xff];
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    assert_eq!(unsafe { roost_server_add_route(s, bad_utf8.as_ptr(), 2, &mut 0) }, ROOST_INVALID_ARGUMENT);
    assert_eq!(add_route(s, "/ws"), Ok(0));
    assert_eq!(add_route(s, "/chat"), Ok(1));
    assert_eq!(add_route(s, "/ws"), Err(ROOST_INVALID_ARGUMENT), "duplicate route");
    start(s, 0).unwrap();
    assert_eq!(add_route(s, "/late"), Err(ROOST_INVALID_STATE));
    assert!(last_error().contains("before start"), "{}", last_error());
    // SAFETY: a valid buffer of its length.
    let status = unsafe { roost_server_route_subprotocols(s, 0, "v1".as_ptr(), 2, false) };
    assert_eq!(status, ROOST_INVALID_STATE);
    assert!(last_error().contains("before start"), "{}", last_error());
    assert_eq!(start(s, 0), Err(ROOST_INVALID_STATE), "start twice");
    // An option out of range is refused at creation and named.
    let mut o = options();
    o.worker_threads = 0;
    let mut other = null_mut();
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    let msg = fails(unsafe { roost_server_new(&o, &mut other) }, ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("worker_threads"), "{msg}");
    assert!(other.is_null());
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn start_on_a_port_in_use_is_io_and_leaves_the_server_startable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = new_server();
    add_route(s, "/ws").unwrap();
    assert_eq!(start(s, port), Err(ROOST_IO));
    assert!(!last_error().is_empty());
    // Still not started: it can be started elsewhere.
    let other = start(s, 0).expect("start on a free port after the failed bind");
    assert_ne!(other, port);
    assert_eq!(roost_server_free(s), ROOST_OK);
    drop(taken);
}

#[test]
fn connection_calls_stale_ids_utf8_and_calls_after_stop() {
    let s = new_server();
    let route = add_route(s, "/ws").unwrap();
    let port = start(s, 0).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut ws = block_on(&rt, 10, ws_connect_with_header(port, "/ws?a=1", "x-ffi", "yes"));

    let id = poll_until(s, |e| {
        // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
        (e.kind == roost_event_kind::ROOST_EVENT_CONNECT).then(|| unsafe {
            assert_eq!(e.route, route);
            assert_eq!(e.uuid_len, 36);
            assert_eq!(slice(e.path, e.path_len), b"/ws");
            assert_eq!(slice(e.query, e.query_len), b"a=1");
            assert!(std::str::from_utf8(slice(e.peer, e.peer_len)).unwrap().starts_with("127.0.0.1:"));
            let headers = std::slice::from_raw_parts(e.headers, e.header_count);
            assert!(headers.iter().any(|h| slice(h.name, h.name_len).eq_ignore_ascii_case(b"x-ffi")
                && slice(h.value, h.value_len) == b"yes"));
            e.connection
        })
    });

    let msg = fails(send_text(s, id, b"bad \xff utf-8"), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("UTF-8"), "{msg}");
    assert_eq!(send_text(s, id, "héllo".as_bytes()), ROOST_OK);
    assert_eq!(block_on(&rt, 10, ws_recv(&mut ws)), tokio_tungstenite::tungstenite::Message::text("héllo"));

    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe {
        fails(roost_connection_close(s, id, 1005, null(), 0), ROOST_INVALID_ARGUMENT);
        fails(roost_connection_close(s, id, 1000, [0xffu8].as_ptr(), 1), ROOST_INVALID_ARGUMENT);
        assert_eq!(roost_connection_close(s, id, 4001, "bye".as_ptr(), 3), ROOST_OK);
        fails(send_text(s, id, b"late"), ROOST_CLOSED);
        fails(roost_connection_close(s, id, 4001, null(), 0), ROOST_CLOSED);
    }
    let (code, reason) = block_on(&rt, 10, async {
        let c = ws_expect_close(&mut ws).await;
        use futures_util::StreamExt;
        while let Some(Ok(_)) = ws.next().await {}
        c
    });
    assert_eq!((code, reason.as_str()), (4001, "bye"));
    let (code, reason) = poll_until(s, |e| {
        (e.kind == roost_event_kind::ROOST_EVENT_DISCONNECT && e.connection == id)
            // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
            .then(|| (e.close_code, unsafe { slice(e.data, e.data_len) }.to_vec()))
    });
    assert_eq!((code, reason.as_slice()), (4001, &b"bye"[..]));

    // The id is retired.
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe {
        fails(send_text(s, id, b"x"), ROOST_NOT_FOUND);
        fails(roost_connection_send_binary(s, id, "x".as_ptr(), 1), ROOST_NOT_FOUND);
        fails(roost_connection_close(s, id, 1000, null(), 0), ROOST_NOT_FOUND);
        fails(roost_connection_pause_reading(s, id, true), ROOST_NOT_FOUND);
        fails(send_text(s, 987_654_321, b"x"), ROOST_NOT_FOUND);
        let mut recipients = usize::MAX;
        fails(roost_server_broadcast_text(s, 9, "x".as_ptr(), 1, &mut recipients), ROOST_NOT_FOUND);
        assert_eq!(roost_server_broadcast_text(s, route, "x".as_ptr(), 1, &mut recipients), ROOST_OK);
        assert_eq!(recipients, 0);
        fails(
            roost_server_broadcast_text(s, route, [0xc3u8, 0x28].as_ptr(), 2, null_mut()),
            ROOST_INVALID_ARGUMENT,
        );

        // After stop: sends and broadcasts are CLOSED; stop again is fine.
        assert_eq!(roost_server_stop(s, 500), ROOST_OK);
        let msg = fails(roost_server_broadcast_text(s, route, "x".as_ptr(), 1, null_mut()), ROOST_CLOSED);
        assert!(msg.contains("closed"), "{msg}");
        fails(roost_server_broadcast_binary(s, route, "x".as_ptr(), 1, null_mut()), ROOST_CLOSED);
        fails(send_text(s, id, b"x"), ROOST_CLOSED);
        assert_eq!(roost_server_stop(s, 0), ROOST_OK);
        let mut count = usize::MAX;
        assert_eq!(roost_server_connection_count(s, &mut count), ROOST_OK);
        assert_eq!(count, 0);
    }
    assert_eq!(roost_server_free(s), ROOST_OK);
    drop(ws);
    drop(rt);
}

#[test]
fn invalid_utf8_text_is_refused_whatever_the_connection_id() {
    // Argument checks come before look-ups: a caller passing invalid UTF-8 hears that,
    // whether or not the id is live (the documented status for non-UTF-8 data).
    let s = new_server();
    add_route(s, "/ws").unwrap();
    start(s, 0).unwrap();
    fails(send_text(s, 42, b"\xff"), ROOST_INVALID_ARGUMENT);
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn last_error_is_per_thread_and_version_is_static() {
    fails(roost_server_stop(null_mut(), 0), ROOST_INVALID_ARGUMENT);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread's last error leaked");
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    let v = unsafe { CStr::from_ptr(roost_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

fn add_http_route(s: *mut roost_server, method: &str, path: &str) -> Result<u32, roost_status> {
    let mut route = u32::MAX;
    // SAFETY: valid buffers and out-pointer.
    match unsafe {
        roost_server_add_http_route(s, method.as_ptr(), method.len(), path.as_ptr(), path.len(), &mut route)
    } {
        ROOST_OK => Ok(route),
        status => Err(status),
    }
}

fn add_static(s: *mut roost_server, prefix: &str, directory: &str) -> roost_status {
    // SAFETY: valid buffers.
    unsafe { roost_server_add_static(s, prefix.as_ptr(), prefix.len(), directory.as_ptr(), directory.len()) }
}

fn respond(s: *mut roost_server, request: u64, status: u16, headers: &[u8]) -> roost_status {
    // SAFETY: valid buffers.
    unsafe { roost_request_respond(s, request, status, headers.as_ptr(), headers.len(), b"x".as_ptr(), 1) }
}

#[test]
fn the_http_functions_refuse_bad_arguments_and_calls_in_the_wrong_state() {
    let s = new_server();
    let dir = std::env::temp_dir().to_string_lossy().into_owned();
    // SAFETY: pointers are valid, or wrong in ways the library checks (NULL, freed handle).
    unsafe {
        fails(
            roost_server_add_http_route(null_mut(), "GET".as_ptr(), 3, "/a".as_ptr(), 2, &mut 0),
            ROOST_INVALID_ARGUMENT,
        );
        fails(roost_server_add_http_route(s, null(), 3, "/a".as_ptr(), 2, &mut 0), ROOST_INVALID_ARGUMENT);
        fails(roost_server_add_http_route(s, "GET".as_ptr(), 3, null(), 2, &mut 0), ROOST_INVALID_ARGUMENT);
        fails(
            roost_server_add_http_route(s, "GET".as_ptr(), 3, "/a".as_ptr(), 2, null_mut()),
            ROOST_INVALID_ARGUMENT,
        );
        fails(
            roost_server_add_static(null_mut(), "/".as_ptr(), 1, dir.as_ptr(), dir.len()),
            ROOST_INVALID_ARGUMENT,
        );
        fails(roost_server_add_static(s, null(), 1, dir.as_ptr(), dir.len()), ROOST_INVALID_ARGUMENT);
        fails(roost_server_add_static(s, "/".as_ptr(), 1, null(), 4), ROOST_INVALID_ARGUMENT);
        fails(roost_request_respond(null_mut(), 1, 200, null(), 0, null(), 0), ROOST_INVALID_ARGUMENT);
        fails(roost_request_respond(s, 1, 200, null(), 3, null(), 0), ROOST_INVALID_ARGUMENT);
        fails(roost_request_respond(s, 1, 200, null(), 0, null(), 3), ROOST_INVALID_ARGUMENT);
    }
    fails(roost_upgrade_accept(null_mut(), 1), ROOST_INVALID_ARGUMENT);
    fails(roost_server_route_vet_upgrades(null_mut(), 0, true), ROOST_INVALID_ARGUMENT);

    for (method, path) in
        [("get", "/a"), ("G ET", "/a"), ("", "/a"), ("GET", "a"), ("GET", "/a b"), ("GET", "/a?b")]
    {
        assert_eq!(add_http_route(s, method, path), Err(ROOST_INVALID_ARGUMENT), "{method:?} {path:?}");
    }
    assert!(last_error().contains("?"), "{}", last_error());
    let api = add_http_route(s, "GET", "/api").unwrap();
    assert_eq!(add_http_route(s, "GET", "/api"), Err(ROOST_INVALID_ARGUMENT), "the same route twice");
    let ws = add_route(s, "/api").expect("a WebSocket route on an HTTP route's path");
    assert_eq!(ws, api + 1, "one sequence of route ids");
    let msg = fails(roost_server_route_vet_upgrades(s, api, true), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("HTTP route"), "{msg}");
    fails(roost_server_route_vet_upgrades(s, 77, true), ROOST_NOT_FOUND);
    assert_eq!(roost_server_route_vet_upgrades(s, ws, true), ROOST_OK);
    let msg = fails(add_static(s, "assets", &dir), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("/"), "{msg}");
    let msg = fails(add_static(s, "/assets", "/no/such/directory"), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("/no/such/directory"), "{msg}");
    assert_eq!(add_static(s, "/assets", &dir), ROOST_OK);

    // Nothing waits for these answers.
    fails(respond(s, 12345, 200, b""), ROOST_NOT_FOUND);
    fails(roost_upgrade_accept(s, 12345), ROOST_NOT_FOUND);
    // A bad answer is refused before anything is looked up.
    let msg = fails(respond(s, 12345, 200, b"Content-Length: 1\r\n"), ROOST_INVALID_ARGUMENT);
    assert!(msg.contains("content-length"), "{msg}");
    fails(respond(s, 12345, 200, b"X: a\rb\r\n"), ROOST_INVALID_ARGUMENT);

    start(s, 0).unwrap();
    assert_eq!(add_http_route(s, "POST", "/late"), Err(ROOST_INVALID_STATE));
    fails(add_static(s, "/late", &dir), ROOST_INVALID_STATE);
    fails(roost_server_route_vet_upgrades(s, ws, false), ROOST_INVALID_STATE);
    assert_eq!(roost_server_free(s), ROOST_OK);
    fails(respond(s, 1, 200, b""), ROOST_INVALID_ARGUMENT);
    fails(roost_upgrade_accept(s, 1), ROOST_INVALID_ARGUMENT);
}

#[test]
fn health_and_metrics_paths_are_checked_when_the_server_is_made() {
    for (health, metrics, named) in [
        ("health", "", "health_path"),
        ("/h", "metrics", "metrics_path"),
        ("/same", "/same", "differ"),
        ("/a b", "", "health_path"),
    ] {
        let mut o = options();
        (o.health_path, o.health_path_len) = (health.as_ptr(), health.len());
        (o.metrics_path, o.metrics_path_len) = (metrics.as_ptr(), metrics.len());
        let mut s = null_mut();
        // SAFETY: valid options and out-pointer.
        let msg = fails(unsafe { roost_server_new(&o, &mut s) }, ROOST_INVALID_ARGUMENT);
        assert!(msg.contains(named), "{msg}");
        assert!(s.is_null());
    }
    let mut o = options();
    (o.health_path, o.health_path_len) = (null(), 7);
    let mut s = null_mut();
    // SAFETY: NULL with a length, which the library checks.
    fails(unsafe { roost_server_new(&o, &mut s) }, ROOST_INVALID_ARGUMENT);
    // A server with a health path and nothing else starts.
    let mut o = options();
    (o.health_path, o.health_path_len) = ("/health".as_ptr(), 7);
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { roost_server_new(&o, &mut s) }, ROOST_OK);
    start(s, 0).expect("a health path is something to serve");
    assert_eq!(roost_server_free(s), ROOST_OK);
}
