//! `idle`: opens many connections (a bounded number of handshakes at a time), holds
//! them open and idle for `--hold` seconds while answering the server's keepalive
//! pings, then closes them all with a close handshake.
//!
//! Prints `PHASE all_open connections=N ...` once every connection is open, so that a
//! driver can measure the server meanwhile, and `PHASE closing` when the hold ends.
//! `cpu_seconds`/`wall_seconds` cover the whole run (opening, hold and closing),
//! between `PHASE measure_start` and `PHASE measure_end`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use crate::cli::{non_negative, positive_whole, whole};
use crate::common::first_errors;
use crate::stats::{fmt_us, phase, Cpu, Latencies, LatencyFields, Num, RunFields, Span, SpanStart};
use crate::ws::{self, Rng, Target, OP_CLOSE, OP_PING, OP_PONG};
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    /// The server's route to connect to
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Connections to open and hold
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive_whole)]
    pub connections: u64,
    /// Seconds to hold them once all are open
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub hold: f64,
    /// Handshakes under way at once
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = whole)]
    pub concurrency: u64,
    /// Seconds each connection may take to open
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = non_negative)]
    pub connect_timeout: f64,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    connections: usize,
    opened: usize,
    open_seconds: Num,
    handshakes_per_sec: Num,
    #[serde(flatten)]
    handshake: LatencyFields,
    hold_s: Num,
    pings: u64,
    close_seconds: Num,
    connect_failures: usize,
    dropped: usize,
    close_errors: usize,
    first_errors: String,
    cpu_open_s: Num,
    #[serde(flatten)]
    measured: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

#[derive(Default)]
struct IdleResult {
    handshake: Option<Duration>,
    connect_error: Option<String>,
    /// The server ended the connection during the hold.
    dropped: Option<String>,
    pings: u64,
    close_error: Option<String>,
}

