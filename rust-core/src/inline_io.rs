//! Socket I/O on the consumer's thread (`Config::inline_io`): the runtime has no thread
//! of its own, and `poll` runs it for one step (ready sockets read, queued frames
//! written, due timers fired) before taking events. The ready descriptor is then an
//! epoll set of Roost's own that is readable when a step has work: a connection's
//! socket or the listener is ready, a call queued work for a connection (`want_step`),
//! an event is waiting, or the timer tick is due (the runtime's timers have no
//! descriptor of their own). See docs/design.md, "I/O on the consumer's thread".

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use tokio::runtime::Runtime;

use crate::wakeup::ReadyFd;

/// The timer tick: how late a timer (keepalive, timeouts) may fire at most on a server
/// that is otherwise idle.
const TIMER_TICK_NS: i64 = 10_000_000;

/// Rounds of a step at most (each runs every queued task, then polls the sockets); a
/// step cut short asks for another.
const MAX_ROUNDS: usize = 16;

#[derive(Debug)]
pub(crate) struct InlineIo {
    epoll: OwnedFd,
    timer: OwnedFd,
    /// Signalled by `want_step`, once until the next step.
    step_wanted: ReadyFd,
    step_pending: AtomicBool,
    /// Tasks woken by calls from outside the runtime, woken by the next step.
    deferred_wakes: Mutex<Vec<Waker>>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A descriptor just returned by a system call, owned from here on.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a descriptor `check` accepted is open and belongs to no one else.
    check(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl InlineIo {
    /// The epoll set, holding `events_fd` (the event queue's descriptor), the timer
    /// tick and the step request.
    pub(crate) fn new(events_fd: RawFd) -> io::Result<InlineIo> {
        // SAFETY: plain system call; `owned` checks the result.
        let epoll = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        // SAFETY: plain system call; `owned` checks the result.
        let timer = owned(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) })?;
        let io = InlineIo {
            epoll,
            timer,
            step_wanted: ReadyFd::new()?,
            step_pending: AtomicBool::new(false),
            deferred_wakes: Mutex::new(Vec::new()),
        };
        let period = libc::timespec { tv_sec: 0, tv_nsec: TIMER_TICK_NS };
        let tick = libc::itimerspec { it_interval: period, it_value: period };
        // SAFETY: `tick` is a live itimerspec; the timer is ours.
        check(unsafe { libc::timerfd_settime(io.timer.as_raw_fd(), 0, &tick, std::ptr::null_mut()) })?;
        // Level-triggered: each stays readable until drained.
        for fd in [events_fd, io.timer.as_raw_fd(), io.step_wanted.fd()] {
            io.add(fd, libc::EPOLLIN as u32)?;
        }
        Ok(io)
    }

    fn add(&self, fd: RawFd, flags: u32) -> io::Result<()> {
        let mut event = libc::epoll_event { events: flags, u64: fd as u64 };
        // SAFETY: `event` is a live epoll_event; the set is ours.
        check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })
            .map(drop)
    }

    /// Adds a socket to the set, edge-triggered as the runtime registers it, so that
    /// each change of its readiness makes the set readable once. The kernel removes
    /// it when the socket is closed.
    pub(crate) fn watch(&self, fd: RawFd) -> io::Result<()> {
        self.add(fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32)
    }

    /// The descriptor the consumer waits on.
    pub(crate) fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// A call queued work for a connection's task (from any thread): the set becomes
    /// readable, once until the next step.
    pub(crate) fn want_step(&self) {
        if !self.step_pending.swap(true, Ordering::AcqRel) {
            self.step_wanted.signal();
        }
    }

    /// Wakes `waker`'s task in the next step, on the runtime's thread, where a wake is
    /// a push onto its run queue.
    pub(crate) fn defer_wake(&self, waker: Waker) {
        self.deferred_wakes.lock().unwrap_or_else(|e| e.into_inner()).push(waker);
        self.want_step();
    }

    /// Wakes the tasks whose wakes were deferred. Called on the runtime's thread, inside
    /// it: by the step, and by a stop, which runs the runtime on its own thread.
    pub(crate) fn wake_deferred(&self) {
        let woken = std::mem::take(&mut *self.deferred_wakes.lock().unwrap_or_else(|e| e.into_inner()));
        woken.into_iter().for_each(Waker::wake);
    }

    /// Takes what made the set readable; true when a step has work to do.
    fn take_readiness(&self) -> bool {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut any = false;
        loop {
            // SAFETY: reads at most `ready.len()` entries into the live array.
            let n = unsafe {
                libc::epoll_wait(self.epoll.as_raw_fd(), ready.as_mut_ptr(), ready.len() as i32, 0)
            };
            if n <= 0 {
                break;
            }
            any = true;
            if (n as usize) < ready.len() {
                break;
            }
        }
        if any {
            self.step_pending.store(false, Ordering::Release);
            self.step_wanted.clear();
            let mut expirations = 0u64;
            // SAFETY: reads 8 bytes into a live u64 (EAGAIN when the tick is not due).
            unsafe { libc::read(self.timer.as_raw_fd(), (&mut expirations as *mut u64).cast(), 8) };
        }
        any
    }

    /// Runs the runtime until it has nothing left to do now, if anything made the set
    /// readable since the last step. Called by `poll`, on the consumer's thread;
    /// without a runtime (not started, or stopping on another thread) it only takes
    /// the readiness.
    pub(crate) fn step(&self, runtime: Option<&Runtime>) {
        let ready = self.take_readiness();
        let Some(runtime) = runtime.filter(|_| ready) else {
            return;
        };
        let finished = runtime.block_on(async {
            self.wake_deferred();
            // Each yield lets the runtime run every queued task, then poll the
            // sockets (without waiting): what that poll wakes runs on the next.
            tokio::task::yield_now().await;
            for _ in 0..MAX_ROUNDS {
                let before = TASK_POLLS.get();
                tokio::task::yield_now().await;
                if TASK_POLLS.get() == before {
                    return true;
                }
            }
            false
        });
        if !finished {
            self.want_step();
        }
    }
}

thread_local! {
    /// Polls of the core's tasks on this thread: a step round that polled none found
    /// nothing left to run.
    static TASK_POLLS: Cell<u64> = const { Cell::new(0) };
}

/// Wraps a task's future so that its polls are counted (`step`).
pub(crate) fn counted<F: Future>(future: F) -> Counted<F> {
    Counted { future }
}

/// A task's future whose polls are counted.
pub(crate) struct Counted<F> {
    future: F,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        TASK_POLLS.set(TASK_POLLS.get().wrapping_add(1));
        // SAFETY: `future` is pinned with its wrapper: it is never moved out of it,
        // and `Counted` has no Drop or Unpin of its own that could move it.
        unsafe { self.map_unchecked_mut(|counted| &mut counted.future) }.poll(cx)
    }
}
