//! The C ABI, declared in `include/roost.h` (generated from this module by cbindgen).
//! Each function checks its arguments, calls the Rust server, and maps the outcome to a
//! status inside the panic boundary; nothing here holds logic of its own.
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod server;
pub mod types;

use std::ffi::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::frames;
use crate::server::Server;
use crate::tls::TlsIdentity;
use boundary::{
    boundary, bytes, check_extensible_size, lookup, read_extensible, require_out, text, write_extensible,
    write_if_wanted, write_out,
};
use server::PolledServer;
pub use types::*;

/// Hands the caller's payload to `call` on the server, which copies it once, into the
/// encoded frame: the shared body of the send and broadcast functions.
///
/// # Safety
/// `data` points to `len` readable bytes (or is NULL with `len` 0).
unsafe fn send<T>(
    server: *mut roost_server,
    data: *const u8,
    len: usize,
    call: impl FnOnce(&Server, &[u8]) -> crate::Result<T>,
) -> crate::Result<T> {
    // SAFETY: forwarded from the caller.
    let data = unsafe { bytes(data, len, "data")? };
    call(&lookup(server)?.server, data)
}

/// The library version as a NUL-terminated string, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn roost_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's version as one number, `major << 16 | minor << 8 | patch`: compare
/// it with `ROOST_VERSION_NUMBER` to check that the library a program runs with is the
/// one its header came from (or a later one).
#[no_mangle]
pub extern "C" fn roost_version_number() -> u32 {
    ROOST_VERSION_NUMBER
}

/// The message of the last call that failed on the calling thread, NUL-terminated;
/// empty if none failed yet. Owned by the library; valid until the next failing call
/// on this thread.
#[no_mangle]
pub extern "C" fn roost_last_error() -> *const c_char {
    boundary::last_error()
}

/// Writes the default options to `*out`, a struct of `size` bytes: pass
/// `sizeof(roost_options)` (the macro `ROOST_OPTIONS_INIT(&options)` does). `out->size`
/// is set to `size`; fields a newer header has and this library lacks are zeroed, and
/// a struct of an older header gets the fields it has.
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` when `out` is NULL or `size` is
/// smaller than the first `roost_options` (0.1.0's).
#[no_mangle]
pub unsafe extern "C" fn roost_options_init(out: *mut roost_options, size: usize) -> roost_status {
    boundary(|| {
        require_out(out, "out")?;
        check_extensible_size::<roost_options>(size)?;
        let mut defaults = roost_options::from(&Config::default());
        defaults.size = u32::try_from(size)
            .map_err(|_| Error::InvalidArgument(format!("roost_options size {size} is invalid")))?;
        // SAFETY: `out` is non-NULL and, as the caller promises, `size` bytes long.
        unsafe { write_extensible(out.cast::<u8>(), size, &defaults) };
        Ok(())
    })
}

/// Creates a server with `options` (filled by `roost_options_init`; NULL for the defaults) and writes its handle to
/// `*out`. The server does nothing until `roost_server_start`; its ready descriptor
/// exists from now on. Free it with `roost_server_free`.
///
/// Returns `ROOST_OK`; `ROOST_INVALID_ARGUMENT` for a NULL `out`, an option out of
/// range (the message names it), a `health_path` or `metrics_path` that does not
/// start with '/' (or has a '?' or a space, or both are the same), a `backplane_url`
/// that is not a `redis://` URL (the message says why), an `allowed_origins` entry that
/// is not `scheme://host[:port]` (the message names it), a TLS certificate chain or
/// private key that is missing its other half, malformed or unusable (the message says
/// which and why) or options of a newer header that set fields this library does not
/// know; `ROOST_IO` when the ready descriptor cannot be made.
#[no_mangle]
pub unsafe extern "C" fn roost_server_new(
    options: *const roost_options,
    out: *mut *mut roost_server,
) -> roost_status {
    boundary(|| {
        require_out(out, "out")?;
        let config = if options.is_null() {
            Config::default()
        } else {
            // SAFETY: a non-NULL `options` was filled by `roost_options_init`, which set
            // `size` to the bytes it spans; the first field is readable in any version.
            let size = unsafe { options.cast::<u32>().read_unaligned() } as usize;
            // SAFETY: as above, `options` spans `size` bytes; every field past the first
            // version's is a number or a pointer, valid when zero.
            let options = unsafe { read_extensible(options, size)? };
            let mut config = Config::try_from(&options)?;
            // SAFETY: `backplane_url` points to `backplane_url_len` bytes or is NULL, as
            // the caller promises.
            config.backplane = unsafe { backplane_url(&options)? };
            // SAFETY: the `tls_*` pointers point to their lengths' bytes or are NULL, as
            // the caller promises.
            config.tls = unsafe { tls_identity(&options)? };
            // SAFETY: the paths point to their lengths' bytes or are NULL, as the caller
            // promises.
            unsafe {
                config.health_path =
                    optional_text(options.health_path, options.health_path_len, "health_path")?;
                config.metrics_path =
                    optional_text(options.metrics_path, options.metrics_path_len, "metrics_path")?;
            }
            // SAFETY: `allowed_origins` points to `allowed_origins_len` bytes or is NULL,
            // as the caller promises.
            config.allowed_origins = unsafe {
                comma_list(options.allowed_origins, options.allowed_origins_len, "allowed_origins")?
            };
            config
        };
        let server = Server::new(config)?;
        // SAFETY: checked above.
        unsafe { write_out(out, boundary::register(PolledServer::new(server)), "out") }
    })
}

