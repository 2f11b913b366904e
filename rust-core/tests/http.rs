//! The HTTP side of the core: requests for HTTP routes handed to a consumer thread and
//! answered with `respond`; keep-alive, pipelining, HEAD, HTTP/1.0; the core's own
//! answers (404, 405, 426, 400, 408, 413, 501, 503); bodies by length and chunked;
//! the timeouts; the health and metrics paths; a stop. Real sockets, raw clients.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http_client::*;
use common::*;
use roost::{Config, Error, Event, Server};
use tokio::io::AsyncReadExt;

/// A server with GET /hello, POST and PUT /echo and a WebSocket route /ws, and a
/// consumer that echoes requests (`http_echo_handler`) and messages.
fn http_server(config: Config) -> (Harness, Events) {
    http_server_with(config, http_echo_handler())
}

fn http_server_with(config: Config, handler: Handler) -> (Harness, Events) {
    let mut h = Harness::with_routes(config, |s| {
        vec![
            s.add_http_route("GET", "/hello").unwrap(),
            s.add_http_route("POST", "/echo").unwrap(),
            s.add_http_route("PUT", "/echo").unwrap(),
            s.add_route("/ws").unwrap(),
        ]
    });
    let events = h.start_consumer(handler);
    (h, events)
}

/// The next request event (other events skipped).
async fn next_request(events: &mut Events) -> Box<roost::RequestInfo> {
    loop {
        if let Event::Request(request) = events.next().await {
            return request;
        }
    }
}

#[test]
fn a_route_is_answered_by_the_consumer_with_its_status_headers_and_body() {
    let (h, mut events) = http_server(test_config());
    let (port, route) = (h.port, h.routes[0]);
    run(10, async move {
        let request = b"GET /hello?name=a%20b HTTP/1.1\r\nHost: x\r\nX-Custom: yes\r\n\r\n";
        let a = exchange(port, request).await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!((a.header("x-method"), a.header("x-path")), (Some("GET"), Some("/hello")));
        assert_eq!(a.header("x-query"), Some("name=a%20b"), "the query is handed over undecoded");
        assert_eq!((a.header("content-length"), a.body.as_str()), (Some("5"), "hello"));
        assert_eq!(a.header("connection"), None, "HTTP/1.1 keeps the connection without saying so");
        let request = next_request(&mut events).await;
        assert_eq!(request.route, route);
        assert_eq!(a.header("x-id"), Some(request.id.to_string().as_str()));
        assert!(request.headers().any(|(n, v)| n == b"X-Custom" && v == b"yes"));
        assert!(request.peer.starts_with("127.0.0.1:"), "{}", request.peer);
        assert!(request.body.is_empty());
    });
    assert_eq!(h.server().stats().http_requests, 1);
}

#[test]
fn keep_alive_serves_three_requests_on_one_socket_with_fresh_ids() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            send(&mut s, &get(&format!("/hello?n={n}"))).await;
            let a = response(&mut s).await;
            assert_eq!((a.status, a.header("x-query")), (200, Some(format!("n={n}").as_str())));
            ids.push(a.header("x-id").unwrap().parse::<u64>().unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
        assert!(!closed_within(&mut s, Duration::from_millis(200)).await, "closed after three requests");
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        let mut both = get("/hello?first");
        both.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond");
        both.extend_from_slice(&get("/hello?third"));
        send(&mut s, &both).await;
        assert_eq!(response(&mut s).await.header("x-query"), Some("first"));
        assert_eq!(response(&mut s).await.body, "second");
        assert_eq!(response(&mut s).await.header("x-query"), Some("third"));
    });
}

