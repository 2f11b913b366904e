//! One message as its recipients receive it: the plain frame, and for recipients that
//! negotiated permessage-deflate the compressed frame, each encoded at most once and
//! only when a recipient needs it.
//!
//! Compression has no context takeover (see `deflate`), so a compressed frame does not
//! depend on who receives it: a broadcast to 10,000 recipients, some compressing and
//! some not, is encoded twice, never per recipient.

use std::cell::OnceCell;

use bytes::Bytes;

use crate::connection_state::ConnectionState;
use crate::deflate;
use crate::frames::{self, DataKind};

/// A message to send, and its frames once encoded.
pub(crate) struct Encoded<'a> {
    kind: DataKind,
    payload: &'a [u8],
    /// The message is large enough to be worth compressing.
    compressible: bool,
    plain: OnceCell<Bytes>,
    compressed: OnceCell<Bytes>,
}

impl<'a> Encoded<'a> {
    /// `compress_from` is the smallest payload sent compressed; `None` when compression
    /// is off.
    pub(crate) fn new(kind: DataKind, payload: &'a [u8], compress_from: Option<usize>) -> Self {
        let compressible = compress_from.is_some_and(|min| payload.len() >= min);
        Encoded { kind, payload, compressible, plain: OnceCell::new(), compressed: OnceCell::new() }
    }

    /// The frame `recipient` receives.
    pub(crate) fn frame_for(&self, recipient: &ConnectionState) -> &Bytes {
        if self.compressible && recipient.takes_compressed() {
            return self.compressed.get_or_init(|| match deflate::compress(self.payload) {
                Some(compressed) => frames::encode_compressed(self.kind, &compressed),
                None => self.plain().clone(),
            });
        }
        self.plain()
    }

    /// The payload's length, before compression and framing.
    pub(crate) fn len(&self) -> usize {
        self.payload.len()
    }

    fn plain(&self) -> &Bytes {
        self.plain.get_or_init(|| frames::encode(self.kind, self.payload))
    }

    /// Whether any frame was encoded.
    #[cfg(test)]
    pub(crate) fn was_encoded(&self) -> bool {
        self.plain.get().is_some() || self.compressed.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(takes_compressed: bool) -> ConnectionState {
        ConnectionState::new(1, 0, 1 << 20, 16).with_compression(takes_compressed)
    }

    #[test]
    fn each_variant_is_encoded_once_and_shared() {
        let text = "a message worth compressing ".repeat(20);
        let message = Encoded::new(DataKind::Text, text.as_bytes(), Some(256));
        let (plain, compressing) = (recipient(false), recipient(true));
        assert!(!message.was_encoded());
        let a = message.frame_for(&compressing).clone();
        let b = message.frame_for(&compressing).clone();
        assert_eq!(a.as_ptr(), b.as_ptr(), "compressed twice");
        assert_eq!(a[0], 0xc1, "FIN, RSV1 and the text opcode");
        assert!(a.len() < text.len() / 4);
        let p = message.frame_for(&plain);
        assert_eq!(p[0], 0x81);
        assert_eq!(p.as_ptr(), message.frame_for(&plain).as_ptr(), "encoded twice");
    }

    #[test]
    fn small_messages_and_compression_off_go_out_plain() {
        let compressing = recipient(true);
        let text = "x".repeat(300);
        assert_eq!(
            Encoded::new(DataKind::Text, &text.as_bytes()[..255], Some(256)).frame_for(&compressing)[0],
            0x81
        );
        assert_eq!(Encoded::new(DataKind::Text, text.as_bytes(), None).frame_for(&compressing)[0], 0x81);
        assert_eq!(
            Encoded::new(DataKind::Binary, text.as_bytes(), Some(256)).frame_for(&compressing)[0],
            0xc2
        );
    }
}