/// The TLS identity of `options`: `None` when both lengths are 0.
///
/// # Safety
/// `options.tls_certificate_chain` and `options.tls_private_key` point to their
/// lengths' readable bytes, or are NULL.
unsafe fn tls_identity(options: &roost_options) -> crate::Result<Option<TlsIdentity>> {
    // SAFETY: forwarded from the caller.
    let (chain, key) = unsafe {
        (
            bytes(options.tls_certificate_chain, options.tls_certificate_chain_len, "tls_certificate_chain")?,
            bytes(options.tls_private_key, options.tls_private_key_len, "tls_private_key")?,
        )
    };
    match (chain.is_empty(), key.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => TlsIdentity::from_pem(chain, key).map(Some),
        (false, true) => Err(Error::InvalidArgument(
            "tls_certificate_chain is set but tls_private_key is not: TLS needs both".into(),
        )),
        (true, false) => Err(Error::InvalidArgument(
            "tls_private_key is set but tls_certificate_chain is not: TLS needs both".into(),
        )),
    }
}

/// The entries of a comma separated list (spaces around each ignored); none when it is
/// empty. An empty entry stays, for the caller's check to refuse by name.
///
/// # Safety
/// `list` points to `len` readable bytes, or is NULL.
unsafe fn comma_list(list: *const u8, len: usize, what: &str) -> crate::Result<Vec<String>> {
    // SAFETY: forwarded from the caller.
    let list = unsafe { text(list, len, what)? };
    if list.is_empty() {
        return Ok(Vec::new());
    }
    Ok(list.split(',').map(|entry| entry.trim().to_string()).collect())
}

/// The backplane URL of `options`: `None` when its length is 0.
///
/// # Safety
/// `options.backplane_url` points to `options.backplane_url_len` readable bytes, or is
/// NULL.
unsafe fn backplane_url(options: &roost_options) -> crate::Result<Option<String>> {
    // SAFETY: forwarded from the caller.
    unsafe { optional_text(options.backplane_url, options.backplane_url_len, "backplane_url") }
}

/// The UTF-8 text at `data`, `None` when `len` is 0.
///
/// # Safety
/// `data` points to `len` readable bytes, or is NULL.
unsafe fn optional_text(data: *const u8, len: usize, what: &str) -> crate::Result<Option<String>> {
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    Ok(Some(unsafe { text(data, len, what)? }.to_string()))
}