#[test]
fn head_on_a_get_route_gets_the_length_without_the_body() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let a = head_response(&mut s).await;
        assert_eq!((a.status, a.header("x-method")), (200, Some("HEAD")), "the consumer sees HEAD");
        assert_eq!(a.header("content-length"), Some("5"));
        // Had the body been sent, this answer would be read from the middle of it.
        send(&mut s, &get("/hello")).await;
        assert_eq!(response(&mut s).await.body, "hello");
        // The core's own answers to HEAD leave their bodies out too.
        for target in ["/echo", "/nowhere"] {
            send(&mut s, format!("HEAD {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await;
            let a = head_response(&mut s).await;
            assert!(a.status == 405 || a.status == 404, "{a:?}");
            assert_ne!(a.header("content-length"), Some("0"), "the length of the body a GET would get");
        }
        send(&mut s, &get("/hello")).await;
        assert_eq!(response(&mut s).await.body, "hello");
    });
}

#[test]
fn unknown_paths_get_404_and_other_methods_405_with_allow_and_the_connection_stays() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/nowhere")).await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.body.as_str()), (404, "Not Found\n"));
        send(&mut s, b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.header("allow")), (405, Some("POST, PUT")));
        send(&mut s, b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(response(&mut s).await.header("allow"), Some("GET, HEAD"));
        send(&mut s, &get("/hello")).await;
        assert_eq!(response(&mut s).await.status, 200, "the connection serves on after them");
    });
    assert_eq!(h.server().stats().http_requests, 4);
}

#[test]
fn a_websocket_path_without_an_upgrade_gets_426_and_an_upgrade_to_an_unknown_path_404() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let a = raw_exchange(port, &get("/ws")).await;
        assert_eq!((a.status, a.header("upgrade")), (426, Some("websocket")));
        let a = raw_exchange(port, upgrade_request(port, "/hello").as_bytes()).await;
        assert_eq!(a.status, 404, "an upgrade goes to WebSocket routes only");
    });
}

#[test]
fn http_1_0_closes_unless_it_asks_to_keep_alive_and_connection_close_is_honoured() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, b"GET /hello HTTP/1.0\r\n\r\n").await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.header("connection")), (200, Some("close")));
        assert!(closed_within(&mut s, Duration::from_secs(2)).await);

        let mut s = connect(port).await;
        for _ in 0..2 {
            send(&mut s, b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
            assert_eq!(response(&mut s).await.header("connection"), Some("keep-alive"));
        }
        send(&mut s, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert_eq!(response(&mut s).await.header("connection"), Some("close"));
        assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    });
}

fn small_bodies() -> Config {
    Config { max_http_body_size: 1000, ..test_config() }
}

#[test]
fn a_body_at_the_limit_is_handed_over_and_one_byte_more_gets_413_and_close() {
    let (h, _events) = http_server(small_bodies());
    let port = h.port;
    run(10, async move {
        let body = "b".repeat(1000);
        let request = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{body}");
        let a = exchange(port, request.as_bytes()).await;
        assert_eq!((a.status, a.body.len()), (200, 1000));

        let mut s = connect(port).await;
        let over = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n{body}b");
        send(&mut s, over.as_bytes()).await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.header("connection")), (413, Some("close")));
        assert!(closed_within(&mut s, Duration::from_secs(3)).await);

        // Chunked, the limit counts the decoded bytes.
        let chunked = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{body}\r\n1\r\nb\r\n0\r\n\r\n"
        );
        let a = raw_exchange_allow_reset(port, chunked.as_bytes()).await;
        assert_eq!(a.status, 413);
    });
}

#[test]
fn a_chunked_body_is_decoded_and_its_trailers_dropped() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        let request = b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
        // In pieces, across the chunk boundaries.
        for piece in request.chunks(7) {
            send(&mut s, piece).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let a = response(&mut s).await;
        assert_eq!((a.status, a.header("x-method"), a.body.as_str()), (200, Some("PUT"), "hello world"));
        send(&mut s, &get("/hello")).await;
        assert_eq!(response(&mut s).await.body, "hello", "the next request follows the trailers");
    });
}

