//! Vendors' rate-limit headers, read into a [`RateLimitInfo`]: OpenAI's and most compatible
//! vendors' `x-ratelimit-*` (resets as Go-style durations such as `6m0s`, or plain seconds)
//! and Anthropic's `anthropic-ratelimit-*` (resets as RFC 3339 timestamps).
//!
//! Nothing a vendor sends here is trusted: a value that does not parse, a negative count
//! (Azure sends `-1`) or a reset further off than [`MAX_RESET`] is left out (`None`), never
//! an error.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::types::RateLimitInfo;

/// Longest reset accepted. Longer values are not believable as a rate-limit window (a
/// misread Unix timestamp, a typo) and are dropped rather than capped, so a limiter never
/// holds for a made-up time.
pub(crate) const MAX_RESET: Duration = Duration::from_secs(24 * 3600);

/// What the rate-limit headers of a response say. Empty ([`RateLimitInfo::is_empty`]) when
/// the vendor sent none that parse.
pub(crate) fn rate_limit_info(headers: &HeaderMap) -> RateLimitInfo {
    // No clock read for the many answers that carry none of the headers.
    let any = headers.keys().any(|n| {
        let n = n.as_str();
        n.starts_with("x-ratelimit-") || n.starts_with("anthropic-ratelimit-")
    });
    if !any {
        return RateLimitInfo::default();
    }
    rate_limit_info_at(headers, SystemTime::now())
}

/// One allowance as the headers describe it.
#[derive(Clone, Copy, Default)]
struct Allowance {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
}

