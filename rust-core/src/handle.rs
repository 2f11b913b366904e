//! The part of a connection that other threads touch: its send queue (bounded in
//! bytes), its inbound credit (bounded in messages) and the waker of its task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::error::{Error, Result};

/// Something the consumer asked to go out on a connection.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// An encoded data frame (a broadcast's one frame is shared by its recipients).
    Frame(Bytes),
    /// Start the close handshake with this code and reason; nothing is sent after it.
    Close(u16, String),
}

/// What `take_batch` took from the outbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The queue is empty.
    Nothing,
    /// Frames of this many bytes, now in the batch.
    Frames(usize),
    /// The close that was first in the queue.
    Close(u16, String),
}

/// What the connection's task should do next with its outbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OutboxState {
    /// Sending normally.
    Open,
    /// A close was queued: sends are refused, queued messages still go out first.
    Closing,
    /// Drop everything queued and close at once with this code (slow broadcast
    /// recipient).
    Killed(u16),
}

#[derive(Debug)]
struct Outbox {
    queue: VecDeque<Outgoing>,
    /// Frame bytes queued or handed to the socket and not yet flushed.
    bytes: usize,
    state: OutboxState,
    /// A send was refused with WouldBlock: report a writable event once drained.
    want_writable: bool,
}

/// Shared state of one live connection.
#[derive(Debug)]
pub struct ConnectionHandle {
    /// Connection id, unique for the server's life (never reused).
    pub id: u64,
    /// Route the connection was accepted on.
    pub route: u32,
    outbox: Mutex<Outbox>,
    outbound_limit: usize,
    /// Messages handed to the event queue and not yet polled by the consumer.
    unpolled: AtomicUsize,
    inbound_depth: usize,
    paused: AtomicBool,
    /// The close code once a broadcast found the connection too slow (0: not killed).
    /// Mirrors `OutboxState::Killed` so that the task checks it without the lock.
    killed: AtomicU16,
    /// Wakes the connection's task: new outgoing data, credit returned, resumed.
    waker: AtomicWaker,
}

impl ConnectionHandle {
    pub(crate) fn new(id: u64, route: u32, outbound_limit: usize, inbound_depth: usize) -> Self {
        ConnectionHandle {
            id,
            route,
            outbox: Mutex::new(Outbox {
                queue: VecDeque::new(),
                bytes: 0,
                state: OutboxState::Open,
                want_writable: false,
            }),
            outbound_limit,
            unpolled: AtomicUsize::new(0),
            inbound_depth,
            paused: AtomicBool::new(false),
            killed: AtomicU16::new(0),
            waker: AtomicWaker::new(),
        }
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // A poisoned lock only means another thread panicked mid-call; the queue
        // itself is always left consistent, so keep using it.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `len` more bytes would take a non-empty queue over the limit. A single
    /// message larger than the limit still goes out when the queue is empty.
    fn over_limit(&self, outbox: &Outbox, len: usize) -> bool {
        outbox.bytes > 0 && outbox.bytes + len > self.outbound_limit
    }

    /// Queues an encoded data frame for this connection alone.
    pub(crate) fn send(&self, frame: Bytes) -> Result<()> {
        let len = frame.len();
        let mut outbox = self.outbox();
        if outbox.state != OutboxState::Open {
            return Err(Error::Closed);
        }
        if self.over_limit(&outbox, len) {
            outbox.want_writable = true;
            return Err(Error::WouldBlock);
        }
        outbox.bytes += len;
        outbox.queue.push_back(Outgoing::Frame(frame));
        drop(outbox);
        self.waker.wake();
        Ok(())
    }

    /// Queues a broadcast's shared frame. A recipient over its limit is closed with
    /// 1008 instead of holding back the others. Returns whether the frame was queued.
    pub(crate) fn offer_broadcast(&self, frame: &Bytes) -> bool {
        let len = frame.len();
        let mut outbox = self.outbox();
        if outbox.state != OutboxState::Open {
            return false;
        }
        if self.over_limit(&outbox, len) {
            outbox.state = OutboxState::Killed(1008);
            self.killed.store(1008, Ordering::Release);
            outbox.queue.clear();
            drop(outbox);
            self.waker.wake();
            return false;
        }
        outbox.bytes += len;
        outbox.queue.push_back(Outgoing::Frame(frame.clone()));
        drop(outbox);
        self.waker.wake();
        true
    }

    /// Queues a close after whatever is already queued.
    pub(crate) fn close(&self, code: u16, reason: String) -> Result<()> {
        let mut outbox = self.outbox();
        if outbox.state != OutboxState::Open {
            return Err(Error::Closed);
        }
        outbox.state = OutboxState::Closing;
        outbox.queue.push_back(Outgoing::Close(code, reason));
        drop(outbox);
        self.waker.wake();
        Ok(())
    }

    /// Server shutdown: close with 1001 even if a close is already queued (the task
    /// stops at the first close it finds).
    pub(crate) fn shutdown(&self) {
        let mut outbox = self.outbox();
        if outbox.state == OutboxState::Open {
            outbox.state = OutboxState::Closing;
        }
        outbox.queue.push_back(Outgoing::Close(1001, "server shutting down".into()));
        drop(outbox);
        self.waker.wake();
    }

    /// The close code when a broadcast found this connection too slow to keep up.
    pub(crate) fn killed(&self) -> Option<u16> {
        match self.killed.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Moves queued frames into `batch` until about `max_bytes` are taken or a close
    /// is next. A close is taken only when it is first in the queue, alone: the frames
    /// before it go out in earlier batches.
    pub(crate) fn take_batch(&self, batch: &mut VecDeque<Bytes>, max_bytes: usize) -> Taken {
        let mut outbox = self.outbox();
        let mut taken = 0;
        while taken < max_bytes.max(1) {
            match outbox.queue.pop_front() {
                None => break,
                Some(Outgoing::Frame(frame)) => {
                    taken += frame.len();
                    batch.push_back(frame);
                }
                Some(Outgoing::Close(code, reason)) if taken == 0 => return Taken::Close(code, reason),
                Some(close) => {
                    outbox.queue.push_front(close);
                    break;
                }
            }
        }
        if taken == 0 {
            Taken::Nothing
        } else {
            Taken::Frames(taken)
        }
    }

    /// Records that `bytes` were flushed to the socket. Returns true when a refused
    /// sender should now hear that the connection is writable again.
    pub(crate) fn flushed(&self, bytes: usize) -> bool {
        let mut outbox = self.outbox();
        outbox.bytes = outbox.bytes.saturating_sub(bytes);
        if outbox.want_writable && outbox.bytes <= self.outbound_limit / 2 {
            outbox.want_writable = false;
            return outbox.state == OutboxState::Open;
        }
        false
    }

    /// Whether the task may read another message: inbound credit left and not paused.
    pub(crate) fn may_read(&self) -> bool {
        !self.paused.load(Ordering::Acquire)
            && self.unpolled.load(Ordering::Acquire) < self.inbound_depth
    }

    /// A message of this connection entered the event queue.
    pub(crate) fn message_queued(&self) {
        self.unpolled.fetch_add(1, Ordering::AcqRel);
    }

    /// The consumer polled one of this connection's messages: return its credit.
    pub(crate) fn message_polled(&self) {
        let before = self.unpolled.fetch_sub(1, Ordering::AcqRel);
        if before >= self.inbound_depth {
            self.waker.wake();
        }
    }

    /// Stops (true) or restarts (false) reading from this connection's socket.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.waker.wake();
        }
    }

    /// Registers the task to wake on outgoing data, returned credit or resume.
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }
}
