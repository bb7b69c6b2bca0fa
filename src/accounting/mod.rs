//! Accounting: what each call cost, stats per route, query type and model, what routing
//! saved against a baseline model, and the [`Observer`] callbacks.
//!
//! Costs come from the [`Price`] of each target (its own, or the
//! [catalog](crate::catalog)'s for its model) applied to the usage the vendor reported, in
//! US dollars. A model without a price has an **unknown** cost: `None`, counted in
//! [`StatsRow::cost_unknown`], never zero.
//!
//! This layer sits below the relay, which feeds it: the relay calls it when an attempt or a
//! call ends, and nothing here calls back up.

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod observer;
mod stats;

pub(crate) use observer::Observers;
pub use observer::{
    AttemptEnded, AttemptStarted, BreakerEvent, BudgetEvent, BudgetEventKind, FailoverEvent,
    KeyEvent, LimitAction, LimitEvent, Observer, RetryEvent,
};
pub use stats::{
    MAX_STATS_ROWS, OTHER, Percentiles, RefusalRow, StatsRow, StatsSnapshot, StatsTotals,
};
pub(crate) use stats::{Stats, StatsConfig};

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Price;
use crate::error::Error;
use crate::spend::budget::{Budgets, Charge, Spend};
use crate::types::{ResponseMeta, Usage};

/// One finished call, as [`Observer::completed`] and the stats see it.
#[derive(Debug)]
#[non_exhaustive]
pub struct CallRecord<'a> {
    /// The route that handled it.
    pub route: &'a Arc<str>,
    /// Its query type: the request's [intent](crate::ChatRequest::intent), else the label a
    /// classifier gave it (`None` when neither; a language rule's label is not a query type).
    pub query_type: Option<&'a str>,
    /// Whether it streamed.
    pub streamed: bool,
    /// What the relay did: attempts (with their usage and cost), who served, the call's
    /// [`cost`](ResponseMeta::cost) and [`baseline_cost`](ResponseMeta::baseline_cost).
    pub meta: &'a ResponseMeta,
    /// The answer's usage, when the vendor reported it.
    pub usage: Option<&'a Usage>,
    /// Why it failed, if it did (for a stream: the error that ended it).
    pub error: Option<&'a Error>,
    /// The whole call, to its last byte (for a stream: until it ended or was dropped).
    pub duration: Duration,
}

/// What the relay keeps for accounting: observers, stats, the baseline price.
#[derive(Debug, Default)]
pub(crate) struct Accounting {
    pub observers: Observers,
    pub stats: Option<Arc<Stats>>,
    pub baseline: Option<Price>,
    /// The relay's budgets (`None` without any): calls reserve their estimate before they
    /// are sent and settle what they spent when they end.
    pub budgets: Option<Arc<Budgets>>,
}

impl Accounting {
    /// Whether anything listens to per-attempt events.
    #[inline]
    pub fn observed(&self) -> bool {
        !self.observers.is_empty()
    }

    /// Fills in the call's cost and baseline cost from its attempts and the routing
    /// classifier's call.
    pub fn price_call(&self, meta: &mut ResponseMeta, usage: Option<&Usage>) {
        meta.cost = call_cost(meta);
        meta.baseline_cost = match (&self.baseline, usage) {
            (Some(p), Some(u)) => Some(p.cost(u)),
            _ => None,
        };
    }

    /// Settles a call's charge on the budgets with what `meta` says it spent, at `now` (when
    /// the call ended).
    pub fn settle(&self, charge: Option<Charge>, meta: &ResponseMeta, now: tokio::time::Instant) {
        if let (Some(charge), Some(budgets)) = (charge, self.budgets.as_deref()) {
            charge.settle(budgets, spend_of(meta), now);
        }
    }

    /// Turns a call's charge into spend as it is: the call ended without knowing what it
    /// spent (its caller dropped it).
    pub fn keep(&self, charge: Option<Charge>) {
        if let (Some(charge), Some(budgets)) = (charge, self.budgets.as_deref()) {
            charge.keep(budgets);
        }
    }

    /// Raises a stream's charge to what it has reported so far.
    pub fn update(&self, charge: &Charge, so_far: Spend) {
        if let Some(budgets) = self.budgets.as_deref() {
            charge.update(budgets, so_far);
        }
    }

    /// Records a finished call in the stats and tells the observers.
    pub fn finish(&self, call: &CallRecord<'_>) {
        if let Some(s) = &self.stats {
            s.record(call);
        }
        if !self.observers.is_empty() {
            self.observers.each(|o| o.completed(call));
        }
    }
}

/// What a finished call spent, as budgets count it: the call's cost and every token its
/// attempts and its routing classifier reported.
pub(crate) fn spend_of(meta: &ResponseMeta) -> Spend {
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
    Spend {
        // Nothing reported costs nothing (not an unknown price).
        usd: if reported { meta.cost } else { Some(0.0) },
        tokens: attempts + classifier,
    }
}

/// The cost of one attempt from what its vendor reported.
pub(crate) fn attempt_cost(price: Option<&Price>, usage: Option<&Usage>) -> Option<f64> {
    Some(price?.cost(usage?))
}

/// A call's cost: every attempt that reported usage, plus the routing classifier's call.
/// Unknown (`None`) when one of them has no price, or when no attempt reported usage.
fn call_cost(meta: &ResponseMeta) -> Option<f64> {
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

/// The query type of a call: its intent, else the label a classifier (LLM or in-process)
/// gave it. Other rules' labels (a language rule's `cmn`, `han`…) say how the call was
/// routed, not what it asks, so they are not query types.
pub(crate) fn query_type<'a>(intent: Option<&'a str>, meta: &'a ResponseMeta) -> Option<&'a str> {
    intent.or_else(|| {
        let r = meta.routing.as_ref()?;
        r.classifier_latency.and(r.label.as_deref())
    })
}
