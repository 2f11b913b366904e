//! Answers to HTTP requests and upgrade requests raced through the C ABI: three threads
//! answer every request the poller hands out at once, with valid and invalid answers,
//! while real clients send requests, upgrade, and leave without waiting; some requests
//! are left to time out; at the end the server is stopped under it all. Every call
//! gives a documented status, a request is answered at most once, and every client
//! gets a well-formed answer (or, once the stop began, the end of its connection).

mod common;

use std::collections::{HashMap, VecDeque};
use std::ffi::c_int;
use std::io::{BufRead, BufReader, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::fd_readable;
use roost::ffi::*;
use roost_status::*;

/// Answerers that race on each request.
const RACERS: u64 = 3;
/// How long a request may wait for its answer before the client gets 503.
const RESPONSE_TIMEOUT_MS: u32 = 300;

/// A server handle shared by the test's threads (every function but poll may be called
/// from any thread).
#[derive(Clone, Copy)]
struct Handle(*mut roost_server);
// SAFETY: the ABI allows calls on one handle from any thread; only the poller polls.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// The requests handed to the answerers, each once per racer.
#[derive(Default)]
struct Work {
    queue: Mutex<VecDeque<(u64, roost_event_kind, u64)>>,
    ready: Condvar,
    done: AtomicBool,
}

impl Work {
    fn push(&self, id: u64, kind: roost_event_kind) {
        let mut queue = self.queue.lock().unwrap();
        queue.extend((0..RACERS).map(|racer| (id, kind, racer)));
        self.ready.notify_all();
    }

    fn pop(&self) -> Option<(u64, roost_event_kind, u64)> {
        let mut queue = self.queue.lock().unwrap();
        loop {
            if let Some(item) = queue.pop_front() {
                return Some(item);
            }
            if self.done.load(Ordering::Acquire) {
                return None;
            }
            queue = self.ready.wait_timeout(queue, Duration::from_millis(20)).unwrap().0;
        }
    }
}

fn respond(s: Handle, id: u64, status: u16, headers: &[u8], body: &[u8]) -> roost_status {
    // SAFETY: the slices are live for the call.
    unsafe {
        roost_request_respond(s.0, id, status, headers.as_ptr(), headers.len(), body.as_ptr(), body.len())
    }
}

/// One racer's answer to one request; returns what it called, the status, the statuses
/// allowed, and whether an OK means the request was answered.
fn answer(
    s: Handle,
    id: u64,
    kind: roost_event_kind,
    racer: u64,
) -> (&'static str, roost_status, Vec<roost_status>, bool) {
    let gone_or = |status| vec![status, ROOST_NOT_FOUND];
    match (kind, (id.wrapping_mul(7) + racer) % 5) {
        // The core checks header lines before it looks for the request.
        (_, 0) => (
            "respond with Connection",
            respond(s, id, 200, b"Connection: close\r\n", b""),
            vec![ROOST_INVALID_ARGUMENT],
            false,
        ),
        (roost_event_kind::ROOST_EVENT_REQUEST, 1) => {
            ("respond 99", respond(s, id, 99, b"", b""), gone_or(ROOST_INVALID_ARGUMENT), false)
        }
        (roost_event_kind::ROOST_EVENT_REQUEST, 2) => {
            ("accept a request", roost_upgrade_accept(s.0, id), gone_or(ROOST_INVALID_ARGUMENT), false)
        }
        (roost_event_kind::ROOST_EVENT_REQUEST, _) => {
            ("respond 200", respond(s, id, 200, b"X-Racer: 1\r\n", b"ok"), gone_or(ROOST_OK), true)
        }
        (_, 1) => ("refuse with 200", respond(s, id, 200, b"", b""), gone_or(ROOST_INVALID_ARGUMENT), false),
        (_, 2) => ("refuse with 403", respond(s, id, 403, b"", b"no"), gone_or(ROOST_OK), true),
        (_, _) => ("accept", roost_upgrade_accept(s.0, id), gone_or(ROOST_OK), true),
    }
}

/// Polls until `stop`, handing each request to the answerers, except every eighth,
/// left to time out. Returns how many were left.
fn poll_events(s: Handle, work: &Work, stop: &AtomicBool) -> usize {
    let mut fd: c_int = -1;
    // SAFETY: a live out.
    assert_eq!(unsafe { roost_server_ready_fd(s.0, &mut fd) }, ROOST_OK);
    let mut events: Vec<MaybeUninit<roost_event>> = (0..32).map(|_| MaybeUninit::uninit()).collect();
    let mut left = 0;
    while !stop.load(Ordering::Acquire) {
        fd_readable(fd, 20);
        loop {
            let mut n = 0;
            // SAFETY: room for 32 events of this size, and a live out.
            let st = unsafe {
                roost_server_poll(
                    s.0,
                    events.as_mut_ptr().cast(),
                    32,
                    std::mem::size_of::<roost_event>(),
                    &mut n,
                )
            };
            assert_eq!(st, ROOST_OK);
            if n == 0 {
                break;
            }
            for event in &events[..n] {
                // SAFETY: written by the poll.
                let event = unsafe { event.assume_init_ref() };
                if matches!(
                    event.kind,
                    roost_event_kind::ROOST_EVENT_REQUEST | roost_event_kind::ROOST_EVENT_UPGRADE_REQUEST
                ) {
                    if event.connection % 8 == 0 {
                        left += 1;
                    } else {
                        work.push(event.connection, event.kind);
                    }
                }
            }
        }
    }
    left
}

/// What a client saw of one exchange.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Seen {
    Status(u16),
    /// The connection ended (or stayed silent) before an answer.
    Ended,
    /// The connection was refused (the listener closes as a stop begins).
    Refused,
}

