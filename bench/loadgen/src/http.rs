//! `http`: HTTP/1.1 keep-alive throughput. Each of `connections` connections keeps
//! `pipeline` GET requests for the URL outstanding (1: one request at a time, each sent
//! as soon as the previous response is in); every response is checked and answered by
//! a new request until the measured window (after the warm-up) ends.
//!
//! A response must have status 200, a `Content-Length` equal to the expected body's
//! length (`--expect-length`, or the length of `--expect-body` / `--expect-body-file`,
//! whose bytes the body must then match exactly) and must keep the connection open: a
//! `Connection: close`, an HTTP/1.0 answer without keep-alive, a body framed any other
//! way (chunked), or a response with nothing outstanding is a bad response, which ends
//! that connection and fails the run.
//!
//! Latency is from the moment a request's batch is written to the moment its
//! response's last byte is read; with pipelining it includes the wait behind the
//! responses before it, as a client would see it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::{non_negative, positive, positive_whole, whole};
use crate::common::{first_errors, measured_window, read_more, send_batch, Tally};
use crate::readbuf::ReadBuf;
use crate::stats::{fmt_us, phase, Cpu, Latencies, LatencyFields, Num, RunFields, Span};
use crate::ws::{self, Stream, Target};
use crate::Outcome;

/// The longest response head accepted (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("expected").required(true).multiple(false)))]
pub struct HttpArgs {
    /// The URL to GET: http://HOST:PORT/PATH (https:// with --ca-file)
    #[arg(long, value_name = "URL", value_parser = Target::parse_http)]
    pub url: Target,
    /// Connections, each kept busy
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = positive_whole)]
    pub connections: u64,
    /// Requests outstanding on each connection (pipelined beyond 1)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive_whole)]
    pub pipeline: u64,
    /// Bytes every response body must have
    #[arg(long, value_name = "BYTES", group = "expected", value_parser = whole)]
    pub expect_length: Option<u64>,
    /// Text every response body must be, byte for byte
    #[arg(long, value_name = "TEXT", group = "expected")]
    pub expect_body: Option<String>,
    /// File every response body must be, byte for byte
    #[arg(long, value_name = "PATH", group = "expected")]
    pub expect_body_file: Option<PathBuf>,
    /// Seconds measured, after the warm-up
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub duration: f64,
    /// Seconds of load before the measured window
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = non_negative)]
    pub warmup: f64,
    /// Seconds a connection may wait for a response before it counts as stalled
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub stall_timeout: f64,
}

/// What every response body must be.
enum Expected {
    Length(usize),
    Body(Vec<u8>),
}

impl Expected {
    fn from_args(args: &HttpArgs) -> Result<Expected, String> {
        if let Some(n) = args.expect_length {
            return Ok(Expected::Length(n as usize));
        }
        if let Some(text) = &args.expect_body {
            return Ok(Expected::Body(text.as_bytes().to_vec()));
        }
        let path = args.expect_body_file.as_ref().expect("clap requires one of the three");
        std::fs::read(path).map(Expected::Body).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    fn len(&self) -> usize {
        match self {
            Expected::Length(n) => *n,
            Expected::Body(b) => b.len(),
        }
    }
}

/// A response's head, parsed.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, the blank line included: the body starts there.
    len: usize,
    content_length: usize,
    /// The server will close the connection after this response.
    closes: bool,
}

