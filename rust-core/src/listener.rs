//! The accept loop: every accepted socket becomes a connection task, unless the server
//! already has `max_pending_handshakes` upgrades in progress; then it gets HTTP 503 at
//! once, so that silent sockets cannot hold back real clients nor grow without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::connection;
use crate::handshake::{self, Refusal};
use crate::server_state::{Limit, ServerState};

/// Accepts until the server stops accepting.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
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
                None => {
                    let limit = state.config.handshake_timeout;
                    tokio::spawn(async move {
                        let refused = handshake::refuse_unread(&mut socket, Refusal::TooManyConnections);
                        let _ = tokio::time::timeout(limit, refused).await;
                    });
                }
            },
            // Out of descriptors or a peer that reset before accept: pause briefly
            // instead of spinning on the error.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
