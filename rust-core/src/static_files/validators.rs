//! A file's validators (ETag, Last-Modified) and the conditional requests that use
//! them (RFC 9110 13.1.2, 13.1.3), so that a browser revalidating a cached file gets a
//! 304 and no body.

use super::http_date;

/// What a client can revalidate a served file against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// The entity tag, quotes included. Built from the modification time (to the
    /// nanosecond) and the size: no hash, so the file is not read to answer a
    /// revalidation. Strong, as other file servers' are: a change that keeps both the
    /// size and the nanosecond is not one a file server can see.
    pub etag: String,
    /// IMF-fixdate of the modification time; None when its year has no four digits.
    pub last_modified: Option<String>,
    modified_seconds: i64,
}

impl Validators {
    /// The validators of a file of `len` bytes modified at `seconds` + `nanoseconds`
    /// after the Unix epoch (negative before it).
    pub(crate) fn new(len: u64, seconds: i64, nanoseconds: i64) -> Validators {
        Validators {
            etag: format!("\"{seconds:x}.{nanoseconds:x}-{len:x}\""),
            last_modified: http_date::format(seconds),
            modified_seconds: seconds,
        }
    }

    /// Whether a GET or HEAD with these conditional headers is answered 304: when
    /// If-None-Match is present it alone decides (weak comparison, `*` matches a file
    /// that exists); otherwise a valid If-Modified-Since not earlier than the
    /// modification time does.
    pub(crate) fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(list) = if_none_match {
            return matches_any(list, &self.etag);
        }
        let Some(since) = if_modified_since.and_then(http_date::parse) else {
            return false;
        };
        self.last_modified.is_some() && self.modified_seconds <= since
    }
}

/// Whether an If-None-Match value (`*`, or a list of entity tags) holds an entity tag
/// weakly equal to `etag` (the same opaque tag, `W/` ignored on either side). A
/// malformed member matches nothing; the ones around it still count.
fn matches_any(list: &[u8], etag: &str) -> bool {
    let ours = opaque_tag(etag.as_bytes());
    if list.trim_ascii() == b"*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(after_comma) = rest.strip_prefix(b",") {
            rest = after_comma.trim_ascii_start();
        }
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix(b"W/").unwrap_or(rest);
        // An opaque tag is everything between two quotes: commas included (RFC 9110
        // 8.8.3), so the list cannot simply be split on commas.
        if let Some(inner) = tag.strip_prefix(b"\"") {
            if let Some(end) = inner.iter().position(|&b| b == b'"') {
                if inner[..end] == *ours {
                    return true;
                }
                rest = &inner[end + 1..];
                continue;
            }
        }
        // Not an entity tag: skip to the next member.
        match rest.iter().position(|&b| b == b',') {
            Some(comma) => rest = &rest[comma..],
            None => return false,
        }
    }
}

/// The opaque part of an entity tag: without `W/` and the quotes.
fn opaque_tag(etag: &[u8]) -> &[u8] {
    let tag = etag.strip_prefix(b"W/").unwrap_or(etag);
    tag.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")).unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110's example date, 1994-11-06 08:49:37 UTC.
    const MODIFIED: i64 = 784_111_777;

    fn file() -> Validators {
        Validators::new(1234, MODIFIED, 5)
    }

    #[test]
    fn the_etag_changes_with_the_size_and_the_nanosecond() {
        assert_eq!(file().etag, "\"2ebc98a1.5-4d2\"");
        assert_ne!(Validators::new(1235, MODIFIED, 5).etag, file().etag);
        assert_ne!(Validators::new(1234, MODIFIED, 6).etag, file().etag);
        assert_eq!(file().last_modified.as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    }

    #[test]
    fn if_none_match_compares_weakly_through_a_list() {
        let file = file();
        let etag = file.etag.clone();
        let weak = format!("W/{etag}");
        assert!(file.not_modified(Some(etag.as_bytes()), None));
        assert!(file.not_modified(Some(weak.as_bytes()), None));
        assert!(file.not_modified(Some(b"*"), None));
        assert!(file.not_modified(Some(format!("\"a\", \"b,c\",{weak}").as_bytes()), None));
        assert!(file.not_modified(Some(format!("junk, {etag}").as_bytes()), None));
        assert!(!file.not_modified(Some(b"\"2ebc98a1.5-4d3\""), None));
        assert!(!file.not_modified(Some(b"2ebc98a1.5-4d2"), None));
        assert!(!file.not_modified(Some(b"\"2ebc98a1.5-4d2"), None));
        assert!(!file.not_modified(Some(b""), None));
        assert!(!file.not_modified(Some(b"*, \"x\""), None));
    }

    #[test]
    fn if_modified_since_matches_from_the_modification_second_on() {
        let file = file();
        assert!(file.not_modified(None, Some(b"Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(file.not_modified(None, Some(b"Sunday, 06-Nov-94 08:49:38 GMT")));
        assert!(!file.not_modified(None, Some(b"Sun, 06 Nov 1994 08:49:36 GMT")));
        assert!(!file.not_modified(None, Some(b"not a date")));
        assert!(!file.not_modified(None, None));
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let file = file();
        let later = Some(&b"Mon, 07 Nov 1994 00:00:00 GMT"[..]);
        assert!(!file.not_modified(Some(b"\"other\""), later));
        assert!(file.not_modified(Some(file.etag.as_bytes()), Some(b"Sat, 05 Nov 1994 00:00:00 GMT")));
    }

    #[test]
    fn a_time_without_an_imf_fixdate_is_never_not_modified_by_date() {
        let far = Validators::new(1, 300_000_000_000, 0);
        assert_eq!(far.last_modified, None);
        assert!(!far.not_modified(None, Some(b"Fri, 31 Dec 9999 23:59:59 GMT")));
    }
}
