//! The `Sec-WebSocket-Extensions` offers of an upgrade request, and Roost's answer.
//!
//! A client may offer permessage-deflate several times, with different parameters,
//! in order of preference (RFC 7692 5). The first offer whose parameters are all
//! known, valid and not repeated is accepted; an offer that breaks a rule is declined,
//! and a client whose offers are all declined gets an uncompressed connection, never a
//! failed handshake.

/// Largest LZ77 window, in bits (32 KiB): what Roost's shared compressor uses.
const MAX_WINDOW_BITS: u8 = 15;
/// Smallest window zlib compresses raw deflate with (it has no 8-bit window).
const MIN_COMPRESSOR_WINDOW_BITS: u8 = 9;

/// What a connection agreed with its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// The largest window the client lets the server compress with
    /// (`server_max_window_bits`, 15 when not limited).
    pub server_max_window_bits: u8,
    /// The server keeps its compression context from message to message (the
    /// server's choice, unless the client asked for `server_no_context_takeover`).
    pub server_context_takeover: bool,
}

impl Agreement {
    /// Whether the server's compressed frames (window of 15 bits) may be sent: a
    /// client that limited the server's window receives uncompressed frames, which
    /// RFC 7692 always allows.
    pub(crate) fn takes_compressed(&self) -> bool {
        !self.server_context_takeover && self.server_max_window_bits == MAX_WINDOW_BITS
    }

    /// The window, in bits, of the connection's own compressor when the server keeps
    /// a context per connection; `None` when it does not, or when the client allowed
    /// only a window smaller than zlib can compress with (its messages then go out
    /// uncompressed).
    pub(crate) fn own_compressor_window(&self) -> Option<u8> {
        (self.server_context_takeover && self.server_max_window_bits >= MIN_COMPRESSOR_WINDOW_BITS)
            .then_some(self.server_max_window_bits)
    }

    /// The value of the `Sec-WebSocket-Extensions` header of the 101 answer: no client
    /// context takeover, no server context takeover unless the server keeps one, and
    /// the client's limit of the server's window echoed.
    pub(crate) fn response(&self) -> String {
        let mut answer = String::from("permessage-deflate");
        if !self.server_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        answer.push_str("; client_no_context_takeover");
        if self.server_max_window_bits != MAX_WINDOW_BITS {
            answer.push_str(&format!("; server_max_window_bits={}", self.server_max_window_bits));
        }
        answer
    }
}

/// The agreement for the first acceptable permessage-deflate offer among the values of
/// the request's `Sec-WebSocket-Extensions` headers, in order; `None` when there is
/// none. `context_takeover`: the server keeps a compression context per connection
/// where the client lets it.
pub(crate) fn negotiate<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    context_takeover: bool,
) -> Option<Agreement> {
    headers
        .into_iter()
        .flat_map(|value| value.split(|&b| b == b','))
        .filter_map(|offer| std::str::from_utf8(offer).ok())
        .find_map(|offer| accept(offer, context_takeover))
}

/// The agreement for one offer (`name; param; param=value`), when Roost accepts it.
fn accept(offer: &str, context_takeover: bool) -> Option<Agreement> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut seen: [bool; 4] = [false; 4];
    let mut agreement =
        Agreement { server_max_window_bits: MAX_WINDOW_BITS, server_context_takeover: context_takeover };
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param, None),
        };
        let index = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|known| name.eq_ignore_ascii_case(known))?;
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
        match (index, value) {
            // The context takeover parameters take no value.
            (0, None) => agreement.server_context_takeover = false,
            (1, None) => {}
            (2, Some(bits)) => agreement.server_max_window_bits = window_bits(bits)?,
            // The client's own window: a limit it will keep, or "you may limit it".
            // Roost inflates with the largest window, so either is fine.
            (3, None) => {}
            (3, Some(bits)) => {
                window_bits(bits)?;
            }
            _ => return None,
        }
    }
    Some(agreement)
}

/// A parameter value, without the quotes of its quoted-string form (RFC 7692 7.1).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(value),
    }
}