#[test]
fn bad_framing_gets_400_and_an_unknown_coding_501_and_close() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        for (framing, status) in [
            ("Content-Length: abc\r\n", 400),
            ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
            ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: gzip\r\n", 501),
        ] {
            let request = format!("POST /echo HTTP/1.1\r\nHost: x\r\n{framing}\r\nhello");
            let a = raw_exchange_allow_reset(port, request.as_bytes()).await;
            assert_eq!((a.status, a.header("connection")), (status, Some("close")), "{framing:?}");
        }
        let bad_chunk =
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
        assert_eq!(raw_exchange_allow_reset(port, bad_chunk).await.status, 400);
        assert_eq!(raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n").await.status, 400);
    });
}

#[test]
fn expect_100_continue_is_answered_before_the_body_unless_it_is_too_large() {
    let (h, _events) = http_server(small_bodies());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            .await;
        let interim = head_response(&mut s).await;
        assert_eq!(interim.status, 100);
        send(&mut s, b"later").await;
        assert_eq!(response(&mut s).await.body, "later");

        let mut s = connect(port).await;
        send(
            &mut s,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
        )
        .await;
        assert_eq!(response(&mut s).await.status, 413, "no 100 Continue for a body over the limit");
    });
}

#[test]
fn a_later_request_slower_than_the_handshake_timeout_gets_408_and_a_first_one_is_dropped() {
    let config = Config { handshake_timeout: Duration::from_millis(400), ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    run(10, async move {
        // The first request of a connection: dropped without a word, as before HTTP.
        let started = Instant::now();
        let mut s = connect(port).await;
        send(&mut s, b"GET /hello HTTP/1.1\r\nHo").await;
        assert!(closed_within(&mut s, Duration::from_secs(3)).await);
        assert!(started.elapsed() >= Duration::from_millis(350), "{:?}", started.elapsed());

        // A later one: its time counts from its first byte, not from the connection's.
        let mut s = connect(port).await;
        send(&mut s, &get("/hello")).await;
        response(&mut s).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        send(&mut s, b"GET /hello HTTP/1.1\r\nHo").await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.header("connection")), (408, Some("close")));
        assert!(started.elapsed() >= Duration::from_millis(350), "{:?}", started.elapsed());
        assert!(closed_within(&mut s, Duration::from_secs(2)).await);

        // A body too slow gets 408, on a first request too.
        let mut s = connect(port).await;
        send(&mut s, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nslow").await;
        assert_eq!(response(&mut s).await.status, 408);
    });
}

#[test]
fn an_idle_kept_alive_connection_is_closed_silently() {
    let config = Config { http_idle_timeout: Duration::from_millis(300), ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/hello")).await;
        response(&mut s).await;
        let started = Instant::now();
        assert!(
            closed_within(&mut s, Duration::from_secs(3)).await,
            "still open 3 s after a 300 ms idle timeout"
        );
        assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    });
}

#[test]
fn an_unanswered_request_gets_503_and_a_late_answer_not_found() {
    let config = Config { http_response_timeout: Duration::from_millis(300), ..test_config() };
    let (h, mut events) = http_server_with(config, record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/hello")).await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.body.as_str()), (503, "No answer in time\n"));
        let request = next_request(&mut events).await;
        assert!(matches!(server.respond(request.id, 200, b"", b"late"), Err(Error::NotFound)));
        assert!(matches!(server.respond(9_999_999, 200, b"", b""), Err(Error::NotFound)));
        // The connection serves on.
        send(&mut s, &get("/hello")).await;
        let request = next_request(&mut events).await;
        server.respond(request.id, 201, b"", b"made").unwrap();
        assert_eq!(response(&mut s).await.status, 201);
    });
}

