//! The daytime protocol (RFC 867): one human-readable date line, over TCP (send, close) or UDP
//! (one reply per datagram). The adapters run the servers in their own loops; the line itself,
//! and what a client accepts as one, are decided here once.

use alloc::format;
use alloc::string::String;

/// Most bytes a client reads as a daytime answer (RFC 867 sets no limit; real ones are short).
pub const MAX_ANSWER: usize = 512;

const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Year, month (1-12), day (1-31) of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The daytime answer for `unix_secs` (UTC), in the format RFC 867 gives as an example:
/// `Saturday, November 21, 2026 10:00:19-UTC` followed by CRLF.
pub fn line(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {month} {d}, {y} {:02}:{:02}:{:02}-UTC\r\n",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Why a daytime answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// Nothing came back.
    Empty,
    /// More than [`MAX_ANSWER`] bytes.
    TooLong,
    /// Not UTF-8, or control characters other than the line end.
    NotText,
}

impl core::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AnswerError::Empty => "the daytime server sent nothing",
            AnswerError::TooLong => "the daytime answer is too long",
            AnswerError::NotText => "the daytime answer is not a line of text",
        })
    }
}

impl core::error::Error for AnswerError {}

/// A client's view of an answer: one line of printable text, without its line end.
///
/// # Errors
/// Empty, longer than [`MAX_ANSWER`], or not a line of text (so a hostile server cannot put
/// escape sequences on the user's terminal).
pub fn parse_answer(bytes: &[u8]) -> Result<&str, AnswerError> {
    if bytes.len() > MAX_ANSWER {
        return Err(AnswerError::TooLong);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| AnswerError::NotText)?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(AnswerError::Empty);
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(AnswerError::NotText);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_lines() {
        assert_eq!(line(0), "Thursday, January 1, 1970 00:00:00-UTC\r\n");
        assert_eq!(
            line(1_795_255_619),
            "Saturday, November 21, 2026 10:06:59-UTC\r\n"
        );
        assert_eq!(
            line(951_782_400),
            "Tuesday, February 29, 2000 00:00:00-UTC\r\n"
        );
        assert_eq!(line(-1), "Wednesday, December 31, 1969 23:59:59-UTC\r\n");
    }

    #[test]
    fn answers() {
        assert_eq!(
            parse_answer(line(0).as_bytes()),
            Ok("Thursday, January 1, 1970 00:00:00-UTC")
        );
        assert_eq!(parse_answer(b""), Err(AnswerError::Empty));
        assert_eq!(parse_answer(b"\r\n"), Err(AnswerError::Empty));
        assert_eq!(parse_answer(b"evil\x1b[2J"), Err(AnswerError::NotText));
        assert_eq!(parse_answer(&[0xff, 0xfe]), Err(AnswerError::NotText));
        assert_eq!(
            parse_answer(&[b'a'; MAX_ANSWER + 1]),
            Err(AnswerError::TooLong)
        );
    }

    #[test]
    fn civil_from_days_is_consistent() {
        fn month_len(y: i64, m: u32) -> u32 {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }
        }
        // Walk day by day over 1200 years around the epoch: the calendar advances by exactly
        // one day each step.
        let mut prev = civil_from_days(-146_097 - 1);
        for days in -146_097..146_097 * 2 {
            let (y, m, d) = prev;
            let next = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            let got = civil_from_days(days);
            assert_eq!(got, next, "day {days}");
            prev = got;
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
