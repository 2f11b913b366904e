//! The HTTP/1.1 upgrade, done by the core itself so that every refusal gets a proper
//! status and a short text body (404 unknown path, 426 not an upgrade, 400 malformed,
//! 431 head too large, 503 over the connection limit).

use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Compression;
use crate::deflate::{self, Agreement};

/// Largest request head accepted; a browser's upgrade request is well under 2 KiB.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Most request headers accepted.
const MAX_HEADERS: usize = 64;

/// An upgrade request that passed every check.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    /// The request head, through the blank line.
    pub head: Box<[u8]>,
    /// Bytes the client sent after the head (early frames), to be read first.
    pub rest: Vec<u8>,
    pub route: u32,
    pub path: Range<usize>,
    pub query: Range<usize>,
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// permessage-deflate, when the server offers it and the client's offer was
    /// accepted.
    pub deflate: Option<Agreement>,
    accept_key: String,
}

/// Why a request was refused: becomes the HTTP status of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Malformed(&'static str),
    HeadTooLarge,
    UnknownPath,
    NotUpgrade,
    UnsupportedVersion,
    TooManyConnections,
}

impl Refusal {
    /// The full HTTP response for this refusal; the socket is closed after it.
    pub(crate) fn response(self) -> Vec<u8> {
        let (status, extra, body) = match self {
            Refusal::Malformed(why) => ("400 Bad Request", "", why),
            Refusal::HeadTooLarge => ("431 Request Header Fields Too Large", "", "Request head too large"),
            Refusal::UnknownPath => ("404 Not Found", "", "Not Found"),
            Refusal::NotUpgrade => {
                ("426 Upgrade Required", "Upgrade: websocket\r\n", "WebSocket upgrade required")
            }
            Refusal::UnsupportedVersion => (
                "426 Upgrade Required",
                "Sec-WebSocket-Version: 13\r\n",
                "Unsupported WebSocket version (13 is supported)",
            ),
            Refusal::TooManyConnections => ("503 Service Unavailable", "", "Too many connections"),
        };
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}\n",
            body.len() + 1,
            // An Upgrade header must come with "Connection: upgrade" (RFC 9110 7.8).
            connection = if extra.starts_with("Upgrade") { "Upgrade, close" } else { "close" }
        )
        .into_bytes()
    }
}

impl UpgradeRequest {
    /// The 101 response that completes the upgrade.
    pub(crate) fn response(&self) -> Vec<u8> {
        let extensions = match &self.deflate {
            Some(agreement) => format!("Sec-WebSocket-Extensions: {}\r\n", agreement.response()),
            None => String::new(),
        };
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
            self.accept_key
        )
        .into_bytes()
    }
}

/// The first byte of a TLS handshake record, which no HTTP request starts with.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Reads one request head from `stream`. Returns the head and any bytes after it, or
/// `Ok(None)` when the client closed before finishing it. A TLS client on a plain port
/// is refused at its first byte (it would otherwise wait out the handshake timeout).
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut scanned: usize = 0;
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(Refusal::HeadTooLarge);
            }
            buf.reserve(buf.len());
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        if buf[0] == TLS_HANDSHAKE_RECORD {
            return Err(Refusal::Malformed("TLS handshake on a plain (ws://) port"));
        }
        let from = scanned.saturating_sub(3);
        if let Some(pos) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + pos + 4;
            let rest = buf.split_off(end);
            return Ok(Some((buf, rest)));
        }
        scanned = buf.len();
    }
}

