//! The C ABI's room to grow: roost_options and roost_event carry the size a program was
//! compiled with, a larger struct with unknown fields set is refused, a program built
//! with the first header is served (its structs read and written at their size, events
//! too, without the fields added since), events are written at the caller's stride, and
//! the version macros match the library.

mod common;

use std::ffi::CStr;
use std::mem::size_of;
use std::ptr::null_mut;

use roost::ffi::*;
use roost_status::*;

/// roost_options as a newer header might declare it: two fields more at the end.
#[repr(C)]
#[derive(Clone, Copy)]
struct NewerOptions {
    known: roost_options,
    future_a: u64,
    future_b: u64,
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(roost_last_error()) }.to_string_lossy().into_owned()
}

fn newer_options() -> NewerOptions {
    // 0xAB everywhere: init must zero what it does not know.
    let mut o = std::mem::MaybeUninit::<NewerOptions>::uninit();
    // SAFETY: `o` is `size_of::<NewerOptions>()` writable bytes.
    unsafe { o.as_mut_ptr().cast::<u8>().write_bytes(0xAB, size_of::<NewerOptions>()) };
    // SAFETY: as above; init writes every byte of it.
    let status = unsafe { roost_options_init(o.as_mut_ptr().cast(), size_of::<NewerOptions>()) };
    assert_eq!(status, ROOST_OK);
    // SAFETY: fully written by roost_options_init.
    unsafe { o.assume_init() }
}

#[test]
fn options_init_sets_the_size_and_zeroes_fields_it_does_not_know() {
    let o = newer_options();
    assert_eq!(o.known.size as usize, size_of::<NewerOptions>());
    assert_eq!((o.future_a, o.future_b), (0, 0));
    assert_eq!(o.known.max_message_size, 1 << 20);
    assert_eq!(o.known.max_frame_size, 0, "the frame limit follows the message limit by default");
}

#[test]
fn a_larger_struct_is_accepted_while_its_unknown_fields_are_zero_and_refused_otherwise() {
    let o = newer_options();
    let mut server = null_mut();
    // SAFETY: `o` spans the size it declares; `server` is writable.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut server) }, ROOST_OK);
    assert_eq!(roost_server_free(server), ROOST_OK);

    let mut o = newer_options();
    o.future_b = 1;
    let mut server = null_mut();
    // SAFETY: as above.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut server) }, ROOST_INVALID_ARGUMENT);
    let message = last_error();
    assert!(message.contains("newer roost.h"), "{message}");
    assert!(server.is_null());
}

/// `sizeof(roost_options)`, `sizeof(roost_stats)` and `sizeof(roost_event)` in the
/// first header (0.1.0).
const FIRST_OPTIONS_SIZE: usize = 80;
const FIRST_STATS_SIZE: usize = 40;
const FIRST_EVENT_SIZE: usize = 120;

#[test]
fn a_struct_smaller_than_the_first_version_is_refused() {
    let mut o = newer_options();
    // SAFETY: `o` is writable; the size is what is wrong.
    let status = unsafe { roost_options_init(&mut o.known, FIRST_OPTIONS_SIZE - 1) };
    assert_eq!(status, ROOST_INVALID_ARGUMENT);
    assert!(last_error().contains("at least 80"), "{}", last_error());
    o.known.size = (FIRST_OPTIONS_SIZE - 1) as u32;
    let mut server = null_mut();
    // SAFETY: `o` is readable; its declared size is too small.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut server) }, ROOST_INVALID_ARGUMENT);
    o.known.size = 8;
    // SAFETY: as above.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut server) }, ROOST_INVALID_ARGUMENT);
}

