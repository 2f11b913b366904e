//! `connrate`: connection churn. Each of `concurrency` workers repeats a full
//! WebSocket connection life cycle as fast as the server allows:
//!
//!   TCP connect, upgrade handshake, one masked text message of `size` bytes, its echo
//!   (checked to be "Echo: " + the message), a close frame (1000), the server's close
//!   frame, the end of the TCP stream, and the socket is dropped.
//!
//! Cycles that end inside the measured window (after `warmup`) give the connections
//! per second; each such cycle's duration and its handshake (connect + upgrade) time
//! are the latencies. Any failed cycle (refused, timed out, bad reply, no close frame)
//! is an error: the worker starts its next cycle and the run goes on to its end, but
//! the result is not `ok`.
//!
//! Over wss:// the cycle begins with a full TLS handshake (no session resumption: each
//! connection is a new client's) and its stream ends with the server's close_notify
//! (or its TCP FIN).
//!
//! `--connect-timeout` bounds each step of a cycle: connect + upgrade, the echo, and
//! the close handshake with the end of the stream.
//!
//! Closing: the server ends the TCP connection first (it answers our close frame and
//! then closes), so each cycle would leave a TIME_WAIT socket on the server's side of
//! loopback, tens of thousands over a run of ~10k connections/s (60 s each). The
//! ephemeral ports come round again every few seconds and their SYNs then land on
//! those TIME_WAIT sockets; runs back to back slowed down as they piled up (from 12k
//! to 6-7k connections/s by the third 5 s run here). Once the close handshake has
//! completed in both directions nothing is left to deliver, so the socket is dropped
//! with SO_LINGER 0: an RST, which ends the server's FIN_WAIT_2 socket at once and
//! leaves no TIME_WAIT anywhere. `--linger-zero 0` closes with a FIN instead.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::{non_negative, positive, positive_whole, whole};
use crate::common::{first_errors, measured_window, put_hex};
use crate::stats::{fmt_us, phase, Latencies, LatencyFields, Num, RunFields, Span, SpanStart};
use crate::ws::{self, Reader, Rng, Stream, Target, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::Outcome;

const PREFIX: &[u8] = b"Echo: ";
/// Distinct error messages each worker keeps for the report.
const KEEP_ERRORS: usize = 3;

#[derive(clap::Args, Debug)]
pub struct ConnrateArgs {
    /// The server's echo route
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Workers, each running one connection's cycle after another
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = positive_whole)]
    pub concurrency: u64,
    /// Seconds measured, after the warm-up
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = positive)]
    pub duration: f64,
    /// Seconds of churn before the measured window
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = non_negative)]
    pub warmup: f64,
    /// Bytes of the one message of each cycle
    #[arg(long, value_name = "BYTES", default_value_t = 32, value_parser = whole)]
    pub size: u64,
    /// Seconds each step of a cycle may take (handshake, echo, close)
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub connect_timeout: f64,
    /// 1: end each cycle with an RST (SO_LINGER 0), leaving no TIME_WAIT; 0: with a FIN
    #[arg(long, value_name = "0|1", default_value_t = 1, value_parser = whole)]
    pub linger_zero: u64,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    concurrency: usize,
    size: usize,
    duration_s: Num,
    warmup_s: Num,
    linger_zero: bool,
    connections: u64,
    connections_total: u64,
    conns_per_sec: Num,
    #[serde(flatten)]
    cycle: LatencyFields,
    #[serde(flatten)]
    handshake: LatencyFields,
    errors: u64,
    first_errors: String,
    #[serde(flatten)]
    window: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

struct Plan {
    target: Target,
    size: usize,
    timeout: Duration,
    linger_zero: bool,
    measure_start: Instant,
    measure_end: Instant,
}

#[derive(Default)]
struct WorkerResult {
    /// Cycles completed inside the measured window.
    measured: u64,
    /// Cycles completed at all (warm-up included).
    completed: u64,
    errors: u64,
    first_errors: Vec<String>,
    cycle: Latencies,
    handshake: Latencies,
}

