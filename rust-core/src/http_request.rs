//! Reading HTTP/1.1 requests off a connection: the bytes read and not yet used
//! (`Input`, which keeps what a client pipelined), a request head and its parts
//! (`RequestHead`), and the body, by `Content-Length` or chunked, within a limit.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use crate::transport::Transport;

/// Largest request head accepted; a browser's request is well under 4 KiB.
pub(crate) const MAX_HEAD_BYTES: usize = 16 << 10;
/// Most request headers accepted.
pub(crate) const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (the size and its extensions, which are ignored).
const MAX_CHUNK_LINE: usize = 1024;
/// Bytes asked of the socket per read while a head or a chunk line is awaited.
pub(crate) const READ_SIZE: usize = 4096;
/// The first byte of a TLS handshake record, which no HTTP request starts with.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why a request could not be read. Every kind but `Gone` is answered with its status,
/// and the connection is closed: what follows the bad part cannot be trusted to be the
/// start of the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The client closed the connection, or it failed.
    Gone,
    /// 400, saying why.
    Malformed(&'static str),
    /// 431.
    HeadTooLarge,
    /// 413: the body is over `max_http_body_size`.
    BodyTooLarge,
    /// 501: a transfer coding other than chunked.
    UnsupportedCoding,
}

impl Failure {
    /// The status and the text of the answer.
    pub(crate) fn answer(self) -> (u16, &'static str) {
        match self {
            Failure::Gone => (400, "Bad Request"),
            Failure::Malformed(why) => (400, why),
            Failure::HeadTooLarge => (431, "Request head too large"),
            Failure::BodyTooLarge => (413, "Request body too large"),
            Failure::UnsupportedCoding => (501, "Unsupported Transfer-Encoding (chunked is supported)"),
        }
    }
}

