//! Static files served by the core itself: a URL prefix mounted on a directory, the
//! file answered with its type, validators and ranges, its bytes streamed from disk in
//! chunks. The HTTP request loop calls `serve` for a request no HTTP route took; the
//! files never pass through the consumer.
//!
//! What may be served is decided twice: the request path is decoded and refused if it
//! could climb out (`request_path`), and what it names on disk is canonicalized and
//! must still be inside the mount's directory (`lookup`), which is what makes symbolic
//! links safe. No directory listings: a directory serves its `index.html` or nothing.

mod beneath;
mod blocking;
mod byte_range;
mod content_type;
mod http_date;
mod lookup;
mod request_path;
mod response;
#[cfg(test)]
mod tests;
mod validators;

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncWrite;

use crate::error::Error;
use blocking::Place;
use byte_range::RangeAnswer;
use lookup::{Lookup, OpenFile};
use response::Head;

/// The static mounts of a server: URL prefix -> directory, longest prefix first.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticMounts {
    /// Longest prefix first, so the first that covers a path is the most specific.
    mounts: Vec<Mount>,
}

#[derive(Debug, Clone)]
struct Mount {
    /// The prefix without its trailing slashes: `/assets/` is `/assets`, `/` is empty.
    prefix: String,
    /// Canonical, so that what a request names can be checked against it.
    directory: Arc<Path>,
    /// A descriptor of `directory` for `beneath`'s one-call lookups; None where the
    /// kernel cannot make one (the path walk alone then).
    handle: Option<Arc<OwnedFd>>,
}

impl Mount {
    /// Whether this mount covers `path`: the prefix followed by nothing or `/`
    /// (`/assets` covers `/assets` and `/assets/x`, not `/assetsx`).
    fn covers(&self, path: &[u8]) -> bool {
        path.first() == Some(&b'/')
            && path.starts_with(self.prefix.as_bytes())
            && matches!(path.get(self.prefix.len()), None | Some(b'/'))
    }
}

impl StaticMounts {
    /// Adds a mount. `prefix` must start with "/"; `directory` must exist and be a
    /// directory (Error::InvalidArgument saying which otherwise); it is canonicalized now.
    pub(crate) fn add(&mut self, prefix: &str, directory: &Path) -> Result<(), Error> {
        if !prefix.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "static URL prefix {prefix:?} must start with \"/\""
            )));
        }
        // A request path is compared as sent, so a prefix holding what a request path
        // cannot (spaces, non-ASCII, a query) would never match.
        if !prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#') {
            return Err(Error::InvalidArgument(format!(
                "static URL prefix {prefix:?} must be printable ASCII without '?' or '#' (percent-encode the rest)"
            )));
        }
        let normalized = prefix.trim_end_matches('/');
        if self.mounts.iter().any(|m| m.prefix == normalized) {
            return Err(Error::InvalidArgument(format!("static URL prefix {prefix:?} is already mounted")));
        }
        let directory = std::fs::canonicalize(directory).map_err(|err| {
            Error::InvalidArgument(format!("static directory {} cannot be used: {err}", directory.display()))
        })?;
        if !directory.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "static directory {} is not a directory",
                directory.display()
            )));
        }
        let handle = beneath::open_directory(&directory).map(Arc::new);
        let mount = Mount { prefix: normalized.to_string(), directory: directory.into(), handle };
        let at = self.mounts.partition_point(|m| m.prefix.len() >= mount.prefix.len());
        self.mounts.insert(at, mount);
        Ok(())
    }

    /// The same mounts, looked up by the path walk alone (the tests run both ways).
    #[cfg(test)]
    pub(crate) fn by_walk_only(mut self) -> StaticMounts {
        for mount in &mut self.mounts {
            mount.handle = None;
        }
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// Whether some mount's prefix covers this request path (raw, not decoded, no query).
    pub(crate) fn covers(&self, path: &[u8]) -> bool {
        self.mount_for(path).is_some()
    }

    /// The mount that serves `path`: the longest prefix that covers it. A file missing
    /// there is a 404, even if a shorter prefix's directory has it.
    fn mount_for(&self, path: &[u8]) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.covers(path))
    }
}