#[test]
fn a_program_compiled_with_the_first_header_is_served_with_the_defaults_of_later_fields() {
    // The first header's roost_options is this one's first 80 bytes; what follows them
    // in the program's memory is not its own and must be neither read nor written.
    let mut raw = [0xEEu8; size_of::<roost_options>() + 16];
    // SAFETY: `raw` has 80 writable bytes (and more) at its start.
    let status = unsafe { roost_options_init(raw.as_mut_ptr().cast(), FIRST_OPTIONS_SIZE) };
    assert_eq!(status, ROOST_OK);
    assert!(raw[FIRST_OPTIONS_SIZE..].iter().all(|&b| b == 0xEE), "init wrote past the program's struct");
    assert_eq!(u32::from_ne_bytes(raw[..4].try_into().unwrap()) as usize, FIRST_OPTIONS_SIZE);
    let mut server = null_mut();
    // SAFETY: `raw` holds a first-version roost_options (its size field says 80); the
    // library reads no further.
    let status = unsafe { roost_server_new(raw.as_ptr().cast(), &mut server) };
    assert_eq!(status, ROOST_OK, "{}", last_error());

    // Its roost_stats is 40 bytes: filled, and nothing after them touched.
    let mut stats = [0xEEu8; size_of::<roost_stats>() + 16];
    // SAFETY: `stats` has 40 writable bytes (and more).
    let status = unsafe { roost_server_stats(server, stats.as_mut_ptr().cast(), FIRST_STATS_SIZE) };
    assert_eq!(status, ROOST_OK);
    assert_eq!(u32::from_ne_bytes(stats[..4].try_into().unwrap()) as usize, FIRST_STATS_SIZE);
    assert!(stats[8..FIRST_STATS_SIZE].iter().all(|&b| b == 0), "no connections, no topics yet");
    assert!(stats[FIRST_STATS_SIZE..].iter().all(|&b| b == 0xEE), "stats wrote past the program's struct");

    // Nor does a program of a header just before the traffic counters get them.
    let before_counters = std::mem::offset_of!(roost_stats, messages_received);
    // SAFETY: `stats` has that many writable bytes (and more).
    let status = unsafe { roost_server_stats(server, stats.as_mut_ptr().cast(), before_counters) };
    assert_eq!(status, ROOST_OK);
    assert!(stats[before_counters..].iter().all(|&b| b == 0xEE), "stats wrote past the program's struct");
    // SAFETY: as above, the size is what is wrong.
    let status = unsafe { roost_server_stats(server, stats.as_mut_ptr().cast(), FIRST_STATS_SIZE - 1) };
    assert_eq!(status, ROOST_INVALID_ARGUMENT);
    assert_eq!(roost_server_free(server), ROOST_OK);
}

/// A server made from `o`, started on 127.0.0.1:`port`: the status of the start, the
/// server (free it) and the port bound.
fn start_with(o: *const roost_options, port: u16) -> (roost_status, *mut roost_server, u16) {
    let mut server = null_mut();
    // SAFETY: the callers' `o` spans the size it declares; `server` is writable.
    assert_eq!(unsafe { roost_server_new(o, &mut server) }, ROOST_OK);
    let (mut route, mut bound) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    let status = unsafe {
        assert_eq!(roost_server_add_route(server, b"/ws".as_ptr(), 3, &mut route), ROOST_OK);
        roost_server_start(server, b"127.0.0.1".as_ptr(), 9, port, &mut bound)
    };
    (status, server, bound)
}

#[test]
fn a_struct_of_an_older_header_gets_the_newer_fields_defaults() {
    // An older program's struct ends before reuse_port: init writes only its bytes,
    // and the library reads only them. What lies beyond (here 0xAB, which as
    // reuse_port would be no valid bool) is neither written nor read.
    let mut o = std::mem::MaybeUninit::<roost_options>::uninit();
    // SAFETY: `o` is `size_of::<roost_options>()` writable bytes.
    unsafe { o.as_mut_ptr().cast::<u8>().write_bytes(0xAB, size_of::<roost_options>()) };
    // SAFETY: as above, and at least FIRST_OPTIONS_SIZE bytes long.
    let status = unsafe { roost_options_init(o.as_mut_ptr(), FIRST_OPTIONS_SIZE) };
    assert_eq!(status, ROOST_OK);
    // SAFETY: every byte of `o` is initialised (0xAB or init's).
    let raw = unsafe { std::slice::from_raw_parts(o.as_ptr().cast::<u8>(), size_of::<roost_options>()) };
    assert!(raw[FIRST_OPTIONS_SIZE..].iter().all(|&b| b == 0xAB), "init wrote past the older struct");
    assert_eq!(u32::from_ne_bytes(raw[..4].try_into().unwrap()) as usize, FIRST_OPTIONS_SIZE);

    // reuse_port takes its default, false: a second server on the same port fails.
    let (status, first, port) = start_with(o.as_ptr(), 0);
    assert_eq!(status, ROOST_OK);
    let (status, second, _) = start_with(o.as_ptr(), port);
    assert_eq!(status, ROOST_IO);
    assert_eq!(roost_server_free(second), ROOST_OK);
    assert_eq!(roost_server_free(first), ROOST_OK);
}