/// Stops the server if it runs (as `roost_server_stop` with no grace period) and
/// releases it. The handle is dead afterwards; pointers from its last poll are
/// invalid. NULL is accepted and does nothing.
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` for a handle already freed.
#[no_mangle]
pub extern "C" fn roost_server_free(server: *mut roost_server) -> roost_status {
    boundary(|| {
        if server.is_null() {
            return Ok(());
        }
        let polled = boundary::unregister(server)?;
        polled.server.stop(Duration::ZERO)
    })
}

/// Serves WebSocket upgrades on the exact path `path[0..path_len]` (starting with '/',
/// no query string) and writes its route id to `*out_route`. Route ids count from 0
/// in the order routes are added. Only before `roost_server_start`.
///
/// Returns `ROOST_OK`; `ROOST_INVALID_ARGUMENT` (bad path, path added twice, NULL);
/// `ROOST_INVALID_STATE` after start.
#[no_mangle]
pub unsafe extern "C" fn roost_server_add_route(
    server: *mut roost_server,
    path: *const u8,
    path_len: usize,
    out_route: *mut u32,
) -> roost_status {
    // SAFETY: `path` points to `path_len` bytes, and `out_route` is NULL or writable,
    // as the caller promises.
    boundary(|| unsafe { add_route_with(server, out_route, |s| s.add_route(text(path, path_len, "path")?)) })
}

/// The shared body of the functions that add a route: `add` adds it to the server, and
/// its id goes to `*out_route`.
///
/// # Safety
/// `out_route` is NULL or writable.
unsafe fn add_route_with(
    server: *mut roost_server,
    out_route: *mut u32,
    add: impl FnOnce(&Server) -> crate::Result<u32>,
) -> crate::Result<()> {
    require_out(out_route, "out_route")?;
    let route = add(&lookup(server)?.server)?;
    // SAFETY: checked above.
    unsafe { write_out(out_route, route, "out_route") }
}

/// Serves HTTP requests for `method[0..method_len]` (an upper-case token: GET, POST,
/// PUT, PATCH, DELETE, OPTIONS or any other) on the exact path `path[0..path_len]`
/// (starting with '/', no query string) and writes its route id to `*out_route`. Each
/// request becomes a `ROOST_EVENT_REQUEST`. A GET route serves HEAD too (the event
/// says HEAD; the answer goes out without its body), unless the path has a HEAD route.
/// WebSocket and HTTP route ids come from one sequence. A path may have a WebSocket
/// route as well: upgrades go to that one. Only before `roost_server_start`.
///
/// Returns `ROOST_OK`; `ROOST_INVALID_ARGUMENT` (NULLs, a method that is not an
/// upper-case token, a bad path, the same method and path twice);
/// `ROOST_INVALID_STATE` after start.
#[no_mangle]
pub unsafe extern "C" fn roost_server_add_http_route(
    server: *mut roost_server,
    method: *const u8,
    method_len: usize,
    path: *const u8,
    path_len: usize,
    out_route: *mut u32,
) -> roost_status {
    // SAFETY: `method` and `path` point to their lengths' bytes, and `out_route` is
    // NULL or writable, as the caller promises.
    boundary(|| unsafe {
        add_route_with(server, out_route, |s| {
            s.add_http_route(text(method, method_len, "method")?, text(path, path_len, "path")?)
        })
    })
}

/// Serves the files of the directory `directory[0..directory_len]` (a path, which must
/// exist; canonicalized now) under the URL prefix `url_prefix[0..prefix_len]`
/// (starting with '/'), from the library itself: GET and HEAD, with their
/// Content-Type, ETag and Last-Modified (304 when current) and byte ranges; no
/// listings, nothing outside the directory (404), hidden names 404. The longest prefix
/// that covers a path serves it; HTTP routes come first. The files never reach the
/// program. Only before `roost_server_start`.
///
/// Returns `ROOST_OK`; `ROOST_INVALID_ARGUMENT` (NULLs, a prefix that does not start
/// with '/' or is mounted already, a directory that does not exist or is not one: the
/// message says which); `ROOST_INVALID_STATE` after start.
#[no_mangle]
pub unsafe extern "C" fn roost_server_add_static(
    server: *mut roost_server,
    url_prefix: *const u8,
    prefix_len: usize,
    directory: *const u8,
    directory_len: usize,
) -> roost_status {
    boundary(|| {
        // SAFETY: `url_prefix` and `directory` point to their lengths' bytes, as the
        // caller promises.
        let (prefix, directory) = unsafe {
            (text(url_prefix, prefix_len, "url_prefix")?, bytes(directory, directory_len, "directory")?)
        };
        if directory.is_empty() {
            return Err(Error::InvalidArgument("directory is empty".into()));
        }
        let directory = std::path::Path::new(std::ffi::OsStr::from_bytes(directory));
        lookup(server)?.server.add_static(prefix, directory)
    })
}

/// Makes each upgrade of the WebSocket route `route` wait for the program (`vet`
/// true): a `ROOST_EVENT_UPGRADE_REQUEST` carries the request, and
/// `roost_upgrade_accept` or `roost_request_respond` answers it. False, the default,
/// upgrades at once. Only before `roost_server_start`.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` for an unknown route;
/// `ROOST_INVALID_ARGUMENT` for an HTTP route or a bad handle; `ROOST_INVALID_STATE`
/// after start.
#[no_mangle]
pub extern "C" fn roost_server_route_vet_upgrades(
    server: *mut roost_server,
    route: u32,
    vet: bool,
) -> roost_status {
    boundary(|| lookup(server)?.server.vet_upgrades(route, vet))
}

