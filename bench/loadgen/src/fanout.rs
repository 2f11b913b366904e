//! What the fan-out modes (`broadcast`, `pubsub`) share: channels, each with one
//! sender and its receivers, where every receiver must get every message of its
//! channel, in order. A channel is a broadcast route or one topic of a pub/sub server.
//!
//! How much each sender sends: `--messages N` (default 1000), or `--duration D`
//! seconds of sending instead (then the count is whatever was sent in that time).
//!
//! How fast: `--rate R` paces each sender at R messages per second (small bursts every
//! millisecond). `--rate 0` saturates instead: each sender keeps at most `--window W`
//! messages outstanding, where a message stops being outstanding once every receiver
//! of its channel has got it (see `window.rs`), so the server runs flat out without
//! its send queues growing without bound.
//!
//! A message is `B<seq:16 hex><send time:16 hex ns>` padded with `x` to `--size`.
//! Before the measured run each sender repeats a `S<n>` sync message until every
//! receiver of its channel has seen one, so that no receiver misses the start because
//! its registration with the route or topic was still under way. The senders start
//! together once every receiver of every channel has synced: `PHASE measure_start` is
//! printed then, and `PHASE measure_end` when every receiver is done; `cpu_seconds`
//! and `wall_seconds` cover that span.
//!
//! A receiver that sees no sync message within `--sync-timeout` seconds fails the run;
//! with `--start-unsynced` the senders start then all the same, and such a receiver
//! counts as losing every message. That measures a server whose broadcast does not
//! reach every one of its processes, instead of stopping at it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::cli::{non_negative, positive, positive_whole, whole};
use crate::common::{connect_each, first_errors, get_hex, put_hex, Conn};
use crate::stats::{fmt_us, phase, Latencies, LatencyFields, Num, RunFields, Span, SpanStart};
use crate::window::DeliveryWindow;
use crate::ws::{self, Message, Reader, Target, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::Outcome;

const HEAD: usize = 33;
const SYNC_EVERY: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(1);
/// How often a sender that gets no copies of its own checks whether its receivers are done.
const ENDED_POLL: Duration = Duration::from_millis(10);
const DEFAULT_MESSAGES: u64 = 1000;
const DEFAULT_WINDOW: u64 = 64;

/// The flags of the fan-out modes besides where to connect and how many.
#[derive(clap::Args, Debug)]
pub struct FanoutArgs {
    /// Messages each sender sends [default: 1000, unless --duration is given]
    #[arg(long, value_name = "N", value_parser = positive_whole, conflicts_with = "duration")]
    pub messages: Option<u64>,
    /// Seconds to send for, instead of a count of messages
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub duration: Option<f64>,
    /// Messages per second of each sender; 0 sends as fast as the window allows
    #[arg(long, value_name = "PER_SECOND", default_value_t = 1000.0, value_parser = non_negative)]
    pub rate: f64,
    /// With --rate 0: most messages of a sender not yet at all its receivers [default: 64]
    #[arg(long, value_name = "N", value_parser = positive_whole)]
    pub window: Option<u64>,
    /// Bytes of each message, 33 at least (sequence number and send time)
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = whole)]
    pub size: u64,
    /// Handshakes under way at once while connecting
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = whole)]
    pub concurrency: u64,
    /// Seconds the receivers get to see a first sync message
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub sync_timeout: f64,
    /// Start when the sync time is over even if some receivers saw no sync message;
    /// they count as losing every message (needs --rate above 0)
    #[arg(long)]
    pub start_unsynced: bool,
    /// Seconds the receivers get after the last send; the longest a window may stall
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub drain_timeout: f64,
}

