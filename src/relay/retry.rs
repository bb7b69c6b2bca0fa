//! The one decision after a failed attempt: retry the same target, try its provider's next
//! pool key, fail over to the next target, or stop. [`next_move`] owns every rule, in the
//! order they apply:
//!
//! | # | the failure | the move |
//! |---|---|---|
//! | 1 | the attempt's pool key failed for its own sake, and the pool has another usable key for this target | [`Move::NextKey`]: the same target at once, on another key |
//! | 2 | `RequestTooLarge` | [`Move::FailOver`]: another target may take it, this one never |
//! | 3 | `ContextLengthExceeded`, the route's [`ContextOverflow`] is `Stop` | [`Move::Stop`] |
//! | 4 | `ContextLengthExceeded`, otherwise | [`Move::Overflow`]: fail over to the targets whose window may take it |
//! | 5 | a `Connect` error after at least `silent_drop_after` of silence | [`Move::FailOver`] |
//! | 6 | `RateLimited`, `Server`, `Overloaded`, `Connect`, tries left, and a wait (the server's `Retry-After` up to `max_retry_after`, else the jittered backoff) shorter than the time left | [`Move::Retry`], unless 7 or 8 |
//! | 7 | … but the attempt was the half-open breaker's probe | [`Move::FailOver`]: a probe is tried once |
//! | 8 | … but the target's retry budget is spent | [`Move::FailOver`] |
//! | 9 | the same kinds with no try left or no wait that fits | [`Move::FailOver`] |
//! | 10 | `Timeout`, `QuotaExhausted`, `Auth`, `NotFound`, `Decode`, `StreamInterrupted` | [`Move::FailOver`] |
//! | 11 | `InvalidRequest`, `ContentFiltered` with `fail_over_invalid_requests` | [`Move::FailOver`] |
//! | 12 | anything else (the caller's own errors, a cancellation…) | [`Move::Stop`] |
//!
//! It is pure: no clock is read and nothing is sent; the engine measures the time left and
//! the key pool's state, calls it once per failed attempt, and carries out the move. The one
//! effect is the retry budget's withdrawal (rule 8), which the engine passes in and which is
//! made only when a retry is otherwise due.

use std::time::Duration;

use super::policy::{Backoff, ContextOverflow, RetryPolicy};
use crate::types::{Error, ErrorKind};

/// What the engine does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Move {
    /// Wait `wait`, then try the same target again.
    Retry { wait: Duration },
    /// Try the same target again at once, on its provider's next pool key.
    NextKey,
    /// Move to the next target now.
    FailOver,
    /// A context overflow: move on to the targets whose context window may take the request
    /// (by the route's [`ContextOverflow`]); this target is ruled out for the call.
    Overflow,
    /// Return this error to the caller.
    Stop,
}

/// A failed attempt, as the decision reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure<'a> {
    /// What it failed with.
    pub error: &'a Error,
    /// Its try number on its target: 1 for the first.
    pub try_no: u32,
    /// From sending to the error.
    pub latency: Duration,
    /// Time left before the call's deadline.
    pub remaining: Duration,
    /// It was the half-open breaker's probe.
    pub probe: bool,
    /// Its pool key failed for the key's own sake, and the pool has another key usable for
    /// this target.
    pub other_key: bool,
}

/// The settings the decision applies: the target's retry policy and the route's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules<'a> {
    pub retry: &'a RetryPolicy,
    /// Invalid-request and content-filter errors go to the next target.
    pub fail_over_invalid: bool,
    pub context_overflow: ContextOverflow,
}

