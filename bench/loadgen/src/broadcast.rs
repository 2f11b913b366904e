//! `broadcast`: one sender publishes `messages` messages at `rate` per second to a
//! broadcast route; `receivers` other clients each must get every one of them, in
//! order. Reports deliveries per second, delivery latency and what was lost.
//!
//! A message is `B<seq:16 hex><send time:16 hex ns>` padded with `x` to `--size`.
//! Before the measured run the sender repeats a `S<n>` sync message until every
//! receiver has seen one, so that no receiver misses the start because its
//! registration with the route was still under way.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::common::{connect_many, first_errors, get_hex, put_hex, Conn};
use crate::stats::{fmt_us, phase, Cpu, Json, Latencies};
use crate::ws::{self, Target, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::{Args, Outcome};

const HEAD: usize = 33;

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

struct Shared {
    base: Instant,
    synced: Cell<usize>,
}

pub async fn run(args: &Args) -> Result<Outcome, String> {
    let target = Target::parse(&args.required("url")?)?;
    let receivers = args.u64("receivers", 100)? as usize;
    let messages = args.u64("messages", 1000)?;
    let rate = args.f64("rate", 1000.0)?;
    let size = (args.u64("size", 64)? as usize).max(HEAD);
    let concurrency = args.u64("concurrency", 256)? as usize;
    let drain = Duration::from_secs_f64(args.f64("drain-timeout", 10.0)?);
    args.finish()?;
    if receivers == 0 || messages == 0 || rate <= 0.0 {
        return Err("--receivers, --messages and --rate must be positive".into());
    }

    let wall0 = Instant::now();
    let cpu0 = Cpu::now();
    let (conns, connect_errors, _) = connect_many(
        &target,
        receivers + 1,
        concurrency,
        16 << 10,
        Duration::from_secs(30),
    )
    .await;
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
    let shared = Rc::new(Shared {
        base: Instant::now(),
        synced: Cell::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = Vec::with_capacity(receivers);
    for c in conns {
        tasks.push(tokio::task::spawn_local(receive(
            c,
            shared.clone(),
            messages,
            stop_rx.clone(),
            true,
        )));
    }
    let send_task = tokio::task::spawn_local(send(
        sender,
        shared.clone(),
        receivers,
        messages,
        rate,
        size,
        drain,
    ));

    // Once the sender is done, the receivers get `drain` to finish; then they are told
    // to stop and report what they have.
    let sender_result = send_task
        .await
        .map_err(|e| format!("sender task failed: {e}"))?;
    phase(
        "sent",
        &format!(
            "messages={} seconds={:.3}",
            sender_result.sent, sender_result.send_seconds
        ),
    );
    let stopper = tokio::task::spawn_local(async move {
        tokio::time::sleep(drain).await;
        let _ = stop_tx.send(true);
    });
    let mut results = Vec::with_capacity(receivers);
    for t in tasks {
        results.push(t.await.map_err(|e| format!("receiver task failed: {e}"))?);
    }
    stopper.abort();

    let cpu = Cpu::now().since(cpu0);
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
    let expected = receivers as u64 * messages;
    let lost = expected.saturating_sub(unique);
    let span = match (sender_result.first_send, last) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    let deliveries_per_sec = unique as f64 / span;
    let s = lat.summary();
    let ok = errors.is_empty()
        && lost == 0
        && dups == 0
        && ooo == 0
        && bad == 0
        && sender_result.sent == messages;
    let summary = format!(
        "broadcast ws://{}{}: 1 sender -> {receivers} receivers, {} of {messages} messages sent at {:.0}/s (asked {rate}), \
         {unique}/{expected} deliveries = {deliveries_per_sec:.0} deliveries/s over {span:.2} s, \
         latency p50 {} p99 {} max {}; lost {lost}, duplicates {dups}, out of order {ooo}, bad {bad}, \
         sender got {}/{} of its own; errors {}, disconnects {disconnects}, close errors {}; \
         loadgen CPU {:.2} s (user {:.2} + sys {:.2}); wall {wall:.1} s{}",
        target.host_header,
        target.path,
        sender_result.sent,
        sender_result.sent as f64 / sender_result.send_seconds,
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.max_us),
        sender_result.own_received,
        messages,
        errors.len(),
        close_errors.len(),
        cpu.total(),
        cpu.user,
        cpu.sys,
        if errors.is_empty() { String::new() } else { format!("; first errors: {}", first_errors(&errors, 3)) },
    );
    let json = Json::new("broadcast")
        .str(
            "url",
            &format!("ws://{}{}", target.host_header, target.path),
        )
        .int("receivers", receivers as u64)
        .int("messages", messages)
        .int("sent", sender_result.sent)
        .num("rate_asked", rate)
        .num(
            "rate_sent",
            sender_result.sent as f64 / sender_result.send_seconds,
        )
        .int("size", size as u64)
        .int("deliveries", unique)
        .int("expected", expected)
        .num("deliveries_per_sec", deliveries_per_sec)
        .num("delivery_span_s", span)
        .latency("", &s)
        .int("lost", lost)
        .int("duplicates", dups)
        .int("out_of_order", ooo)
        .int("bad", bad)
        .int("sender_own_received", sender_result.own_received)
        .int("errors", errors.len() as u64)
        .int("disconnects", disconnects)
        .int("close_errors", close_errors.len() as u64)
        .str("first_errors", &first_errors(&errors, 3))
        .cpu(cpu, wall)
        .bool("ok", ok)
        .finish();
    Ok(Outcome { summary, json, ok })
}

struct SendResult {
    sent: u64,
    send_seconds: f64,
    first_send: Option<Instant>,
    own_received: u64,
    error: Option<String>,
}

/// The sender: sync round, then `messages` messages paced at `rate` (sent in small
/// bursts every millisecond, each stamped when encoded), reading its own copies of the
/// broadcast all along so that its send queue on the server never backs up.
async fn send(
    mut c: Conn,
    shared: Rc<Shared>,
    receivers: usize,
    messages: u64,
    rate: f64,
    size: usize,
    drain: Duration,
) -> SendResult {
    let mut r = SendResult {
        sent: 0,
        send_seconds: f64::NAN,
        first_send: None,
        own_received: 0,
        error: None,
    };
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut payload = vec![b'x'; size];
    let mut last_seq: Option<u64> = None;
    let tick = Duration::from_millis(1);
    let sync_every = Duration::from_millis(100);
    let sync_deadline = Instant::now() + Duration::from_secs(10);
    let mut sync_round = 0u64;
    let mut next_tick = tokio::time::Instant::now();
    let mut start: Option<Instant> = None;
    let mut done_at: Option<tokio::time::Instant> = None;

    loop {
        let reading = tokio::select! {
            res = c.reader.fill(&mut c.stream) => Some(res),
            _ = tokio::time::sleep_until(next_tick), if done_at.is_none() => None,
            _ = tokio::time::sleep_until(done_at.unwrap_or_else(tokio::time::Instant::now) + drain), if done_at.is_some() => {
                r.error = Some(format!("got {} of its own {messages} messages back", r.own_received));
                break;
            }
        };
        match reading {
            Some(Ok(0)) => {
                r.error = Some("server closed the TCP stream".into());
                return r;
            }
            Some(Err(e)) => {
                r.error = Some(format!("read: {e}"));
                return r;
            }
            Some(Ok(_)) => {
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
                                r.error = Some(format!("own message out of order or garbled: {seq:?} after {last_seq:?}"));
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
            None => {
                let now = Instant::now();
                match start {
                    None if shared.synced.get() < receivers => {
                        if now > sync_deadline {
                            r.error = Some(format!(
                                "only {} of {receivers} receivers saw a sync message within 10 s",
                                shared.synced.get()
                            ));
                            return r;
                        }
                        let mut p = *b"S0000000000000000";
                        put_hex(&mut p[1..], sync_round);
                        sync_round += 1;
                        ws::encode(&mut out, OP_TEXT, &p, &mut c.rng);
                        next_tick += sync_every;
                    }
                    None => {
                        phase("synced", &format!("rounds={sync_round}"));
                        start = Some(now);
                        r.first_send = Some(now);
                        next_tick = tokio::time::Instant::now();
                    }
                    Some(s0) => {
                        let due = (((now - s0).as_secs_f64() * rate) as u64 + 1).min(messages);
                        while r.sent < due {
                            put_hex(&mut payload[1..17], r.sent);
                            let t = Instant::now() - shared.base;
                            put_hex(&mut payload[17..33], t.as_nanos() as u64);
                            payload[0] = b'B';
                            ws::encode(&mut out, OP_TEXT, &payload, &mut c.rng);
                            r.sent += 1;
                        }
                        if r.sent == messages {
                            r.send_seconds = (Instant::now() - s0).as_secs_f64();
                            done_at = Some(tokio::time::Instant::now());
                        } else {
                            next_tick += tick;
                            let now_t = tokio::time::Instant::now();
                            if next_tick < now_t {
                                next_tick = now_t;
                            }
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = c.stream.write_all(&out).await {
                r.error = Some(format!("write: {e}"));
                return r;
            }
            out.clear();
        }
        if done_at.is_some() && r.own_received >= messages {
            break;
        }
    }
    if let Err(e) = ws::close(
        &mut c.stream,
        &mut c.reader,
        &mut c.rng,
        true,
        Duration::from_secs(5),
    )
    .await
    {
        if r.error.is_none() {
            r.error = Some(format!("close: {e}"));
        }
    }
    r
}

/// A receiver: counts every `B` message once, checks the order, and records latency
/// from the send stamp. Returns when it has all of them or is told to stop.
async fn receive(
    mut c: Conn,
    shared: Rc<Shared>,
    messages: u64,
    mut stop: watch::Receiver<bool>,
    close: bool,
) -> RecvResult {
    let mut r = RecvResult {
        lat: Latencies::with_capacity(messages as usize),
        ..Default::default()
    };
    let mut seen = vec![0u64; (messages as usize).div_ceil(64)];
    let mut last_seq: Option<u64> = None;
    let mut synced = false;
    let mut out = Vec::new();
    while r.unique < messages {
        let res = tokio::select! {
            res = c.reader.fill(&mut c.stream) => res,
            _ = stop.changed() => break,
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
                            let (Some(seq), Some(ts)) = (get_hex(&d[1..17]), get_hex(&d[17..33]))
                            else {
                                r.bad += 1;
                                continue;
                            };
                            if seq >= messages {
                                r.bad += 1;
                                continue;
                            }
                            let (w, b) = ((seq / 64) as usize, seq % 64);
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
                    let code =
                        (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
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
    if r.unique < messages && r.error.is_none() {
        r.error = Some(format!("stopped with {} of {messages} messages", r.unique));
    }
    if close {
        if let Err(e) = ws::close(
            &mut c.stream,
            &mut c.reader,
            &mut c.rng,
            true,
            Duration::from_secs(5),
        )
        .await
        {
            r.close_error = Some(e);
        }
    }
    r
}