/// Answers the `ROOST_EVENT_REQUEST` or refuses the `ROOST_EVENT_UPGRADE_REQUEST`
/// whose `connection` is `request`: `status` (200-599 for a request, 300-599 for an
/// upgrade), `headers[0..headers_len]` (zero or more `Name: value\r\n` lines; the
/// library writes `Content-Length` and `Connection` itself) and `body[0..body_len]`,
/// all copied. A HEAD request's answer goes out without its body; a 204 or 304 takes
/// none. May be called from any thread.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` when nothing waits for this answer (answered
/// already, timed out, client gone, unknown id); `ROOST_INVALID_ARGUMENT` for a status
/// out of range, a body on a 204 or 304, header lines that are malformed (not ending
/// in `\r\n`, a bare CR or LF, a name that is not a token, a control byte in a value)
/// or that set `Content-Length`, `Transfer-Encoding` or `Connection`, NULLs with a
/// length, a bad handle. A refused call leaves the request waiting.
#[no_mangle]
pub unsafe extern "C" fn roost_request_respond(
    server: *mut roost_server,
    request: u64,
    status: u16,
    headers: *const u8,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
) -> roost_status {
    boundary(|| {
        // SAFETY: `headers` and `body` point to their lengths' bytes, as the caller
        // promises.
        let (headers, body) =
            unsafe { (bytes(headers, headers_len, "headers")?, bytes(body, body_len, "body")?) };
        lookup(server)?.server.respond(request, status, headers, body)
    })
}

/// Lets the upgrade of the `ROOST_EVENT_UPGRADE_REQUEST` whose `connection` is
/// `request` go ahead: the client gets its 101, and a `ROOST_EVENT_CONNECT` with the
/// same id follows. May be called from any thread.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` when nothing waits for this answer (as for
/// `roost_request_respond`); `ROOST_INVALID_ARGUMENT` when `request` is an HTTP
/// request (answer it with `roost_request_respond`) or the handle is bad.
#[no_mangle]
pub extern "C" fn roost_upgrade_accept(server: *mut roost_server, request: u64) -> roost_status {
    boundary(|| lookup(server)?.server.accept_upgrade(request))
}

/// Gives WebSocket route `route` the subprotocols it speaks: `list[0..list_len]`, comma
/// separated (spaces around entries ignored), in the server's order of preference, each
/// an RFC 6455 token, none twice; e.g. `"graphql-transport-ws, graphql-ws"`. Replaces
/// what the route had. Only before `roost_server_start`.
///
/// An upgrade on the route gets the first of the list that the client offers in any of
/// its `Sec-WebSocket-Protocol` headers (names compare case-sensitively; the client's
/// order does not matter): the 101 names it, and the CONNECT event carries it in
/// `subprotocol`. A client that offers none of them is upgraded without a subprotocol
/// (no `Sec-WebSocket-Protocol` in the 101, `subprotocol` NULL), or, when `required`,
/// answered 400 `No supported subprotocol` and never connected.
///
/// Returns `ROOST_OK`; `ROOST_INVALID_ARGUMENT` for an empty list, an entry that is not
/// a token or is listed twice, NULL `list` with a length, or a bad server handle;
/// `ROOST_NOT_FOUND` for a route never added; `ROOST_INVALID_STATE` after start.
#[no_mangle]
pub unsafe extern "C" fn roost_server_route_subprotocols(
    server: *mut roost_server,
    route: u32,
    list: *const u8,
    list_len: usize,
    required: bool,
) -> roost_status {
    boundary(|| {
        // SAFETY: `list` points to `list_len` bytes or is NULL, as the caller promises.
        let protocols = unsafe { comma_list(list, list_len, "list")? };
        let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
        lookup(server)?.server.route_subprotocols(route, &protocols, required)
    })
}

/// Binds `host[0..host_len]` (an IP address or name) on `port` (0 picks a free port),
/// starts the core's threads and accepts connections. Writes the bound port to
/// `*out_port`.
///
/// Returns `ROOST_OK`; `ROOST_IO` when the address cannot be bound (in use, not
/// local); `ROOST_INVALID_STATE` when already started or nothing would be served (no
/// route, no static mount, no health or metrics path);
/// `ROOST_INVALID_ARGUMENT` for NULLs.
#[no_mangle]
pub unsafe extern "C" fn roost_server_start(
    server: *mut roost_server,
    host: *const u8,
    host_len: usize,
    port: u16,
    out_port: *mut u16,
) -> roost_status {
    boundary(|| {
        require_out(out_port, "out_port")?;
        // SAFETY: `host` points to `host_len` bytes, as the caller promises.
        let host = unsafe { text(host, host_len, "host")? };
        let bound = lookup(server)?.server.start(host, port)?;
        // SAFETY: checked above.
        unsafe { write_out(out_port, bound, "out_port") }
    })
}

