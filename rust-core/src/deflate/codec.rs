//! Compressing a message once for all its recipients, and inflating a client's message
//! within the message limit.
//!
//! flate2 on zlib-rs: raw deflate streams with a chosen window size need a zlib
//! backend (the default miniz_oxide has no window sizes), and zlib-rs is one written
//! in Rust, so the core still builds with nothing but cargo.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::frame_reader::Violation;

/// The end of a deflate block flushed with SYNC_FLUSH, which RFC 7692 7.2.1 strips
/// from every message and the receiver appends again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Most bytes inflated per step, so that a message over the limit is found within
/// this many bytes of it whatever its compressed size.
const INFLATE_STEP: usize = 16 << 10;
/// Window of both directions, in bits (32 KiB).
const WINDOW_BITS: u8 = 15;

const TOO_BIG: Violation = Violation { code: 1009, reason: "message too big" };
const CORRUPT: Violation = Violation { code: 1007, reason: "invalid compressed data" };

thread_local! {
    /// The compressor of each sending thread, reset for every message (no context
    /// takeover): about 256 KiB of zlib state per thread, not per connection.
    static COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new_with_window_bits(Compression::default(), false, WINDOW_BITS));
}

/// The payload of a compressed message (RSV1 set on its frame): `data` as one raw
/// deflate stream without its final `TAIL`. `None` when compressing would not make it
/// smaller; the message then goes out uncompressed.
pub(crate) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = compressor.total_in() as usize;
            compressor.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).ok()?;
            // Done once all input is in and the flush's empty block has been written.
            if compressor.total_in() as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            if out.len() > data.len() + 64 {
                return None;
            }
            out.reserve(out.capacity().max(64));
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        (out.len() < data.len()).then_some(out)
    })
}

/// The compressor of one connection whose server keeps its context (server context
/// takeover): each message is compressed after the ones before it, so it may refer to
/// them. Its zlib state is made with the first message it compresses: a connection that
/// never sends one worth compressing costs nothing here.
pub(crate) struct ConnectionCompressor {
    window_bits: u8,
    stream: Option<Box<Compress>>,
}

impl std::fmt::Debug for ConnectionCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCompressor").field("window_bits", &self.window_bits).finish()
    }
}

impl ConnectionCompressor {
    /// A compressor with a window of `window_bits` (9 to 15).
    pub(crate) fn new(window_bits: u8) -> Self {
        ConnectionCompressor { window_bits, stream: None }
    }

    /// The payload of the compressed message (RSV1 set) for `data`, without the final
    /// `TAIL`. Always sent, even when not smaller: the client's inflater must see every
    /// byte this compressor saw, or later messages would refer to bytes it lacks.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let window_bits = self.window_bits;
        let stream = self.stream.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(Compression::default(), false, window_bits))
        });
        let start_in = stream.total_in();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = (stream.total_in() - start_in) as usize;
            // Compressing into memory fails only on a broken stream, never on input.
            stream
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate of a valid stream");
            // Done once all input is in and the flush's empty block has been written.
            if (stream.total_in() - start_in) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        debug_assert!(out.ends_with(&TAIL));
        out.truncate(out.len().saturating_sub(TAIL.len()));
        out
    }
}