fn connect(port: u16) -> Option<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    Some(stream)
}

/// Reads one response: its status, and its body by Content-Length, checking its form.
fn read_response(reader: &mut BufReader<TcpStream>) -> Seen {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return Seen::Ended;
    }
    let status: u16 = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a malformed status line: {line:?}"));
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return Seen::Ended;
        }
        if header == "\r\n" {
            break;
        }
        assert!(header.ends_with("\r\n"), "a header line without CRLF: {header:?}");
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("a numeric Content-Length");
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return Seen::Ended;
    }
    if status == 200 {
        assert_eq!(body, b"ok", "the body of a 200");
    }
    Seen::Status(status)
}

/// Sends `requests` GETs, reconnecting when the server closes, leaving without waiting
/// for every seventh answer; counts what it saw.
fn http_client(port: u16, requests: usize, seen: &Mutex<HashMap<Seen, usize>>) {
    let count = |answer| *seen.lock().unwrap().entry(answer).or_default() += 1;
    let Some(mut reader) = connect(port).map(BufReader::new) else { return count(Seen::Refused) };
    for i in 0..requests {
        let request = format!("GET /r?i={i} HTTP/1.1\r\nHost: x\r\n\r\n");
        let sent = reader.get_mut().write_all(request.as_bytes()).is_ok();
        let answer = if sent && i % 7 == 3 {
            None // gone before the answer
        } else if sent {
            Some(read_response(&mut reader))
        } else {
            Some(Seen::Ended)
        };
        if let Some(answer) = answer {
            count(answer);
        }
        if answer != Some(Seen::Status(200)) {
            match connect(port) {
                Some(stream) => reader = BufReader::new(stream),
                None => return count(Seen::Refused),
            }
        }
    }
}

/// Upgrades `attempts` times; counts the statuses.
fn upgrade_client(port: u16, attempts: usize, seen: &Mutex<HashMap<Seen, usize>>) {
    for _ in 0..attempts {
        let Some(mut stream) = connect(port) else {
            *seen.lock().unwrap().entry(Seen::Refused).or_default() += 1;
            return;
        };
        let request = common::upgrade_request(port, "/ws");
        let _ = stream.write_all(request.as_bytes());
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let answer = match reader.read_line(&mut line) {
            Ok(n) if n > 0 => Seen::Status(line[9..12].parse().expect("a status")),
            _ => Seen::Ended,
        };
        *seen.lock().unwrap().entry(answer).or_default() += 1;
    }
}

fn options() -> roost_options {
    let mut o = MaybeUninit::<roost_options>::uninit();
    // SAFETY: writable memory for one roost_options.
    assert_eq!(unsafe { roost_options_init(o.as_mut_ptr(), std::mem::size_of::<roost_options>()) }, ROOST_OK);
    // SAFETY: written by roost_options_init.
    let mut o = unsafe { o.assume_init() };
    o.ping_interval_ms = 0;
    o.http_response_timeout_ms = RESPONSE_TIMEOUT_MS;
    o
}

