//! The command line: one subcommand per mode, each with its flags in its own module.

use clap::{Parser, Subcommand};

use crate::{broadcast, connrate, echo, http, idle, pingpong, pubsub};

// Wrapped by hand: clap wraps help only with a feature that needs the terminal's size.
const AFTER_HELP: &str = "\
URL is ws://HOST:PORT/PATH, or wss://HOST:PORT/PATH with --ca-file (http:// and
https:// for the http mode). Durations and timeouts are in seconds; whole numbers may
group digits with `_` (10_000). `loadgen MODE --help` describes a mode at length.

Output: PHASE lines while running (PHASE measure_start and PHASE measure_end bracket the
span that cpu_seconds and wall_seconds cover), a summary line, and `RESULT {json}`.
Exit status 1 when anything went wrong (bad or lost replies, failed connections,
unexpected disconnects), 2 on bad usage.";

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Drives a WebSocket (or HTTP) server from one thread and reports throughput, latency and its own CPU time",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
    /// PEM file of the certificate authorities that wss:// servers' certificates must
    /// chain to (needed for wss:// URLs)
    #[arg(long, value_name = "PEM", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Offer permessage-deflate (no context takeover either way), compress the messages
    /// sent and inflate those received; a server that does not accept it is an error
    #[arg(long, global = true)]
    pub compression: bool,
}

// Negative numbers are let through to the flags' own checks, which say what is wrong.
#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Closed loop: each connection keeps `inflight` messages outstanding
    ///
    /// Every reply must be "Echo: " + the message; each one is answered with a new
    /// message until the measured window (after the warm-up) ends.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Echo(echo::EchoArgs),
    /// One connection, one message at a time: round-trip p50/p99
    ///
    /// `--warmup-count` round trips first, then `--count` measured ones between PHASE
    /// measure_start and PHASE measure_end.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Pingpong(pingpong::PingpongArgs),
    /// One sender, `receivers` receivers on a broadcast route
    ///
    /// Every receiver must get every message, in order. `--rate R` sends R messages/s;
    /// `--rate 0` saturates: at most `--window` messages outstanding, a message being
    /// outstanding until every receiver has it. `--duration` sends for that long
    /// instead of a fixed `--messages` count.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Broadcast(broadcast::BroadcastArgs),
    /// `topics` publishers, each with `subscribers` subscribers of its own topic
    ///
    /// Subscribers connect to URL/sub?topic=tI and publishers to URL/pub?topic=tI; every
    /// subscriber must get every message of its topic, in order, and publishers get
    /// none. The publishers send concurrently, each paced as `broadcast`'s sender is
    /// (`--rate`, `--window`, `--messages` or `--duration` apply to each publisher).
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Pubsub(pubsub::PubsubArgs),
    /// Opens connections, holds them idle (answering pings), closes them
    ///
    /// PHASE all_open is printed once every connection is open and PHASE closing when
    /// the hold ends, so that a driver can measure the server meanwhile.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Idle(idle::IdleArgs),
    /// Connection churn: connect, handshake, one echo, close handshake, EOF, again
    ///
    /// Each worker loops over that cycle; cycles finished in the measured window give
    /// connections/s.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Connrate(connrate::ConnrateArgs),
    /// HTTP/1.1 keep-alive: each connection keeps `pipeline` GET requests outstanding
    ///
    /// Every response must be a 200 whose body has the expected length (and bytes, with
    /// --expect-body or --expect-body-file) on a connection kept open; each one is
    /// answered with a new request until the measured window (after the warm-up) ends.
    #[command(verbatim_doc_comment, allow_negative_numbers = true)]
    Http(http::HttpArgs),
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Echo(_) => "echo",
            Mode::Pingpong(_) => "pingpong",
            Mode::Broadcast(_) => "broadcast",
            Mode::Pubsub(_) => "pubsub",
            Mode::Idle(_) => "idle",
            Mode::Connrate(_) => "connrate",
            Mode::Http(_) => "http",
        }
    }
}

/// A whole number; `_` may group its digits.
pub fn whole(s: &str) -> Result<u64, String> {
    s.replace('_', "").parse().map_err(|_| "not a whole number".into())
}

pub fn positive_whole(s: &str) -> Result<u64, String> {
    match whole(s)? {
        0 => Err("must be positive".into()),
        n => Ok(n),
    }
}

/// A finite number of at least 0: seconds, or messages per second.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err("not a non-negative number".into()),
    }
}

pub fn positive(s: &str) -> Result<f64, String> {
    match non_negative(s)? {
        x if x > 0.0 => Ok(x),
        _ => Err("must be positive".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_parse_as_before() {
        assert_eq!(whole("10_000"), Ok(10_000));
        assert!(whole("x").is_err());
        assert!(positive_whole("0").is_err());
        assert_eq!(non_negative("1.5"), Ok(1.5));
        assert!(non_negative("-1").is_err());
        assert!(non_negative("nan").is_err());
        assert!(non_negative("inf").is_err());
        assert!(positive("0").is_err());
    }

    #[test]
    fn flags_take_both_spellings_and_once_only() {
        let cli =
            Cli::try_parse_from(["loadgen", "echo", "--url=ws://127.0.0.1:9/ws", "--size", "1_0"]).unwrap();
        let Mode::Echo(a) = cli.mode else { panic!("not echo") };
        assert_eq!((a.size, a.connections, a.inflight), (10, 50, 16));
        assert!(Cli::try_parse_from([
            "loadgen",
            "echo",
            "--url",
            "ws://127.0.0.1:9/",
            "--size",
            "1",
            "--size",
            "2"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["loadgen", "echo", "--url", "ws://127.0.0.1:9/", "--bogus", "1"]).is_err()
        );
        assert!(Cli::try_parse_from(["loadgen", "echo"]).is_err());
    }

    #[test]
    fn http_takes_an_http_url_and_exactly_one_expectation() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["loadgen", "http", "--url", "http://127.0.0.1:9/hello"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let Mode::Http(a) = parse(&["--expect-length", "4_096"]).unwrap().mode else { panic!("not http") };
        assert_eq!((a.expect_length, a.connections, a.pipeline), (Some(4096), 50, 1));
        assert!(parse(&["--expect-body", "hi", "--pipeline", "4"]).is_ok());
        assert!(parse(&[]).is_err(), "an expectation is required");
        assert!(parse(&["--expect-length", "2", "--expect-body", "hi"]).is_err());
        assert!(parse(&["--expect-length", "2", "--pipeline", "0"]).is_err());
        assert!(Cli::try_parse_from([
            "loadgen",
            "http",
            "--url",
            "ws://127.0.0.1:9/",
            "--expect-length",
            "1"
        ])
        .is_err());
    }

    #[test]
    fn tls_and_compression_flags_go_after_the_mode() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "idle",
            "--url",
            "wss://127.0.0.1:9/ws",
            "--ca-file",
            "ca.pem",
            "--compression",
        ])
        .unwrap();
        assert_eq!(cli.ca_file.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert!(cli.compression);
        let Mode::Idle(a) = cli.mode else { panic!("not idle") };
        assert!(a.url.tls);
        let cli = Cli::try_parse_from(["loadgen", "echo", "--url", "ws://127.0.0.1:9/", "--payload", "json"])
            .unwrap();
        assert!(cli.ca_file.is_none() && !cli.compression);
        let Mode::Echo(a) = cli.mode else { panic!("not echo") };
        assert_eq!(a.payload, crate::payload::Payload::Json);
        assert!(Cli::try_parse_from(["loadgen", "echo", "--url", "ws://127.0.0.1:9/", "--payload", "xml"])
            .is_err());
    }
}