impl FanoutArgs {
    /// The rule between flags that clap's attributes cannot state.
    pub fn check(&self) -> Result<(), String> {
        if self.rate > 0.0 && self.window.is_some() {
            return Err("--window needs --rate 0".into());
        }
        if self.start_unsynced && self.rate == 0.0 {
            // The window waits for every receiver, so one that never syncs stalls it.
            return Err("--start-unsynced needs --rate above 0".into());
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

/// One channel of a run: where its sender and its receivers connect, and how many
/// receivers it has. The receivers are spread over `receivers_at` in turn.
pub struct ChannelSpec {
    pub sender: Target,
    pub receivers_at: Vec<Target>,
    pub receivers: usize,
}

/// What the receivers of a channel are told while they run.
#[derive(Clone, Copy, Default)]
struct Control {
    /// How many messages there are to receive, once known.
    total: Option<u64>,
    /// Give up and report (the drain time after the last send is over).
    stop: bool,
}

/// What every channel of a run shares.
struct Group {
    /// Send stamps count nanoseconds from here.
    base: Instant,
    /// Receivers of all channels.
    receivers: usize,
    /// Receivers that have seen a sync message.
    synced: Cell<usize>,
    /// Receivers that ended before every receiver had synced.
    failed: Cell<usize>,
    /// The most sync messages a sender has sent.
    sync_rounds: Cell<u64>,
    /// When the senders started (all at once), with this process's CPU time then.
    start: Cell<Option<(Instant, SpanStart)>>,
    started: Notify,
    /// The senders are sent their own messages back (a broadcast to all, the sender
    /// included) rather than none (a publisher is not a subscriber of its topic).
    own_copies: bool,
}

impl Group {
    /// A receiver saw its first sync message; the last one starts the senders.
    fn receiver_synced(&self) {
        self.synced.set(self.synced.get() + 1);
        if self.synced.get() == self.receivers {
            self.start_senders();
        }
    }

    /// Starts the senders (once), with however many receivers have synced.
    fn start_senders(&self) {
        if self.start.get().is_some() {
            return;
        }
        let unsynced = self.receivers - self.synced.get();
        phase("synced", &format!("rounds={} unsynced={unsynced}", self.sync_rounds.get()));
        let span = SpanStart::now();
        phase("measure_start", "");
        self.start.set(Some((Instant::now(), span)));
        self.started.notify_waiters();
    }
}

/// One sender and its receivers.
struct Channel {
    group: Rc<Group>,
    receivers: usize,
    /// Receivers of this channel that have seen a sync message.
    synced: Cell<usize>,
    /// Receivers of this channel that have ended, with every message or not.
    ended: Cell<usize>,
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

/// The RESULT fields of every fan-out mode, after the mode's own.
#[derive(Serialize)]
struct Fields {
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
}

/// What a fan-out mode runs: its channels, and how its report names them.
pub struct Layout<M> {
    pub mode: &'static str,
    pub url: String,
    /// The channels in words, for the summary line: `1 sender -> 100 receivers`.
    pub shape: String,
    /// The mode's own RESULT fields, after `mode` and `url`.
    pub fields: M,
    pub channels: Vec<ChannelSpec>,
    /// Whether the server sends each sender's messages back to it too (a broadcast to
    /// all, the sender included) or not (a publisher is no subscriber of its topic).
    pub own_copies: bool,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report<M> {
    mode: &'static str,
    url: String,
    #[serde(flatten)]
    layout: M,
    #[serde(flatten)]
    fanout: Fields,
    ok: bool,
}

/// Connects every channel's sender and receivers, syncs them, sends, waits for the
/// receivers and sums up. The run is ok when every receiver got every message of its
/// channel once, in order, and nothing else went wrong.
pub async fn run<M: Serialize>(layout: Layout<M>, args: &FanoutArgs) -> Result<Outcome, String> {
    let specs = &layout.channels;
    let own_copies = layout.own_copies;
    let limit = args.limit();
    let rate = args.rate;
    let pace = args.pace();
    let size = (args.size as usize).max(HEAD);
    let drain = Duration::from_secs_f64(args.drain_timeout);
    let senders = specs.len();
    let receivers: usize = specs.iter().map(|s| s.receivers).sum();

    let wall0 = Instant::now();
    let run_span = SpanStart::now();
    let targets: Vec<Target> = specs
        .iter()
        .flat_map(|s| {
            std::iter::once(s.sender.clone()).chain(s.receivers_at.iter().cycle().take(s.receivers).cloned())
        })
        .collect();
    let (conns, connect_errors, _) =
        connect_each(&targets, args.concurrency as usize, 16 << 10, Duration::from_secs(30)).await;
    if !connect_errors.is_empty() {
        return Err(format!(
            "{} of {} connections failed: {}",
            connect_errors.len(),
            targets.len(),
            first_errors(&connect_errors, 3)
        ));
    }
    phase("connected", &format!("senders={senders} receivers={receivers}"));
    let group = Rc::new(Group {
        base: Instant::now(),
        receivers,
        synced: Cell::new(0),
        failed: Cell::new(0),
        sync_rounds: Cell::new(0),
        start: Cell::new(None),
        started: Notify::new(),
        own_copies,
    });
    let expected_each = match limit {
        Limit::Messages(n) => n as usize,
        Limit::Seconds(_) => 1 << 12,
    };
    let mut conns = conns.into_iter().flatten();
    let mut channels = Vec::with_capacity(senders);
    let mut send_tasks = Vec::with_capacity(senders);
    let mut recv_tasks = Vec::with_capacity(receivers);
    for spec in specs {
        let (control, control_rx) = watch::channel(Control {
            total: match limit {
                Limit::Messages(n) => Some(n),
                Limit::Seconds(_) => None,
            },
            stop: false,
        });
        let channel = Rc::new(Channel {
            group: group.clone(),
            receivers: spec.receivers,
            synced: Cell::new(0),
            ended: Cell::new(0),
            sent: Cell::new(0),
            window: match pace {
                Pace::Window(w) => Some(DeliveryWindow::new(w, spec.receivers)),
                Pace::Rate(_) => None,
            },
            control,
        });
        let sender = conns.next().expect("sender connection");
        for c in conns.by_ref().take(spec.receivers) {
            recv_tasks.push(tokio::task::spawn_local(receive(
                c,
                channel.clone(),
                control_rx.clone(),
                expected_each,
            )));
        }
        let sync =
            Sync { limit: Duration::from_secs_f64(args.sync_timeout), start_unsynced: args.start_unsynced };
        send_tasks.push(tokio::task::spawn_local(send(
            sender,
            channel.clone(),
            limit,
            rate,
            size,
            sync,
            drain,
        )));
        channels.push(channel);
    }

    // Once the senders are done, the receivers get `drain` to finish; then they are
    // told to stop and report what they have.
    let mut sent_by = Vec::with_capacity(senders);
    let (mut send_seconds, mut own_received) = (0f64, 0u64);
    let mut sender_errors = Vec::new();
    for t in send_tasks {
        let r = t.await.map_err(|e| format!("sender task failed: {e}"))?;
        sent_by.push(r.sent);
        send_seconds = send_seconds.max(r.send_seconds);
        own_received += r.own_received;
        if let Some(e) = r.error {
            sender_errors.push(format!("sender: {e}"));
        }
    }
    let sent: u64 = sent_by.iter().sum();
    phase("sent", &format!("messages={sent} seconds={send_seconds:.3}"));
    let stopper = {
        let channels = channels.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(drain).await;
            for ch in &channels {
                ch.control.send_modify(|c| c.stop = true);
            }
        })
    };
    let mut results = Vec::with_capacity(receivers);
    for t in recv_tasks {
        results.push(t.await.map_err(|e| format!("receiver task failed: {e}"))?);
    }
    stopper.abort();
    let start = group.start.get();
    let measured = start.map(|(_, s)| s.end()).unwrap_or_default();
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
    errors.extend(sender_errors);
    let messages = match limit {
        Limit::Messages(n) => n * senders as u64,
        Limit::Seconds(_) => sent,
    };
    let expected: u64 = specs.iter().zip(&sent_by).map(|(s, &n)| s.receivers as u64 * n).sum();
    let lost = expected.saturating_sub(unique);
    // What went wrong in delivery counts among the errors, so that the first errors say why.
    for (n, what) in [(lost, "lost"), (dups, "duplicated"), (ooo, "out of order"), (bad, "bad")] {
        if n > 0 {
            errors.push(format!("{n} deliveries {what}"));
        }
    }
    let span = match (start, last) {
        (Some((a, _)), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    let deliveries_per_sec = unique as f64 / span;
    let rate_sent = sent as f64 / send_seconds;
    let s = lat.summary();
    let ok = errors.is_empty() && sent == messages && sent > 0;
    let (pace_name, pace_desc) = match pace {
        Pace::Rate(r) => ("rate", format!("at {rate_sent:.0}/s (asked {r} per sender)")),
        Pace::Window(w) => ("window", format!("at {rate_sent:.0}/s, window {w} per sender")),
    };
    let own = if own_copies {
        format!("senders got {own_received}/{sent} of their own")
    } else {
        format!("senders got {own_received} of their own (none expected)")
    };
    let summary = format!(
        "{} {}: {}, {sent} messages of {size} B sent {pace_desc}, \
         {unique}/{expected} deliveries = {deliveries_per_sec:.0} deliveries/s over {span:.2} s, \
         latency p50 {} p99 {} max {}; lost {lost}, duplicates {dups}, out of order {ooo}, bad {bad}, \
         {own}; errors {}, disconnects {disconnects}, close errors {}; \
         measured: {}; whole run: {:.2} s CPU, wall {wall:.1} s{}",
        layout.mode,
        layout.url,
        layout.shape,
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.max_us),
        errors.len(),
        close_errors.len(),
        measured.describe(),
        run.cpu.total(),
        if errors.is_empty() {
            String::new()
        } else {
            format!("; first errors: {}", first_errors(&errors, 3))
        },
    );
    let fields = Fields {
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
        sender_own_received: own_received,
        errors: errors.len(),
        disconnects,
        close_errors: close_errors.len(),
        first_errors: first_errors(&errors, 3),
        measured,
        run: RunFields::new(run.cpu, wall),
    };
    let report = Report { mode: layout.mode, url: layout.url, layout: layout.fields, fanout: fields, ok };
    Ok(Outcome::new(summary, &report, ok))
}

/// How long a sender syncs, and what it does when that time is over.
#[derive(Clone, Copy)]
struct Sync {
    limit: Duration,
    start_unsynced: bool,
}

struct SendResult {
    sent: u64,
    send_seconds: f64,
    own_received: u64,
    error: Option<String>,
}

enum Stage {
    /// Repeating sync messages until every receiver of every channel has seen one.
    Sync { next: tokio::time::Instant },
    /// Sending the real messages since `start`.
    Sending { start: Instant },
    /// All sent; waiting (from `since`, for at most the drain time) for the sender's
    /// own copies or, where it gets none, for its receivers to end: a sender stays
    /// connected until its messages are delivered, as a server may drop what a client
    /// that has left sent last.
    Draining { since: tokio::time::Instant },
}

/// A sender: sync round, then the messages, paced by the delivery window if there is
/// one, else at `rate` per second; each is stamped when encoded. It reads all along:
/// its own copies, where the server sends them, so that its send queue on the server
/// never backs up.
async fn send(
    mut c: Conn,
    ch: Rc<Channel>,
    limit: Limit,
    rate: f64,
    size: usize,
    sync: Sync,
    drain: Duration,
) -> SendResult {
    let mut r = SendResult { sent: 0, send_seconds: f64::NAN, own_received: 0, error: None };
    let group = &ch.group;
    let window = ch.window.as_ref();
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut payload = vec![b'x'; size];
    payload[0] = b'B';
    let mut last_seq: Option<u64> = None;
    let sync_deadline = Instant::now() + sync.limit;
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
        let mut wait_start = false;
        let wake_at = match &mut stage {
            Stage::Sync { next } => {
                if let Some((at, _)) = group.start.get() {
                    stage = Stage::Sending { start: at };
                    progress = (0, now_t);
                    continue;
                }
                if group.failed.get() > 0 {
                    r.error = Some("a receiver ended before every receiver had synced".into());
                    return r;
                }
                if now > sync_deadline && sync.start_unsynced {
                    group.start_senders();
                    continue;
                }
                if now > sync_deadline {
                    r.error = Some(format!(
                        "only {} of {} receivers saw a sync message within {:?} \
                         ({} of {} of this sender's)",
                        group.synced.get(),
                        group.receivers,
                        sync.limit,
                        ch.synced.get(),
                        ch.receivers
                    ));
                    return r;
                }
                if now_t >= *next {
                    if ch.synced.get() < ch.receivers {
                        let mut p = *b"S0000000000000000";
                        put_hex(&mut p[1..], sync_round);
                        sync_round += 1;
                        group.sync_rounds.set(group.sync_rounds.get().max(sync_round));
                        ws::encode_message(&mut out, OP_TEXT, &p, &mut c.rng, c.reader.deflate());
                    }
                    *next = now_t + SYNC_EVERY;
                }
                wait_start = true;
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
                    let t = Instant::now() - group.base;
                    put_hex(&mut payload[17..33], t.as_nanos() as u64);
                    ws::encode_message(&mut out, OP_TEXT, &payload, &mut c.rng, c.reader.deflate());
                    r.sent += 1;
                }
                ch.sent.set(r.sent);
                if r.sent >= cap {
                    r.send_seconds = elapsed;
                    ch.control.send_modify(|c| c.total = Some(r.sent));
                    stage = Stage::Draining { since: now_t };
                    // Straight back round once this last batch is written: the own
                    // copies may all be in already.
                    now_t
                } else if let Some(w) = window {
                    if w.oldest() != progress.0 {
                        progress = (w.oldest(), now_t);
                    } else if now_t >= progress.1 + drain {
                        r.error = Some(format!(
                            "window stalled for {drain:?}: message {} reached {} of {} receivers",
                            w.oldest(),
                            w.count(w.oldest()).unwrap_or(0),
                            ch.receivers
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
            Stage::Draining { since } if group.own_copies => {
                if r.own_received >= r.sent {
                    break;
                }
                if now_t >= *since + drain {
                    r.error = Some(format!("got {} of its own {} messages back", r.own_received, r.sent));
                    break;
                }
                *since + drain
            }
            Stage::Draining { since } => {
                // The receivers report what they lack; the sender only waits for them.
                if ch.ended.get() >= ch.receivers || now_t >= *since + drain {
                    break;
                }
                (now_t + ENDED_POLL).min(*since + drain)
            }
        };
        if !out.is_empty() {
            if let Err(e) = c.stream.send(&out).await {
                r.error = Some(format!("write: {e}"));
                return r;
            }
            out.clear();
        }

        let read = tokio::select! {
            res = c.reader.fill(&mut c.stream) => res,
            _ = tokio::time::sleep_until(wake_at) => continue,
            _ = window_advanced(window), if wait_window => continue,
            _ = group.started.notified(), if wait_start => continue,
        };
        let read = each_message(&mut c.reader, read, |m| {
            match m.opcode {
                OP_TEXT if m.data.first() == Some(&b'B') && m.data.len() >= HEAD => {
                    let seq = get_hex(&m.data[1..17]);
                    if !group.own_copies {
                        r.error.get_or_insert_with(|| "got its own message back".into());
                    } else if seq.is_none() || last_seq.is_some_and(|l| Some(l) >= seq) {
                        r.error =
                            Some(format!("own message out of order or garbled: {seq:?} after {last_seq:?}"));
                    }
                    last_seq = seq;
                    r.own_received += 1;
                }
                OP_PING => ws::encode(&mut out, OP_PONG, m.data, &mut c.rng),
                OP_CLOSE => return Err(Ended::by_server("server closed the sender's connection".into())),
                _ => {}
            }
            Ok(())
        });
        if let Err(ended) = read {
            r.error = Some(ended.why);
            return r;
        }
    }
    if let Err(e) = ws::close(&mut c.stream, &mut c.reader, &mut c.rng, true, Duration::from_secs(5)).await {
        if r.error.is_none() {
            r.error = Some(format!("close: {e}"));
        }
    }
    r
}

/// Why reading a connection ended early.
struct Ended {
    why: String,
    /// The server ended the connection (end of stream, read error, close frame) rather
    /// than breaking the protocol.
    by_server: bool,
}

impl Ended {
    fn by_server(why: String) -> Ended {
        Ended { why, by_server: true }
    }
}

/// Hands each message that one read (`filled`, what `Reader::fill` returned) completed
/// to `each`, until one of them ends the reading.
fn each_message(
    reader: &mut Reader,
    filled: std::io::Result<usize>,
    mut each: impl FnMut(Message<'_>) -> Result<(), Ended>,
) -> Result<(), Ended> {
    match filled {
        Ok(0) => return Err(Ended::by_server("server closed the TCP stream".into())),
        Err(e) => return Err(Ended::by_server(format!("read: {e}"))),
        Ok(_) => {}
    }
    loop {
        match reader.next() {
            Ok(Some(m)) => each(m)?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(Ended { why: format!("protocol error: {e}"), by_server: false }),
        }
    }
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
async fn receive(c: Conn, ch: Rc<Channel>, control: watch::Receiver<Control>, expected: usize) -> RecvResult {
    let group = ch.group.clone();
    let r = receive_all(c, &ch, control, expected).await;
    ch.ended.set(ch.ended.get() + 1);
    if group.start.get().is_none() {
        group.failed.set(group.failed.get() + 1);
    }
    r
}

async fn receive_all(
    mut c: Conn,
    ch: &Channel,
    mut control: watch::Receiver<Control>,
    expected: usize,
) -> RecvResult {
    let group = &ch.group;
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
        let now = Instant::now();
        let read = each_message(&mut c.reader, res, |m| {
            match m.opcode {
                OP_TEXT => match m.data.first() {
                    Some(b'S') => {
                        if !synced {
                            synced = true;
                            ch.synced.set(ch.synced.get() + 1);
                            group.receiver_synced();
                        }
                    }
                    Some(b'B') if m.data.len() >= HEAD => {
                        let d = m.data;
                        let (Some(seq), Some(ts)) = (get_hex(&d[1..17]), get_hex(&d[17..33])) else {
                            r.bad += 1;
                            return Ok(());
                        };
                        if seq >= ch.sent.get() {
                            r.bad += 1;
                            return Ok(());
                        }
                        let (w, b) = ((seq / 64) as usize, seq % 64);
                        if w >= seen.len() {
                            seen.resize((w + 1).next_power_of_two(), 0);
                        }
                        if seen[w] & (1 << b) != 0 {
                            r.duplicates += 1;
                            return Ok(());
                        }
                        seen[w] |= 1 << b;
                        if last_seq.is_some_and(|l| seq < l) {
                            r.out_of_order += 1;
                        }
                        last_seq = Some(seq);
                        r.unique += 1;
                        if let Some(window) = &ch.window {
                            window.delivered(seq);
                        }
                        let sent = group.base + Duration::from_nanos(ts);
                        r.lat.push(now.saturating_duration_since(sent));
                        r.last_delivery = Some(now);
                    }
                    _ => r.bad += 1,
                },
                OP_BINARY => r.bad += 1,
                OP_PING => ws::encode(&mut out, OP_PONG, m.data, &mut c.rng),
                OP_CLOSE => {
                    let code = (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                    return Err(Ended::by_server(format!("server closed the connection with code {code:?}")));
                }
                _ => {}
            }
            Ok(())
        });
        if let Err(ended) = read {
            r.error = Some(ended.why);
            r.disconnected = ended.by_server;
            return r;
        }
        if !out.is_empty() {
            let _ = c.stream.send(&out).await;
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
