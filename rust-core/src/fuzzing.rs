//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`); not API.

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
    match handshake::check(head, rest, route_of) {
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