/// Parses the response head at the start of `data`: `None` while it is incomplete,
/// an error for what is not an HTTP/1.x response this mode can follow.
fn parse_head(data: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if data.len() > MAX_HEAD {
            Err(format!("response head longer than {MAX_HEAD} bytes"))
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&data[..end]).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let (version, rest) = status_line.split_once(' ').unwrap_or((status_line, ""));
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(format!("not an HTTP/1.x status line: {status_line:?}")),
    };
    let code = rest.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
    let Some(status) = code.and_then(|c| c.parse().ok()) else {
        return Err(format!("bad status line: {status_line:?}"));
    };
    let mut content_length = None;
    let (mut close, mut keep_alive) = (false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line: {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| format!("bad Content-Length: {value:?}"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err("two different Content-Length headers".into());
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("Transfer-Encoding {value:?}: only Content-Length bodies are expected"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let Some(content_length) = content_length else {
        return Err(format!("status {status} without Content-Length"));
    };
    Ok(Some(Head { status, len: end + 4, content_length, closes: close || (http10 && !keep_alive) }))
}

#[derive(Default)]
struct ConnResult {
    /// Responses received inside the measured window.
    measured: u64,
    /// Responses received at all.
    total: u64,
    lat: Latencies,
    bad_responses: u64,
    /// Why the connection failed before its responses were all in, if it did.
    error: Option<String>,
    /// The server closed the connection before its responses were all in.
    disconnected: bool,
}

struct Plan {
    pipeline: usize,
    request: Vec<u8>,
    expected: std::rc::Rc<Expected>,
    measure_start: Instant,
    measure_end: Instant,
    stall: Duration,
}

/// The RESULT line.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    connections: usize,
    pipeline: usize,
    body_bytes: usize,
    body_checked: bool,
    duration_s: Num,
    warmup_s: Num,
    requests: u64,
    requests_total: u64,
    requests_per_sec: Num,
    #[serde(flatten)]
    latency: LatencyFields,
    per_conn_min: u64,
    per_conn_max: u64,
    errors: usize,
    bad_responses: u64,
    disconnects: u64,
    first_errors: String,
    #[serde(flatten)]
    window: Span,
    #[serde(flatten)]
    run: RunFields,
    ok: bool,
}

pub async fn run(args: &HttpArgs) -> Result<Outcome, String> {
    let target = &args.url;
    let connections = args.connections as usize;
    let pipeline = args.pipeline as usize;
    let (duration, warmup) = (args.duration, args.warmup);
    let expected = std::rc::Rc::new(Expected::from_args(args)?);
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", target.path, target.host_header).into_bytes();

    let wall0 = Instant::now();
    let cpu0 = Cpu::now();
    let mut opening = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        opening.push(tokio::task::spawn_local(async move {
            tokio::time::timeout(Duration::from_secs(30), ws::open(&target))
                .await
                .unwrap_or_else(|_| Err("connect timed out after 30 s".into()))
        }));
    }
    let mut streams = Vec::with_capacity(connections);
    let mut connect_errors = Vec::new();
    for t in opening {
        match t.await.map_err(|e| format!("connect task failed: {e}"))? {
            Ok(s) => streams.push(s),
            Err(e) => connect_errors.push(e),
        }
    }
    if !connect_errors.is_empty() {
        return Err(format!(
            "{} of {connections} connections failed: {}",
            connect_errors.len(),
            first_errors(&connect_errors, 3)
        ));
    }
    phase("connected", &format!("connections={connections}"));

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(warmup);
    let measure_end = measure_start + Duration::from_secs_f64(duration);
    let window = measured_window(warmup, measure_start, measure_end);
    let mut tasks = Vec::with_capacity(connections);
    for stream in streams {
        let plan = Plan {
            pipeline,
            request: request.clone(),
            expected: expected.clone(),
            measure_start,
            measure_end,
            stall: Duration::from_secs_f64(args.stall_timeout),
        };
        tasks.push(tokio::task::spawn_local(drive(stream, plan)));
    }
    let mut tally = Tally::default();
    for t in tasks {
        let r = t.await.map_err(|e| format!("connection task failed: {e}"))?;
        tally.add((r.measured, r.total, r.bad_responses), r.disconnected, r.error, r.lat);
    }
    let window = window.await.map_err(|e| format!("phase task failed: {e}"))?;
    let cpu = Cpu::now().since(cpu0);
    let wall = wall0.elapsed().as_secs_f64();
    let (fewest, most) = tally.spread();
    let Tally { measured, total, bad, disconnects, errors, lat, .. } = tally;
    let lat = lat.summary();
    let rate = measured as f64 / duration;
    let ok = errors.is_empty() && bad == 0 && measured > 0;
    let body_checked = matches!(*expected, Expected::Body(_));

    let summary = format!(
        "http {url}: {connections} conns x {pipeline} in flight, {body} B bodies{checked}: {rate:.0} req/s over {duration} s \
         ({measured} responses; {total} in all), latency p50 {p50} p99 {p99} max {max}; \
         per connection {fewest}..{most}; errors {nerr}, bad responses {bad}, server disconnects {disconnects}; \
         measured window: {described}; whole run: loadgen CPU {cpu:.2} s, wall {wall:.1} s{first}",
        url = target.url(),
        body = expected.len(),
        checked = if body_checked { " (checked byte for byte)" } else { "" },
        p50 = fmt_us(lat.p50_us),
        p99 = fmt_us(lat.p99_us),
        max = fmt_us(lat.max_us),
        nerr = errors.len(),
        described = window.describe(),
        cpu = cpu.total(),
        first = if errors.is_empty() {
            String::new()
        } else {
            format!("; first errors: {}", first_errors(&errors, 3))
        },
    );
    let report = Report {
        mode: "http",
        url: target.url(),
        connections,
        pipeline,
        body_bytes: expected.len(),
        body_checked,
        duration_s: Num(duration),
        warmup_s: Num(warmup),
        requests: measured,
        requests_total: total,
        requests_per_sec: Num(rate),
        latency: lat.fields(""),
        per_conn_min: fewest,
        per_conn_max: most,
        errors: errors.len(),
        bad_responses: bad,
        disconnects,
        first_errors: first_errors(&errors, 3),
        window,
        run: RunFields::new(cpu, wall),
        ok,
    };
    Ok(Outcome::new(summary, &report, ok))
}

/// Checks one whole response (head and body) against what every response must be.
fn check(head: &Head, body: &[u8], expected: &Expected) -> Result<(), String> {
    if head.status != 200 {
        return Err(format!("status {} ({} body bytes: {:?})", head.status, body.len(), preview(body)));
    }
    if head.closes {
        return Err("the server closes the connection after this response (no keep-alive)".into());
    }
    if body.len() != expected.len() {
        return Err(format!("Content-Length {}, expected {}", body.len(), expected.len()));
    }
    if let Expected::Body(want) = expected {
        if body != want.as_slice() {
            let at = body.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!("body differs from the expected one at byte {at}"));
        }
    }
    Ok(())
}

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned()
}

