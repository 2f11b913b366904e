//! permessage-deflate (RFC 7692), the client's side.
//!
//! The offer is `permessage-deflate; client_no_context_takeover;
//! server_no_context_takeover`: every message is compressed, and inflated, on its own,
//! with no window carried over from the previous one. That is the simplest form to
//! implement (one compressor and one decompressor for the whole thread, reset for each
//! message, instead of ~300 KiB of deflate state kept per connection), and the form in
//! which a server can compress a broadcast message once and send the same frame to
//! every receiver, since no receiver's frame depends on what that receiver got before.
//!
//! A message is compressed as raw deflate ending in a sync flush, whose trailing empty
//! stored block `00 00 ff ff` is removed before sending (RFC 7692, 7.2.1); on receipt
//! those four bytes are appended again before inflating (7.2.2).

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The `Sec-WebSocket-Extensions` value the client offers.
pub const OFFER: &str = "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// The tail of a sync flush, removed from each compressed message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Level of the client's own compression: the fastest, so that the load generator
/// spends little of its core on it. The server compresses at whatever level it uses.
const LEVEL: u32 = 1;

/// The largest inflated message accepted (a guard against a runaway inflate).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Checks the server's `Sec-WebSocket-Extensions` answer (every such header's value,
/// joined by commas) against what the client asked for. With `offered`, the answer
/// must accept permessage-deflate with server_no_context_takeover (RFC 7692, 7.1.1.1:
/// a server that accepts an offer holding it must include it); without, the server
/// must not answer with any extension.
pub fn check_answer(answer: Option<&str>, offered: bool) -> Result<(), String> {
    let answer = answer.map(str::trim).filter(|a| !a.is_empty());
    if !offered {
        return match answer {
            None => Ok(()),
            Some(a) => Err(format!("server answered with an extension that was not offered: {a:?}")),
        };
    }
    let Some(answer) = answer else {
        return Err("server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its answer; \
                    it does not have compression on)"
            .into());
    };
    let extensions: Vec<&str> = answer.split(',').map(str::trim).collect();
    if extensions.len() != 1 {
        return Err(format!("server answered with more than the one extension offered: {answer:?}"));
    }
    let mut params = extensions[0].split(';').map(str::trim);
    let name = params.next().unwrap_or("");
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!("server answered with an extension that was not offered: {answer:?}"));
    }
    let mut server_no_takeover = false;
    for p in params {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) => server_no_takeover = true,
            ("client_no_context_takeover", None) => {}
            // Any window the server compresses with fits the 15-bit window inflated with.
            ("server_max_window_bits", Some(v)) if matches!(v.parse::<u8>(), Ok(8..=15)) => {}
            // Not offered, so not allowed smaller than the default 15 bits (which the
            // compressor here always uses).
            ("client_max_window_bits", Some("15")) => {}
            _ => {
                return Err(format!("server's permessage-deflate answer has a parameter not offered: {p:?}"))
            }
        }
    }
    if !server_no_takeover {
        return Err(format!(
            "server's permessage-deflate answer lacks server_no_context_takeover, which was offered: {answer:?}"
        ));
    }
    Ok(())
}

struct Codec {
    compress: Compress,
    decompress: Decompress,
}

thread_local! {
    // One of each for the thread: with no context takeover each message starts afresh.
    static CODEC: RefCell<Option<Codec>> = const { RefCell::new(None) };
}

fn with_codec<T>(f: impl FnOnce(&mut Codec) -> T) -> T {
    CODEC.with(|c| {
        let mut c = c.borrow_mut();
        let codec = c.get_or_insert_with(|| Codec {
            compress: Compress::new(Compression::new(LEVEL), false),
            decompress: Decompress::new(false),
        });
        f(codec)
    })
}