/// Writes the descriptor to wait on to `*out_fd`: readable means `roost_server_poll`
/// may return events. Owned by the server (do not close it); valid until
/// `roost_server_free`.
///
/// Returns `ROOST_OK` or `ROOST_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn roost_server_ready_fd(
    server: *mut roost_server,
    out_fd: *mut c_int,
) -> roost_status {
    boundary(|| {
        let fd = lookup(server)?.server.ready_fd();
        // SAFETY: `out_fd` is checked for NULL inside.
        unsafe { write_out(out_fd, fd, "out_fd") }
    })
}

/// Fills up to `capacity` events into `events`, an array of events of `event_size`
/// bytes each (pass `sizeof(roost_event)`; the macro `ROOST_SERVER_POLL` does), and
/// writes how many to `*out_count`. Releases the previous poll's events first: their
/// pointers die here.
///
/// Drain by calling it until `*out_count` is 0; only that empty poll re-arms the ready
/// descriptor, and after it the descriptor becomes readable as soon as an event
/// arrives. Then wait for the descriptor. One thread polls a server at a time.
///
/// Returns `ROOST_OK` (also after stop, while disconnect events remain), or
/// `ROOST_INVALID_ARGUMENT` (NULLs, `capacity` 0, `event_size` smaller than the first
/// `roost_event`, 0.1.0's 120 bytes).
#[no_mangle]
pub unsafe extern "C" fn roost_server_poll(
    server: *mut roost_server,
    events: *mut roost_event,
    capacity: usize,
    event_size: usize,
    out_count: *mut usize,
) -> roost_status {
    boundary(|| {
        require_out(out_count, "out_count")?;
        if events.is_null() || capacity == 0 {
            return Err(Error::InvalidArgument("events must be non-NULL with capacity > 0".into()));
        }
        check_extensible_size::<roost_event>(event_size)?;
        if capacity.checked_mul(event_size).is_none_or(|total| total > isize::MAX as usize) {
            return Err(Error::InvalidArgument("capacity * event_size is too large".into()));
        }
        let polled = lookup(server)?;
        // SAFETY: `events` points to `capacity` writable events of `event_size` bytes,
        // as the caller promises; the size was checked above.
        let n = unsafe { polled.poll_into(events.cast::<u8>(), capacity, event_size) };
        // SAFETY: checked above.
        unsafe { write_out(out_count, n, "out_count") }
    })
}

/// Queues a text message (`data[0..len]`, UTF-8) for `connection`, copying it.
/// May be called from any thread. The first send after a poll that returned events
/// may write the message to an idle connection's socket at once, from the calling
/// thread, instead of waking the core's.
///
/// Returns `ROOST_OK`; `ROOST_WOULD_BLOCK` when the connection's send queue is over
/// its limit (nothing queued; a `ROOST_EVENT_WRITABLE` event follows);
/// `ROOST_CLOSED` when the connection is closing or the server stopped;
/// `ROOST_NOT_FOUND` for an unknown or retired id; `ROOST_INVALID_ARGUMENT` when
/// `data` is not UTF-8 or NULL with a length.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_send_text(
    server: *mut roost_server,
    connection: u64,
    data: *const u8,
    len: usize,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe { send(server, data, len, |s, data| s.send_text(connection, data)) })
}

/// Binary form of `roost_connection_send_text`; any bytes are accepted.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_send_binary(
    server: *mut roost_server,
    connection: u64,
    data: *const u8,
    len: usize,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe { send(server, data, len, |s, data| s.send_binary(connection, data)) })
}

/// Queues one text message for every connection of `route`, copying `data` once and
/// sharing it among recipients; writes the number of recipients to `*out_recipients`
/// (may be NULL). A recipient whose send queue is over its limit is closed with 1008
/// or skipped instead, as the option `slow_consumer` says. May be called from any
/// thread.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` for an unknown route; `ROOST_CLOSED` after
/// stop; `ROOST_INVALID_ARGUMENT` for text that is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn roost_server_broadcast_text(
    server: *mut roost_server,
    route: u32,
    data: *const u8,
    len: usize,
    out_recipients: *mut usize,
) -> roost_status {
    boundary(|| {
        // SAFETY: forwarded from the caller.
        let n = unsafe { send(server, data, len, |s, data| s.broadcast_text(route, data))? };
        // SAFETY: NULL or writable, as the caller promises.
        unsafe { write_if_wanted(out_recipients, n) };
        Ok(())
    })
}