#[test]
fn a_response_that_injects_headers_is_refused_and_the_request_still_waits() {
    let (h, mut events) = http_server_with(test_config(), record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let client = tokio::spawn(async move { exchange(port, &get("/hello")).await });
        let id = next_request(&mut events).await.id;
        for (headers, status) in [
            (&b"Content-Length: 0\r\n"[..], 200),
            (b"Connection: close\r\n", 200),
            (b"Transfer-Encoding: chunked\r\n", 200),
            (b"X-A: 1\r\n\r\nHTTP/1.1 200 OK\r\n", 200),
            (b"X-A: 1\nX-B: 2\r\n", 200),
            (b"X-A: 1", 200),
            (b"Bad Name: 1\r\n", 200),
            (b"", 101),
            (b"", 600),
        ] {
            let refused = server.respond(id, status, headers, b"body");
            assert!(
                matches!(refused, Err(Error::InvalidArgument(_))),
                "{:?}",
                String::from_utf8_lossy(headers)
            );
        }
        server.respond(id, 200, b"X-Fine: yes\r\n", b"body").unwrap();
        let a = client.await.unwrap();
        assert_eq!((a.status, a.header("x-fine"), a.header("content-length")), (200, Some("yes"), Some("4")));
    });
}

#[test]
fn the_health_path_says_ok_and_stopping_once_the_server_stops() {
    let config = Config { health_path: Some("/health".into()), ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/health")).await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        send(&mut s, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(head_response(&mut s).await.header("content-length"), Some("3"));
        send(&mut s, b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(response(&mut s).await.header("allow"), Some("GET, HEAD"));

        // A check in flight when the stop begins is answered, with 503.
        let mut s = connect(port).await;
        send(&mut s, b"GET /health HTTP/1.1\r\nHost").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = tokio::spawn(stop_off_runtime(server, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut s, b": x\r\n\r\n").await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.body.as_str(), a.header("connection")), (503, "stopping\n", Some("close")));
        stopping.await.unwrap().unwrap();
    });
}

#[test]
fn the_metrics_path_serves_every_counter_as_prometheus_text() {
    let config = Config { metrics_path: Some("/metrics".into()), ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    run(10, async move {
        let _ws = ws_connect(port, "/ws").await;
        exchange(port, &get("/hello")).await;
        let a = exchange(port, &get("/metrics")).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        let mut samples = std::collections::HashMap::new();
        let mut types = std::collections::HashMap::new();
        for line in a.body.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let mut words = comment.splitn(3, ' ');
                let (keyword, name) = (words.next().unwrap(), words.next().unwrap());
                assert!(keyword == "HELP" || keyword == "TYPE", "{line}");
                if keyword == "TYPE" {
                    types.insert(name.to_string(), words.next().unwrap().to_string());
                }
                continue;
            }
            let (series, value) = line.split_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
            // The one label: the status of the refused upgrades, never a connection's.
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, Some(labels)),
                None => (series, None),
            };
            assert!(name.starts_with("roost_"), "{line}");
            if let Some(labels) = labels {
                assert_eq!(name, "roost_upgrades_refused_total", "{line}");
                assert!(labels.starts_with("status=\"") && labels.ends_with("\"}"), "{line}");
            }
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a value: {line:?}"));
            assert_eq!(types[name] == "counter", name.ends_with("_total"), "{line}");
            samples.insert(series.to_string(), value);
        }
        assert_eq!(samples["roost_connections"], 1.0);
        assert_eq!(samples["roost_http_requests_total"], 1.0, "the metrics request counts once answered");
        assert!(samples.contains_key("roost_tls_handshakes_failed_total"));
        assert_eq!(samples["roost_upgrades_refused_total{status=\"404\"}"], 0.0);
        // Seven series of refused upgrades under one TYPE.
        assert_eq!(samples.len(), types.len() + 6);
    });
}