/// How a request's body is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// This many bytes (0: no body).
    Fixed(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A request head as the client sent it, parsed: its parts are views into its bytes.
#[derive(Debug, Clone)]
pub struct RequestHead {
    bytes: Box<[u8]>,
    method: Range<usize>,
    path: Range<usize>,
    query: Range<usize>,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    minor_version: u8,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl RequestHead {
    /// Parses a head, through its blank line.
    pub(crate) fn parse(bytes: Vec<u8>) -> Result<RequestHead, Failure> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut storage);
        match request.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(Failure::Malformed("Incomplete request")),
            Err(httparse::Error::TooManyHeaders) => return Err(Failure::HeadTooLarge),
            Err(_) => return Err(Failure::Malformed("Malformed HTTP request")),
        }
        let offset = |s: &[u8]| s.as_ptr() as usize - bytes.as_ptr() as usize;
        let span = |s: &[u8]| offset(s)..offset(s) + s.len();
        let target = origin_form(request.path.unwrap_or("").as_bytes());
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(q) => (span(&target[..q]), span(&target[q + 1..])),
            None => (span(target), offset(target) + target.len()..offset(target) + target.len()),
        };
        let method = span(request.method.unwrap_or("").as_bytes());
        let minor_version = request.version.unwrap_or(1);
        let headers = request.headers.iter().map(|h| (span(h.name.as_bytes()), span(h.value))).collect();
        Ok(RequestHead { method, path, query, minor_version, headers, bytes: bytes.into_boxed_slice() })
    }

    /// The head, through the blank line.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &[u8] {
        &self.bytes[self.method.clone()]
    }

    /// The path, without the query string; "/" for an absolute-form target without one.
    pub fn path(&self) -> &[u8] {
        path_or_root(&self.bytes[self.path.clone()])
    }

    /// The raw query string (after `?`, not decoded); empty when there is none.
    pub fn query(&self) -> &[u8] {
        &self.bytes[self.query.clone()]
    }

    /// The headers in the order sent, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers.iter().map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The values of every header called `name` (case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        let bytes = &self.bytes;
        self.headers
            .iter()
            .filter(move |(n, _)| bytes[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(move |(_, v)| &bytes[v.clone()])
    }

    /// Whether a comma-separated header called `name` lists `token` (case-insensitive).
    pub(crate) fn has_token(&self, name: &'static str, token: &str) -> bool {
        self.values(name)
            .any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
    }

    /// Whether this is HTTP/1.1 (or later), not HTTP/1.0.
    pub(crate) fn is_http11(&self) -> bool {
        self.minor_version >= 1
    }

    /// Whether the request asks for a WebSocket upgrade: a GET of HTTP/1.1 with
    /// `Upgrade: websocket` and `Connection: upgrade`.
    pub(crate) fn asks_for_websocket(&self) -> bool {
        self.method() == b"GET"
            && self.is_http11()
            && self.has_token("upgrade", "websocket")
            && self.has_token("connection", "upgrade")
    }

    /// Whether the client lets the connection serve another request after this one:
    /// HTTP/1.1 unless it says `Connection: close`, HTTP/1.0 only when it says
    /// `Connection: keep-alive`.
    pub(crate) fn keeps_alive(&self) -> bool {
        if self.is_http11() {
            !self.has_token("connection", "close")
        } else {
            self.has_token("connection", "keep-alive")
        }
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    pub(crate) fn expects_continue(&self) -> bool {
        self.is_http11()
            && self.values("expect").any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
    }

    /// How the body is delimited. Both `Content-Length` and `Transfer-Encoding`, or a
    /// length that is not a number (or several that differ), is a malformed request:
    /// such a request is how requests are smuggled past a proxy that frames it
    /// otherwise.
    pub(crate) fn body_length(&self) -> Result<BodyLength, Failure> {
        let mut codings = self.values("transfer-encoding").peekable();
        let mut lengths = self.values("content-length").peekable();
        match (codings.peek().is_some(), lengths.peek().is_some()) {
            (true, true) => Err(Failure::Malformed("Both Content-Length and Transfer-Encoding")),
            (true, false) => {
                if !self.is_http11() {
                    return Err(Failure::Malformed("Transfer-Encoding in an HTTP/1.0 request"));
                }
                let mut all = codings.flat_map(|v| v.split(|&b| b == b',')).map(<[u8]>::trim_ascii);
                match (all.next(), all.next()) {
                    (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => {
                        Ok(BodyLength::Chunked)
                    }
                    _ => Err(Failure::UnsupportedCoding),
                }
            }
            (false, true) => {
                let mut length = None;
                for value in lengths {
                    let parsed =
                        parse_decimal(value.trim_ascii()).ok_or(Failure::Malformed("Bad Content-Length"))?;
                    if length.is_some_and(|l| l != parsed) {
                        return Err(Failure::Malformed("Conflicting Content-Length headers"));
                    }
                    length = Some(parsed);
                }
                Ok(BodyLength::Fixed(length.unwrap_or(0)))
            }
            (false, false) => Ok(BodyLength::Fixed(0)),
        }
    }
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
fn path_or_root(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        b"/"
    } else {
        path
    }
}

/// A decimal number of at most 18 digits (no sign, no spaces): below u64's range.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// A chunk size: hexadecimal digits (at most 15, below u64's range), then optional
/// extensions after ';', which are ignored.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
    if size.is_empty() || size.len() > 15 {
        return None;
    }
    size.iter().try_fold(0u64, |n, &d| Some(n * 16 + u64::from((d as char).to_digit(16)? as u8)))
}

/// Where the bytes of requests come from: a connection's transport, or memory (the
/// fuzz target and the tests, through `Pieces`).
pub(crate) trait Source {
    /// Appends what is available to `buf`, with room made for at least `at_least`
    /// more bytes. `Failure::Gone` at the end of the stream or on an error.
    async fn read_into(&mut self, buf: &mut BytesMut, at_least: usize) -> Result<(), Failure>;
}

impl Source for Transport {
    /// A plain socket is waited on before any room is made, so that a connection
    /// waiting for its next request holds no buffer.
    async fn read_into(&mut self, buf: &mut BytesMut, at_least: usize) -> Result<(), Failure> {
        if !self.buffers_reads() {
            self.tcp().readable().await.map_err(|_| Failure::Gone)?;
        }
        buf.reserve(at_least);
        match self.read_buf(buf).await {
            Ok(0) | Err(_) => Err(Failure::Gone),
            Ok(_) => Ok(()),
        }
    }
}

/// A client's bytes in memory, handed over `step` bytes at a time, as a socket's reads
/// might split them; then the end of the stream.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) struct Pieces<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

#[cfg(any(test, feature = "fuzzing"))]
impl Source for Pieces<'_> {
    async fn read_into(&mut self, buf: &mut BytesMut, _at_least: usize) -> Result<(), Failure> {
        if self.data.is_empty() {
            return Err(Failure::Gone);
        }
        let (piece, rest) = self.data.split_at(self.step.min(self.data.len()));
        buf.extend_from_slice(piece);
        self.data = rest;
        Ok(())
    }
}

/// The output of `future`, which must not wait: over `Pieces` the reader never does.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn at_once<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a read from memory waited"),
    }
}

/// The bytes read from a connection and not yet used. Pipelined requests wait here
/// until their turn; when nothing waits, no buffer is held.
#[derive(Debug, Default)]
pub(crate) struct Input {
    buf: BytesMut,
}

