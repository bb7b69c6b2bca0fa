//! The relay's accounting bundle: observers, stats, the baseline price and the budgets, as
//! one call reads them. It sits in the relay, above both `accounting` (what things cost,
//! stats, events) and `spend` (budgets), since it ties the two together.

use std::sync::Arc;

use crate::accounting::cost;
use crate::accounting::{CallRecord, Observers, Stats};
use crate::catalog::Price;
use crate::spend::budget::{Budgets, Charge, Spend};
use crate::types::{ResponseMeta, Usage};

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
        meta.cost = cost::call_cost(meta);
        meta.baseline_cost = cost::baseline_cost(self.baseline.as_ref(), usage);
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

/// What a finished call spent, as budgets count it ([`cost::spent`]): the call's cost and
/// every token its attempts and its routing classifier reported.
pub(crate) fn spend_of(meta: &ResponseMeta) -> Spend {
    let (usd, tokens) = cost::spent(meta);
    Spend { usd, tokens }
}
