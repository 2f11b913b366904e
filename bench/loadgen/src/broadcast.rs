//! `broadcast`: one sender publishes messages to a broadcast route; `receivers` other
//! clients each must get every one of them, in order. Reports deliveries per second,
//! delivery latency and what was lost.
//!
//! How much to send: `--messages N` (default 1000), or `--duration D` seconds of
//! sending instead (then the count is whatever was sent in that time).
//!
//! How fast: `--rate R` paces the sender at R messages per second (small bursts every
//! millisecond). `--rate 0` saturates instead: the sender keeps at most `--window W`
//! messages outstanding, where a message stops being outstanding once every receiver
//! has got it (see `window.rs`), so the server runs flat out without its send queues
//! growing without bound.
//!
//! A message is `B<seq:16 hex><send time:16 hex ns>` padded with `x` to `--size`.
//! Before the measured run the sender repeats a `S<n>` sync message until every
//! receiver has seen one, so that no receiver misses the start because its
//! registration with the route was still under way. `PHASE measure_start` is printed
//! when the first real message goes out and `PHASE measure_end` when every receiver is
//! done; `cpu_seconds` and `wall_seconds` cover that span.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::cli::{non_negative, positive, positive_whole, whole};
use crate::common::{connect_many, first_errors, get_hex, put_hex, Conn};
use crate::stats::{fmt_us, phase, Latencies, LatencyFields, Num, RunFields, Span, SpanStart};
use crate::window::DeliveryWindow;
use crate::ws::{self, Target, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::Outcome;

const HEAD: usize = 33;
const SYNC_EVERY: Duration = Duration::from_millis(100);
const SYNC_LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(1);
const DEFAULT_MESSAGES: u64 = 1000;
const DEFAULT_WINDOW: u64 = 64;

#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// The server's broadcast route
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Receiving connections, besides the sender
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = positive_whole)]
    pub receivers: u64,
    /// Messages to send [default: 1000, unless --duration is given]
    #[arg(long, value_name = "N", value_parser = positive_whole, conflicts_with = "duration")]
    pub messages: Option<u64>,
    /// Seconds to send for, instead of a count of messages
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub duration: Option<f64>,
    /// Messages per second; 0 sends as fast as the window allows
    #[arg(long, value_name = "PER_SECOND", default_value_t = 1000.0, value_parser = non_negative)]
    pub rate: f64,
    /// With --rate 0: most messages not yet at every receiver [default: 64]
    #[arg(long, value_name = "N", value_parser = positive_whole)]
    pub window: Option<u64>,
    /// Bytes of each message, 33 at least (sequence number and send time)
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = whole)]
    pub size: u64,
    /// Handshakes under way at once while connecting
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = whole)]
    pub concurrency: u64,
    /// Seconds the receivers get after the last send; the longest the window may stall
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub drain_timeout: f64,
}

impl BroadcastArgs {
    /// The rule between flags that clap's attributes cannot state.
    pub fn check(&self) -> Result<(), String> {
        if self.rate > 0.0 && self.window.is_some() {
            return Err("--window needs --rate 0".into());
        }
        Ok(())
    }

    fn limit(&self) -> Limit {
        match self.duration {
            Some(seconds) => Limit::Seconds(seconds),
            None => Limit::Messages(self.messages.unwrap_or(DEFAULT_MESSAGES)),
        }
    }

    fn pace(&self) -> Pace {
        if self.rate > 0.0 {
            Pace::Rate(self.rate)
        } else {
            Pace::Window(self.window.unwrap_or(DEFAULT_WINDOW) as usize)
        }
    }
}

#[derive(Clone, Copy)]
enum Limit {
    Messages(u64),
    Seconds(f64),
}

#[derive(Clone, Copy)]
enum Pace {
    /// Messages per second.
    Rate(f64),
    /// At most this many messages not yet delivered to every receiver.
    Window(usize),
}

/// What the receivers are told while they run.
#[derive(Clone, Copy, Default)]
struct Control {
    /// How many messages there are to receive, once known.
    total: Option<u64>,
    /// Give up and report (the drain time after the last send is over).
    stop: bool,
}

struct Shared {
    base: Instant,
    receivers: usize,
    /// Receivers that have seen a sync message.
    synced: Cell<usize>,
    /// Messages handed to the socket so far; a receiver seeing `seq >= sent` got garbage.
    sent: Cell<u64>,
    window: Option<DeliveryWindow>,
    control: watch::Sender<Control>,
}

