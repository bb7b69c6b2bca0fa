//! Budgets: spend limits per window, in US dollars (from the catalog's prices) or tokens, for
//! the whole relay or for one route, intent or tag.
//!
//! A request reserves its estimated spend on every budget that matches it before it is sent,
//! all or nothing; when it ends, the reservation is replaced by what it actually spent. A
//! budget's window is either a calendar one (the current UTC minute, hour, day or month) or a
//! rolling one (the last period, kept as a ring of slots). Amounts are integers (nano-dollars
//! or tokens). No lock is taken on a request's path (every request of the relay passes
//! through the global budget): a calendar window is one atomic word per counter, checked and
//! changed in one compare-and-swap; a rolling window checks its running total the same way
//! and keeps its slots in words tagged with the slot's id, taking a lock only to move to a
//! new slot. Either way reservations are exact under concurrency: tasks racing at the limit
//! never reserve more than it in total.

mod calendar;
mod charge;
mod clock;
mod fleet;
mod ledger;
mod packed;
mod rolling;
mod strict;
#[cfg(test)]
mod tests;
mod ticket;
mod window;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::types::BudgetUnit;
use crate::types::{Error, ErrorKind};

pub(crate) use charge::{BoundCharge, Charge, Refusal};
pub(crate) use ledger::{Budgets, Notify};
pub(crate) use ticket::{StrictGate, StrictQueue};

/// Usd amounts are kept as nano-dollars: integers add exactly and fit an atomic-sized word.
const NANOS_PER_USD: f64 = 1e9;
/// Slots per rolling window: spend leaves the window in steps of 1/60 of its period.
const SLOTS: u64 = 60;
const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_DAY: u64 = 86_400 * NS_PER_SEC;

/// A spend limit per window: at most `limit` US dollars (or tokens) per minute, hour, day or
/// month, for every request or for those of one route, intent or tag.
///
/// ```
/// use polyrelay::spend::budget::{Budget, BudgetPeriod};
///
/// let daily = Budget::usd("daily", 50.0).warn_at(0.8);
/// let chat = Budget::tokens("chat-tokens", 2_000_000)
///     .per(BudgetPeriod::Hour)
///     .rolling()
///     .for_route("chat")
///     .downgrade_to("chat-cheap");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    name: String,
    scope: BudgetScope,
    limit: Amount,
    period: BudgetPeriod,
    rolling: bool,
    action: OverBudget,
    warn_at: Option<f64>,
    strict: bool,
}

/// A budget's limit with its unit, as the user gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Amount {
    Usd(f64),
    Tokens(u64),
}

impl Budget {
    /// A budget of `limit` US dollars per day (calendar, UTC), for every request, priced from
    /// the catalog.
    pub fn usd(name: impl Into<String>, limit: f64) -> Self {
        Self::with_limit(name.into(), Amount::Usd(limit))
    }

    /// A budget of `limit` tokens (input and output) per day (calendar, UTC), for every
    /// request.
    pub fn tokens(name: impl Into<String>, limit: u64) -> Self {
        Self::with_limit(name.into(), Amount::Tokens(limit))
    }

    fn with_limit(name: String, limit: Amount) -> Self {
        Self {
            name,
            scope: BudgetScope::Global,
            limit,
            period: BudgetPeriod::Day,
            rolling: false,
            action: OverBudget::Reject,
            warn_at: None,
            strict: false,
        }
    }

    /// The window's length (default: a day).
    pub fn per(mut self, period: BudgetPeriod) -> Self {
        self.period = period;
        self
    }

    /// Counts the last period, whatever its start (a rolling month is 30 days), instead of
    /// the current calendar window.
    pub fn rolling(mut self) -> Self {
        self.rolling = true;
        self
    }

    /// A hard cap across a fleet ([`RelayBuilder::store`](crate::RelayBuilder::store)):
    /// each call also reserves its estimate in the store before it is sent (one round trip
    /// on the request's path, within the store's timeout), checked against the whole
    /// fleet's spend and reservations, so replicas together never admit past the limit on
    /// their estimates. While the store fails the budget is admitted as a non-strict one.
    /// Calendar windows only. Without a store it changes nothing. Default: off.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Whether the budget is [`strict`](Self::strict).
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Counts the current calendar window (UTC minute, hour, day or month): the default.
    pub fn calendar(mut self) -> Self {
        self.rolling = false;
        self
    }

