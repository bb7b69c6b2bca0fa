//! How a chain orders its targets for each request: the [`Strategy`] a chain names (one of
//! the built-ins, or a user's own through [`Strategy::custom`]) and the [`TargetOrder`]
//! trait every one of them implements.
//!
//! The order runs once per call, before anything is sent, over the targets the request may
//! use ([`Candidates`]): the first goes first, the others follow as fallbacks in that order.
//! Afterwards the relay still moves targets whose breaker is open to the end, so a strategy
//! need not look at breakers. No built-in allocates.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;

use super::registry::ResolvedTarget;
use crate::catalog::Price;
use crate::types::{ChatRequest, TargetId};

/// How a chain orders its targets for each request: the first goes first, the others follow
/// as fallbacks in the strategy's order. In a configuration file, a built-in by name:
/// `strategy = "round_robin"`.
///
/// A user's own order is [`Strategy::custom`]:
///
/// ```
/// use polyrelay::relay::{Candidates, Strategy, TargetOrder};
/// use polyrelay::Chain;
///
/// /// The targets with the fewest attempts in flight first, ties by weight.
/// #[derive(Debug)]
/// struct Quietest;
/// impl TargetOrder for Quietest {
///     fn order(&self, targets: &mut Candidates<'_>) {
///         targets.sort_by(|a, b| {
///             a.in_flight()
///                 .cmp(&b.in_flight())
///                 .then(b.weight().total_cmp(&a.weight()))
///         });
///     }
/// }
/// let chain = Chain::of(["a/m", "b/m"]).strategy(Strategy::custom(Quietest));
/// assert!(matches!(chain.strategy, Some(Strategy::Custom(_))));
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// In the order written. The default.
    #[default]
    Ordered,
    /// The first at random, in proportion to each target's weight (weight 0: never first);
    /// the others follow heaviest first.
    WeightedRandom,
    /// Each request starts one target further along.
    RoundRobin,
    /// Fewest attempts in flight first.
    LeastBusy,
    /// Lowest peak-EWMA latency × (attempts in flight + 1) first, as tower and Finagle
    /// balance load; targets with no latency yet go first.
    LowestLatency,
    /// Lowest declared price first; targets without a price last.
    CheapestFirst,
    /// A user's own order ([`Strategy::custom`]); code only, not in a configuration file.
    #[serde(skip)]
    Custom(Arc<dyn TargetOrder>),
}

impl Strategy {
    /// A user's own order of the targets, run once per call. Default: none (the chain's
    /// strategy is [`Strategy::Ordered`] unless set).
    pub fn custom(order: impl TargetOrder + 'static) -> Self {
        Strategy::Custom(Arc::new(order))
    }
}