/// Checks a request head against the routes and the WebSocket upgrade rules, and
/// negotiates permessage-deflate when `compression` is on.
pub(crate) fn check(
    head: Vec<u8>,
    rest: Vec<u8>,
    route_of: impl Fn(&[u8]) -> Option<u32>,
    compression: Compression,
) -> Result<UpgradeRequest, Refusal> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut storage);
    match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Refusal::Malformed("Incomplete request")),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(_) => return Err(Refusal::Malformed("Malformed HTTP request")),
    }
    let offset = |s: &[u8]| s.as_ptr() as usize - head.as_ptr() as usize;
    let span = |s: &[u8]| offset(s)..offset(s) + s.len();

    let target = origin_form(request.path.unwrap_or("").as_bytes());
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (span(&target[..q]), span(&target[q + 1..])),
        None => (span(target), offset(target) + target.len()..offset(target) + target.len()),
    };
    let route = route_of(path_or_root(&head[path.clone()])).ok_or(Refusal::UnknownPath)?;

    // The value of a header that must appear at most once; None when absent or repeated
    // (RFC 6455 11.3.1: a repeated key or version is not a valid upgrade).
    let header = |name: &str| {
        let mut values = request.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
        match (values.next(), values.next()) {
            (Some(h), None) => Some(h.value),
            _ => None,
        }
    };
    let has_token = |name: &str, token: &str| {
        request.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).any(|h| {
            h.value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let is_upgrade = request.method == Some("GET")
        && request.version == Some(1)
        && has_token("upgrade", "websocket")
        && has_token("connection", "upgrade");
    if !is_upgrade {
        return Err(Refusal::NotUpgrade);
    }
    if header("sec-websocket-version").map(|v| v.trim_ascii()) != Some(b"13") {
        return Err(Refusal::UnsupportedVersion);
    }
    let key = header("sec-websocket-key").map(|v| v.trim_ascii()).unwrap_or(b"");
    if !is_websocket_key(key) {
        return Err(Refusal::Malformed("Missing or invalid Sec-WebSocket-Key"));
    }
    let accept_key = derive_accept_key(key);
    let offers = request.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"));
    let deflate = match compression {
        Compression::Off => None,
        Compression::Deflate => deflate::negotiate(offers.map(|h| h.value), false),
        Compression::DeflatePerConnection => deflate::negotiate(offers.map(|h| h.value), true),
    };
    let headers = request.headers.iter().map(|h| (span(h.name.as_bytes()), span(h.value))).collect();
    Ok(UpgradeRequest {
        head: head.into_boxed_slice(),
        rest,
        route,
        path,
        query,
        headers,
        deflate,
        accept_key,
    })
}

/// The path and query of a request target. A server must accept the absolute form
/// (`GET http://host/ws?x=1`, RFC 9112 3.2.2) as well as the usual origin form
/// (`/ws?x=1`): the scheme and authority are dropped. An absolute target without a
/// path gives an empty slice, which stands for "/" (`path_or_root`).
fn origin_form(target: &[u8]) -> &[u8] {
    let Some(colon) = target.windows(3).position(|w| w == b"://") else { return target };
    let scheme = &target[..colon];
    let known = [&b"http"[..], b"https", b"ws", b"wss"].iter().any(|s| scheme.eq_ignore_ascii_case(s));
    if !known || target.first() == Some(&b'/') {
        return target;
    }
    let after = &target[colon + 3..];
    let end = after.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after.len());
    &after[end..]
}

/// A request path, "/" when the absolute-form target had none.
pub(crate) fn path_or_root(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        b"/"
    } else {
        path
    }
}

/// A key is the base64 form of 16 bytes: 22 base64 characters and `==`.
fn is_websocket_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455 4.2.2): the base64 form of
/// the SHA-1 of the key and the protocol's GUID.
fn derive_accept_key(key: &[u8]) -> String {
    use sha1::Digest;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = sha1::Sha1::new().chain_update(key).chain_update(GUID).finalize();
    data_encoding::BASE64.encode(&digest)
}

/// Writes a refusal and closes the socket, ignoring errors: the client may be gone.
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) {
    let _ = stream.write_all(&refusal.response()).await;
    let _ = stream.shutdown().await;
}

/// Refuses a socket whose request was never read, then reads and drops what the client
/// sends for up to a second (at most one head's worth): closing a socket with unread
/// bytes resets it, and a reset can destroy the response before the client reads it.
pub(crate) async fn refuse_unread<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) {
    refuse(stream, refusal).await;
    let mut discard = [0u8; 1024];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut budget = MAX_HEAD_BYTES;
        while let Ok(n @ 1..) = stream.read(&mut discard).await {
            budget = budget.saturating_sub(n);
            if budget == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_of_rfc_6455s_example() {
        assert_eq!(derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
