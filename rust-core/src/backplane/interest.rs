//! The desired set: the Redis channels a server wants to hear, kept by the registry as
//! topics gain their first local subscriber and lose their last, and by the start of
//! the server for its routes. The backplane's task compares it with what its Redis
//! connection is subscribed to and sends the difference. Changes wait here as a set of
//! channel names, never as a queue of commands: a topic joined and left a thousand
//! times while Redis was slow is one name, and a new connection after an outage is
//! brought up to date by the same comparison, against nothing.
//!
//! The names of changes are bounded too: while Redis is away, topics opened and closed
//! once each (a topic per user, say) would pile up as distinct names until it is back.
//! Past `CHANGED_SLACK` more than the wanted channels, the names are dropped for a note
//! that the next look compares everything, which costs no more than that many names.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::envelope::{channel, Target};

/// Changed channels kept by name beyond the number wanted; past it, the next look
/// compares every channel instead.
const CHANGED_SLACK: usize = 1024;

#[derive(Debug, Default)]
struct Wanted {
    channels: HashSet<Vec<u8>>,
    /// Channels added or removed since the task last looked.
    changed: HashSet<Vec<u8>>,
    /// More changed than `changed` keeps: the next look compares every channel.
    compare_all: bool,
}

/// Subscriptions to make and to end, to make a connection's match the desired set.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) subscribe: Vec<Vec<u8>>,
    pub(crate) unsubscribe: Vec<Vec<u8>>,
}

/// The channels wanted, and a signal to the task when they change.
#[derive(Debug, Default)]
pub(crate) struct Interest {
    wanted: Mutex<Wanted>,
    changed: Notify,
}

impl Interest {
    fn wanted(&self) -> MutexGuard<'_, Wanted> {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, channel: Vec<u8>, want: bool) {
        let mut wanted = self.wanted();
        let changed =
            if want { wanted.channels.insert(channel.clone()) } else { wanted.channels.remove(&channel) };
        if changed {
            if !wanted.compare_all {
                wanted.changed.insert(channel);
                if wanted.changed.len() > wanted.channels.len() + CHANGED_SLACK {
                    wanted.changed = HashSet::new();
                    wanted.compare_all = true;
                }
            }
            drop(wanted);
            self.changed.notify_one();
        }
    }

    /// A topic gained its first local subscriber.
    pub(crate) fn topic_opened(&self, topic: &[u8]) {
        self.set(channel(Target::Topic, topic), true);
    }

    /// A topic lost its last local subscriber.
    pub(crate) fn topic_closed(&self, topic: &[u8]) {
        self.set(channel(Target::Topic, topic), false);
    }

    /// A route the server serves, for as long as it runs.
    pub(crate) fn add_route(&self, path: &[u8]) {
        self.set(channel(Target::Route, path), true);
    }

    /// Waits until the desired set changes. A change made while no one waits is kept,
    /// and the next wait returns at once.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await
    }

    /// What a connection subscribed to `subscribed` must do to match the desired set:
    /// for every wanted channel (`all`, on a new connection) or for those that changed
    /// since the last call.
    pub(crate) fn changes(&self, subscribed: &HashSet<Vec<u8>>, all: bool) -> Changes {
        let mut wanted = self.wanted();
        let changed = std::mem::take(&mut wanted.changed);
        let all = all || std::mem::take(&mut wanted.compare_all);
        let mut out = Changes::default();
        if all {
            out.subscribe = wanted.channels.iter().filter(|c| !subscribed.contains(*c)).cloned().collect();
            out.unsubscribe = subscribed.iter().filter(|c| !wanted.channels.contains(*c)).cloned().collect();
            return out;
        }
        for channel in changed {
            match (wanted.channels.contains(&channel), subscribed.contains(&channel)) {
                (true, false) => out.subscribe.push(channel),
                (false, true) => out.unsubscribe.push(channel),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        v.sort();
        v
    }

    fn apply(subscribed: &mut HashSet<Vec<u8>>, changes: &Changes) {
        subscribed.extend(changes.subscribe.iter().cloned());
        for c in &changes.unsubscribe {
            subscribed.remove(c);
        }
    }

    #[test]
    fn changes_since_the_last_look_are_sent_once_and_churn_cancels_out() {
        let interest = Interest::default();
        let mut subscribed = HashSet::new();
        interest.add_route(b"/chat");
        interest.topic_opened(b"a");
        interest.topic_opened(b"b");
        let first = interest.changes(&subscribed, false);
        assert_eq!(
            sorted(first.subscribe.clone()),
            [b"roost:route:/chat".to_vec(), b"roost:topic:a".to_vec(), b"roost:topic:b".to_vec()]
        );
        assert!(first.unsubscribe.is_empty());
        apply(&mut subscribed, &first);
        assert_eq!(interest.changes(&subscribed, false), Changes::default(), "nothing changed since");

        // Opened and closed many times in between: nothing to do.
        for _ in 0..1000 {
            interest.topic_closed(b"a");
            interest.topic_opened(b"a");
        }
        interest.topic_closed(b"b");
        interest.topic_opened(b"c");
        interest.topic_closed(b"c");
        let next = interest.changes(&subscribed, false);
        assert_eq!(next, Changes { subscribe: vec![], unsubscribe: vec![b"roost:topic:b".to_vec()] });
    }

    #[test]
    fn a_new_connection_gets_every_wanted_channel() {
        let interest = Interest::default();
        interest.topic_opened(b"a");
        interest.topic_opened(b"b");
        interest.topic_closed(b"b");
        let all = interest.changes(&HashSet::new(), true);
        assert_eq!(all, Changes { subscribe: vec![b"roost:topic:a".to_vec()], unsubscribe: vec![] });
        // The full comparison also consumed the pending changes.
        assert_eq!(interest.changes(&HashSet::new(), false), Changes::default());
        let stale = HashSet::from([b"roost:topic:gone".to_vec(), b"roost:topic:a".to_vec()]);
        let fix = interest.changes(&stale, true);
        assert_eq!(fix, Changes { subscribe: vec![], unsubscribe: vec![b"roost:topic:gone".to_vec()] });
    }

    #[test]
    fn churn_of_many_distinct_topics_keeps_a_bounded_record_and_still_converges() {
        let interest = Interest::default();
        let mut subscribed = HashSet::new();
        interest.topic_opened(b"kept");
        let first = interest.changes(&subscribed, false);
        apply(&mut subscribed, &first);
        // A long outage: 100,000 topics each opened and closed once, one left open.
        for i in 0..100_000u32 {
            let topic = format!("user {i}");
            interest.topic_opened(topic.as_bytes());
            interest.topic_closed(topic.as_bytes());
        }
        interest.topic_opened(b"new");
        interest.topic_closed(b"kept");
        assert!(interest.wanted().changed.len() <= 1 + CHANGED_SLACK, "the record stays bounded");
        let changes = interest.changes(&subscribed, false);
        assert_eq!(
            changes,
            Changes {
                subscribe: vec![b"roost:topic:new".to_vec()],
                unsubscribe: vec![b"roost:topic:kept".to_vec()]
            }
        );
        apply(&mut subscribed, &changes);
        assert_eq!(interest.changes(&subscribed, false), Changes::default(), "back to looking at changes");
    }

    #[tokio::test]
    async fn a_change_made_while_no_one_waits_is_not_missed() {
        let interest = Interest::default();
        interest.topic_opened(b"a");
        tokio::time::timeout(std::time::Duration::from_secs(1), interest.changed())
            .await
            .expect("the change made before waiting wakes the waiter");
    }
}
