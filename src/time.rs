//! Calendar arithmetic shared by the vendors' timestamps (Anthropic's rate-limit resets,
//! Vertex's `createTime`) and the budgets' UTC windows: RFC 3339 parsing and Howard
//! Hinnant's days ↔ civil-date algorithms, a few lines where a date crate would bring far
//! more.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 timestamp: `2025-01-01T00:00:30Z`, with optional fractional seconds and a
/// `Z` or `±HH:MM` offset (`t`, `z` and a space separator tolerated). `None` for anything
/// else, an impossible date (`2025-02-29`) or a time before 1970.
pub(crate) fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let b = value.as_bytes();
    let num = |from: usize, len: usize| -> Option<u64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
        })
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u64;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            // Digits past nanoseconds are dropped, not refused.
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(d - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::try_from(h * 3600 + m * 60).ok()?;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    if year < 1970 {
        return None;
    }
    let days = days_from_civil(
        i64::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    );
    let local = days
        .checked_mul(86_400)?
        .checked_add(i64::try_from(hour * 3600 + minute * 60 + second).ok()?)?;
    // `+02:00` is two hours ahead of UTC: subtract it to get UTC.
    let utc = u64::try_from(local.checked_sub(offset_secs)?).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(utc, u32::try_from(nanos).ok()?))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = (i64::from(m) + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps() {
        let epoch = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(epoch(0, 0)));
        assert_eq!(
            parse_rfc3339("2026-02-25T20:02:37Z"),
            Some(epoch(1_772_049_757, 0))
        );
        assert_eq!(
            parse_rfc3339("2026-02-25T20:02:37.25Z"),
            Some(epoch(1_772_049_757, 250_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-02-25t20:02:37.1234567891z"),
            Some(epoch(1_772_049_757, 123_456_789))
        );
        assert_eq!(
            parse_rfc3339("2026-02-25T22:02:37+02:00"),
            Some(epoch(1_772_049_757, 0))
        );
        assert_eq!(
            parse_rfc3339("2026-02-25T15:32:37-04:30"),
            Some(epoch(1_772_049_757, 0))
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(epoch(951_782_400, 0))
        );
        for bad in [
            "",
            "2026-02-25",
            "2026-02-25T20:02:37",
            "2026-02-25T20:02:37+0200",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-02-25T24:00:00Z",
            "2026-02-25T20:02:37.Z",
            "2026-02-25T20:02:37Zjunk",
            "1969-12-31T23:59:59Z",
            "２０２６-02-25T20:02:37Z",
            "Wed, 25 Feb 2026 20:02:37 GMT",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn days_and_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for day in [-1, 0, 59, 11_016, 11_017, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
