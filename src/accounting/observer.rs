//! The [`Observer`] trait: the relay's events as callbacks, for users who want the data
//! rather than a metrics system.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use super::CallRecord;
use crate::types::BreakerState;
use crate::types::RoutingDecision;
use crate::types::{Attempt, ErrorKind, TargetId};

/// Callbacks for what the relay does, each with a default that does nothing: implement the
/// ones you need and register the observer with
/// [`RelayBuilder::observer`](crate::RelayBuilder::observer).
///
/// Callbacks run inline on the call's task, so keep them short (push to a channel for
/// anything slow). A panicking observer never breaks a call: the panic is caught, logged
/// as a `tracing` warning and the call goes on (with `panic = "abort"` nothing can be
/// caught).
///
/// ```
/// use polyrelay::accounting::{CallRecord, Observer};
///
/// struct Spend;
/// impl Observer for Spend {
///     fn completed(&self, call: &CallRecord<'_>) {
///         if let Some(cost) = call.meta.cost {
///             eprintln!("{}: ${cost:.6}", call.route);
///         }
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Observer: Send + Sync {
    /// A router chose a route.
    fn routed(&self, decision: &RoutingDecision) {}
    /// An attempt was sent.
    fn attempt_started(&self, event: &AttemptStarted<'_>) {}
    /// An attempt ended: served, failed or cancelled (for a stream: at its commit point or
    /// when it failed before; an interruption later is in [`completed`](Self::completed)).
    fn attempt_ended(&self, event: &AttemptEnded<'_>) {}
    /// The relay will try the same target again after `wait`.
    fn retry(&self, event: &RetryEvent<'_>) {}
    /// The relay moved on from a failed target to the next one of the plan.
    fn failover(&self, event: &FailoverEvent<'_>) {}
    /// A target's circuit breaker changed state.
    fn breaker(&self, event: &BreakerEvent<'_>) {}
    /// A spend or rate limit was reached or passed a warning threshold.
    fn budget(&self, event: &BudgetEvent<'_>) {}
    /// A client-side rate limit (or a pool with no usable key) held an attempt back: it
    /// waits, or the call moves to the next target.
    fn rate_limited(&self, event: &LimitEvent<'_>) {}
    /// A pool key changed state (rests after a 429, parked when its quota ran out, invalid).
    fn key_state(&self, event: &KeyEvent<'_>) {}
    /// A call ended (for a stream: when the stream ended or was dropped), with its usage and
    /// cost.
    fn completed(&self, call: &CallRecord<'_>) {}
}

/// [`Observer::attempt_started`].
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptStarted<'a> {
    /// The route.
    pub route: &'a Arc<str>,
    /// The target tried.
    pub target: &'a TargetId,
    /// 1 for the first try of this target in this call, 2 for its first retry…
    pub try_number: u32,
    /// Whether the call streams.
    pub streamed: bool,
}

/// [`Observer::attempt_ended`].
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptEnded<'a> {
    /// The route.
    pub route: &'a Arc<str>,
    /// The attempt, with its outcome, latency, usage and cost.
    pub attempt: &'a Attempt,
}

/// [`Observer::retry`].
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The route.
    pub route: &'a Arc<str>,
    /// The target tried again.
    pub target: &'a TargetId,
    /// The try that comes next (2 for the first retry).
    pub next_try: u32,
    /// The wait before it.
    pub wait: Duration,
    /// What the failed try ended with.
    pub error: ErrorKind,
}

/// [`Observer::failover`].
#[derive(Debug)]
#[non_exhaustive]
pub struct FailoverEvent<'a> {
    /// The route.
    pub route: &'a Arc<str>,
    /// The target that failed.
    pub from: &'a TargetId,
    /// What it failed with.
    pub error: ErrorKind,
}

/// [`Observer::breaker`].
#[derive(Debug)]
#[non_exhaustive]
pub struct BreakerEvent<'a> {
    /// The target.
    pub target: &'a TargetId,
    /// Its breaker's new state.
    pub state: BreakerState,
}

/// [`Observer::rate_limited`].
#[derive(Debug)]
#[non_exhaustive]
pub struct LimitEvent<'a> {
    /// The route.
    pub route: &'a Arc<str>,
    /// The target held back.
    pub target: &'a TargetId,
    /// What the relay did.
    pub action: LimitAction,
}

/// What the relay did when a client-side limit held an attempt back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitAction {
    /// It waits this long, inside the call's deadline, and asks again.
    Wait(std::time::Duration),
    /// It moved on to the next target.
    FailOver,
}

/// [`Observer::key_state`].
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyEvent<'a> {
    /// The provider whose pool the key is in.
    pub provider: &'a str,
    /// The key, by index and fingerprint.
    pub key: &'a crate::types::KeyLabel,
    /// Its new state.
    pub state: &'a crate::types::KeyState,
    /// The error that changed it.
    pub error: ErrorKind,
}

/// [`Observer::budget`]: a budget's events.
#[derive(Debug)]
#[non_exhaustive]
pub struct BudgetEvent<'a> {
    /// The budget, by name.
    pub name: &'a str,
    /// What happened.
    pub kind: BudgetEventKind,
    /// What the budget counts.
    pub unit: crate::types::BudgetUnit,
    /// Spent (and reserved by calls in flight) in the budget's window, in its unit.
    pub used: f64,
    /// The limit.
    pub limit: f64,
    /// For [`Downgraded`](BudgetEventKind::Downgraded): the route the request went to
    /// instead; for [`Rejected`](BudgetEventKind::Rejected): the route it was refused on.
    pub route: Option<&'a str>,
}

/// What a [`BudgetEvent`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetEventKind {
    /// Spending passed the budget's warning threshold ([`Budget::warn_at`]), once per window.
    ///
    /// [`Budget::warn_at`]: crate::spend::budget::Budget::warn_at
    Warning,
    /// The budget is reached: requests under it are refused or downgraded (once per window).
    Exhausted,
    /// A request was refused with [`BudgetExceeded`](crate::ErrorKind::BudgetExceeded).
    Rejected,
    /// A request was sent to the budget's cheaper route instead.
    Downgraded,
}

/// The registered observers, each call guarded against panics.
#[derive(Clone, Default)]
pub(crate) struct Observers(Vec<Arc<dyn Observer>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} observers", self.0.len())
    }
}

impl Observers {
    pub fn push(&mut self, o: Arc<dyn Observer>) {
        self.0.push(o);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Calls `f` on every observer; a panic in one is logged and the others still run.
    pub fn each(&self, f: impl Fn(&dyn Observer)) {
        for o in &self.0 {
            if catch_unwind(AssertUnwindSafe(|| f(&**o))).is_err() {
                tracing::warn!("an observer panicked; the call goes on");
            }
        }
    }
}
