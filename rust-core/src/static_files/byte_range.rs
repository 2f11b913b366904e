//! The Range header of a GET (RFC 9110 14.1.2, 14.2): one byte range is served as a
//! 206; several are not (a multipart/byteranges answer is rarely asked for, and is the
//! classic way to make a server do much work for a short request), so they, like a
//! range the server cannot read, get the whole file.

/// What to send of a file for a request's Range header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// The whole file, 200: no Range, one that is malformed or not in bytes, or several.
    Whole,
    /// Bytes `first..=last`, 206 with Content-Range.
    Part { first: u64, last: u64 },
    /// 416 with `Content-Range: bytes */len`: the range starts past the end.
    Unsatisfiable,
}

/// What a GET with Range `range` gets of a file of `len` bytes.
pub(crate) fn evaluate(range: &[u8], len: u64) -> RangeAnswer {
    let Some(set) = strip_bytes_unit(range.trim_ascii()) else {
        return RangeAnswer::Whole;
    };
    let mut specs = set.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeAnswer::Whole;
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeAnswer::Whole;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        // A suffix: the last n bytes.
        return match number(last) {
            None => RangeAnswer::Whole,
            Some(0) => RangeAnswer::Unsatisfiable,
            // An empty file has no last byte to name; it is sent whole (empty).
            Some(_) if len == 0 => RangeAnswer::Whole,
            Some(n) => RangeAnswer::Part { first: len.saturating_sub(n), last: len - 1 },
        };
    }
    let Some(first) = number(first) else {
        return RangeAnswer::Whole;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(last) if last >= first => last,
            _ => return RangeAnswer::Whole,
        }
    };
    if first >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part { first, last: last.min(len - 1) }
}

/// The range set after `bytes=` (the unit compared without regard to case).
fn strip_bytes_unit(range: &[u8]) -> Option<&[u8]> {
    let (unit, set) = range.split_at_checked(b"bytes=".len())?;
    unit.eq_ignore_ascii_case(b"bytes=").then_some(set)
}

/// A decimal position; one too large for u64 is read as u64::MAX, which is past the
/// end of any file.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(first: u64, last: u64) -> RangeAnswer {
        RangeAnswer::Part { first, last }
    }

    #[test]
    fn one_range_of_each_form_is_a_part() {
        assert_eq!(evaluate(b"bytes=0-4", 10), part(0, 4));
        assert_eq!(evaluate(b"bytes=3-", 10), part(3, 9));
        assert_eq!(evaluate(b"bytes=-3", 10), part(7, 9));
        assert_eq!(evaluate(b"bytes=9-9", 10), part(9, 9));
        assert_eq!(evaluate(b"Bytes=2-3", 10), part(2, 3));
        assert_eq!(evaluate(b" bytes= 2-3 ,", 10), part(2, 3));
    }

    #[test]
    fn a_range_past_the_end_is_clipped_and_a_long_suffix_is_the_whole_file() {
        assert_eq!(evaluate(b"bytes=5-100", 10), part(5, 9));
        assert_eq!(evaluate(b"bytes=5-99999999999999999999999", 10), part(5, 9));
        assert_eq!(evaluate(b"bytes=-100", 10), part(0, 9));
    }

    #[test]
    fn a_range_starting_past_the_end_or_an_empty_suffix_is_unsatisfiable() {
        assert_eq!(evaluate(b"bytes=10-", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=10-20", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=99999999999999999999999-", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-0", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-5", 0), RangeAnswer::Whole);
    }

    #[test]
    fn several_ranges_malformed_ones_and_other_units_get_the_whole_file() {
        for range in [
            &b"bytes=0-1,3-4"[..],
            b"bytes=0-1, -2",
            b"bytes=",
            b"bytes=,",
            b"bytes=5",
            b"bytes=4-2",
            b"bytes=a-b",
            b"bytes=-",
            b"bytes=+1-2",
            b"bytes=1--2",
            b"items=0-4",
            b"bytes 0-4",
            b"",
        ] {
            assert_eq!(evaluate(range, 10), RangeAnswer::Whole, "{}", String::from_utf8_lossy(range));
        }
    }
}