pub async fn run(args: &ConnrateArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let concurrency = args.concurrency as usize;
    let duration = args.duration;
    let warmup = args.warmup;
    let size = args.size as usize;
    let timeout = args.connect_timeout;
    let linger_zero = args.linger_zero != 0;

    let run_span = SpanStart::now();
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(warmup);
    let measure_end = measure_start + Duration::from_secs_f64(duration);
    let window = measured_window(warmup, measure_start, measure_end);
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let plan = Plan {
            target: target.clone(),
            size,
            timeout: Duration::from_secs_f64(timeout),
            linger_zero,
            measure_start,
            measure_end,
        };
        tasks.push(tokio::task::spawn_local(worker(i as u64, plan)));
    }

    let mut measured = 0u64;
    let mut completed = 0u64;
    let mut errors = 0u64;
    let mut error_list = Vec::new();
    let mut cycle = Latencies::with_capacity(0);
    let mut handshake = Latencies::with_capacity(0);
    for t in tasks {
        let r = t.await.map_err(|e| format!("worker task failed: {e}"))?;
        measured += r.measured;
        completed += r.completed;
        errors += r.errors;
        error_list.extend(r.first_errors);
        cycle.extend(r.cycle);
        handshake.extend(r.handshake);
    }
    phase("done", "");
    let window = window.await.map_err(|e| format!("phase task failed: {e}"))?;
    let run = run_span.end();
    let rate = measured as f64 / duration;
    let cycle = cycle.summary();
    let hs = handshake.summary();
    let ok = errors == 0 && measured > 0;
    let first = first_errors(&error_list, KEEP_ERRORS);

    let summary = format!(
        "connrate {}: {concurrency} workers, {size} B: {rate:.0} connections/s over {duration} s \
         ({measured} cycles; {completed} in all), cycle p50 {} p99 {} max {}, handshake p50 {} p99 {}; \
         errors {errors}; measured window: {}; whole run: {:.2} s CPU, wall {:.1} s{}",
        target.url(),
        fmt_us(cycle.p50_us),
        fmt_us(cycle.p99_us),
        fmt_us(cycle.max_us),
        fmt_us(hs.p50_us),
        fmt_us(hs.p99_us),
        window.describe(),
        run.cpu.total(),
        run.wall,
        if first.is_empty() { String::new() } else { format!("; first errors: {first}") },
    );
    let report = Report {
        mode: "connrate",
        url: target.url(),
        concurrency,
        size,
        duration_s: Num(duration),
        warmup_s: Num(warmup),
        linger_zero,
        connections: measured,
        connections_total: completed,
        conns_per_sec: Num(rate),
        cycle: cycle.fields(""),
        handshake: hs.fields("handshake_"),
        errors,
        first_errors: first,
        window,
        run: RunFields::new(run.cpu, run.wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}

/// Runs cycles back to back until the measured window ends.
async fn worker(id: u64, plan: Plan) -> WorkerResult {
    let mut r = WorkerResult::default();
    let mut rng = Rng::new(0xC044_0000 ^ id << 32);
    let k = plan.size.min(16);
    let mut message = vec![b'x'; plan.size];
    let mut expected = PREFIX.to_vec();
    let mut out = Vec::with_capacity(plan.size + 64);
    let mut seq = id << 40;
    loop {
        let begin = Instant::now();
        if begin >= plan.measure_end {
            break;
        }
        put_hex(&mut message[..k], seq);
        seq += 1;
        expected.truncate(PREFIX.len());
        expected.extend_from_slice(&message);
        match one_cycle(&plan, &mut rng, &message, &expected, &mut out).await {
            Ok(handshake) => {
                let end = Instant::now();
                r.completed += 1;
                if end >= plan.measure_start && end < plan.measure_end {
                    r.measured += 1;
                    r.cycle.push(end - begin);
                    r.handshake.push(handshake);
                }
            }
            Err(e) => {
                r.errors += 1;
                if r.first_errors.len() < KEEP_ERRORS && !r.first_errors.contains(&e) {
                    r.first_errors.push(e);
                }
            }
        }
    }
    r
}

/// One connection's life. Returns its handshake time (connect + upgrade).
async fn one_cycle(
    plan: &Plan,
    rng: &mut Rng,
    message: &[u8],
    expected: &[u8],
    out: &mut Vec<u8>,
) -> Result<Duration, String> {
    let t0 = Instant::now();
    let (mut stream, mut reader) =
        match tokio::time::timeout(plan.timeout, ws::connect(&plan.target, rng, 256)).await {
            Ok(r) => r?,
            Err(_) => return Err(format!("handshake timed out after {:?}", plan.timeout)),
        };
    let handshake = t0.elapsed();

    out.clear();
    ws::encode_message(out, OP_TEXT, message, rng, reader.deflate());
    stream.send(out).await.map_err(|e| format!("send message: {e}"))?;
    match tokio::time::timeout(plan.timeout, await_echo(&mut stream, &mut reader, rng, expected)).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("no echo within {:?}", plan.timeout)),
    }

    // Our close frame, the server's, then the end of the stream.
    let deadline = tokio::time::Instant::now() + plan.timeout;
    match ws::close(&mut stream, &mut reader, rng, true, plan.timeout).await? {
        Some(1000) => {}
        Some(code) => return Err(format!("server closed with code {code}, not 1000")),
        None => return Err("server ended the stream without a close frame".into()),
    }
    match tokio::time::timeout_at(deadline, reader.fill(&mut stream)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(_)) => return Err("data after the server's close frame".into()),
        Ok(Err(e)) => return Err(format!("read after the close frame: {e}")),
        Err(_) => {
            return Err(format!(
                "server did not end the stream within {:?} of the close handshake",
                plan.timeout
            ))
        }
    }
    if plan.linger_zero {
        // Both sides are done: drop with an RST rather than a FIN (see the module doc).
        stream.tcp().set_zero_linger().map_err(|e| format!("SO_LINGER: {e}"))?;
    }
    Ok(handshake)
}

/// Waits for the echo of our one message; answers pings meanwhile.
async fn await_echo(
    stream: &mut Stream,
    reader: &mut Reader,
    rng: &mut Rng,
    expected: &[u8],
) -> Result<(), String> {
    loop {
        let mut pong = None;
        while let Some(m) = reader.next()? {
            match m.opcode {
                OP_TEXT if m.data == expected => return Ok(()),
                OP_TEXT => {
                    return Err(format!(
                        "bad reply: {} bytes, starts {:?}",
                        m.data.len(),
                        String::from_utf8_lossy(&m.data[..m.data.len().min(40)])
                    ))
                }
                OP_PING => pong = Some(m.data.to_vec()),
                OP_PONG => {}
                OP_CLOSE => return Err("server closed the connection before the echo".into()),
                op => return Err(format!("unexpected opcode {op} instead of the echo")),
            }
        }
        if let Some(p) = pong {
            let mut o = Vec::with_capacity(p.len() + 8);
            ws::encode(&mut o, OP_PONG, &p, rng);
            stream.send(&o).await.map_err(|e| format!("send pong: {e}"))?;
        }
        match reader.fill(stream).await {
            Ok(0) => return Err("server ended the stream before the echo".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}
