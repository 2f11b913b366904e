//! `echo`: closed-loop throughput. Each connection keeps `inflight` text messages
//! outstanding; every reply is checked and answered by a new message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::{non_negative, positive, positive_whole, whole};
use crate::common::{
    connect_many, first_errors, get_hex, measured_window, put_hex, read_more, send_batch, Conn, Tally,
};
use crate::payload::{self, Payload};
use crate::stats::{fmt_us, phase, Cpu, Latencies, LatencyFields, Num, RunFields, Span};
use crate::ws::{self, Target, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::Outcome;

const PREFIX: &[u8] = b"Echo: ";

#[derive(clap::Args, Debug)]
pub struct EchoArgs {
    /// The server's echo route
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Connections, each kept busy
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = positive_whole)]
    pub connections: u64,
    /// Messages outstanding on each connection
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = positive_whole)]
    pub inflight: u64,
    /// Bytes of each message
    #[arg(long, value_name = "BYTES", default_value_t = 32, value_parser = whole)]
    pub size: u64,
    /// What the messages hold: `filler` (x repeated) or `json` (JSON-like text, for
    /// runs with --compression)
    #[arg(long, value_enum, value_name = "KIND", default_value_t = Payload::Filler)]
    pub payload: Payload,
    /// Seconds measured, after the warm-up
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub duration: f64,
    /// Seconds of load before the measured window
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = non_negative)]
    pub warmup: f64,
    /// Handshakes under way at once while connecting
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = whole)]
    pub concurrency: u64,
    /// Seconds a connection may wait for a reply before it counts as stalled
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub stall_timeout: f64,
}

#[derive(Default)]
struct ConnResult {
    /// Replies received inside the measured window.
    measured: u64,
    /// Replies received at all.
    total: u64,
    lat: Latencies,
    bad_replies: u64,
    /// Why the connection failed before its replies were all in, if it did.
    error: Option<String>,
    /// The server closed the connection (a close frame or EOF) before we did.
    disconnected: bool,
    close_error: Option<String>,
    close_code: Option<u16>,
}