/// Appends the compressed form of one message to `out`: raw deflate ending in a sync
/// flush, without that flush's `00 00 ff ff`.
pub fn compress(payload: &[u8], out: &mut Vec<u8>) {
    with_codec(|c| {
        let c = &mut c.compress;
        c.reset();
        let start = out.len();
        let mut pos = 0;
        loop {
            // Stored blocks at worst: 5 bytes per 64 KiB, plus the flush.
            out.reserve(payload.len() - pos + payload.len() / 1024 + 64);
            let before = c.total_in();
            c.compress_vec(&payload[pos..], out, FlushCompress::Sync)
                .expect("deflate of a buffer cannot fail");
            pos += (c.total_in() - before) as usize;
            if pos == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        debug_assert!(out.len() >= start + TAIL.len() && out.ends_with(&TAIL));
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
    })
}

/// Inflates one compressed message (as received, without the `00 00 ff ff` tail) into
/// `out`, which is cleared first.
pub fn decompress(data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    with_codec(|c| {
        let d = &mut c.decompress;
        d.reset(false);
        for input in [data, &TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.capacity() - out.len() < 1024 {
                    out.reserve(out.len().max(4096));
                }
                let before = d.total_in();
                let status = d
                    .decompress_vec(&input[pos..], out, FlushDecompress::Sync)
                    .map_err(|e| format!("inflate: {e}"))?;
                pos += (d.total_in() - before) as usize;
                if out.len() > MAX_MESSAGE {
                    return Err(format!("inflated message over {MAX_MESSAGE} bytes"));
                }
                if status == Status::StreamEnd {
                    // A final block: whatever follows (the tail) is not needed.
                    return Ok(());
                }
                if pos == input.len() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(payload: &[u8]) -> Vec<u8> {
        let mut z = Vec::new();
        compress(payload, &mut z);
        let mut back = Vec::new();
        decompress(&z, &mut back).unwrap();
        back
    }

    #[test]
    fn compress_and_inflate_round_trip_every_size() {
        for len in [0usize, 1, 5, 100, 4096, 70_000, 300_000] {
            let payload: Vec<u8> = (0..len).map(|i| b"abcdefgh {}:,0123"[(i * 7 + i / 13) % 17]).collect();
            assert_eq!(round_trip(&payload), payload, "length {len}");
        }
        // Twice in a row: the shared state is reset between messages.
        assert_eq!(round_trip(b"hello hello hello"), b"hello hello hello");
    }

    #[test]
    fn compressed_messages_lack_the_sync_flush_tail() {
        let mut z = Vec::new();
        compress(b"Hello", &mut z);
        assert!(!z.ends_with(&TAIL));
        assert!(z.len() < 16);
    }

    #[test]
    fn inflates_the_rfc_7692_examples() {
        // RFC 7692, 7.2.3.1: "Hello" compressed; 7.2.3.3: as a stored block; 7.2.3.4: in
        // a final (BFINAL) block, which needs no tail; 7.2.3.5: in two blocks.
        let mut out = Vec::new();
        decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out).unwrap();
        assert_eq!(out, b"Hello");
        decompress(&[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00], &mut out).unwrap();
        assert_eq!(out, b"Hello");
        decompress(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], &mut out).unwrap();
        assert_eq!(out, b"Hello");
        decompress(&[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00], &mut out)
            .unwrap();
        assert_eq!(out, b"Hello");
        assert!(decompress(&[0xff, 0xff, 0xff], &mut out).is_err());
    }

    #[test]
    fn answers_are_checked_against_the_offer() {
        assert!(check_answer(None, false).is_ok());
        assert!(check_answer(Some("permessage-deflate"), false).is_err());
        let missing = check_answer(None, true).unwrap_err();
        assert!(missing.contains("did not accept permessage-deflate"), "{missing}");
        assert!(check_answer(Some("permessage-deflate; server_no_context_takeover"), true).is_ok());
        assert!(check_answer(
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            true
        )
        .is_ok());
        assert!(check_answer(
            Some("Permessage-Deflate; server_no_context_takeover; server_max_window_bits=12"),
            true
        )
        .is_ok());
        assert!(check_answer(Some("permessage-deflate"), true).is_err());
        assert!(check_answer(
            Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=10"),
            true
        )
        .is_err());
        assert!(check_answer(Some("x-webkit-deflate-frame"), true).is_err());
        assert!(check_answer(
            Some("permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover"),
            true
        )
        .is_err());
    }
}