/// A window size in bits: a decimal 8 to 15 without leading zeroes (RFC 7692 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    let bits: u8 = value.parse().ok()?;
    ((8..=MAX_WINDOW_BITS).contains(&bits) && value.len() == if bits < 10 { 1 } else { 2 }).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    fn answer(headers: &[&str]) -> Option<String> {
        negotiate(headers.iter().map(|h| h.as_bytes()), false).map(|a| a.response())
    }

    #[test]
    fn offers_and_answers() {
        let window = |bits: u8| Some(format!("{BOTH}; server_max_window_bits={bits}"));
        let table: &[(&[&str], Option<String>)] = &[
            (&[], None),
            (&["x-webkit-deflate-frame"], None),
            // What browsers send.
            (&["permessage-deflate; client_max_window_bits"], Some(BOTH.into())),
            (&["permessage-deflate"], Some(BOTH.into())),
            (&["PerMessage-Deflate ;  Client_No_Context_Takeover "], Some(BOTH.into())),
            (&["permessage-deflate; server_no_context_takeover"], Some(BOTH.into())),
            (&["permessage-deflate; client_max_window_bits=10"], Some(BOTH.into())),
            (&["permessage-deflate; client_max_window_bits=\"12\""], Some(BOTH.into())),
            (&["permessage-deflate; server_max_window_bits=15"], Some(BOTH.into())),
            (&["permessage-deflate; server_max_window_bits=9"], window(9)),
            (&["permessage-deflate; server_max_window_bits=8"], window(8)),
            // Invalid offers are declined; a later valid one is taken.
            (&["permessage-deflate; server_max_window_bits"], None),
            (&["permessage-deflate; server_max_window_bits=16"], None),
            (&["permessage-deflate; server_max_window_bits=7"], None),
            (&["permessage-deflate; server_max_window_bits=09"], None),
            (&["permessage-deflate; client_max_window_bits=abc"], None),
            (&["permessage-deflate; server_no_context_takeover=1"], None),
            (&["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], None),
            (&["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"], None),
            (&["permessage-deflate; unknown_parameter"], None),
            (&["permessage-deflate; server_max_window_bits=20, permessage-deflate; server_max_window_bits=10"], window(10)),
            (&["foo, permessage-deflate; bogus", "permessage-deflate; server_max_window_bits=11"], window(11)),
            (&["permessage-deflate; server_max_window_bits=12, permessage-deflate"], window(12)),
        ];
        for (headers, expected) in table {
            assert_eq!(&answer(headers), expected, "offer {headers:?}");
        }
    }

    #[test]
    fn only_the_full_window_takes_the_shared_compressed_frames() {
        let shared = |bits| Agreement { server_max_window_bits: bits, server_context_takeover: false };
        assert!(shared(15).takes_compressed());
        assert!(!shared(14).takes_compressed());
        assert_eq!(shared(15).own_compressor_window(), None);
    }

    #[test]
    fn with_context_takeover_the_server_keeps_its_context_unless_the_client_refuses() {
        let answer = |offer: &str| negotiate([offer.as_bytes()], true).unwrap();
        let kept = answer("permessage-deflate; client_max_window_bits");
        assert_eq!(kept.response(), "permessage-deflate; client_no_context_takeover");
        assert!(!kept.takes_compressed());
        assert_eq!(kept.own_compressor_window(), Some(15));
        let limited = answer("permessage-deflate; server_max_window_bits=10");
        assert_eq!(
            limited.response(),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
        );
        assert_eq!(limited.own_compressor_window(), Some(10));
        // zlib has no 8-bit window: such a client gets its messages uncompressed.
        assert_eq!(answer("permessage-deflate; server_max_window_bits=8").own_compressor_window(), None);
        let refused = answer("permessage-deflate; server_no_context_takeover");
        assert_eq!(refused.response(), BOTH);
        assert!(refused.takes_compressed());
        assert_eq!(refused.own_compressor_window(), None);
    }
}
