//! The bodies of echo's messages: filler bytes, or JSON-like text that compresses the
//! way real application messages do (repeated keys, varying words and numbers), for
//! runs with permessage-deflate.

use std::ops::Range;

use crate::ws::Rng;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `x` repeated (compresses to almost nothing)
    Filler,
    /// A JSON object of records with keys, words and numbers, the same for every message
    /// but for its sequence number
    Json,
}

/// The smallest `--size` a JSON payload can have: its frame and one record.
pub const MIN_JSON: usize = 64;

const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
    "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
    "whiskey", "xray", "yankee", "zulu", "amber", "cobalt", "ember", "frost", "granite", "harbor",
];

/// A message body of exactly `size` bytes and where in it the message's sequence number
/// is written (as hex digits, by `common::put_hex`; up to 16 of them).
pub fn make(kind: Payload, size: usize) -> Result<(Vec<u8>, Range<usize>), String> {
    match kind {
        Payload::Filler => Ok((vec![b'x'; size], 0..size.min(16))),
        Payload::Json if size < MIN_JSON => {
            Err(format!("a JSON payload needs --size {MIN_JSON} or more (got {size})"))
        }
        Payload::Json => Ok((json(size), 8..24)),
    }
}

/// `{"seq":"<16 hex digits>","items":[{record},...],"pad":"..."}`, exactly `size`
/// bytes: records while they fit, then a padding string of lowercase words. The same
/// for a given size on every run (a fixed seed).
fn json(size: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x004A_504E);
    let word = |rng: &mut Rng| WORDS[(rng.next() % WORDS.len() as u64) as usize];
    let mut out = String::with_capacity(size);
    out.push_str("{\"seq\":\"0000000000000000\",\"items\":[");
    let close = "],\"pad\":\"\"}";
    for id in 0u64.. {
        let n = rng.next();
        let record = format!(
            "{}{{\"id\":{},\"user\":\"{}_{}\",\"score\":{}.{:02},\"tags\":[\"{}\",\"{}\"],\"active\":{},\"ts\":{}}}",
            if id == 0 { "" } else { "," },
            1000 + id * 7 + n % 5,
            word(&mut rng),
            n % 1000,
            n % 97,
            (n >> 8) % 100,
            word(&mut rng),
            word(&mut rng),
            n & 1 == 0,
            1_760_000_000 + (n >> 16) % 100_000,
        );
        if out.len() + record.len() + close.len() > size {
            break;
        }
        out.push_str(&record);
    }
    out.push_str("],\"pad\":\"");
    while out.len() + 2 < size {
        let w = word(&mut rng);
        let room = size - 2 - out.len();
        out.push_str(&w[..w.len().min(room)]);
        if out.len() + 2 < size {
            out.push(' ');
        }
    }
    out.push_str("\"}");
    debug_assert_eq!(out.len(), size);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::put_hex;

    #[test]
    fn json_payloads_have_the_exact_size_and_a_sequence_field() {
        for size in [MIN_JSON, 65, 100, 1000, 4096, 4097, 65_536] {
            let (mut body, seq) = make(Payload::Json, size).unwrap();
            assert_eq!(body.len(), size);
            assert_eq!(&body[seq.clone()], b"0000000000000000");
            put_hex(&mut body[seq], 0xabc);
            let text = std::str::from_utf8(&body).unwrap();
            assert!(text.starts_with("{\"seq\":\"0000000000000abc\",\"items\":["), "{text}");
            assert_eq!(size < 200, !text.contains("\"id\":"), "{text}");
            assert!(text.ends_with("\"}"));
            // Balanced, as JSON is (no brace or bracket inside the strings).
            let depth = text.bytes().fold(0i32, |d, b| match b {
                b'{' | b'[' => d + 1,
                b'}' | b']' => d - 1,
                _ => d,
            });
            assert_eq!(depth, 0, "{text}");
        }
        assert!(make(Payload::Json, MIN_JSON - 1).is_err());
    }

    #[test]
    fn json_payloads_compress_like_text_not_like_filler() {
        let (body, _) = make(Payload::Json, 4096).unwrap();
        assert_eq!(make(Payload::Json, 4096).unwrap().0, body, "deterministic");
        let mut z = Vec::new();
        crate::deflate::compress(&body, &mut z);
        // Real JSON compresses some 3-6 times; filler would be some 100 times.
        assert!(z.len() > body.len() / 8 && z.len() < body.len() / 2, "{} of {}", z.len(), body.len());
        let distinct = body.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 30);
    }

    #[test]
    fn filler_keeps_its_old_shape() {
        let (body, seq) = make(Payload::Filler, 32).unwrap();
        assert_eq!((body, seq), (vec![b'x'; 32], 0..16));
        assert_eq!(make(Payload::Filler, 5).unwrap().1, 0..5);
    }
}
