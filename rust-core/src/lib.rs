//! Roost's WebSocket server core.
//!
//! The core owns sockets, handshakes, frames, per-connection queues, broadcast fan-out,
//! limits and timers on a tokio runtime of its own. It never calls its consumer: events
//! wait in a queue, and a file descriptor (`Server::ready_fd`) becomes readable when
//! there is something to poll. The `ffi` module exposes the same API to C
//! (`include/roost.h`); everything else here is plain Rust.
#![deny(missing_docs)]

pub mod config;
mod connection;
mod connection_state;
pub mod error;
pub mod events;
pub mod ffi;
mod frames;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod listener;
mod registry;
mod scheduling;
pub mod server;
mod server_state;
mod socket;
mod wakeup;

pub use config::Config;
pub use error::{Error, Result};
pub use events::{ConnectInfo, Event};
pub use server::Server;
