//! loadgen: drives a Roost server over WebSocket from one thread and reports
//! throughput, latency and its own CPU time.
//!
//!   loadgen echo      --url ws://127.0.0.1:PORT/ws   --connections 50 --inflight 16 --size 32 --duration 10 --warmup 2
//!   loadgen pingpong  --url ws://127.0.0.1:PORT/ws   --count 10000
//!   loadgen broadcast --url ws://127.0.0.1:PORT/chat --receivers 100 --messages 1000 --rate 1000
//!   loadgen broadcast --url ws://127.0.0.1:PORT/chat --receivers 1000 --rate 0 --window 64 --duration 5
//!   loadgen idle      --url ws://127.0.0.1:PORT/ws   --connections 10000 --hold 30
//!   loadgen connrate  --url ws://127.0.0.1:PORT/ws   --concurrency 16 --duration 5 --warmup 1
//!
//! Each mode prints `PHASE ...` progress lines, one human-readable summary line and one
//! `RESULT {json}` line, and exits 1 when anything went wrong (bad or lost replies,
//! failed connections, unexpected disconnects), 2 on bad usage.
//!
//! Every mode brackets the span it measures with `PHASE measure_start` and `PHASE
//! measure_end`, and its JSON reports this process's CPU time (user + sys, from
//! getrusage) over that span as `cpu_seconds`, with `wall_seconds` and `cpu_share`
//! (CPU seconds per wall second), so that a driver can set the load generator's CPU
//! share beside the server's, sampled at the same two lines. `cpu_s` and `wall_s`
//! cover the whole run.
//!
//! Everything runs on a current-thread tokio runtime, so the load generator occupies
//! at most one core; `taskset` it to a core of its own.

mod broadcast;
mod common;
mod connrate;
mod echo;
mod idle;
mod pingpong;
mod stats;
mod window;
mod ws;

use std::collections::HashMap;
use std::process::ExitCode;

use serde::Serialize;

const USAGE: &str = "\
usage: loadgen MODE [--flag value]...

modes and flags (defaults in brackets):
  echo       --url URL --connections [50] --inflight [16] --size [32] --duration [10] --warmup [2]
             --concurrency [256] --stall-timeout [10]
             closed loop: each connection keeps `inflight` messages outstanding
  pingpong   --url URL --count [10000] --size [32] --warmup-count [count/10, max 1000]
             one connection, one message at a time: round-trip p50/p99
  broadcast  --url URL --receivers [100] (--messages [1000] | --duration SECONDS)
             --rate [1000] --window [64] --size [64] --concurrency [256] --drain-timeout [10]
             one sender, `receivers` receivers on a broadcast route. --rate R sends R
             messages/s; --rate 0 saturates: at most `window` messages outstanding, a
             message being outstanding until every receiver has it. --duration sends for
             that long instead of a fixed --messages count
  idle       --url URL --connections [10000] --hold [10] --concurrency [256]
             --connect-timeout [30]
             opens connections, holds them idle (answering pings), closes them
  connrate   --url URL --concurrency [16] --duration [5] --warmup [1] --size [32]
             --connect-timeout [10] --linger-zero [1]
             connection churn: each worker loops connect, handshake, one echo, close
             handshake, EOF; cycles finished in the window give connections/s.
             --connect-timeout bounds each step of a cycle (handshake, echo, close).
             --linger-zero 1 drops each socket with SO_LINGER 0 once the close handshake
             is complete (no TIME_WAIT left on the server's side); 0 closes with a FIN

URL is ws://HOST:PORT/PATH. Durations and timeouts are in seconds.
Output: PHASE lines while running (measure_start and measure_end bracket the span that
cpu_seconds/wall_seconds cover), a summary line, and `RESULT {json}`.
";

/// `--key value` flags; every flag given must be used by the mode.
pub struct Args {
    values: HashMap<String, String>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut it = raw.iter();
        while let Some(flag) = it.next() {
            let key = flag.strip_prefix("--").ok_or_else(|| format!("expected a --flag, got {flag:?}"))?;
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
                    (key.to_string(), v.clone())
                }
            };
            if values.insert(key.clone(), value).is_some() {
                return Err(format!("--{key} given twice"));
            }
        }
        Ok(Args { values, used: Default::default() })
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.used.borrow_mut().push(key.to_string());
        self.values.get(key).cloned()
    }

    pub fn required(&self, key: &str) -> Result<String, String> {
        self.str(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub fn u64(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v.replace('_', "").parse().map_err(|_| format!("--{key}: not a whole number: {v:?}")),
        }
    }

    pub fn f64(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(format!("--{key}: not a non-negative number: {v:?}")),
            },
        }
    }

    /// Fails on any flag the mode did not read.
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        let mut unknown: Vec<_> = self.values.keys().filter(|k| !used.contains(k)).collect();
        unknown.sort();
        match unknown.first() {
            Some(k) => Err(format!("unknown flag --{k} for this mode")),
            None => Ok(()),
        }
    }
}

/// What a mode hands back: its summary line, its JSON, and whether it went well.
pub struct Outcome {
    pub summary: String,
    pub json: String,
    pub ok: bool,
}

impl Outcome {
    pub fn new(summary: String, report: &impl Serialize, ok: bool) -> Outcome {
        let json = serde_json::to_string(report).expect("a report is a flat object of plain values");
        Outcome { summary, json, ok }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let Some(mode) = argv.get(1).cloned() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if mode == "-h" || mode == "--help" || mode == "help" {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(&argv[2..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    stats::raise_nofile();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        match mode.as_str() {
            "echo" => echo::run(&args).await,
            "pingpong" => pingpong::run(&args).await,
            "broadcast" => broadcast::run(&args).await,
            "idle" => idle::run(&args).await,
            "connrate" => connrate::run(&args).await,
            other => Err(format!("unknown mode {other:?}")),
        }
    });
    match result {
        Ok(outcome) => {
            println!("{}", outcome.summary);
            println!("RESULT {}", outcome.json);
            if outcome.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            let usage = e.starts_with("--") || e.starts_with("unknown");
            eprintln!("loadgen {mode}: {e}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
