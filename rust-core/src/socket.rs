//! A connection's socket as its task uses it: bytes arrive from the kernel in bursts of
//! up to `read_buffer_size` per system call, held in a buffer that exists only while
//! part of a burst is still unparsed; frames leave through the one `FrameWriter`.
//!
//! An idle connection holds no burst buffer at all, and the frame reader parses
//! straight from the burst, so a busy connection reads a whole burst per system call
//! without a second buffer of its own.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::frames::FrameWriter;

pub(crate) struct ConnectionSocket {
    socket: TcpStream,
    /// Unparsed bytes of the last burst are `burst[start..]`; no allocation when none.
    burst: Vec<u8>,
    start: usize,
    burst_size: usize,
    writer: FrameWriter,
}

impl ConnectionSocket {
    /// `early` holds what the client sent right after its upgrade request.
    pub(crate) fn new(socket: TcpStream, burst_size: usize, early: Vec<u8>) -> Self {
        ConnectionSocket {
            socket,
            burst: early,
            start: 0,
            burst_size: burst_size.max(1),
            writer: FrameWriter::default(),
        }
    }

    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
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
        // Allocate only once the socket is known to be readable.
        ready!(self.socket.poll_read_ready(cx))?;
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

    /// Writes frames; see `FrameWriter::poll_write`. The caller must own the socket
    /// (claimed from direct writers).
    pub(crate) fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<()>> {
        self.writer.poll_write(&mut self.socket, cx, frames)
    }

    /// Makes `rest`, the end of a frame a sender's direct write started, the next
    /// bytes written.
    pub(crate) fn finish_first(&mut self, rest: Bytes) {
        self.writer.finish_first(rest);
    }

    /// Ends the sending side at once. Only a connection being given up shuts down: the
    /// rest of a frame its peer would not take is dropped, not waited for. Returns the
    /// socket for reading what the peer still sends.
    pub(crate) async fn shutdown(&mut self) -> &mut TcpStream {
        self.writer.abandon();
        self.burst = Vec::new();
        self.start = 0;
        let _ = self.socket.shutdown().await;
        &mut self.socket
    }
}
