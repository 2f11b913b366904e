//! permessage-deflate (RFC 7692): the negotiation in the upgrade, and the codec.
//!
//! Roost compresses without server context takeover: every compressed message is a
//! deflate stream of its own, so one compressed frame serves every recipient of a
//! broadcast or publish that negotiated the extension, encoded once as the plain frame
//! is. It also answers `client_no_context_takeover`, so a connection keeps no
//! compression state between messages: an idle connection costs what it costs
//! without compression. The price is the ratio of small messages, which cannot refer
//! to earlier ones.

mod codec;
mod negotiation;

pub(crate) use codec::{compress, ConnectionCompressor, Inflater};
pub(crate) use negotiation::{negotiate, Agreement};
