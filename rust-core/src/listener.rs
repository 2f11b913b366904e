//! The accept loop: every accepted socket becomes a connection task, unless the server
//! already has `max_pending_handshakes` upgrades in progress; then it gets HTTP 503 at
//! once, so that silent sockets cannot hold back real clients nor grow without bound.
//! Refusals are bounded too: past as many refusals in progress as handshakes, a socket
//! is closed without an answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::connection;
use crate::handshake::{self, Refusal};
use crate::server_state::{Limit, ServerState};

/// Accepts until the server stops accepting.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = state.stop_accepting.notified() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((mut socket, peer)) => match state.take_place(Limit::Handshake) {
                Some(place) => {
                    tokio::spawn(connection::serve(socket, peer, state.clone(), place));
                }
                None if refusing.load(Ordering::Acquire) < state.config.max_pending_handshakes => {
                    let limit = state.config.handshake_timeout;
                    let refusing = refusing.clone();
                    refusing.fetch_add(1, Ordering::AcqRel);
                    tokio::spawn(async move {
                        let refused = handshake::refuse_unread(&mut socket, Refusal::TooManyConnections);
                        let _ = tokio::time::timeout(limit, refused).await;
                        refusing.fetch_sub(1, Ordering::AcqRel);
                    });
                }
                None => drop(socket),
            },
            // Out of descriptors or a peer that reset before accept: pause briefly
            // instead of spinning on the error.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
