//! Accounting: what each call cost, stats per route, query type and model, what routing
//! saved against a baseline model, and the [`Observer`] callbacks.
//!
//! Costs come from the [`Price`](crate::catalog::Price) of each target (its own, or the
//! [catalog](crate::catalog)'s for its model) applied to the usage the vendor reported, in
//! US dollars, all computed in `accounting::cost`. A model without a price has an **unknown** cost: `None`, counted in
//! [`StatsRow::cost_unknown`], never zero.
//!
//! This layer sits below the spend controls and the relay, which feed it: the relay calls it
//! when an attempt or a call ends, and nothing here calls back up. The relay's bundle of
//! accounting state (observers, stats, baseline, budgets) lives in `relay::accounts`.

pub(crate) mod cost;
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
    FailoverRecord, HourBucket, HourRow, MAX_FAILOVER_RECORDS, MAX_STATS_ROWS, OTHER, Percentiles,
    RefusalRow, STATS_HOURS, StatsRow, StatsSnapshot, StatsTotals,
};
pub(crate) use stats::{Stats, StatsConfig, nanos, usd};

use std::sync::Arc;
use std::time::Duration;

use crate::types::Error;
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

/// The query type of a call: its intent, else the label a classifier (LLM or in-process)
/// gave it. Other rules' labels (a language rule's `cmn`, `han`…) say how the call was
/// routed, not what it asks, so they are not query types.
pub(crate) fn query_type<'a>(intent: Option<&'a str>, meta: &'a ResponseMeta) -> Option<&'a str> {
    intent.or_else(|| {
        let r = meta.routing.as_ref()?;
        r.classifier_latency.and(r.label.as_deref())
    })
}
