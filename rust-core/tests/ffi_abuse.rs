//! The C ABI under abuse: seeded pseudo-random sequences of `roost_*` calls with random
//! and stale connection ids, NULL and forged pointers, freed handles, calls after stop
//! and after free, empty, huge (8 MiB) and absurdly long payloads, invalid UTF-8, bad
//! close codes, empty, over-long and NULL topics, NULL and re-entrant topic visitors,
//! stats structs of every size, and several threads calling at once while real clients
//! connect, send and leave over 127.0.0.1.
//!
//! The property: every call returns a status its documentation allows (never
//! ROOST_PANIC), leaves a message in roost_last_error when it fails, writes no
//! out-parameter when it fails, every polled event keeps roost.h's pointer contract and
//! its per-connection order (CONNECT, then messages, then one DISCONNECT), and once every
//! client has left `roost_server_connection_count` is 0.
//!
//! Deterministic in its choices: the calls each thread makes come from a xorshift
//! generator seeded from ROOST_ABUSE_SEED (hex or decimal; a fixed default otherwise).
//! Thread interleavings and network timing are not deterministic, so the expected
//! statuses are exact where the documentation pins them (bad arguments, dead handles,
//! unknown ids, a stopped server) and sets where timing decides (a live connection may
//! be closing or gone by the time the call lands).

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void, CStr};
use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use roost::ffi::*;
use roost_status::*;

// ---------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------

const DEFAULT_SEED: u64 = 0x5eed_2026_ab05_e001;

fn base_seed() -> u64 {
    match std::env::var("ROOST_ABUSE_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("ROOST_ABUSE_SEED={s:?} is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// xorshift64* with a splitmix64-scrambled seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed.wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(z | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, out: &mut Vec<u8>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.next() as u8));
    }
}

// ---------------------------------------------------------------------------------
// Statuses: documented sets and the audit of every call
// ---------------------------------------------------------------------------------

const ALL: [roost_status; 8] = [
    ROOST_OK,
    ROOST_WOULD_BLOCK,
    ROOST_CLOSED,
    ROOST_NOT_FOUND,
    ROOST_INVALID_ARGUMENT,
    ROOST_INVALID_STATE,
    ROOST_IO,
    ROOST_PANIC,
];

/// A set of statuses, one bit each.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Set(u16);

impl Set {
    const NONE: Set = Set(0);
    fn of(statuses: &[roost_status]) -> Set {
        Set(statuses.iter().fold(0, |acc, s| acc | (1 << *s as u32)))
    }
    fn has(self, s: roost_status) -> bool {
        self.0 & (1 << s as u32) != 0
    }
    fn or(self, other: Set) -> Set {
        Set(self.0 | other.0)
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(ALL.iter().filter(|s| self.has(**s))).finish()
    }
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(roost_last_error()) }.to_string_lossy().into_owned()
}

/// What one thread saw: calls per function and status, and the first violations.
#[derive(Default)]
struct Audit {
    calls: u64,
    by_function: HashMap<&'static str, [u64; 8]>,
    violations: Vec<String>,
    violation_count: u64,
}

impl Audit {
    /// Records a call's status; a violation when it is ROOST_PANIC, outside `allowed`,
    /// or a failure without a message.
    fn record(
        &mut self,
        what: &'static str,
        got: roost_status,
        allowed: Set,
        context: impl FnOnce() -> String,
    ) {
        self.calls += 1;
        self.by_function.entry(what).or_default()[got as usize] += 1;
        let problem = if got == ROOST_PANIC {
            Some("ROOST_PANIC crossed the boundary")
        } else if !allowed.has(got) {
            Some("status outside the documented set")
        } else if got != ROOST_OK && last_error().is_empty() {
            Some("failed without a message in roost_last_error")
        } else {
            None
        };
        if let Some(problem) = problem {
            let message = format!(
                "{what}: {problem}: got {got:?}, allowed {allowed:?}, last error {:?}; {}",
                last_error(),
                context()
            );
            self.violation(message);
        }
    }

    fn violation(&mut self, message: String) {
        self.violation_count += 1;
        if self.violations.len() < 40 {
            self.violations.push(message);
        }
    }

    fn merge(&mut self, other: Audit) {
        self.calls += other.calls;
        for (what, counts) in other.by_function {
            let mine = self.by_function.entry(what).or_default();
            for (m, c) in mine.iter_mut().zip(counts) {
                *m += c;
            }
        }
        self.violation_count += other.violation_count;
        for v in other.violations {
            if self.violations.len() < 40 {
                self.violations.push(v);
            }
        }
    }

    fn summary(&self) -> String {
        let mut names: Vec<_> = self.by_function.keys().copied().collect();
        names.sort();
        let mut out = format!("{} calls\n", self.calls);
        for name in names {
            let counts = &self.by_function[name];
            let parts: Vec<String> = ALL
                .iter()
                .zip(counts)
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| format!("{}={n}", format!("{s:?}").trim_start_matches("ROOST_")))
                .collect();
            out.push_str(&format!("  {name:<16} {}\n", parts.join(" ")));
        }
        out
    }

    fn assert_clean(&self, seed: u64, test: &str) {
        println!("{test} (seed {seed:#x}): {}", self.summary());
        assert!(
            self.violation_count == 0,
            "{test}: {} violations (seed {seed:#x}; rerun with ROOST_ABUSE_SEED={seed:#x}):\n{}",
            self.violation_count,
            self.violations.join("\n")
        );
        assert!(self.by_function.values().all(|c| c[ROOST_PANIC as usize] == 0), "{test}: ROOST_PANIC seen");
    }
}

// ---------------------------------------------------------------------------------
// Hostile arguments
// ---------------------------------------------------------------------------------

const HUGE_LEN: usize = 8 << 20;

/// 8 MiB of valid UTF-8 followed by one 0xff: `[..HUGE_LEN]` is valid text,
/// `[..HUGE_LEN + 1]` is not.
static HUGE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut v: Vec<u8> = "huge payload ✓ ".bytes().cycle().take(HUGE_LEN).collect();
    // Cut on a character boundary: pad the end with ASCII.
    let mut end = HUGE_LEN;
    while std::str::from_utf8(&v[..end]).is_err() {
        end -= 1;
    }
    for b in &mut v[end..] {
        *b = b'.';
    }
    v.push(0xff);
    v
});

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"ok\xc3\x28",
    b"\xc0\x80",         // overlong NUL
    b"\xed\xa0\x80",     // surrogate half
    b"\xf4\x90\x80\x80", // above U+10FFFF
    b"abc\xe2\x82",      // truncated at the end
    b"\xf0\x9f\xa6",     // truncated 4-byte sequence
    b"\x80\x80\x80",     // lone continuation bytes
    b"valid until here \xfe",
];

const VALID_UTF8: &[&str] =
    &["héllo wörld", "🦀 crab", "日本語テキスト", "\u{0}nul inside", "\u{10ffff}", "a"];

/// A data argument: pointer, length, and what the core must make of it.
#[derive(Clone, Copy)]
struct Data {
    ptr: *const u8,
    len: usize,
    /// Refused as an argument whatever the rest (NULL with a length, length over
    /// isize::MAX).
    bad_pointer: bool,
    utf8: bool,
    label: &'static str,
}

impl Data {
    fn valid_text(&self) -> bool {
        !self.bad_pointer && self.utf8
    }
    fn describe(&self) -> String {
        format!("{} ({} bytes{})", self.label, self.len, if self.utf8 { "" } else { ", not UTF-8" })
    }
}

fn data_of(bytes: &[u8], label: &'static str) -> Data {
    Data {
        ptr: bytes.as_ptr(),
        len: bytes.len(),
        bad_pointer: false,
        utf8: std::str::from_utf8(bytes).is_ok(),
        label,
    }
}

/// A random payload; `scratch` must outlive the call it is passed to. Huge payloads
/// only while `huge_budget` lasts.
fn payload(rng: &mut Rng, scratch: &mut Vec<u8>, huge_budget: &AtomicU32) -> Data {
    match rng.below(20) {
        0 => Data { ptr: null(), len: 0, bad_pointer: false, utf8: true, label: "NULL, 0" },
        // A non-NULL pointer that must not be read: length 0.
        1 => {
            Data { ptr: std::ptr::dangling::<u8>(), len: 0, bad_pointer: false, utf8: true, label: "0x1, 0" }
        }
        2 => {
            let len = rng.range(1, 1 << 40) as usize;
            Data { ptr: null(), len, bad_pointer: true, utf8: false, label: "NULL with a length" }
        }
        3 => {
            // Longer than any object can be: refused before anything is read.
            let len = (isize::MAX as usize).saturating_add(1 + rng.below(1000) as usize);
            Data { ptr: scratch.as_ptr(), len, bad_pointer: true, utf8: false, label: "length > isize::MAX" }
        }
        4 | 5 => {
            let bytes = *rng.pick(INVALID_UTF8);
            scratch.clear();
            scratch.extend_from_slice(bytes);
            data_of(scratch, "invalid UTF-8")
        }
        6 | 7 => {
            let text = *rng.pick(VALID_UTF8);
            scratch.clear();
            scratch.extend_from_slice(text.as_bytes());
            data_of(scratch, "multi-byte UTF-8")
        }
        8 | 9 => {
            let len = rng.below(300) as usize;
            rng.bytes(scratch, len);
            data_of(scratch, "random bytes")
        }
        10 => {
            // Around the outbound limits used here (64 KiB, 1 MiB).
            let len = *rng.pick(&[(64 << 10) - 1, 64 << 10, (64 << 10) + 1, 1 << 20, (1 << 20) + 1]);
            scratch.clear();
            scratch.resize(len, b'm');
            if rng.chance(30) {
                *scratch.last_mut().unwrap() = 0xc3;
            }
            data_of(scratch, "medium")
        }
        11 if huge_budget.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1)).is_ok() => {
            if rng.chance(50) {
                data_of(&HUGE[..HUGE_LEN], "8 MiB text")
            } else {
                data_of(&HUGE[..HUGE_LEN + 1], "8 MiB + invalid byte")
            }
        }
        _ => {
            let len = rng.range(1, 120) as usize;
            scratch.clear();
            scratch.extend((0..len).map(|_| b'a' + (rng.next() % 26) as u8));
            data_of(scratch, "ASCII")
        }
    }
}

/// A close reason: `Data` plus whether it fits a close frame (UTF-8, at most 123 bytes).
fn reason(rng: &mut Rng, scratch: &mut Vec<u8>) -> (Data, bool) {
    let data = match rng.below(10) {
        0 => Data { ptr: null(), len: 0, bad_pointer: false, utf8: true, label: "no reason" },
        1 => Data { ptr: null(), len: 7, bad_pointer: true, utf8: false, label: "NULL reason with a length" },
        2 => {
            scratch.clear();
            let bytes: &[u8] = rng.pick::<&[u8]>(INVALID_UTF8);
            scratch.extend_from_slice(bytes);
            data_of(scratch, "invalid UTF-8 reason")
        }
        3 => {
            // 123 bytes exactly, with multi-byte characters: fits.
            scratch.clear();
            scratch.extend_from_slice("é".repeat(61).as_bytes());
            scratch.push(b'!');
            data_of(scratch, "123-byte reason")
        }
        4 => {
            let len = rng.range(124, 400) as usize;
            scratch.clear();
            scratch.resize(len, b'r');
            data_of(scratch, "reason too long")
        }
        _ => {
            let len = rng.below(40) as usize;
            scratch.clear();
            scratch.extend((0..len).map(|_| b'a' + (rng.next() % 26) as u8));
            data_of(scratch, "short reason")
        }
    };
    let fits = data.valid_text() && data.len <= 123;
    (data, fits)
}

fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn close_code(rng: &mut Rng) -> u16 {
    match rng.below(4) {
        0 => *rng.pick(&[0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]),
        1 => rng.next() as u16,
        _ => *rng.pick(&[1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999]),
    }
}