#[derive(Default)]
struct RecvResult {
    unique: u64,
    duplicates: u64,
    out_of_order: u64,
    bad: u64,
    lat: Latencies,
    last_delivery: Option<Instant>,
    error: Option<String>,
    disconnected: bool,
    close_error: Option<String>,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    receivers: usize,
    messages: u64,
    sent: u64,
    duration_s: Num,
    pace: &'static str,
    rate_asked: Num,
    window: usize,
    rate_sent: Num,
    size: usize,
    deliveries: u64,
    expected: u64,
    deliveries_per_sec: Num,
    delivery_span_s: Num,
    #[serde(flatten)]
    latency: LatencyFields,
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
    bad: u64,
    sender_own_received: u64,
    errors: usize,
    disconnects: u64,
    close_errors: usize,
    first_errors: String,
    #[serde(flatten)]
    measured: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

pub async fn run(args: &BroadcastArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let receivers = args.receivers as usize;
    let limit = args.limit();
    let rate = args.rate;
    let pace = args.pace();
    let size = (args.size as usize).max(HEAD);
    let concurrency = args.concurrency as usize;
    let drain = Duration::from_secs_f64(args.drain_timeout);

    let wall0 = Instant::now();
    let run_span = SpanStart::now();
    let (conns, connect_errors, _) =
        connect_many(target, receivers + 1, concurrency, 16 << 10, Duration::from_secs(30)).await;
    if !connect_errors.is_empty() {
        return Err(format!(
            "{} of {} connections failed: {}",
            connect_errors.len(),
            receivers + 1,
            first_errors(&connect_errors, 3)
        ));
    }
    phase("connected", &format!("receivers={receivers}"));
    let mut conns = conns.into_iter().flatten();
    let sender = conns.next().expect("sender connection");
    let (control, control_rx) = watch::channel(Control {
        total: match limit {
            Limit::Messages(n) => Some(n),
            Limit::Seconds(_) => None,
        },
        stop: false,
    });
    let shared = Rc::new(Shared {
        base: Instant::now(),
        receivers,
        synced: Cell::new(0),
        sent: Cell::new(0),
        window: match pace {
            Pace::Window(w) => Some(DeliveryWindow::new(w, receivers)),
            Pace::Rate(_) => None,
        },
        control,
    });

    let expected_each = match limit {
        Limit::Messages(n) => n as usize,
        Limit::Seconds(_) => 1 << 12,
    };
    let mut tasks = Vec::with_capacity(receivers);
    for c in conns {
        tasks.push(tokio::task::spawn_local(receive(c, shared.clone(), control_rx.clone(), expected_each)));
    }
    drop(control_rx);
    let send_task = tokio::task::spawn_local(send(sender, shared.clone(), limit, rate, size, drain));

    // Once the sender is done, the receivers get `drain` to finish; then they are told
    // to stop and report what they have.
    let sender_result = send_task.await.map_err(|e| format!("sender task failed: {e}"))?;
    phase("sent", &format!("messages={} seconds={:.3}", sender_result.sent, sender_result.send_seconds));
    let stopper = {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(drain).await;
            shared.control.send_modify(|c| c.stop = true);
        })
    };
    let mut results = Vec::with_capacity(receivers);
    for t in tasks {
        results.push(t.await.map_err(|e| format!("receiver task failed: {e}"))?);
    }
    stopper.abort();
    let measured = sender_result.measure_start.map(|s| s.end()).unwrap_or_default();
    phase("measure_end", "");

    let run = run_span.end();
    let wall = wall0.elapsed().as_secs_f64();
    let mut lat = Latencies::with_capacity(0);
    let (mut unique, mut dups, mut ooo, mut bad, mut disconnects) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut last = None::<Instant>;
    let mut errors = Vec::new();
    let mut close_errors = Vec::new();
    for r in results {
        unique += r.unique;
        dups += r.duplicates;
        ooo += r.out_of_order;
        bad += r.bad;
        disconnects += r.disconnected as u64;
        if let Some(t) = r.last_delivery {
            last = Some(last.map_or(t, |l: Instant| l.max(t)));
        }
        if let Some(e) = r.error {
            errors.push(e);
        }
        if let Some(e) = r.close_error {
            close_errors.push(e);
        }
        lat.extend(r.lat);
    }
    if let Some(e) = &sender_result.error {
        errors.push(format!("sender: {e}"));
    }
    let sent = sender_result.sent;
    let messages = match limit {
        Limit::Messages(n) => n,
        Limit::Seconds(_) => sent,
    };
    let expected = receivers as u64 * sent;
    let lost = expected.saturating_sub(unique);
    let span = match (sender_result.first_send, last) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    let deliveries_per_sec = unique as f64 / span;
    let rate_sent = sent as f64 / sender_result.send_seconds;
    let s = lat.summary();
    let ok =
        errors.is_empty() && lost == 0 && dups == 0 && ooo == 0 && bad == 0 && sent == messages && sent > 0;
    let (pace_name, pace_desc) = match pace {
        Pace::Rate(r) => ("rate", format!("at {rate_sent:.0}/s (asked {r})")),
        Pace::Window(w) => ("window", format!("at {rate_sent:.0}/s, window {w}")),
    };
    let summary = format!(
        "broadcast ws://{}{}: 1 sender -> {receivers} receivers, {sent} messages of {size} B sent {pace_desc}, \
         {unique}/{expected} deliveries = {deliveries_per_sec:.0} deliveries/s over {span:.2} s, \
         latency p50 {} p99 {} max {}; lost {lost}, duplicates {dups}, out of order {ooo}, bad {bad}, \
         sender got {}/{sent} of its own; errors {}, disconnects {disconnects}, close errors {}; \
         measured: {}; whole run: {:.2} s CPU, wall {wall:.1} s{}",
        target.host_header,
        target.path,
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.max_us),
        sender_result.own_received,
        errors.len(),
        close_errors.len(),
        measured.describe(),
        run.cpu.total(),
        if errors.is_empty() { String::new() } else { format!("; first errors: {}", first_errors(&errors, 3)) },
    );
    let report = Report {
        mode: "broadcast",
        url: format!("ws://{}{}", target.host_header, target.path),
        receivers,
        messages,
        sent,
        duration_s: Num(match limit {
            Limit::Seconds(d) => d,
            Limit::Messages(_) => 0.0,
        }),
        pace: pace_name,
        rate_asked: Num(rate),
        window: match pace {
            Pace::Window(w) => w,
            Pace::Rate(_) => 0,
        },
        rate_sent: Num(rate_sent),
        size,
        deliveries: unique,
        expected,
        deliveries_per_sec: Num(deliveries_per_sec),
        delivery_span_s: Num(span),
        latency: s.fields(""),
        lost,
        duplicates: dups,
        out_of_order: ooo,
        bad,
        sender_own_received: sender_result.own_received,
        errors: errors.len(),
        disconnects,
        close_errors: close_errors.len(),
        first_errors: first_errors(&errors, 3),
        measured,
        run: RunFields::new(run.cpu, wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}

struct SendResult {
    sent: u64,
    send_seconds: f64,
    first_send: Option<Instant>,
    measure_start: Option<SpanStart>,
    own_received: u64,
    error: Option<String>,
}

enum Stage {
    /// Repeating sync messages until every receiver has seen one.
    Sync { next: tokio::time::Instant },
    /// Sending the real messages since `start`.
    Sending { start: Instant },
    /// All sent; waiting (from `since`) for the sender's own copies.
    Draining { since: tokio::time::Instant },
}

/// The sender: sync round, then the messages, paced by the delivery window if there
/// is one, else at `rate` per second; each is stamped when encoded; it reads its own copies of the broadcast all
/// along so that its send queue on the server never backs up.
async fn send(
    mut c: Conn,
    shared: Rc<Shared>,
    limit: Limit,
    rate: f64,
    size: usize,
    drain: Duration,
) -> SendResult {
    let mut r = SendResult {
        sent: 0,
        send_seconds: f64::NAN,
        first_send: None,
        measure_start: None,
        own_received: 0,
        error: None,
    };
    let receivers = shared.receivers;
    let window = shared.window.as_ref();
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut payload = vec![b'x'; size];
    payload[0] = b'B';
    let mut last_seq: Option<u64> = None;
    let sync_deadline = Instant::now() + SYNC_LIMIT;
    let mut sync_round = 0u64;
    let mut stage = Stage::Sync { next: tokio::time::Instant::now() };
    let mut next_tick = tokio::time::Instant::now();
    // Window mode: when the oldest outstanding message last moved.
    let mut progress = (0u64, tokio::time::Instant::now());

    loop {
        // Send whatever is due now, and work out what to wait for.
        let now = Instant::now();
        let now_t = tokio::time::Instant::now();
        let mut wait_window = false;
        let wake_at = match &mut stage {
            Stage::Sync { next } => {
                if shared.synced.get() >= receivers {
                    phase("synced", &format!("rounds={sync_round}"));
                    r.measure_start = Some(SpanStart::now());
                    phase("measure_start", "");
                    r.first_send = Some(now);
                    stage = Stage::Sending { start: now };
                    progress = (0, now_t);
                    continue;
                }
                if now > sync_deadline {
                    r.error = Some(format!(
                        "only {} of {receivers} receivers saw a sync message within {SYNC_LIMIT:?}",
                        shared.synced.get()
                    ));
                    return r;
                }
                if now_t >= *next {
                    let mut p = *b"S0000000000000000";
                    put_hex(&mut p[1..], sync_round);
                    sync_round += 1;
                    ws::encode(&mut out, OP_TEXT, &p, &mut c.rng);
                    *next += SYNC_EVERY;
                }
                *next
            }
            Stage::Sending { start } => {
                let elapsed = (now - *start).as_secs_f64();
                let cap = match limit {
                    Limit::Messages(n) => n,
                    Limit::Seconds(d) if elapsed >= d => r.sent,
                    Limit::Seconds(_) => u64::MAX,
                };
                let allowed = match window {
                    Some(w) => w.limit(),
                    None => (elapsed * rate) as u64 + 1,
                }
                .min(cap);
                while r.sent < allowed {
                    put_hex(&mut payload[1..17], r.sent);
                    let t = Instant::now() - shared.base;
                    put_hex(&mut payload[17..33], t.as_nanos() as u64);
                    ws::encode(&mut out, OP_TEXT, &payload, &mut c.rng);
                    r.sent += 1;
                }
                shared.sent.set(r.sent);
                if r.sent >= cap {
                    r.send_seconds = elapsed;
                    shared.control.send_modify(|c| c.total = Some(r.sent));
                    stage = Stage::Draining { since: now_t };
                    // Straight back round once this last batch is written: the own
                    // copies may all be in already.
                    now_t
                } else if let Some(w) = window {
                    if w.oldest() != progress.0 {
                        progress = (w.oldest(), now_t);
                    } else if now_t >= progress.1 + drain {
                        r.error = Some(format!(
                            "window stalled for {drain:?}: message {} reached {} of {receivers} receivers",
                            w.oldest(),
                            w.count(w.oldest()).unwrap_or(0)
                        ));
                        return r;
                    }
                    wait_window = true;
                    let stall_check = progress.1 + drain;
                    match limit {
                        Limit::Seconds(d) => stall_check
                            .min(tokio::time::Instant::from_std(*start + Duration::from_secs_f64(d))),
                        Limit::Messages(_) => stall_check,
                    }
                } else {
                    if next_tick <= now_t {
                        next_tick = now_t + TICK;
                    }
                    next_tick
                }
            }
            Stage::Draining { since } => {
                if r.own_received >= r.sent {
                    break;
                }
                if now_t >= *since + drain {
                    r.error = Some(format!("got {} of its own {} messages back", r.own_received, r.sent));
                    break;
                }
                *since + drain
            }
        };
        if !out.is_empty() {
            if let Err(e) = c.stream.write_all(&out).await {
                r.error = Some(format!("write: {e}"));
                return r;
            }
            out.clear();
        }

        let read = tokio::select! {
            res = c.reader.fill(&mut c.stream) => res,
            _ = tokio::time::sleep_until(wake_at) => continue,
            _ = window_advanced(window), if wait_window => continue,
        };
        match read {
            Ok(0) => {
                r.error = Some("server closed the TCP stream".into());
                return r;
            }
            Err(e) => {
                r.error = Some(format!("read: {e}"));
                return r;
            }
            Ok(_) => {}
        }
        loop {
            let m = match c.reader.next() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("protocol error: {e}"));
                    return r;
                }
            };
            match m.opcode {
                OP_TEXT if m.data.first() == Some(&b'B') && m.data.len() >= HEAD => {
                    let seq = get_hex(&m.data[1..17]);
                    if seq.is_none() || last_seq.is_some_and(|l| Some(l) >= seq) {
                        r.error =
                            Some(format!("own message out of order or garbled: {seq:?} after {last_seq:?}"));
                    }
                    last_seq = seq;
                    r.own_received += 1;
                }
                OP_TEXT => {}
                OP_PING => {
                    let p = m.data.to_vec();
                    ws::encode(&mut out, OP_PONG, &p, &mut c.rng);
                }
                OP_CLOSE => {
                    r.error = Some("server closed the sender's connection".into());
                    return r;
                }
                _ => {}
            }
        }
    }
    if let Err(e) = ws::close(&mut c.stream, &mut c.reader, &mut c.rng, true, Duration::from_secs(5)).await {
        if r.error.is_none() {
            r.error = Some(format!("close: {e}"));
        }
    }
    r
}