async fn drive(mut stream: Stream, plan: Plan) -> ConnResult {
    let mut r = ConnResult { lat: Latencies::with_capacity(1 << 14), ..Default::default() };
    let mut bytes = ReadBuf::new((plan.pipeline * (plan.expected.len() + 256)).clamp(4096, 1 << 20));
    let mut out: Vec<u8> = Vec::with_capacity(plan.pipeline * plan.request.len());
    let mut pending: VecDeque<Instant> = VecDeque::with_capacity(plan.pipeline + 1);

    let now = Instant::now();
    for _ in 0..plan.pipeline {
        out.extend_from_slice(&plan.request);
        pending.push_back(now);
    }
    if let Err(e) = send_batch(&mut stream, &mut out, pending.iter_mut()).await {
        r.error = Some(e);
        return r;
    }

    'outer: while !pending.is_empty() {
        if let Err(stopped) = read_more(bytes.fill(&mut stream), plan.stall, pending.len(), "responses").await
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
            let head = match parse_head(bytes.data()) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(e) => {
                    r.bad_responses += 1;
                    r.error = Some(e);
                    break 'outer;
                }
            };
            let whole = head.len + head.content_length;
            if bytes.data().len() < whole {
                bytes.expect(whole);
                break;
            }
            let at = bytes.take(whole);
            let verdict = check(&head, &bytes.taken(at)[head.len..], &plan.expected);
            let Some(sent) = pending.pop_front() else {
                r.bad_responses += 1;
                r.error = Some("a response to no request (more responses than requests)".into());
                break 'outer;
            };
            if let Err(e) = verdict {
                r.bad_responses += 1;
                r.error = Some(e);
                break 'outer;
            }
            r.total += 1;
            if in_window {
                r.measured += 1;
                r.lat.push(now - sent);
            }
            if sending {
                out.extend_from_slice(&plan.request);
                pending.push_back(now);
                fresh += 1;
            }
        }
        let len = pending.len();
        if let Err(e) = send_batch(&mut stream, &mut out, pending.range_mut(len - fresh..)).await {
            r.error = Some(e);
            r.disconnected = true;
            break;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 2\r\n\r\nhi";

    #[test]
    fn parses_a_keep_alive_response_and_waits_for_a_whole_head() {
        let head = parse_head(OK).unwrap().unwrap();
        assert_eq!(head, Head { status: 200, len: OK.len() - 2, content_length: 2, closes: false });
        assert_eq!(parse_head(&OK[..20]).unwrap(), None);
        assert!(check(&head, b"hi", &Expected::Body(b"hi".to_vec())).is_ok());
        assert!(check(&head, b"hi", &Expected::Length(2)).is_ok());
    }

    #[test]
    fn a_closing_or_http10_response_is_not_kept_alive() {
        let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_head(closing).unwrap().unwrap().closes);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_head(old).unwrap().unwrap().closes);
        let old_kept = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_head(old_kept).unwrap().unwrap().closes);
        let head = parse_head(closing).unwrap().unwrap();
        assert!(check(&head, b"", &Expected::Length(0)).unwrap_err().contains("keep-alive"));
    }

    #[test]
    fn rejects_what_it_cannot_follow() {
        assert!(parse_head(b"HTTP/2 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap_err().contains("Content-Length"));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn checks_status_length_and_bytes() {
        let head = |status, n| Head { status, len: 0, content_length: n, closes: false };
        let e = check(&head(404, 9), b"not found", &Expected::Length(9)).unwrap_err();
        assert!(e.contains("status 404") && e.contains("not found"), "{e}");
        assert!(check(&head(200, 3), b"abc", &Expected::Length(4)).unwrap_err().contains("Content-Length 3"));
        let e = check(&head(200, 3), b"abd", &Expected::Body(b"abc".to_vec())).unwrap_err();
        assert!(e.contains("byte 2"), "{e}");
    }
}