/// Handles that can never be live: freed ones, and values no token takes (tokens are
/// small multiples of 16, so odd or enormous values, or real addresses, are safe to
/// forge even while other tests create servers in this process).
fn forged_handle(rng: &mut Rng, freed: &[usize]) -> *mut roost_server {
    if !freed.is_empty() && rng.chance(50) {
        return *rng.pick(freed) as *mut roost_server;
    }
    let stack_address = &freed as *const _ as usize;
    let value = match rng.below(4) {
        0 => rng.next() | 1,
        1 => usize::MAX as u64 & !15,
        2 => 0xdead_beef,
        _ => stack_address as u64,
    };
    value as usize as *mut roost_server
}

// ---------------------------------------------------------------------------------
// Events: the pointer contract and per-connection order
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Conn {
    Live,
    /// We closed it (roost_connection_close gave OK).
    Closing,
    /// Its DISCONNECT was polled: the id is retired.
    Retired,
}

/// Everything polled from one server, checked as it arrives.
#[derive(Default)]
struct EventLog {
    conns: HashMap<u64, Conn>,
    /// Peer address ("ip:port") of each CONNECT, to match clients.
    peers: HashMap<String, u64>,
    max_id: u64,
    connects: u64,
    disconnects: u64,
    messages: u64,
    writables: u64,
    violations: Vec<String>,
}

/// What one polled event was, after checking it (`data` copied for echoing).
enum Seen {
    Connect(u64),
    Message(u64, bool, Vec<u8>),
    Disconnect(u64),
    Writable,
    Bad,
}

unsafe fn view<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        Some(&[])
    } else if p.is_null() {
        None
    } else {
        // SAFETY: the event's pointer and length, valid until the next poll.
        Some(unsafe { std::slice::from_raw_parts(p, len) })
    }
}

impl EventLog {
    fn bad(&mut self, message: String) -> Seen {
        if self.violations.len() < 40 {
            self.violations.push(message);
        }
        Seen::Bad
    }

    fn live_ids(&self) -> Vec<u64> {
        self.conns.iter().filter(|(_, c)| **c != Conn::Retired).map(|(id, _)| *id).collect()
    }

    /// Checks one event of a server with `routes` routes; reads every byte it points to.
    ///
    /// # Safety
    /// `event` was written by the last roost_server_poll of its server.
    unsafe fn take(&mut self, event: &roost_event, routes: u32) -> Seen {
        // Read the kind as the integer C sees, before trusting it as an enum.
        // SAFETY: `kind` is the first field of a repr(C) struct, a C enum (int).
        let kind = unsafe { *(event as *const roost_event).cast::<u32>() };
        let id = event.connection;
        let unused = |p: *const u8, len: usize| p.is_null() && len == 0;
        let no_connect_fields = unused(event.uuid, event.uuid_len)
            && unused(event.path, event.path_len)
            && unused(event.query, event.query_len)
            && unused(event.peer, event.peer_len)
            && event.headers.is_null()
            && event.header_count == 0;
        let state = self.conns.get(&id).copied();
        match kind {
            1 => {
                // CONNECT
                if state.is_some() {
                    return self.bad(format!("second CONNECT for connection {id}"));
                }
                if id == 0 || event.route >= routes || !unused(event.data, event.data_len) {
                    return self.bad(format!("CONNECT {id}: bad id, route {} or data", event.route));
                }
                // SAFETY: pointers of this event, valid until the next poll.
                let (uuid, path, query, peer) = unsafe {
                    (
                        view(event.uuid, event.uuid_len),
                        view(event.path, event.path_len),
                        view(event.query, event.query_len),
                        view(event.peer, event.peer_len),
                    )
                };
                let (Some(uuid), Some(path), Some(_query), Some(peer)) = (uuid, path, query, peer) else {
                    return self.bad(format!("CONNECT {id}: NULL pointer with a length"));
                };
                let uuid_ok = uuid.len() == 36
                    && uuid.iter().enumerate().all(|(i, b)| {
                        if matches!(i, 8 | 13 | 18 | 23) {
                            *b == b'-'
                        } else {
                            b.is_ascii_hexdigit()
                        }
                    });
                if !uuid_ok || !path.starts_with(b"/") {
                    return self.bad(format!("CONNECT {id}: uuid {uuid:?} or path {path:?}"));
                }
                if event.header_count > 0 {
                    if event.headers.is_null() {
                        return self.bad(format!("CONNECT {id}: NULL headers with a count"));
                    }
                    // SAFETY: `header_count` headers, valid until the next poll.
                    let headers = unsafe { std::slice::from_raw_parts(event.headers, event.header_count) };
                    for h in headers {
                        // SAFETY: as above.
                        let (name, value) = unsafe { (view(h.name, h.name_len), view(h.value, h.value_len)) };
                        if name.is_none_or(|n| n.is_empty()) || value.is_none() {
                            return self.bad(format!("CONNECT {id}: bad header view"));
                        }
                    }
                }
                let Ok(peer) = std::str::from_utf8(peer) else {
                    return self.bad(format!("CONNECT {id}: peer not UTF-8"));
                };
                if !peer.starts_with("127.0.0.1:") && !peer.starts_with("[::1]:") {
                    return self.bad(format!("CONNECT {id}: peer {peer:?}"));
                }
                self.peers.insert(peer.to_string(), id);
                self.conns.insert(id, Conn::Live);
                self.max_id = self.max_id.max(id);
                self.connects += 1;
                Seen::Connect(id)
            }
            2 | 3 => {
                // TEXT, BINARY
                if !matches!(state, Some(Conn::Live | Conn::Closing)) {
                    return self.bad(format!("message for connection {id} in state {state:?}"));
                }
                if !no_connect_fields || event.route >= routes {
                    return self.bad(format!("message of {id}: connect fields set or route {}", event.route));
                }
                // SAFETY: the event's payload, valid until the next poll.
                let Some(data) = (unsafe { view(event.data, event.data_len) }) else {
                    return self.bad(format!("message of {id}: NULL data with a length"));
                };
                let binary = kind == 3;
                if !binary && std::str::from_utf8(data).is_err() {
                    return self.bad(format!("TEXT event of {id} is not UTF-8"));
                }
                self.messages += 1;
                Seen::Message(id, binary, data.to_vec())
            }
            4 => {
                // DISCONNECT
                if !matches!(state, Some(Conn::Live | Conn::Closing)) {
                    return self.bad(format!("DISCONNECT for connection {id} in state {state:?}"));
                }
                if !no_connect_fields {
                    return self.bad(format!("DISCONNECT {id}: connect fields set"));
                }
                let code = event.close_code;
                if !matches!(code, 1000..=1003 | 1005..=1015 | 3000..=4999) {
                    return self.bad(format!("DISCONNECT {id}: close code {code}"));
                }
                // SAFETY: the close reason, valid until the next poll.
                match unsafe { view(event.data, event.data_len) } {
                    Some(r) if std::str::from_utf8(r).is_ok() && r.len() <= 123 => {}
                    _ => return self.bad(format!("DISCONNECT {id}: bad reason")),
                }
                self.conns.insert(id, Conn::Retired);
                self.disconnects += 1;
                Seen::Disconnect(id)
            }
            5 => {
                // WRITABLE
                if !matches!(state, Some(Conn::Live | Conn::Closing)) {
                    return self.bad(format!("WRITABLE for connection {id} in state {state:?}"));
                }
                if !no_connect_fields || !unused(event.data, event.data_len) {
                    return self.bad(format!("WRITABLE {id}: unused pointers set"));
                }
                self.writables += 1;
                Seen::Writable
            }
            other => self.bad(format!("event kind {other} is not a roost_event_kind")),
        }
    }
}

fn fd_readable(fd: c_int, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

// ---------------------------------------------------------------------------------
// Raw clients over 127.0.0.1
// ---------------------------------------------------------------------------------

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         X-Abuse: {}\r\n\r\n",
        target.len()
    )
}

/// A client frame: masked unless `unmasked` (a protocol error from a client).
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push((u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f));
    let mask_bit = if unmasked { 0 } else { 0x80 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if unmasked {
        out.extend_from_slice(payload);
    } else {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    out
}

/// A client connection after a 101 (non-blocking from then on).
struct Client {
    stream: TcpStream,
    /// "ip:port" as the server sees it.
    peer: String,
    /// Never reads (a slow consumer, for the broadcast kill and WOULD_BLOCK).
    lazy: bool,
}

/// Connects and sends `request`; returns the stream and the HTTP status of the answer
/// (None when the server closed before answering).
fn raw_request(server: SocketAddr, request: &[u8]) -> Option<(TcpStream, Option<u16>)> {
    let stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).ok()?;
    stream.set_nodelay(true).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut s = stream;
    if s.write_all(request).is_err() {
        return Some((s, None));
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return Some((s, None)),
        }
    }
    let status =
        std::str::from_utf8(&head).ok().and_then(|h| h.split(' ').nth(1)).and_then(|code| code.parse().ok());
    Some((s, status))
}

fn open_client(server: SocketAddr, target: &str, lazy: bool) -> Option<Client> {
    let (stream, status) = raw_request(server, upgrade_request(target).as_bytes())?;
    if status != Some(101) {
        return None;
    }
    stream.set_nonblocking(true).ok()?;
    let peer = stream.local_addr().ok()?.to_string();
    Some(Client { stream, peer, lazy })
}

/// Writes everything within `limit`; false when the socket is gone or stays full.
fn write_within(s: &mut TcpStream, mut bytes: &[u8], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
    true
}

