//! A connection's socket as its task uses it: bytes arrive from the kernel in bursts of
//! up to `read_buffer_size` per system call, held in a buffer that exists only while
//! part of a burst is still unparsed; frames leave through the one `FrameWriter`.
//!
//! An idle connection holds no burst buffer at all, and the frame reader parses
//! straight from the burst, so a busy connection reads a whole burst per system call
//! without a second buffer of its own. Over TLS the burst is read from the session,
//! which decrypts what it read from the socket.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::frames::FrameWriter;
use crate::transport::Transport;

pub(crate) struct ConnectionSocket {
    socket: Transport,
    /// Unparsed bytes of the last burst are `burst[start..]`; no allocation when none.
    burst: Vec<u8>,
    start: usize,
    burst_size: usize,
    writer: FrameWriter,
}

impl ConnectionSocket {
    /// `early` holds what the client sent right after its upgrade request.
    pub(crate) fn new(socket: Transport, burst_size: usize, early: Vec<u8>) -> Self {
        ConnectionSocket {
            socket,
            burst: early,
            start: 0,
            burst_size: burst_size.max(1),
            writer: FrameWriter::default(),
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

    /// The unparsed bytes of the current burst (empty when there are none), which the
    /// frame reader unmasks in place.
    pub(crate) fn unread_mut(&mut self) -> &mut [u8] {
        &mut self.burst[self.start..]
    }

    /// Marks `n` unread bytes parsed; frees the burst once all of it is.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.burst.len() {
            self.burst = Vec::new();
            self.start = 0;
        }
    }

    /// Makes sure unread bytes are there, reading a burst if there are none. Ready(false)
    /// is the end of the stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.start < self.burst.len() {
            return Poll::Ready(Ok(true));
        }
        // Allocate only once the socket is known to be readable. A TLS session may hold
        // decrypted bytes already, whatever the socket says.
        if !self.socket.buffers_reads() {
            ready!(self.socket.tcp().poll_read_ready(cx))?;
        }
        let mut burst = Vec::with_capacity(self.burst_size);
        let mut window = ReadBuf::uninit(burst.spare_capacity_mut());
        // Stale readiness gives Pending here (the buffer goes; it is rare). tokio's
        // poll_read also treats a short read as draining the socket, sparing a read
        // that would only say EAGAIN.
        ready!(Pin::new(&mut self.socket).poll_read(cx, &mut window))?;
        let n = window.filled().len();
        // SAFETY: poll_read initialised the first `n` bytes of the spare capacity.
        unsafe { burst.set_len(n) };
        if n == 0 {
            return Poll::Ready(Ok(false));
        }
        self.burst = burst;
        self.start = 0;
        Poll::Ready(Ok(true))
    }

    /// Writes frames (see `FrameWriter::poll_write`), then flushes what a TLS session
    /// still holds of them, so that written frames are on the wire. The caller must own
    /// the socket (claimed from direct writers).
    pub(crate) fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<()>> {
        ready!(self.writer.poll_write(&mut self.socket, cx, frames))?;
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    /// Makes `rest`, the end of a frame a sender's direct write started, the next
    /// bytes written.
    pub(crate) fn finish_first(&mut self, rest: Bytes) {
        self.writer.finish_first(rest);
    }

    /// Ends the sending side at once (over TLS, after its close_notify alert). Only a
    /// connection being given up shuts down: the rest of a frame its peer would not
    /// take is dropped, not waited for. Returns the TCP socket for discarding what the
    /// peer still sends.
    pub(crate) async fn shutdown(&mut self) -> &mut TcpStream {
        self.writer.abandon();
        self.burst = Vec::new();
        self.start = 0;
        let _ = self.socket.shutdown().await;
        self.socket.tcp_mut()
    }
}
