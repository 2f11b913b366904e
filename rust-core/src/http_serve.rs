//! The HTTP side of a connection, from its first request until it closes or upgrades.
//!
//! Requests are read and answered one at a time, so pipelined requests (which wait in
//! the connection's `Input`) are answered in order. Each request is, in this order:
//! an upgrade to a WebSocket route (checked by `handshake`, vetted by the consumer when
//! its route says so, then handed back to `connection` for the 101); the health path;
//! the metrics path; an HTTP route (a REQUEST event, answered by `Server::respond`); a
//! static mount (`static_files`, which writes its own answer); a WebSocket route's path without an upgrade (426); a path with routes
//! for other methods (405); anything else (404). Every answer has a Content-Length,
//! and the connection is kept alive unless the client or the core says otherwise.
//!
//! Timeouts: the first request's head must arrive within `handshake_timeout` of the
//! accept (as an upgrade's always had to; else the socket is dropped without an
//! answer); a later request must start within `http_idle_timeout` and be read whole
//! within `handshake_timeout` of its first byte; a body not read in time gets 408; the
//! consumer must answer within `http_response_timeout` (else 503).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::time::{timeout, timeout_at, Instant};

use crate::answers::{Answer, Asked, Response, Waiting};
use crate::events::{Event, RequestInfo};
use crate::handshake::{self, Refusal, Refused, UpgradeRequest};
use crate::http_request::{BodyLength, Failure, Input, RequestHead, READ_SIZE};
use crate::http_response::{self, text_reply, Persistence, Reply};
use crate::metrics;
use crate::routes::HttpMatch;
use crate::server_state::ServerState;
use crate::static_files::{self, StaticRequest};
use crate::transport::Transport;

/// Bytes of the requests a client pipelines behind one that waits for the consumer,
/// read meanwhile (reading is how a client that leaves is noticed); past this many,
/// they wait in the kernel.
const PIPELINED_WHILE_WAITING: usize = 64 << 10;

/// An upgrade request that may go ahead: `connection` answers it with the 101.
#[derive(Debug)]
pub(crate) struct Upgrade {
    pub(crate) request: UpgradeRequest,
    /// The connection's id, taken before the consumer vetted it.
    pub(crate) id: u64,
}

/// What becomes of the connection after a request.
enum Next {
    /// Serve the next request.
    KeepAlive,
    /// The last response is written: end the connection.
    Close,
    /// The client left, or the connection was ended already.
    Gone,
    /// Upgrade the connection.
    Upgrade(Box<Upgrade>),
}

/// Serves HTTP requests on `stream` until it closes (`None`) or a request upgrades it.
/// `first_deadline` bounds the first request.
pub(crate) async fn serve(
    stream: &mut Transport,
    peer: SocketAddr,
    shared: &Arc<ServerState>,
    first_deadline: Instant,
) -> Option<Upgrade> {
    let config = &shared.config;
    let mut input = Input::default();
    let mut first = true;
    loop {
        if input.is_empty() {
            let until = if first { first_deadline } else { Instant::now() + config.http_idle_timeout };
            if !next_request_begins(stream, &mut input, until, shared).await {
                return None;
            }
        }
        let deadline = if first { first_deadline } else { Instant::now() + config.handshake_timeout };
        let is_first = std::mem::replace(&mut first, false);
        let _in_flight = shared.http_in_flight();
        match exchange(stream, &mut input, peer, shared, (deadline, is_first)).await {
            Next::KeepAlive => {}
            Next::Close => {
                http_response::close(stream).await;
                return None;
            }
            Next::Gone => return None,
            Next::Upgrade(upgrade) => return Some(*upgrade),
        }
    }
}

/// Waits until the client sends the first byte of a request, until `until`. False
/// when it does not, when it closes, or when the server stops meanwhile: a connection
/// between requests is closed at once by a stop.
async fn next_request_begins(
    stream: &mut Transport,
    input: &mut Input,
    until: Instant,
    shared: &ServerState,
) -> bool {
    let stop = shared.stop_idle.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    if shared.stopping.load(Ordering::Acquire) {
        return false;
    }
    tokio::select! {
        _ = stop => false,
        read = timeout_at(until, input.read_more(stream, READ_SIZE)) => matches!(read, Ok(Ok(()))),
    }
}

