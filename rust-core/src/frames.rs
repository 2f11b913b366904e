//! Outgoing frames: encoded once, by the thread that sends them, into one buffer that
//! every recipient's queue shares, then written to the socket straight from that buffer
//! with `writev`.
//!
//! A server's frames are never masked, so the bytes on the wire are the same for every
//! recipient of a broadcast: one encoded frame serves them all, and a connection's
//! queued frames go out in one system call. Control frames (ping, pong, close) are
//! encoded here too and written by the same `FrameWriter`, the socket's one writer.

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

/// The opcodes of RFC 6455 section 5.2; the others are reserved.
pub(crate) mod opcode {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xa;
}

/// One unfragmented, unmasked data frame (RFC 6455 section 5.2): header and payload in
/// one buffer, shared by reference counting.
pub(crate) fn encode(kind: DataKind, payload: &[u8]) -> Bytes {
    let code = match kind {
        DataKind::Text => opcode::TEXT,
        DataKind::Binary => opcode::BINARY,
    };
    encode_frame(code, payload)
}

/// A ping with an empty payload (the keepalive's).
pub(crate) fn encode_ping() -> Bytes {
    encode_frame(opcode::PING, b"")
}

/// The pong that answers a ping with `payload` (at most 125 bytes, as the ping's).
pub(crate) fn encode_pong(payload: &[u8]) -> Bytes {
    encode_frame(opcode::PONG, payload)
}

/// A close frame with `code` and `reason` (checked by `check_close`), or without a
/// code when `code` is `None`.
pub(crate) fn encode_close(code: Option<u16>, reason: &str) -> Bytes {
    let Some(code) = code else { return encode_frame(opcode::CLOSE, b"") };
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    encode_frame(opcode::CLOSE, &payload)
}

/// A data frame whose payload is a compressed message (RSV1 set, RFC 7692 6).
pub(crate) fn encode_compressed(kind: DataKind, compressed: &[u8]) -> Bytes {
    const RSV1: u8 = 0x40;
    let code = match kind {
        DataKind::Text => opcode::TEXT,
        DataKind::Binary => opcode::BINARY,
    };
    encode_frame(RSV1 | code, compressed)
}

/// The kind and payload of a data frame `encode` made (FIN set, RSV1 clear, unmasked),
/// sharing the frame's buffer; `None` for any other frame.
pub(crate) fn plain_data(frame: &Bytes) -> Option<(DataKind, Bytes)> {
    let kind = match frame.first()? {
        0x81 => DataKind::Text,
        0x82 => DataKind::Binary,
        _ => return None,
    };
    let start = match *frame.get(1)? {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    (frame.len() >= start).then(|| (kind, frame.slice(start..)))
}

/// A frame with FIN set: `first` holds the opcode and any reserved bits.
fn encode_frame(first: u8, payload: &[u8]) -> Bytes {
    const FIN: u8 = 0x80;
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(FIN | first);
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

/// Whether RFC 6455 (section 7.4, and the codes IANA registered since) lets an endpoint
/// put `code` in a close frame: 1000-1003, 1007-1014, 3000-4999. The same rule holds
/// for the codes a server sends and those it accepts.
pub(crate) fn is_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Checks a close code and reason a server is about to send: a code `is_close_code`
/// allows, and a reason that fits in one close frame.
pub(crate) fn check_close(code: u16, reason: &str) -> crate::Result<()> {
    if !is_close_code(code) {
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
    fn control_frames() {
        assert_eq!(&encode_ping()[..], b"\x89\x00");
        assert_eq!(&encode_pong(b"abc")[..], b"\x8a\x03abc");
        assert_eq!(&encode_close(None, "")[..], b"\x88\x00");
        assert_eq!(&encode_close(Some(1009), "big")[..], b"\x88\x05\x03\xf1big");
    }

    #[test]
    fn boundaries_of_the_length_forms() {
        assert_eq!(encode(DataKind::Text, &[b'a'; 125])[1], 125);
        assert_eq!(encode(DataKind::Text, &[b'a'; 126])[1], 126);
        assert_eq!(encode(DataKind::Text, &vec![b'a'; 65_535])[1], 126);
        assert_eq!(encode(DataKind::Text, &vec![b'a'; 65_536])[1], 127);
    }

    #[test]
    fn the_payload_of_a_plain_data_frame_in_each_length_form() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload = vec![b'p'; len];
            let (kind, back) = plain_data(&encode(DataKind::Binary, &payload)).unwrap();
            assert_eq!((kind, &back[..]), (DataKind::Binary, &payload[..]));
        }
        assert_eq!(
            plain_data(&encode(DataKind::Text, b"hi")).map(|(k, p)| (k, p.to_vec())),
            Some((DataKind::Text, b"hi".to_vec()))
        );
        assert!(plain_data(&encode_compressed(DataKind::Text, b"xyz")).is_none());
        assert!(plain_data(&encode_ping()).is_none());
    }
}
