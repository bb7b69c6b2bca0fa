//! Server hints on when to retry: `retry-after-ms`, `Retry-After` (delta-seconds or
//! HTTP-date) and duration strings such as Gemini's `RetryInfo.retryDelay` ("45.8s").

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// Longest wait a server hint may ask for; longer hints are capped to this. A hint this long
/// never fits a call's deadline, so the relay fails over instead of waiting.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads `retry-after-ms`, then `Retry-After`, from response headers, capped at
/// [`MAX_RETRY_AFTER`].
pub fn from_headers(headers: &HeaderMap) -> Option<Duration> {
    from_headers_at(headers, SystemTime::now())
}

pub(crate) fn from_headers_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return secs_f64(ms / 1000.0);
    }
    parse_retry_after(get("retry-after")?, now)
}

/// Parses a `Retry-After` value: delta-seconds (fractions tolerated) or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return secs_f64(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses a duration string such as `"45.8s"`, `"500ms"`, `"1m26.4s"` or `"6m0s"` (protobuf
/// Duration JSON and Go's duration format), capped at [`MAX_RETRY_AFTER`].
pub fn parse_duration_str(value: &str) -> Option<Duration> {
    secs_f64(duration_secs(value.trim())?)
}

/// The seconds of a Go-style duration (`1h2m3.5s`, `6m0s`, `20ms`, `1.5µs`, `0s`) or of plain
/// seconds (`12`, `0.5`, only as the whole value). Signs, exponents and unknown units are
/// refused. Not capped: callers bound it as their header needs.
pub(crate) fn duration_secs(value: &str) -> Option<f64> {
    let mut rest = value;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest.get(..num_len)?.parse().ok()?;
        rest = rest.get(num_len..)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_len)? {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            // A bare number is seconds, but only as the whole value ("12", not "1m12").
            "" if num_len == value.len() => 1.0,
            _ => return None,
        };
        rest = rest.get(unit_len..)?;
        total += n * scale;
    }
    Some(total)
}

fn secs_f64(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn header_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(from_headers_at(&h, now), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(from_headers_at(&h, now), Some(Duration::from_millis(250)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn duration_strings() {
        assert_eq!(
            parse_duration_str("45.8s"),
            Some(Duration::from_millis(45_800))
        );
        assert_eq!(
            parse_duration_str("1m26.4s"),
            Some(Duration::from_millis(86_400))
        );
        assert_eq!(parse_duration_str("2ms"), Some(Duration::from_millis(2)));
        assert_eq!(parse_duration_str("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_duration_str("abc"), None);
        assert_eq!(parse_duration_str("5x"), None);
    }
}
