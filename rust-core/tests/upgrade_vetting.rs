//! Upgrades the consumer vets (`Server::vet_upgrades`): an UPGRADE_REQUEST carries the
//! request and the id the connection will have; `accept_upgrade` lets it through (a
//! CONNECT with that id follows), `respond` refuses it with the consumer's own answer,
//! and no answer in time gives 503. Real clients over loopback.

mod common;

use std::time::Duration;

use common::http_client::*;
use common::*;
use roost::{Config, Error, Event, Server};

/// A server whose route /ws (vetted) and /open (not) echo, and whose consumer runs
/// `decide` on each upgrade request.
fn vetting_server(config: Config, decide: fn(&Server, &roost::RequestInfo)) -> (Harness, Events) {
    let mut h = Harness::with_routes(config, |s| {
        let vetted = s.add_route("/ws").unwrap();
        s.vet_upgrades(vetted, true).unwrap();
        vec![vetted, s.add_route("/open").unwrap()]
    });
    let mut echo = echo_handler();
    let events = h.start_consumer(Box::new(move |server: &Server, event: &Event| match event {
        Event::UpgradeRequest(request) => decide(server, request),
        other => echo(server, other),
    }));
    (h, events)
}

/// Accepts an upgrade whose query has the right token, refuses the others with 401.
fn token_check(server: &Server, request: &roost::RequestInfo) {
    if request.query() == b"token=s3cret" {
        server.accept_upgrade(request.id).unwrap();
    } else {
        let headers = b"WWW-Authenticate: Bearer\r\nContent-Type: text/plain\r\n";
        server.respond(request.id, 401, headers, b"missing token").unwrap();
    }
}

#[test]
fn an_accepted_upgrade_connects_with_the_id_its_request_had_and_echoes() {
    let (h, mut events) = vetting_server(test_config(), token_check);
    let (port, route) = (h.port, h.routes[0]);
    run(10, async move {
        let mut ws = ws_connect_with_header(port, "/ws?token=s3cret", "X-Client", "test").await;
        let Event::UpgradeRequest(request) = events.next().await else { panic!("no upgrade request first") };
        assert_eq!(
            (request.method(), request.path(), request.query()),
            (&b"GET"[..], &b"/ws"[..], &b"token=s3cret"[..])
        );
        assert_eq!(request.route, route);
        assert!(request.headers().any(|(n, v)| n.eq_ignore_ascii_case(b"x-client") && v == b"test"));
        let connect = events.connect().await;
        assert_eq!(connect.id, request.id, "the connection has the id its upgrade request had");
        assert_eq!(connect.query(), b"token=s3cret");
        ws_echo_text(&mut ws, "vetted").await;
    });
}

#[test]
fn a_refused_upgrade_gets_the_consumer_s_status_headers_and_body_and_never_connects() {
    let (h, mut events) = vetting_server(test_config(), token_check);
    let port = h.port;
    run(10, async move {
        let a = raw_exchange(port, upgrade_request(port, "/ws?token=wrong").as_bytes()).await;
        assert_eq!((a.status, a.header("www-authenticate")), (401, Some("Bearer")));
        assert_eq!((a.body.as_str(), a.header("connection")), ("missing token", Some("close")));
        assert!(matches!(events.next().await, Event::UpgradeRequest(_)));
        let next = events.next_within(Duration::from_millis(300)).await;
        assert!(next.is_none(), "an event after the refusal: {next:?}");
    });
    assert_eq!(h.server().connection_count(), 0);
}

#[test]
fn an_unvetted_upgrade_gets_503_and_a_late_accept_not_found() {
    let config = Config { http_response_timeout: Duration::from_millis(300), ..test_config() };
    let (h, mut events) = vetting_server(config, |_, _| {});
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let a = raw_exchange(port, upgrade_request(port, "/ws").as_bytes()).await;
        assert_eq!((a.status, a.body.as_str()), (503, "No answer in time\n"));
        let Event::UpgradeRequest(request) = events.next().await else { panic!("no upgrade request") };
        assert!(matches!(server.accept_upgrade(request.id), Err(Error::NotFound)));
        assert!(matches!(server.respond(request.id, 403, b"", b""), Err(Error::NotFound)));
        // A route that does not vet upgrades at once, with the next id.
        let _ws = ws_connect(port, "/open").await;
        assert!(events.connect().await.id > request.id);
    });
}

#[test]
fn an_upgrade_is_refused_with_3xx_to_5xx_only_and_a_request_is_not_accepted() {
    let (h, mut events) = vetting_server(test_config(), |_, _| {});
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let client =
            tokio::spawn(async move { raw_exchange(port, upgrade_request(port, "/ws").as_bytes()).await });
        let Event::UpgradeRequest(request) = events.next().await else { panic!("no upgrade request") };
        for status in [101, 200, 204, 299, 600] {
            let refused = server.respond(request.id, status, b"", b"");
            assert!(matches!(refused, Err(Error::InvalidArgument(_))), "{status}");
        }
        server.respond(request.id, 302, b"Location: /elsewhere\r\n", b"").unwrap();
        let a = client.await.unwrap();
        assert_eq!((a.status, a.header("location")), (302, Some("/elsewhere")));
    });
}

#[test]
fn an_accept_does_not_answer_an_http_request() {
    let mut h = Harness::with_routes(test_config(), |s| vec![s.add_http_route("GET", "/api").unwrap()]);
    let mut events = h.start_consumer(record_handler());
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let client = tokio::spawn(async move { exchange(port, &get("/api")).await });
        let Event::Request(request) = events.next().await else { panic!("no request") };
        assert!(matches!(server.accept_upgrade(request.id), Err(Error::InvalidArgument(_))));
        server.respond(request.id, 200, b"", b"still mine").unwrap();
        assert_eq!(client.await.unwrap().body, "still mine");
    });
}

#[test]
fn a_client_that_leaves_while_vetted_withdraws_the_question() {
    let (h, mut events) = vetting_server(test_config(), |_, _| {});
    let port = h.port;
    let server = h.server().clone();
    run(10, async move {
        let mut s = connect(port).await;
        send(&mut s, upgrade_request(port, "/ws").as_bytes()).await;
        let Event::UpgradeRequest(request) = events.next().await else { panic!("no upgrade request") };
        drop(s);
        // The core notices the close while it waits. Probe with a 200, which is no
        // refusal: refused while the question stands, NotFound once it is withdrawn.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match server.respond(request.id, 200, b"", b"") {
                Err(Error::NotFound) => break,
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("{other:?}"),
            }
            assert!(std::time::Instant::now() < deadline, "the question outlived its client");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(server.accept_upgrade(request.id), Err(Error::NotFound)));
    });
}
