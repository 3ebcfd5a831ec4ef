//! Wall-clock time as the database stores it: UTC seconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Formats epoch seconds as `YYYY-MM-DD HH:MM:SS UTC` without a calendar dependency.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Formats epoch seconds as an RFC 3339 timestamp in UTC, `2005-03-18T01:58:29Z` (syslog's
/// RFC 5424 and JSON logs use it).
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC) into epoch seconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((d, c)) => (d, c.trim_end_matches('Z').trim_end_matches(" UTC")),
        None => (text, "00:00:00"),
    };
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next().unwrap_or(Some(0))?, hms.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    // A day that does not exist (February 30) comes back as another date: refused.
    (civil_from_days(days) == (y, m as u32, d as u32)).then_some(secs)
}

/// The inverse of [`civil_from_days`] (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch seconds as an RFC 2822 date in UTC, `Tue, 21 Aug 2012 17:29:18 -0000`
/// (the form signed HTTP APIs such as Duo's expect in their `Date` header).
pub fn format_rfc2822(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!("{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} -0000", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_111_111_109), "2005-03-18 01:58:29 UTC");
        assert_eq!(format_utc(2_000_000_000), "2033-05-18 03:33:20 UTC");
        assert_eq!(format_rfc2822(1_345_570_158), "Tue, 21 Aug 2012 17:29:18 -0000");
        assert_eq!(format_rfc2822(0), "Thu, 01 Jan 1970 00:00:00 -0000");
        assert_eq!(format_rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 -0000");
        assert_eq!(format_rfc3339(1_111_111_109), "2005-03-18T01:58:29Z");
    }

    #[test]
    fn parses_dates_and_refuses_nonsense() {
        assert_eq!(parse_utc("2005-03-18T01:58:29Z"), Some(1_111_111_109));
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(parse_utc("2000-02-29"), Some(951_782_400));
        for bad in ["2001-02-29", "2005-13-01", "yesterday", "", "2005-03-18T25:00:00Z", "2005-03"] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        for secs in [0, 1, 86_399, 951_782_400, 2_000_000_000] {
            assert_eq!(parse_utc(&format_rfc3339(secs)), Some(secs));
        }
    }
}
