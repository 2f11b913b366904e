//! The part of a connection that other threads touch: its send queue (bounded in
//! bytes), its inbound credit (bounded in messages), the waker of its task, and the
//! right to write its socket directly (write-through, below).
//!
//! Write-through: a send that finds the connection with nothing queued and its task not
//! writing may write the frame to the socket itself, under the outbox's lock, instead
//! of queueing it and waking the task. That spares a hand-off to the worker thread per
//! reply (ping-pong p50 on the C example 69 -> 64 us, Python 100 -> 85 us), but one
//! system call per message loses to the task's batched `writev` under load (32 B echo
//! fell to a third), so the server grants one write-through per poll that returned
//! events (`Server::poll`): a reply to a lone message goes straight out, a busy server
//! batches as before. A write the socket takes only part of leaves the rest to the
//! task, which finishes it before writing anything else.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;

use crate::config::SlowConsumer;
use crate::error::{Error, Result};
use crate::inline_io::InlineIo;

/// Something the consumer asked to go out on a connection.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// An encoded data frame (a broadcast's one frame is shared by its recipients).
    Frame(Bytes),
    /// Start the close handshake with this code and reason; nothing is sent after it.
    Close(u16, String),
}

/// What became of a shared frame offered to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// Over its send limit, the recipient misses this frame (`SlowConsumer::Skip`).
    Skipped,
    /// Over its send limit, the recipient is now being closed with 1008.
    Closed,
    /// The recipient is closing already.
    Refused,
}

/// `Outbox::socket` when senders may not write the socket.
const NO_SOCKET: RawFd = -1;

/// What `take_batch` took from the outbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The queue is empty.
    Nothing,
    /// Frames of this many bytes, now in the batch.
    Frames(usize),
    /// The close that was first in the queue.
    Close(u16, String),
    /// The end of a frame a sender's direct write started: it goes out before anything
    /// else, control frames included.
    Rest(Bytes),
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
    /// The socket, while senders may write it directly (`NO_SOCKET` before the task
    /// runs and from the moment it starts closing, so a descriptor is never used once
    /// closed). A bare descriptor, not an `Option`: it fits in padding, and this
    /// struct is part of every idle connection.
    socket: RawFd,
    /// The task has bytes on their way to the socket (taken frames, a control frame,
    /// a partly written frame): no one else may write it until the task releases it.
    task_writing: bool,
    /// What a sender's direct write left unwritten; the task writes it first. Boxed:
    /// it is rare, and a pointer is a quarter of a `Bytes` in every connection.
    rest: Option<Box<Bytes>>,
}

/// Shared state of one live connection.
#[derive(Debug)]
pub struct ConnectionState {
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
    /// The client negotiated permessage-deflate and takes the server's compressed
    /// frames.
    takes_compressed: bool,
    /// Wakes the connection's task: new outgoing data, credit returned, resumed.
    waker: AtomicWaker,
    /// With inline_io: the step that wakes the task on the runtime's own thread.
    inline: Option<Arc<InlineIo>>,
}

impl ConnectionState {
    pub(crate) fn new(id: u64, route: u32, outbound_limit: usize, inbound_depth: usize) -> Self {
        ConnectionState {
            id,
            route,
            outbox: Mutex::new(Outbox {
                queue: VecDeque::new(),
                bytes: 0,
                state: OutboxState::Open,
                want_writable: false,
                socket: NO_SOCKET,
                task_writing: false,
                rest: None,
            }),
            outbound_limit,
            unpolled: AtomicUsize::new(0),
            inbound_depth,
            paused: AtomicBool::new(false),
            killed: AtomicU16::new(0),
            takes_compressed: false,
            waker: AtomicWaker::new(),
            inline: None,
        }
    }

    /// The same connection, its task woken through `inline`'s step (inline_io).
    pub(crate) fn with_inline_io(mut self, inline: Option<Arc<InlineIo>>) -> Self {
        self.inline = inline;
        self
    }