/// Built-ins are equal by name; two custom strategies when they are the same value (one
/// `Arc`).
impl PartialEq for Strategy {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Strategy::Custom(a), Strategy::Custom(b)) => Arc::ptr_eq(a, b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl From<Arc<dyn TargetOrder>> for Strategy {
    fn from(order: Arc<dyn TargetOrder>) -> Self {
        Strategy::Custom(order)
    }
}

/// An order of a chain's targets, run once per call before anything is sent. Every built-in
/// [`Strategy`] implements it, and so can a user's own type ([`Strategy::custom`]).
///
/// `order` rearranges `targets` in place (sort, swap, rotate, move to the front); it cannot
/// add or drop one. It runs on the request's path: keep it short, and do not block.
pub trait TargetOrder: Send + Sync + fmt::Debug {
    /// Puts `targets` in the order they are tried: the first goes first.
    fn order(&self, targets: &mut Candidates<'_>);
}

impl TargetOrder for Strategy {
    fn order(&self, targets: &mut Candidates<'_>) {
        match self {
            Strategy::Ordered => {}
            Strategy::RoundRobin => round_robin(targets),
            Strategy::WeightedRandom => weighted_random(targets),
            Strategy::LeastBusy => targets.sort_by(|a, b| a.in_flight().cmp(&b.in_flight())),
            // Scores are two relaxed loads each: computing them per comparison beats
            // allocating a keyed copy.
            Strategy::LowestLatency => {
                targets.sort_by(|a, b| a.load_score().total_cmp(&b.load_score()))
            }
            Strategy::CheapestFirst => targets.sort_by(|a, b| blended(a).total_cmp(&blended(b))),
            Strategy::Custom(order) => order.order(targets),
        }
    }
}

fn round_robin(targets: &mut Candidates<'_>) {
    let n = targets.len();
    if n > 1 {
        let k = targets.turn() % n;
        targets.rotate_left(k);
    }
}

/// The first is drawn in proportion to the weights (one random number, one pass); the others
/// follow heaviest first, so fallbacks stay predictable.
fn weighted_random(targets: &mut Candidates<'_>) {
    let total: f64 = targets.iter().map(|c| c.weight().max(0.0)).sum();
    if total <= 0.0 {
        return;
    }
    let mut x = fastrand::f64() * total;
    let mut pick = 0;
    for (i, c) in targets.iter().enumerate() {
        let w = c.weight().max(0.0);
        if w > 0.0 {
            pick = i;
            if x < w {
                break;
            }
            x -= w;
        }
    }
    targets.move_to_front(pick);
    targets.sort_rest_by(1, |a, b| b.weight().total_cmp(&a.weight()));
}

fn blended(c: &Candidate<'_>) -> f64 {
    c.price().map_or(f64::INFINITY, Price::blended)
}

/// One step of a plan: a target of the route, and how it is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Index into the route's targets.
    pub target: usize,
    /// Send the continuation request (the partial answer as an assistant prefill).
    pub continuation: bool,
    /// Tries this target already had in this call (its retry policy counts them).
    pub prior_tries: u32,
    /// Every target of the plan is open and this one failed longest ago: try it anyway.
    pub last_resort: bool,
}

impl Step {
    pub fn fresh(target: usize) -> Self {
        Step {
            target,
            continuation: false,
            prior_tries: 0,
            last_resort: false,
        }
    }
}

/// The targets one request may use, in the order they will be tried, for a
/// [`TargetOrder`] to rearrange. Holds no copy of them: reading and reordering allocate
/// nothing.
pub struct Candidates<'a> {
    steps: &'a mut [Step],
    targets: &'a [Arc<ResolvedTarget>],
    turn: &'a AtomicUsize,
    request: &'a ChatRequest,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(
        steps: &'a mut [Step],
        targets: &'a [Arc<ResolvedTarget>],
        turn: &'a AtomicUsize,
        request: &'a ChatRequest,
    ) -> Self {
        Candidates {
            steps,
            targets,
            turn,
            request,
        }
    }

    /// How many targets the request may use (at least 1).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there is none (never, when the relay asks).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The target at position `i` (0: the first tried), if there is one.
    pub fn get(&self, i: usize) -> Option<Candidate<'_>> {
        let step = self.steps.get(i)?;
        Some(Candidate {
            target: self.targets.get(step.target)?,
        })
    }

    /// The targets in their current order.
    pub fn iter(&self) -> impl Iterator<Item = Candidate<'_>> + '_ {
        self.steps.iter().filter_map(|s| {
            Some(Candidate {
                target: self.targets.get(s.target)?,
            })
        })
    }

    /// The request being ordered for (its model, metadata, tags…).
    pub fn request(&self) -> &ChatRequest {
        self.request
    }

    /// A counter of the route's own: 0 the first time a call on the route asks, then 1, 2…
    /// (each call increments it; it wraps). Round-robin starts each call one further along
    /// by it. Starts at 0 for a route and for each request-scoped chain.
    pub fn turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// Sorts the targets by `cmp`, keeping the current order among equals.
    pub fn sort_by(
        &mut self,
        mut cmp: impl FnMut(&Candidate<'_>, &Candidate<'_>) -> std::cmp::Ordering,
    ) {
        self.sort_rest_by(0, &mut cmp);
    }

    /// Sorts the targets from position `from` on by `cmp` (keeping the current order among
    /// equals), leaving the ones before it in place. Nothing happens when `from` is past the
    /// end.
    pub fn sort_rest_by(
        &mut self,
        from: usize,
        mut cmp: impl FnMut(&Candidate<'_>, &Candidate<'_>) -> std::cmp::Ordering,
    ) {
        let targets = self.targets;
        let Some(rest) = self.steps.get_mut(from..) else {
            return;
        };
        rest.sort_by(
            |a, b| match (targets.get(a.target), targets.get(b.target)) {
                (Some(x), Some(y)) => cmp(&Candidate { target: x }, &Candidate { target: y }),
                _ => std::cmp::Ordering::Equal,
            },
        );
    }

    /// Swaps the targets at positions `a` and `b`; nothing happens when either is past the
    /// end.
    pub fn swap(&mut self, a: usize, b: usize) {
        if a < self.steps.len() && b < self.steps.len() {
            self.steps.swap(a, b);
        }
    }

    /// Moves the target at position `i` to the front, the ones before it one further back;
    /// nothing happens when `i` is past the end.
    pub fn move_to_front(&mut self, i: usize) {
        if let Some(head) = self.steps.get_mut(..=i) {
            head.rotate_right(1);
        }
    }

    /// Rotates the order `k` positions to the left (the target at `k` goes first), `k`
    /// taken modulo the length.
    pub fn rotate_left(&mut self, k: usize) {
        if let Some(k) = k.checked_rem(self.steps.len()) {
            self.steps.rotate_left(k);
        }
    }
}