/// Inflates one compressed message from its frames' payloads. Made when the message
/// starts and dropped when it ends: the client agreed to no context takeover.
pub(crate) struct Inflater {
    stream: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Inflater {
    pub(crate) fn new() -> Self {
        Inflater { stream: Decompress::new_with_window_bits(false, WINDOW_BITS) }
    }

    /// Inflates `input`, a piece of the message's compressed payload, onto `out`,
    /// failing with 1009 as soon as `out` would pass `limit` bytes: `out` never grows
    /// past `limit` + 1, however much the input would inflate to.
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Violation> {
        self.run(input, out, limit, FlushDecompress::None)
    }

    /// Ends the message: inflates the `TAIL` the sender stripped.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), Violation> {
        self.run(&TAIL, out, limit, FlushDecompress::Sync)
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
        flush: FlushDecompress,
    ) -> Result<(), Violation> {
        loop {
            // Room for one byte past the limit, to tell "at the limit" from "over it".
            let room = (limit + 1 - out.len().min(limit)).min(INFLATE_STEP);
            if out.capacity() - out.len() < room {
                out.reserve_exact(room.max(out.capacity().min(limit + 1 - out.len())));
            }
            let spare = out.capacity() - out.len();
            let (before_in, before_out) = (self.stream.total_in(), self.stream.total_out());
            let status = self.stream.decompress_vec(input, out, flush).map_err(|_| CORRUPT)?;
            let consumed = (self.stream.total_in() - before_in) as usize;
            let produced = (self.stream.total_out() - before_out) as usize;
            input = &input[consumed..];
            if out.len() > limit {
                return Err(TOO_BIG);
            }
            let output_full = produced == spare;
            if status == Status::StreamEnd
                || (input.is_empty() && !output_full)
                || (consumed == 0 && produced == 0)
            {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Violation> {
        let mut inflater = Inflater::new();
        let mut out = Vec::new();
        for piece in compressed.chunks(100) {
            inflater.inflate(piece, &mut out, limit)?;
        }
        inflater.finish(&mut out, limit)?;
        Ok(out)
    }

    #[test]
    fn a_compressed_message_inflates_back_in_pieces_of_any_size() {
        let text = "Roost compresses this sentence. ".repeat(500);
        let compressed = compress(text.as_bytes()).expect("repetitive text compresses");
        assert!(compressed.len() < text.len() / 10);
        assert_eq!(inflate_all(&compressed, 1 << 20).unwrap(), text.as_bytes());
        // Each message stands alone: the same text compresses to the same bytes.
        assert_eq!(compress(text.as_bytes()), Some(compressed));
    }

    #[test]
    fn what_does_not_shrink_is_not_compressed() {
        assert_eq!(compress(b"hi"), None);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }

    #[test]
    fn the_limit_is_inclusive() {
        let data = vec![b'a'; 100_000];
        let compressed = compress(&data).unwrap();
        assert_eq!(inflate_all(&compressed, 100_000).unwrap().len(), 100_000);
        assert_eq!(inflate_all(&compressed, 99_999), Err(TOO_BIG));
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit_without_growing_past_it() {
        // 64 MiB of zeros in about 64 KiB: the output stops one byte past the limit.
        let bomb = compress(&vec![0; 64 << 20]).unwrap();
        assert!(bomb.len() < 100 << 10, "{} bytes", bomb.len());
        let mut inflater = Inflater::new();
        let mut out = Vec::new();
        assert_eq!(inflater.inflate(&bomb, &mut out, 1 << 20), Err(TOO_BIG));
        assert!(out.capacity() <= (1 << 20) + 1, "grew to {}", out.capacity());
    }

    #[test]
    fn a_connection_compressor_refers_to_earlier_messages() {
        let line = br#"{"room":"lobby","user":"ada","text":"hello there, how are you all doing today?"}"#;
        let mut compressor = ConnectionCompressor::new(15);
        let first = compressor.compress(line);
        let second = compressor.compress(line);
        assert!(second.len() < first.len() / 4, "{} then {} bytes", first.len(), second.len());
        // One inflater over both, as a client with context takeover inflates them.
        let mut inflater = Inflater::new();
        for message in [&first, &second] {
            let mut out = Vec::new();
            inflater.inflate(message, &mut out, 1 << 20).unwrap();
            inflater.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(out, line);
        }
    }

    #[test]
    fn corrupt_data_closes_1007() {
        assert_eq!(inflate_all(&[0xff, 0xff, 0xff, 0xff], 1 << 20), Err(CORRUPT));
    }
}
