//! A raw HTTP/1.1 client for the HTTP side's tests: requests written as bytes,
//! responses read by their Content-Length, so that one socket carries many exchanges.

use std::time::Duration;

use roost::{Event, RequestInfo, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{parse_http, read_head, Handler, HttpAnswer};

pub async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.expect("connect")
}

pub async fn send(s: &mut TcpStream, request: &[u8]) {
    s.write_all(request).await.expect("write request");
}

/// Reads one response: its head, then as many body bytes as its Content-Length says.
pub async fn response(s: &mut TcpStream) -> HttpAnswer {
    let mut answer = parse_http(&read_head(s).await);
    let length: usize = answer.header("content-length").map_or(0, |l| l.parse().expect("Content-Length"));
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.expect("read body");
    answer.body = String::from_utf8(body).expect("UTF-8 body");
    answer
}

/// Reads the response to a HEAD request: a head and no body.
pub async fn head_response(s: &mut TcpStream) -> HttpAnswer {
    parse_http(&read_head(s).await)
}

/// Sends `request` on a new socket and reads one response.
pub async fn exchange(port: u16, request: &[u8]) -> HttpAnswer {
    let mut s = connect(port).await;
    send(&mut s, request).await;
    response(&mut s).await
}

/// Whether the server closed `s` (end of stream, nothing more sent) within `within`.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut rest)).await {
        Ok(Ok(_)) => {
            assert!(rest.is_empty(), "the server sent more: {:?}", String::from_utf8_lossy(&rest));
            true
        }
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Err(_) => false,
    }
}

/// A GET of `target` on host x.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// What the echoing consumer answers to `request`: the method, path and query in
/// headers, the request id in `X-Id`, and the body (or "hello" for none).
pub fn echoed(server: &Server, request: &RequestInfo) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let headers = format!(
        "X-Method: {}\r\nX-Path: {}\r\nX-Query: {}\r\nX-Id: {}\r\nContent-Type: text/plain\r\n",
        text(request.method()),
        text(request.path()),
        text(request.query()),
        request.id
    );
    let body: &[u8] = if request.body.is_empty() { b"hello" } else { &request.body };
    server.respond(request.id, 200, headers.as_bytes(), body).expect("respond");
}

/// A consumer that answers every HTTP request with `echoed` and echoes WebSocket
/// messages.
pub fn http_echo_handler() -> Handler {
    let mut websocket = super::echo_handler();
    Box::new(move |server: &Server, event: &Event| match event {
        Event::Request(request) => echoed(server, request),
        other => websocket(server, other),
    })
}