#[test]
fn a_stop_closes_idle_connections_and_answers_requests_in_flight() {
    let handler: Handler = Box::new(|server: &Server, event: &Event| {
        if let Event::Request(request) = event {
            if request.query() != b"later" {
                echoed(server, request);
            }
        }
    });
    let (h, mut events) = http_server_with(test_config(), handler);
    let port = h.port;
    let server = h.server().clone();
    run(15, async move {
        let mut idle = connect(port).await;
        send(&mut idle, &get("/hello")).await;
        response(&mut idle).await;
        let mut busy = connect(port).await;
        send(&mut busy, &get("/hello?later")).await;
        let id = loop {
            let request = next_request(&mut events).await;
            if request.query() == b"later" {
                break request.id;
            }
        };
        let stopping = tokio::spawn(stop_off_runtime(server.clone(), Duration::from_secs(5)));
        assert!(closed_within(&mut idle, Duration::from_secs(2)).await, "the idle connection stayed open");
        server.respond(id, 200, b"", b"answered while stopping").unwrap();
        let a = response(&mut busy).await;
        assert_eq!((a.body.as_str(), a.header("connection")), ("answered while stopping", Some("close")));
        assert!(closed_within(&mut busy, Duration::from_secs(2)).await);
        stopping.await.unwrap().unwrap();
    });
}

#[test]
fn an_http_request_then_an_upgrade_on_the_same_socket() {
    let (h, mut events) = http_server(test_config());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/hello")).await;
        let http_id: u64 = response(&mut s).await.header("x-id").unwrap().parse().unwrap();
        let mut s = raw_upgrade_on(s, port, "/ws").await;
        let info = events.connect().await;
        assert!(info.id > http_id, "the connection's id follows the request's");
        use tokio::io::AsyncWriteExt;
        s.write_all(&client_frame(true, OP_TEXT, b"after http")).await.unwrap();
        let frame = read_frame(&mut s).await.unwrap().unwrap();
        assert_eq!((frame.opcode, frame.payload.as_slice()), (OP_TEXT, &b"after http"[..]));
    });
}

#[test]
fn requests_are_answered_with_the_core_on_the_consumer_s_thread() {
    let config = Config { inline_io: true, ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        for n in 0..3 {
            send(&mut s, &get(&format!("/hello?{n}"))).await;
            assert_eq!(response(&mut s).await.header("x-query"), Some(n.to_string().as_str()));
        }
    });
}

#[test]
fn a_late_answer_from_another_thread_reaches_a_client_of_an_inline_server() {
    let config = Config { inline_io: true, ..test_config() };
    let (h, mut events) = http_server_with(config, record_handler());
    let port = h.port;
    let server: Arc<Server> = h.server().clone();
    run(10, async move {
        let client = tokio::spawn(async move { exchange(port, &get("/hello")).await });
        let id = next_request(&mut events).await.id;
        std::thread::spawn(move || server.respond(id, 202, b"", b"from elsewhere").unwrap()).join().unwrap();
        let a = client.await.unwrap();
        assert_eq!((a.status, a.body.as_str()), (202, "from elsewhere"));
    });
}

#[test]
fn a_server_with_only_http_routes_starts_and_routes_are_fixed_at_start() {
    let server = Server::new(test_config()).unwrap();
    assert!(matches!(server.add_http_route("get", "/x"), Err(Error::InvalidArgument(_))));
    assert!(matches!(server.add_http_route("GET", "x"), Err(Error::InvalidArgument(_))));
    let route = server.add_http_route("GET", "/x").unwrap();
    assert!(matches!(server.add_http_route("GET", "/x"), Err(Error::InvalidArgument(_))));
    assert!(matches!(server.vet_upgrades(route, true), Err(Error::InvalidArgument(_))));
    assert!(matches!(server.vet_upgrades(route + 1, true), Err(Error::NotFound)));
    server.start("127.0.0.1", 0).unwrap();
    assert!(matches!(server.add_http_route("POST", "/y"), Err(Error::InvalidState(_))));
    assert!(
        matches!(server.broadcast_text(route, "x"), Err(Error::NotFound)),
        "an HTTP route has no clients"
    );
    server.stop(Duration::ZERO).unwrap();

    let bare = Server::new(Config { health_path: Some("/health".into()), ..test_config() }).unwrap();
    bare.start("127.0.0.1", 0).expect("a health path is enough to serve");
    for bad in ["health", "/a b", "/a?b"] {
        let config = Config { metrics_path: Some(bad.into()), ..test_config() };
        assert!(matches!(Server::new(config), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
}

#[test]
fn a_large_body_arrives_whole() {
    let (h, _events) = http_server(test_config());
    let port = h.port;
    run(20, async move {
        let body: String = (0..(1 << 20)).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let mut s = connect(port).await;
        let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        send(&mut s, head.as_bytes()).await;
        let (mut reader, mut writer) = s.into_split();
        let upload = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer.write_all(body.as_bytes()).await.unwrap();
            (writer, body)
        });
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(reader.read_u8().await.unwrap());
        }
        let a = parse_http(&head);
        let mut echoed = vec![0u8; a.header("content-length").unwrap().parse().unwrap()];
        reader.read_exact(&mut echoed).await.unwrap();
        let (_writer, body) = upload.await.unwrap();
        assert!(echoed == body.as_bytes(), "the body came back changed ({} bytes)", echoed.len());
    });
}