impl fmt::Debug for Candidates<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One target as a strategy sees it: what it is, its settings, and its live load.
#[derive(Clone, Copy)]
pub struct Candidate<'a> {
    target: &'a ResolvedTarget,
}

impl<'a> Candidate<'a> {
    /// Its provider (the registered name) and model.
    pub fn id(&self) -> &'a TargetId {
        &self.target.id
    }

    /// Its relative weight ([`Target::weight`](crate::Target::weight)); default 1.
    pub fn weight(&self) -> f64 {
        self.target.weight
    }

    /// Its price: its own, else the catalog's for its model; `None` when unknown.
    pub fn price(&self) -> Option<&'a Price> {
        self.target.price.as_ref()
    }

    /// Its tags ([`Target::tags`](crate::Target::tags)); default none.
    pub fn tags(&self) -> &'a [String] {
        &self.target.tags
    }

    /// Its context window in tokens, when known.
    pub fn context_window(&self) -> Option<u32> {
        self.target.context_window
    }

    /// Attempts on it in flight now, across every call of the relay.
    pub fn in_flight(&self) -> usize {
        self.target.state.health.in_flight.load(Ordering::Relaxed)
    }

    /// Its latency: a peak-sensitive moving average of its recent answers (zero before its
    /// first).
    pub fn latency(&self) -> Duration {
        self.target.state.health.latency()
    }

    /// Its load: [`latency`](Self::latency) in seconds × ([`in_flight`](Self::in_flight) +
    /// 1), what [`Strategy::LowestLatency`] sorts by (0 before its first answer).
    pub fn load_score(&self) -> f64 {
        self.target.state.health.load_score()
    }
}

impl fmt::Debug for Candidate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_equal_by_name_custom_ones_by_value() {
        #[derive(Debug)]
        struct Mine;
        impl TargetOrder for Mine {
            fn order(&self, _: &mut Candidates<'_>) {}
        }
        assert_eq!(Strategy::RoundRobin, Strategy::RoundRobin);
        assert_ne!(Strategy::RoundRobin, Strategy::Ordered);
        let a = Strategy::custom(Mine);
        assert_eq!(a, a.clone());
        assert_ne!(a, Strategy::custom(Mine));
        let parsed: Strategy = serde_json::from_str(r#""lowest_latency""#).unwrap();
        assert_eq!(parsed, Strategy::LowestLatency);
        assert!(serde_json::from_str::<Strategy>(r#""custom""#).is_err());
    }
}
