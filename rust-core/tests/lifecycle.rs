//! Stopping and dropping a server from the places Rust programs do it.

use std::time::Duration;

use roost::{Config, Server};

fn started() -> Server {
    let server = Server::new(Config::default()).unwrap();
    server.add_route("/ws").unwrap();
    server.start("127.0.0.1", 0).unwrap();
    server
}

#[test]
fn stop_and_drop_inside_a_tokio_runtime_do_not_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let stopped = started();
        let port = stopped.port().unwrap();
        stopped.stop(Duration::from_millis(100)).unwrap();
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
        drop(started()); // Drop stops a running server here too.
    });
}

#[test]
fn stop_before_start_leaves_the_server_usable() {
    let server = Server::new(Config::default()).unwrap();
    server.stop(Duration::ZERO).unwrap();
    server.add_route("/ws").unwrap();
    assert!(server.start("127.0.0.1", 0).unwrap() > 0);
    server.stop(Duration::ZERO).unwrap();
    server.stop(Duration::ZERO).unwrap();
}
