//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`); not API.

use crate::frame_reader::{FrameReader, Incoming, Limits};
use crate::handshake;
use crate::http_request::{at_once, BodyLength, Input, Pieces, RequestHead, MAX_HEAD_BYTES};

/// Checks `data` as an upgrade request against a fixed route table ("/ws" is 0,
/// "/chat" is 1 and requires one of two subprotocols) and one allowed origin, split
/// where the server splits it: the head through the first blank line, the rest after
/// it (no blank line: all of it is the head). Parses it and answers it as the server
/// would, and checks that what an accepted request hands on lies within its head.
pub fn handshake_check(data: &[u8]) {
    let (head, rest) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(pos) => (data[..pos + 4].to_vec(), data[pos + 4..].to_vec()),
        None => (data.to_vec(), Vec::new()),
    };
    let chat = crate::upgrade_rules::Subprotocols::new(&["v2.chat", "v1.chat"], true).expect("valid list");
    let route_of = |path: &[u8]| match path {
        b"/ws" => Some(handshake::Route { id: 0, subprotocols: None }),
        b"/chat" => Some(handshake::Route { id: 1, subprotocols: Some(&chat) }),
        _ => None,
    };
    let origins = ["http://localhost:8080".to_string()];
    let head = match RequestHead::parse(head) {
        Ok(head) => head,
        Err(failure) => {
            let _ = failure.answer();
            return;
        }
    };
    match handshake::check(head, rest, route_of, &origins, crate::config::Compression::Deflate) {
        Ok(request) => {
            let _ = request.response();
            assert_eq!(route_of(request.head.path()).map(|r| r.id), Some(request.route));
            if let Some(span) = &request.subprotocol {
                let _ = &request.head.bytes()[span.clone()];
            }
            let _ = request.head.query();
            for (name, value) in request.head.headers() {
                let _ = (name, value);
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

/// Feeds `data` to the HTTP request reader as a client's bytes: pipelined requests, each
/// head parsed and its body read by `Content-Length` or chunked, until the bytes end or
/// a request fails. The first byte picks the size of the pieces the bytes arrive in (1
/// to 256), the second the body limit (0 to 16,320 bytes, in steps of 64). Checks what
/// comes out: no head over its limit, no body over the limit, a body of exactly its
/// `Content-Length`, and an answer for every failure.
pub fn http_requests(data: &[u8]) {
    let [step, limit, client @ ..] = data else { return };
    let mut source = Pieces { data: client, step: usize::from(*step) + 1 };
    let limit = usize::from(*limit) * 64;
    let mut input = Input::default();
    loop {
        let head = match at_once(input.head(&mut source)) {
            Ok(head) => head,
            Err(failure) => return answered(failure),
        };
        assert!(head.len() <= MAX_HEAD_BYTES, "a head over its limit");
        let head = match RequestHead::parse(head) {
            Ok(head) => head,
            Err(failure) => return answered(failure),
        };
        let length = match head.body_length() {
            Ok(length) => length,
            Err(failure) => return answered(failure),
        };
        match at_once(input.body(&mut source, length, limit)) {
            Ok(body) => {
                assert!(body.len() <= limit, "a body over the limit");
                if let BodyLength::Fixed(n) = length {
                    assert_eq!(body.len() as u64, n, "a body not of its Content-Length");
                }
            }
            Err(failure) => return answered(failure),
        }
    }
}

/// Every failure of a request has its answer (status and text).
fn answered(failure: crate::http_request::Failure) {
    let (status, text) = failure.answer();
    assert!((400..600).contains(&status) && !text.is_empty(), "no answer for {failure:?}");
}
