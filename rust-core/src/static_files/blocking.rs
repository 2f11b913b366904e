//! File system calls made by a connection's task, and where they run. The lookup of a
//! file and the read of its first chunk run in place, on the connection's thread: from
//! the page cache they take microseconds, less than a trip to another thread and back
//! (measured: with both on tokio's blocking pool, a 4 KiB file served on one core spent
//! about 40% of its samples switching threads, and ran at two thirds of the requests
//! per second). So a small file, the common case of a page's assets, never leaves the
//! connection's thread. The further chunks of a large file go to tokio's blocking pool
//! on the multi-thread runtime, so that a slow disk holds a pool thread rather than a
//! worker with sockets to serve. On the current-thread runtime (`inline_io`) everything
//! runs in place: that runtime only runs while the consumer's `poll` steps it, and a
//! completion from the pool wakes no step, so each call would wait for the next timer
//! tick (up to 10 ms, for every chunk of a file).

use std::io;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Where a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// On the calling task's thread.
    InPlace,
    /// On the blocking pool, where the runtime has one.
    Pool,
}

/// Runs `work`, blocking file system calls, at `place`.
pub(crate) async fn run<T: Send + 'static>(
    place: Place,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    match Handle::try_current() {
        Ok(runtime) if place == Place::Pool && runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            // A JoinError: the runtime is shutting down, or `work` panicked.
            runtime.spawn_blocking(work).await.map_err(io::Error::other)
        }
        _ => Ok(work()),
    }
}
