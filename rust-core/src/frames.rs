//! Outgoing data frames: encoded once, by the thread that sends them, into one buffer
//! that every recipient's queue shares, then written to the socket straight from that
//! buffer with `writev`.
//!
//! tungstenite would copy each message into a connection's write buffer and encode its
//! header there, once per recipient. A server's frames are never masked, so the bytes on
//! the wire are the same for every recipient of a broadcast: one encoded frame serves
//! them all, and a connection's queued frames go out in one system call. tungstenite
//! still writes the control frames (ping, pong, close); `FrameWriter` keeps the two
//! writers from interleaving inside a frame.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

/// Frames handed to one `writev` call at most.
const FRAMES_PER_WRITE: usize = 64;

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    Text,
    Binary,
}

/// One unfragmented, unmasked data frame (RFC 6455 section 5.2): header and payload in
/// one buffer, shared by reference counting.
pub(crate) fn encode(kind: DataKind, payload: &[u8]) -> Bytes {
    const FIN: u8 = 0x80;
    let opcode = match kind {
        DataKind::Text => 0x1,
        DataKind::Binary => 0x2,
    };
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(FIN | opcode);
    if len < 126 {
        frame.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        frame.push(126);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// Longest close reason a close frame can carry (125 bytes minus the code).
pub(crate) const MAX_CLOSE_REASON: usize = 123;

/// Checks a close code and reason a server is about to send: codes RFC 6455 lets an
/// endpoint put in a close frame (1000-1003, 1007-1014, 3000-4999), and a reason that
/// fits in one.
pub(crate) fn check_close(code: u16, reason: &str) -> crate::Result<()> {
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(crate::Error::InvalidArgument(format!("{code} is not a close code a server may send")));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(crate::Error::InvalidArgument(format!(
            "close reason is {} bytes; at most {MAX_CLOSE_REASON} fit in a close frame",
            reason.len()
        )));
    }
    Ok(())
}

/// Writes queued frames to a socket and holds the rest of a frame the socket took only
/// part of, which must be finished before anything else is written to it.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    unfinished: Option<Bytes>,
}

impl FrameWriter {
    /// Writes the rest of a partly written frame, if any.
    pub(crate) fn poll_finish<S: AsyncWrite + Unpin>(
        &mut self,
        socket: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let Some(rest) = &mut self.unfinished {
            let n = ready!(Pin::new(&mut *socket).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(n);
            if rest.is_empty() {
                self.unfinished = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Makes `rest`, the end of a frame another writer started, the next bytes written.
    pub(crate) fn finish_first(&mut self, rest: Bytes) {
        debug_assert!(self.unfinished.is_none(), "two frames cut short at once");
        self.unfinished = Some(rest);
    }

    /// Drops the rest of a partly written frame: the connection is being given up.
    pub(crate) fn abandon(&mut self) {
        self.unfinished = None;
    }

    /// Writes `frames` front first, many per system call, until all are written
    /// (Ready) or the socket is full (Pending, with the unwritten frames still queued).
    pub(crate) fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        socket: &mut S,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_finish(socket, cx))?;
            if frames.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); FRAMES_PER_WRITE];
            let count = frames.len().min(FRAMES_PER_WRITE);
            for (slice, frame) in slices.iter_mut().zip(frames.iter()) {
                *slice = IoSlice::new(frame);
            }
            let mut written = ready!(Pin::new(&mut *socket).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            // Drop the frames written whole; the rest of one cut short is finished first.
            while let Some(frame) = frames.front_mut().filter(|_| written > 0) {
                if written < frame.len() {
                    frame.advance(written);
                    self.unfinished = frames.pop_front();
                    break;
                }
                written -= frame.len();
                frames.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_forms() {
        let short = encode(DataKind::Text, b"hi");
        assert_eq!(&short[..], b"\x81\x02hi");
        let medium = encode(DataKind::Binary, &[7; 300]);
        assert_eq!(&medium[..4], &[0x82, 126, 0x01, 0x2c]);
        assert_eq!(medium.len(), 4 + 300);
        let long = encode(DataKind::Binary, &vec![0; 70_000]);
        assert_eq!(&long[..10], &[0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
        assert_eq!(long.len(), 10 + 70_000);
    }

    #[test]
    fn boundaries_of_the_length_forms() {
        assert_eq!(encode(DataKind::Text, &[b'a'; 125])[1], 125);
        assert_eq!(encode(DataKind::Text, &[b'a'; 126])[1], 126);
        assert_eq!(encode(DataKind::Text, &vec![b'a'; 65_535])[1], 126);
        assert_eq!(encode(DataKind::Text, &vec![b'a'; 65_536])[1], 127);
    }
}
