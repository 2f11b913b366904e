//! The bytes read from a connection and not yet consumed: one buffer that grows to
//! hold the largest message seen, refilled from the socket with one read at a time.
//! The WebSocket reader (`ws::Reader`) and the HTTP mode (`http.rs`) cut their
//! messages out of it in place.

use std::ops::Range;

use crate::ws::Stream;

pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new(capacity: usize) -> ReadBuf {
        ReadBuf { buf: vec![0; capacity.max(64)], start: 0, end: 0 }
    }

    /// The bytes read and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Consumes the first `n` bytes of `data()` and returns where they are, for
    /// `taken`: they stay in place until the next `fill`, `push` or `expect`.
    pub fn take(&mut self, n: usize) -> Range<usize> {
        assert!(n <= self.end - self.start, "taking more than is buffered");
        self.start += n;
        self.start - n..self.start
    }

    /// Bytes that `take` consumed.
    pub fn taken(&self, range: Range<usize>) -> &[u8] {
        assert!(range.end <= self.start, "not consumed yet");
        &self.buf[range]
    }

    /// Appends `data` as if it had been read.
    pub fn push(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Makes sure that a message of `total` bytes starting at `data()` will fit, so
    /// that the reads that complete it have room.
    pub fn expect(&mut self, total: usize) {
        let held = self.end - self.start;
        if total > held && self.buf.len() - self.start < total {
            self.reserve(total - held);
        }
    }

    /// Makes room for at least `more` bytes after `end`.
    fn reserve(&mut self, more: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= more {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < more {
            let want = (self.end + more).next_power_of_two();
            self.buf.resize(want, 0);
        }
    }

    /// Reads once from the stream into the buffer. Returns the bytes read (0 on EOF).
    pub async fn fill(&mut self, stream: &mut Stream) -> std::io::Result<usize> {
        // Keep at least a quarter of the buffer (and never less than 256 bytes) free.
        let free_wanted = (self.buf.len() / 4).max(256);
        self.reserve(free_wanted);
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unconsumed_bytes_across_growth() {
        let mut b = ReadBuf::new(8);
        b.push(b"abcdef");
        let ab = b.take(2);
        assert_eq!(b.taken(ab), b"ab");
        b.push(b"ghijklmnopqrstuvwxyz");
        assert_eq!(b.data(), b"cdefghijklmnopqrstuvwxyz");
        assert_eq!(b.take(24).len(), 24);
        assert!(b.data().is_empty());
    }

    #[test]
    fn expect_makes_room_for_the_whole_message() {
        let mut b = ReadBuf::new(64);
        b.push(&[1; 60]);
        b.take(50);
        b.expect(1000);
        assert!(b.buf.len() - b.start >= 1000);
        assert_eq!(b.data(), &[1; 10]);
    }
}
