//! The retry policy as configured: tries per target, backoff, `Retry-After` and silence
//! limits, and what a context overflow does. The decision that applies it after a failed
//! attempt is [`next_move`](super::retry::next_move).

use std::time::Duration;

use backon::BackoffBuilder;
use serde::Deserialize;

use super::duration::{self, check_span};

use crate::types::{Error, ErrorKind};

/// How a target is retried before the relay moves on.
///
/// Defaults: 2 attempts per target, exponential backoff from 100 ms doubling to a 2 s cap
/// with full jitter (each wait is uniform in `[0, step]`, so synchronized clients spread
/// out), server `Retry-After` hints honoured up to 30 s when they fit the call's deadline,
/// and a connection that dropped after 1 s of silence not retried. In a configuration file
/// every field is optional: `{ max_attempts = 3, base_delay = "200ms" }`.
///
/// Checked when the relay is built ([`validate`](Self::validate)), from code and from a
/// file alike: 1 to 10 attempts, `base_delay` no longer than `max_delay`, and each delay
/// at most 24 h.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Tries per target, the first included, from 1 to 10. Default 2.
    pub max_attempts: u32,
    /// First backoff step. Default 100 ms.
    #[serde(with = "duration::req")]
    pub base_delay: Duration,
    /// Largest backoff step. Default 2 s.
    #[serde(with = "duration::req")]
    pub max_delay: Duration,
    /// Longest `Retry-After` the relay waits for on the same target; longer hints fail over
    /// at once. Default 30 s.
    #[serde(with = "duration::req")]
    pub max_retry_after: Duration,
    /// A target that accepted the request, then dropped the connection after staying silent
    /// at least this long, is treated like one that timed out: not retried, the relay fails
    /// over at once. A connection refused or reset sooner is retried. Default 1 s.
    #[serde(with = "duration::req")]
    pub silent_drop_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
            silent_drop_after: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: each target is tried once.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Sets the tries per target, the first included. 0 is raised to 1; more than 10
    /// (the ceiling: a target that failed ten times in one call will not answer the
    /// eleventh) makes the relay's build fail with a `Config` error. Default 2.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the first backoff step and the cap.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// Sets the longest `Retry-After` worth waiting for.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// Checks the policy: 1 to 10 attempts, `base_delay` no longer than
    /// `max_delay`, `max_delay` and `max_retry_after` from 1 ms to 24 h, `base_delay` and
    /// `silent_drop_after` at most 24 h. [`RelayBuilder::build`](crate::RelayBuilder::build)
    /// calls it for every retry policy it is given; the message starts with the field at
    /// fault.
    pub fn validate(&self) -> Result<(), Error> {
        check_attempts("max_attempts", self.max_attempts)?;
        if self.base_delay > self.max_delay {
            return Err(Error::new(
                ErrorKind::Config,
                "base_delay is longer than max_delay",
            ));
        }
        check_span("max_delay", self.max_delay)?;
        check_span("max_retry_after", self.max_retry_after)?;
        for (what, d) in [
            ("base_delay", self.base_delay),
            ("silent_drop_after", self.silent_drop_after),
        ] {
            // Zero (or under a millisecond) is meaningful here; only the ceiling applies.
            if d > duration::MAX_TIMEOUT {
                check_span(what, d)?;
            }
        }
        Ok(())
    }

    /// Backoff steps for one target, from `backon`'s exponential schedule. Full jitter is
    /// applied on top (backon's own jitter only adds to the step, never shortens it).
    pub(crate) fn schedule(&self) -> Backoff {
        let steps = backon::ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build();
        Backoff { steps }
    }
}

/// The most tries a retry policy or a target may set (`max_attempts`), the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 10;

/// Checks a count of tries named `what`: 1 to [`MAX_ATTEMPTS`].
pub(crate) fn check_attempts(what: &str, n: u32) -> Result<(), Error> {
    if (1..=MAX_ATTEMPTS).contains(&n) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!("{what} must be from 1 to {MAX_ATTEMPTS}, not {n}"),
        ))
    }
}

/// The backoff steps left for one target.
pub(crate) struct Backoff {
    steps: backon::ExponentialBackoff,
}

impl Backoff {
    pub(crate) fn next_jittered(&mut self) -> Option<Duration> {
        self.steps.next().map(|d| d.mul_f64(fastrand::f64()))
    }
}

/// Which errors that are the caller's fault still go to the next target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContextOverflow {
    /// Go on to the targets whose context window is larger than the failed target's, or
    /// unknown; targets known to be no larger are skipped (and so is the failed model
    /// itself). The default.
    #[default]
    LargerWindow,
    /// Go on to the next target whatever its window.
    NextTarget,
    /// Return the error at once.
    Stop,
}

/// Sets the tries per target and the silence limit; see the field docs.
impl RetryPolicy {
    /// Sets how long a dropped connection must have been silent to count as a silent target
    /// (not retried).
    pub fn silent_drop_after(mut self, d: Duration) -> Self {
        self.silent_drop_after = d;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_durations() {
        let p: RetryPolicy =
            serde_json::from_str(r#"{"max_attempts": 3, "base_delay": "200ms"}"#).unwrap();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.base_delay, Duration::from_millis(200));
        assert_eq!(p.max_delay, Duration::from_secs(2));
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"retries": 3}"#).is_err());
    }

    #[test]
    fn policies_are_checked() {
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(RetryPolicy::no_retries().validate().is_ok());
        let e = RetryPolicy::default().max_attempts(u32::MAX).validate();
        assert!(e.is_err_and(|e| e.message().starts_with("max_attempts")));
        assert!(RetryPolicy::default().max_attempts(10).validate().is_ok());
        let p = RetryPolicy {
            base_delay: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        assert!(p.validate().is_err(), "base over max");
        let e = RetryPolicy::default()
            .max_retry_after(Duration::MAX)
            .validate();
        assert!(e.is_err_and(|e| e.message().starts_with("max_retry_after")));
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_cap() {
        let p = RetryPolicy::default().max_attempts(8);
        let mut b = p.schedule();
        let caps = [100, 200, 400, 800, 1600, 2000, 2000];
        for cap in caps {
            let d = b.next_jittered().unwrap();
            assert!(d <= Duration::from_millis(cap), "{d:?} > {cap} ms");
        }
        assert_eq!(b.next_jittered(), None);
    }
}
