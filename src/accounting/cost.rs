//! What things cost: every place the crate turns usage into US dollars comes here, and
//! every function here applies the one formula, [`Price::cost`].
//!
//! * [`attempt_cost`]: one attempt, from what its vendor reported (the engine when an
//!   attempt ends, a stream's running total for its budget, a stream's end);
//! * [`call_cost`]: a call, from its attempts and its routing classifier's call;
//! * [`baseline_cost`]: what the call would have cost on the baseline model;
//! * [`spent`]: what a finished call spent, as budgets count it (dollars and tokens);
//! * [`estimate_cost`]: what a request is estimated to cost before it is sent (budget
//!   admission), at the dearest of the prices it may land on.
//!
//! A missing price or missing usage is an **unknown** cost (`None`), never zero.

use crate::catalog::Price;
use crate::types::{ResponseMeta, Usage};

/// The cost of one attempt from what its vendor reported: `None` when the target has no
/// price or the attempt reported no usage.
#[inline]
pub(crate) fn attempt_cost(price: Option<&Price>, usage: Option<&Usage>) -> Option<f64> {
    Some(price?.cost(usage?))
}

/// A call's cost: every attempt that reported usage, plus the routing classifier's call.
/// Unknown (`None`) when one of them has no price, or when no attempt reported usage.
pub(crate) fn call_cost(meta: &ResponseMeta) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for a in &meta.attempts {
        if a.usage.is_some() {
            total += a.cost?;
            any = true;
        }
    }
    if let Some(r) = &meta.routing
        && r.classifier_usage.is_some()
    {
        total += r.classifier_cost?;
    }
    any.then_some(total)
}

/// What the answer's `usage` would have cost at the `baseline` price: `None` without a
/// baseline or without usage.
#[inline]
pub(crate) fn baseline_cost(baseline: Option<&Price>, usage: Option<&Usage>) -> Option<f64> {
    attempt_cost(baseline, usage)
}

/// What a finished call spent, as budgets count it: `(dollars, tokens)`, the call's
/// [`cost`](ResponseMeta::cost) and every token its attempts and its routing classifier
/// reported. A call that reported nothing spent nothing (`Some(0.0)`, not an unknown
/// price); otherwise the dollars are the call's cost (`None` when unknown).
pub(crate) fn spent(meta: &ResponseMeta) -> (Option<f64>, u64) {
    let attempts: u64 = meta
        .attempts
        .iter()
        .filter_map(|a| a.usage.as_ref())
        .map(Usage::total_tokens)
        .sum();
    let classifier = meta
        .routing
        .as_ref()
        .and_then(|r| r.classifier_usage.as_ref())
        .map_or(0, Usage::total_tokens);
    let reported = meta.attempts.iter().any(|a| a.usage.is_some())
        || meta
            .routing
            .as_ref()
            .is_some_and(|r| r.classifier_usage.is_some());
    let usd = if reported { meta.cost } else { Some(0.0) };
    (usd, attempts.saturating_add(classifier))
}

/// What a request of `input` and `output` tokens is estimated to cost at the dearest of
/// `prices` (failover may land on any of them): `None` when none has a price.
pub(crate) fn estimate_cost<'a>(
    prices: impl IntoIterator<Item = &'a Price>,
    input: u64,
    output: u64,
) -> Option<f64> {
    let usage = Usage::new(input, output);
    prices.into_iter().map(|p| p.cost(&usage)).reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Attempt, AttemptOutcome, TargetId};
    use std::time::Duration;

    fn attempt(usage: Option<Usage>, cost: Option<f64>) -> Attempt {
        Attempt {
            target: TargetId::new("p", "m"),
            try_number: 1,
            outcome: AttemptOutcome::Served,
            status: None,
            started: Duration::ZERO,
            latency: Duration::ZERO,
            error: None,
            usage,
            cost,
            key: None,
        }
    }

    #[test]
    fn unknown_price_or_usage_is_unknown_cost() {
        let p = Price::per_million(1.0, 2.0);
        let u = Usage::new(1_000_000, 1_000_000);
        assert_eq!(attempt_cost(Some(&p), Some(&u)), Some(3.0));
        assert_eq!(attempt_cost(None, Some(&u)), None);
        assert_eq!(attempt_cost(Some(&p), None), None);
        assert_eq!(baseline_cost(Some(&p), Some(&u)), Some(3.0));
    }

    #[test]
    fn estimate_takes_the_dearest_price() {
        let cheap = Price::per_million(1.0, 1.0);
        let dear = Price::per_million(10.0, 10.0);
        assert_eq!(estimate_cost([&cheap, &dear], 1_000_000, 0), Some(10.0));
        assert_eq!(estimate_cost([], 1_000_000, 0), None);
    }

    #[test]
    fn call_and_spent_sum_the_reported_attempts() {
        let mut meta = ResponseMeta::default();
        assert_eq!(call_cost(&meta), None);
        assert_eq!(spent(&meta), (Some(0.0), 0));
        meta.attempts
            .push(attempt(Some(Usage::new(10, 5)), Some(0.5)));
        meta.attempts.push(attempt(None, None));
        meta.attempts
            .push(attempt(Some(Usage::new(1, 1)), Some(0.25)));
        meta.cost = call_cost(&meta);
        assert_eq!(meta.cost, Some(0.75));
        assert_eq!(spent(&meta), (Some(0.75), 17));
        meta.attempts.push(attempt(Some(Usage::new(1, 1)), None));
        assert_eq!(call_cost(&meta), None);
    }
}