async fn window_advanced(window: Option<&DeliveryWindow>) {
    match window {
        Some(w) => w.advanced().await,
        None => std::future::pending().await,
    }
}

/// A receiver: counts every `B` message once, checks the order, records latency from
/// the send stamp and tells the window. Returns when it has all of them or is told to
/// stop.
async fn receive(
    mut c: Conn,
    shared: Rc<Shared>,
    mut control: watch::Receiver<Control>,
    expected: usize,
) -> RecvResult {
    let mut r = RecvResult { lat: Latencies::with_capacity(expected), ..Default::default() };
    let mut seen = vec![0u64; expected.div_ceil(64)];
    let mut last_seq: Option<u64> = None;
    let mut synced = false;
    let mut out = Vec::new();
    let mut total = None;
    loop {
        let ctl = *control.borrow_and_update();
        total = ctl.total.or(total);
        if ctl.stop || total.is_some_and(|t| r.unique >= t) {
            break;
        }
        let res = tokio::select! {
            res = c.reader.fill(&mut c.stream) => res,
            changed = control.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
        };
        match res {
            Ok(0) => {
                r.error = Some("server closed the TCP stream".into());
                r.disconnected = true;
                return r;
            }
            Err(e) => {
                r.error = Some(format!("read: {e}"));
                r.disconnected = true;
                return r;
            }
            Ok(_) => {}
        }
        let now = Instant::now();
        loop {
            let m = match c.reader.next() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("protocol error: {e}"));
                    return r;
                }
            };
            match m.opcode {
                OP_TEXT => {
                    let d = m.data;
                    match d.first() {
                        Some(b'S') => {
                            if !synced {
                                synced = true;
                                shared.synced.set(shared.synced.get() + 1);
                            }
                        }
                        Some(b'B') if d.len() >= HEAD => {
                            let (Some(seq), Some(ts)) = (get_hex(&d[1..17]), get_hex(&d[17..33])) else {
                                r.bad += 1;
                                continue;
                            };
                            if seq >= shared.sent.get() {
                                r.bad += 1;
                                continue;
                            }
                            let (w, b) = ((seq / 64) as usize, seq % 64);
                            if w >= seen.len() {
                                seen.resize((w + 1).next_power_of_two(), 0);
                            }
                            if seen[w] & (1 << b) != 0 {
                                r.duplicates += 1;
                                continue;
                            }
                            seen[w] |= 1 << b;
                            if last_seq.is_some_and(|l| seq < l) {
                                r.out_of_order += 1;
                            }
                            last_seq = Some(seq);
                            r.unique += 1;
                            if let Some(window) = &shared.window {
                                window.delivered(seq);
                            }
                            let sent = shared.base + Duration::from_nanos(ts);
                            r.lat.push(now.saturating_duration_since(sent));
                            r.last_delivery = Some(now);
                        }
                        _ => r.bad += 1,
                    }
                }
                OP_BINARY => r.bad += 1,
                OP_PING => {
                    let p = m.data.to_vec();
                    ws::encode(&mut out, OP_PONG, &p, &mut c.rng);
                }
                OP_CLOSE => {
                    let code = (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                    r.error = Some(format!("server closed the connection with code {code:?}"));
                    r.disconnected = true;
                    return r;
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            let _ = c.stream.write_all(&out).await;
            out.clear();
        }
    }
    match total {
        Some(t) if r.unique >= t => {}
        _ if r.error.is_some() => {}
        Some(t) => r.error = Some(format!("stopped with {} of {t} messages", r.unique)),
        None => r.error = Some(format!("stopped with {} messages, total unknown", r.unique)),
    }
    if let Err(e) = ws::close(&mut c.stream, &mut c.reader, &mut c.rng, true, Duration::from_secs(5)).await {
        r.close_error = Some(e);
    }
    r
}
