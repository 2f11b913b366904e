//! Writing HTTP/1.1 responses: the status line, the consumer's header lines and the
//! ones the core owns (`Content-Length`, `Connection`), the body unless the request
//! was HEAD; and ending a connection without losing the last response.

use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the `Connection` header of a response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// The connection stays open (HTTP/1.1's default: no header).
    KeepAlive,
    /// The connection stays open for an HTTP/1.0 client, which must be told so.
    KeepAliveHttp10,
    /// The core closes the connection after this response.
    Close,
}

/// One response to write.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    pub(crate) status: u16,
    /// `Name: value\r\n` lines, checked already.
    pub(crate) headers: &'a [u8],
    pub(crate) body: Bytes,
    /// The request was HEAD: the head says how long the body is, and no body follows.
    pub(crate) head_only: bool,
    pub(crate) persistence: Persistence,
}

/// A short `text/plain` answer of the core's own: `text` and a newline.
pub(crate) fn text_reply(status: u16, text: &str, persistence: Persistence) -> Reply<'static> {
    Reply {
        status,
        headers: b"Content-Type: text/plain; charset=utf-8\r\n",
        body: Bytes::from(format!("{text}\n")),
        head_only: false,
        persistence,
    }
}

impl Reply<'_> {
    /// The response head.
    fn head(&self) -> Vec<u8> {
        let mut head = Vec::with_capacity(96 + self.headers.len());
        head.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes());
        head.extend_from_slice(self.headers);
        // A 204 or 304 has no body, and a 204 no Content-Length (RFC 9110 8.6).
        if self.status != 204 && self.status != 304 {
            head.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        head.extend_from_slice(match self.persistence {
            Persistence::KeepAlive => &b""[..],
            Persistence::KeepAliveHttp10 => b"Connection: keep-alive\r\n",
            Persistence::Close => b"Connection: close\r\n",
        });
        head.extend_from_slice(b"\r\n");
        head
    }

    /// Writes the response; head and body go out in one vectored write when the
    /// socket takes them.
    pub(crate) async fn write<S: AsyncWrite + Unpin>(&self, stream: &mut S) -> std::io::Result<()> {
        let body = if self.head_only || self.status == 204 || self.status == 304 {
            Bytes::new()
        } else {
            self.body.clone()
        };
        let mut response = Bytes::from(self.head()).chain(body);
        stream.write_all_buf(&mut response).await?;
        stream.flush().await
    }
}

/// Ends a connection after its last response: ends the sending side, then reads and
/// drops what the client still sends, for up to a second and 64 KiB (closing a socket
/// with unread bytes resets it, and a reset can destroy the response before the client
/// has read it).
pub(crate) async fn close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let mut discard = vec![0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut budget = 64usize << 10;
        while let Ok(n @ 1..) = stream.read(&mut discard).await {
            budget = budget.saturating_sub(n);
            if budget == 0 {
                break;
            }
        }
    })
    .await;
}

/// The reason phrase of a status; empty (which HTTP allows) for one not listed.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_the_length_and_the_persistence_and_head_requests_no_body() {
        let reply = Reply {
            status: 200,
            headers: b"X-A: 1\r\n",
            body: Bytes::from_static(b"hello"),
            head_only: true,
            persistence: Persistence::Close,
        };
        assert_eq!(
            reply.head(),
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut written = Vec::new();
        rt.block_on(reply.write(&mut written)).unwrap();
        assert!(written.ends_with(b"\r\n\r\n"), "a HEAD answer has no body");
        let empty = Reply {
            status: 204,
            body: Bytes::new(),
            head_only: false,
            persistence: Persistence::KeepAlive,
            headers: b"",
        };
        assert_eq!(empty.head(), b"HTTP/1.1 204 No Content\r\n\r\n");
        let old = text_reply(299, "odd", Persistence::KeepAliveHttp10);
        assert_eq!(old.head(), b"HTTP/1.1 299 \r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n");
    }
}