    /// Limits only the requests of this route (default: every request).
    pub fn for_route(mut self, route: impl Into<String>) -> Self {
        self.scope = BudgetScope::Route(route.into());
        self
    }

    /// Limits only the requests of this intent: the request's intent hint, or the label a
    /// classifier gave it.
    pub fn for_intent(mut self, intent: impl Into<String>) -> Self {
        self.scope = BudgetScope::Intent(intent.into());
        self
    }

    /// Limits only the requests that carry this tag: a label of the request
    /// ([`ChatRequest::label`](crate::ChatRequest::label), e.g. a team or a customer tier) or
    /// a tag it requires of its targets.
    pub fn for_tag(mut self, tag: impl Into<String>) -> Self {
        self.scope = BudgetScope::Tag(tag.into());
        self
    }

    /// Sends requests over the budget to this route instead of refusing them (the default).
    pub fn downgrade_to(mut self, route: impl Into<String>) -> Self {
        self.action = OverBudget::Downgrade(route.into());
        self
    }

    /// Sends one [`Warning`](crate::accounting::BudgetEventKind::Warning) event per window
    /// when the spend (settled and in flight) reaches this fraction of the limit, in (0, 1).
    pub fn warn_at(mut self, fraction: f64) -> Self {
        self.warn_at = Some(fraction);
        self
    }

    /// The budget's name, unique among a relay's budgets.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the budget counts.
    pub fn unit(&self) -> BudgetUnit {
        match self.limit {
            Amount::Usd(_) => BudgetUnit::Usd,
            Amount::Tokens(_) => BudgetUnit::Tokens,
        }
    }

    /// The limit, in US dollars or tokens.
    pub fn limit(&self) -> f64 {
        match self.limit {
            Amount::Usd(v) => v,
            Amount::Tokens(v) => v as f64,
        }
    }

    /// The window's length.
    pub fn period(&self) -> BudgetPeriod {
        self.period
    }

    /// The requests the budget limits.
    pub fn scope(&self) -> &BudgetScope {
        &self.scope
    }

    /// What happens to a request over the budget.
    pub fn action(&self) -> &OverBudget {
        &self.action
    }

    /// Whether the window is rolling (the last period) rather than the calendar one.
    pub fn is_rolling(&self) -> bool {
        self.rolling
    }

    /// The warning threshold, as a fraction of the limit, if any.
    pub fn warning_at(&self) -> Option<f64> {
        self.warn_at
    }

    /// Checks the budget: a name, a finite limit above 0, a warning threshold in (0, 1), and
    /// non-empty route, intent and tag names.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |what: String| {
            Err(Error::new(
                ErrorKind::Config,
                format!("budget {:?}: {what}", self.name),
            ))
        };
        if self.name.trim().is_empty() {
            return Err(Error::new(ErrorKind::Config, "a budget has an empty name"));
        }
        match self.limit {
            Amount::Usd(v) if !v.is_finite() || v <= 0.0 => {
                return fail(format!(
                    "the limit must be a finite amount above 0 (got {v})"
                ));
            }
            // Below a nano-dollar it rounds to 0; above u64 nano-dollars it would saturate.
            Amount::Usd(v) if v * NANOS_PER_USD < 1.0 || v * NANOS_PER_USD >= u64::MAX as f64 => {
                return fail(format!("the limit {v} USD is out of range"));
            }
            Amount::Tokens(0) => return fail("the limit must be above 0 tokens".into()),
            _ => {}
        }
        if let Some(w) = self.warn_at
            && !(w > 0.0 && w < 1.0)
        {
            return fail(format!("warn_at must be in (0, 1) (got {w})"));
        }
        match &self.scope {
            BudgetScope::Route(s) | BudgetScope::Intent(s) | BudgetScope::Tag(s)
                if s.trim().is_empty() =>
            {
                return fail("its scope names an empty route, intent or tag".into());
            }
            _ => {}
        }
        if let OverBudget::Downgrade(r) = &self.action
            && r.trim().is_empty()
        {
            return fail("downgrade_to names an empty route".into());
        }
        if self.strict && self.rolling {
            return fail(
                "a strict budget counts calendar windows; drop rolling() or strict()".into(),
            );
        }
        Ok(())
    }

    /// The limit in integer units (nano-dollars or tokens).
    fn limit_units(&self) -> u64 {
        match self.limit {
            Amount::Usd(v) => usd_to_nanos(v),
            Amount::Tokens(v) => v,
        }
    }
}

