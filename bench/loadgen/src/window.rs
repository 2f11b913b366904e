//! A fan-out sender's window (one per channel): how many of its messages every
//! receiver of its channel has not yet got. A ring of per-message delivery counts,
//! shared (single-threaded, `Rc`) between the receivers' tasks, which count
//! deliveries, and the sender, which waits for room.
//!
//! Message `seq` lives in slot `seq % size` while it is outstanding. The sender never
//! has more than `size` messages outstanding, so two outstanding messages never share
//! a slot. A message stops being outstanding once all `receivers` have counted it and
//! every message before it has too: `oldest` moves past it, its slot is cleared and
//! the sender is woken.

use std::cell::Cell;

use tokio::sync::Notify;

pub struct DeliveryWindow {
    receivers: u32,
    counts: Vec<Cell<u32>>,
    /// The lowest sequence number not yet delivered to every receiver.
    oldest: Cell<u64>,
    advanced: Notify,
}

impl DeliveryWindow {
    pub fn new(size: usize, receivers: usize) -> DeliveryWindow {
        assert!(size > 0 && receivers > 0);
        DeliveryWindow {
            receivers: receivers as u32,
            counts: (0..size).map(|_| Cell::new(0)).collect(),
            oldest: Cell::new(0),
            advanced: Notify::new(),
        }
    }

    /// The lowest sequence number some receiver still lacks.
    pub fn oldest(&self) -> u64 {
        self.oldest.get()
    }

    /// The first sequence number the sender may not send yet.
    pub fn limit(&self) -> u64 {
        self.oldest.get() + self.counts.len() as u64
    }

    /// How many receivers have message `seq`, if it is still outstanding.
    pub fn count(&self, seq: u64) -> Option<u32> {
        (seq >= self.oldest.get() && seq < self.limit()).then(|| self.counts[self.slot(seq)].get())
    }

    /// A receiver got message `seq` (for the first time: callers drop duplicates).
    /// Sequence numbers outside the window are ignored; the receiver reports them.
    pub fn delivered(&self, seq: u64) {
        let oldest = self.oldest.get();
        if seq < oldest || seq >= self.limit() {
            return;
        }
        let c = &self.counts[self.slot(seq)];
        c.set(c.get() + 1);
        if seq != oldest || c.get() < self.receivers {
            return;
        }
        let mut next = oldest;
        while self.counts[self.slot(next)].get() >= self.receivers {
            self.counts[self.slot(next)].set(0);
            next += 1;
        }
        self.oldest.set(next);
        // Stores a permit if the sender is not waiting yet, so no wake-up is lost.
        self.advanced.notify_one();
    }

    /// Resolves once `oldest` has moved since the last wake-up.
    pub async fn advanced(&self) {
        self.advanced.notified().await
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.counts.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_advances_only_when_every_receiver_has_it() {
        let w = DeliveryWindow::new(4, 2);
        assert_eq!(w.limit(), 4);
        w.delivered(1);
        w.delivered(1);
        assert_eq!(w.oldest(), 0, "message 0 is still outstanding");
        w.delivered(0);
        assert_eq!(w.oldest(), 0);
        w.delivered(0);
        assert_eq!(w.oldest(), 2, "0 and 1 are both complete");
        assert_eq!(w.limit(), 6);
        // Slots of completed messages are clean for their successors.
        assert_eq!(w.count(4), Some(0));
        assert_eq!(w.count(5), Some(0));
        assert_eq!(w.count(1), None);
        // Out-of-window sequence numbers are ignored.
        w.delivered(6);
        w.delivered(1);
        assert_eq!(w.count(2), Some(0));
    }

    #[test]
    fn wraps_around_the_ring() {
        let w = DeliveryWindow::new(3, 1);
        for seq in 0..10 {
            assert_eq!(w.count(seq), Some(0));
            w.delivered(seq);
            assert_eq!(w.oldest(), seq + 1);
        }
    }
}