/// What the HTTP loop hands the module about one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StaticRequest<'a> {
    /// "GET" or "HEAD" (others -> the module answers 405 with Allow: GET, HEAD).
    pub method: &'a str,
    /// Raw request path without the query, as sent.
    pub path: &'a [u8],
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
}

/// Serves `request` from the mounts onto `stream`: writes the whole response (status line,
/// headers incl. Content-Length, `Connection: close` when `keep_alive` is false, body
/// streamed from the file in chunks, never read whole). Returns Ok(None) when no mount
/// covers the path (nothing written; the caller goes on routing), Ok(Some(status)) after
/// writing a response, Err on a socket error, or a file that fails to read once its
/// response has begun: the connection cannot go on.
pub(crate) async fn serve<S: AsyncWrite + Unpin>(
    mounts: &StaticMounts,
    request: &StaticRequest<'_>,
    stream: &mut S,
    keep_alive: bool,
) -> io::Result<Option<u16>> {
    let Some(mount) = mounts.mount_for(request.path) else {
        return Ok(None);
    };
    let head_only = match request.method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let head = Head::new(405).header("Allow", "GET, HEAD");
            response::write_text(stream, head, false, keep_alive).await?;
            return Ok(Some(405));
        }
    };
    let Some(path) = request_path::decode(&request.path[mount.prefix.len()..]) else {
        response::write_text(stream, Head::new(404), head_only, keep_alive).await?;
        return Ok(Some(404));
    };
    let (directory, handle) = (Arc::clone(&mount.directory), mount.handle.clone());
    let (found, path) =
        blocking::run(Place::InPlace, move || (lookup::find(&directory, handle.as_deref(), &path), path))
            .await?;
    let head = match found {
        Ok(Lookup::File(file)) => return send_file(file, request, stream, head_only, keep_alive).await,
        Ok(Lookup::Missing) => Head::new(404),
        Ok(Lookup::Directory) => Head::new(301).header("Location", path.directory_url(&mount.prefix)),
        // Out of descriptors, most likely: the file is there and may be served later.
        Err(_) => Head::new(500),
    };
    let status = head.status();
    response::write_text(stream, head, head_only, keep_alive).await?;
    Ok(Some(status))
}

/// Answers with an open file: 304 if the client's copy is current, else the file or
/// the range asked for.
async fn send_file<S: AsyncWrite + Unpin>(
    file: OpenFile,
    request: &StaticRequest<'_>,
    stream: &mut S,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<Option<u16>> {
    let OpenFile { file, len, validators, content_type } = file;
    let with_validators = |head: Head| {
        let head = head.header("ETag", &validators.etag);
        match &validators.last_modified {
            Some(date) => head.header("Last-Modified", date),
            None => head,
        }
    };
    // Conditions before ranges (RFC 9110 13.2.2).
    if validators.not_modified(request.if_none_match, request.if_modified_since) {
        // No Content-Length: a 304 has no body by definition, and RFC 9110 8.6 allows
        // only the full file's length there, which naive clients would wait for.
        response::write_head(stream, &with_validators(Head::new(304)).finish(keep_alive)).await?;
        return Ok(Some(304));
    }
    // Range is defined for GET only; a HEAD gets the 200's head.
    let range = match request.range {
        Some(range) if !head_only => byte_range::evaluate(range, len),
        _ => RangeAnswer::Whole,
    };
    let (status, first, count) = match range {
        RangeAnswer::Whole => (200, 0, len),
        RangeAnswer::Part { first, last } => (206, first, last - first + 1),
        RangeAnswer::Unsatisfiable => {
            let head = Head::new(416).header("Content-Range", format_args!("bytes */{len}"));
            response::write_text(stream, head, head_only, keep_alive).await?;
            return Ok(Some(416));
        }
    };
    let mut head = with_validators(Head::new(status))
        .header("Content-Type", content_type)
        .header("Content-Length", count)
        .header("Accept-Ranges", "bytes");
    if status == 206 {
        head = head.header("Content-Range", format_args!("bytes {first}-{}/{len}", first + count - 1));
    }
    let head = head.finish(keep_alive);
    if head_only {
        response::write_head(stream, &head).await?;
    } else {
        response::write_file(stream, head, file, first, count).await?;
    }
    Ok(Some(status))
}