struct Plan {
    inflight: usize,
    /// The message body; its bytes at `seq` are rewritten with each message's number.
    body: Vec<u8>,
    seq: std::ops::Range<usize>,
    measure_start: Instant,
    measure_end: Instant,
    stall: Duration,
    expected_per_conn: usize,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    connections: usize,
    inflight: usize,
    size: usize,
    payload: &'static str,
    compression: bool,
    duration_s: Num,
    warmup_s: Num,
    messages: u64,
    messages_total: u64,
    msgs_per_sec: Num,
    #[serde(flatten)]
    latency: LatencyFields,
    per_conn_min: u64,
    per_conn_max: u64,
    handshake_p99_us: Num,
    errors: usize,
    bad_replies: u64,
    disconnects: u64,
    close_errors: usize,
    close_codes: String,
    first_errors: String,
    cpu_window_s: Num,
    cpu_window_user_s: Num,
    cpu_window_sys_s: Num,
    #[serde(flatten)]
    window: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

pub async fn run(args: &EchoArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let connections = args.connections as usize;
    let inflight = args.inflight as usize;
    let size = args.size as usize;
    let duration = args.duration;
    let warmup = args.warmup;
    let concurrency = args.concurrency as usize;
    let stall = args.stall_timeout;
    let (body, seq) = payload::make(args.payload, size)?;

    let wall0 = Instant::now();
    let cpu0 = Cpu::now();
    let read_cap = (inflight * (size + PREFIX.len() + 14)).clamp(4096, 1 << 20);
    let (conns, connect_errors, hs) =
        connect_many(target, connections, concurrency, read_cap, Duration::from_secs(30)).await;
    if !connect_errors.is_empty() {
        return Err(format!(
            "{} of {connections} connections failed: {}",
            connect_errors.len(),
            first_errors(&connect_errors, 3)
        ));
    }
    let hs = hs.summary();
    let compression = conns.iter().flatten().any(|c| c.reader.deflate());
    phase("connected", &format!("connections={connections} handshake_p99_us={:.0}", hs.p99_us));

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(warmup);
    let measure_end = measure_start + Duration::from_secs_f64(duration);
    // Room for every reply of the window: a generous guess from a first look at rates.
    let expected_per_conn = 1 << 14;
    let window = measured_window(warmup, measure_start, measure_end);

    let mut tasks = Vec::with_capacity(connections);
    for conn in conns.into_iter().flatten() {
        let plan = Plan {
            inflight,
            body: body.clone(),
            seq: seq.clone(),
            measure_start,
            measure_end,
            stall: Duration::from_secs_f64(stall),
            expected_per_conn,
        };
        tasks.push(tokio::task::spawn_local(drive(conn, plan)));
    }
    let mut tally = Tally::default();
    let mut close_errors = Vec::new();
    let mut close_codes = std::collections::BTreeMap::new();
    for t in tasks {
        let r = t.await.map_err(|e| format!("connection task failed: {e}"))?;
        tally.add((r.measured, r.total, r.bad_replies), r.disconnected, r.error, r.lat);
        if let Some(e) = r.close_error {
            close_errors.push(e);
        }
        *close_codes.entry(r.close_code.map_or("none".to_string(), |c| c.to_string())).or_insert(0u64) += 1;
    }
    let window = window.await.map_err(|e| format!("phase task failed: {e}"))?;
    let window_cpu = window.cpu;
    let cpu = Cpu::now().since(cpu0);
    let wall = wall0.elapsed().as_secs_f64();
    let (fewest, most) = tally.spread();
    let Tally { measured, total, bad, disconnects, errors, lat, .. } = tally;
    let lat = lat.summary();
    let rate = measured as f64 / duration;
    let ok = errors.is_empty() && bad == 0 && measured > 0;

    let payload = match args.payload {
        Payload::Filler => "filler",
        Payload::Json => "json",
    };
    let codes: Vec<String> = close_codes.iter().map(|(k, v)| format!("{k}x{v}")).collect();
    let summary = format!(
        "echo {url}: {connections} conns x {inflight} in flight, {size} B {payload}{deflated}: {rate:.0} msg/s over {duration} s \
         ({measured} replies; {total} in all), RTT p50 {p50} p99 {p99} max {max}; \
         per connection {fewest}..{most}; errors {nerr}, bad replies {bad}, server disconnects {disconnects}, close errors {ncl} (close codes {codes}); \
         measured window: {window}; whole run: loadgen CPU {cpu:.2} s, wall {wall:.1} s{first}",
        url = target.url(),
        deflated = if compression { ", compressed" } else { "" },
        p50 = fmt_us(lat.p50_us),
        p99 = fmt_us(lat.p99_us),
        max = fmt_us(lat.max_us),
        nerr = errors.len(),
        ncl = close_errors.len(),
        codes = codes.join(","),
        cpu = cpu.total(),
        window = window.describe(),
        first = if errors.is_empty() && close_errors.is_empty() {
            String::new()
        } else {
            format!("; first errors: {}", first_errors(&[errors.clone(), close_errors.clone()].concat(), 3))
        },
    );
    let report = Report {
        mode: "echo",
        url: target.url(),
        connections,
        inflight,
        size,
        payload,
        compression,
        duration_s: Num(duration),
        warmup_s: Num(warmup),
        messages: measured,
        messages_total: total,
        msgs_per_sec: Num(rate),
        latency: lat.fields(""),
        per_conn_min: fewest,
        per_conn_max: most,
        handshake_p99_us: Num(hs.p99_us),
        errors: errors.len(),
        bad_replies: bad,
        disconnects,
        close_errors: close_errors.len(),
        close_codes: codes.join(","),
        first_errors: first_errors(&[errors, close_errors].concat(), 3),
        cpu_window_s: Num(window_cpu.total()),
        cpu_window_user_s: Num(window_cpu.user),
        cpu_window_sys_s: Num(window_cpu.sys),
        window,
        run: RunFields::new(cpu, wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}

async fn drive(mut c: Conn, plan: Plan) -> ConnResult {
    let mut r = ConnResult { lat: Latencies::with_capacity(plan.expected_per_conn), ..Default::default() };
    let deflate = c.reader.deflate();
    let mut payload = plan.body;
    let size = payload.len();
    let seq_at = plan.seq;
    let k = seq_at.len();
    let mut out: Vec<u8> = Vec::with_capacity(plan.inflight * (size + 14) + 64);
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::with_capacity(plan.inflight + 1);
    let mut seq = 0u64;

    let now = Instant::now();
    for _ in 0..plan.inflight {
        put_hex(&mut payload[seq_at.clone()], seq);
        ws::encode_message(&mut out, OP_TEXT, &payload, &mut c.rng, deflate);
        pending.push_back((seq, now));
        seq += 1;
    }
    if let Err(e) = send_batch(&mut c.stream, &mut out, pending.iter_mut().map(|(_, sent)| sent)).await {
        r.error = Some(e);
        return r;
    }

    'outer: while !pending.is_empty() {
        if let Err(stopped) =
            read_more(c.reader.fill(&mut c.stream), plan.stall, pending.len(), "replies").await
        {
            r.error = Some(stopped.error);
            r.disconnected = stopped.disconnected;
            break;
        }
        let now = Instant::now();
        let in_window = now >= plan.measure_start && now < plan.measure_end;
        let sending = now < plan.measure_end;
        let mut fresh = 0usize;
        loop {
            let m = match c.reader.next() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("protocol error: {e}"));
                    break 'outer;
                }
            };
            match m.opcode {
                OP_TEXT => {
                    let d = m.data;
                    let Some(&(want, sent)) = pending.front() else {
                        r.bad_replies += 1;
                        r.error = Some("reply to nothing (more replies than messages)".into());
                        break 'outer;
                    };
                    // "Echo: " + the message: its number where it was written, and every
                    // other byte as in the body (which differs only in that number).
                    let ok = d.len() == PREFIX.len() + size
                        && d.starts_with(PREFIX)
                        && (k == 0
                            || get_hex(&d[PREFIX.len() + seq_at.start..][..k]) == Some(want & mask(k)))
                        && d[PREFIX.len()..][..seq_at.start] == payload[..seq_at.start]
                        && d[PREFIX.len() + seq_at.end..] == payload[seq_at.end..];
                    if !ok {
                        r.bad_replies += 1;
                        r.error = Some(format!(
                            "bad reply to message {want}: {} bytes, starts {:?}",
                            d.len(),
                            String::from_utf8_lossy(&d[..d.len().min(40)])
                        ));
                        break 'outer;
                    }
                    pending.pop_front();
                    r.total += 1;
                    if in_window {
                        r.measured += 1;
                        r.lat.push(now - sent);
                    }
                    if sending {
                        put_hex(&mut payload[seq_at.clone()], seq);
                        ws::encode_message(&mut out, OP_TEXT, &payload, &mut c.rng, deflate);
                        pending.push_back((seq, now));
                        seq += 1;
                        fresh += 1;
                    }
                }
                OP_PING => {
                    let p = m.data.to_vec();
                    ws::encode(&mut out, OP_PONG, &p, &mut c.rng);
                }
                OP_PONG => {}
                OP_CLOSE => {
                    let code = (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                    r.error = Some(format!(
                        "server closed the connection (code {code:?}) with {} outstanding",
                        pending.len()
                    ));
                    r.disconnected = true;
                    r.close_code = code;
                    return r;
                }
                OP_BINARY => {
                    r.bad_replies += 1;
                    r.error = Some("binary reply to a text message".into());
                    break 'outer;
                }
                _ => {}
            }
        }
        let len = pending.len();
        let stamps = pending.range_mut(len - fresh..).map(|(_, sent)| sent);
        if let Err(e) = send_batch(&mut c.stream, &mut out, stamps).await {
            r.error = Some(e);
            r.disconnected = true;
            break;
        }
    }
    if !r.disconnected {
        match ws::close(&mut c.stream, &mut c.reader, &mut c.rng, true, Duration::from_secs(5)).await {
            Ok(code) => r.close_code = code,
            Err(e) => r.close_error = Some(e),
        }
    }
    r
}

#[inline]
fn mask(k: usize) -> u64 {
    if k >= 16 {
        u64::MAX
    } else {
        (1u64 << (4 * k)) - 1
    }
}
