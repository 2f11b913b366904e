//! Fan-out: one message's shared frames offered to many recipients (a route's broadcast, a
//! topic's publish) under the server's slow-consumer policy, and the counts of what
//! that policy did and of what the recipients took.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::SlowConsumer;
use crate::connection_state::{ConnectionState, Offer};
use crate::counters::Tally;
use crate::outgoing::Encoded;

#[derive(Debug)]
pub(crate) struct Fanout {
    policy: SlowConsumer,
    /// Messages not queued for a recipient over its limit (`SlowConsumer::Skip`).
    skipped: AtomicU64,
    /// Recipients closed with 1008 for being over their limit (`SlowConsumer::Close`).
    closed: AtomicU64,
    /// Messages queued for recipients, one per recipient, and their payload bytes.
    queued: Tally,
}

impl Fanout {
    pub(crate) fn new(policy: SlowConsumer) -> Self {
        Fanout { policy, skipped: AtomicU64::new(0), closed: AtomicU64::new(0), queued: Tally::default() }
    }

    /// Offers `message` to every recipient, each sharing the one frame of its kind
    /// (compressed or plain), and returns how many queued it.
    pub(crate) fn deliver<'a>(
        &self,
        message: &Encoded<'_>,
        recipients: impl IntoIterator<Item = &'a ConnectionState>,
    ) -> usize {
        let (mut queued, mut skipped, mut closed) = (0, 0, 0);
        for recipient in recipients {
            match recipient.offer_shared(message.frame_for(recipient), self.policy) {
                Offer::Queued => queued += 1,
                Offer::Skipped => skipped += 1,
                Offer::Closed => closed += 1,
                Offer::Refused => {}
            }
        }
        // One atomic add per fan-out and count, not per recipient.
        if queued > 0 {
            self.queued.add(queued as u64, queued as u64 * message.len() as u64);
        }
        if skipped > 0 {
            self.skipped.fetch_add(skipped, Ordering::Relaxed);
        }
        if closed > 0 {
            self.closed.fetch_add(closed, Ordering::Relaxed);
        }
        queued
    }

    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    pub(crate) fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// (messages, payload bytes) queued for recipients so far.
    pub(crate) fn queued(&self) -> (u64, u64) {
        self.queued.read()
    }
}
