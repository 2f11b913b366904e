//! The file descriptor that tells a consumer "poll me": an eventfd on Linux, a
//! non-blocking pipe elsewhere. Readable means events may be waiting.

use std::io;
use std::os::fd::RawFd;

/// A level-triggered readiness flag visible to any event loop as a file descriptor.
#[derive(Debug)]
pub struct ReadyFd {
    read_fd: RawFd,
    write_fd: RawFd,
}

impl ReadyFd {
    /// Creates the descriptor (non-blocking, close-on-exec).
    pub fn new() -> io::Result<ReadyFd> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain system call, result checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(ReadyFd { read_fd: fd, write_fd: fd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: fds has room for the two descriptors pipe writes.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            for fd in fds {
                // SAFETY: fd was just returned by pipe.
                unsafe {
                    libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(ReadyFd { read_fd: fds[0], write_fd: fds[1] })
        }
    }

    /// The descriptor a consumer waits on for readability.
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// Makes the descriptor readable. Never blocks: a full pipe is already readable.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
        unsafe {
            libc::write(self.write_fd, (&one as *const u64).cast(), std::mem::size_of::<u64>());
        }
    }

    /// Makes the descriptor unreadable again by draining what `signal` wrote.
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a live local buffer of the given length.
            let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) };
            // An eventfd is drained by one read; a pipe may need several.
            if n <= 0 || self.read_fd == self.write_fd {
                break;
            }
        }
    }
}

impl Drop for ReadyFd {
    fn drop(&mut self) {
        // SAFETY: both descriptors are owned by this value and closed exactly once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
            }
        }
    }
}