#[test]
fn reuse_port_lets_two_servers_start_on_one_port() {
    let mut o = std::mem::MaybeUninit::<roost_options>::uninit();
    // SAFETY: `o` is a writable roost_options, which init fills.
    let mut o = unsafe {
        assert_eq!(roost_options_init(o.as_mut_ptr(), size_of::<roost_options>()), ROOST_OK);
        o.assume_init()
    };
    assert!(!o.reuse_port, "off by default");
    o.reuse_port = true;
    let (status, first, port) = start_with(&o, 0);
    assert_eq!(status, ROOST_OK);
    let (status, second, bound) = start_with(&o, port);
    assert_eq!((status, bound), (ROOST_OK, port));
    assert_eq!(roost_server_free(second), ROOST_OK);
    assert_eq!(roost_server_free(first), ROOST_OK);
}

#[test]
fn events_are_written_at_the_callers_stride_and_unknown_tails_zeroed() {
    // A server, a route, a client, and a poll with a larger stride.
    let o = newer_options();
    let mut s = null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut s) }, ROOST_OK);
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_add_route(s, b"/ws".as_ptr(), 3, &mut route), ROOST_OK);
        assert_eq!(roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ws = common::block_on(&rt, 10, common::ws_connect(port, "/ws"));

    const STRIDE: usize = size_of::<roost_event>() + 24;
    let mut raw = vec![0xCDu8; STRIDE * 4];
    let mut n = 0usize;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while n == 0 && std::time::Instant::now() < deadline {
        // SAFETY: `raw` holds 4 events of STRIDE bytes.
        let status = unsafe { roost_server_poll(s, raw.as_mut_ptr().cast(), 4, STRIDE, &mut n) };
        assert_eq!(status, ROOST_OK);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(n, 1, "one connect event");
    // SAFETY: the library wrote a roost_event at offset 0; read it unaligned.
    let event: roost_event = unsafe { raw.as_ptr().cast::<roost_event>().read_unaligned() };
    assert_eq!(event.kind, roost_event_kind::ROOST_EVENT_CONNECT);
    assert!(event.header_count > 0);
    assert!(raw[size_of::<roost_event>()..STRIDE].iter().all(|&b| b == 0), "the tail is zeroed");
    assert!(raw[STRIDE..].iter().all(|&b| b == 0xCD), "nothing beyond the events polled is touched");

    // A stride smaller than the first version's event is refused.
    // SAFETY: as above; the size is what is wrong.
    let status = unsafe { roost_server_poll(s, raw.as_mut_ptr().cast(), 4, FIRST_EVENT_SIZE - 8, &mut n) };
    assert_eq!(status, ROOST_INVALID_ARGUMENT);
    assert!(last_error().contains("at least 120"), "{}", last_error());
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn a_program_compiled_with_the_first_event_gets_its_fields_at_its_stride_and_nothing_more() {
    assert_eq!(std::mem::offset_of!(roost_event, method), FIRST_EVENT_SIZE, "fields only grow at the end");
    let mut s = null_mut();
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: default options, valid buffers and out-pointers.
    unsafe {
        assert_eq!(roost_server_new(std::ptr::null(), &mut s), ROOST_OK);
        assert_eq!(roost_server_add_route(s, b"/ws".as_ptr(), 3, &mut route), ROOST_OK);
        // A subprotocol the newer field would carry, which the old event has no room for.
        assert_eq!(roost_server_route_subprotocols(s, route, b"chat".as_ptr(), 4, false), ROOST_OK);
        assert_eq!(roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ws = common::block_on(
        &rt,
        10,
        common::ws_connect_with_header(port, "/ws", "sec-websocket-protocol", "chat"),
    );
    common::block_on(&rt, 10, futures_util::SinkExt::send(&mut ws, "hi".into())).unwrap();

    // The old program's array: 4 events of 120 bytes, and what follows is not its own.
    let mut raw = vec![0xCDu8; FIRST_EVENT_SIZE * 4 + 64];
    let mut polled = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while polled.len() < 2 && std::time::Instant::now() < deadline {
        let mut n = 0usize;
        // SAFETY: `raw` holds 4 events of FIRST_EVENT_SIZE bytes.
        let status = unsafe { roost_server_poll(s, raw.as_mut_ptr().cast(), 4, FIRST_EVENT_SIZE, &mut n) };
        assert_eq!(status, ROOST_OK, "{}", last_error());
        assert!(raw[FIRST_EVENT_SIZE * n..].iter().all(|&b| b == 0xCD), "written past the events polled");
        for slot in raw.chunks(FIRST_EVENT_SIZE).take(n) {
            // What the old header declares: this event's first 120 bytes, the rest zero.
            let mut event = std::mem::MaybeUninit::<roost_event>::zeroed();
            // SAFETY: 120 bytes into a zeroed event of more; a zeroed event is valid.
            let event = unsafe {
                std::ptr::copy_nonoverlapping(
                    slot.as_ptr(),
                    event.as_mut_ptr().cast::<u8>(),
                    FIRST_EVENT_SIZE,
                );
                event.assume_init()
            };
            // SAFETY: the pointers are valid until the next poll.
            let data = unsafe { common::slice(event.data, event.data_len).to_vec() };
            // SAFETY: as above.
            let path = unsafe { common::slice(event.path, event.path_len).to_vec() };
            polled.push((event.kind, event.connection, path, data));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let [(connect, id, path, _), (text, text_id, _, data)] = &polled[..] else { panic!("{polled:?}") };
    assert_eq!((*connect, path.as_slice()), (roost_event_kind::ROOST_EVENT_CONNECT, &b"/ws"[..]));
    assert_eq!((*text, text_id, data.as_slice()), (roost_event_kind::ROOST_EVENT_TEXT, id, &b"hi"[..]));
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn the_header_version_matches_the_library_and_the_runtime_call() {
    let parts: Vec<u32> = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts, [ROOST_VERSION_MAJOR, ROOST_VERSION_MINOR, ROOST_VERSION_PATCH]);
    assert_eq!(
        ROOST_VERSION_NUMBER,
        ROOST_VERSION_MAJOR << 16 | ROOST_VERSION_MINOR << 8 | ROOST_VERSION_PATCH
    );
    assert_eq!(roost_version_number(), ROOST_VERSION_NUMBER);
    // SAFETY: a static NUL-terminated string.
    let text = unsafe { CStr::from_ptr(roost_version()) }.to_str().unwrap();
    assert_eq!(text, env!("CARGO_PKG_VERSION"));
}

#[test]
fn close_check_is_the_rule_close_applies() {
    let check = |code: u16, reason: &[u8]| {
        // SAFETY: `reason` is a valid buffer of its length.
        unsafe { roost_close_check(code, reason.as_ptr(), reason.len()) }
    };
    for code in [1000, 1003, 1007, 1014, 3000, 4999] {
        assert_eq!(check(code, b""), ROOST_OK, "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(check(code, b""), ROOST_INVALID_ARGUMENT, "{code}");
    }
    let longest = vec![b'x'; ROOST_MAX_CLOSE_REASON as usize];
    assert_eq!(check(1000, &longest), ROOST_OK);
    assert_eq!(check(1000, &[longest.as_slice(), b"x"].concat()), ROOST_INVALID_ARGUMENT);
    assert!(last_error().contains("123"));
    assert_eq!(check(1000, b"\xff"), ROOST_INVALID_ARGUMENT);
}

/// Polls `s` at `stride` bytes an event into `raw` until an event comes (10 s at most);
/// returns how many.
fn poll_until_some(s: *mut roost_server, raw: &mut [u8], stride: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0usize;
    while n == 0 && std::time::Instant::now() < deadline {
        // SAFETY: `raw` holds `raw.len() / stride` events of `stride` bytes.
        let status =
            unsafe { roost_server_poll(s, raw.as_mut_ptr().cast(), raw.len() / stride, stride, &mut n) };
        assert_eq!(status, ROOST_OK);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    n
}

#[test]
fn a_program_of_the_first_header_gets_request_events_without_the_fields_it_lacks() {
    let o = newer_options();
    let mut s = null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { roost_server_new(&o.known, &mut s) }, ROOST_OK);
    let (mut route, mut port) = (0u32, 0u16);
    // SAFETY: valid buffers and out-pointers.
    unsafe {
        assert_eq!(
            roost_server_add_http_route(s, b"POST".as_ptr(), 4, b"/in".as_ptr(), 3, &mut route),
            ROOST_OK
        );
        assert_eq!(roost_server_start(s, b"127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
    }
    // Two threads: the client runs while this thread polls.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let request = b"POST /in?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
    let client = rt.spawn(common::http_client::exchange(port, request));

    let mut raw = vec![0xCDu8; FIRST_EVENT_SIZE * 2];
    assert_eq!(poll_until_some(s, &mut raw, FIRST_EVENT_SIZE), 1);
    // SAFETY: the library wrote the first FIRST_EVENT_SIZE bytes of a roost_event; the
    // fields after them are not read.
    let event: roost_event = unsafe { raw.as_ptr().cast::<roost_event>().read_unaligned() };
    assert_eq!((event.kind, event.route), (roost_event_kind::ROOST_EVENT_REQUEST, route));
    // SAFETY: the event's pointers live until the next poll.
    let (path, body) = unsafe {
        (
            std::slice::from_raw_parts(event.path, event.path_len),
            std::slice::from_raw_parts(event.data, event.data_len),
        )
    };
    assert_eq!((path, body), (&b"/in"[..], &b"body"[..]));
    assert!(
        raw[FIRST_EVENT_SIZE..].iter().all(|&b| b == 0xCD),
        "the method was written past the program's event"
    );
    let headers = b"X-Seen: yes\r\n";
    // SAFETY: valid buffers.
    let status = unsafe {
        roost_request_respond(s, event.connection, 201, headers.as_ptr(), headers.len(), b"made".as_ptr(), 4)
    };
    assert_eq!(status, ROOST_OK, "{}", last_error());
    let answer = common::block_on(&rt, 10, client).unwrap();
    assert_eq!((answer.status, answer.header("x-seen"), answer.body.as_str()), (201, Some("yes"), "made"));

    // This header's event has the method, and the stats count the request.
    let client = rt.spawn(common::http_client::exchange(port, request));
    let mut raw = vec![0u8; size_of::<roost_event>()];
    assert_eq!(poll_until_some(s, &mut raw, size_of::<roost_event>()), 1);
    // SAFETY: a whole roost_event was written.
    let event: roost_event = unsafe { raw.as_ptr().cast::<roost_event>().read_unaligned() };
    // SAFETY: the event's pointers live until the next poll.
    assert_eq!(unsafe { std::slice::from_raw_parts(event.method, event.method_len) }, b"POST");
    // SAFETY: NULL buffers of length 0.
    let status = unsafe { roost_request_respond(s, event.connection, 204, null_mut(), 0, null_mut(), 0) };
    assert_eq!(status, ROOST_OK);
    assert_eq!(common::block_on(&rt, 10, client).unwrap().status, 204);
    let mut stats = std::mem::MaybeUninit::<roost_stats>::uninit();
    // SAFETY: a writable roost_stats.
    assert_eq!(unsafe { roost_server_stats(s, stats.as_mut_ptr(), size_of::<roost_stats>()) }, ROOST_OK);
    // SAFETY: filled by the call.
    assert_eq!(unsafe { stats.assume_init() }.http_requests, 2);
    assert_eq!(roost_server_free(s), ROOST_OK);
}

#[test]
fn options_init_gives_the_http_defaults_and_zero_means_the_default() {
    let o = newer_options();
    assert_eq!(o.known.max_http_body_size, 1 << 20);
    assert_eq!((o.known.http_idle_timeout_ms, o.known.http_response_timeout_ms), (5000, 30000));
    assert!(o.known.health_path.is_null() && o.known.metrics_path.is_null());
    let mut zeroed = o;
    zeroed.known.max_http_body_size = 0;
    zeroed.known.http_idle_timeout_ms = 0;
    zeroed.known.http_response_timeout_ms = 0;
    let mut s = null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { roost_server_new(&zeroed.known, &mut s) }, ROOST_OK, "{}", last_error());
    assert_eq!(roost_server_free(s), ROOST_OK);
}
