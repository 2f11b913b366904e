//! An idle server does not spin: once drained, its ready descriptor stays unreadable,
//! and the process uses next to no CPU while connections sit idle.
//!
//! One test in this file: it measures the CPU time of the whole process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use roost::{Config, Event};

#[test]
fn idle_server_keeps_ready_fd_quiet_and_uses_no_cpu() {
    let config = Config { ping_interval: None, ..test_config() };
    let h = Harness::new(config, &["/ws"]);
    let port = h.port;
    let server = h.server().clone();
    let fd = server.ready_fd();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _clients = block_on(&rt, 10, async {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(ws_connect(port, "/ws").await);
        }
        v
    });

    // Drain by the protocol until the four connects were seen.
    let mut batch = Vec::new();
    let mut connects = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        batch.clear();
        let n = server.poll(&mut batch, 16);
        connects += batch.iter().filter(|e| matches!(e, Event::Connect(_))).count();
        if n == 0 {
            if connects == 4 {
                break;
            }
            assert!(fd_readable(fd, 5000), "no wake-up while connects are missing");
        }
        assert!(Instant::now() < deadline, "connects never arrived");
    }
    assert_eq!(server.connection_count(), 4);

    // Drained and idle: the descriptor stays unreadable.
    assert!(!fd_readable(fd, 500), "ready fd readable on an idle, drained server");
    batch.clear();
    assert_eq!(server.poll(&mut batch, 16), 0, "events appeared on an idle server");

    // CPU time of the whole process (core threads, client runtime, this thread) over
    // one idle second.
    let cpu_before = cpu_time();
    let wall = Instant::now();
    assert!(!fd_readable(fd, 1000));
    let elapsed = wall.elapsed();
    let used = cpu_time() - cpu_before;
    eprintln!("idle for {elapsed:?}: {used:?} CPU");
    assert!(elapsed >= Duration::from_millis(990));
    assert!(used < Duration::from_millis(50), "{used:?} of CPU in {elapsed:?} of idleness");
    assert_eq!(server.connection_count(), 4, "idle connections must stay open");
}
