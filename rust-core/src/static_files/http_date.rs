//! HTTP dates (RFC 9110 5.6.7) as seconds since the Unix epoch: IMF-fixdate out (for
//! `Last-Modified`), and in (for `If-Modified-Since`) the three forms a recipient must
//! accept. Written here rather than taken from a crate: the calendar arithmetic is a
//! few lines and the core needs nothing else of dates.

use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 (the start of the proleptic Gregorian 400-year cycle, counted
/// from March so that the leap day ends a year) to 1970-01-01.
const EPOCH_DAYS_FROM_CYCLE_START: i64 = 719_468;
const DAYS_PER_CYCLE: i64 = 146_097;
const SHORT_DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTH_NAMES: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12, day 1..=31).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Years counted from March: January and February belong to the year before.
    let year = if month <= 2 { year - 1 } else { year };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    cycle * DAYS_PER_CYCLE + day_of_cycle - EPOCH_DAYS_FROM_CYCLE_START
}

/// The (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + EPOCH_DAYS_FROM_CYCLE_START;
    let cycle = days.div_euclid(DAYS_PER_CYCLE);
    let day_of_cycle = days.rem_euclid(DAYS_PER_CYCLE);
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year = day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both fit: day 1..=31, month 1..=12.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = cycle * 400 + year_of_cycle + i64::from(month <= 2);
    (year, month, day)
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of a time; None for a year outside
/// 0000..=9999, which the format's four digits cannot hold.
pub(crate) fn format(seconds: i64) -> Option<String> {
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let time = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    // 1970-01-01 was a Thursday.
    let weekday = SHORT_DAY_NAMES[(days + 3).rem_euclid(7) as usize];
    Some(format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTH_NAMES[month as usize - 1],
        time / 3600,
        time / 60 % 60,
        time % 60
    ))
}

/// The time an HTTP date names, in any of IMF-fixdate, the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime's (`Sun Nov  6 08:49:37 1994`); None
/// when it is none of them or names no real date. Spaces between the parts are not
/// counted, a leniency the RFC allows recipients.
pub(crate) fn parse(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let (year, month, day, time) = match parts[..] {
        [weekday, day, month, year, time, "GMT"] if is_day_name(weekday.strip_suffix(',')?, false) => {
            (number(year, 4, 4)?, month_number(month)?, number(day, 2, 2)?, time)
        }
        [weekday, date, time, "GMT"] if is_day_name(weekday.strip_suffix(',')?, true) => {
            let mut fields = date.split('-');
            let (day, month, year) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() {
                return None;
            }
            (full_year(number(year, 2, 2)?), month_number(month)?, number(day, 2, 2)?, time)
        }
        [weekday, month, day, time, year] if is_day_name(weekday, false) => {
            (number(year, 4, 4)?, month_number(month)?, number(day, 1, 2)?, time)
        }
        _ => return None,
    };
    let mut clock = time.split(':');
    let (hours, minutes, seconds) = (clock.next()?, clock.next()?, clock.next()?);
    if clock.next().is_some() {
        return None;
    }
    let (hours, minutes, seconds) = (number(hours, 2, 2)?, number(minutes, 2, 2)?, number(seconds, 2, 2)?);
    // 60 is a leap second; it counts as the next second's first instant.
    if hours > 23 || minutes > 59 || seconds > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let (month, day) = (month as u32, day as u32);
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        // A day the month does not have (30 February).
        return None;
    }
    Some(days * SECONDS_PER_DAY + hours * 3600 + minutes * 60 + seconds)
}

fn is_day_name(name: &str, long: bool) -> bool {
    let names: &[&str] = if long { &LONG_DAY_NAMES } else { &SHORT_DAY_NAMES };
    names.contains(&name)
}

fn month_number(name: &str) -> Option<i64> {
    MONTH_NAMES.iter().position(|&m| m == name).map(|i| i as i64 + 1)
}

/// A number of `min..=max` ASCII digits.
fn number(text: &str, min: usize, max: usize) -> Option<i64> {
    let digits_only = text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || !(min..=max).contains(&text.len()) {
        return None;
    }
    text.parse().ok()
}

/// The year of an RFC 850 date's two digits: RFC 9110 5.6.7 reads one that would be
/// more than 50 years in the future as the same year of the century before.
fn full_year(two_digits: i64) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    year_near(two_digits, civil_from_days(now.div_euclid(SECONDS_PER_DAY)).0)
}

fn year_near(two_digits: i64, current_year: i64) -> i64 {
    let year = current_year - current_year.rem_euclid(100) + two_digits;
    if year > current_year + 50 {
        year - 100
    } else {
        year
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110's example date, 1994-11-06 08:49:37 UTC.
    const EXAMPLE: i64 = 784_111_777;

    #[test]
    fn formats_rfc_9110s_example_as_imf_fixdate() {
        assert_eq!(format(EXAMPLE).as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(format(0).as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(format(-1).as_deref(), Some("Wed, 31 Dec 1969 23:59:59 GMT"));
        assert_eq!(format(951_782_400).as_deref(), Some("Tue, 29 Feb 2000 00:00:00 GMT"));
        assert_eq!(format(253_402_300_799).as_deref(), Some("Fri, 31 Dec 9999 23:59:59 GMT"));
        assert_eq!(format(253_402_300_800), None);
    }

    #[test]
    fn parses_the_three_forms_of_rfc_9110s_example() {
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(EXAMPLE));
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(EXAMPLE));
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), Some(EXAMPLE));
        assert_eq!(parse(b"  Sun, 06 Nov 1994 08:49:37 GMT "), Some(EXAMPLE));
    }

    #[test]
    fn refuses_what_names_no_date() {
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Sun, 30 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 08:60:00 GMT",
            b"Sun, 06 Nov +994 08:49:37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun Nov 32 08:49:37 1994",
            b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let first = days_from_civil(1900, 1, 1);
        let last = days_from_civil(2300, 1, 1);
        for days in (first..last).step_by(7) {
            let seconds = days * SECONDS_PER_DAY + 45_296;
            let text = format(seconds).expect("a four-digit year");
            assert_eq!(parse(text.as_bytes()), Some(seconds), "{text}");
        }
        assert_eq!(civil_from_days(days_from_civil(2100, 2, 28) + 1), (2100, 3, 1));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 28) + 1), (2024, 2, 29));
    }

    #[test]
    fn two_digit_years_more_than_50_years_ahead_are_last_centurys() {
        assert_eq!(year_near(94, 2026), 1994);
        assert_eq!(year_near(76, 2026), 2076);
        assert_eq!(year_near(77, 2026), 1977);
        assert_eq!(year_near(5, 2026), 2005);
    }
}