/// Binary form of `roost_server_broadcast_text`.
#[no_mangle]
pub unsafe extern "C" fn roost_server_broadcast_binary(
    server: *mut roost_server,
    route: u32,
    data: *const u8,
    len: usize,
    out_recipients: *mut usize,
) -> roost_status {
    boundary(|| {
        // SAFETY: forwarded from the caller.
        let n = unsafe { send(server, data, len, |s, data| s.broadcast_binary(route, data))? };
        // SAFETY: NULL or writable, as the caller promises.
        unsafe { write_if_wanted(out_recipients, n) };
        Ok(())
    })
}

/// Checks a close code and reason as `roost_connection_close` would, without closing
/// anything: for consumers that validate before they act (run callbacks, say).
/// Codes a server may send are 1000-1003, 1007-1014 and 3000-4999; the reason is
/// UTF-8 of at most `ROOST_MAX_CLOSE_REASON` bytes.
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` with a message saying what is wrong.
#[no_mangle]
pub unsafe extern "C" fn roost_close_check(code: u16, reason: *const u8, reason_len: usize) -> roost_status {
    boundary(|| {
        // SAFETY: `reason` points to `reason_len` bytes, as the caller promises.
        let reason = unsafe { text(reason, reason_len, "reason")? };
        frames::check_close(code, reason)
    })
}

/// Closes `connection` with `code` (1000-1003, 1007-1014, 3000-4999) and
/// `reason[0..reason_len]` (UTF-8, at most 123 bytes) after the messages already
/// queued for it. Its DISCONNECT event follows. May be called from any thread.
///
/// Returns `ROOST_OK`; `ROOST_CLOSED` when already closing; `ROOST_NOT_FOUND` for an
/// unknown or retired id; `ROOST_INVALID_ARGUMENT` for a bad code or reason.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_close(
    server: *mut roost_server,
    connection: u64,
    code: u16,
    reason: *const u8,
    reason_len: usize,
) -> roost_status {
    boundary(|| {
        // SAFETY: `reason` points to `reason_len` bytes, as the caller promises.
        let reason = unsafe { text(reason, reason_len, "reason")? };
        lookup(server)?.server.close(connection, code, reason)
    })
}

/// Makes `connection` a recipient of its route's broadcasts, for servers whose option
/// `join_broadcast_on_connect` is false (otherwise it already is one). May be called
/// from any thread.
///
/// Returns `ROOST_OK`, `ROOST_NOT_FOUND` (unknown or retired id), `ROOST_CLOSED` (after
/// stop) or `ROOST_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn roost_connection_join_broadcast(
    server: *mut roost_server,
    connection: u64,
) -> roost_status {
    boundary(|| lookup(server)?.server.join_broadcast(connection))
}

/// Stops (`paused` non-zero) or restarts reading `connection`'s socket. For consumers
/// that keep messages of their own: while paused, TCP pushes back on the client.
///
/// Returns `ROOST_OK`, `ROOST_CLOSED`, `ROOST_NOT_FOUND` or `ROOST_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn roost_connection_pause_reading(
    server: *mut roost_server,
    connection: u64,
    paused: bool,
) -> roost_status {
    boundary(|| lookup(server)?.server.set_reading_paused(connection, paused))
}

/// Stops accepting, closes every connection with 1001 after what is queued for it,
/// closes HTTP connections between requests, waits up to `grace_ms` for the close
/// handshakes and the HTTP requests in flight (answered, then closed; the health path
/// says 503 meanwhile), then drops the rest (their DISCONNECT events say 1006).
/// Blocks for at most about `grace_ms`. DISCONNECT events
/// remain available to `roost_server_poll`; sends and broadcasts now give
/// `ROOST_CLOSED`. Calling it again does nothing.
///
/// Returns `ROOST_OK` or `ROOST_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn roost_server_stop(server: *mut roost_server, grace_ms: u32) -> roost_status {
    boundary(|| lookup(server)?.server.stop(Duration::from_millis(u64::from(grace_ms))))
}

/// Writes the number of upgraded connections not yet disconnected to `*out_count`.
///
/// Returns `ROOST_OK` or `ROOST_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn roost_server_connection_count(
    server: *mut roost_server,
    out_count: *mut usize,
) -> roost_status {
    boundary(|| {
        let n = lookup(server)?.server.connection_count();
        // SAFETY: `out_count` is checked for NULL inside.
        unsafe { write_out(out_count, n, "out_count") }
    })
}

