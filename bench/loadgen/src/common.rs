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