pub async fn run(args: &IdleArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let connections = args.connections as usize;
    let hold = args.hold;
    let concurrency = args.concurrency as usize;
    let connect_timeout = Duration::from_secs_f64(args.connect_timeout);
    let nofile = crate::stats::raise_nofile();
    if (nofile as usize) < connections + 64 {
        return Err(format!(
            "open-file limit is {nofile}, too low for {connections} connections; raise it (ulimit -n)"
        ));
    }

    let wall0 = Instant::now();
    let cpu0 = Cpu::now();
    let run_span = SpanStart::now();
    phase("measure_start", "");
    let sem = Rc::new(Semaphore::new(concurrency.max(1)));
    let settled = Rc::new(Cell::new(0usize));
    let opened = Rc::new(Cell::new(0usize));
    let all_settled = Rc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        let (sem, settled, opened, all_settled, target) =
            (sem.clone(), settled.clone(), opened.clone(), all_settled.clone(), target.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut r = IdleResult::default();
            let mut rng = Rng::new(0x1D1E ^ (i as u64) << 24);
            let connected = {
                let _permit = sem.acquire().await.expect("semaphore closed");
                let t = Instant::now();
                let res = tokio::time::timeout(connect_timeout, ws::connect(&target, &mut rng, 256)).await;
                (res, t.elapsed())
            };
            let settle = |ok: bool| {
                if ok {
                    opened.set(opened.get() + 1);
                }
                settled.set(settled.get() + 1);
                if settled.get() == connections {
                    all_settled.notify_one();
                }
            };
            let (mut stream, mut reader) = match connected {
                (Ok(Ok(sr)), d) => {
                    r.handshake = Some(d);
                    settle(true);
                    sr
                }
                (Ok(Err(e)), _) => {
                    r.connect_error = Some(e);
                    settle(false);
                    return r;
                }
                (Err(_), _) => {
                    r.connect_error = Some(format!("handshake timed out after {connect_timeout:?}"));
                    settle(false);
                    return r;
                }
            };
            // Hold: answer pings until told to stop; anything else from the server
            // (a close, EOF, an error) means the connection was dropped.
            let mut out = Vec::new();
            'hold: loop {
                let res = tokio::select! {
                    res = reader.fill(&mut stream) => res,
                    _ = stop.changed() => break 'hold,
                };
                match res {
                    Ok(0) => {
                        r.dropped = Some("server closed the TCP stream".into());
                        return r;
                    }
                    Err(e) => {
                        r.dropped = Some(format!("read: {e}"));
                        return r;
                    }
                    Ok(_) => {}
                }
                loop {
                    match reader.next() {
                        Ok(Some(m)) => match m.opcode {
                            OP_PING => {
                                r.pings += 1;
                                let p = m.data.to_vec();
                                ws::encode(&mut out, OP_PONG, &p, &mut rng);
                            }
                            OP_CLOSE => {
                                let code =
                                    (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                                r.dropped = Some(format!("server closed the connection with code {code:?}"));
                                return r;
                            }
                            OP_PONG => {}
                            op => {
                                r.dropped =
                                    Some(format!("unexpected message (opcode {op}) on an idle connection"));
                                return r;
                            }
                        },
                        Ok(None) => break,
                        Err(e) => {
                            r.dropped = Some(format!("protocol error: {e}"));
                            return r;
                        }
                    }
                }
                if !out.is_empty() {
                    if let Err(e) = stream.send(&out).await {
                        r.dropped = Some(format!("write: {e}"));
                        return r;
                    }
                    out.clear();
                }
            }
            // Closing: limit how many close handshakes run at once, like the opening.
            let _permit = sem.acquire().await.expect("semaphore closed");
            if let Err(e) = ws::close(&mut stream, &mut reader, &mut rng, true, Duration::from_secs(10)).await
            {
                r.close_error = Some(e);
            }
            r
        }));
    }

    if settled.get() < connections {
        all_settled.notified().await;
    }
    let open_seconds = wall0.elapsed().as_secs_f64();
    let open_cpu = Cpu::now().since(cpu0);
    let n_open = opened.get();
    phase(
        "all_open",
        &format!(
            "connections={n_open} failed={} seconds={open_seconds:.3} hold={hold}",
            connections - n_open
        ),
    );
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    phase("closing", "");
    let close_start = Instant::now();
    let _ = stop_tx.send(true);

    let mut hs = Latencies::with_capacity(connections);
    let mut connect_errors = Vec::new();
    let mut dropped = Vec::new();
    let mut close_errors = Vec::new();
    let mut pings = 0u64;
    for t in tasks {
        let r = t.await.map_err(|e| format!("connection task failed: {e}"))?;
        if let Some(d) = r.handshake {
            hs.push(d);
        }
        if let Some(e) = r.connect_error {
            connect_errors.push(e);
        }
        if let Some(e) = r.dropped {
            dropped.push(e);
        }
        if let Some(e) = r.close_error {
            close_errors.push(e);
        }
        pings += r.pings;
    }
    let close_seconds = close_start.elapsed().as_secs_f64();
    let run = run_span.end();
    phase("measure_end", "");
    let cpu = Cpu::now().since(cpu0);
    let wall = wall0.elapsed().as_secs_f64();
    let s = hs.summary();
    let ok = connect_errors.is_empty() && dropped.is_empty() && close_errors.is_empty();
    let all_errors = [connect_errors.clone(), dropped.clone(), close_errors.clone()].concat();
    let summary = format!(
        "idle {}: {n_open}/{connections} connections open in {open_seconds:.2} s \
         ({:.0} handshakes/s, {concurrency} at a time, handshake p50 {} p99 {} max {}), held {hold} s \
         ({pings} pings answered), closed in {close_seconds:.2} s; connect failures {}, dropped while idle {}, \
         close errors {}; {}, {:.2} s of it opening{}",
        target.url(),
        n_open as f64 / open_seconds,
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.max_us),
        connect_errors.len(),
        dropped.len(),
        close_errors.len(),
        run.describe(),
        open_cpu.total(),
        if all_errors.is_empty() { String::new() } else { format!("; first errors: {}", first_errors(&all_errors, 3)) },
    );
    let report = Report {
        mode: "idle",
        url: target.url(),
        connections,
        opened: n_open,
        open_seconds: Num(open_seconds),
        handshakes_per_sec: Num(n_open as f64 / open_seconds),
        handshake: s.fields("handshake_"),
        hold_s: Num(hold),
        pings,
        close_seconds: Num(close_seconds),
        connect_failures: connect_errors.len(),
        dropped: dropped.len(),
        close_errors: close_errors.len(),
        first_errors: first_errors(&all_errors, 3),
        cpu_open_s: Num(open_cpu.total()),
        measured: run,
        run: RunFields::new(cpu, wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}