/// The topic at `topic[0..topic_len]`.
///
/// # Safety
/// `topic` points to `topic_len` readable bytes (or is NULL with `topic_len` 0).
unsafe fn topic<'a>(topic: *const u8, topic_len: usize) -> crate::Result<&'a [u8]> {
    // SAFETY: forwarded from the caller.
    unsafe { bytes(topic, topic_len, "topic") }
}

/// Checks a topic name as the topic functions would (1 to `ROOST_MAX_TOPIC_LENGTH`
/// bytes), without a server: for consumers that validate before they act.
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` with a message saying what is wrong.
#[no_mangle]
pub unsafe extern "C" fn roost_topic_check(topic: *const u8, topic_len: usize) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| crate::topics::check_topic(unsafe { self::topic(topic, topic_len)? }))
}

/// Makes `connection` a subscriber of the topic `topic[0..topic_len]` (1 to
/// `ROOST_MAX_TOPIC_LENGTH` bytes, any bytes, exact match) and writes to
/// `*out_subscribed` (may be NULL) whether it became one now (false: it already was).
/// A connection leaves all its topics when it ends. May be called from any thread.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` for an unknown or retired id;
/// `ROOST_CLOSED` when the connection is closing or the server stopped;
/// `ROOST_INVALID_ARGUMENT` for an empty or over-long topic.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_subscribe(
    server: *mut roost_server,
    connection: u64,
    topic: *const u8,
    topic_len: usize,
    out_subscribed: *mut bool,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe {
        membership(server, connection, (topic, topic_len), out_subscribed, Server::subscribe)
    })
}

/// Removes `connection` from the topic `topic[0..topic_len]` and writes to
/// `*out_was_subscribed` (may be NULL) whether it was a subscriber. May be called from
/// any thread. A closing connection may still leave a topic.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` for an unknown or retired id;
/// `ROOST_CLOSED` after stop; `ROOST_INVALID_ARGUMENT` for an empty or over-long topic.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_unsubscribe(
    server: *mut roost_server,
    connection: u64,
    topic: *const u8,
    topic_len: usize,
    out_was_subscribed: *mut bool,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe {
        membership(server, connection, (topic, topic_len), out_was_subscribed, Server::unsubscribe)
    })
}

/// The shared body of subscribe and unsubscribe: `call` changes the membership and
/// says whether it changed.
///
/// # Safety
/// `topic` points to `topic_len` readable bytes (or is NULL with length 0); `out` is
/// NULL or writable.
unsafe fn membership(
    server: *mut roost_server,
    connection: u64,
    (topic, topic_len): (*const u8, usize),
    out: *mut bool,
    call: fn(&Server, u64, &[u8]) -> crate::Result<bool>,
) -> crate::Result<()> {
    // SAFETY: forwarded from the caller.
    let topic = unsafe { self::topic(topic, topic_len)? };
    let changed = call(&lookup(server)?.server, connection, topic)?;
    // SAFETY: NULL or writable, as the caller promises.
    unsafe { write_if_wanted(out, changed) };
    Ok(())
}

/// Calls `visit(context, topic, topic_len)` once for each topic `connection` is
/// subscribed to, on the calling thread, and writes their number to `*out_count` (may
/// be NULL). Topics come in no set order. The list is taken before the first call,
/// so `visit` may subscribe, unsubscribe or publish; each `topic` pointer is valid
/// only during its call.
///
/// Returns `ROOST_OK`; `ROOST_NOT_FOUND` for an unknown or retired id;
/// `ROOST_CLOSED` after stop; `ROOST_INVALID_ARGUMENT` for a NULL `visit`.
#[no_mangle]
pub unsafe extern "C" fn roost_connection_topics(
    server: *mut roost_server,
    connection: u64,
    visit: roost_topic_visitor,
    context: *mut c_void,
    out_count: *mut usize,
) -> roost_status {
    boundary(|| {
        let visit = visit.ok_or_else(|| Error::InvalidArgument("visit is NULL".into()))?;
        let topics = lookup(server)?.server.topics_of(connection)?;
        for topic in &topics {
            // SAFETY: the caller's function, with its own context; the topic lives
            // until the end of this loop.
            unsafe { visit(context, topic.as_ptr(), topic.len()) };
        }
        // SAFETY: NULL or writable, as the caller promises.
        unsafe { write_if_wanted(out_count, topics.len()) };
        Ok(())
    })
}

