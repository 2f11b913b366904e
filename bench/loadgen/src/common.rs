//! Helpers shared by the modes.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::stats::{phase, Latencies, Span, SpanStart};
use crate::ws::{self, Reader, Rng, Stream, Target};

pub struct Conn {
    pub stream: Stream,
    pub reader: Reader,
    pub rng: Rng,
}

/// Opens `n` connections with at most `concurrency` handshakes under way at once.
/// Returns the connections in order (`None` for those that failed), the first error
/// seen, and the handshake latencies.
pub async fn connect_many(
    target: &Target,
    n: usize,
    concurrency: usize,
    read_capacity: usize,
    timeout: Duration,
) -> (Vec<Option<Conn>>, Vec<String>, Latencies) {
    connect_each(&vec![target.clone(); n], concurrency, read_capacity, timeout).await
}

/// Opens one connection to each target, as `connect_many` does.
pub async fn connect_each(
    targets: &[Target],
    concurrency: usize,
    read_capacity: usize,
    timeout: Duration,
) -> (Vec<Option<Conn>>, Vec<String>, Latencies) {
    let n = targets.len();
    let sem = Rc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for (i, target) in targets.iter().enumerate() {
        let sem = sem.clone();
        let target = target.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await.expect("semaphore closed");
            let mut rng = Rng::new(0xC0FFEE ^ (i as u64) << 20);
            let t = Instant::now();
            match tokio::time::timeout(timeout, ws::connect(&target, &mut rng, read_capacity)).await {
                Ok(Ok((stream, reader))) => Ok((Conn { stream, reader, rng }, t.elapsed())),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("handshake timed out after {timeout:?}")),
            }
        }));
    }
    let mut conns = Vec::with_capacity(n);
    let mut errors = Vec::new();
    let mut lat = Latencies::with_capacity(n);
    for t in tasks {
        match t.await.expect("connect task panicked") {
            Ok((c, d)) => {
                lat.push(d);
                conns.push(Some(c));
            }
            Err(e) => {
                errors.push(e);
                conns.push(None);
            }
        }
    }
    (conns, errors, lat)
}

/// Announces the warm-up and the measured window with `PHASE warmup`, `PHASE
/// measure_start` and `PHASE measure_end` (at `measure_start` and `measure_end`), and
/// measures this process's CPU time between the two.
pub fn measured_window(
    warmup_s: f64,
    measure_start: Instant,
    measure_end: Instant,
) -> tokio::task::JoinHandle<Span> {
    tokio::task::spawn_local(async move {
        phase("warmup", &format!("seconds={warmup_s}"));
        tokio::time::sleep_until(measure_start.into()).await;
        let start = SpanStart::now();
        phase("measure_start", "");
        tokio::time::sleep_until(measure_end.into()).await;
        let span = start.end();
        phase("measure_end", "");
        span
    })
}

/// What the connections of a closed-loop run (`echo`, `http`) did, added up as each
/// one's task ends.
#[derive(Default)]
pub struct Tally {
    /// Replies received inside the measured window.
    pub measured: u64,
    /// Replies received at all.
    pub total: u64,
    pub bad: u64,
    pub disconnects: u64,
    pub errors: Vec<String>,
    /// The latencies of the measured replies.
    pub lat: Latencies,
    per_conn: Vec<u64>,
}

impl Tally {
    /// One connection's figures: replies in the window and in all, bad replies, whether
    /// the server ended it, why it failed (if it did), its latencies.
    pub fn add(
        &mut self,
        (measured, total, bad): (u64, u64, u64),
        disconnected: bool,
        error: Option<String>,
        lat: Latencies,
    ) {
        self.measured += measured;
        self.total += total;
        self.bad += bad;
        self.disconnects += disconnected as u64;
        self.per_conn.push(measured);
        self.errors.extend(error);
        self.lat.extend(lat);
    }

    /// Fairness: replies per connection in the window, least and most served.
    pub fn spread(&self) -> (u64, u64) {
        let least = self.per_conn.iter().copied().min().unwrap_or(0);
        let most = self.per_conn.iter().copied().max().unwrap_or(0);
        (least, most)
    }
}

/// Why a connection under load stopped: what went wrong, and whether the server ended it.
pub struct Stopped {
    pub error: String,
    pub disconnected: bool,
}

/// Waits up to `stall` for `fill` (one read into a connection's buffer) while
/// `outstanding` replies (`what`: "replies", "responses") are due.
pub async fn read_more(
    fill: impl std::future::Future<Output = std::io::Result<usize>>,
    stall: Duration,
    outstanding: usize,
    what: &str,
) -> Result<(), Stopped> {
    let (error, disconnected) = match tokio::time::timeout(stall, fill).await {
        Ok(Ok(n)) if n > 0 => return Ok(()),
        Err(_) => (format!("stalled: nothing for {stall:?} with {outstanding} {what} outstanding"), false),
        Ok(Err(e)) => (format!("read: {e}"), true),
        Ok(Ok(_)) => (format!("server closed the connection with {outstanding} {what} outstanding"), true),
    };
    Err(Stopped { error, disconnected })
}

/// Writes a closed loop's batch `out` (if it holds anything) and empties it, first
/// stamping the send times of the batch's new messages (`fresh`) with the moment it
/// leaves, so that their latency leaves out the time the batch took to build.
pub async fn send_batch<'a>(
    stream: &mut Stream,
    out: &mut Vec<u8>,
    fresh: impl Iterator<Item = &'a mut Instant>,
) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    let now = Instant::now();
    fresh.for_each(|at| *at = now);
    stream.send(out).await.map_err(|e| format!("write: {e}"))?;
    out.clear();
    Ok(())
}

/// Writes `seq` as lowercase hex into `dst`, keeping the low digits if `dst` is short.
#[inline]
pub fn put_hex(dst: &mut [u8], mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in dst.iter_mut().rev() {
        *b = HEX[(v & 15) as usize];
        v >>= 4;
    }
}

/// Parses lowercase hex; None if any byte is not a hex digit.
#[inline]
pub fn get_hex(src: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in src {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = v << 4 | d as u64;
    }
    Some(v)
}

/// The first few distinct errors, for the report.
pub fn first_errors(errors: &[String], max: usize) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
            if seen.len() == max {
                break;
            }
        }
    }
    let list: Vec<&str> = seen.iter().map(|s| s.as_str()).collect();
    list.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_truncates() {
        let mut b = [0u8; 16];
        put_hex(&mut b, 0xdead_beef);
        assert_eq!(&b, b"00000000deadbeef");
        assert_eq!(get_hex(&b), Some(0xdead_beef));
        let mut short = [0u8; 4];
        put_hex(&mut short, 0x12345);
        assert_eq!(&short, b"2345");
        assert_eq!(get_hex(b"12g4"), None);
    }
}