/// Reads one request (within `deadline`; `first` says whether it is the connection's
/// first) and answers it.
async fn exchange(
    stream: &mut Transport,
    input: &mut Input,
    peer: SocketAddr,
    shared: &Arc<ServerState>,
    (deadline, first): (Instant, bool),
) -> Next {
    let head = match timeout_at(deadline, input.head(stream)).await {
        // A first request is dropped without a word, like a socket that says nothing:
        // a client that takes so long is most likely not one.
        Err(_) if first => return Next::Gone,
        Err(_) => return refuse(stream, shared, 408, "Request timeout").await,
        Ok(Err(failure)) => return fail_unread(stream, shared, failure).await,
        Ok(Ok(head)) => head,
    };
    let head = match RequestHead::parse(head) {
        Ok(head) => head,
        Err(failure) => return fail_unread(stream, shared, failure).await,
    };
    if head.asks_for_websocket() {
        return match shared.route_of(head.path()) {
            Some(route) => upgrade(stream, input, head, route, peer, shared).await,
            None => {
                let refused = Refused::upgrade(Refusal::UnknownPath);
                handshake::refuse(stream, refused, &shared.counters.refusals).await;
                Next::Gone
            }
        };
    }
    let length = match head.body_length() {
        Ok(length) => length,
        Err(failure) => return fail(stream, shared, failure).await,
    };
    let limit = shared.config.max_http_body_size;
    let within_limit = match length {
        BodyLength::Fixed(0) => false,
        BodyLength::Fixed(n) => n <= limit as u64,
        BodyLength::Chunked => true,
    };
    if within_limit && head.expects_continue() {
        let write = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        if !matches!(timeout_at(deadline, write).await, Ok(Ok(()))) {
            return Next::Gone;
        }
    }
    let body = match timeout_at(deadline, input.body(stream, length, limit)).await {
        Err(_) => return refuse(stream, shared, 408, "Request timeout").await,
        Ok(Err(failure)) => return fail(stream, shared, failure).await,
        Ok(Ok(body)) => body,
    };
    dispatch(stream, input, head, body, peer, shared).await
}

/// Answers a request that was read whole.
async fn dispatch(
    stream: &mut Transport,
    input: &mut Input,
    head: RequestHead,
    body: Bytes,
    peer: SocketAddr,
    shared: &Arc<ServerState>,
) -> Next {
    let config = &shared.config;
    let (method, path) = (head.method(), head.path());
    let is_path = |option: &Option<String>| option.as_deref().is_some_and(|p| p.as_bytes() == path);
    let get_or_head = method == b"GET" || method == b"HEAD";
    let persistence = persistence(&head, shared);
    // The header lines of the answers below that have some of their own.
    let headers: String;
    let mut reply = if (is_path(&config.health_path) || is_path(&config.metrics_path)) && !get_or_head {
        headers = allow("GET, HEAD");
        method_not_allowed(&headers, persistence)
    } else if is_path(&config.health_path) {
        match shared.stopping.load(Ordering::Acquire) {
            true => text_reply(503, "stopping", persistence),
            false => text_reply(200, "ok", persistence),
        }
    } else if is_path(&config.metrics_path) {
        headers = format!("Content-Type: {}\r\n", metrics::CONTENT_TYPE);
        let text = metrics::render(&shared.stats());
        Reply { status: 200, headers: headers.as_bytes(), body: text.into(), head_only: false, persistence }
    } else {
        match shared.routes().http_route(method, path) {
            HttpMatch::Route(route) => {
                return ask_consumer(stream, input, head, body, route, peer, shared).await
            }
            // Before the static mounts: a mount at "/" covers every path, and a client
            // that forgot to upgrade is better told so than told 404.
            _ if shared.route_of(path).is_some() => {
                // The path of a WebSocket route, without (all of) an upgrade. Counted as
                // an upgrade refused when it said `Upgrade: websocket`.
                let refused =
                    Refused { refusal: Refusal::NotUpgrade, upgrade: head.has_token("upgrade", "websocket") };
                handshake::refuse(stream, refused, &shared.counters.refusals).await;
                shared.http_requests.fetch_add(1, Ordering::Relaxed);
                return Next::Gone;
            }
            _ if shared.routes().statics.covers(path) => {
                return serve_file(stream, &head, persistence, shared).await
            }
            HttpMatch::OtherMethods(allowed) => {
                headers = allow(&allowed);
                method_not_allowed(&headers, persistence)
            }
            HttpMatch::None => text_reply(404, "Not Found", persistence),
        }
    };
    // The answer to a HEAD request says how long its body is, and leaves it out.
    reply.head_only = method == b"HEAD";
    answer(stream, shared, reply).await
}

