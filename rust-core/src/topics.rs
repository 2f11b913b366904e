//! Topics: named groups that connections join and leave, and that a publish reaches.
//! This is the table alone; the registry keeps it under its lock, beside the
//! connections, so that a connection that ends leaves every topic in the same step.

use std::collections::HashMap;
use std::sync::Arc;

use crate::connection_state::ConnectionState;
use crate::error::{Error, Result};

/// The longest topic name, in bytes. Names are exact-match byte strings; the bound keeps
/// the memory a subscription may pin (and a later backplane envelope) small.
pub const MAX_TOPIC_LENGTH: usize = 1024;

/// Checks a topic name: 1 to `MAX_TOPIC_LENGTH` bytes.
pub(crate) fn check_topic(topic: &[u8]) -> Result<()> {
    if topic.is_empty() {
        return Err(Error::InvalidArgument("topic must not be empty".into()));
    }
    if topic.len() > MAX_TOPIC_LENGTH {
        return Err(Error::InvalidArgument(format!(
            "topic is {} bytes long; the most is {MAX_TOPIC_LENGTH}",
            topic.len()
        )));
    }
    Ok(())
}

/// What a subscribe or unsubscribe changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing: the connection already was a subscriber, or was not one.
    None,
    /// The connection joined or left a topic that has other subscribers.
    Member,
    /// The connection was the topic's first subscriber, or its last: the topic came into
    /// use or went out of it (what the backplane subscribes to).
    Topic,
}

impl Change {
    /// Whether the connection's membership changed.
    pub(crate) fn changed(self) -> bool {
        self != Change::None
    }
}

/// Subscribers by topic, and topics by connection. A topic exists while it has a
/// subscriber, and a connection is listed while it has a topic, so the table holds
/// nothing for the connections and topics that are not in use.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    subscribers: HashMap<Arc<[u8]>, HashMap<u64, Arc<ConnectionState>>>,
    /// A connection's topics, in the order it joined them. Most connections join a
    /// few, so a vector (searched on unsubscribe) beats a set in memory and speed.
    of_connection: HashMap<u64, Vec<Arc<[u8]>>>,
}

impl Topics {
    /// Adds `connection` to `topic`.
    pub(crate) fn subscribe(&mut self, connection: &Arc<ConnectionState>, topic: &[u8]) -> Change {
        let joined = self.of_connection.entry(connection.id).or_default();
        if joined.iter().any(|t| **t == *topic) {
            return Change::None;
        }
        // One allocation per topic name, shared by every subscriber's list.
        let (name, change) = match self.subscribers.get_key_value(topic) {
            Some((name, _)) => (name.clone(), Change::Member),
            None => (Arc::from(topic), Change::Topic),
        };
        joined.push(name.clone());
        self.subscribers.entry(name).or_default().insert(connection.id, connection.clone());
        change
    }

    /// Removes `connection` from `topic`.
    pub(crate) fn unsubscribe(&mut self, connection: u64, topic: &[u8]) -> Change {
        let Some(joined) = self.of_connection.get_mut(&connection) else { return Change::None };
        let Some(at) = joined.iter().position(|t| **t == *topic) else { return Change::None };
        joined.swap_remove(at);
        if joined.is_empty() {
            self.of_connection.remove(&connection);
        }
        self.leave(connection, topic)
    }

    /// Removes `connection` from every topic it joined, and calls `closed` with each
    /// topic it was the last subscriber of.
    pub(crate) fn leave_all(&mut self, connection: u64, mut closed: impl FnMut(&[u8])) {
        for topic in self.of_connection.remove(&connection).unwrap_or_default() {
            if self.leave(connection, &topic) == Change::Topic {
                closed(&topic);
            }
        }
    }

    fn leave(&mut self, connection: u64, topic: &[u8]) -> Change {
        let Some(members) = self.subscribers.get_mut(topic) else { return Change::None };
        if members.remove(&connection).is_none() {
            return Change::None;
        }
        if members.is_empty() {
            self.subscribers.remove(topic);
            return Change::Topic;
        }
        Change::Member
    }

