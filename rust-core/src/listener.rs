//! The accept loop: every accepted socket becomes a connection task, unless the server
//! already has `max_pending_handshakes` upgrades in progress; then it gets HTTP 503 at
//! once, so that silent sockets cannot hold back real clients nor grow without bound.
//! Refusals are bounded too: past as many refusals in progress as handshakes, a socket
//! is closed without an answer. Also the listening socket itself (`bind`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use std::os::fd::AsRawFd;

use tokio::net::{TcpListener, TcpStream};

use crate::connection;
use crate::handshake::{self, Refusal};
use crate::inline_io;
use crate::server_state::{Limit, ServerState};

/// Backlog of the listening socket: bursts of thousands of connects are normal.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on the first address `host` resolves to that can be
/// bound, as `std::net::TcpListener::bind` would (with `SO_REUSEADDR`, so a restarted
/// server does not wait out its old connections' TIME_WAIT), and with `SO_REUSEPORT`
/// when `reuse_port` is set: every server of a group bound that way to one address
/// listens on it, and the kernel spreads new connections over them.
pub(crate) fn bind(host: &str, port: u16, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for address in (host, port).to_socket_addrs()? {
        match bind_one(address, reuse_port) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{host} resolves to no address"))
    }))
}

fn bind_one(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts until the server stops accepting.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = state.stop_accepting.notified() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            // With inline_io, a socket the consumer's set cannot watch (out of
            // kernel memory for epoll) could never be served: it is dropped.
            Ok((socket, _)) if !watched(&state, &socket) => drop(socket),
            Ok((mut socket, peer)) => match state.take_place(Limit::Handshake) {
                Some(place) => {
                    tokio::spawn(inline_io::counted(connection::serve(socket, peer, state.clone(), place)));
                }
                None if refusing.load(Ordering::Acquire) < state.config.max_pending_handshakes => {
                    let limit = state.config.handshake_timeout;
                    let (refusing, state) = (refusing.clone(), state.clone());
                    refusing.fetch_add(1, Ordering::AcqRel);
                    tokio::spawn(inline_io::counted(async move {
                        let refusals = &state.counters.refusals;
                        let refused =
                            handshake::refuse_unread(&mut socket, Refusal::TooManyConnections, refusals);
                        let _ = tokio::time::timeout(limit, refused).await;
                        refusing.fetch_sub(1, Ordering::AcqRel);
                    }));
                }
                None => drop(socket),
            },
            // Out of descriptors or a peer that reset before accept: pause briefly
            // instead of spinning on the error.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Adds an accepted socket to the consumer's set when the runtime runs on its thread.
fn watched(state: &ServerState, socket: &TcpStream) -> bool {
    match &state.inline {
        Some(inline) => inline.watch(socket.as_raw_fd()).is_ok(),
        None => true,
    }
}
