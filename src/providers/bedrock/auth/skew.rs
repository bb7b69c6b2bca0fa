//! Clock skew: AWS refuses a signature made more than five minutes off its own clock. The
//! refusal's `Date` header says what time the server thinks it is; the offset to it is kept
//! and added to the system clock for every later signature.

use std::time::{Duration, SystemTime};

use reqwest::header::{DATE, HeaderMap};

/// A correction smaller than this would not change the server's verdict (it allows five
/// minutes): signing again is pointless.
pub(super) const MIN_CORRECTION_SECS: u64 = 60;

/// Whether a failed answer refuses the signature for its time: 400 or 403 with
/// `RequestTimeTooSkewed` / `RequestExpired` / `RequestInTheFuture` as its type, or a
/// message saying the signature expired or is not yet current.
pub(super) fn is_skew_refusal(status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
    if !matches!(status, 400 | 403) {
        return false;
    }
    let mut texts: Vec<String> = Vec::with_capacity(4);
    if let Some(kind) = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
    {
        texts.push(kind.to_owned());
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["__type", "code", "message", "Message", "errorMessage"] {
            if let Some(text) = map.get(key).and_then(|v| v.as_str()) {
                texts.push(text.to_owned());
            }
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        // XML or plain text (`<Code>RequestTimeTooSkewed</Code>`).
        texts.push(text.to_owned());
    }
    texts.iter().any(|text| {
        let text = text.to_ascii_lowercase();
        [
            "requesttimetooskewed",
            "requestexpired",
            "requestinthefuture",
            "signature expired",
            "signature not yet current",
            "request time too skewed",
        ]
        .iter()
        .any(|needle| text.contains(needle))
    })
}

/// Server time minus `now`, in whole seconds, from the answer's `Date` header.
pub(super) fn offset_from_date(headers: &HeaderMap, now: SystemTime) -> Option<i64> {
    let date = headers.get(DATE)?.to_str().ok()?;
    let server = httpdate::parse_http_date(date.trim()).ok()?;
    Some(match server.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(behind) => i64::try_from(behind.duration().as_secs())
            .map(|s| -s)
            .unwrap_or(i64::MIN),
    })
}

/// `now` moved by `offset` seconds; `now` itself when that leaves the clock's range.
pub(super) fn shifted(now: SystemTime, offset: i64) -> SystemTime {
    let by = Duration::from_secs(offset.unsigned_abs());
    let moved = if offset >= 0 {
        now.checked_add(by)
    } else {
        now.checked_sub(by)
    };
    moved.unwrap_or(now)
}
