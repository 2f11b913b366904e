//! Opening what a request names in one system call: `openat2` (Linux 5.6) resolves the
//! path below the mount's directory descriptor with `RESOLVE_BENEATH`, so the kernel
//! itself refuses a resolution that would leave the directory (`..` above it, a link
//! out, an absolute link) and follows links that stay inside. The path walk of
//! `lookup` (canonicalize, then compare) costs three `readlink` and two `stat` calls
//! for a file one level down, more for deeper ones; a 4 KiB file's request made nine
//! system calls, and this makes it five (open, stat, read, close, send).
//!
//! The kernel is stricter than the path walk in two cases, and those go back to it:
//! an absolute link, refused even when it points inside, and a path that leaves
//! through a link and comes back in. A kernel without `openat2`, or a seccomp filter
//! that refuses it, leaves every lookup to the path walk.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the kernel says it has no `openat2`: no later lookup tries it.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// What `open` found.
#[derive(Debug)]
pub(crate) enum Opened {
    /// Open for reading (a regular file, a directory, or something else: the caller
    /// looks at its metadata).
    Found(File),
    /// Nothing that may be opened: absent, a file used as a directory, no permission,
    /// a loop of links. The 404 the path walk would give too.
    Missing,
    /// The kernel refused the resolution itself, or has no `openat2`: the path walk
    /// decides.
    Undecided,
}

/// A descriptor of `directory` for `open`, or None where the kernel cannot use one
/// (the mount then uses the path walk alone).
pub(crate) fn open_directory(directory: &Path) -> Option<OwnedFd> {
    let name = CString::new(directory.as_os_str().as_bytes()).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(name.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    // SAFETY: a descriptor `open` just returned, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `relative` (segments joined by `/`, "." for the directory itself) below
/// `directory` for reading, without blocking on a FIFO. Err only for what is not the
/// request's doing (out of descriptors).
pub(crate) fn open(directory: &OwnedFd, relative: &[u8]) -> io::Result<Opened> {
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return Ok(Opened::Undecided);
    }
    // The request path decoder refuses NUL, so this cannot fail; a 404 if it did.
    let Ok(name) = CString::new(relative) else { return Ok(Opened::Missing) };
    // SAFETY: open_how is plain integers; all zero is its defined "no options" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: the descriptor is open for the call's duration (borrowed from `directory`),
    // `name` is NUL-terminated, and `how` is an open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            directory.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a descriptor openat2 just returned, owned by nothing else.
        return Ok(Opened::Found(unsafe { File::from_raw_fd(fd as i32) }));
    }
    let err = io::Error::last_os_error();
    Ok(match err.raw_os_error().unwrap_or(0) {
        libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP | libc::ENAMETOOLONG => Opened::Missing,
        // Leaving the directory, or an absolute link: for the path walk to judge.
        // EAGAIN and EINTR: a resolution the kernel would retry; the walk does.
        libc::EXDEV | libc::EAGAIN | libc::EINTR | libc::EPERM => Opened::Undecided,
        libc::ENOSYS | libc::EINVAL | libc::E2BIG => {
            UNAVAILABLE.store(true, Ordering::Relaxed);
            Opened::Undecided
        }
        _ => return Err(err),
    })
}