#[test]
fn racing_answers_give_documented_statuses_and_each_request_one_answer() {
    let mut server = null_mut();
    // SAFETY: live options and out.
    assert_eq!(unsafe { roost_server_new(&options(), &mut server) }, ROOST_OK);
    let s = Handle(server);
    let (mut route, mut ws) = (0, 0);
    // SAFETY: live strings and outs.
    unsafe {
        assert_eq!(
            roost_server_add_http_route(s.0, "GET".as_ptr(), 3, "/r".as_ptr(), 2, &mut route),
            ROOST_OK
        );
        assert_eq!(roost_server_add_route(s.0, "/ws".as_ptr(), 3, &mut ws), ROOST_OK);
    }
    assert_eq!(roost_server_route_vet_upgrades(s.0, ws, true), ROOST_OK);
    let mut port = 0;
    // SAFETY: a live host and out.
    assert_eq!(unsafe { roost_server_start(s.0, "127.0.0.1".as_ptr(), 9, 0, &mut port) }, ROOST_OK);

    let work = Arc::new(Work::default());
    let stop_polling = Arc::new(AtomicBool::new(false));
    let poller = {
        let (work, stop) = (work.clone(), stop_polling.clone());
        thread::spawn(move || poll_events(s, &work, &stop))
    };
    let answered = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let answerers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (work, answered, calls) = (work.clone(), answered.clone(), calls.clone());
            thread::spawn(move || {
                while let Some((id, kind, racer)) = work.pop() {
                    let (what, status, allowed, answers) = answer(s, id, kind, racer);
                    calls.fetch_add(1, Ordering::Relaxed);
                    assert!(allowed.contains(&status), "{what} of {id}: {status:?}, not one of {allowed:?}");
                    if status == ROOST_OK && answers {
                        *answered.lock().unwrap().entry(id).or_default() += 1;
                    }
                }
            })
        })
        .collect();

    let seen = Arc::new(Mutex::new(HashMap::<Seen, usize>::new()));
    let run_clients = |http: usize, upgrades: usize| -> Vec<thread::JoinHandle<()>> {
        let mut clients: Vec<_> = (0..4)
            .map(|_| {
                let seen = seen.clone();
                thread::spawn(move || http_client(port, http, &seen))
            })
            .collect();
        let seen = seen.clone();
        clients.push(thread::spawn(move || upgrade_client(port, upgrades, &seen)));
        clients
    };
    for client in run_clients(40, 24) {
        client.join().unwrap();
    }
    {
        let seen = seen.lock().unwrap();
        eprintln!("while running: {seen:?}");
        for (answer, count) in seen.iter() {
            assert!(
                matches!(answer, Seen::Status(101 | 200 | 403 | 503)),
                "while running, only answers and timeouts: {count} x {answer:?} in {seen:?}"
            );
        }
        for status in [101, 200, 403, 503] {
            assert!(seen.contains_key(&Seen::Status(status)), "no {status} among {seen:?}");
        }
    }

    // The stop, under more of the same.
    seen.lock().unwrap().clear();
    let clients = run_clients(40, 24);
    thread::sleep(Duration::from_millis(150));
    let stopping = Instant::now();
    assert_eq!(roost_server_stop(s.0, 1000), ROOST_OK);
    assert!(stopping.elapsed() < Duration::from_secs(3), "the stop took {:?}", stopping.elapsed());
    for client in clients {
        client.join().unwrap();
    }
    stop_polling.store(true, Ordering::Release);
    let left = poller.join().unwrap();
    work.done.store(true, Ordering::Release);
    for answerer in answerers {
        answerer.join().unwrap();
    }
    let answered = answered.lock().unwrap();
    eprintln!(
        "{} requests answered, {left} left to time out, {} calls; during the stop: {:?}",
        answered.len(),
        calls.load(Ordering::Relaxed),
        seen.lock().unwrap()
    );
    let twice: Vec<_> = answered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "answered more than once: {twice:?}");
    assert!(left > 0 && calls.load(Ordering::Relaxed) > 100, "left {left}, calls {calls:?}");
    for (answer, count) in seen.lock().unwrap().iter() {
        assert!(
            matches!(answer, Seen::Status(101 | 200 | 403 | 503) | Seen::Ended | Seen::Refused),
            "during the stop: {count} x {answer:?}"
        );
    }
    assert_eq!(roost_server_free(s.0), ROOST_OK);
}
