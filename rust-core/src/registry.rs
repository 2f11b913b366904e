//! Live connections by id, by route and by topic: what send, close, broadcast and
//! publish look up. One lock covers all three, so that a connection that ends leaves
//! its route and its topics at once, and a subscribe racing with the end of its
//! connection either finds it gone or is undone by that end.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::backplane::Interest;
use crate::connection_state::ConnectionState;
use crate::error::{Error, Result};
use crate::fanout::Fanout;
use crate::outgoing::Encoded;
use crate::topics::{Change, Topics};

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<u64, Arc<ConnectionState>>,
    by_route: Vec<HashMap<u64, Arc<ConnectionState>>>,
    topics: Topics,
}

/// The registry of upgraded connections. Ids are never reused, so a stale id simply
/// is not found.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: RwLock<Inner>,
    /// The backplane's desired set, told under the write lock when a topic gains its
    /// first subscriber or loses its last, so that it sees those changes in the order
    /// they happened.
    interest: Option<Arc<Interest>>,
}

impl Registry {
    /// A registry that keeps `interest` (the backplane's, if any) up to date.
    pub(crate) fn new(interest: Option<Arc<Interest>>) -> Registry {
        Registry { inner: RwLock::default(), interest }
    }

    /// Tells the desired set about a topic that came into use (`joined`) or went out of
    /// it.
    fn report(&self, change: Change, topic: &[u8], joined: bool) {
        if let (Change::Topic, Some(interest)) = (change, &self.interest) {
            if joined {
                interest.topic_opened(topic);
            } else {
                interest.topic_closed(topic);
            }
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection by id; with `join`, also as a broadcast recipient of its
    /// route.
    pub(crate) fn insert(&self, handle: Arc<ConnectionState>, join: bool) {
        let mut inner = self.write();
        if join {
            Self::add_to_route(&mut inner, &handle);
        }
        inner.by_id.insert(handle.id, handle);
    }

    /// Makes a registered connection a broadcast recipient of its route. Returns false
    /// when the id is not registered (gone, or never was).
    pub(crate) fn join_route(&self, id: u64) -> bool {
        let mut inner = self.write();
        let Some(handle) = inner.by_id.get(&id).cloned() else { return false };
        Self::add_to_route(&mut inner, &handle);
        true
    }

    fn add_to_route(inner: &mut Inner, handle: &Arc<ConnectionState>) {
        let route = handle.route as usize;
        if inner.by_route.len() <= route {
            inner.by_route.resize_with(route + 1, HashMap::new);
        }
        inner.by_route[route].insert(handle.id, handle.clone());
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut inner = self.write();
        if let Some(handle) = inner.by_id.remove(&id) {
            if let Some(route) = inner.by_route.get_mut(handle.route as usize) {
                route.remove(&id);
            }
            inner.topics.leave_all(id, |topic| self.report(Change::Topic, topic, false));
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<ConnectionState>> {
        self.read().by_id.get(&id).cloned()
    }

    /// Offers `frame` to every connection of `route` while holding the read lock, so
    /// that a broadcast reaches exactly the connections registered at that moment, in
    /// order. Returns how many queued it.
    pub(crate) fn deliver_to_route(&self, route: u32, message: &Encoded<'_>, fanout: &Fanout) -> usize {
        let inner = self.read();
        let Some(members) = inner.by_route.get(route as usize) else { return 0 };
        fanout.deliver(message, members.values().map(|c| &**c))
    }

    /// Offers `message` to every subscriber of `topic` but `exclude`. With no one to
    /// receive it, nothing is encoded. Returns how many queued it.
    pub(crate) fn deliver_to_topic(
        &self,
        topic: &[u8],
        exclude: Option<u64>,
        message: &Encoded<'_>,
        fanout: &Fanout,
    ) -> usize {
        let inner = self.read();
        let count = inner.topics.subscriber_count(topic);
        if count == 0 || (count == 1 && exclude.is_some_and(|id| inner.topics.is_subscribed(id, topic))) {
            return 0;
        }
        fanout.deliver(message, inner.topics.subscribers(topic).filter(|c| Some(c.id) != exclude))
    }

    /// Adds a registered connection that is not closing to `topic`. Returns false when
    /// it already was a subscriber.
    pub(crate) fn subscribe(&self, id: u64, topic: &[u8]) -> Result<bool> {
        let mut inner = self.write();
        let handle = inner.by_id.get(&id).ok_or(Error::NotFound)?.clone();
        if !handle.is_open() {
            // Nothing more will be sent to it: a subscription would only be undone.
            return Err(Error::Closed);
        }
        let change = inner.topics.subscribe(&handle, topic);
        self.report(change, topic, true);
        Ok(change.changed())
    }

    /// Removes a registered connection from `topic`: `Some(false)` when it was not a
    /// subscriber, `None` when the id is not registered.
    pub(crate) fn unsubscribe(&self, id: u64, topic: &[u8]) -> Option<bool> {
        let mut inner = self.write();
        if !inner.by_id.contains_key(&id) {
            return None;
        }
        let change = inner.topics.unsubscribe(id, topic);
        self.report(change, topic, false);
        Some(change.changed())
    }

    /// The topics of a registered connection, `None` when the id is not registered.
    pub(crate) fn topics_of(&self, id: u64) -> Option<Vec<Arc<[u8]>>> {
        let inner = self.read();
        inner.by_id.contains_key(&id).then(|| inner.topics.topics_of(id))
    }

    pub(crate) fn subscriber_count(&self, topic: &[u8]) -> usize {
        self.read().topics.subscriber_count(topic)
    }

    pub(crate) fn topic_count(&self) -> usize {
        self.read().topics.topic_count()
    }

    pub(crate) fn all(&self) -> Vec<Arc<ConnectionState>> {
        self.read().by_id.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SlowConsumer;
    use crate::frames::DataKind;

    #[test]
    fn a_publish_that_reaches_no_one_encodes_nothing() {
        let registry = Registry::default();
        let fanout = Fanout::new(SlowConsumer::Close);
        let message = Encoded::new(DataKind::Text, b"x", Some(0));
        assert_eq!(registry.deliver_to_topic(b"empty", None, &message, &fanout), 0);
        let only = Arc::new(ConnectionState::new(1, 0, 1 << 20, 16));
        registry.insert(only.clone(), false);
        assert!(registry.subscribe(1, b"solo").unwrap());
        // Its one subscriber is the excluded connection.
        assert_eq!(registry.deliver_to_topic(b"solo", Some(1), &message, &fanout), 0);
        assert!(!message.was_encoded(), "encoded a frame for no recipient");
        assert_eq!(registry.deliver_to_topic(b"solo", Some(2), &message, &fanout), 1);
        registry.remove(1);
        assert_eq!(registry.subscriber_count(b"solo"), 0);
        assert!(matches!(registry.subscribe(1, b"solo"), Err(Error::NotFound)));
    }

    #[test]
    fn the_desired_set_hears_of_a_topic_s_first_subscriber_and_its_last_departure() {
        let interest = Arc::new(Interest::default());
        let registry = Registry::new(Some(interest.clone()));
        for id in [1, 2] {
            registry.insert(Arc::new(ConnectionState::new(id, 0, 1 << 20, 16)), false);
            registry.subscribe(id, b"room").unwrap();
        }
        let mut subscribed = std::collections::HashSet::new();
        let opened = interest.changes(&subscribed, false);
        assert_eq!(opened.subscribe, [b"roost:topic:room".to_vec()]);
        subscribed.extend(opened.subscribe);
        // One of two leaves: the topic is still in use.
        assert_eq!(registry.unsubscribe(1, b"room"), Some(true));
        assert_eq!(interest.changes(&subscribed, false), Default::default());
        // The last one's connection ends.
        registry.remove(2);
        assert_eq!(interest.changes(&subscribed, false).unsubscribe, [b"roost:topic:room".to_vec()]);
    }
}
