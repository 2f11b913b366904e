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
    /// Adds `connection` to `topic`. Returns false when it already was a subscriber.
    pub(crate) fn subscribe(&mut self, connection: &Arc<ConnectionState>, topic: &[u8]) -> bool {
        let joined = self.of_connection.entry(connection.id).or_default();
        if joined.iter().any(|t| **t == *topic) {
            return false;
        }
        // One allocation per topic name, shared by every subscriber's list.
        let name = match self.subscribers.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        joined.push(name.clone());
        self.subscribers.entry(name).or_default().insert(connection.id, connection.clone());
        true
    }

    /// Removes `connection` from `topic`. Returns false when it was not a subscriber.
    pub(crate) fn unsubscribe(&mut self, connection: u64, topic: &[u8]) -> bool {
        let Some(joined) = self.of_connection.get_mut(&connection) else { return false };
        let Some(at) = joined.iter().position(|t| **t == *topic) else { return false };
        joined.swap_remove(at);
        if joined.is_empty() {
            self.of_connection.remove(&connection);
        }
        self.leave(connection, topic);
        true
    }

    /// Removes `connection` from every topic it joined.
    pub(crate) fn leave_all(&mut self, connection: u64) {
        for topic in self.of_connection.remove(&connection).unwrap_or_default() {
            self.leave(connection, &topic);
        }
    }

    fn leave(&mut self, connection: u64, topic: &[u8]) {
        if let Some(members) = self.subscribers.get_mut(topic) {
            members.remove(&connection);
            if members.is_empty() {
                self.subscribers.remove(topic);
            }
        }
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
        assert!(topics.subscribe(&a, b"room"));
        assert!(!topics.subscribe(&a, b"room"));
        assert!(topics.subscribe(&b, b"room"));
        assert_eq!(ids(&topics, b"room"), [1, 2]);
        assert!(!topics.unsubscribe(3, b"room"));
        assert!(!topics.unsubscribe(1, b"other"));
        assert!(topics.unsubscribe(1, b"room"));
        assert!(!topics.unsubscribe(1, b"room"));
        assert_eq!(ids(&topics, b"room"), [2]);
        assert_eq!(topics.subscriber_count(b"room"), 1);
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
        topics.leave_all(1);
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
