//! The envelope: one broadcast or publish as it travels through Redis between servers,
//! and the Redis channel it travels on. The layout is documented in docs/design.md
//! ("The backplane"); every integer is big-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, `VERSION` |
//! | 16 | the publishing server's node id |
//! | 1 | flags: `FLAG_ROUTE` (else a topic), `FLAG_BINARY` (else text); no others |
//! | 8 | excluded connection id, 0 for none (meaningful on the publishing server only) |
//! | 4 | name length n |
//! | n | name: the topic, or the route's path |
//! | rest | payload |

use crate::frames::DataKind;
use crate::topics::check_topic;

/// The format this library writes and the only one it reads.
pub(crate) const VERSION: u8 = 1;
/// A server's identity on the backplane: random, drawn when the server is created.
pub(crate) type NodeId = [u8; 16];

const FLAG_ROUTE: u8 = 1;
const FLAG_BINARY: u8 = 2;
const HEADER_LEN: usize = 1 + 16 + 1 + 8 + 4;

/// Channel of a topic: this prefix, then the topic's bytes.
pub(crate) const TOPIC_CHANNEL_PREFIX: &[u8] = b"roost:topic:";
/// Channel of a route: this prefix, then the route's path.
pub(crate) const ROUTE_CHANNEL_PREFIX: &[u8] = b"roost:route:";

/// What an envelope reaches: a topic's subscribers or a route's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Topic,
    Route,
}

/// The Redis channel of a topic or route name.
pub(crate) fn channel(target: Target, name: &[u8]) -> Vec<u8> {
    let prefix = match target {
        Target::Topic => TOPIC_CHANNEL_PREFIX,
        Target::Route => ROUTE_CHANNEL_PREFIX,
    };
    [prefix, name].concat()
}

/// One message between servers, borrowing its name and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) node: NodeId,
    pub(crate) target: Target,
    pub(crate) kind: DataKind,
    /// The connection the publisher excluded; connection ids are per server, so only
    /// the publishing server could apply it, and receivers ignore it.
    pub(crate) exclude: Option<u64>,
    pub(crate) name: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The envelope's bytes, in one buffer.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut flags = 0;
        if self.target == Target::Route {
            flags |= FLAG_ROUTE;
        }
        if self.kind == DataKind::Binary {
            flags |= FLAG_BINARY;
        }
        // A name is a topic (at most 1024 bytes) or a route path, which would not fit in
        // memory before it reached 4 GiB.
        let name_len = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(HEADER_LEN + self.name.len() + self.payload.len());
        out.push(VERSION);
        out.extend_from_slice(&self.node);
        out.push(flags);
        out.extend_from_slice(&self.exclude.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(self.name);
        out.extend_from_slice(self.payload);
        out
    }

    /// Reads an envelope, or says why the bytes are not one this library can deliver:
    /// another format version, unknown flags, a length past the end, a topic name out of
    /// range, an empty route path, a text payload that is not UTF-8.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Envelope<'a>, &'static str> {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err("shorter than an envelope's header");
        };
        if header[0] != VERSION {
            return Err("unknown format version");
        }
        let node: NodeId = header[1..17].try_into().unwrap_or_default();
        let flags = header[17];
        if flags & !(FLAG_ROUTE | FLAG_BINARY) != 0 {
            return Err("unknown flags");
        }
        let exclude = u64::from_be_bytes(header[18..26].try_into().unwrap_or_default());
        let name_len = u32::from_be_bytes(header[26..30].try_into().unwrap_or_default()) as usize;
        if name_len > rest.len() {
            return Err("name longer than the envelope");
        }
        let (name, payload) = rest.split_at(name_len);
        let target = if flags & FLAG_ROUTE != 0 { Target::Route } else { Target::Topic };
        match target {
            Target::Topic if check_topic(name).is_err() => return Err("topic name out of range"),
            Target::Route if name.is_empty() => return Err("empty route path"),
            _ => {}
        }
        let kind = if flags & FLAG_BINARY != 0 { DataKind::Binary } else { DataKind::Text };
        if kind == DataKind::Text && std::str::from_utf8(payload).is_err() {
            return Err("text payload is not UTF-8");
        }
        Ok(Envelope { node, target, kind, exclude: (exclude != 0).then_some(exclude), name, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Envelope<'_> {
        Envelope {
            node: [7; 16],
            target: Target::Topic,
            kind: DataKind::Text,
            exclude: Some(42),
            name: b"room",
            payload,
        }
    }

    #[test]
    fn an_envelope_reads_back_as_written() {
        for target in [Target::Topic, Target::Route] {
            for kind in [DataKind::Text, DataKind::Binary] {
                for exclude in [None, Some(1), Some(u64::MAX)] {
                    let name: &[u8] = if target == Target::Route { b"/chat" } else { b"room" };
                    let e = Envelope { target, kind, exclude, name, ..sample(b"hello") };
                    let bytes = e.encode();
                    assert_eq!(bytes.len(), HEADER_LEN + name.len() + 5);
                    assert_eq!(Envelope::decode(&bytes), Ok(e));
                }
            }
        }
        let empty = sample(b"");
        assert_eq!(Envelope::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes =
            Envelope { target: Target::Route, kind: DataKind::Binary, ..sample(b"\x00\xff") }.encode();
        let mut expected = vec![1];
        expected.extend([7; 16]);
        expected.push(FLAG_ROUTE | FLAG_BINARY);
        expected.extend(42u64.to_be_bytes());
        expected.extend(4u32.to_be_bytes());
        expected.extend(b"room\x00\xff");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn malformed_envelopes_are_refused_with_a_reason() {
        let good = sample(b"hi").encode();
        let with = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            bytes
        };
        let long_topic = Envelope { name: &[b'x'; 1025], ..sample(b"") }.encode();
        let bad_text = sample(b"\xff").encode();
        let empty_path = Envelope { target: Target::Route, name: b"", ..sample(b"") }.encode();
        let cases: [(&[u8], &str); 9] = [
            (b"", "shorter"),
            (&good[..HEADER_LEN - 1], "shorter"),
            (&with(0, 2), "version"),
            (&with(0, 0), "version"),
            (&with(17, 4), "flags"),
            (&with(29, 200), "name longer"),
            (&long_topic, "topic name"),
            (&bad_text, "UTF-8"),
            (&empty_path, "route path"),
        ];
        for (bytes, reason) in cases {
            let err = Envelope::decode(bytes).unwrap_err();
            assert!(err.contains(reason), "{err} for {bytes:?}");
        }
        // Cut inside the name: the name no longer fits.
        assert!(Envelope::decode(&good[..HEADER_LEN + 2]).is_err());
    }

    #[test]
    fn channels_are_prefixed_by_kind() {
        assert_eq!(channel(Target::Topic, b"a\x00b"), b"roost:topic:a\x00b");
        assert_eq!(channel(Target::Route, b"/chat"), b"roost:route:/chat");
    }
}