    /// The subscribers of `topic`.
    pub(crate) fn subscribers(&self, topic: &[u8]) -> impl Iterator<Item = &ConnectionState> {
        self.subscribers.get(topic).into_iter().flat_map(|members| members.values().map(|c| &**c))
    }

    pub(crate) fn is_subscribed(&self, connection: u64, topic: &[u8]) -> bool {
        self.subscribers.get(topic).is_some_and(|members| members.contains_key(&connection))
    }

    pub(crate) fn subscriber_count(&self, topic: &[u8]) -> usize {
        self.subscribers.get(topic).map_or(0, HashMap::len)
    }

    /// The topics `connection` joined, oldest first unless it left some.
    pub(crate) fn topics_of(&self, connection: u64) -> Vec<Arc<[u8]>> {
        self.of_connection.get(&connection).cloned().unwrap_or_default()
    }

    /// Topics with at least one subscriber.
    pub(crate) fn topic_count(&self) -> usize {
        self.subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(id: u64) -> Arc<ConnectionState> {
        Arc::new(ConnectionState::new(id, 0, 1 << 20, 16))
    }

    fn ids(topics: &Topics, topic: &[u8]) -> Vec<u64> {
        let mut ids: Vec<u64> = topics.subscribers(topic).map(|c| c.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn subscribing_twice_counts_once_and_unsubscribing_a_stranger_changes_nothing() {
        let mut topics = Topics::default();
        let (a, b) = (connection(1), connection(2));
        assert_eq!(topics.subscribe(&a, b"room"), Change::Topic, "the first subscriber opens it");
        assert_eq!(topics.subscribe(&a, b"room"), Change::None);
        assert_eq!(topics.subscribe(&b, b"room"), Change::Member);
        assert_eq!(ids(&topics, b"room"), [1, 2]);
        assert_eq!(topics.unsubscribe(3, b"room"), Change::None);
        assert_eq!(topics.unsubscribe(1, b"other"), Change::None);
        assert_eq!(topics.unsubscribe(1, b"room"), Change::Member);
        assert_eq!(topics.unsubscribe(1, b"room"), Change::None);
        assert_eq!(ids(&topics, b"room"), [2]);
        assert_eq!(topics.subscriber_count(b"room"), 1);
        assert_eq!(topics.unsubscribe(2, b"room"), Change::Topic, "the last one closes it");
    }

    #[test]
    fn leaving_every_topic_leaves_no_trace() {
        let mut topics = Topics::default();
        let (a, b) = (connection(1), connection(2));
        for name in [&b"x"[..], b"y", b"z"] {
            topics.subscribe(&a, name);
        }
        topics.subscribe(&b, b"y");
        assert_eq!(topics.topics_of(1).iter().map(|t| &t[..]).collect::<Vec<_>>(), [b"x", b"y", b"z"]);
        let mut closed = Vec::new();
        topics.leave_all(1, |t| closed.push(t.to_vec()));
        closed.sort();
        assert_eq!(closed, [b"x", b"z"], "y keeps a subscriber");
        assert!(topics.topics_of(1).is_empty());
        assert_eq!(topics.topic_count(), 1);
        assert_eq!(ids(&topics, b"y"), [2]);
        topics.unsubscribe(2, b"y");
        assert_eq!(topics.topic_count(), 0);
        assert!(topics.of_connection.is_empty());
    }

    #[test]
    fn subscribers_share_one_copy_of_a_topic_s_name() {
        let mut topics = Topics::default();
        let (a, b) = (connection(1), connection(2));
        topics.subscribe(&a, b"shared");
        topics.subscribe(&b, b"shared");
        assert!(Arc::ptr_eq(&topics.topics_of(1)[0], &topics.topics_of(2)[0]));
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(check_topic(b"").is_err());
        assert!(check_topic(&[b'a'; MAX_TOPIC_LENGTH]).is_ok());
        let err = check_topic(&[b'a'; MAX_TOPIC_LENGTH + 1]).unwrap_err();
        assert!(err.to_string().contains("1025 bytes"), "{err}");
    }
}
