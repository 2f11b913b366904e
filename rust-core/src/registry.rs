//! Live connections by id and by route: what send, close and broadcast look up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::connection_state::ConnectionState;

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<u64, Arc<ConnectionState>>,
    by_route: Vec<HashMap<u64, Arc<ConnectionState>>>,
}

/// The registry of upgraded connections. Ids are never reused, so a stale id simply
/// is not found.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: RwLock<Inner>,
}

impl Registry {
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
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<ConnectionState>> {
        self.read().by_id.get(&id).cloned()
    }

    /// Calls `f` on every connection of `route` while holding the read lock, so that a
    /// broadcast reaches exactly the connections registered at that moment, in order.
    pub(crate) fn for_each_in_route(&self, route: u32, mut f: impl FnMut(&ConnectionState)) {
        let inner = self.read();
        if let Some(members) = inner.by_route.get(route as usize) {
            for handle in members.values() {
                f(handle);
            }
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<ConnectionState>> {
        self.read().by_id.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().by_id.len()
    }
}
