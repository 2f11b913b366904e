//! Topics leave nothing behind: 100,000 connections that each subscribe to a topic of
//! their own and to one they all share, have a message published to their own topic,
//! and close. Eight clients cycle at once; after the first 10,000 cycles the bytes the
//! process holds on its heap are read, and at the end they must be within 64 KiB of
//! that, with no connection, no topic and no subscriber of the shared topic left.
//!
//! The heap is counted by this binary's own allocator rather than read from RSS: RSS
//! also moves with how the C allocator spreads its arenas over threads, which made a
//! bound on it fail now and then with nothing leaked. RSS is still printed.
//!
//! ROOST_TOPIC_CYCLES sets the number of cycles (default 100,000).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use roost::{Event, Server};

const CLIENTS: usize = 8;
const WARMUP: usize = 10_000;
const GROWTH_BOUND: usize = 64 << 10;

/// The system allocator, counting the bytes allocated and not yet freed.
struct CountingAllocator;

static HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is
// kept beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            HEAP_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `block` came from `alloc` or `realloc` above, with this layout.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is the system allocator's.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            HEAP_BYTES.fetch_add(new_size, Ordering::Relaxed);
            HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn own_topic(id: u64) -> String {
    format!("connection {id}")
}

/// The server's side of a cycle: a new connection joins its own topic and the shared
/// one; a message is published to its own topic, which it is the only subscriber of.
fn topics_handler() -> Handler {
    Box::new(|server: &Server, event: &Event| match event {
        Event::Connect(info) => {
            let _ = server.subscribe(info.id, own_topic(info.id).as_bytes());
            let _ = server.subscribe(info.id, b"everyone");
        }
        Event::Message { id, data, .. } => {
            let _ = server.publish_text(own_topic(*id).as_bytes(), data.clone(), None);
        }
        _ => {}
    })
}

#[test]
fn subscribe_publish_close_cycles_leave_memory_flat_and_no_topic_behind() {
    let cycles: usize =
        std::env::var("ROOST_TOPIC_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let (h, mut events) = Harness::with_consumer(test_config(), &["/t"], topics_handler());
    let (port, server) = (h.port, h.server().clone());
    run(600, async move {
        // The harness forwards every event to the test: take them as they come, so
        // that they are not what grows.
        tokio::spawn(async move {
            loop {
                events.next().await;
            }
        });
        let done = Arc::new(AtomicUsize::new(0));
        let cycle_until = |until: usize| {
            let done = done.clone();
            async move {
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let done = done.clone();
                        tokio::spawn(async move {
                            while done.fetch_add(1, Ordering::Relaxed) < until {
                                let mut ws = ws_connect(port, "/t").await;
                                ws_echo_text(&mut ws, "cycle").await;
                                drop(ws);
                            }
                            done.fetch_sub(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                for client in clients {
                    client.await.expect("client failed");
                }
            }
        };
        let settled = || async {
            for _ in 0..500 {
                if server.connection_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{} connections still open", server.connection_count());
        };
        cycle_until(WARMUP).await;
        settled().await;
        let (heap_after_warmup, rss_after_warmup) = (HEAP_BYTES.load(Ordering::Relaxed), rss_bytes());
        cycle_until(cycles).await;
        settled().await;
        let (at_end, rss_at_end) = (HEAP_BYTES.load(Ordering::Relaxed), rss_bytes());
        let stats = server.stats();
        eprintln!(
            "{cycles} cycles: heap after {WARMUP} {} KiB, at the end {} KiB; RSS {} KiB, {} KiB",
            heap_after_warmup >> 10,
            at_end >> 10,
            rss_after_warmup >> 10,
            rss_at_end >> 10
        );
        assert_eq!((stats.connections, stats.topics), (0, 0));
        assert_eq!(server.subscriber_count(b"everyone").unwrap(), 0);
        assert!(
            at_end <= heap_after_warmup + GROWTH_BOUND,
            "the heap grew from {} KiB to {} KiB",
            heap_after_warmup >> 10,
            at_end >> 10
        );
    });
}
