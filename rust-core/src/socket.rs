//! The socket as a connection's frame reader sees it: bytes arrive from the kernel in
//! bursts of up to `read_buffer_size` per system call, held in a buffer that exists only
//! while part of a burst is still unread. Its writes go through the connection's
//! `FrameWriter`, so that tungstenite's control frames never land inside a data frame
//! the socket took only part of, and claim the socket from senders that write it
//! directly (see `connection_state`), taking over what such a write left unwritten.
//!
//! tungstenite keeps its own read buffer for a connection's whole life and reads at most
//! its configured size per call. Given a 4 KiB buffer, that is 4 KiB held by every idle
//! connection, most of its memory; given a small one, a 4 KiB message takes eight system
//! calls. So tungstenite gets a small window (`PARSE_WINDOW`) and this layer turns its
//! small reads into one large read of the socket: an idle connection holds no burst
//! buffer, a busy one reads as much per call as before. A TLS session buffers the
//! records it reads itself, so over TLS reads go straight to it.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::connection_state::ConnectionState;
use crate::frames::FrameWriter;
use crate::transport::Transport;

/// tungstenite's read buffer size: what every connection keeps for good.
pub(crate) const PARSE_WINDOW: usize = 512;

pub(crate) struct ConnectionSocket {
    socket: Transport,
    /// Unread bytes of the last burst are `burst[start..]`; no allocation when none.
    burst: Vec<u8>,
    start: usize,
    burst_size: usize,
    writer: FrameWriter,
    handle: Arc<ConnectionState>,
}

impl ConnectionSocket {
    pub(crate) fn new(socket: Transport, burst_size: usize, handle: Arc<ConnectionState>) -> Self {
        ConnectionSocket {
            socket,
            burst: Vec::new(),
            start: 0,
            burst_size: burst_size.max(PARSE_WINDOW),
            writer: FrameWriter::default(),
            handle,
        }
    }

    /// The TCP socket underneath (under TLS, too).
    pub(crate) fn socket(&self) -> &TcpStream {
        self.socket.tcp()
    }

    /// The descriptor senders may write frames to directly; None over TLS, whose
    /// bytes must all go through the session.
    pub(crate) fn direct_write_fd(&self) -> Option<std::os::fd::RawFd> {
        self.socket.direct_write_fd()
    }

    /// Writes encoded data frames (see `FrameWriter::poll_write`), then flushes what a
    /// TLS session still holds of them, so that written frames are on the wire. Call
    /// only when tungstenite has nothing buffered, or its half-written frame would be
    /// split.
    /// The frames come from `take_batch`, which claimed the socket for them.
    pub(crate) fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<()>> {
        ready!(self.writer.poll_write(&mut self.socket, cx, frames))?;
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    /// Makes `rest`, the end of a frame a sender's direct write started, the next
    /// bytes written, whoever writes next.
    pub(crate) fn finish_first(&mut self, rest: Bytes) {
        self.writer.finish_first(rest);
    }

    /// Takes the socket from direct writers before tungstenite writes to it: its
    /// writes are control frames, rare enough for a lock each.
    fn claim(&mut self) {
        if let Some(rest) = self.handle.claim_socket() {
            self.finish_first(rest);
        }
    }

    /// Copies what the caller has room for from the held burst; frees it once read.
    fn serve_held(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.burst.len() - self.start);
        buf.put_slice(&self.burst[self.start..self.start + n]);
        self.start += n;
        if self.start == self.burst.len() {
            self.burst = Vec::new();
            self.start = 0;
        }
    }
}

impl AsyncRead for ConnectionSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.burst.len() {
            this.serve_held(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= this.burst_size || this.socket.buffers_reads() {
            return Pin::new(&mut this.socket).poll_read(cx, buf);
        }
        // Allocate only once the socket is known to be readable.
        ready!(this.socket.tcp().poll_read_ready(cx))?;
        let mut burst = Vec::with_capacity(this.burst_size);
        let mut window = ReadBuf::uninit(burst.spare_capacity_mut());
        // Stale readiness gives Pending here (the buffer goes; it is rare). tokio's
        // poll_read also treats a short read as draining the socket, sparing a read
        // that would only say EAGAIN.
        ready!(Pin::new(&mut this.socket).poll_read(cx, &mut window))?;
        let n = window.filled().len();
        // SAFETY: poll_read initialised the first `n` bytes of the spare capacity.
        unsafe { burst.set_len(n) };
        if n > 0 {
            this.burst = burst;
            this.start = 0;
            this.serve_held(buf);
        }
        // n == 0 is the end of the stream: the caller's buffer stays as it is.
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnectionSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.claim();
        ready!(this.writer.poll_finish(&mut this.socket, cx))?;
        Pin::new(&mut this.socket).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.claim();
        ready!(this.writer.poll_finish(&mut this.socket, cx))?;
        Pin::new(&mut this.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.writer.poll_finish(&mut this.socket, cx))?;
        Pin::new(&mut this.socket).poll_flush(cx)
    }

    /// Ends the sending side at once. Only a connection being given up shuts down: the
    /// rest of a frame its peer would not take is dropped, not waited for.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writer.abandon();
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}