/// The move after `failure` under `rules`. `backoff` is the target's schedule in this call,
/// made from the retry policy when a retry first needs it (and kept for the next).
/// `withdraw_retry` takes a retry from the target's budget, `false` when it is spent; it is
/// called only when a retry is otherwise due, and never for a probe.
pub(crate) fn next_move(
    failure: &Failure<'_>,
    rules: &Rules<'_>,
    backoff: &mut Option<Backoff>,
    withdraw_retry: impl FnOnce() -> bool,
) -> Move {
    let err = failure.error;
    if failure.other_key {
        return Move::NextKey;
    }
    match err.kind() {
        ErrorKind::RequestTooLarge => return Move::FailOver,
        ErrorKind::ContextLengthExceeded => {
            return match rules.context_overflow {
                ContextOverflow::Stop => Move::Stop,
                _ => Move::Overflow,
            };
        }
        _ => {}
    }
    let schedule = backoff.get_or_insert_with(|| rules.retry.schedule());
    match decide(
        err,
        failure.try_no,
        failure.latency,
        rules.retry,
        schedule,
        failure.remaining,
        rules.fail_over_invalid,
    ) {
        // A probe is tried once, and retries come out of the target's budget.
        Decision::Retry(_) if failure.probe => Move::FailOver,
        Decision::Retry(_) if !withdraw_retry() => Move::FailOver,
        Decision::Retry(wait) => Move::Retry { wait },
        Decision::FailOver => Move::FailOver,
        Decision::Stop => Move::Stop,
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Wait, then try the same target again.
    Retry(Duration),
    /// Move to the next target now.
    FailOver,
    /// Return this error to the caller.
    Stop,
}

/// The decision for `err` on try `try_no` of a target, after an attempt of `latency`, with
/// `remaining` time in the call.
fn decide(
    err: &Error,
    try_no: u32,
    latency: Duration,
    policy: &RetryPolicy,
    backoff: &mut Backoff,
    remaining: Duration,
    fail_over_invalid: bool,
) -> Decision {
    let can_retry = try_no < policy.max_attempts;
    let wait = |backoff: &mut Backoff| match err.retry_after() {
        // A server hint replaces our schedule, if it is short enough to be worth it.
        Some(hint) if hint > policy.max_retry_after => None,
        Some(hint) => Some(hint),
        None => backoff.next_jittered(),
    };
    match err.kind() {
        // Accepted, then silent until the connection dropped: as good as a timeout.
        ErrorKind::Connect if latency >= policy.silent_drop_after => Decision::FailOver,
        ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Overloaded | ErrorKind::Connect => {
            if !can_retry {
                return Decision::FailOver;
            }
            match wait(backoff) {
                Some(d) if d < remaining => Decision::Retry(d),
                // The hint does not fit the deadline (or is too long): fail over at once.
                _ => Decision::FailOver,
            }
        }
        // A silent target is tried once; the others are permanent for this target.
        ErrorKind::Timeout
        | ErrorKind::QuotaExhausted
        | ErrorKind::Auth
        | ErrorKind::NotFound
        | ErrorKind::Decode
        | ErrorKind::StreamInterrupted => Decision::FailOver,
        ErrorKind::InvalidRequest | ErrorKind::ContentFiltered if fail_over_invalid => {
            Decision::FailOver
        }
        // ContextLengthExceeded and RequestTooLarge are decided before (`next_move`).
        _ => Decision::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_for(err: Error, try_no: u32, remaining: Duration) -> Decision {
        let p = RetryPolicy::default();
        decide(
            &err,
            try_no,
            Duration::ZERO,
            &p,
            &mut p.schedule(),
            remaining,
            false,
        )
    }

    const LOTS: Duration = Duration::from_secs(60);

    #[test]
    fn transient_errors_retry_then_fail_over() {
        let e = Error::new(ErrorKind::Server, "boom");
        assert!(
            matches!(decide_for(e.clone(), 1, LOTS), Decision::Retry(d) if d <= Duration::from_millis(100))
        );
        assert_eq!(decide_for(e, 2, LOTS), Decision::FailOver);
    }

    #[test]
    fn retry_after_is_honoured_only_when_it_fits() {
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(1));
        assert_eq!(
            decide_for(e.clone(), 1, LOTS),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            decide_for(e, 1, Duration::from_millis(900)),
            Decision::FailOver
        );
        let e = Error::new(ErrorKind::RateLimited, "x").with_retry_after(Duration::from_secs(45));
        assert_eq!(decide_for(e, 1, LOTS), Decision::FailOver);
    }

    #[test]
    fn permanent_and_caller_errors() {
        for k in [
            ErrorKind::Timeout,
            ErrorKind::QuotaExhausted,
            ErrorKind::Auth,
            ErrorKind::Decode,
        ] {
            assert_eq!(
                decide_for(Error::new(k, ""), 1, LOTS),
                Decision::FailOver,
                "{k}"
            );
        }
        for k in [ErrorKind::InvalidRequest, ErrorKind::ContentFiltered] {
            assert_eq!(
                decide_for(Error::new(k, ""), 1, LOTS),
                Decision::Stop,
                "{k}"
            );
        }
        let p = RetryPolicy::default();
        let e = Error::new(ErrorKind::ContentFiltered, "");
        assert_eq!(
            decide(&e, 1, Duration::ZERO, &p, &mut p.schedule(), LOTS, true),
            Decision::FailOver
        );
    }

    #[test]
    fn a_silent_drop_is_not_retried_a_quick_reset_is() {
        let p = RetryPolicy::default();
        let e = Error::new(ErrorKind::Connect, "closed");
        let quick = decide(
            &e,
            1,
            Duration::from_millis(5),
            &p,
            &mut p.schedule(),
            LOTS,
            false,
        );
        assert!(matches!(quick, Decision::Retry(_)), "{quick:?}");
        let silent = decide(
            &e,
            1,
            Duration::from_secs(3),
            &p,
            &mut p.schedule(),
            LOTS,
            false,
        );
        assert_eq!(silent, Decision::FailOver);
    }

    /// One row of the move table: a failure and what must follow.
    struct Row {
        kind: ErrorKind,
        retry_after: Option<Duration>,
        try_no: u32,
        latency: Duration,
        remaining: Duration,
        probe: bool,
        other_key: bool,
        budget_left: bool,
        overflow: ContextOverflow,
        fail_over_invalid: bool,
        expect: Move,
        /// Whether the retry budget was asked.
        withdrawn: bool,
    }

    const BASE: Row = Row {
        kind: ErrorKind::Server,
        retry_after: None,
        try_no: 1,
        latency: Duration::ZERO,
        remaining: LOTS,
        probe: false,
        other_key: false,
        budget_left: true,
        overflow: ContextOverflow::LargerWindow,
        fail_over_invalid: false,
        expect: Move::FailOver,
        withdrawn: false,
    };

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_move_table() {
        use ErrorKind as K;
        let retry_1s = Move::Retry { wait: SECOND };
        let rows = [
            // 1: the next pool key first, whatever the error.
            (
                "next key",
                Row {
                    kind: K::RateLimited,
                    other_key: true,
                    expect: Move::NextKey,
                    ..BASE
                },
            ),
            (
                "next key, quota",
                Row {
                    kind: K::QuotaExhausted,
                    other_key: true,
                    expect: Move::NextKey,
                    ..BASE
                },
            ),
            (
                "next key, probe",
                Row {
                    kind: K::Auth,
                    other_key: true,
                    probe: true,
                    expect: Move::NextKey,
                    ..BASE
                },
            ),
            // 2: too large for this target.
            (
                "too large",
                Row {
                    kind: K::RequestTooLarge,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            // 3, 4: context overflow, by the route's setting.
            (
                "overflow, stop",
                Row {
                    kind: K::ContextLengthExceeded,
                    overflow: ContextOverflow::Stop,
                    expect: Move::Stop,
                    ..BASE
                },
            ),
            (
                "overflow, larger",
                Row {
                    kind: K::ContextLengthExceeded,
                    expect: Move::Overflow,
                    ..BASE
                },
            ),
            (
                "overflow, next",
                Row {
                    kind: K::ContextLengthExceeded,
                    overflow: ContextOverflow::NextTarget,
                    expect: Move::Overflow,
                    ..BASE
                },
            ),
            // 5: a silent drop.
            (
                "silent drop",
                Row {
                    kind: K::Connect,
                    latency: Duration::from_secs(3),
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            // 6: a transient error with a hint that fits, then 7 and 8.
            (
                "retry",
                Row {
                    kind: K::RateLimited,
                    retry_after: Some(SECOND),
                    expect: retry_1s,
                    withdrawn: true,
                    ..BASE
                },
            ),
            (
                "retry, probe",
                Row {
                    kind: K::RateLimited,
                    retry_after: Some(SECOND),
                    probe: true,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "retry, budget spent",
                Row {
                    kind: K::Overloaded,
                    retry_after: Some(SECOND),
                    budget_left: false,
                    expect: Move::FailOver,
                    withdrawn: true,
                    ..BASE
                },
            ),
            // 9: no try left, a hint past the deadline, a hint too long.
            (
                "no try left",
                Row {
                    try_no: 2,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "hint past the deadline",
                Row {
                    kind: K::RateLimited,
                    retry_after: Some(SECOND),
                    remaining: Duration::from_millis(900),
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "hint too long",
                Row {
                    kind: K::RateLimited,
                    retry_after: Some(Duration::from_secs(45)),
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            // 10: permanent for this target.
            (
                "timeout",
                Row {
                    kind: K::Timeout,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "stream interrupted",
                Row {
                    kind: K::StreamInterrupted,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "not found",
                Row {
                    kind: K::NotFound,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            // 11, 12: the caller's errors.
            (
                "invalid",
                Row {
                    kind: K::InvalidRequest,
                    expect: Move::Stop,
                    ..BASE
                },
            ),
            (
                "invalid, fail over",
                Row {
                    kind: K::InvalidRequest,
                    fail_over_invalid: true,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "filtered, fail over",
                Row {
                    kind: K::ContentFiltered,
                    fail_over_invalid: true,
                    expect: Move::FailOver,
                    ..BASE
                },
            ),
            (
                "cancelled",
                Row {
                    kind: K::Cancelled,
                    expect: Move::Stop,
                    ..BASE
                },
            ),
        ];
        let policy = RetryPolicy::default();
        for (name, row) in rows {
            let mut err = Error::new(row.kind, name);
            if let Some(hint) = row.retry_after {
                err = err.with_retry_after(hint);
            }
            let failure = Failure {
                error: &err,
                try_no: row.try_no,
                latency: row.latency,
                remaining: row.remaining,
                probe: row.probe,
                other_key: row.other_key,
            };
            let rules = Rules {
                retry: &policy,
                fail_over_invalid: row.fail_over_invalid,
                context_overflow: row.overflow,
            };
            let mut asked = false;
            let got = next_move(&failure, &rules, &mut None, || {
                asked = true;
                row.budget_left
            });
            assert_eq!(got, row.expect, "{name}");
            assert_eq!(asked, row.withdrawn, "{name}: retry budget asked");
        }
    }

    #[test]
    fn a_backoff_retry_waits_at_most_its_step_and_keeps_the_schedule() {
        let policy = RetryPolicy::default().max_attempts(3);
        let rules = Rules {
            retry: &policy,
            fail_over_invalid: false,
            context_overflow: ContextOverflow::LargerWindow,
        };
        let err = Error::new(ErrorKind::Server, "boom");
        let mut backoff = None;
        let mut failure = Failure {
            error: &err,
            try_no: 1,
            latency: Duration::ZERO,
            remaining: LOTS,
            probe: false,
            other_key: false,
        };
        let first = next_move(&failure, &rules, &mut backoff, || true);
        assert!(
            matches!(first, Move::Retry { wait } if wait <= Duration::from_millis(100)),
            "{first:?}"
        );
        assert!(backoff.is_some(), "the schedule is kept for the next try");
        failure.try_no = 2;
        let second = next_move(&failure, &rules, &mut backoff, || true);
        assert!(
            matches!(second, Move::Retry { wait } if wait <= Duration::from_millis(200)),
            "{second:?}"
        );
        failure.try_no = 3;
        assert_eq!(
            next_move(&failure, &rules, &mut backoff, || true),
            Move::FailOver
        );
        // Rules decided before the retry policy make no schedule.
        let big = Error::new(ErrorKind::RequestTooLarge, "big");
        let mut none = None;
        let too_large = Failure {
            error: &big,
            ..failure
        };
        assert_eq!(
            next_move(&too_large, &rules, &mut none, || true),
            Move::FailOver
        );
        assert!(none.is_none());
    }
}
