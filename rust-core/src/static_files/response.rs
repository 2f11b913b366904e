//! Writing a static file's response: the head, a short text body for the answers
//! without a file, and a file's bytes in chunks, so memory stays bounded whatever the
//! file's size.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::blocking::{self, Place};

/// Bytes of a file read and written at a time: large enough that the per-chunk cost (a
/// trip to the blocking pool, a write) is small against the copying, small enough that
/// many concurrent downloads hold little memory.
pub(crate) const CHUNK_BYTES: usize = 64 << 10;

/// A response head being built.
#[derive(Debug)]
pub(crate) struct Head {
    status: u16,
    bytes: Vec<u8>,
}

impl Head {
    /// The status line, and the headers every answer of the module carries.
    pub(crate) fn new(status: u16) -> Head {
        let mut bytes = Vec::with_capacity(256);
        let _ = write!(bytes, "HTTP/1.1 {status} {}\r\n", reason(status));
        // Browsers use the Content-Type as sent, never a guess from the bytes (a text
        // file that looks like HTML must not run as a page).
        bytes.extend_from_slice(b"X-Content-Type-Options: nosniff\r\n");
        Head { status, bytes }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn header(mut self, name: &str, value: impl Display) -> Head {
        let _ = write!(self.bytes, "{name}: {value}\r\n");
        self
    }

    /// The head's bytes, ended; `Connection: close` when the caller closes after it.
    pub(crate) fn finish(self, keep_alive: bool) -> Vec<u8> {
        let mut bytes = self.bytes;
        if !keep_alive {
            bytes.extend_from_slice(b"Connection: close\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Internal Server Error",
    }
}

/// Writes an answer whose body is its reason phrase as text (404, 405, 416, ...);
/// without the body for a HEAD.
pub(crate) async fn write_text<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: Head,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let body = format!("{}\n", reason(head.status));
    let mut bytes = head
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Content-Length", body.len())
        .finish(keep_alive);
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    write_head(stream, &bytes).await
}

/// Writes a head alone (HEAD, 304), and flushes it.
pub(crate) async fn write_head<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Writes `head`, then `count` bytes of `file` from `first` on. The head goes out with
/// the first chunk, in one write. A file that ends early (it shrank while being sent)
/// or fails to read is an error: the Content-Length is sent, so the connection cannot
/// go on.
pub(crate) async fn write_file<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: Vec<u8>,
    file: File,
    first: u64,
    count: u64,
) -> io::Result<()> {
    let mut buffer = head;
    buffer.reserve(count.min(CHUNK_BYTES as u64) as usize);
    let mut file = file;
    let (mut position, end) = (first, first + count);
    while position < end {
        let want = (end - position).min(CHUNK_BYTES as u64) as usize;
        let start = buffer.len();
        buffer.resize(start + want, 0);
        let read;
        // The first chunk in place, the rest on the pool (see `blocking`).
        let place = if position == first { Place::InPlace } else { Place::Pool };
        (file, buffer, read) = blocking::run(place, move || {
            let read = read_at(&file, &mut buffer[start..], position);
            (file, buffer, read)
        })
        .await?;
        let read = read?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while it was being sent"));
        }
        buffer.truncate(start + read);
        stream.write_all(&buffer).await?;
        buffer.clear();
        position += read as u64;
    }
    // An empty file's head, not yet written.
    stream.write_all(&buffer).await?;
    stream.flush().await
}

fn read_at(file: &File, buffer: &mut [u8], position: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buffer, position) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}