/// Reads what has arrived (up to 16 MiB) and throws it away. False on EOF or error.
fn drain(s: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while total < 16 << 20 {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

/// One hostile or ordinary thing a client does. Returns false when the client is done
/// (the server closed it or the client left).
fn client_step(rng: &mut Rng, c: &mut Client, scratch: &mut Vec<u8>) -> bool {
    let limit = Duration::from_millis(300);
    // Mostly ordinary traffic; one step in five breaks the protocol or a limit.
    let roll = if rng.chance(20) {
        12 + rng.below(8)
    } else {
        match rng.below(14) {
            r @ 0..=11 => r,
            _ => 20,
        }
    };
    let ok = match roll {
        0..=5 => {
            let len = rng.below(200) as usize;
            scratch.clear();
            scratch.extend((0..len).map(|_| b'a' + (rng.next() % 26) as u8));
            write_within(&mut c.stream, &frame(true, 0, 0x1, scratch, false), limit)
        }
        6..=8 => {
            let len = rng.below(3000) as usize;
            rng.bytes(scratch, len);
            write_within(&mut c.stream, &frame(true, 0, 0x2, scratch, false), limit)
        }
        9 => {
            // A fragmented text message with a ping in the middle.
            let mut bytes = frame(false, 0, 0x1, "frag".as_bytes(), false);
            bytes.extend(frame(true, 0, 0x9, b"p", false));
            bytes.extend(frame(true, 0, 0x0, "mented ✓".as_bytes(), false));
            write_within(&mut c.stream, &bytes, limit)
        }
        10 => write_within(&mut c.stream, &frame(true, 0, 0x9, b"ping", false), limit),
        11 => write_within(&mut c.stream, &frame(true, 0, 0xA, b"unsolicited pong", false), limit),
        // Protocol errors and limits: the server closes these (1007, 1002, 1009).
        12 => write_within(&mut c.stream, &frame(true, 0, 0x1, b"bad \xff utf-8", false), limit),
        13 => write_within(&mut c.stream, &frame(true, 0, 0x2, b"unmasked", true), limit),
        14 => write_within(&mut c.stream, &frame(true, 5, 0x2, b"rsv bits", false), limit),
        15 => write_within(&mut c.stream, &frame(true, 0, 0x3, b"reserved opcode", false), limit),
        16 => {
            scratch.clear();
            scratch.resize(70 << 10, b'o');
            write_within(&mut c.stream, &frame(true, 0, 0x2, scratch, false), limit)
        }
        17 => write_within(&mut c.stream, &frame(true, 0, 0x0, b"continuation of nothing", false), limit),
        18 if cfg!(feature = "fault-injection") && rng.chance(30) => {
            // A panic inside the connection's task: closed with 1011, nothing else.
            write_within(&mut c.stream, &frame(true, 0, 0x1, b"__roost_panic__", false), limit)
        }
        19 => {
            // Garbage where a frame header belongs.
            let len = 1 + rng.below(64) as usize;
            rng.bytes(scratch, len);
            write_within(&mut c.stream, scratch, limit)
        }
        _ => true,
    };
    ok && (c.lazy || drain(&mut c.stream))
}

/// A client leaves: a close frame, a half-close, or just dropping the socket.
fn client_leave(rng: &mut Rng, mut c: Client) {
    match rng.below(4) {
        0 => {
            let mut payload = 1000u16.to_be_bytes().to_vec();
            payload.extend_from_slice(b"bye");
            if write_within(&mut c.stream, &frame(true, 0, 0x8, &payload, false), Duration::from_millis(200))
            {
                // Wait briefly for the server's close and EOF.
                let deadline = Instant::now() + Duration::from_millis(200);
                while Instant::now() < deadline && drain(&mut c.stream) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        1 => {
            let _ = c.stream.shutdown(Shutdown::Write);
        }
        2 => {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    drop(c);
}

/// A client that never completes an upgrade: junk, unknown path, not an upgrade, a
/// partial head, an oversized head. Returns the HTTP status it got (None: closed).
fn hostile_handshake(rng: &mut Rng, server: SocketAddr, scratch: &mut Vec<u8>) -> Option<u16> {
    let request: Vec<u8> = match rng.below(8) {
        0 => upgrade_request("/nope").into_bytes(),
        1 => b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        2 => b"POST /a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n".to_vec(),
        3 => upgrade_request("/a").replace("Version: 13", "Version: 8").into_bytes(),
        4 => upgrade_request("/a").replace(KEY, "short==").into_bytes(),
        5 => {
            let mut r = b"GET /a HTTP/1.1\r\n".to_vec();
            r.extend(std::iter::repeat_n(b'X', 20 << 10));
            r
        }
        6 => {
            let len = 1 + rng.below(400) as usize;
            rng.bytes(scratch, len);
            scratch.extend_from_slice(b"\r\n\r\n");
            scratch.clone()
        }
        _ => {
            // A partial head, then the client leaves.
            let full = upgrade_request("/a");
            let cut = rng.below(full.len() as u64 - 4) as usize;
            let s = TcpStream::connect(server).ok()?;
            let mut s = s;
            let _ = s.write_all(&full.as_bytes()[..cut]);
            return None;
        }
    };
    raw_request(server, &request).and_then(|(_, status)| status)
}

// ---------------------------------------------------------------------------------
// Calls through the C ABI, each audited
// ---------------------------------------------------------------------------------

fn options_with(rng: &mut Rng) -> roost_options {
    let mut o = MaybeUninit::<roost_options>::uninit();
    // SAFETY: writable memory for one roost_options.
    assert_eq!(unsafe { roost_options_init(o.as_mut_ptr(), std::mem::size_of::<roost_options>()) }, ROOST_OK);
    // SAFETY: written by roost_options_init.
    let mut o = unsafe { o.assume_init() };
    o.ping_interval_ms = *rng.pick(&[0, 0, 300]);
    o.ping_timeout_ms = 300;
    o.close_timeout_ms = 1000;
    o.handshake_timeout_ms = 1000;
    o.max_message_size = 64 << 10;
    o.max_frame_size = 64 << 10;
    o.outbound_queue_bytes = *rng.pick(&[64 << 10, 1 << 20]);
    o.inbound_queue_depth = *rng.pick(&[1, 4, 16]);
    o.worker_threads = *rng.pick(&[1, 2]);
    o.join_broadcast_on_connect = rng.chance(70);
    o.slow_consumer = *rng.pick(&[ROOST_SLOW_CONSUMER_CLOSE, ROOST_SLOW_CONSUMER_SKIP]);
    o
}

/// Options with random, often invalid, values; and whether roost_server_new must
/// accept them (Config::validate's documented rules).
fn random_options(rng: &mut Rng) -> (roost_options, bool) {
    let mut o = options_with(rng);
    let pick64 = |rng: &mut Rng, default: u64| *rng.pick(&[default, default, 0, 1, u64::MAX]);
    o.max_message_size = pick64(rng, 1 << 20);
    o.max_frame_size = pick64(rng, 1 << 20);
    o.outbound_queue_bytes = pick64(rng, 1 << 20);
    let pick32 = |rng: &mut Rng, default: u32| *rng.pick(&[default, default, 0, 1, u32::MAX]);
    o.inbound_queue_depth = pick32(rng, 16);
    o.read_buffer_size = pick32(rng, 4096);
    o.write_buffer_size = pick32(rng, 16384);
    o.max_connections = pick32(rng, 100_000);
    o.worker_threads = *rng.pick(&[1, 2, 0, 256, 257, u32::MAX]);
    o.handshake_timeout_ms = pick32(rng, 10_000);
    o.ping_interval_ms = pick32(rng, 20_000);
    o.ping_timeout_ms = pick32(rng, 20_000);
    o.close_timeout_ms = pick32(rng, 5000);
    // Any non-zero byte is `true` to C; Rust's bool must be 0 or 1, so C's rule is
    // not exercised here.
    o.join_broadcast_on_connect = rng.chance(50);
    o.slow_consumer = *rng.pick(&[ROOST_SLOW_CONSUMER_CLOSE, ROOST_SLOW_CONSUMER_SKIP, 2, u32::MAX]);
    // Never a reachable backplane (every server would try to connect), only bad URLs.
    let urls: [&'static [u8]; 5] = [b"", b"", b"", b"http://127.0.0.1:1", b"redis://[::1"];
    let bad_url = urls[rng.below(5) as usize];
    o.backplane_url = bad_url.as_ptr();
    o.backplane_url_len = bad_url.len();
    let valid = bad_url.is_empty()
        && o.max_message_size > 0
        && o.inbound_queue_depth > 0
        && o.outbound_queue_bytes > 0
        && (1..=16 << 20).contains(&o.read_buffer_size)
        && o.max_connections > 0
        && (1..=256).contains(&o.worker_threads)
        && o.handshake_timeout_ms > 0
        && (o.ping_interval_ms == 0 || o.ping_timeout_ms > 0)
        && o.slow_consumer <= ROOST_SLOW_CONSUMER_SKIP;
    (o, valid)
}

const OUT_SENTINEL: usize = 0xa5a5_a5a5;

fn add_route(a: &mut Audit, s: *mut roost_server, path: Data, out: bool, allowed: Set) -> Option<u32> {
    let mut route = u32::MAX;
    let out_ptr = if out { &mut route as *mut u32 } else { null_mut() };
    // SAFETY: `path` points to `len` bytes or is one of the deliberately bad pointers
    // the function must refuse unread.
    let st = unsafe { roost_server_add_route(s, path.ptr, path.len, out_ptr) };
    a.record("add_route", st, allowed, || format!("path {}, out {out}", path.describe()));
    if st != ROOST_OK && route != u32::MAX {
        a.violation("add_route wrote out_route on failure".into());
    }
    (st == ROOST_OK).then_some(route)
}

fn send(a: &mut Audit, s: *mut roost_server, id: u64, data: Data, text: bool, allowed: Set) -> roost_status {
    // SAFETY: as for add_route.
    let st = unsafe {
        if text {
            roost_connection_send_text(s, id, data.ptr, data.len)
        } else {
            roost_connection_send_binary(s, id, data.ptr, data.len)
        }
    };
    a.record(if text { "send_text" } else { "send_binary" }, st, allowed, || {
        format!("connection {id}, data {}", data.describe())
    });
    st
}

fn broadcast(
    a: &mut Audit,
    s: *mut roost_server,
    route: u32,
    data: Data,
    text: bool,
    out: bool,
    allowed: Set,
) -> Option<usize> {
    let mut recipients = OUT_SENTINEL;
    let out_ptr = if out { &mut recipients as *mut usize } else { null_mut() };
    // SAFETY: as for add_route.
    let st = unsafe {
        if text {
            roost_server_broadcast_text(s, route, data.ptr, data.len, out_ptr)
        } else {
            roost_server_broadcast_binary(s, route, data.ptr, data.len, out_ptr)
        }
    };
    a.record(if text { "broadcast_text" } else { "broadcast_binary" }, st, allowed, || {
        format!("route {route}, data {}", data.describe())
    });
    if st != ROOST_OK && recipients != OUT_SENTINEL {
        a.violation("broadcast wrote out_recipients on failure".into());
    }
    (st == ROOST_OK && out).then_some(recipients)
}

fn close(a: &mut Audit, s: *mut roost_server, id: u64, code: u16, why: Data, allowed: Set) -> roost_status {
    // SAFETY: as for add_route.
    let st = unsafe { roost_connection_close(s, id, code, why.ptr, why.len) };
    a.record("close", st, allowed, || format!("connection {id}, code {code}, reason {}", why.describe()));
    st
}

fn count(a: &mut Audit, s: *mut roost_server, out: bool, allowed: Set) -> Option<usize> {
    let mut n = OUT_SENTINEL;
    let out_ptr = if out { &mut n as *mut usize } else { null_mut() };
    // SAFETY: `out_ptr` is NULL or a live usize.
    let st = unsafe { roost_server_connection_count(s, out_ptr) };
    a.record("connection_count", st, allowed, || format!("out {out}"));
    if st != ROOST_OK && n != OUT_SENTINEL {
        a.violation("connection_count wrote out_count on failure".into());
    }
    (st == ROOST_OK).then_some(n)
}

// ---------------------------------------------------------------------------------
// Topics and stats through the C ABI, each audited
// ---------------------------------------------------------------------------------

/// What a `bool` out-parameter holds before a call: neither true nor false, so that any
/// write shows.
const FLAG_UNSET: u8 = 0x5a;

const TOPIC_NAMES: &[&[u8]] = &[b"room", b"feed", b"r", b"\xff\x00 not text"];

/// `ROOST_MAX_TOPIC_LENGTH + 1` bytes: `[..MAX]` is the longest topic, the whole is one
/// byte too long.
static LONG_TOPIC: LazyLock<Vec<u8>> = LazyLock::new(|| vec![b't'; ROOST_MAX_TOPIC_LENGTH as usize + 1]);

/// A topic argument and whether it names a topic (1 to ROOST_MAX_TOPIC_LENGTH bytes, any
/// bytes). Points to static memory.
fn topic_arg(rng: &mut Rng) -> (Data, bool) {
    let max = ROOST_MAX_TOPIC_LENGTH as usize;
    let data = match rng.below(20) {
        0 => Data { ptr: null(), len: 0, bad_pointer: false, utf8: true, label: "NULL topic, 0" },
        1 => Data {
            ptr: TOPIC_NAMES[0].as_ptr(),
            len: 0,
            bad_pointer: false,
            utf8: true,
            label: "empty topic",
        },
        2 => {
            let len = rng.range(1, 1 << 40) as usize;
            Data { ptr: null(), len, bad_pointer: true, utf8: false, label: "NULL topic with a length" }
        }
        3 => {
            let len = (isize::MAX as usize).saturating_add(1 + rng.below(1000) as usize);
            Data {
                ptr: LONG_TOPIC.as_ptr(),
                len,
                bad_pointer: true,
                utf8: false,
                label: "topic length > isize::MAX",
            }
        }
        4 => data_of(&LONG_TOPIC[..max], "longest topic"),
        5 => data_of(&LONG_TOPIC, "topic one byte too long"),
        _ => data_of(rng.pick::<&[u8]>(TOPIC_NAMES), "topic"),
    };
    let valid = !data.bad_pointer && (1..=max).contains(&data.len);
    (data, valid)
}

/// The bytes of a topic argument that `topic_arg` found valid.
fn topic_bytes(topic: &Data) -> Vec<u8> {
    // SAFETY: a valid topic points to `len` bytes of static memory.
    unsafe { view(topic.ptr, topic.len) }.unwrap_or(&[]).to_vec()
}

/// What subscribe (`join`) or unsubscribe may give for an id that may be live: a
/// connection that is closing may leave topics but join none.
fn membership_statuses(join: bool) -> Set {
    if join {
        Set::of(&[ROOST_OK, ROOST_NOT_FOUND, ROOST_CLOSED])
    } else {
        Set::of(&[ROOST_OK, ROOST_NOT_FOUND])
    }
}

/// roost_connection_subscribe (`join`) or roost_connection_unsubscribe: its status, and
/// the flag it reported when it succeeded with an out-parameter.
fn join_or_leave(
    a: &mut Audit,
    s: *mut roost_server,
    id: u64,
    topic: Data,
    join: bool,
    out: bool,
    allowed: impl FnOnce() -> Set,
) -> (roost_status, Option<bool>) {
    let mut slot = FLAG_UNSET;
    let out_ptr = if out { (&mut slot as *mut u8).cast::<bool>() } else { null_mut() };
    // SAFETY: `topic` valid or a refused bad pointer; `out_ptr` NULL or a live byte.
    let st = unsafe {
        if join {
            roost_connection_subscribe(s, id, topic.ptr, topic.len, out_ptr)
        } else {
            roost_connection_unsubscribe(s, id, topic.ptr, topic.len, out_ptr)
        }
    };
    let what = if join { "subscribe" } else { "unsubscribe" };
    a.record(what, st, allowed(), || format!("connection {id}, topic {}, out {out}", topic.describe()));
    if st != ROOST_OK && slot != FLAG_UNSET {
        a.violation(format!("{what} wrote its out-parameter on failure"));
    }
    if st == ROOST_OK && out && slot > 1 {
        a.violation(format!("{what} wrote {slot} to its bool out-parameter"));
    }
    (st, (st == ROOST_OK && out).then_some(slot == 1))
}

#[allow(clippy::too_many_arguments)]
fn publish(
    a: &mut Audit,
    s: *mut roost_server,
    topic: Data,
    data: Data,
    text: bool,
    exclude: u64,
    out: bool,
    allowed: impl FnOnce() -> Set,
) -> Option<usize> {
    let mut recipients = OUT_SENTINEL;
    let out_ptr = if out { &mut recipients as *mut usize } else { null_mut() };
    // SAFETY: `topic` and `data` valid or refused bad pointers; `out_ptr` NULL or live.
    let st = unsafe {
        if text {
            roost_server_publish_text(s, topic.ptr, topic.len, data.ptr, data.len, exclude, out_ptr)
        } else {
            roost_server_publish_binary(s, topic.ptr, topic.len, data.ptr, data.len, exclude, out_ptr)
        }
    };
    a.record(if text { "publish_text" } else { "publish_binary" }, st, allowed(), || {
        format!("topic {}, data {}, exclude {exclude}", topic.describe(), data.describe())
    });
    if st != ROOST_OK && recipients != OUT_SENTINEL {
        a.violation("publish wrote out_recipients on failure".into());
    }
    (st == ROOST_OK && out).then_some(recipients)
}

fn subscriber_count(
    a: &mut Audit,
    s: *mut roost_server,
    topic: Data,
    out: bool,
    allowed: impl FnOnce() -> Set,
) -> Option<usize> {
    let mut n = OUT_SENTINEL;
    let out_ptr = if out { &mut n as *mut usize } else { null_mut() };
    // SAFETY: `topic` valid or a refused bad pointer; `out_ptr` NULL or live.
    let st = unsafe { roost_server_subscriber_count(s, topic.ptr, topic.len, out_ptr) };
    a.record("subscriber_count", st, allowed(), || format!("topic {}, out {out}", topic.describe()));
    if st != ROOST_OK && n != OUT_SENTINEL {
        a.violation("subscriber_count wrote out_count on failure".into());
    }
    (st == ROOST_OK).then_some(n)
}

/// What a topic visitor was given, and what it did.
struct Visits {
    server: *mut roost_server,
    id: u64,
    /// Unsubscribe the connection from each topic as it is visited.
    unsubscribe: bool,
    seen: Vec<Vec<u8>>,
    /// Status, flag byte and (on failure) message of each unsubscribe made from inside
    /// the visitor.
    inner: Vec<(roost_status, u8, String)>,
}

unsafe extern "C" fn visit(context: *mut c_void, topic: *const u8, topic_len: usize) {
    // SAFETY: `context` is the `Visits` that `topics` passed, alive for the call.
    let v = unsafe { &mut *context.cast::<Visits>() };
    // SAFETY: the library passes `topic_len` readable bytes, valid during this call.
    v.seen.push(unsafe { view(topic, topic_len) }.unwrap_or(&[]).to_vec());
    if v.unsubscribe {
        let mut slot = FLAG_UNSET;
        // SAFETY: the topic as given, and a live byte for the flag.
        let st = unsafe {
            roost_connection_unsubscribe(v.server, v.id, topic, topic_len, (&mut slot as *mut u8).cast())
        };
        let message = if st == ROOST_OK { String::new() } else { last_error() };
        v.inner.push((st, slot, message));
    }
}

/// roost_connection_topics with no visitor (`visitor` false), or one that collects the
/// topics and, when `unsubscribe`, unsubscribes the connection from each. Returns what
/// the visitor saw and the count written, on success. A failed call must visit nothing.
fn topics(
    a: &mut Audit,
    s: *mut roost_server,
    id: u64,
    visitor: bool,
    unsubscribe: bool,
    out: bool,
    allowed: impl FnOnce() -> Set,
) -> Option<(Visits, usize)> {
    let mut v = Visits { server: s, id, unsubscribe, seen: Vec::new(), inner: Vec::new() };
    let mut n = OUT_SENTINEL;
    let out_ptr = if out { &mut n as *mut usize } else { null_mut() };
    let visit_fn: roost_topic_visitor = if visitor { Some(visit) } else { None };
    // SAFETY: `v` outlives the call; `out_ptr` NULL or live.
    let st = unsafe { roost_connection_topics(s, id, visit_fn, (&mut v as *mut Visits).cast(), out_ptr) };
    a.record("topics", st, allowed(), || format!("connection {id}, visitor {visitor}, out {out}"));
    if st != ROOST_OK && (n != OUT_SENTINEL || !v.seen.is_empty()) {
        a.violation(format!("topics failed but wrote out_count or visited {} topics", v.seen.len()));
    }
    if st == ROOST_OK && out && n != v.seen.len() {
        a.violation(format!("topics wrote count {n} after {} visits", v.seen.len()));
    }
    (st == ROOST_OK).then_some((v, n))
}

/// Checks the unsubscribes a visitor made: each gives a status in `allowed` and a
/// message when it fails; with `exact`, each that succeeds reports a subscription (the
/// visitor is given only topics the connection had when the call began, true when no
/// other thread changes its topics meanwhile). Returns the topics they removed.
fn check_inner(a: &mut Audit, v: &Visits, allowed: Set, exact: bool) -> Vec<Vec<u8>> {
    let mut removed = Vec::new();
    for ((st, slot, message), topic) in v.inner.iter().zip(&v.seen) {
        a.record("unsubscribe (visitor)", *st, allowed, || format!("connection {}", v.id));
        if *st != ROOST_OK && message.is_empty() {
            a.violation("unsubscribe in a visitor failed without a message".into());
        }
        if *st == ROOST_OK {
            if *slot > 1 || (exact && *slot != 1) {
                a.violation(format!("unsubscribe in a visitor reported flag byte {slot} for a topic it had"));
            }
            removed.push(topic.clone());
        }
    }
    removed
}

/// roost_server_stats into a buffer of `size` bytes (`out` false: NULL), checking that a
/// failure writes nothing and a success writes `size` bytes: the known fields, `size`
/// in the first, zeros after them.
fn stats(
    a: &mut Audit,
    s: *mut roost_server,
    size: usize,
    out: bool,
    allowed: impl FnOnce() -> Set,
) -> Option<roost_stats> {
    const FILL: u8 = 0xa5;
    let known = std::mem::size_of::<roost_stats>();
    let mut buf = [0u64; 64];
    let bytes = std::mem::size_of_val(&buf);
    assert!(size <= bytes - 8, "stats buffer too small for size {size}");
    // SAFETY: `buf` is `bytes` bytes of plain integers.
    unsafe { std::ptr::write_bytes(buf.as_mut_ptr().cast::<u8>(), FILL, bytes) };
    let out_ptr = if out { buf.as_mut_ptr().cast::<roost_stats>() } else { null_mut() };
    // SAFETY: `out_ptr` NULL or `bytes` >= `size` writable bytes, aligned for u64.
    let st = unsafe { roost_server_stats(s, out_ptr, size) };
    a.record("stats", st, allowed(), || format!("size {size}, out {out}"));
    // SAFETY: plain bytes.
    let raw = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), bytes) };
    if st != ROOST_OK {
        if raw.iter().any(|b| *b != FILL) {
            a.violation(format!("stats wrote its struct on failure (size {size})"));
        }
        return None;
    }
    // The fields the library wrote; those a smaller (older) struct lacks stay zero.
    let mut got = roost_stats::default();
    // SAFETY: `raw` has at least `size` bytes, `got` is `known` writable bytes, and the
    // bytes written are a valid roost_stats prefix.
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr(),
            (&mut got as *mut roost_stats).cast::<u8>(),
            size.min(known),
        )
    };
    if got.size as usize != size
        || raw[known.min(size)..size].iter().any(|b| *b != 0)
        || raw[size..].iter().any(|b| *b != FILL)
    {
        a.violation(format!("stats of size {size}: size field {}, tail not zeroed or overrun", got.size));
    }
    Some(got)
}

/// `sizeof(roost_stats)` in the first header (0.1.0): the smallest size accepted.
const FIRST_STATS_SIZE: usize = 40;

/// A size for roost_server_stats and whether the library must accept it.
fn stats_size(rng: &mut Rng) -> (usize, bool) {
    let known = std::mem::size_of::<roost_stats>();
    match rng.below(7) {
        0 => (FIRST_STATS_SIZE - 1, false),
        1 => (rng.below(FIRST_STATS_SIZE as u64) as usize, false),
        2 => (known + 8 * rng.range(1, 8) as usize, true),
        3 => (FIRST_STATS_SIZE + rng.below((known - FIRST_STATS_SIZE) as u64) as usize, true),
        _ => (known, true),
    }
}

// ---------------------------------------------------------------------------------
// Test 1: one thread, a model of each server, exact expectations
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Life {
    /// Not started (a stop on it changed nothing).
    Created,
    Running,
    /// Stopped after running: sends and broadcasts give CLOSED.
    Stopped,
    Freed,
}

struct Model {
    handle: *mut roost_server,
    life: Life,
    routes: Vec<Vec<u8>>,
    /// Where the server listens once started.
    addr: SocketAddr,
    fd: c_int,
    log: EventLog,
    clients: Vec<Client>,
    /// The topics of each connection, as this thread's successful calls left them.
    subs: HashMap<u64, Vec<Vec<u8>>>,
    /// The slow-consumer counters last read, which never go down.
    skipped: u64,
    closed: u64,
}

const S_IA: Set = Set(1 << ROOST_INVALID_ARGUMENT as u32);

/// Expected status of a connection call (send, close, pause, join) with valid
/// arguments on a live handle, given the server's life and the id's state; `live` is
/// the set for a connection that may be open, closing or just gone.
fn conn_expectation(life: Life, state: Option<Conn>, live: Set, closing: Set) -> Set {
    match life {
        Life::Freed => S_IA,
        Life::Stopped => Set::of(&[ROOST_CLOSED]),
        Life::Created => Set::of(&[ROOST_NOT_FOUND]),
        Life::Running => match state {
            None | Some(Conn::Retired) => Set::of(&[ROOST_NOT_FOUND]),
            Some(Conn::Live) => live,
            Some(Conn::Closing) => closing,
        },
    }
}

impl Model {
    /// Polls until a poll returns nothing, then (when `wait_ms` > 0) waits on the ready
    /// descriptor and repeats until `until` holds or the time is up.
    fn pump(&mut self, a: &mut Audit, wait_ms: u64, mut until: impl FnMut(&EventLog) -> bool) -> bool {
        if self.life == Life::Freed {
            return until(&self.log);
        }
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let mut events = [MaybeUninit::<roost_event>::uninit(); 16];
        loop {
            let mut n = OUT_SENTINEL;
            // SAFETY: 16 writable events and a live count.
            let st = unsafe {
                roost_server_poll(
                    self.handle,
                    events.as_mut_ptr().cast(),
                    16,
                    std::mem::size_of::<roost_event>(),
                    &mut n,
                )
            };
            a.record("poll", st, Set::of(&[ROOST_OK]), || "pump".into());
            if st != ROOST_OK {
                return false;
            }
            if n > 16 {
                a.violation(format!("poll returned {n} events for capacity 16"));
                return false;
            }
            for e in &events[..n] {
                // SAFETY: the first n were written by this poll.
                unsafe { self.log.take(e.assume_init_ref(), self.routes.len() as u32) };
            }
            if until(&self.log) {
                return true;
            }
            if n == 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                fd_readable(self.fd, left.as_millis().min(100) as i32);
            }
        }
    }

    fn routes_set(&self) -> usize {
        self.routes.len()
    }

    /// The model's subscriptions of connections not known to have ended: what the server
    /// has, or more (a connection can end before its DISCONNECT is polled).
    fn subscriptions(&self) -> impl Iterator<Item = (&u64, &Vec<Vec<u8>>)> {
        self.subs.iter().filter(|(id, _)| self.log.conns.get(id) != Some(&Conn::Retired))
    }

    /// Mostly a connection with topics, when there is one (for unsubscribes and visits that
    /// find something); else any id as `choose_id` picks it.
    fn choose_subscriber(&self, rng: &mut Rng) -> (u64, Option<Conn>, bool) {
        let with_topics: Vec<u64> =
            self.subscriptions().filter(|(_, topics)| !topics.is_empty()).map(|(id, _)| *id).collect();
        if with_topics.is_empty() || rng.chance(40) {
            return choose_id(rng, &self.log);
        }
        let id = *rng.pick(&with_topics);
        let state = self.log.conns.get(&id).copied();
        (id, state, state.is_some())
    }

    /// At least the number of subscribers of `topic` but `exclude` the server has.
    fn most_subscribers(&self, topic: &[u8], exclude: u64) -> usize {
        self.subscriptions()
            .filter(|(id, topics)| **id != exclude && topics.iter().any(|t| t == topic))
            .count()
    }

    /// At least the number of topics with a subscriber the server has.
    fn most_topics(&self) -> usize {
        let mut all: Vec<&Vec<u8>> = self.subscriptions().flat_map(|(_, topics)| topics).collect();
        all.sort();
        all.dedup();
        all.len()
    }
}

fn route_path(rng: &mut Rng, scratch: &mut Vec<u8>, existing: &[Vec<u8>]) -> (Data, bool, bool) {
    let text: Option<&[u8]> = match rng.below(16) {
        0 => Some(b"noslash"),
        1 => Some(b"/a?b=1"),
        2 => Some(b"/a b"),
        3 => Some("/nbsp\u{a0}".as_bytes()),
        4 => Some(b""),
        5 => Some(b"/\xff"),
        6 => None,
        7 if !existing.is_empty() => Some(rng.pick(existing).as_slice()),
        8 => Some(b"/"),
        9 => Some("/ünï/côdé".as_bytes()),
        _ => None,
    };
    let data = match text {
        Some(bytes) => {
            scratch.clear();
            scratch.extend_from_slice(bytes);
            data_of(scratch, "route path")
        }
        None if rng.chance(10) => {
            Data { ptr: null(), len: 3, bad_pointer: true, utf8: false, label: "NULL path" }
        }
        None => {
            scratch.clear();
            scratch.extend_from_slice(format!("/r{}", rng.below(1000)).as_bytes());
            data_of(scratch, "route path")
        }
    };
    // `data` is the bad NULL only when `bad_pointer`, and is then not read.
    let bytes = if data.bad_pointer {
        &[][..]
    } else {
        // SAFETY: `data` points into `scratch`.
        unsafe { view(data.ptr, data.len) }.unwrap_or(&[])
    };
    let syntax_ok = !data.bad_pointer
        && std::str::from_utf8(bytes)
            .is_ok_and(|p| p.starts_with('/') && !p.contains('?') && !p.contains(char::is_whitespace));
    let duplicate = existing.iter().any(|r| r.as_slice() == bytes);
    (data, syntax_ok, duplicate)
}

/// The set for a live-handle, valid-argument call of a model whose handle may have
/// been replaced by a NULL or forged one: returns (handle, handle_is_live).
fn choose_handle(rng: &mut Rng, m: &Model, freed: &[usize]) -> (*mut roost_server, bool) {
    match rng.below(20) {
        0 => (null_mut(), false),
        1 => (forged_handle(rng, freed), false),
        _ => (m.handle, m.life != Life::Freed),
    }
}

/// Picks a connection id: live, retired, never issued, or next to come.
fn choose_id(rng: &mut Rng, log: &EventLog) -> (u64, Option<Conn>, bool) {
    let live = log.live_ids();
    let retired: Vec<u64> = log.conns.iter().filter(|(_, c)| **c == Conn::Retired).map(|(i, _)| *i).collect();
    match rng.below(10) {
        0..=4 if !live.is_empty() => {
            let id = *rng.pick(&live);
            (id, log.conns.get(&id).copied(), true)
        }
        5 | 6 if !retired.is_empty() => (*rng.pick(&retired), Some(Conn::Retired), true),
        7 => (log.max_id + 1 + rng.below(3), None, false),
        _ => {
            // Never issued: 0, the top of the range, or far beyond anything issued.
            let far = log.max_id + 1_000_000 + rng.below(1 << 40);
            let id = *rng.pick(&[0, u64::MAX, far]);
            (id, None, true)
        }
    }
}

fn sequential_round(seed: u64, round: u64, taken_port: u16, freed: &mut Vec<usize>, a: &mut Audit) {
    let mut rng = Rng::new(seed, round);
    let mut scratch = Vec::new();
    let mut scratch2 = Vec::new();
    let huge_budget = AtomicU32::new(3);

    // Creation, with NULL out and out-of-range options on the way.
    for _ in 0..4 {
        let (options, valid) = random_options(&mut rng);
        let mut s = 0x10usize as *mut roost_server; // sentinel: must stay on failure
        let null_out = rng.chance(15);
        let out_ptr = if null_out { null_mut() } else { &mut s as *mut *mut roost_server };
        // SAFETY: `options` is a live struct; `out_ptr` NULL or live.
        let st = unsafe { roost_server_new(&options, out_ptr) };
        let want = if valid && !null_out { Set::of(&[ROOST_OK]) } else { S_IA };
        a.record("server_new", st, want, || format!("options {options:?}, out NULL {null_out}"));
        if st == ROOST_OK {
            assert_eq!(roost_server_free(s), ROOST_OK);
            freed.push(s as usize);
        } else if s as usize != 0x10 {
            a.violation("roost_server_new wrote *out on failure".into());
        }
    }
    // SAFETY: NULL is documented to be refused.
    let st = unsafe { roost_options_init(null_mut(), std::mem::size_of::<roost_options>()) };
    a.record("options_init", st, S_IA, || "NULL".into());
    assert!(!roost_version().is_null());

    let options = options_with(&mut rng);
    let mut handle = null_mut();
    let use_defaults = rng.chance(20);
    // SAFETY: live options and out.
    let st = unsafe { roost_server_new(if use_defaults { null() } else { &options }, &mut handle) };
    a.record("server_new", st, Set::of(&[ROOST_OK]), || "sane options".into());
    assert_eq!(st, ROOST_OK, "seed {seed:#x}: roost_server_new failed: {}", last_error());
    let mut fd: c_int = -1;
    // SAFETY: live out.
    assert_eq!(unsafe { roost_server_ready_fd(handle, &mut fd) }, ROOST_OK);
    let mut m = Model {
        handle,
        life: Life::Created,
        routes: Vec::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        fd,
        log: EventLog::default(),
        clients: Vec::new(),
        subs: HashMap::new(),
        skipped: 0,
        closed: 0,
    };

    // Most rounds start right away, so that most calls meet a running server; the
    // others reach start (or never do) through the random steps.
    if rng.chance(70) {
        for path in ["/a", "/b"].iter().take(1 + rng.below(2) as usize) {
            let route =
                add_route(a, m.handle, data_of(path.as_bytes(), "route path"), true, Set::of(&[ROOST_OK]));
            assert_eq!(route, Some(m.routes.len() as u32), "seed {seed:#x}");
            m.routes.push(path.as_bytes().to_vec());
        }
        let mut bound = 0;
        // SAFETY: live host and out.
        let st = unsafe { roost_server_start(m.handle, "127.0.0.1".as_ptr(), 9, 0, &mut bound) };
        a.record("start", st, Set::of(&[ROOST_OK]), || "prelude".into());
        assert_eq!(st, ROOST_OK, "seed {seed:#x}: start: {}", last_error());
        (m.life, m.addr) = (Life::Running, SocketAddr::from(([127, 0, 0, 1], bound)));
    }
    let steps = 400;
    let free_at = if rng.chance(50) { steps - 40 } else { steps };
    for step in 0..steps {
        if step == free_at && m.life != Life::Freed {
            // Free mid-sequence: everything after it sees a dead handle.
            let st = roost_server_free(m.handle);
            a.record("free", st, Set::of(&[ROOST_OK]), || format!("life {:?}", m.life));
            m.life = Life::Freed;
            freed.push(m.handle as usize);
        }
        let step_started = Instant::now();
        let (h, h_live) = choose_handle(&mut rng, &m, freed);
        let dead = |valid_args: bool, set: Set| if !h_live || !valid_args { S_IA } else { set };
        match rng.below(46) {
            0 | 1 => {
                let (path, syntax_ok, duplicate) = route_path(&mut rng, &mut scratch, &m.routes);
                let out = !rng.chance(10);
                let want = if !out || !syntax_ok || !h_live {
                    S_IA
                } else if m.life != Life::Created {
                    Set::of(&[ROOST_INVALID_STATE])
                } else if duplicate {
                    S_IA
                } else {
                    Set::of(&[ROOST_OK])
                };
                if let Some(route) = add_route(a, h, path, out, want) {
                    if route as usize != m.routes.len() {
                        a.violation(format!("add_route gave id {route}, expected {}", m.routes.len()));
                    }
                    // SAFETY: a valid path just accepted.
                    m.routes.push(unsafe { std::slice::from_raw_parts(path.ptr, path.len) }.to_vec());
                }
            }
            2 | 3 => {
                // Start early and often: most of the test needs a running server.
                let (host, host_set): (Data, Set) = match rng.below(8) {
                    0 => (
                        Data { ptr: null(), len: 9, bad_pointer: true, utf8: false, label: "NULL host" },
                        S_IA,
                    ),
                    1 => (data_of(b"127.0.0.1\xff", "host not UTF-8"), S_IA),
                    2 => (data_of(b"127.0.0.1\0evil", "host with NUL"), Set::of(&[ROOST_IO])),
                    3 => (data_of(b"::1", "::1"), Set::of(&[ROOST_OK, ROOST_IO])),
                    _ => (data_of(b"127.0.0.1", "127.0.0.1"), Set::of(&[ROOST_OK])),
                };
                let port = if rng.chance(15) { taken_port } else { 0 };
                // The taken port is taken on 127.0.0.1 only.
                let port_set = match (port == taken_port, host.label) {
                    (true, "127.0.0.1") => Set::of(&[ROOST_IO]),
                    _ => host_set,
                };
                let out = !rng.chance(10);
                let want = if !out || host.bad_pointer || !host.utf8 || !h_live {
                    S_IA
                } else if m.life != Life::Created || m.routes_set() == 0 {
                    Set::of(&[ROOST_INVALID_STATE])
                } else {
                    port_set
                };
                let mut bound: u16 = 1;
                let out_ptr = if out { &mut bound as *mut u16 } else { null_mut() };
                // SAFETY: `host` valid or a refused bad pointer; `out_ptr` NULL or live.
                let st = unsafe { roost_server_start(h, host.ptr, host.len, port, out_ptr) };
                a.record("start", st, want, || format!("host {}, port {port}", host.describe()));
                if st == ROOST_OK {
                    m.life = Life::Running;
                    let ip: std::net::IpAddr = if host.label == "::1" {
                        [0u16, 0, 0, 0, 0, 0, 0, 1].into()
                    } else {
                        [127, 0, 0, 1].into()
                    };
                    m.addr = SocketAddr::new(ip, bound);
                    if bound == 0 {
                        a.violation("start gave port 0".into());
                    }
                } else if bound != 1 {
                    a.violation("start wrote out_port on failure".into());
                }
            }
            4 => {
                let out = !rng.chance(20);
                let mut got: c_int = -7;
                let out_ptr = if out { &mut got as *mut c_int } else { null_mut() };
                // SAFETY: NULL or live.
                let st = unsafe { roost_server_ready_fd(h, out_ptr) };
                a.record("ready_fd", st, dead(out, Set::of(&[ROOST_OK])), || format!("out {out}"));
                if st == ROOST_OK && got != m.fd {
                    a.violation(format!("ready_fd changed: {got} != {}", m.fd));
                }
            }
            5..=8 => {
                if h_live && rng.chance(85) {
                    m.pump(a, 0, |_| false);
                } else {
                    let mut events = [MaybeUninit::<roost_event>::uninit(); 4];
                    let (ev, cap, out) = match rng.below(3) {
                        0 => (null_mut(), 4, true),
                        1 => (events.as_mut_ptr().cast::<roost_event>(), 0, true),
                        _ => (events.as_mut_ptr().cast::<roost_event>(), 4, false),
                    };
                    let mut n = OUT_SENTINEL;
                    let out_ptr = if out { &mut n as *mut usize } else { null_mut() };
                    // SAFETY: `ev` NULL or 4 writable events; the bad cases are refused.
                    let st =
                        unsafe { roost_server_poll(h, ev, cap, std::mem::size_of::<roost_event>(), out_ptr) };
                    let valid = !ev.is_null() && cap > 0 && out;
                    a.record("poll", st, dead(valid, Set::of(&[ROOST_OK])), || {
                        format!("events NULL {}, cap {cap}, out {out}", ev.is_null())
                    });
                    if st == ROOST_OK {
                        // Events polled on a bad-argument path are still checked.
                        for e in &events[..n.min(4)] {
                            // SAFETY: written by this poll.
                            unsafe { m.log.take(e.assume_init_ref(), m.routes.len() as u32) };
                        }
                    }
                }
            }
            9..=15 => {
                let (id, state, exact) = choose_id(&mut rng, &m.log);
                let data = payload(&mut rng, &mut scratch, &huge_budget);
                let text = rng.chance(50);
                let args_ok = !data.bad_pointer && (!text || data.utf8);
                let live = Set::of(&[ROOST_OK, ROOST_WOULD_BLOCK, ROOST_CLOSED, ROOST_NOT_FOUND]);
                let closing = Set::of(&[ROOST_CLOSED, ROOST_NOT_FOUND]);
                let mut want = dead(args_ok, conn_expectation(m.life, state, live, closing));
                if !exact && h_live && args_ok && m.life == Life::Running {
                    want = want.or(live);
                }
                send(a, h, id, data, text, want);
            }
            16..=18 => {
                let route = match rng.below(4) {
                    0 => rng.next() as u32,
                    1 => m.routes.len() as u32,
                    _ => rng.below(m.routes.len().max(1) as u64) as u32,
                };
                let data = payload(&mut rng, &mut scratch, &huge_budget);
                let text = rng.chance(50);
                let args_ok = !data.bad_pointer && (!text || data.utf8);
                let want = match m.life {
                    Life::Running if (route as usize) < m.routes.len() => Set::of(&[ROOST_OK]),
                    Life::Running | Life::Created => Set::of(&[ROOST_NOT_FOUND]),
                    Life::Stopped => Set::of(&[ROOST_CLOSED]),
                    Life::Freed => S_IA,
                };
                let out = rng.chance(80);
                if let Some(n) = broadcast(a, h, route, data, text, out, dead(args_ok, want)) {
                    let live = m.log.live_ids().len();
                    if n > live {
                        a.violation(format!("broadcast reached {n} recipients with {live} live connections"));
                    }
                }
            }
            19..=21 => {
                let (id, state, exact) = choose_id(&mut rng, &m.log);
                let code = close_code(&mut rng);
                let (why, fits) = reason(&mut rng, &mut scratch2);
                let args_ok = fits && sendable_close_code(code);
                let live = Set::of(&[ROOST_OK, ROOST_CLOSED, ROOST_NOT_FOUND]);
                let closing = Set::of(&[ROOST_CLOSED, ROOST_NOT_FOUND]);
                let mut want = dead(args_ok, conn_expectation(m.life, state, live, closing));
                if !exact && h_live && args_ok && m.life == Life::Running {
                    want = want.or(live);
                }
                if close(a, h, id, code, why, want) == ROOST_OK {
                    m.log.conns.insert(id, Conn::Closing);
                }
            }
            22 => {
                let (id, state, exact) = choose_id(&mut rng, &m.log);
                let live = Set::of(&[ROOST_OK, ROOST_NOT_FOUND]);
                let mut want = dead(true, conn_expectation(m.life, state, live, live));
                if !exact && h_live && m.life == Life::Running {
                    want = want.or(live);
                }
                let paused = rng.chance(50);
                let st = roost_connection_pause_reading(h, id, paused);
                a.record("pause_reading", st, want, || format!("connection {id}, paused {paused}"));
            }
            23 => {
                let (id, state, exact) = choose_id(&mut rng, &m.log);
                let live = Set::of(&[ROOST_OK, ROOST_NOT_FOUND]);
                let mut want = dead(true, conn_expectation(m.life, state, live, live));
                if !exact && h_live && m.life == Life::Running {
                    want = want.or(live);
                }
                let st = roost_connection_join_broadcast(h, id);
                a.record("join_broadcast", st, want, || format!("connection {id}"));
            }
            24 => {
                let out = !rng.chance(15);
                if let Some(n) = count(a, h, out, dead(out, Set::of(&[ROOST_OK]))) {
                    if m.life != Life::Running && n != 0 {
                        a.violation(format!("connection_count {n} on a server in state {:?}", m.life));
                    }
                }
            }
            25..=35 if m.life == Life::Running => {
                // Real clients: connect (and see the CONNECT), act, leave.
                if m.clients.len() < 6 && rng.chance(60) {
                    let route = rng.below(m.routes.len() as u64) as usize;
                    let mut target = String::from_utf8_lossy(&m.routes[route]).into_owned();
                    if rng.chance(30) {
                        target.push_str("?q=1&x");
                    }
                    // A route path that is not a valid request target (e.g. non-ASCII)
                    // is refused at the handshake: fine, the client is then dropped.
                    if let Some(client) = open_client(m.addr, &target, rng.chance(20)) {
                        let peer = client.peer.clone();
                        m.clients.push(client);
                        let connected = m.pump(a, 5000, |log| log.peers.contains_key(&peer));
                        if !connected {
                            a.violation(format!("no CONNECT for an upgraded client {peer} (step {step})"));
                        }
                    }
                } else if rng.chance(20) {
                    let _ = hostile_handshake(&mut rng, m.addr, &mut scratch);
                } else if !m.clients.is_empty() {
                    let i = rng.below(m.clients.len() as u64) as usize;
                    if rng.chance(15) {
                        let c = m.clients.swap_remove(i);
                        client_leave(&mut rng, c);
                    } else if !client_step(&mut rng, &mut m.clients[i], &mut scratch) {
                        m.clients.swap_remove(i);
                    }
                }
            }
            38 | 39 => {
                let join = rng.chance(60);
                let (id, state, exact) =
                    if join { choose_id(&mut rng, &m.log) } else { m.choose_subscriber(&mut rng) };
                let (topic, topic_ok) = topic_arg(&mut rng);
                let out = rng.chance(85);
                let live = membership_statuses(join);
                let mut want = dead(topic_ok, conn_expectation(m.life, state, live, live));
                if !exact && h_live && topic_ok && m.life == Life::Running {
                    want = want.or(live);
                }
                let (st, flag) = join_or_leave(a, h, id, topic, join, out, || want);
                if st == ROOST_OK {
                    let name = topic_bytes(&topic);
                    let joined = m.subs.entry(id).or_default();
                    let had = joined.contains(&name);
                    if flag.is_some_and(|f| f != (join != had)) {
                        let what = if join { "subscribe" } else { "unsubscribe" };
                        a.violation(format!("{what} of {id} reported {flag:?}; it had the topic: {had}"));
                    }
                    if join && !had {
                        joined.push(name);
                    } else if !join {
                        joined.retain(|t| *t != name);
                    }
                }
            }
            40 | 41 => {
                let (topic, topic_ok) = topic_arg(&mut rng);
                let data = payload(&mut rng, &mut scratch, &huge_budget);
                let text = rng.chance(50);
                let args_ok = topic_ok && !data.bad_pointer && (!text || data.utf8);
                let exclude = match rng.below(3) {
                    0 => ROOST_NO_CONNECTION,
                    1 => choose_id(&mut rng, &m.log).0,
                    _ => rng.next(),
                };
                let want = match m.life {
                    Life::Created | Life::Running => Set::of(&[ROOST_OK]),
                    Life::Stopped => Set::of(&[ROOST_CLOSED]),
                    Life::Freed => S_IA,
                };
                let out = rng.chance(80);
                if let Some(n) = publish(a, h, topic, data, text, exclude, out, || dead(args_ok, want)) {
                    let most = m.most_subscribers(&topic_bytes(&topic), exclude);
                    if n > most {
                        a.violation(format!("publish reached {n} recipients; at most {most} are subscribed"));
                    }
                }
            }
            42 => {
                let (topic, topic_ok) = topic_arg(&mut rng);
                let out = !rng.chance(10);
                if let Some(n) =
                    subscriber_count(a, h, topic, out, || dead(topic_ok && out, Set::of(&[ROOST_OK])))
                {
                    let most = m.most_subscribers(&topic_bytes(&topic), ROOST_NO_CONNECTION);
                    if n > most || (m.life == Life::Created && n != 0) {
                        a.violation(format!(
                            "subscriber_count {n}; at most {most} subscribed, life {:?}",
                            m.life
                        ));
                    }
                }
            }
            43 => {
                let (id, state, exact) = m.choose_subscriber(&mut rng);
                let visitor = !rng.chance(10);
                let out = rng.chance(80);
                let live = Set::of(&[ROOST_OK, ROOST_NOT_FOUND]);
                let mut want = dead(visitor, conn_expectation(m.life, state, live, live));
                if !exact && h_live && visitor && m.life == Life::Running {
                    want = want.or(live);
                }
                if let Some((v, _)) = topics(a, h, id, visitor, rng.chance(30), out, || want) {
                    let mut expected = m.subs.get(&id).cloned().unwrap_or_default();
                    let mut seen = v.seen.clone();
                    expected.sort();
                    seen.sort();
                    if seen != expected {
                        a.violation(format!("topics of {id}: visited {seen:?}, subscribed {expected:?}"));
                    }
                    let removed = check_inner(a, &v, live, true);
                    if let Some(joined) = m.subs.get_mut(&id) {
                        joined.retain(|t| !removed.contains(t));
                    }
                }
            }
            44 => {
                let (size, size_ok) = stats_size(&mut rng);
                let out = !rng.chance(10);
                if let Some(got) = stats(a, h, size, out, || dead(size_ok && out, Set::of(&[ROOST_OK]))) {
                    let (live, most_topics) = (m.log.live_ids().len() as u64, m.most_topics() as u64);
                    if got.connections > live || got.topics > most_topics {
                        a.violation(format!(
                            "stats: {} connections, {} topics; at most {live} and {most_topics}",
                            got.connections, got.topics
                        ));
                    }
                    if got.deliveries_skipped < m.skipped || got.slow_consumers_closed < m.closed {
                        a.violation(format!("stats: counters went down: {got:?}"));
                    }
                    (m.skipped, m.closed) = (got.deliveries_skipped, got.slow_consumers_closed);
                }
            }
            36 if rng.chance(25) => {
                let grace = rng.below(100) as u32;
                let st = roost_server_stop(h, grace);
                a.record("stop", st, dead(true, Set::of(&[ROOST_OK])), || format!("grace {grace}"));
                if st == ROOST_OK && h_live && m.life == Life::Running {
                    m.life = Life::Stopped;
                }
            }
            37 if rng.chance(8) => {
                let st = roost_server_free(h);
                let want = if h.is_null() { Set::of(&[ROOST_OK]) } else { dead(true, Set::of(&[ROOST_OK])) };
                a.record("free", st, want, || format!("life {:?}", m.life));
                if st == ROOST_OK && h_live {
                    m.life = Life::Freed;
                    freed.push(m.handle as usize);
                }
            }
            _ if rng.chance(25) => {
                let st = roost_server_free(null_mut());
                a.record("free", st, Set::of(&[ROOST_OK]), || "NULL".into());
            }
            _ => {
                m.pump(a, 0, |_| false);
            }
        }
        if step_started.elapsed() > Duration::from_millis(300) {
            eprintln!("round {round} step {step}: slow ({:?}), life {:?}", step_started.elapsed(), m.life);
        }
    }

    // Every client leaves; every connection must then be retired and counted out.
    while let Some(c) = m.clients.pop() {
        client_leave(&mut rng, c);
    }
    if m.life != Life::Freed {
        let all_retired = m.pump(a, 8000, |log| log.conns.values().all(|c| *c == Conn::Retired));
        if !all_retired {
            a.violation(format!("round {round}: connections never disconnected: {:?}", m.log.live_ids()));
        }
        let n = count(a, m.handle, true, Set::of(&[ROOST_OK]));
        if n != Some(0) {
            a.violation(format!("round {round}: connection_count {n:?} after every client left"));
        }
        let st = roost_server_free(m.handle);
        a.record("free", st, Set::of(&[ROOST_OK]), || "end of round".into());
        freed.push(m.handle as usize);
    }
    // Dead for good: a few calls on the freed handle.
    let st = roost_server_free(m.handle);
    a.record("free", st, S_IA, || "double free".into());
    // SAFETY: a live out; the handle is refused before it is used.
    let st = unsafe { roost_server_connection_count(m.handle, &mut 0) };
    a.record("connection_count", st, S_IA, || "after free".into());
    for v in m.log.violations {
        a.violation(format!("round {round}: event contract: {v}"));
    }
}

#[test]
fn random_call_sequences_on_one_thread_give_documented_statuses() {
    let seed = base_seed();
    let started = Instant::now();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut audit = Audit::default();
    let mut freed = Vec::new();
    for round in 0..16 {
        sequential_round(seed, round, taken_port, &mut freed, &mut audit);
    }
    drop(taken);
    audit.assert_clean(seed, "one thread");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------
// Test 2: four threads calling at once, one polling, real clients coming and going
// ---------------------------------------------------------------------------------

/// Phases of the concurrent test, in order.
const RUNNING: u8 = 0;
const LEAVING: u8 = 1;
const STOPPING: u8 = 2;
const STOPPED: u8 = 3;
const FREEING: u8 = 4;
const FREED: u8 = 5;

struct Shared {
    handle: usize,
    routes: u32,
    addr: SocketAddr,
    phase: AtomicU8,
    /// Ids whose CONNECT was polled and DISCONNECT not yet.
    live: Mutex<Vec<u64>>,
    retired: Mutex<VecDeque<u64>>,
    max_id: AtomicU64,
    huge_budget: AtomicU32,
    done: AtomicBool,
    poller_done: AtomicBool,
}

impl Shared {
    fn handle(&self) -> *mut roost_server {
        self.handle as *mut roost_server
    }
}

/// The statuses allowed in `phase` for a call with valid arguments; `running` is the
/// set while the server runs.
fn in_phase(phase: u8, running: Set, stopped: Set) -> Set {
    match phase {
        RUNNING | LEAVING => running,
        STOPPING => running.or(stopped),
        STOPPED => stopped,
        FREEING => stopped.or(S_IA),
        _ => S_IA,
    }
}

fn across(before: u8, after: u8, running: Set, stopped: Set) -> Set {
    (before..=after).fold(Set::NONE, |acc, p| acc.or(in_phase(p, running, stopped)))
}

fn abuser(shared: Arc<Shared>, seed: u64, index: u64) -> Audit {
    let mut rng = Rng::new(seed, 100 + index);
    let mut a = Audit::default();
    let mut scratch = Vec::new();
    let mut scratch2 = Vec::new();
    let freed: Vec<usize> = Vec::new();
    let closed_set = Set::of(&[ROOST_CLOSED]);
    let mut ops = 0u64;
    while !shared.done.load(Ordering::Acquire) {
        ops += 1;
        if ops.is_multiple_of(16) {
            std::thread::sleep(Duration::from_micros(500));
        }
        // Mostly the real handle; sometimes NULL or forged.
        let (h, h_ok) = match rng.below(25) {
            0 => (null_mut(), false),
            1 => (forged_handle(&mut rng, &freed), false),
            _ => (shared.handle(), true),
        };
        let id_pick = rng.below(10);
        let (id, never_issued) = match id_pick {
            0..=4 => match shared.live.lock().unwrap().as_slice() {
                [] => (shared.max_id.load(Ordering::Acquire) + 1, false),
                live => (*rng.pick(live), false),
            },
            5 | 6 => match shared.retired.lock().unwrap().iter().nth(rng.below(64) as usize) {
                Some(id) => (*id, false),
                None => (0, true),
            },
            7 => (shared.max_id.load(Ordering::Acquire) + 1 + rng.below(3), false),
            _ => {
                let far = (1 << 50) + rng.below(1 << 20);
                (*rng.pick(&[0, u64::MAX, far]), true)
            }
        };
        let unknown = Set::of(&[ROOST_NOT_FOUND]);
        let before = shared.phase.load(Ordering::Acquire);
        // Each arm returns (what, status, allowed-in-phase function inputs).
        // The statuses allowed for a call begun in phase `before` (ROOST_INVALID_ARGUMENT
        // alone unless `args_ok`), as a closure to call once it has returned.
        let now: &Shared = &shared;
        let allowed = |args_ok: bool, running: Set, stopped: Set| {
            move || {
                if args_ok {
                    across(before, now.phase.load(Ordering::Acquire), running, stopped)
                } else {
                    S_IA
                }
            }
        };
        match rng.below(22) {
            0..=5 => {
                let data = payload(&mut rng, &mut scratch, &shared.huge_budget);
                let text = rng.chance(50);
                let args_ok = h_ok && !data.bad_pointer && (!text || data.utf8);
                // SAFETY: valid data or a refused bad pointer.
                let st = unsafe {
                    if text {
                        roost_connection_send_text(h, id, data.ptr, data.len)
                    } else {
                        roost_connection_send_binary(h, id, data.ptr, data.len)
                    }
                };
                let after = shared.phase.load(Ordering::Acquire);
                let running = if never_issued {
                    unknown
                } else {
                    Set::of(&[ROOST_OK, ROOST_WOULD_BLOCK, ROOST_CLOSED, ROOST_NOT_FOUND])
                };
                let want = if args_ok { across(before, after, running, closed_set) } else { S_IA };
                a.record(if text { "send_text" } else { "send_binary" }, st, want, || {
                    format!("connection {id}, data {}, phase {before}..{after}", data.describe())
                });
            }
            6 | 7 => {
                let route = if rng.chance(85) {
                    rng.below(u64::from(shared.routes)) as u32
                } else {
                    rng.next() as u32 | 2
                };
                let data = payload(&mut rng, &mut scratch, &shared.huge_budget);
                let text = rng.chance(50);
                let args_ok = h_ok && !data.bad_pointer && (!text || data.utf8);
                let mut recipients = OUT_SENTINEL;
                // SAFETY: valid data or a refused bad pointer; a live out.
                let st = unsafe {
                    if text {
                        roost_server_broadcast_text(h, route, data.ptr, data.len, &mut recipients)
                    } else {
                        roost_server_broadcast_binary(h, route, data.ptr, data.len, &mut recipients)
                    }
                };
                let after = shared.phase.load(Ordering::Acquire);
                let running = if route < shared.routes { Set::of(&[ROOST_OK]) } else { unknown };
                let want = if args_ok { across(before, after, running, closed_set) } else { S_IA };
                a.record(if text { "broadcast_text" } else { "broadcast_binary" }, st, want, || {
                    format!("route {route}, data {}, phase {before}..{after}", data.describe())
                });
                if st != ROOST_OK && recipients != OUT_SENTINEL {
                    a.violation("broadcast wrote out_recipients on failure".into());
                }
            }
            8 | 9 => {
                // Mostly refused closes: a successful one ends a client's connection,
                // and the clients should live long enough to talk.
                let code = if rng.chance(85) {
                    *rng.pick(&[0, 999, 1005, 1006, 1015, 5000])
                } else {
                    close_code(&mut rng)
                };
                let (why, fits) = reason(&mut rng, &mut scratch2);
                let args_ok = h_ok && fits && sendable_close_code(code);
                // SAFETY: valid reason or a refused bad pointer.
                let st = unsafe { roost_connection_close(h, id, code, why.ptr, why.len) };
                let after = shared.phase.load(Ordering::Acquire);
                let running =
                    if never_issued { unknown } else { Set::of(&[ROOST_OK, ROOST_CLOSED, ROOST_NOT_FOUND]) };
                let want = if args_ok { across(before, after, running, closed_set) } else { S_IA };
                a.record("close", st, want, || {
                    format!(
                        "connection {id}, code {code}, reason {}, phase {before}..{after}",
                        why.describe()
                    )
                });
            }
            10 | 11 => {
                let paused = rng.chance(60);
                let st = roost_connection_pause_reading(h, id, paused);
                let after = shared.phase.load(Ordering::Acquire);
                let running = if never_issued { unknown } else { Set::of(&[ROOST_OK, ROOST_NOT_FOUND]) };
                let want = if h_ok { across(before, after, running, closed_set) } else { S_IA };
                a.record("pause_reading", st, want, || format!("connection {id}, phase {before}..{after}"));
            }
            12 => {
                let st = roost_connection_join_broadcast(h, id);
                let after = shared.phase.load(Ordering::Acquire);
                let running = if never_issued { unknown } else { Set::of(&[ROOST_OK, ROOST_NOT_FOUND]) };
                let want = if h_ok { across(before, after, running, closed_set) } else { S_IA };
                a.record("join_broadcast", st, want, || format!("connection {id}, phase {before}..{after}"));
            }
            13 | 14 => {
                let (topic, topic_ok) = topic_arg(&mut rng);
                let (join, out) = (rng.chance(60), rng.chance(80));
                let live = membership_statuses(join);
                let running = if never_issued { unknown } else { live };
                join_or_leave(
                    &mut a,
                    h,
                    id,
                    topic,
                    join,
                    out,
                    allowed(h_ok && topic_ok, running, closed_set),
                );
            }
            15 | 16 => {
                let (topic, topic_ok) = topic_arg(&mut rng);
                let data = payload(&mut rng, &mut scratch, &shared.huge_budget);
                let (text, out) = (rng.chance(50), rng.chance(80));
                let args_ok = h_ok && topic_ok && !data.bad_pointer && (!text || data.utf8);
                let want = allowed(args_ok, Set::of(&[ROOST_OK]), closed_set);
                publish(&mut a, h, topic, data, text, id, out, want);
            }
            17 => {
                let running = if never_issued { unknown } else { Set::of(&[ROOST_OK, ROOST_NOT_FOUND]) };
                let (visitor, unsubscribe, out) = (rng.chance(90), rng.chance(40), rng.chance(80));
                let want = allowed(h_ok && visitor, running, closed_set);
                if let Some((v, _)) = topics(&mut a, h, id, visitor, unsubscribe, out, want) {
                    // Other threads may unsubscribe the same topics meanwhile, or stop and
                    // free the server.
                    let inner = allowed(true, Set::of(&[ROOST_OK, ROOST_NOT_FOUND]), closed_set)();
                    check_inner(&mut a, &v, inner, false);
                }
            }
            18 => {
                let (topic, topic_ok) = topic_arg(&mut rng);
                let out = rng.chance(90);
                let ok = Set::of(&[ROOST_OK]);
                subscriber_count(&mut a, h, topic, out, allowed(h_ok && topic_ok && out, ok, ok));
            }
            19 => {
                let (size, size_ok) = stats_size(&mut rng);
                let out = rng.chance(90);
                let ok = Set::of(&[ROOST_OK]);
                stats(&mut a, h, size, out, allowed(h_ok && size_ok && out, ok, ok));
            }
            _ => {
                let out = rng.chance(90);
                let mut n = OUT_SENTINEL;
                let out_ptr = if out { &mut n as *mut usize } else { null_mut() };
                // SAFETY: NULL or a live usize.
                let st = unsafe { roost_server_connection_count(h, out_ptr) };
                let after = shared.phase.load(Ordering::Acquire);
                let ok = Set::of(&[ROOST_OK]);
                let want = if h_ok && out { across(before, after, ok, ok) } else { S_IA };
                a.record("connection_count", st, want, || format!("out {out}, phase {before}..{after}"));
                if st != ROOST_OK && n != OUT_SENTINEL {
                    a.violation("connection_count wrote out_count on failure".into());
                }
            }
        }
    }
    a
}

/// The one polling thread: follows the documented loop, checks every event, echoes
/// some messages back like a real consumer, and sometimes polls with bad arguments.
fn poller(shared: Arc<Shared>, seed: u64, fd: c_int) -> (Audit, EventLog) {
    let mut rng = Rng::new(seed, 50);
    let mut a = Audit::default();
    let mut log = EventLog::default();
    let mut events: Vec<MaybeUninit<roost_event>> = vec![MaybeUninit::uninit(); 64];
    let mut echo: Vec<(u64, bool, Vec<u8>)> = Vec::new();
    loop {
        if rng.chance(3) {
            let mut n = OUT_SENTINEL;
            let (ev, cap) = if rng.chance(50) { (null_mut(), 8) } else { (events.as_mut_ptr().cast(), 0) };
            // SAFETY: refused before use (NULL events or capacity 0).
            let st = unsafe {
                roost_server_poll(shared.handle(), ev, cap, std::mem::size_of::<roost_event>(), &mut n)
            };
            a.record("poll", st, S_IA, || format!("events NULL {}, capacity {cap}", ev.is_null()));
        }
        let capacity = 1 + rng.below(64) as usize;
        let mut n = OUT_SENTINEL;
        // SAFETY: `capacity` writable events and a live count.
        let st = unsafe {
            roost_server_poll(
                shared.handle(),
                events.as_mut_ptr().cast(),
                capacity,
                std::mem::size_of::<roost_event>(),
                &mut n,
            )
        };
        a.record("poll", st, Set::of(&[ROOST_OK]), || format!("capacity {capacity}"));
        if st != ROOST_OK {
            break;
        }
        if n > capacity {
            a.violation(format!("poll returned {n} events for capacity {capacity}"));
            break;
        }
        for e in &events[..n] {
            // SAFETY: the first n were written by this poll.
            match unsafe { log.take(e.assume_init_ref(), shared.routes) } {
                Seen::Connect(id) => {
                    shared.live.lock().unwrap().push(id);
                    shared.max_id.fetch_max(id, Ordering::AcqRel);
                }
                Seen::Disconnect(id) => {
                    shared.live.lock().unwrap().retain(|i| *i != id);
                    let mut retired = shared.retired.lock().unwrap();
                    retired.push_front(id);
                    retired.truncate(64);
                }
                Seen::Message(id, binary, data) if rng.chance(30) => echo.push((id, binary, data)),
                _ => {}
            }
        }
        for (id, binary, data) in echo.drain(..) {
            let before = shared.phase.load(Ordering::Acquire);
            // SAFETY: a live Vec.
            let st = unsafe {
                if binary {
                    roost_connection_send_binary(shared.handle(), id, data.as_ptr(), data.len())
                } else {
                    roost_connection_send_text(shared.handle(), id, data.as_ptr(), data.len())
                }
            };
            let after = shared.phase.load(Ordering::Acquire);
            let running = Set::of(&[ROOST_OK, ROOST_WOULD_BLOCK, ROOST_CLOSED, ROOST_NOT_FOUND]);
            a.record("send (echo)", st, across(before, after, running, Set::of(&[ROOST_CLOSED])), || {
                format!("echo to {id}")
            });
        }
        if n == 0 {
            if shared.poller_done.load(Ordering::Acquire) {
                break;
            }
            fd_readable(fd, 20);
        }
    }
    (a, log)
}

/// A client thread: keeps up to four clients, each doing random things, plus hostile
/// handshakes, until the test says leave; then every client leaves.
fn clients(shared: Arc<Shared>, seed: u64, index: u64) -> u64 {
    let mut rng = Rng::new(seed, 200 + index);
    let mut scratch = Vec::new();
    let mut pool: Vec<Client> = Vec::new();
    let mut upgraded = 0;
    while shared.phase.load(Ordering::Acquire) == RUNNING {
        match rng.below(20) {
            0..=2 if pool.len() < 4 => {
                let target = *rng.pick(&["/a", "/b", "/a?x=1&y=%20", "/b?"]);
                if let Some(c) = open_client(shared.addr, target, rng.chance(15)) {
                    upgraded += 1;
                    pool.push(c);
                }
            }
            3 => {
                let _ = hostile_handshake(&mut rng, shared.addr, &mut scratch);
            }
            4 if !pool.is_empty() && rng.chance(40) => {
                let i = rng.below(pool.len() as u64) as usize;
                client_leave(&mut rng, pool.swap_remove(i));
            }
            _ if !pool.is_empty() => {
                let i = rng.below(pool.len() as u64) as usize;
                if !client_step(&mut rng, &mut pool[i], &mut scratch) {
                    pool.swap_remove(i);
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(rng.below(3)));
    }
    for c in pool {
        client_leave(&mut rng, c);
    }
    upgraded
}

#[test]
fn four_threads_abuse_the_api_while_one_polls_and_real_clients_come_and_go() {
    let seed = base_seed();
    let started = Instant::now();
    let mut rng = Rng::new(seed, 1);
    let options = options_with(&mut rng);
    let mut handle = null_mut();
    // SAFETY: live options and out.
    assert_eq!(unsafe { roost_server_new(&options, &mut handle) }, ROOST_OK);
    let mut route = 0;
    // SAFETY: live path and out.
    unsafe {
        assert_eq!(roost_server_add_route(handle, "/a".as_ptr(), 2, &mut route), ROOST_OK);
        assert_eq!(roost_server_add_route(handle, "/b".as_ptr(), 2, &mut route), ROOST_OK);
    }
    let mut port = 0;
    let mut fd: c_int = -1;
    // SAFETY: live host and outs.
    unsafe {
        assert_eq!(roost_server_start(handle, "127.0.0.1".as_ptr(), 9, 0, &mut port), ROOST_OK);
        assert_eq!(roost_server_ready_fd(handle, &mut fd), ROOST_OK);
    }
    let shared = Arc::new(Shared {
        handle: handle as usize,
        routes: 2,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        phase: AtomicU8::new(RUNNING),
        live: Mutex::new(Vec::new()),
        retired: Mutex::new(VecDeque::new()),
        max_id: AtomicU64::new(0),
        huge_budget: AtomicU32::new(24),
        done: AtomicBool::new(false),
        poller_done: AtomicBool::new(false),
    });

    let poll_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("abuse-poller".into())
            .spawn(move || poller(shared, seed, fd))
            .unwrap()
    };
    let abusers: Vec<_> = (0..4)
        .map(|i| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("abuser-{i}"))
                .spawn(move || abuser(shared, seed, i))
                .unwrap()
        })
        .collect();
    let client_threads: Vec<_> = (0..2)
        .map(|i| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("clients-{i}"))
                .spawn(move || clients(shared, seed, i))
                .unwrap()
        })
        .collect();

    // Abuse while clients come and go.
    std::thread::sleep(Duration::from_secs(5));
    shared.phase.store(LEAVING, Ordering::Release);
    let upgraded: u64 = client_threads.into_iter().map(|t| t.join().expect("client thread panicked")).sum();

    // Every client has left: the server must count no connection (abusers still busy).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = usize::MAX;
    while Instant::now() < deadline {
        // SAFETY: a live out.
        assert_eq!(unsafe { roost_server_connection_count(handle, &mut n) }, ROOST_OK);
        if n == 0 && shared.live.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let left_at = started.elapsed();
    let live_after_leaving = shared.live.lock().unwrap().clone();

    // Stop while the abusers keep calling, then free while they keep calling.
    // Two threads stop at once: both return OK once the server has stopped.
    shared.phase.store(STOPPING, Ordering::Release);
    let h = handle as usize;
    let other_stop = std::thread::spawn(move || roost_server_stop(h as *mut roost_server, 50));
    assert_eq!(roost_server_stop(handle, 200), ROOST_OK);
    assert_eq!(other_stop.join().unwrap(), ROOST_OK, "the concurrent stop");
    shared.phase.store(STOPPED, Ordering::Release);
    std::thread::sleep(Duration::from_millis(300));
    shared.poller_done.store(true, Ordering::Release);
    let (poll_audit, log) = poll_thread.join().expect("poller panicked");
    // Two threads free at once: exactly one succeeds, the other hears of a freed handle.
    shared.phase.store(FREEING, Ordering::Release);
    let other_free = std::thread::spawn(move || roost_server_free(h as *mut roost_server));
    let frees = [roost_server_free(handle), other_free.join().unwrap()];
    assert!(
        frees.contains(&ROOST_OK) && frees.contains(&ROOST_INVALID_ARGUMENT),
        "concurrent frees gave {frees:?}"
    );
    shared.phase.store(FREED, Ordering::Release);
    std::thread::sleep(Duration::from_millis(300));
    shared.done.store(true, Ordering::Release);

    let mut audit = Audit::default();
    for t in abusers {
        audit.merge(t.join().expect("abuser thread panicked"));
    }
    audit.merge(poll_audit);
    for v in &log.violations {
        audit.violation(format!("event contract: {v}"));
    }
    println!(
        "clients upgraded {upgraded}; events: {} connects, {} disconnects, {} messages, {} writables; \
         all clients gone after {left_at:?}",
        log.connects, log.disconnects, log.messages, log.writables
    );
    audit.assert_clean(seed, "four threads");
    assert_eq!(
        n, 0,
        "connection_count after every client left (seed {seed:#x}); live: {live_after_leaving:?}"
    );
    assert!(live_after_leaving.is_empty(), "connections without DISCONNECT: {live_after_leaving:?}");
    assert_eq!(log.connects, log.disconnects, "every CONNECT has its DISCONNECT");
    assert!(log.connects > 0 && upgraded > 0, "no client ever connected");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
