//! `pingpong`: one connection, one message at a time; the round-trip latency of an
//! otherwise idle server. `--warmup-count` round trips first, then `--count` measured
//! ones between `PHASE measure_start` and `PHASE measure_end`; the JSON has their
//! percentiles (`p50_us`, `p99_us`, ...) and the CPU time of that span.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::{positive_whole, whole};
use crate::common::{connect_many, first_errors, get_hex, put_hex};
use crate::stats::{fmt_us, phase, Cpu, Latencies, LatencyFields, Num, RunFields, Span, SpanStart};
use crate::ws::{self, Target, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::Outcome;

const PREFIX: &[u8] = b"Echo: ";

#[derive(clap::Args, Debug)]
pub struct PingpongArgs {
    /// The server's echo route
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Round trips measured
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive_whole)]
    pub count: u64,
    /// Bytes of each message
    #[arg(long, value_name = "BYTES", default_value_t = 32, value_parser = whole)]
    pub size: u64,
    /// Round trips before the measured ones [default: count/10, at most 1000]
    #[arg(long, value_name = "N", value_parser = whole)]
    pub warmup_count: Option<u64>,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    count: u64,
    size: usize,
    round_trips_per_sec: Num,
    #[serde(flatten)]
    latency: LatencyFields,
    error: String,
    close_error: String,
    cpu_window_s: Num,
    #[serde(flatten)]
    measured: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

pub async fn run(args: &PingpongArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let count = args.count;
    let size = args.size as usize;
    let warmup = args.warmup_count.unwrap_or((count / 10).min(1000));
    let wall0 = Instant::now();
    let cpu0 = Cpu::now();
    let (mut conns, errors, _) = connect_many(target, 1, 1, 4096, Duration::from_secs(10)).await;
    let Some(mut c) = conns.pop().flatten() else {
        return Err(format!("connect failed: {}", first_errors(&errors, 1)));
    };

    let k = size.min(16);
    let mut payload = vec![b'x'; size];
    let mut out = Vec::with_capacity(size + 16);
    let mut lat = Latencies::with_capacity(count as usize);
    let mut error: Option<String> = None;
    let mut measured = SpanStart::now();
    'outer: for i in 0..warmup + count {
        if i == warmup {
            measured = SpanStart::now();
            phase("measure_start", "");
        }
        put_hex(&mut payload[..k], i);
        out.clear();
        ws::encode_message(&mut out, OP_TEXT, &payload, &mut c.rng, c.reader.deflate());
        let sent = Instant::now();
        if let Err(e) = c.stream.send(&out).await {
            error = Some(format!("write: {e}"));
            break;
        }
        loop {
            let mut pong = None;
            match c.reader.next() {
                Ok(Some(m)) => match m.opcode {
                    OP_TEXT => {
                        let d = m.data;
                        let want = if k >= 16 { i } else { i & ((1u64 << (4 * k)) - 1) };
                        if d.len() != PREFIX.len() + size
                            || !d.starts_with(PREFIX)
                            || (k > 0 && get_hex(&d[PREFIX.len()..PREFIX.len() + k]) != Some(want))
                        {
                            error =
                                Some(format!("bad reply to message {i}: {:?}", String::from_utf8_lossy(d)));
                            break 'outer;
                        }
                        if i >= warmup {
                            lat.push(sent.elapsed());
                        }
                        break;
                    }
                    OP_PING => pong = Some(m.data.to_vec()),
                    OP_PONG => {}
                    OP_CLOSE => {
                        error = Some("server closed the connection".into());
                        break 'outer;
                    }
                    op => {
                        error = Some(format!("unexpected opcode {op}"));
                        break 'outer;
                    }
                },
                Ok(None) => {
                    match tokio::time::timeout(Duration::from_secs(10), c.reader.fill(&mut c.stream)).await {
                        Ok(Ok(0)) => {
                            error = Some("server closed the TCP stream".into());
                            break 'outer;
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            error = Some(format!("read: {e}"));
                            break 'outer;
                        }
                        Err(_) => {
                            error = Some(format!("no reply to message {i} within 10 s"));
                            break 'outer;
                        }
                    }
                }
                Err(e) => {
                    error = Some(format!("protocol error: {e}"));
                    break 'outer;
                }
            }
            if let Some(p) = pong {
                let mut o = Vec::new();
                ws::encode(&mut o, OP_PONG, &p, &mut c.rng);
                let _ = c.stream.send(&o).await;
            }
        }
    }
    let measured = measured.end();
    phase("measure_end", "");
    let window_cpu = measured.cpu;
    let mut close_error = None;
    if error.is_none() {
        if let Err(e) =
            ws::close(&mut c.stream, &mut c.reader, &mut c.rng, true, Duration::from_secs(5)).await
        {
            close_error = Some(e);
        }
    }
    let cpu = Cpu::now().since(cpu0);
    let wall = wall0.elapsed().as_secs_f64();
    let n = lat.len() as u64;
    let s = lat.summary();
    let ok = error.is_none() && n == count;
    let rate = n as f64 / measured.wall;
    let summary = format!(
        "pingpong {}: {n}/{count} round trips of {size} B, RTT mean {} p50 {} p99 {} p99.9 {} max {} \
         ({rate:.0} round trips/s); error: {}; close: {}; measured: {}; whole run: {:.2} s CPU, wall {wall:.1} s",
        target.url(),
        fmt_us(s.mean_us),
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.p999_us),
        fmt_us(s.max_us),
        error.as_deref().unwrap_or("none"),
        close_error.as_deref().unwrap_or("ok"),
        measured.describe(),
        cpu.total(),
    );
    let report = Report {
        mode: "pingpong",
        url: target.url(),
        count: n,
        size,
        round_trips_per_sec: Num(rate),
        latency: s.fields(""),
        error: error.unwrap_or_default(),
        close_error: close_error.unwrap_or_default(),
        cpu_window_s: Num(window_cpu.total()),
        measured,
        run: RunFields::new(cpu, wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}
