//! Finding a request's file below a mount's directory. Every candidate is
//! canonicalized (symbolic links followed) and must still be below the directory, so a
//! link inside may point anywhere inside and a link out is as absent as a file that
//! does not exist: the answer is the same 404 either way, which tells nothing of what
//! is outside. The kernel does the same in one call where it can (`beneath`).
//! Blocking calls: run through `blocking::run`.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::beneath::{self, Opened};
use super::content_type;
use super::request_path::RelativePath;
use super::validators::Validators;

/// The file a directory URL serves.
const INDEX: &str = "index.html";

/// What a request path names below a mount.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Nothing that may be served (absent, outside, not a regular file, a directory
    /// without an index, a file asked for with a trailing slash): 404.
    Missing,
    /// A directory asked for without its trailing slash: redirected to it.
    Directory,
    /// A regular file, open.
    File(OpenFile),
}

/// A regular file, opened, with what its response head needs.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub file: File,
    pub len: u64,
    pub validators: Validators,
    pub content_type: &'static str,
}

/// Looks `path` up below `directory` (canonical), through `handle` (its descriptor,
/// see `beneath`) where the mount has one, else, or when the kernel leaves it
/// undecided, by the path walk. Err only when a file that is there could not be opened
/// for another reason than permissions (out of descriptors).
pub(crate) fn find(directory: &Path, handle: Option<&OwnedFd>, path: &RelativePath) -> io::Result<Lookup> {
    if let Some(handle) = handle {
        if let Some(found) = find_beneath(handle, path)? {
            return Ok(found);
        }
    }
    find_by_walk(directory, path)
}

/// The lookup through `beneath`: None when the kernel leaves it to the path walk.
fn find_beneath(handle: &OwnedFd, path: &RelativePath) -> io::Result<Option<Lookup>> {
    let relative = path.joined();
    let file = match beneath::open(handle, &relative)? {
        Opened::Found(file) => file,
        Opened::Missing => return Ok(Some(Lookup::Missing)),
        Opened::Undecided => return Ok(None),
    };
    let metadata = file.metadata()?;
    if metadata.is_dir() {
        if !path.trailing_slash {
            return Ok(Some(Lookup::Directory));
        }
        let index = [relative.as_slice(), b"/", INDEX.as_bytes()].concat();
        return match beneath::open(handle, &index)? {
            Opened::Found(file) => {
                let metadata = file.metadata()?;
                Ok(Some(opened(file, &metadata, INDEX.as_bytes())))
            }
            Opened::Missing => Ok(Some(Lookup::Missing)),
            Opened::Undecided => Ok(None),
        };
    }
    if path.trailing_slash {
        return Ok(Some(Lookup::Missing));
    }
    Ok(Some(opened(file, &metadata, path.last_segment())))
}

/// The lookup by the path walk: every candidate canonicalized and compared with the
/// directory.
fn find_by_walk(directory: &Path, path: &RelativePath) -> io::Result<Lookup> {
    let requested = path.segments.iter().fold(directory.to_path_buf(), |p, s| p.join(OsStr::from_bytes(s)));
    let Some((real, metadata)) = resolve_inside(directory, &requested) else {
        return Ok(Lookup::Missing);
    };
    if metadata.is_dir() {
        if !path.trailing_slash {
            return Ok(Lookup::Directory);
        }
        // The index may be a link too: it is held to the same directory.
        return match resolve_inside(directory, &real.join(INDEX)) {
            Some((index, metadata)) if metadata.is_file() => open(&index, INDEX.as_bytes()),
            _ => Ok(Lookup::Missing),
        };
    }
    if !metadata.is_file() || path.trailing_slash {
        return Ok(Lookup::Missing);
    }
    // The type comes from the name asked for, as the client sees it, not from a link's
    // target.
    open(&real, path.last_segment())
}

/// The canonical path of `candidate` and its metadata, when it exists below
/// `directory`.
fn resolve_inside(directory: &Path, candidate: &Path) -> Option<(PathBuf, Metadata)> {
    let real = fs::canonicalize(candidate).ok()?;
    if !real.starts_with(directory) {
        return None;
    }
    let metadata = fs::metadata(&real).ok()?;
    Some((real, metadata))
}

fn open(real: &Path, name: &[u8]) -> io::Result<Lookup> {
    // Non-blocking: should a FIFO take the file's place after the look, opening it
    // must not wait for a writer. Reads of a regular file ignore the flag.
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(real) {
        Ok(file) => file,
        Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => {
            return Ok(Lookup::Missing)
        }
        Err(err) => return Err(err),
    };
    // The size and time of what was opened, not of what was looked at.
    let metadata = file.metadata()?;
    Ok(opened(file, &metadata, name))
}

/// An open file with its metadata: served if it is a regular file, with the type of
/// `name` (the name asked for, as the client sees it, not a link's target).
fn opened(file: File, metadata: &Metadata, name: &[u8]) -> Lookup {
    if !metadata.is_file() {
        return Lookup::Missing;
    }
    Lookup::File(OpenFile {
        len: metadata.len(),
        validators: Validators::new(metadata.len(), metadata.mtime(), metadata.mtime_nsec()),
        content_type: content_type::for_name(name),
        file,
    })
}