    /// Wakes the task. With inline_io a step must follow, or the consumer would not
    /// know to run the runtime; outside the runtime (a consumer's call) the wake
    /// itself waits for that step: the runtime would otherwise be signalled through a
    /// system call for every task woken, a thousand for a broadcast to a thousand.
    fn wake_task(&self) {
        let Some(inline) = &self.inline else {
            return self.waker.wake();
        };
        if tokio::runtime::Handle::try_current().is_err() {
            if let Some(waker) = self.waker.take() {
                inline.defer_wake(waker);
            }
        } else {
            self.waker.wake();
            inline.want_step();
        }
    }

    /// The same connection, receiving compressed frames when `takes_compressed`.
    pub(crate) fn with_compression(mut self, takes_compressed: bool) -> Self {
        self.takes_compressed = takes_compressed;
        self
    }

    /// Whether messages worth compressing go to this connection compressed.
    pub(crate) fn takes_compressed(&self) -> bool {
        self.takes_compressed
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

    /// Queues an encoded data frame for this connection alone, or writes it to the
    /// socket at once when the connection is idle and `write_through` (the server's
    /// grant, see the module's notes) is still there to take.
    pub(crate) fn send(&self, frame: Bytes, write_through: &AtomicBool) -> Result<()> {
        let mut outbox = self.outbox();
        if outbox.state != OutboxState::Open {
            return Err(Error::Closed);
        }
        if self.over_limit(&outbox, frame.len()) {
            outbox.want_writable = true;
            return Err(Error::WouldBlock);
        }
        let socket = outbox.socket;
        let frame = if socket != NO_SOCKET
            && !outbox.task_writing
            && outbox.queue.is_empty()
            && write_through.swap(false, Ordering::Relaxed)
        {
            match write_directly(socket, frame) {
                Written::All => return Ok(()),
                Written::Part(rest) => {
                    // The task owns the socket until it has finished this frame.
                    outbox.task_writing = true;
                    outbox.rest = Some(Box::new(rest));
                    drop(outbox);
                    self.wake_task();
                    return Ok(());
                }
                Written::Nothing(frame) => frame,
            }
        } else {
            frame
        };
        let len = frame.len();
        outbox.bytes += len;
        outbox.queue.push_back(Outgoing::Frame(frame));
        drop(outbox);
        self.wake_task();
        Ok(())
    }

    /// Queues a frame shared by many recipients (a broadcast's or a publish's). A
    /// recipient over its limit does not hold back the others: `policy` says whether it
    /// is closed with 1008 or misses this frame.
    pub(crate) fn offer_shared(&self, frame: &Bytes, policy: SlowConsumer) -> Offer {
        let len = frame.len();
        let mut outbox = self.outbox();
        if outbox.state != OutboxState::Open {
            return Offer::Refused;
        }
        if self.over_limit(&outbox, len) {
            if policy == SlowConsumer::Skip {
                return Offer::Skipped;
            }
            outbox.state = OutboxState::Killed(1008);
            self.killed.store(1008, Ordering::Release);
            outbox.queue.clear();
            drop(outbox);
            self.wake_task();
            return Offer::Closed;
        }
        outbox.bytes += len;
        outbox.queue.push_back(Outgoing::Frame(frame.clone()));
        drop(outbox);
        self.wake_task();
        Offer::Queued
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
        self.wake_task();
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
        self.wake_task();
    }

    /// Whether the connection still takes messages: no close is queued and it was not
    /// closed as a slow consumer.
    pub(crate) fn is_open(&self) -> bool {
        self.outbox().state == OutboxState::Open
    }

    /// The close code when a broadcast found this connection too slow to keep up.
    pub(crate) fn killed(&self) -> Option<u16> {
        match self.killed.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Lets senders write the socket directly (`Some`) or stops them for good
    /// (`None`, before the task closes it). Stopping waits for a direct write under
    /// way to finish.
    pub(crate) fn set_socket(&self, socket: Option<RawFd>) {
        self.outbox().socket = socket.unwrap_or(NO_SOCKET);
    }

    /// The task is about to write the socket outside `take_batch` (a control frame):
    /// no sender may write it directly until `take_batch` finds nothing left. Returns
    /// what a sender's direct write left unwritten, which must be written first.
    pub(crate) fn claim_socket(&self) -> Option<Bytes> {
        let mut outbox = self.outbox();
        outbox.task_writing = true;
        outbox.rest.take().map(|rest| *rest)
    }

    /// Moves queued frames into `batch` until about `max_bytes` are taken or a close
    /// is next, claiming the socket for them. A direct write's rest and a close are
    /// taken alone, the rest before everything, a close only once the frames before it
    /// went out in earlier batches. Call only when everything taken before is written:
    /// finding nothing hands the socket back to senders.
    pub(crate) fn take_batch(&self, batch: &mut VecDeque<Bytes>, max_bytes: usize) -> Taken {
        let mut outbox = self.outbox();
        // The partial write that left a rest already handed the socket to the task.
        if let Some(rest) = outbox.rest.take() {
            return Taken::Rest(*rest);
        }
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
        outbox.task_writing = taken > 0;
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
        !self.paused.load(Ordering::Acquire) && self.unpolled.load(Ordering::Acquire) < self.inbound_depth
    }

    /// A message of this connection entered the event queue.
    pub(crate) fn message_queued(&self) {
        self.unpolled.fetch_add(1, Ordering::AcqRel);
    }

    /// The consumer polled one of this connection's messages: return its credit.
    pub(crate) fn message_polled(&self) {
        let before = self.unpolled.fetch_sub(1, Ordering::AcqRel);
        if before >= self.inbound_depth {
            self.wake_task();
        }
    }

    /// Stops (true) or restarts (false) reading from this connection's socket.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.wake_task();
        }
    }

