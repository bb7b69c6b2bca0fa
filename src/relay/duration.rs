//! Durations as configuration files write them: `"2.5s"`, `"250ms"`, `"1m30s"`, `"2h"`.

use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Deserializer};

use crate::types::{Error, ErrorKind};

/// `start + d`, saturating a century ahead instead of overflowing: a configured, vendor-sent
/// or client-sent duration never panics the request path.
pub(crate) fn saturating_add(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(start)
}

/// Default time allowed for one attempt: 120 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default deadline for a whole call up to its answer, retries and failover included: 300 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Default longest duration of a whole stream: 30 minutes.
pub const DEFAULT_MAX_STREAM_DURATION: Duration = Duration::from_secs(30 * 60);
/// Longest timeout a configuration may set (24 h): anything longer is a mistake.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Shortest timeout, cooldown or window a configuration may set: 1 ms, the resolution of the
/// relay's timers (a shorter one would fire at once, or round to 1 ms anyway).
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Checks a configured span (a timeout, a cooldown, a window) named `what`: at least
/// [`MIN_TIMEOUT`] and at most [`MAX_TIMEOUT`] (24 h), so that adding it
/// to an instant can never overflow. The message starts with `what`, for the caller to place.
pub(crate) fn check_span(what: &str, d: Duration) -> Result<(), Error> {
    let max = MAX_TIMEOUT;
    let message = if d.is_zero() {
        format!("{what} must be greater than zero (at least 1 ms)")
    } else if d < MIN_TIMEOUT {
        format!("{what} of {d:?} is shorter than the 1 ms allowed (timers tick in milliseconds)")
    } else if d > max {
        format!(
            "{what} of {} s is longer than the {} h allowed",
            d.as_secs(),
            max.as_secs() / 3600
        )
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorKind::Config, message))
}

/// Parses `"2.5s"`, `"250ms"`, `"1m30s"`, `"1h"`, `"500us"`: one or more decimal numbers,
/// each with a unit (`ns`, `us`, `ms`, `s`, `m`, `h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an empty duration; write e.g. \"2.5s\" or \"250ms\"".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration; write e.g. \"2.5s\" or \"250ms\""))?;
        let scale = match unit.trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "{text:?} has no unit; write e.g. \"{num}s\" or \"{num}ms\""
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ns, us, ms, s, m or h)"
                ));
            }
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{text:?} is out of range"))
}

/// `Option<Duration>` from a duration string (for `#[serde(with)]`).
pub(crate) mod opt {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Duration` from a duration string (for `#[serde(with)]`).
pub(crate) mod req {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 500us "), Ok(Duration::from_micros(500)));
        for bad in ["", "5", "1.2.3s", "3 parsecs", "-1s", "s", "1e999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
