//! The HTTP/1.1 upgrade, done by the core itself so that every refusal gets a proper
//! status and a short text body (404 unknown path, 426 not an upgrade, 403 origin not
//! allowed, 400 malformed or no agreed subprotocol, 503 over the connection limit),
//! counted when the request asked for an upgrade. The request head is read and parsed
//! by the HTTP side (`http_request`), which hands the requests that ask for an upgrade
//! here.

use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Compression;
use crate::counters::Refusals;
use crate::deflate::{self, Agreement};
use crate::http_request::{RequestHead, MAX_HEAD_BYTES};
use crate::upgrade_rules::{self, Subprotocols};

/// An upgrade request that passed every check.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    pub head: RequestHead,
    /// Bytes the client sent after the head (early frames), to be read first.
    pub rest: Vec<u8>,
    pub route: u32,
    /// permessage-deflate, when the server offers it and the client's offer was
    /// accepted.
    pub deflate: Option<Agreement>,
    /// The subprotocol agreed on, as the client wrote it (the same bytes as the
    /// server's name for it): a span of the head.
    pub subprotocol: Option<Range<usize>>,
    accept_key: String,
}

/// A WebSocket route as the upgrade sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route<'s> {
    pub id: u32,
    /// The route's subprotocols, when it has some.
    pub subprotocols: Option<&'s Subprotocols>,
}

/// Why a request was refused: becomes the HTTP status of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Malformed(&'static str),
    UnknownPath,
    NotUpgrade,
    UnsupportedVersion,
    TooManyConnections,
    /// An `Origin` not in `Config::allowed_origins`.
    ForbiddenOrigin,
    /// The route requires a subprotocol and the client offers none of the route's.
    NoSubprotocol,
}

/// A refusal, and whether the request it answers asked for a WebSocket upgrade: only
/// those count as upgrades refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub refusal: Refusal,
    /// The request carried `Upgrade: websocket`, or was not read far enough to tell.
    pub upgrade: bool,
}

impl Refused {
    /// The refusal of a request that asked for an upgrade.
    pub(crate) fn upgrade(refusal: Refusal) -> Refused {
        Refused { refusal, upgrade: true }
    }
}

impl Refusal {
    /// The status code of the answer and its reason phrase.
    pub(crate) fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::Malformed(_) | Refusal::NoSubprotocol => (400, "Bad Request"),
            Refusal::ForbiddenOrigin => (403, "Forbidden"),
            Refusal::UnknownPath => (404, "Not Found"),
            Refusal::NotUpgrade | Refusal::UnsupportedVersion => (426, "Upgrade Required"),
            Refusal::TooManyConnections => (503, "Service Unavailable"),
        }
    }

    /// The full HTTP response for this refusal; the socket is closed after it.
    pub(crate) fn response(self) -> Vec<u8> {
        let (extra, body) = match self {
            Refusal::Malformed(why) => ("", why),
            Refusal::NoSubprotocol => ("", "No supported subprotocol"),
            Refusal::ForbiddenOrigin => ("", "Forbidden origin"),
            Refusal::UnknownPath => ("", "Not Found"),
            Refusal::NotUpgrade => ("Upgrade: websocket\r\n", "WebSocket upgrade required"),
            Refusal::UnsupportedVersion => {
                ("Sec-WebSocket-Version: 13\r\n", "Unsupported WebSocket version (13 is supported)")
            }
            Refusal::TooManyConnections => ("", "Too many connections"),
        };
        let (code, reason) = self.status();
        format!(
            "HTTP/1.1 {code} {reason}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\
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
        let protocol = match &self.subprotocol {
            Some(span) => format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                String::from_utf8_lossy(&self.head.bytes()[span.clone()])
            ),
            None => String::new(),
        };
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{protocol}{extensions}\r\n",
            self.accept_key
        )
        .into_bytes()
    }
}

/// Checks an upgrade request against the routes, the WebSocket upgrade rules and the
/// server's (`allowed_origins`, the route's subprotocols), and negotiates
/// permessage-deflate when `compression` is on. In this order: 404 for a path no route
/// serves, 426 for a request that is not an upgrade, 403 for an origin not allowed,
/// then the protocol's checks (426 version, 400 key), then 400 when the route requires
/// a subprotocol the client does not offer.
pub(crate) fn check<'s>(
    head: RequestHead,
    rest: Vec<u8>,
    route_of: impl Fn(&[u8]) -> Option<Route<'s>>,
    allowed_origins: &[String],
    compression: Compression,
) -> Result<UpgradeRequest, Refusal> {
    let route = route_of(head.path()).ok_or(Refusal::UnknownPath)?;
    // The value of a header that must appear at most once; None when absent or repeated
    // (RFC 6455 11.3.1: a repeated key or version is not a valid upgrade).
    let header = |name: &'static str| {
        let mut values = head.values(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value),
            _ => None,
        }
    };
    if !head.asks_for_websocket() {
        return Err(Refusal::NotUpgrade);
    }
    // Every Origin must be allowed: a request that repeats the header gets no say in
    // which of its values is checked.
    if !allowed_origins.is_empty()
        && !head.values("origin").all(|origin| upgrade_rules::origin_allowed(allowed_origins, origin))
    {
        return Err(Refusal::ForbiddenOrigin);
    }
    if header("sec-websocket-version").map(|v| v.trim_ascii()) != Some(b"13") {
        return Err(Refusal::UnsupportedVersion);
    }
    let key = header("sec-websocket-key").map(|v| v.trim_ascii()).unwrap_or(b"");
    if !is_websocket_key(key) {
        return Err(Refusal::Malformed("Missing or invalid Sec-WebSocket-Key"));
    }
    let subprotocol = match route.subprotocols {
        None => None,
        Some(protocols) => match protocols.select(head.values("sec-websocket-protocol")) {
            Some(selected) => Some(span_of(&head, selected)),
            None if protocols.required() => return Err(Refusal::NoSubprotocol),
            None => None,
        },
    };
    let accept_key = derive_accept_key(key);
    let offers = || head.values("sec-websocket-extensions");
    let deflate = match compression {
        Compression::Off => None,
        Compression::Deflate => deflate::negotiate(offers(), false),
        Compression::DeflatePerConnection => deflate::negotiate(offers(), true),
    };
    Ok(UpgradeRequest { head, rest, route: route.id, deflate, subprotocol, accept_key })
}

/// Where `part`, a slice of `head`'s bytes, lies in them.
fn span_of(head: &RequestHead, part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - head.bytes().as_ptr() as usize;
    start..start + part.len()
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
/// Counts it in `refusals` when the request asked for an upgrade.
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refused: Refused, refusals: &Refusals) {
    if refused.upgrade {
        refusals.count(refused.refusal.status().0);
    }
    let _ = stream.write_all(&refused.refusal.response()).await;
    let _ = stream.shutdown().await;
}

/// Refuses a socket whose request was never read, then reads and drops what the client
/// sends for up to a second (at most one head's worth): closing a socket with unread
/// bytes resets it, and a reset can destroy the response before the client reads it.
/// Counted as an upgrade refused: on a WebSocket port that is what its client most
/// likely wanted.
pub(crate) async fn refuse_unread<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    refusal: Refusal,
    refusals: &Refusals,
) {
    refuse(stream, Refused::upgrade(refusal), refusals).await;
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