/// A budget's window length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BudgetPeriod {
    /// A minute.
    Minute,
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// A calendar month (rolling: 30 days).
    Month,
}

impl BudgetPeriod {
    /// The rolling window's length, in nanoseconds.
    pub(super) fn rolling_ns(self) -> u64 {
        match self {
            BudgetPeriod::Minute => 60 * NS_PER_SEC,
            BudgetPeriod::Hour => 3_600 * NS_PER_SEC,
            BudgetPeriod::Day => NS_PER_DAY,
            BudgetPeriod::Month => 30 * NS_PER_DAY,
        }
    }
}

/// The requests a budget limits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetScope {
    /// Every request.
    Global,
    /// The requests of this route.
    Route(String),
    /// The requests of this intent (the intent hint, or a classifier's label).
    Intent(String),
    /// The requests carrying this tag.
    Tag(String),
}

impl BudgetScope {
    #[inline]
    fn matches(&self, q: &BudgetQuery<'_>) -> bool {
        match self {
            BudgetScope::Global => true,
            BudgetScope::Route(r) => q.route == r,
            BudgetScope::Intent(i) => q.intent == Some(i.as_str()),
            BudgetScope::Tag(t) => q.labels.iter().chain(q.tags).any(|x| x == t),
        }
    }
}

/// What happens to a request that would exceed a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverBudget {
    /// Refuse it with a [`BudgetExceeded`](crate::ErrorKind::BudgetExceeded) error.
    Reject,
    /// Send it to this route instead.
    Downgrade(String),
}

/// A budget's current window: what is spent and reserved, and when it resets.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// The budget's name.
    pub name: String,
    /// What it counts.
    pub unit: BudgetUnit,
    /// Spent by finished requests in the current window.
    pub spent: f64,
    /// Reserved by requests in flight.
    pub reserved: f64,
    /// With a fleet store ([`RelayBuilder::store`](crate::RelayBuilder::store)): spent by
    /// the whole fleet in the current window, as last read from the store plus this
    /// replica's spend since. `None` without a store, and before the first exchange.
    pub fleet_spent: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// The window's length.
    pub period: BudgetPeriod,
    /// Whether the window is rolling.
    pub rolling: bool,
    /// Calendar: when the window resets. Rolling: when the oldest spend in the window leaves
    /// it (now, if nothing is spent).
    pub resets_at: SystemTime,
}

/// What a request is, as budgets' scopes see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BudgetQuery<'a> {
    /// The route it is sent on.
    pub route: &'a str,
    /// Its intent: the request's hint, else the label a classifier gave it.
    pub intent: Option<&'a str>,
    /// The request's free-form labels ([`ChatRequest::label`](crate::ChatRequest::label)).
    pub labels: &'a [String],
    /// The tags it requires of its targets
    /// ([`ChatRequest::require_tags`](crate::ChatRequest::require_tags)).
    pub tags: &'a [String],
}

/// An amount spent (or estimated) by a request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Spend {
    /// US dollars; `None` when the model has no price.
    pub usd: Option<f64>,
    /// Input and output tokens.
    pub tokens: u64,
}

fn usd_to_nanos(usd: f64) -> u64 {
    let nanos = usd * NANOS_PER_USD;
    // Rounded half up by hand (`f64::round` is a libm call, on every reserve and settle).
    // NaN and negative amounts count 0; `as` saturates huge ones at u64::MAX.
    if nanos > 0.0 { (nanos + 0.5) as u64 } else { 0 }
}