impl Input {
    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes buffered.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// What is buffered, given up (the first bytes of an upgraded connection).
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf.to_vec()
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        if self.buf.is_empty() {
            // Let an idle connection hold no buffer.
            self.buf = BytesMut::new();
        }
    }

    /// Reads what the source has, with at least `at_least` bytes of room.
    pub(crate) async fn read_more(
        &mut self,
        stream: &mut impl Source,
        at_least: usize,
    ) -> Result<(), Failure> {
        stream.read_into(&mut self.buf, at_least).await
    }

    /// Reads until `n` bytes are buffered.
    async fn fill_to(&mut self, stream: &mut impl Source, n: usize) -> Result<(), Failure> {
        while self.buf.len() < n {
            self.read_more(stream, (n - self.buf.len()).min(1 << 20)).await?;
        }
        Ok(())
    }

    /// Reads the next request head and returns it, through its blank line; what
    /// follows it stays buffered. (An empty line before a request, which RFC 9112 2.2
    /// asks a server to ignore, is skipped by the parser.) A TLS client on a plain
    /// port is refused at its first byte.
    pub(crate) async fn head(&mut self, stream: &mut impl Source) -> Result<Vec<u8>, Failure> {
        let mut scanned: usize = 0;
        loop {
            if self.buf.first() == Some(&TLS_HANDSHAKE_RECORD) {
                return Err(Failure::Malformed("TLS handshake on a plain (ws://) port"));
            }
            let from = scanned.saturating_sub(3);
            if let Some(pos) = self.buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                let end = from + pos + 4;
                if end > MAX_HEAD_BYTES {
                    // It arrived in one read with what follows it: still too large.
                    return Err(Failure::HeadTooLarge);
                }
                let head = self.buf[..end].to_vec();
                self.consume(end);
                return Ok(head);
            }
            scanned = self.buf.len();
            if scanned >= MAX_HEAD_BYTES {
                return Err(Failure::HeadTooLarge);
            }
            self.read_more(stream, READ_SIZE).await?;
        }
    }

    /// Reads a body of `length`, at most `limit` bytes.
    pub(crate) async fn body(
        &mut self,
        stream: &mut impl Source,
        length: BodyLength,
        limit: usize,
    ) -> Result<Bytes, Failure> {
        match length {
            BodyLength::Fixed(0) => Ok(Bytes::new()),
            BodyLength::Fixed(n) if n > limit as u64 => Err(Failure::BodyTooLarge),
            BodyLength::Fixed(n) => {
                let n = n as usize;
                self.fill_to(stream, n).await?;
                let body = self.buf.split_to(n).freeze();
                self.consume(0);
                Ok(body)
            }
            BodyLength::Chunked => self.chunked_body(stream, limit).await,
        }
    }

    /// The next line, without its CRLF, of at most `max` bytes.
    async fn line(&mut self, stream: &mut impl Source, max: usize) -> Result<Vec<u8>, Failure> {
        let mut scanned: usize = 0;
        loop {
            let from = scanned.saturating_sub(1);
            if let Some(pos) = self.buf[from..].windows(2).position(|w| w == b"\r\n") {
                let end = from + pos;
                let line = self.buf[..end].to_vec();
                self.consume(end + 2);
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > max {
                return Err(Failure::Malformed("Chunk line or trailer too long"));
            }
            self.read_more(stream, READ_SIZE).await?;
        }
    }

    /// Decodes a chunked body (RFC 9112 7.1); trailer fields are read and dropped.
    async fn chunked_body(&mut self, stream: &mut impl Source, limit: usize) -> Result<Bytes, Failure> {
        let mut body = BytesMut::new();
        loop {
            let line = self.line(stream, MAX_CHUNK_LINE).await?;
            let size = parse_chunk_size(&line).ok_or(Failure::Malformed("Bad chunk size"))?;
            if size == 0 {
                break;
            }
            if size > (limit - body.len()) as u64 {
                return Err(Failure::BodyTooLarge);
            }
            let size = size as usize;
            self.fill_to(stream, size + 2).await?;
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(Failure::Malformed("Chunk data not followed by CRLF"));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.consume(size + 2);
        }
        let mut trailers = 0;
        loop {
            let line = self.line(stream, MAX_HEAD_BYTES - trailers).await?;
            if line.is_empty() {
                return Ok(body.freeze());
            }
            trailers += line.len() + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        RequestHead::parse(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn an_empty_line_before_a_request_is_skipped() {
        let h = head("\r\nGET /after HTTP/1.1\r\n\r\n");
        assert_eq!(h.path(), b"/after");
        assert!(RequestHead::parse(b"\r\n\r\n".to_vec()).is_err());
    }

    #[test]
    fn the_parts_of_a_head() {
        let h = head("POST http://example.com/items?x=1 HTTP/1.0\r\nConnection: Keep-Alive\r\nA: b\r\n\r\n");
        assert_eq!((h.method(), h.path(), h.query()), (&b"POST"[..], &b"/items"[..], &b"x=1"[..]));
        assert!(!h.is_http11() && h.keeps_alive());
        assert_eq!(h.headers().nth(1), Some((&b"A"[..], &b"b"[..])));
        assert!(!head("GET / HTTP/1.1\r\nConnection: x, close\r\n\r\n").keeps_alive());
        assert!(head("GET / HTTP/1.1\r\n\r\n").keeps_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keeps_alive());
    }

    #[test]
    fn body_lengths_and_the_framings_that_are_refused() {
        let length = |headers: &str| head(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).body_length();
        assert_eq!(length(""), Ok(BodyLength::Fixed(0)));
        assert_eq!(length("Content-Length: 12\r\n"), Ok(BodyLength::Fixed(12)));
        assert_eq!(length("Content-Length: 12\r\nContent-Length: 12\r\n"), Ok(BodyLength::Fixed(12)));
        assert_eq!(length("Transfer-Encoding: Chunked\r\n"), Ok(BodyLength::Chunked));
        for bad in [
            "Content-Length: -1\r\n",
            "Content-Length: 1x\r\n",
            "Content-Length: \r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 99999999999999999999\r\n",
        ] {
            assert!(matches!(length(bad), Err(Failure::Malformed(_))), "{bad:?}");
        }
        assert_eq!(length("Transfer-Encoding: gzip, chunked\r\n"), Err(Failure::UnsupportedCoding));
        let old = head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(matches!(old.body_length(), Err(Failure::Malformed(_))));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"FF;name=value"), Some(255));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        for bad in [&b""[..], b"x", b"-1", b"1 2", b"1000000000000000"] {
            assert_eq!(parse_chunk_size(bad), None, "{bad:?}");
        }
    }

    /// A request read: its path and its body.
    type Read = (Vec<u8>, Vec<u8>);

    /// Reads pipelined requests from `client`, arriving `step` bytes at a time, with
    /// a body limit of `limit`: each request's path and body, then how reading ended.
    fn read_requests(client: &[u8], step: usize, limit: usize) -> (Vec<Read>, Failure) {
        let mut source = Pieces { data: client, step };
        let mut input = Input::default();
        let mut requests = Vec::new();
        loop {
            let head = match at_once(input.head(&mut source)).and_then(RequestHead::parse) {
                Ok(head) => head,
                Err(failure) => return (requests, failure),
            };
            let body = head.body_length().and_then(|length| at_once(input.body(&mut source, length, limit)));
            match body {
                Ok(body) => requests.push((head.path().to_vec(), body.to_vec())),
                Err(failure) => return (requests, failure),
            }
        }
    }

    #[test]
    fn pipelined_bodies_by_length_and_chunked_in_any_pieces() {
        let client = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n\
GET /c HTTP/1.1\r\n\r\n";
        for step in [1, 2, 3, 7, 64, client.len()] {
            let (requests, end) = read_requests(client, step, 5);
            let expected: Vec<Read> = vec![
                (b"/a".to_vec(), b"hello".to_vec()),
                (b"/b".to_vec(), b"abcde".to_vec()),
                (b"/c".to_vec(), vec![]),
            ];
            assert_eq!(requests, expected, "in pieces of {step}");
            assert_eq!(end, Failure::Gone, "in pieces of {step}");
        }
    }

    #[test]
    fn bodies_over_the_limit_and_bad_chunks_end_the_reading() {
        let over = |body: &str| read_requests(format!("POST / HTTP/1.1\r\n{body}").as_bytes(), 3, 4).1;
        assert_eq!(over("Content-Length: 5\r\n\r\nhello"), Failure::BodyTooLarge);
        assert_eq!(
            over("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            Failure::BodyTooLarge
        );
        for bad in ["zz\r\n", "3\r\nabcX\r\n", &format!("1;{}\r\n", "e".repeat(2000))] {
            let end = over(&format!("Transfer-Encoding: chunked\r\n\r\n{bad}"));
            assert!(matches!(end, Failure::Malformed(_)), "{bad:?}: {end:?}");
        }
        // A body cut short is the client gone, not a request.
        assert_eq!(over("Content-Length: 4\r\n\r\nab"), Failure::Gone);
    }
}
