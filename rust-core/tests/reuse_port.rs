//! `reuse_port`: servers that set it share one host and port, and the kernel spreads
//! connections over them; without it (on either side) a second start on a port in use
//! fails with `Error::Io`.

mod common;

use std::time::Duration;

use common::*;
use roost::{Config, Error, Server};

fn server(reuse_port: bool) -> Server {
    let server = Server::new(Config { reuse_port, ..test_config() }).unwrap();
    server.add_route("/ws").unwrap();
    server
}

#[test]
fn two_servers_with_reuse_port_share_the_port_and_both_accept() {
    let first = server(true);
    let port = first.start("127.0.0.1", 0).unwrap();
    let second = server(true);
    assert_eq!(second.start("127.0.0.1", port).unwrap(), port);

    // The kernel picks a listener by a hash of each connection's addresses: of 64
    // clients, each server gets some (all on one would be a 2^-63 chance).
    const CLIENTS: usize = 64;
    let clients = run(20, async move {
        let mut clients = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            clients.push(ws_connect(port, "/ws").await);
        }
        clients
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while first.connection_count() + second.connection_count() < CLIENTS
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (a, b) = (first.connection_count(), second.connection_count());
    assert_eq!(a + b, CLIENTS, "every client is upgraded by one of the servers");
    assert!(a > 0 && b > 0, "both servers accept: {a} and {b}");
    drop(clients);
    first.stop(Duration::ZERO).unwrap();
    second.stop(Duration::ZERO).unwrap();
}

#[test]
fn without_reuse_port_on_both_a_second_start_on_the_port_fails_with_io() {
    for (first_reuses, second_reuses) in [(false, false), (false, true), (true, false)] {
        let first = server(first_reuses);
        let port = first.start("127.0.0.1", 0).unwrap();
        let second = server(second_reuses);
        match second.start("127.0.0.1", port) {
            Err(Error::Io(error)) => {
                assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{first_reuses} {second_reuses}")
            }
            other => panic!("{first_reuses} {second_reuses}: expected Error::Io, got {other:?}"),
        }
        // The failed server is still not started, and the first one still serves.
        assert!(second.port().is_err());
        assert_eq!(first.port().unwrap(), port);
        first.stop(Duration::ZERO).unwrap();
    }
}

#[test]
fn a_stopped_server_frees_its_port_for_a_server_without_reuse_port() {
    let first = server(true);
    let port = first.start("127.0.0.1", 0).unwrap();
    first.stop(Duration::ZERO).unwrap();
    let second = server(false);
    assert_eq!(second.start("127.0.0.1", port).unwrap(), port);
    second.stop(Duration::ZERO).unwrap();
}