/// Answers a request from the static mounts (`static_files`), which write the whole
/// response themselves.
async fn serve_file(
    stream: &mut Transport,
    head: &RequestHead,
    persistence: Persistence,
    shared: &ServerState,
) -> Next {
    let single = |name| head.values(name).next();
    let request = StaticRequest {
        method: std::str::from_utf8(head.method()).unwrap_or(""),
        path: head.path(),
        if_none_match: single("if-none-match"),
        if_modified_since: single("if-modified-since"),
        range: single("range"),
    };
    // The static side says `Connection: close` or nothing: an HTTP/1.0 client, which
    // would need `Connection: keep-alive`, is answered and closed.
    let keep_alive = persistence == Persistence::KeepAlive;
    let mounts = &shared.routes().statics;
    let served = timeout(
        shared.config.http_response_timeout,
        static_files::serve(mounts, &request, stream, keep_alive),
    );
    match served.await {
        Ok(Ok(Some(_status))) => {
            shared.http_requests.fetch_add(1, Ordering::Relaxed);
            if keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            }
        }
        // Covered, so not `None`; a socket or file error ends the connection.
        _ => Next::Gone,
    }
}

/// The header lines of a 405 that lists the `allowed` methods.
fn allow(allowed: &str) -> String {
    format!("Allow: {allowed}\r\nContent-Type: text/plain; charset=utf-8\r\n")
}

/// A 405 with `headers` from `allow`.
fn method_not_allowed(headers: &str, persistence: Persistence) -> Reply<'_> {
    Reply { headers: headers.as_bytes(), ..text_reply(405, "Method Not Allowed", persistence) }
}

/// Whether the connection stays open after this request's answer: as the client
/// asked, unless the server is stopping.
fn persistence(head: &RequestHead, shared: &ServerState) -> Persistence {
    if shared.stopping.load(Ordering::Acquire) || !head.keeps_alive() {
        Persistence::Close
    } else if head.is_http11() {
        Persistence::KeepAlive
    } else {
        Persistence::KeepAliveHttp10
    }
}

/// Writes an answer of the HTTP side and counts it.
async fn answer(stream: &mut Transport, shared: &ServerState, reply: Reply<'_>) -> Next {
    shared.http_requests.fetch_add(1, Ordering::Relaxed);
    write(stream, shared, reply).await
}

/// Writes a response within `http_response_timeout`.
async fn write(stream: &mut Transport, shared: &ServerState, reply: Reply<'_>) -> Next {
    let written = timeout(shared.config.http_response_timeout, reply.write(stream)).await;
    match (written, reply.persistence) {
        (Ok(Ok(())), Persistence::Close) => Next::Close,
        (Ok(Ok(())), _) => Next::KeepAlive,
        _ => Next::Gone,
    }
}

/// Answers a request that cannot be served, and ends the connection.
async fn refuse(stream: &mut Transport, shared: &ServerState, status: u16, text: &str) -> Next {
    answer(stream, shared, text_reply(status, text, Persistence::Close)).await
}

/// Answers a request whose head could not be read or parsed, unless the client left.
/// Counted as an upgrade refused: on a WebSocket port that is what its client most
/// likely wanted, and too little was read to tell.
async fn fail_unread(stream: &mut Transport, shared: &ServerState, failure: Failure) -> Next {
    if failure != Failure::Gone {
        shared.counters.refusals.count(failure.answer().0);
    }
    fail(stream, shared, failure).await
}

/// Answers a request that could not be read, unless the client left.
async fn fail(stream: &mut Transport, shared: &ServerState, failure: Failure) -> Next {
    if failure == Failure::Gone {
        return Next::Gone;
    }
    let (status, text) = failure.answer();
    refuse(stream, shared, status, text).await
}

