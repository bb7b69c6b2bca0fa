//! A vendor's request rate limit, simulated: a sliding window of admitted requests, OpenAI's
//! `x-ratelimit-*-requests` headers on admitted answers and its 429 beyond the limit.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::common::SimError;
use super::{Dialect, Reply};

/// At most `max` requests admitted within any `per` (a sliding window, on tokio's clock).
#[derive(Debug)]
pub(crate) struct RequestLimit {
    max: usize,
    per: Duration,
    /// When each request still in the window was admitted, oldest first.
    admitted: VecDeque<Instant>,
}

/// What a limit (or the limits that apply) made of one request.
pub(crate) enum Verdict {
    /// Answer as scripted, with these headers.
    Admitted(Vec<(String, String)>),
    /// Answer this 429 instead.
    Refused(Reply),
}

impl RequestLimit {
    pub(crate) fn new(max: usize, per: Duration) -> RequestLimit {
        RequestLimit {
            max,
            per,
            admitted: VecDeque::new(),
        }
    }

    /// When a request admitted `at` leaves the window (`None`: past the clock's range).
    fn leaves(&self, at: Instant) -> Option<Instant> {
        at.checked_add(self.per)
    }

    fn prune(&mut self, now: Instant) {
        while let Some(at) = self.admitted.front()
            && self.leaves(*at).is_some_and(|left| left <= now)
        {
            self.admitted.pop_front();
        }
    }

    /// How long until the oldest request in the window leaves it; `None` when it is empty.
    fn oldest_leaves_in(&self, now: Instant) -> Option<Duration> {
        let oldest = self.admitted.front()?;
        Some(
            self.leaves(*oldest)
                .map_or(self.per, |left| left.saturating_duration_since(now)),
        )
    }

    /// How long until the window next has room, when it is full now.
    fn full_for(&self, now: Instant) -> Option<Duration> {
        if self.admitted.len() < self.max {
            return None;
        }
        // No request in the window (a limit of 0): a whole window.
        Some(self.oldest_leaves_in(now).unwrap_or(self.per))
    }

    /// Time until the oldest request in the window leaves it (the allowance next grows).
    fn reset(&self, now: Instant) -> Duration {
        self.oldest_leaves_in(now).unwrap_or(Duration::ZERO)
    }
}

/// Admits a request for `model` at `now` under every limit that applies, or refuses it (in
/// `dialect`'s words on the clouds' paths, else OpenAI's). Refused requests do not count
/// against the window, as with real vendors.
pub(crate) fn decide(
    limits: &mut [&mut RequestLimit],
    model: &str,
    dialect: Dialect,
    now: Instant,
) -> Verdict {
    for limit in limits.iter_mut() {
        limit.prune(now);
    }
    let refusal = limits
        .iter()
        .filter_map(|l| Some((l.full_for(now)?, &**l)))
        .max_by_key(|(wait, _)| *wait);
    if let Some((wait, limit)) = refusal {
        return Verdict::Refused(too_many(limit, wait, model, dialect));
    }
    for limit in limits.iter_mut() {
        limit.admitted.push_back(now);
    }
    // The tightest limit speaks for the answer.
    let tightest = limits
        .iter()
        .min_by_key(|l| l.max.saturating_sub(l.admitted.len()));
    match tightest {
        Some(l) => Verdict::Admitted(headers(
            l.max,
            l.max.saturating_sub(l.admitted.len()),
            l.reset(now),
        )),
        None => Verdict::Admitted(Vec::new()),
    }
}

fn headers(limit: usize, remaining: usize, reset: Duration) -> Vec<(String, String)> {
    vec![
        ("x-ratelimit-limit-requests".to_owned(), limit.to_string()),
        (
            "x-ratelimit-remaining-requests".to_owned(),
            remaining.to_string(),
        ),
        ("x-ratelimit-reset-requests".to_owned(), go_duration(reset)),
    ]
}

/// The 429 for a request over `limit`, which has room again in `wait`: OpenAI's, or on the
/// clouds' paths (Bedrock, Vertex) the cloud's own throttling error; with `retry-after` and
/// the `x-ratelimit-*-requests` headers either way.
fn too_many(limit: &RequestLimit, wait: Duration, model: &str, dialect: Dialect) -> Reply {
    let per = if limit.per == Duration::from_secs(60) {
        "min (RPM)".to_owned()
    } else {
        go_duration(limit.per)
    };
    let message = format!(
        "Rate limit reached for {model} in organization org-polyrelaysim on requests per {per}: Limit {n}, Used {n}, Requested 1. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.",
        n = limit.max,
        wait = go_duration(wait),
    );
    // Whole seconds, rounded up: a client that waits that long finds room.
    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let cloud = matches!(
        dialect,
        Dialect::BedrockConverse
            | Dialect::BedrockInvoke
            | Dialect::VertexGemini
            | Dialect::VertexAnthropic
            | Dialect::VertexOpenAi
    );
    let reply = if cloud {
        Reply::error(SimError::RateLimited {
            retry_after_secs: retry_after,
        })
    } else {
        Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), &message)
    };
    let mut reply = reply.header("retry-after", &retry_after.to_string());
    for (name, value) in headers(limit.max, 0, wait) {
        reply = reply.header(&name, &value);
    }
    reply
}

/// A Go-style duration with millisecond precision, rounded up: `250ms`, `20s`, `1m26.4s`,
/// `1h0m0.5s`; `0s` for zero.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (
        ms / 3_600_000,
        ms % 3_600_000 / 60_000,
        ms % 60_000 / 1000,
        ms % 1000,
    );
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(go_duration(ms(250)), "250ms");
        assert_eq!(go_duration(ms(20_000)), "20s");
        assert_eq!(go_duration(ms(86_400)), "1m26.4s");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(3_600_500)), "1h0m0.5s");
        assert_eq!(go_duration(ms(59_999)), "59.999s");
    }

    #[test]
    fn sliding_window() {
        let t0 = Instant::now();
        let per = Duration::from_secs(10);
        let mut l = RequestLimit::new(2, per);
        let admit =
            |l: &mut RequestLimit, at: Instant| match decide(&mut [l], "m", Dialect::OpenAi, at) {
                Verdict::Admitted(h) => h,
                Verdict::Refused(_) => panic!("refused"),
            };
        let h = admit(&mut l, t0);
        assert_eq!(h[1].1, "1");
        assert_eq!(h[2].1, "10s");
        let h = admit(&mut l, t0 + Duration::from_secs(4));
        assert_eq!(h[1].1, "0");
        assert_eq!(h[2].1, "6s");
        assert!(matches!(
            decide(
                &mut [&mut l],
                "m",
                Dialect::OpenAi,
                t0 + Duration::from_secs(9)
            ),
            Verdict::Refused(_)
        ));
        // The first request leaves the window at 10 s; the refusal did not count.
        let h = admit(&mut l, t0 + per);
        assert_eq!(h[2].1, "4s");
        let mut zero = RequestLimit::new(0, per);
        assert_eq!(zero.full_for(t0), Some(per));
        assert!(matches!(
            decide(&mut [&mut zero], "m", Dialect::OpenAi, t0),
            Verdict::Refused(_)
        ));
    }
}
