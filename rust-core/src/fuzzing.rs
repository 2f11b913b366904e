//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`); not API.

use crate::frame_reader::{FrameReader, Incoming, Limits};
use crate::handshake;

/// Checks `data` as an upgrade request against a fixed route table ("/ws" is 0,
/// "/chat" is 1), split where the server splits it: the head through the first blank
/// line, the rest after it (no blank line: all of it is the head). Answers it as the
/// server would and checks that what an accepted request hands on lies within its head.
pub fn handshake_check(data: &[u8]) {
    let (head, rest) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(pos) => (data[..pos + 4].to_vec(), data[pos + 4..].to_vec()),
        None => (data.to_vec(), Vec::new()),
    };
    let route_of = |path: &[u8]| match path {
        b"/ws" => Some(0),
        b"/chat" => Some(1),
        _ => None,
    };
    match handshake::check(head, rest, route_of, crate::config::Compression::Deflate) {
        Ok(request) => {
            let _ = request.response();
            assert_eq!(
                route_of(handshake::path_or_root(&request.head[request.path.clone()])),
                Some(request.route)
            );
            let _ = &request.head[request.query.clone()];
            for (name, value) in &request.headers {
                let _ = (&request.head[name.clone()], &request.head[value.clone()]);
            }
        }
        Err(refusal) => {
            let _ = refusal.response();
        }
    }
}

/// Feeds `data` to a connection's frame reader as a client's bytes. The first byte picks
/// the size of the pieces the bytes arrive in (1 to 256) and the second the limits
/// (frame and message, 1 to 64 KiB). Checks what comes out: no piece is over-consumed,
/// the reader makes progress until a violation, every message is within the message
/// limit and every text message is UTF-8, every violation carries a close code the
/// server may send.
pub fn frame_read(data: &[u8]) {
    let [step, limit, input @ ..] = data else { return };
    let step = usize::from(*step) + 1;
    let max_message = (usize::from(*limit) + 1) * 256;
    let limits = Limits { max_frame: max_message / (1 + usize::from(*limit & 1)), max_message };
    let mut reader = FrameReader::default();
    let mut input = input.to_vec();
    for piece in input.chunks_mut(step) {
        let mut at = 0;
        while at < piece.len() {
            match reader.read(&mut piece[at..], limits) {
                Ok((used, done)) => {
                    assert!(used <= piece.len() - at, "used more than it was given");
                    assert!(used > 0 || done.is_some(), "no progress");
                    at += used;
                    if let Some(Incoming::Message { binary, data }) = done {
                        assert!(data.len() <= limits.max_message, "message over the limit");
                        assert!(binary || std::str::from_utf8(&data).is_ok(), "text not UTF-8");
                    }
                }
                Err(violation) => {
                    assert!(crate::frames::is_close_code(violation.code));
                    return;
                }
            }
        }
    }
}
