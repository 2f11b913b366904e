//! The part of a request path below a mount, as sent: percent-decoded and checked
//! before it comes near the file system. What could climb out of the mount's directory
//! or mean something else to it (`..`, `.`, NUL, a backslash) is refused here, whether
//! sent plain or percent-encoded; symbolic links are the lookup's to check. So are
//! hidden names (a segment starting with `.`): a directory published whole often
//! holds a `.git` or an `.env` that was never meant to be served. `.well-known`
//! (RFC 8615) is the exception.

/// A request path below a mount that may be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelativePath {
    /// The decoded segments, none empty (`a//b` is `a/b`), none starting with `.` but
    /// `.well-known`.
    pub segments: Vec<Vec<u8>>,
    /// Whether the path ended with `/`: a directory's form of the URL.
    pub trailing_slash: bool,
}

impl RelativePath {
    /// The segments joined by `/`, or "." for the mount's directory itself: the
    /// relative path the file system is asked for.
    pub(crate) fn joined(&self) -> Vec<u8> {
        if self.segments.is_empty() {
            return b".".to_vec();
        }
        self.segments.join(&b'/')
    }

    /// The last segment, empty for the mount's directory: the name a type is found for.
    pub(crate) fn last_segment(&self) -> &[u8] {
        self.segments.last().map_or(&b""[..], Vec::as_slice)
    }

    /// The URL path of this same place with a trailing slash, below `prefix`, each
    /// segment percent-encoded again: the Location of a directory's redirect. Built
    /// from the decoded segments rather than echoed from the request, so it always
    /// starts with a single `/` (never `//host`, which a browser would take for another
    /// site) and holds no byte a header cannot.
    pub(crate) fn directory_url(&self, prefix: &str) -> String {
        let mut url = String::from(prefix);
        for segment in &self.segments {
            url.push('/');
            for &byte in segment {
                if is_kept_in_segment(byte) {
                    url.push(char::from(byte));
                } else {
                    url.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        url.push('/');
        url
    }
}

/// Decodes `raw` (empty, or starting with `/`); None when it must be answered 404: an
/// invalid percent escape, a decoded NUL or backslash, or a segment starting with `.`
/// (`.`, `..`, hidden names) other than `.well-known`.
pub(crate) fn decode(raw: &[u8]) -> Option<RelativePath> {
    let mut decoded = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_value(*bytes.next()?)?;
            let low = hex_value(*bytes.next()?)?;
            decoded.push(high << 4 | low);
        } else {
            decoded.push(byte);
        }
    }
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return None;
    }
    let mut segments = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" => {}
            b".well-known" => segments.push(segment.to_vec()),
            hidden if hidden.starts_with(b".") => return None,
            _ => segments.push(segment.to_vec()),
        }
    }
    Some(RelativePath { segments, trailing_slash: decoded.last() == Some(&b'/') })
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

/// The bytes RFC 3986 allows unencoded in a path segment (unreserved, sub-delims, `:`
/// and `@`).
fn is_kept_in_segment(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &[u8]) -> Option<Vec<String>> {
        decode(raw).map(|p| p.segments.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
    }

    #[test]
    fn plain_and_encoded_paths_decode_to_their_segments() {
        assert_eq!(segments(b"/a/b.txt"), Some(vec!["a".into(), "b.txt".into()]));
        assert_eq!(segments(b"/a%20b/%C3%A9.txt"), Some(vec!["a b".into(), "é.txt".into()]));
        assert_eq!(segments(b"//a///b"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(segments(b"/a+b"), Some(vec!["a+b".into()]));
        assert_eq!(segments(b"/a.b/c..d"), Some(vec!["a.b".into(), "c..d".into()]));
        assert_eq!(segments(b"/.well-known/x"), Some(vec![".well-known".into(), "x".into()]));
        assert_eq!(segments(b""), Some(vec![]));
        assert_eq!(segments(b"/"), Some(vec![]));
    }

    #[test]
    fn the_trailing_slash_is_kept_even_when_encoded() {
        assert!(!decode(b"/docs").unwrap().trailing_slash);
        assert!(decode(b"/docs/").unwrap().trailing_slash);
        assert!(decode(b"/docs%2F").unwrap().trailing_slash);
        assert!(decode(b"/").unwrap().trailing_slash);
        assert!(!decode(b"").unwrap().trailing_slash);
    }

    #[test]
    fn dot_segments_nul_backslash_and_bad_escapes_are_refused_plain_or_encoded() {
        for raw in [
            &b"/../secret"[..],
            b"/a/../../secret",
            b"/..",
            b"/.",
            b"/./a",
            b"/%2e%2e/secret",
            b"/%2E%2e/secret",
            b"/%2e%2E",
            b"/.%2e/secret",
            b"/..%2fsecret",
            b"/a%2f..%2f..%2fsecret",
            b"/..%5csecret",
            b"/a\\..\\secret",
            b"/.git/config",
            b"/%2eenv",
            b"/a/.hidden",
            b"/...",
            b"/a%5Cb",
            b"/a%00.txt",
            b"/a\x00.txt",
            b"/a%zz",
            b"/a%2",
            b"/a%",
            b"/a%%41",
        ] {
            assert_eq!(decode(raw), None, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn the_directory_url_is_rebuilt_encoded_below_the_prefix() {
        assert_eq!(decode(b"/docs").unwrap().directory_url("/static"), "/static/docs/");
        assert_eq!(decode(b"").unwrap().directory_url("/static"), "/static/");
        assert_eq!(decode(b"//evil.example").unwrap().directory_url(""), "/evil.example/");
        assert_eq!(decode(b"/a%20b/%C3%A9%0D%0A").unwrap().directory_url(""), "/a%20b/%C3%A9%0D%0A/");
        assert_eq!(decode(b"/a%3Fb%23c").unwrap().directory_url(""), "/a%3Fb%23c/");
    }
}
