//! A server as C sees it: the Rust server plus the events of the last poll, kept alive
//! so that the pointers handed out stay valid until the next poll.

use std::sync::Mutex;

use super::boundary::write_extensible;
use super::types::{roost_event, roost_event_kind, roost_header};
use crate::events::{Event, RequestHead};
use crate::server::Server;

/// Header views of one event; they point into that event's request head.
struct HeaderViews {
    _owned: Vec<roost_header>,
}

// SAFETY: the pointers refer to request heads owned by the same `Batch`, which is only
// touched under its mutex.
unsafe impl Send for HeaderViews {}

#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    headers: Vec<HeaderViews>,
}

/// A server and its last polled batch.
pub(crate) struct PolledServer {
    pub(crate) server: Server,
    batch: Mutex<Batch>,
}

impl PolledServer {
    pub(crate) fn new(server: Server) -> Self {
        PolledServer { server, batch: Mutex::new(Batch::default()) }
    }

    /// Releases the previous batch, polls up to `capacity` events and describes them
    /// in the caller's array of events of `event_size` bytes each. Returns how many
    /// were written.
    ///
    /// # Safety
    /// `events` must point to `capacity * event_size` writable bytes, and `event_size`
    /// must be at least `size_of::<roost_event>()`.
    pub(crate) unsafe fn poll_into(&self, events: *mut u8, capacity: usize, event_size: usize) -> usize {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let batch = &mut *batch;
        batch.events.clear();
        batch.headers.clear();
        let n = self.server.poll(&mut batch.events, capacity);
        for (i, event) in batch.events.iter().enumerate() {
            let described = describe(event, &mut batch.headers);
            // SAFETY: `i < capacity`, so the slot lies inside the caller's array.
            unsafe { write_extensible(events.add(i * event_size), event_size, &described) };
        }
        n
    }
}

fn describe(event: &Event, headers: &mut Vec<HeaderViews>) -> roost_event {
    match event {
        Event::Connect(info) => {
            let mut e = roost_event::empty(roost_event_kind::ROOST_EVENT_CONNECT, info.id);
            e.route = info.route;
            (e.uuid, e.uuid_len) = (info.uuid.as_ptr(), info.uuid.len());
            describe_request(&mut e, info, &info.peer, info.subprotocol(), headers);
            e
        }
        Event::Request(info) | Event::UpgradeRequest(info) => {
            let mut e = match event {
                Event::Request(_) => {
                    let mut e = roost_event::empty(roost_event_kind::ROOST_EVENT_REQUEST, info.id);
                    (e.data, e.data_len) = (info.body.as_ptr(), info.body.len());
                    e
                }
                // An upgrade has no body: `data` stays NULL, as unused pointers are.
                _ => roost_event::empty(roost_event_kind::ROOST_EVENT_UPGRADE_REQUEST, info.id),
            };
            e.route = info.route;
            (e.method, e.method_len) = (info.method().as_ptr(), info.method().len());
            describe_request(&mut e, info, &info.peer, info.subprotocol(), headers);
            e
        }
        Event::Message { id, route, binary, data } => {
            let kind = if *binary {
                roost_event_kind::ROOST_EVENT_BINARY
            } else {
                roost_event_kind::ROOST_EVENT_TEXT
            };
            let mut e = roost_event::empty(kind, *id);
            e.route = *route;
            (e.data, e.data_len) = (data.as_ptr(), data.len());
            e
        }
        Event::Disconnect { id, route, code, reason } => {
            let mut e = roost_event::empty(roost_event_kind::ROOST_EVENT_DISCONNECT, *id);
            e.route = *route;
            e.close_code = *code;
            (e.data, e.data_len) = (reason.as_ptr(), reason.len());
            e
        }
        Event::Writable { id } => roost_event::empty(roost_event_kind::ROOST_EVENT_WRITABLE, *id),
    }
}

/// The views a CONNECT, REQUEST and UPGRADE_REQUEST event share: the request's path,
/// query and headers, the peer, and the subprotocol (left NULL when there is none).
fn describe_request(
    e: &mut roost_event,
    head: &RequestHead,
    peer: &str,
    subprotocol: Option<&[u8]>,
    headers: &mut Vec<HeaderViews>,
) {
    (e.path, e.path_len) = (head.path().as_ptr(), head.path().len());
    (e.query, e.query_len) = (head.query().as_ptr(), head.query().len());
    (e.peer, e.peer_len) = (peer.as_ptr(), peer.len());
    (e.headers, e.header_count) = header_views(head.headers(), headers);
    if let Some(protocol) = subprotocol {
        (e.subprotocol, e.subprotocol_len) = (protocol.as_ptr(), protocol.len());
    }
}

/// Views of one event's headers, kept in `batch` (they point into the event's request
/// head); returns the array and its length.
fn header_views<'a>(
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    batch: &mut Vec<HeaderViews>,
) -> (*const roost_header, usize) {
    let views: Vec<roost_header> = pairs
        .map(|(name, value)| roost_header {
            name: name.as_ptr(),
            name_len: name.len(),
            value: value.as_ptr(),
            value_len: value.len(),
        })
        .collect();
    let described = (views.as_ptr(), views.len());
    // Moving the Vec into the batch keeps its heap buffer where it is.
    batch.push(HeaderViews { _owned: views });
    described
}