/// Hands a request for an HTTP route to the consumer and writes its answer.
async fn ask_consumer(
    stream: &mut Transport,
    input: &mut Input,
    head: RequestHead,
    body: Bytes,
    route: u32,
    peer: SocketAddr,
    shared: &Arc<ServerState>,
) -> Next {
    let head_only = head.method() == b"HEAD";
    let keeps_alive = persistence(&head, shared);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let waiting = shared.answers.ask(id, Asked::Request);
    let request = RequestInfo::new(id, route, peer.to_string(), head, body);
    shared.events.push(Event::Request(Box::new(request)), None);
    let response = match wait_for_answer(stream, input, waiting, shared).await {
        Waited::Answer(Answer::Respond(response)) => response,
        // Only an upgrade is accepted: `Answers::accept` refuses a request.
        Waited::Answer(Answer::Accept) | Waited::TimedOut => {
            let reply = text_reply(503, "No answer in time", keeps_alive);
            return answer(stream, shared, Reply { head_only, ..reply }).await;
        }
        Waited::Gone => return Next::Gone,
    };
    // A stop that began meanwhile closes the connection after this answer.
    let persistence = match shared.stopping.load(Ordering::Acquire) {
        true => Persistence::Close,
        false => keeps_alive,
    };
    let reply = Reply {
        status: response.status,
        headers: &response.headers,
        body: response.body,
        head_only,
        persistence,
    };
    answer(stream, shared, reply).await
}

/// How waiting for the consumer ended.
enum Waited {
    Answer(Answer),
    TimedOut,
    /// The client closed the connection or it failed: no one is left to answer.
    Gone,
}

/// Waits up to `http_response_timeout` for the consumer's answer, reading what the
/// client pipelines meanwhile into `input`. A client that closes its side is taken to
/// be gone (a client that waits for an answer keeps its side open), and the question
/// is withdrawn: the answer, if it still comes, finds nothing.
async fn wait_for_answer(
    stream: &mut Transport,
    input: &mut Input,
    mut waiting: Waiting<'_>,
    shared: &ServerState,
) -> Waited {
    let deadline = Instant::now() + shared.config.http_response_timeout;
    let watch = async {
        while input.len() < PIPELINED_WHILE_WAITING {
            if input.read_more(stream, READ_SIZE).await.is_err() {
                return;
            }
        }
        std::future::pending().await
    };
    tokio::select! {
        answer = waiting.answer() => answer.map_or(Waited::TimedOut, Waited::Answer),
        () = watch => Waited::Gone,
        () = tokio::time::sleep_until(deadline) => waiting.give_up().await.map_or(Waited::TimedOut, Waited::Answer),
    }
}

/// Checks an upgrade request, has the consumer vet it when its route says so, and
/// hands it back for the 101, or answers the refusal.
async fn upgrade(
    stream: &mut Transport,
    input: &mut Input,
    head: RequestHead,
    route: u32,
    peer: SocketAddr,
    shared: &Arc<ServerState>,
) -> Next {
    let vetted = shared.routes().vets_upgrades(route).then(|| head.clone());
    let compression = shared.config.compression;
    let allowed_origins = &shared.config.allowed_origins;
    let route_of = |path: &[u8]| shared.upgrade_route(path);
    let mut request = match handshake::check(head, Vec::new(), route_of, allowed_origins, compression) {
        Ok(request) => request,
        Err(refusal) => {
            handshake::refuse(stream, Refused::upgrade(refusal), &shared.counters.refusals).await;
            return Next::Gone;
        }
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    if let Some(head) = vetted {
        let waiting = shared.answers.ask(id, Asked::Upgrade);
        // The vetted copy of the head has the same bytes, so the span fits it too.
        let question = RequestInfo::new(id, route, peer.to_string(), head, Bytes::new())
            .with_subprotocol(request.subprotocol.clone());
        shared.events.push(Event::UpgradeRequest(Box::new(question)), None);
        let refusal = match wait_for_answer(stream, input, waiting, shared).await {
            Waited::Answer(Answer::Accept) => None,
            Waited::Answer(Answer::Respond(response)) => Some(response),
            Waited::TimedOut => Some(Response {
                status: 503,
                headers: b"Content-Type: text/plain; charset=utf-8\r\n"[..].into(),
                body: Bytes::from_static(b"No answer in time\n"),
            }),
            Waited::Gone => return Next::Gone,
        };
        if let Some(response) = refusal {
            shared.counters.refusals.count(response.status);
            let reply = Reply {
                status: response.status,
                headers: &response.headers,
                body: response.body,
                head_only: false,
                persistence: Persistence::Close,
            };
            // A refused upgrade is not an HTTP request: written, not counted.
            return write(stream, shared, reply).await;
        }
    }
    // What the client sent after its request: frames it did not wait to send.
    request.rest = std::mem::take(input).into_vec();
    Next::Upgrade(Box::new(Upgrade { request, id }))
}
