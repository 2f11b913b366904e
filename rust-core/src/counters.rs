//! The counters of what passes through a server: whole messages and their payload
//! bytes in each direction, and upgrade requests refused, by status.
//!
//! The message counters sit on the hottest paths (an echo server moves millions of
//! messages a second), so each costs as little as an atomic can: relaxed adds, never a
//! lock, and batched where a path is hot. A connection's task adds what one step read
//! (up to `READ_BUDGET` messages) in one pair of adds; a broadcast or publish adds its
//! recipients in one pair, not one per recipient; a direct send is one pair. The
//! received and the sent pair live on cache lines of their own: the first is written by
//! the runtime's threads, the second by the consumer's, and sharing a line would make
//! each write pull it from the other core.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count of whole messages and of their payload bytes, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Tally {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    /// Counts `messages` more messages of `bytes` payload bytes in all.
    #[inline]
    pub(crate) fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// (messages, bytes) so far. The two are read one after the other, so a snapshot
    /// taken while messages flow may pair a count with bytes of a message more or less.
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.messages.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// The statuses upgrade refusals are counted under; anything else counts as "other".
const REFUSAL_STATUSES: [u16; 6] = [400, 403, 404, 426, 431, 503];

/// Upgrade requests answered with something else than 101, by status. Refusals are
/// rare next to messages; they share one line.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// One count per entry of `REFUSAL_STATUSES`, then "other".
    by_status: [AtomicU64; REFUSAL_STATUSES.len() + 1],
}

/// The refusal counts of a snapshot, in the order of `REFUSAL_STATUSES`, then "other".
pub(crate) type RefusalCounts = [u64; REFUSAL_STATUSES.len() + 1];

impl Refusals {
    /// Counts one refusal answered with `status`.
    pub(crate) fn count(&self, status: u16) {
        let at = REFUSAL_STATUSES.iter().position(|&s| s == status).unwrap_or(REFUSAL_STATUSES.len());
        self.by_status[at].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn read(&self) -> RefusalCounts {
        std::array::from_fn(|i| self.by_status[i].load(Ordering::Relaxed))
    }
}

/// A server's traffic counters, shared by its calls and its tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Whole messages from clients (after reassembly and inflation) put in the event
    /// queue.
    pub(crate) received: Tally,
    /// Messages queued by direct sends (broadcasts and publishes are counted by the
    /// fan-out, which knows how many recipients took them).
    pub(crate) sent: Tally,
    pub(crate) refusals: Refusals,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_status_and_the_rest_as_other() {
        let refusals = Refusals::default();
        for status in [400, 400, 403, 404, 426, 431, 503, 401, 500] {
            refusals.count(status);
        }
        assert_eq!(refusals.read(), [2, 1, 1, 1, 1, 1, 2]);
    }

    #[test]
    fn the_two_directions_do_not_share_a_cache_line() {
        let counters = Counters::default();
        let received = &counters.received as *const Tally as usize;
        let sent = &counters.sent as *const Tally as usize;
        assert!(sent.abs_diff(received) >= 128);
    }
}
