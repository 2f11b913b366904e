//! What every extern function shares: the panic boundary, the per-thread last error,
//! the table of live server handles, and the checks that turn C arguments into Rust
//! values. No other code converts raw pointers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use super::server::PolledServer;
use super::types::{roost_server, roost_status};
use crate::error::{panic_message, Error, Result};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs `body`, turning its error or a panic into a status and recording the message.
pub(crate) fn boundary(body: impl FnOnce() -> Result<()>) -> roost_status {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Error::Panic(panic_message(&*payload))));
    match outcome {
        Ok(()) => roost_status::ROOST_OK,
        Err(err) => {
            let status = roost_status::of(&err);
            set_last_error(&err.to_string());
            status
        }
    }
}

fn set_last_error(message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// Pointer to this thread's last error message (empty when none yet).
pub(crate) fn last_error() -> *const std::ffi::c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Live servers by handle. A handle is a token, never dereferenced: a freed or forged
/// handle is simply absent.
static SERVERS: LazyLock<RwLock<HashMap<usize, Arc<PolledServer>>>> = LazyLock::new(Default::default);
/// Tokens count up in steps of 16 so that they look like aligned pointers and are never
/// reused.
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

pub(crate) fn register(server: PolledServer) -> *mut roost_server {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) << 4;
    SERVERS.write().unwrap_or_else(|e| e.into_inner()).insert(token, Arc::new(server));
    token as *mut roost_server
}

pub(crate) fn lookup(server: *const roost_server) -> Result<Arc<PolledServer>> {
    if server.is_null() {
        return Err(Error::InvalidArgument("server is NULL".into()));
    }
    let servers = SERVERS.read().unwrap_or_else(|e| e.into_inner());
    servers
        .get(&(server as usize))
        .cloned()
        .ok_or_else(|| Error::InvalidArgument("unknown or already freed server handle".into()))
}

pub(crate) fn unregister(server: *const roost_server) -> Result<Arc<PolledServer>> {
    let mut servers = SERVERS.write().unwrap_or_else(|e| e.into_inner());
    servers
        .remove(&(server as usize))
        .ok_or_else(|| Error::InvalidArgument("unknown or already freed server handle".into()))
}

/// The bytes at `data`, which may be NULL only when `len` is 0.
///
/// # Safety
/// When non-NULL, `data` must point to `len` readable bytes for the call's duration.
pub(crate) unsafe fn bytes<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if data.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::InvalidArgument(format!("{what} is NULL with length {len}")));
    }
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument(format!("{what} length {len} is too large")));
    }
    // SAFETY: non-NULL and within isize::MAX; the caller vouches for the rest.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Like `bytes`, and the bytes must be UTF-8.
///
/// # Safety
/// As for `bytes`.
pub(crate) unsafe fn text<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded from the caller.
    let raw = unsafe { bytes(data, len, what)? };
    std::str::from_utf8(raw).map_err(|_| Error::InvalidArgument(format!("{what} is not valid UTF-8")))
}

/// Writes an out-parameter after checking it is not NULL.
///
/// # Safety
/// When non-NULL, `out` must be valid for writing a `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL; the caller vouches that it is writable.
    unsafe { out.write(value) };
    Ok(())
}

/// Writes an optional out-parameter: NULL means the caller does not want the value.
///
/// # Safety
/// When non-NULL, `out` must be valid for writing a `T`.
pub(crate) unsafe fn write_if_wanted<T>(out: *mut T, value: T) {
    // SAFETY: NULL is skipped; the caller vouches that anything else is writable.
    if let Some(out) = unsafe { out.as_mut() } {
        *out = value;
    }
}

/// Checks an out-parameter before any work is done, so that nothing happens when the
/// result could not be reported.
pub(crate) fn require_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    Ok(())
}

/// Copies a struct that grows at its end (`roost_options`) from the caller, who
/// compiled it with `size` bytes: `size` must be at least `first_size` (the struct's
/// first published layout). Fields beyond a smaller struct (an older header) keep
/// their value in `defaults`; bytes beyond this version's struct (fields of a newer
/// header) must be zero, since this library cannot honour them. The rule of Linux's
/// extensible system-call structs (openat2, clone3).
///
/// # Safety
/// When non-NULL, `src` must point to `size` readable bytes holding the first
/// `min(size, size_of::<T>())` bytes of a valid `T`.
pub(crate) unsafe fn read_extensible<T: Copy>(
    src: *const T,
    size: usize,
    first_size: usize,
    defaults: T,
    what: &str,
) -> Result<T> {
    let known = std::mem::size_of::<T>();
    if src.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    check_extensible_size(size, first_size, what)?;
    if size > known {
        // SAFETY: `src` is non-NULL and holds `size` > `known` readable bytes.
        let tail = unsafe { std::slice::from_raw_parts(src.cast::<u8>().add(known), size - known) };
        if let Some(at) = tail.iter().position(|&b| b != 0) {
            return Err(Error::InvalidArgument(format!(
                "{what} sets a field at byte {} that this library (version {}) does not know; \
                 it was compiled with a newer roost.h",
                known + at,
                env!("CARGO_PKG_VERSION")
            )));
        }
    }
    let mut value = defaults;
    // SAFETY: `src` holds at least `min(size, known)` readable bytes, which are the
    // start of a valid `T`; `value` is a `T` of `known` writable bytes; the caller's
    // memory and this local never overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(src.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), size.min(known))
    };
    Ok(value)
}

/// Writes `value` into a caller's struct of `size` bytes: as much of it as the
/// caller's struct holds (an older header's is shorter), zeroing what lies beyond the
/// fields this library knows (a newer header's is longer).
///
/// # Safety
/// `dst` must be non-NULL and point to `size` writable bytes.
pub(crate) unsafe fn write_extensible<T: Copy>(dst: *mut u8, size: usize, value: &T) {
    let known = std::mem::size_of::<T>();
    let copied = size.min(known);
    // SAFETY: the caller provides `size` writable bytes at `dst`; a `T` is `known`
    // readable bytes; `copied` is within both, and the two never overlap.
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), dst, copied);
        std::ptr::write_bytes(dst.add(copied), 0, size - copied);
    }
}

/// Checks the size a caller compiled an extensible struct with against the struct's
/// first published size.
pub(crate) fn check_extensible_size(size: usize, first_size: usize, what: &str) -> Result<()> {
    if size < first_size || size > isize::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "{what} size {size} is invalid: this library needs at least {first_size} (compile with its roost.h)"
        )));
    }
    Ok(())
}