/// A fresh directory of the test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("roost-http-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn static_files_are_served_through_the_loop_after_the_routes() {
    let root = TempDir::new("static");
    let public = root.0.join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("app.js"), "console.log(1);\n").unwrap();
    std::fs::write(public.join("hello"), "shadowed by the route\n").unwrap();
    std::fs::write(root.0.join("secret.txt"), "outside the mount\n").unwrap();
    let mut h = Harness::with_routes(test_config(), |s| {
        s.add_static("/", &public).unwrap();
        assert!(matches!(s.add_static("/", &public), Err(Error::InvalidArgument(_))), "mounted twice");
        let missing = s.add_static("/nope", root.0.join("missing"));
        assert!(matches!(missing, Err(Error::InvalidArgument(m)) if m.contains("missing")));
        vec![s.add_http_route("GET", "/hello").unwrap(), s.add_route("/ws").unwrap()]
    });
    let _events = h.start_consumer(http_echo_handler());
    let port = h.port;
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, &get("/app.js")).await;
        let a = response(&mut s).await;
        assert_eq!((a.status, a.body.as_str()), (200, "console.log(1);\n"));
        assert!(a.header("content-type").unwrap().contains("javascript"), "{a:?}");
        let etag = a.header("etag").expect("an ETag").to_string();

        send(&mut s, b"HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let a = head_response(&mut s).await;
        assert_eq!((a.status, a.header("content-length")), (200, Some("16")));

        send(&mut s, format!("GET /app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes())
            .await;
        assert_eq!(head_response(&mut s).await.status, 304);

        for escape in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/missing.js"] {
            send(&mut s, &get(escape)).await;
            assert_eq!(response(&mut s).await.status, 404, "{escape}");
        }
        send(&mut s, &get("/hello")).await;
        assert_eq!(response(&mut s).await.header("x-method"), Some("GET"), "an HTTP route comes first");
        send(&mut s, b"POST /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(response(&mut s).await.status, 405);
        assert!(!closed_within(&mut s, Duration::from_millis(100)).await, "kept alive throughout");
    });
    assert_eq!(h.server().stats().http_requests, 9);
}

#[test]
fn a_kept_alive_connection_holds_its_place_under_max_pending_handshakes() {
    let config = Config { max_pending_handshakes: 1, ..test_config() };
    let (h, _events) = http_server(config);
    let port = h.port;
    run(10, async move {
        let mut kept = connect(port).await;
        send(&mut kept, &get("/hello")).await;
        assert_eq!(response(&mut kept).await.status, 200);
        let refused = raw_exchange_allow_reset(port, &get("/hello")).await;
        assert_eq!(refused.status, 503, "the kept-alive connection's place was given away");
        drop(kept);
        // Its place comes back once the server sees it closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Refused (503), or closed unanswered while the last refusal lingers.
            let mut s = connect(port).await;
            send(&mut s, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the place never came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
