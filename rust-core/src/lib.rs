//! Roost's WebSocket server core, with the HTTP requests it serves beside them.
//!
//! The core owns sockets, handshakes, frames, per-connection queues, broadcast fan-out,
//! limits and timers on a tokio runtime of its own. It never calls its consumer: events
//! wait in a queue, and a file descriptor (`Server::ready_fd`) becomes readable when
//! there is something to poll. The `ffi` module exposes the same API to C
//! (`include/roost.h`); everything else here is plain Rust.
#![deny(missing_docs)]

mod answers;
mod backplane;
pub mod config;
mod connection;
mod connection_state;
mod counters;
mod deflate;
pub mod error;
pub mod events;
mod fanout;
pub mod ffi;
mod frame_reader;
mod frames;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod http_request;
mod http_response;
mod http_serve;
mod inline_io;
mod listener;
mod metrics;
mod outgoing;
mod registry;
mod routes;
mod scheduling;
pub mod server;
mod server_state;
mod socket;
mod static_files;
pub mod stats;
mod tls;
mod topics;
mod transport;
mod upgrade_rules;
mod wakeup;

pub use config::{Compression, Config, SlowConsumer};
pub use error::{Error, Result};
pub use events::{ConnectInfo, Event, RequestHead, RequestInfo};
pub use server::Server;
pub use stats::Stats;
pub use tls::TlsIdentity;
pub use topics::MAX_TOPIC_LENGTH;
