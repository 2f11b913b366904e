//! loadgen: drives a Roost server over WebSocket (or plain HTTP) from one thread and
//! reports throughput, latency and its own CPU time.
//!
//!   loadgen echo      --url ws://127.0.0.1:PORT/ws   --connections 50 --inflight 16 --size 32 --duration 10 --warmup 2
//!   loadgen pingpong  --url ws://127.0.0.1:PORT/ws   --count 10000
//!   loadgen broadcast --url ws://127.0.0.1:PORT/chat --receivers 100 --messages 1000 --rate 1000
//!   loadgen broadcast --url ws://127.0.0.1:PORT/chat --receivers 1000 --rate 0 --window 64 --duration 5
//!   loadgen pubsub    --url ws://127.0.0.1:PORT      --topics 10 --subscribers 100 --rate 0 --duration 5
//!   loadgen idle      --url ws://127.0.0.1:PORT/ws   --connections 10000 --hold 30
//!   loadgen connrate  --url ws://127.0.0.1:PORT/ws   --concurrency 16 --duration 5 --warmup 1
//!   loadgen echo      --url wss://127.0.0.1:PORT/ws  --ca-file ca.pem --size 4096 --payload json --compression
//!   loadgen http      --url http://127.0.0.1:PORT/hello --connections 50 --pipeline 1 --expect-body "Hello, world!"
//!
//! Every WebSocket mode speaks wss:// (TLS, trusting the certificate authorities of
//! `--ca-file`) as well as ws://, and with `--compression` offers permessage-deflate and
//! requires the server to accept it (see `ws.rs` and `deflate.rs`). The `http` mode
//! drives plain HTTP/1.1 (keep-alive) GET requests, over https:// with `--ca-file`.
//!
//! `loadgen MODE --help` lists a mode's flags and their defaults.
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
mod cli;
mod common;
mod connrate;
mod deflate;
mod echo;
mod fanout;
mod http;
mod idle;
mod payload;
mod pingpong;
mod pubsub;
mod readbuf;
mod stats;
mod window;
mod ws;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use serde::Serialize;

use cli::{Cli, Mode};

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
    let cli = Cli::parse();
    // The one rule between flags that clap cannot state: a usage error like the others.
    let fanout = match &cli.mode {
        Mode::Broadcast(args) => Some(&args.fanout),
        Mode::Pubsub(args) => Some(&args.fanout),
        _ => None,
    };
    if let Some(Err(e)) = fanout.map(|f| f.check()) {
        let mut cmd = Cli::command();
        cmd.build();
        let sub = cmd.find_subcommand_mut(cli.mode.name()).expect("every mode is a subcommand");
        sub.error(clap::error::ErrorKind::ArgumentConflict, e).exit();
    }
    match ws::ClientOptions::new(cli.ca_file.as_deref(), cli.compression) {
        Ok(options) => options.install(),
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    }
    stats::raise_nofile();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        match &cli.mode {
            Mode::Echo(args) => echo::run(args).await,
            Mode::Pingpong(args) => pingpong::run(args).await,
            Mode::Broadcast(args) => broadcast::run(args).await,
            Mode::Pubsub(args) => pubsub::run(args).await,
            Mode::Idle(args) => idle::run(args).await,
            Mode::Connrate(args) => connrate::run(args).await,
            Mode::Http(args) => http::run(args).await,
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
            eprintln!("loadgen {}: {e}", cli.mode.name());
            ExitCode::from(1)
        }
    }
}