    /// Registers the task to wake on outgoing data, returned credit or resume.
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }
}

/// How much of a frame a direct write put into the socket.
enum Written {
    All,
    /// The socket took a part; this is the rest.
    Part(Bytes),
    /// The socket took nothing (full, or failing: the task will hear of the error).
    Nothing(Bytes),
}

/// One non-blocking write of `frame` to `socket`, from the sender's thread.
fn write_directly(socket: RawFd, mut frame: Bytes) -> Written {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the descriptor is open: the task withdraws it under the outbox's lock,
        // held by our caller, before it closes the socket. The buffer is live.
        let n = unsafe {
            libc::send(socket, frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        match usize::try_from(n) {
            Ok(n) if n == frame.len() => Written::All,
            Ok(n) if n > 0 => {
                frame.advance(n);
                Written::Part(frame)
            }
            _ => Written::Nothing(frame),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Without MSG_NOSIGNAL a write to a reset socket could raise SIGPIPE: queue.
        let _ = socket;
        Written::Nothing(frame)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn connected() -> (ConnectionState, UnixStream, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let handle = ConnectionState::new(1, 0, 1 << 20, 16);
        handle.set_socket(Some(ours.as_raw_fd()));
        (handle, ours, peer)
    }

    fn received(peer: &mut UnixStream) -> Vec<u8> {
        let mut got = vec![0; 1 << 16];
        let n = peer.read(&mut got).unwrap_or(0);
        got.truncate(n);
        got
    }

    fn granted() -> AtomicBool {
        AtomicBool::new(true)
    }

    #[test]
    fn an_idle_connection_takes_one_granted_send_directly_and_queues_the_next() {
        let (handle, _ours, mut peer) = connected();
        let grant = granted();
        handle.send(Bytes::from_static(b"first"), &grant).unwrap();
        handle.send(Bytes::from_static(b"second"), &grant).unwrap();
        assert_eq!(received(&mut peer), b"first");
        let mut batch = VecDeque::new();
        assert_eq!(handle.take_batch(&mut batch, 1 << 16), Taken::Frames(6));
        assert_eq!(batch, [Bytes::from_static(b"second")]);
    }

    #[test]
    fn a_socket_the_task_claimed_is_not_written_by_senders_until_released() {
        let (handle, _ours, mut peer) = connected();
        assert_eq!(handle.claim_socket(), None);
        handle.send(Bytes::from_static(b"queued"), &granted()).unwrap();
        assert_eq!(received(&mut peer), b"", "written while the task held the socket");
        let mut batch = VecDeque::new();
        assert_eq!(handle.take_batch(&mut batch, 1 << 16), Taken::Frames(6));
        batch.clear();
        // Everything taken is written: finding nothing more releases the socket.
        assert_eq!(handle.take_batch(&mut batch, 1 << 16), Taken::Nothing);
        handle.send(Bytes::from_static(b"direct"), &granted()).unwrap();
        assert_eq!(received(&mut peer), b"direct");
    }

    /// Sends a 4 MiB frame directly, which a socket pair takes only in part, and
    /// returns the frame and the part the peer received.
    fn send_in_part(handle: &ConnectionState, peer: &mut UnixStream) -> (Bytes, Vec<u8>) {
        let frame: Bytes = (0..4usize << 20).map(|i| i as u8).collect::<Vec<u8>>().into();
        handle.send(frame.clone(), &granted()).unwrap();
        let mut written = Vec::new();
        loop {
            let chunk = received(peer);
            if chunk.is_empty() {
                break;
            }
            written.extend(chunk);
        }
        assert!(!written.is_empty() && written.len() < frame.len());
        (frame, written)
    }

    #[test]
    fn the_rest_of_a_partial_direct_write_goes_to_the_next_claim_and_holds_the_socket() {
        let (handle, _ours, mut peer) = connected();
        let (frame, mut written) = send_in_part(&handle, &mut peer);
        // Until the task has finished the frame, senders queue, grant or not, even
        // with room in the socket and nothing else queued.
        handle.send(Bytes::from_static(b"after"), &granted()).unwrap();
        assert_eq!(received(&mut peer), b"", "written into the middle of the frame");
        let rest = handle.claim_socket().expect("the rest of the frame");
        written.extend_from_slice(&rest);
        assert!(written == frame[..], "the written part and the rest do not make the frame");
        let mut batch = VecDeque::new();
        assert_eq!(handle.take_batch(&mut batch, 1 << 16), Taken::Frames(5));
        handle.send(Bytes::from_static(b"x"), &granted()).unwrap();
        assert_eq!(received(&mut peer), b"", "written while the task held the socket");
    }

    #[test]
    fn take_batch_hands_over_a_direct_write_s_rest_before_queued_frames() {
        let (handle, _ours, mut peer) = connected();
        let (frame, mut written) = send_in_part(&handle, &mut peer);
        handle.send(Bytes::from_static(b"after"), &granted()).unwrap();
        let mut batch = VecDeque::new();
        let Taken::Rest(rest) = handle.take_batch(&mut batch, 1 << 16) else {
            panic!("the rest did not come first");
        };
        assert!(batch.is_empty());
        written.extend_from_slice(&rest);
        assert!(written == frame[..], "the written part and the rest do not make the frame");
        assert_eq!(handle.take_batch(&mut batch, 1 << 16), Taken::Frames(5));
        assert_eq!(handle.claim_socket(), None, "the rest was handed over twice");
    }

    #[test]
    fn a_withdrawn_socket_is_never_written() {
        let (handle, _ours, mut peer) = connected();
        handle.set_socket(None);
        handle.send(Bytes::from_static(b"late"), &granted()).unwrap();
        assert_eq!(received(&mut peer), b"");
        assert_eq!(handle.take_batch(&mut VecDeque::new(), 1 << 16), Taken::Frames(4));
    }
}
