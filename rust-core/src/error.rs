//! The one error type of the core. Each variant says what the caller should do next and
//! maps to exactly one C status (see `ffi`) and one Python exception.

use std::fmt;

/// What went wrong with a call into the core.
#[derive(Debug)]
pub enum Error {
    /// The connection's send queue is over its limit: wait for its writable event, then
    /// send again. Nothing was queued.
    WouldBlock,
    /// The connection is closing or closed, or the server has stopped: stop using it.
    /// This is the normal end of a connection, not a misuse.
    Closed,
    /// No such connection (never existed, or gone and its id retired) or route.
    NotFound,
    /// An argument was invalid (null, out of range, not UTF-8 where text is required).
    InvalidArgument(String),
    /// The call is not allowed in the server's current state (start twice, add a route
    /// after start, start without a route).
    InvalidState(String),
    /// The operating system refused (bind failed, out of descriptors).
    Io(std::io::Error),
    /// A panic inside the core was caught; the server may be unusable.
    Panic(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("send queue is full; wait for a writable event"),
            Error::Closed => f.write_str("connection or server is closed"),
            Error::NotFound => f.write_str("no such connection or route"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::InvalidState(msg) => write!(f, "invalid state: {msg}"),
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::Panic(msg) => write!(f, "panic in roost core: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err)
    }
}

/// Result of core calls.
pub type Result<T> = std::result::Result<T, Error>;

/// Renders a caught panic's payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