impl Allowance {
    fn set(&mut self, field: &str, value: &str, now: SystemTime) {
        match field {
            "limit" => self.limit = self.limit.or_else(|| count(value)),
            "remaining" => self.remaining = self.remaining.or_else(|| count(value)),
            "reset" => self.reset = self.reset.or_else(|| reset(value, now)),
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }
}

/// [`rate_limit_info`] with the wall-clock time Anthropic's reset timestamps are measured from.
pub(crate) fn rate_limit_info_at(headers: &HeaderMap, now: SystemTime) -> RateLimitInfo {
    // One pass over the headers, matching prefixes: cheaper than a hashed lookup for each of
    // the sixteen names on every response.
    let (mut oa_req, mut oa_tok) = (Allowance::default(), Allowance::default());
    // Anthropic: requests, then tokens, input tokens, output tokens.
    let mut an = [Allowance::default(); 4];
    for (name, value) in headers {
        let name = name.as_str();
        // The name first: most headers are not these, and reading a value checks its bytes.
        if !(name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let value = value.trim();
        if let Some(rest) = name.strip_prefix("x-ratelimit-") {
            // `x-ratelimit-{field}-{requests|tokens}`; other suffixes (`tokens_usage_based`)
            // are ignored.
            let Some((field, what)) = rest.split_once('-') else {
                continue;
            };
            match what {
                "requests" => oa_req.set(field, value, now),
                "tokens" => oa_tok.set(field, value, now),
                _ => {}
            }
        } else if let Some(rest) = name.strip_prefix("anthropic-ratelimit-") {
            // `anthropic-ratelimit-{requests|tokens|input-tokens|output-tokens}-{field}`.
            let Some((what, field)) = rest.rsplit_once('-') else {
                continue;
            };
            let slot = match what {
                "requests" => 0,
                "tokens" => 1,
                "input-tokens" => 2,
                "output-tokens" => 3,
                _ => continue,
            };
            an[slot].set(field, value, now);
        }
    }
    let [an_req, an_tokens @ ..] = an;
    // The tightest token allowance Anthropic sent, with its own limit and reset; ties go to
    // the combined allowance, then input, then output.
    let an_tok = an_tokens
        .iter()
        .filter(|a| a.remaining.is_some())
        .min_by_key(|a| a.remaining)
        .or_else(|| an_tokens.iter().find(|a| !a.is_empty()))
        .copied()
        .unwrap_or_default();
    // A proxy may pass both families on: the OpenAI-style value wins, Anthropic's fills gaps.
    RateLimitInfo {
        limit_requests: oa_req.limit.or(an_req.limit),
        remaining_requests: oa_req.remaining.or(an_req.remaining),
        reset_requests: oa_req.reset.or(an_req.reset),
        limit_tokens: oa_tok.limit.or(an_tok.limit),
        remaining_tokens: oa_tok.remaining.or(an_tok.remaining),
        reset_tokens: oa_tok.reset.or(an_tok.reset),
    }
}

/// A count: a non-negative integer (`-1`, `1.5`, `"n/a"` are not counts).
fn count(value: &str) -> Option<u64> {
    value.parse().ok()
}

/// A reset value in either family's form: a duration (`6m0s`, `20ms`, `12`, `0.5`) or an
/// RFC 3339 timestamp, measured from `now` (a past timestamp is zero).
fn reset(value: &str, now: SystemTime) -> Option<Duration> {
    let d = go_duration(value).or_else(|| {
        let at = crate::time::parse_rfc3339(value)?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })?;
    (d <= MAX_RESET).then_some(d)
}

/// A Go-style duration (`1h2m3.5s`, `6m0s`, `20ms`, `1.5µs`, `0s`) or plain seconds
/// (`12`, `0.5`). Signs, exponents and unknown units are refused.
fn go_duration(value: &str) -> Option<Duration> {
    let total = super::retry_after::duration_secs(value)?;
    // The bound also keeps `from_secs_f64` away from values it would panic on.
    (total.is_finite() && total <= MAX_RESET.as_secs_f64()).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                panic!("bad test header {name}: {value}");
            };
            h.append(name, value);
        }
        h
    }

    /// The response headers of a recorded `*.http.json` sidecar under `tests/fixtures/`.
    pub(crate) fn recorded_headers(rel: &str) -> HeaderMap {
        let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).expect("sidecar JSON");
        let mut h = HeaderMap::new();
        let map = v.pointer("/response/headers").and_then(|m| m.as_object());
        for (name, values) in map.into_iter().flatten() {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            // A value, or (in most recordings) the list of a repeated header's values.
            let values = match values.as_array() {
                Some(list) => list.iter().collect(),
                None => vec![values],
            };
            for value in values {
                let value = value.as_str().expect("header values are strings");
                h.append(
                    name.clone(),
                    HeaderValue::from_str(value).expect("header value"),
                );
            }
        }
        h
    }

    fn at(rfc: &str) -> SystemTime {
        crate::time::parse_rfc3339(rfc).unwrap_or_else(|| panic!("{rfc} parses"))
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn openai_recorded_400() {
        let h = recorded_headers("openai/error_400_unsupported_parameter_raw.http.json");
        let info = rate_limit_info(&h);
        assert_eq!(info.limit_requests, Some(30_000));
        assert_eq!(info.remaining_requests, Some(29_999));
        assert_eq!(info.reset_requests, Some(MS(2)));
        assert_eq!(info.limit_tokens, Some(150_000_000));
        assert_eq!(info.remaining_tokens, Some(149_999_990));
        assert_eq!(info.reset_tokens, Some(Duration::ZERO));
    }

    #[test]
    fn openai_documented_and_community_values() {
        // The docs' table and the community post in tests/fixtures/headers/rate_limit_headers.yaml,
        // with its `_usage_based` variants, which are ignored.
        let h = headers(&[
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-limit-tokens", "160000"),
            ("x-ratelimit-limit-tokens_usage_based", "1"),
            ("x-ratelimit-remaining-requests", "4999"),
            ("x-ratelimit-remaining-tokens", "159976"),
            ("x-ratelimit-remaining-tokens_usage_based", "2"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-reset-tokens", "9ms"),
            ("x-ratelimit-reset-tokens_usage_based", "1h"),
        ]);
        let info = rate_limit_info(&h);
        assert_eq!(info.limit_tokens, Some(160_000));
        assert_eq!(info.remaining_tokens, Some(159_976));
        assert_eq!(info.reset_requests, Some(MS(12)));
        assert_eq!(info.reset_tokens, Some(MS(9)));
        let docs = headers(&[
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        let info = rate_limit_info(&docs);
        assert_eq!(info.reset_requests, Some(S(1)));
        assert_eq!(info.reset_tokens, Some(S(360)));
        // Groq (same names), as noted in the yaml.
        let groq = headers(&[
            ("x-ratelimit-reset-requests", "1m26.4s"),
            ("x-ratelimit-reset-tokens", "585ms"),
        ]);
        let info = rate_limit_info(&groq);
        assert_eq!(info.reset_requests, Some(MS(86_400)));
        assert_eq!(info.reset_tokens, Some(MS(585)));
    }

    #[test]
    fn azure_minus_one_is_ignored() {
        let h = headers(&[
            ("x-ratelimit-limit-tokens", "-1"),
            ("x-ratelimit-remaining-tokens", "-1"),
            ("x-ratelimit-reset-tokens", "0"),
        ]);
        let info = rate_limit_info(&h);
        assert_eq!(info.limit_tokens, None);
        assert_eq!(info.remaining_tokens, None);
        assert_eq!(info.reset_tokens, Some(Duration::ZERO));
    }

    #[test]
    fn anthropic_recorded_200() {
        let h = recorded_headers(
            "anthropic/messages_ratelimit_headers_programmatic_tool_use.http.json",
        );
        let now = at("2026-02-25T20:02:31Z");
        let info = rate_limit_info_at(&h, now);
        assert_eq!(info.limit_requests, Some(50));
        assert_eq!(info.remaining_requests, Some(49));
        assert_eq!(info.reset_requests, Some(S(1)));
        // The output allowance is the tightest: its limit and reset come with it.
        assert_eq!(info.remaining_tokens, Some(8000));
        assert_eq!(info.limit_tokens, Some(8000));
        assert_eq!(info.reset_tokens, Some(S(5)));
        // Later than every reset: zero, not an error.
        let info = rate_limit_info_at(&h, at("2026-02-25T21:00:00Z"));
        assert_eq!(info.reset_requests, Some(Duration::ZERO));
        assert_eq!(info.reset_tokens, Some(Duration::ZERO));
    }

    #[test]
    fn anthropic_redacted_recording() {
        // The recorder replaced most values with placeholders.
        let h = recorded_headers("anthropic/messages_text_with_ratelimit_headers.http.json");
        let info = rate_limit_info_at(&h, at("2026-02-12T19:30:47.5Z"));
        assert_eq!(info.limit_requests, Some(4000));
        assert_eq!(info.remaining_requests, Some(3999));
        assert_eq!(info.reset_requests, Some(MS(500)));
        assert_eq!(info.limit_tokens, None);
        assert_eq!(info.remaining_tokens, None);
        assert_eq!(info.reset_tokens, None);
        // The 429 recording carries no rate-limit header at all.
        let h = headers(&[("x-should-retry", "true"), ("request-id", "req_1")]);
        assert!(rate_limit_info(&h).is_empty());
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("1s", S(1)),
            ("6m0s", S(360)),
            ("20ms", MS(20)),
            ("1h2m3.5s", MS(3_723_500)),
            ("0s", Duration::ZERO),
            ("12", S(12)),
            ("0.5", MS(500)),
            ("1.5µs", Duration::from_nanos(1500)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("24h", S(86_400)),
        ] {
            assert_eq!(go_duration(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "s",
            "-1s",
            "1x",
            "1m12",
            "1e3",
            "1..2s",
            "soon",
            "+3s",
            "25h",
            "1735689630",
            "NaN",
            "inf",
            "1 s",
        ] {
            assert_eq!(go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resets_in_either_form_and_bounded() {
        let now = at("2025-01-01T00:00:00Z");
        assert_eq!(reset("2025-01-01T00:00:30Z", now), Some(S(30)));
        assert_eq!(reset("2024-12-31T23:59:00Z", now), Some(Duration::ZERO));
        assert_eq!(reset("2025-01-03T00:00:00Z", now), None);
        assert_eq!(reset("30s", now), Some(S(30)));
        assert_eq!(reset("48h", now), None);
        // An OpenAI-style header holding a timestamp is read as one.
        let h = headers(&[("x-ratelimit-reset-requests", "2025-01-01T00:00:02Z")]);
        assert_eq!(rate_limit_info_at(&h, now).reset_requests, Some(S(2)));
    }

    #[test]
    fn garbage_and_odd_names_are_ignored() {
        let mut h = headers(&[
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-remaining-requests", "1.5"),
            ("x-ratelimit-reset-requests", "\t 3s "),
            ("x-ratelimit-", "1"),
            ("x-ratelimit-limit", "1"),
            ("x-ratelimit-limit-", "1"),
            ("x-ratelimit-limit-widgets", "1"),
            ("anthropic-ratelimit-", "1"),
            ("anthropic-ratelimit-requests", "1"),
            ("anthropic-ratelimit-widgets-limit", "1"),
            ("anthropic-ratelimit-requests-colour", "1"),
            ("x-ratelimit-remaining-tokens", "18446744073709551616"),
        ]);
        // A value that is not text.
        h.append(
            "x-ratelimit-limit-tokens",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap_or(HeaderValue::from_static("x")),
        );
        let info = rate_limit_info(&h);
        assert_eq!(
            info,
            RateLimitInfo {
                reset_requests: Some(S(3)),
                ..RateLimitInfo::default()
            }
        );
        assert!(rate_limit_info(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn first_valid_value_wins_and_openai_beats_anthropic() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "garbage"),
            ("x-ratelimit-remaining-requests", "7"),
            ("x-ratelimit-remaining-requests", "9"),
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-limit", "10"),
            ("anthropic-ratelimit-output-tokens-limit", "100"),
        ]);
        let info = rate_limit_info(&h);
        assert_eq!(info.remaining_requests, Some(7));
        assert_eq!(info.limit_requests, Some(10));
        // No token allowance says what remains: the first one sent stands.
        assert_eq!(info.limit_tokens, Some(100));
        assert_eq!(info.remaining_tokens, None);
    }
}