/// Queues one text message (`data[0..len]`, UTF-8) for every subscriber of the topic
/// `topic[0..topic_len]` except `exclude` (a connection id; `ROOST_NO_CONNECTION`
/// excludes no one), copying `data` once and sharing it among recipients, and writes
/// the number of recipients to `*out_recipients` (may be NULL). A recipient over its
/// send limit is closed with 1008 or skipped, as the option `slow_consumer` says. A
/// topic without subscribers costs a lookup. May be called from any thread, and from
/// any number of threads at once; before start it reaches no one (`ROOST_OK`, 0).
///
/// Returns `ROOST_OK`; `ROOST_CLOSED` after stop; `ROOST_INVALID_ARGUMENT` for an
/// empty or over-long topic or text that is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn roost_server_publish_text(
    server: *mut roost_server,
    topic: *const u8,
    topic_len: usize,
    data: *const u8,
    len: usize,
    exclude: u64,
    out_recipients: *mut usize,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe { publish(server, (topic, topic_len), (data, len), exclude, out_recipients, true) })
}

/// Binary form of `roost_server_publish_text`.
#[no_mangle]
pub unsafe extern "C" fn roost_server_publish_binary(
    server: *mut roost_server,
    topic: *const u8,
    topic_len: usize,
    data: *const u8,
    len: usize,
    exclude: u64,
    out_recipients: *mut usize,
) -> roost_status {
    // SAFETY: forwarded from the caller.
    boundary(|| unsafe { publish(server, (topic, topic_len), (data, len), exclude, out_recipients, false) })
}

/// The shared body of the publish functions: publishes `data` to `topic` as text or
/// binary.
///
/// # Safety
/// `topic` and `data` point to their lengths' readable bytes (or are NULL with length
/// 0); `out_recipients` is NULL or writable.
unsafe fn publish(
    server: *mut roost_server,
    (topic, topic_len): (*const u8, usize),
    (data, len): (*const u8, usize),
    exclude: u64,
    out_recipients: *mut usize,
    text: bool,
) -> crate::Result<()> {
    // SAFETY: forwarded from the caller.
    let topic = unsafe { self::topic(topic, topic_len)? };
    let exclude = (exclude != ROOST_NO_CONNECTION).then_some(exclude);
    // SAFETY: forwarded from the caller.
    let n = unsafe {
        send(server, data, len, |s, data| {
            if text {
                s.publish_text(topic, data, exclude)
            } else {
                s.publish_binary(topic, data, exclude)
            }
        })?
    };
    // SAFETY: NULL or writable, as the caller promises.
    unsafe { write_if_wanted(out_recipients, n) };
    Ok(())
}

/// Writes the number of connections subscribed to the topic `topic[0..topic_len]` to
/// `*out_count`, at any time (0 before start; after stop, until the connections
/// have ended).
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` (NULLs, an empty or over-long topic).
#[no_mangle]
pub unsafe extern "C" fn roost_server_subscriber_count(
    server: *mut roost_server,
    topic: *const u8,
    topic_len: usize,
    out_count: *mut usize,
) -> roost_status {
    boundary(|| {
        require_out(out_count, "out_count")?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { self::topic(topic, topic_len)? };
        let n = lookup(server)?.server.subscriber_count(topic)?;
        // SAFETY: checked above.
        unsafe { write_out(out_count, n, "out_count") }
    })
}

/// Writes the server's counters to `*out`, a struct of `size` bytes, at any time
/// (before start and after stop too): pass `sizeof(roost_stats)`, as the macro
/// `ROOST_SERVER_STATS(server, &stats)` does. `out->size` is set to `size`; fields a newer header has and
/// this library lacks are zeroed.
///
/// Returns `ROOST_OK`, or `ROOST_INVALID_ARGUMENT` (NULLs, `size` smaller than the
/// first `roost_stats`, 0.1.0's).
#[no_mangle]
pub unsafe extern "C" fn roost_server_stats(
    server: *mut roost_server,
    out: *mut roost_stats,
    size: usize,
) -> roost_status {
    boundary(|| {
        require_out(out, "out")?;
        check_extensible_size::<roost_stats>(size)?;
        let mut stats = roost_stats::from(&lookup(server)?.server.stats());
        stats.size = u32::try_from(size)
            .map_err(|_| Error::InvalidArgument(format!("roost_stats size {size} is invalid")))?;
        // SAFETY: `out` is non-NULL and, as the caller promises, `size` bytes long.
        unsafe { write_extensible(out.cast::<u8>(), size, &stats) };
        Ok(())
    })
}
