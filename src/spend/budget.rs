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

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::accounting::{BudgetEvent, BudgetEventKind};
use crate::time::{civil_from_days, days_from_civil};
use crate::types::{BudgetExceeded, BudgetUnit};
use crate::types::{Error, ErrorKind};

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

    /// Sends one [`Warning`](BudgetEventKind::Warning) event per window when the spend
    /// (settled and in flight) reaches this fraction of the limit, in (0, 1).
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
    fn rolling_ns(self) -> u64 {
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

/// How the budgets tell the observers about warnings and exhaustion.
pub(crate) type Notify = Arc<dyn Fn(&BudgetEvent<'_>) + Send + Sync>;

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

/// Why [`Budgets::reserve`] refused a request, and what to do with it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Refusal {
    /// The budget that refused it, with its window.
    pub exceeded: BudgetExceeded,
    /// That budget's action.
    pub action: OverBudget,
}

/// The relay's budgets with their windows; shared by the relay behind an `Arc`.
pub(crate) struct Budgets {
    clock: Clock,
    budgets: Box<[Tracked]>,
    /// The budgets' counters (a calendar window's two, a rolling window's total and current
    /// slot), [`WORDS_PER_LINE`] to a cache line, none across two: a request under several
    /// budgets changes one line, not one per budget.
    lines: Box<[Line]>,
    notify: Option<Notify>,
}

/// Counters on one cache line.
const WORDS_PER_LINE: usize = 8;

#[repr(align(64))]
struct Line([Packed; WORDS_PER_LINE]);

impl Line {
    fn of(words: &[u64]) -> Line {
        Line(std::array::from_fn(|k| {
            Packed(AtomicU64::new(words.get(k).copied().unwrap_or(0)))
        }))
    }
}

/// A window's (or a rolling slot's) counters: `used` (spent and reserved) is what limits;
/// `spent` (settled) is for the status.
#[derive(Clone, Copy)]
struct Pair<'a> {
    used: &'a Packed,
    spent: &'a Packed,
}

/// One budget with its window.
struct Tracked {
    budget: Budget,
    /// The limit and the warning threshold, in the window's counting units.
    limit: u64,
    warn: Option<u64>,
    /// Windows count in units of 2^shift (nano-dollars or tokens), so that their limit fits
    /// a packed word (see [`LIMIT_MAX`]).
    shift: u32,
    window: Window,
    /// So an unknown price is logged once per budget, not per call.
    unknown_price_logged: AtomicBool,
}

enum Window {
    Calendar(Calendar),
    Rolling(Rolling),
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.budgets.iter().map(|t| &t.budget.name))
            .finish()
    }
}

/// A warning a reservation raised, taken back if a later budget refuses the request:
/// (budget, the warning mark before, the mark set, the amount used).
type Warned = (usize, u64, u64, u64);

impl Budgets {
    /// Validates the budgets (names must be unique); `notify` receives their events.
    pub fn new(budgets: Vec<Budget>, notify: Option<Notify>) -> Result<Self, Error> {
        Self::with_clock_start(budgets, notify, SystemTime::now())
    }

    /// [`new`](Self::new) with the UTC clock starting at `start` (it then moves with tokio's
    /// clock, paused or not).
    pub fn with_clock_start(
        budgets: Vec<Budget>,
        notify: Option<Notify>,
        start: SystemTime,
    ) -> Result<Self, Error> {
        let mut names = HashSet::new();
        for b in &budgets {
            b.validate()?;
            if !names.insert(b.name.as_str()) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("two budgets are named {:?}", b.name),
                ));
            }
        }
        let clock = Clock::new(start);
        let now = clock.now();
        // Each budget's counters start empty in its current window (or slot), on one line.
        let mut words: Vec<u64> = Vec::new();
        let mut place = |start: &[u64]| {
            if words.len() % WORDS_PER_LINE + start.len() > WORDS_PER_LINE {
                words.resize(words.len().next_multiple_of(WORDS_PER_LINE), 0);
            }
            words.extend_from_slice(start);
            words.len() - start.len()
        };
        let budgets = budgets
            .into_iter()
            .map(|budget| {
                let raw = budget.limit_units();
                // The smallest scale at which the limit fits a packed word, with room above
                // it for requests that spend more than they reserved.
                let shift = (0..64).find(|&s| raw >> s <= LIMIT_MAX).unwrap_or(0);
                let window = if budget.rolling {
                    let head = Rolling::head_at(&budget, now);
                    let current = (head & GEN_MASK) << AMOUNT_BITS;
                    let at = place(&[0, current, current]);
                    Window::Rolling(Rolling::new(&budget, head, at))
                } else {
                    let empty = (window_number(budget.period, now) & GEN_MASK) << AMOUNT_BITS;
                    let at = place(&[empty, empty]);
                    Window::Calendar(Calendar::new(budget.period, at))
                };
                let limit = raw >> shift;
                // Rounded up so "used >= warn" means "used >= fraction * limit" exactly.
                let warn = budget.warn_at.map(|w| (limit as f64 * w).ceil() as u64);
                Tracked {
                    budget,
                    limit,
                    warn,
                    shift,
                    window,
                    unknown_price_logged: AtomicBool::new(false),
                }
            })
            .collect();
        let lines = words.chunks(WORDS_PER_LINE).map(Line::of).collect();
        Ok(Self {
            clock,
            budgets,
            lines,
            notify,
        })
    }

    /// Whether there is no budget at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// The `N` counters from `first` in [`lines`](Self::lines) (on one line).
    fn words<const N: usize>(&self, first: usize) -> Option<&[Packed; N]> {
        let line = &self.lines.get(first / WORDS_PER_LINE)?.0;
        let k = first % WORDS_PER_LINE;
        line.get(k..k + N)?.try_into().ok()
    }

    /// Calendar budget `c`'s counters (`None` cannot happen: every calendar budget has
    /// them).
    fn pair(&self, c: &Calendar) -> Option<Pair<'_>> {
        let [used, spent] = self.words(c.counters)?;
        Some(Pair { used, spent })
    }

    /// Rolling window `r` with its counters (`None` cannot happen: every rolling budget has
    /// them).
    fn rolling<'a>(&'a self, r: &'a Rolling) -> Option<RollingAt<'a>> {
        let [total, current, current_spent] = self.words(r.counters)?;
        Some(RollingAt {
            r,
            total: &total.0,
            current,
            current_spent,
        })
    }

    /// Reserves `estimate` on every budget the request matches, or on none: the first budget
    /// it would exceed refuses it, and what was already reserved is given back.
    /// Tests: [`reserve_at`](Self::reserve_at) now.
    #[cfg(test)]
    pub fn reserve(&self, q: &BudgetQuery<'_>, estimate: Spend) -> Result<Charge, Refusal> {
        self.reserve_at(q, estimate, Instant::now())
    }

    /// As [`reserve`](Self::reserve), at `now`: the call's start (a clock read it already
    /// made).
    pub fn reserve_at(
        &self,
        q: &BudgetQuery<'_>,
        estimate: Spend,
        now: Instant,
    ) -> Result<Charge, Refusal> {
        let mut charge = Charge {
            held: SmallVec::new(),
        };
        let mut warned: SmallVec<[Warned; 2]> = SmallVec::new();
        let now = self.clock.at(now);
        let estimate_raw = Raw::from(estimate);
        for (i, t) in self.budgets.iter().enumerate() {
            if !t.budget.scope.matches(q) {
                continue;
            }
            let amount = t.units(estimate_raw);
            let reserved = match &t.window {
                Window::Calendar(c) => match self.pair(c) {
                    Some(p) => c.reserve(p, t, amount, now, &mut warned, i),
                    None => continue,
                },
                Window::Rolling(r) => match self.rolling(r) {
                    Some(r) => r.reserve(t, amount, now, &mut warned, i),
                    None => continue,
                },
            };
            match reserved {
                Ok(token) => charge.held.push(Held {
                    budget: i,
                    token: AtomicU64::new(token),
                    charged: AtomicU64::new(amount),
                }),
                Err(refused) => {
                    self.rollback(&charge, &warned, now);
                    if refused.first {
                        self.emit(i, BudgetEventKind::Exhausted, refused.used);
                    }
                    return Err(Refusal {
                        exceeded: BudgetExceeded {
                            budget: t.budget.name.clone(),
                            unit: t.budget.unit(),
                            spent: t.to_unit(refused.used),
                            limit: t.budget.limit(),
                            estimate: t.to_unit(amount),
                            resets_at: system_time(refused.resets_at),
                        },
                        action: t.budget.action.clone(),
                    });
                }
            }
        }
        for &(i, _, _, used) in &warned {
            self.emit(i, BudgetEventKind::Warning, used);
        }
        Ok(charge)
    }

    /// The budgets' clock now (UTC): what [`status`](Self::status)'s `resets_at` count from.
    pub fn now(&self) -> SystemTime {
        system_time(self.clock.now())
    }

    /// Every budget's current window, in the order they were given.
    pub fn status(&self) -> Vec<BudgetStatus> {
        let now = self.clock.now();
        self.budgets
            .iter()
            .map(|t| {
                let (spent, reserved, resets_at) = match &t.window {
                    Window::Calendar(c) => self.pair(c).map_or((0, 0, now), |p| c.status(p, now)),
                    Window::Rolling(r) => self.rolling(r).map_or((0, 0, now), |r| r.status(now)),
                };
                BudgetStatus {
                    name: t.budget.name.clone(),
                    unit: t.budget.unit(),
                    spent: t.to_unit(spent),
                    reserved: t.to_unit(reserved),
                    limit: t.budget.limit(),
                    period: t.budget.period,
                    rolling: t.budget.rolling,
                    resets_at: system_time(resets_at),
                }
            })
            .collect()
    }

    /// Gives back the reservations of a refused request (those whose window is still
    /// current: a passed window took them along), and the warnings they raised.
    fn rollback(&self, charge: &Charge, warned: &[Warned], now: u64) {
        for h in &charge.held {
            let t = &self.budgets[h.budget];
            let token = h.token.load(Ordering::Relaxed);
            let charged = h.charged.load(Ordering::Relaxed);
            // Unless another request has warned since.
            let mine = warned.iter().find(|w| w.0 == h.budget);
            match &t.window {
                Window::Calendar(c) => {
                    if let Some(p) = self.pair(c) {
                        p.used.add(now_number(c, now), Some(token), charged, 0);
                    }
                    if let Some(&(_, before, set, _)) = mine {
                        let _ = c.warned.compare_exchange(
                            set,
                            before,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
                Window::Rolling(r) => {
                    if let Some(r) = self.rolling(r) {
                        r.release(
                            token,
                            charged,
                            mine.map(|&(_, before, set, _)| (before, set)),
                        );
                    }
                }
            }
        }
    }

    fn emit(&self, budget: usize, kind: BudgetEventKind, used: u64) {
        if let Some(notify) = &self.notify {
            let t = &self.budgets[budget];
            notify(&BudgetEvent {
                name: &t.budget.name,
                kind,
                unit: t.budget.unit(),
                used: t.to_unit(used),
                limit: t.budget.limit(),
                route: None,
            });
        }
    }
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    // It guards no data: a panic elsewhere leaves nothing to repair.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spend in integer units: nano-dollars (`None`: no price) and tokens. Converted once per
/// request, not once per budget.
#[derive(Clone, Copy)]
struct Raw {
    nanos: Option<u64>,
    tokens: u64,
}

impl From<Spend> for Raw {
    fn from(s: Spend) -> Self {
        Raw {
            nanos: s.usd.map(usd_to_nanos),
            tokens: s.tokens,
        }
    }
}

impl Tracked {
    /// A spend in the window's counting units (rounded up).
    fn units(&self, s: Raw) -> u64 {
        let raw = match self.budget.limit {
            Amount::Tokens(_) => s.tokens,
            Amount::Usd(_) => match s.nanos {
                Some(nanos) => nanos,
                None => {
                    if !self.unknown_price_logged.load(Ordering::Relaxed)
                        && !self.unknown_price_logged.swap(true, Ordering::Relaxed)
                    {
                        tracing::warn!(
                            budget = %self.budget.name,
                            "a model without a price counts as 0 USD in this budget"
                        );
                    }
                    0
                }
            },
        };
        if self.shift == 0 {
            raw
        } else {
            raw.div_ceil(1 << self.shift)
        }
    }

    fn to_unit(&self, units: u64) -> f64 {
        let raw = units as f64 * (1u64 << self.shift) as f64;
        match self.budget.limit {
            Amount::Usd(_) => raw / NANOS_PER_USD,
            Amount::Tokens(_) => raw,
        }
    }
}

/// Why a window refused a reservation.
struct Refused {
    /// Settled and reserved in the window.
    used: u64,
    /// When enough of it leaves the window (nanoseconds since the epoch).
    resets_at: u64,
    /// The first refusal in the window: it sends the exhaustion event.
    first: bool,
}

/// A request's reservations, to settle with its budgets when it ends. Without a settle it
/// stays reserved in its windows, still counted; [`keep`](Self::keep) turns it into spend,
/// which is what a call cancelled by its caller does: it may have been billed, and
/// undercounting is what overshoots budgets.
#[must_use = "a charge is settled (or kept) on its budgets"]
pub(crate) struct Charge {
    /// Inline: a request matches a few budgets, and an allocation per call costs more than
    /// the bookkeeping.
    held: SmallVec<[Held; 3]>,
}

/// One budget's reservation. The atomics are only changed by the charge's owner; they are
/// atomics so [`Charge::update`] can take `&self`.
struct Held {
    budget: usize,
    /// The window it is charged in: the calendar window's number (its low bits, as packed),
    /// or the rolling slot.
    token: AtomicU64,
    /// In the window's counting units.
    charged: AtomicU64,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.held
                    .iter()
                    .map(|h| (h.budget, h.charged.load(Ordering::Relaxed))),
            )
            .finish()
    }
}

impl Charge {
    /// Whether no budget matched the request.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// A stream's usage so far: the charge becomes the larger of it and what is charged.
    pub fn update(&self, budgets: &Budgets, so_far: Spend) {
        let now = budgets.clock.now();
        let so_far = Raw::from(so_far);
        for h in &self.held {
            let Some(t) = budgets.budgets.get(h.budget) else {
                continue;
            };
            let amount = t.units(so_far);
            let token = h.token.load(Ordering::Relaxed);
            let charged = h.charged.load(Ordering::Relaxed);
            let warn = match &t.window {
                Window::Calendar(c) => {
                    let Some(p) = budgets.pair(c) else { continue };
                    if amount <= charged && c.is_current(p, token, now) {
                        continue;
                    }
                    // Its window passed and took the reservation along: still in flight, it
                    // counts in the current one.
                    let amount = amount.max(charged);
                    let (token, used, number) =
                        p.used.add(now_number(c, now), Some(token), charged, amount);
                    h.token.store(token, Ordering::Relaxed);
                    h.charged.store(amount, Ordering::Relaxed);
                    c.check_warning(t.warn, used, number)
                }
                Window::Rolling(r) => {
                    let Some(r) = budgets.rolling(r) else {
                        continue;
                    };
                    let (token, amount, used) = r.update(token, charged, amount, now);
                    h.token.store(token, Ordering::Relaxed);
                    h.charged.store(amount, Ordering::Relaxed);
                    used.and_then(|used| r.check_warning(t.warn, used, now))
                }
            };
            if let Some(used) = warn {
                budgets.emit(h.budget, BudgetEventKind::Warning, used);
            }
        }
    }

    /// Replaces the reservations by what the request actually spent, at `now` (when it
    /// ended: tokio's clock).
    pub fn settle(self, budgets: &Budgets, actual: Spend, now: Instant) {
        self.finish(budgets, Some(actual), now);
    }

    /// Turns the reservations into spend, as they are: for a request that ended without
    /// knowing what it spent (cancelled by its caller).
    pub fn keep(self, budgets: &Budgets) {
        self.finish(budgets, None, Instant::now());
    }

    /// Settles with `actual`, or with what is charged when `None`.
    fn finish(self, budgets: &Budgets, actual: Option<Spend>, now: Instant) {
        let now = budgets.clock.at(now);
        let actual = actual.map(Raw::from);
        // By reference: moving the inline list out costs more than the settling.
        for h in &self.held {
            let Some(t) = budgets.budgets.get(h.budget) else {
                continue;
            };
            let charged = h.charged.load(Ordering::Relaxed);
            let token = h.token.load(Ordering::Relaxed);
            let amount = actual.map_or(charged, |a| t.units(a));
            let warn = match &t.window {
                Window::Calendar(c) => {
                    let Some(p) = budgets.pair(c) else { continue };
                    let number = now_number(c, now);
                    // A passed window took the reservation along: the spend counts in the
                    // current one rather than being lost.
                    let (_, used, number) = p.used.add(number, Some(token), charged, amount);
                    p.spent.add(number, None, 0, amount);
                    c.check_warning(t.warn, used, number)
                }
                Window::Rolling(r) => {
                    let Some(r) = budgets.rolling(r) else {
                        continue;
                    };
                    let used = r.settle(token, charged, amount, now);
                    r.check_warning(t.warn, used, now)
                }
            };
            if let Some(used) = warn {
                budgets.emit(h.budget, BudgetEventKind::Warning, used);
            }
        }
    }
}

/// A charge that keeps itself ([`Charge::keep`]) when dropped unsettled: a call's charge
/// while the call runs, so that a caller dropping the call leaves its spend counted.
pub(crate) struct BoundCharge<'a> {
    budgets: &'a Budgets,
    charge: Option<Charge>,
}

impl<'a> BoundCharge<'a> {
    /// Binds `charge` to the budgets it was reserved on.
    pub fn new(budgets: &'a Budgets, charge: Charge) -> Self {
        Self {
            budgets,
            charge: Some(charge),
        }
    }

    /// The charge, unbound (to settle it elsewhere).
    pub fn into_inner(mut self) -> Option<Charge> {
        self.charge.take()
    }

    /// Settles the charge with what the request spent, at `now`.
    pub fn settle(mut self, actual: Spend, now: Instant) {
        if let Some(c) = self.charge.take() {
            c.settle(self.budgets, actual, now);
        }
    }
}

impl Drop for BoundCharge<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.charge.take() {
            c.keep(self.budgets);
        }
    }
}

/// Bits of a packed calendar word that hold the amount; the rest hold the window's number.
const AMOUNT_BITS: u32 = 40;
const AMOUNT_MAX: u64 = (1 << AMOUNT_BITS) - 1;
/// Window and slot numbers are kept modulo 2^24 (32 years of minutes): a calendar word left
/// alone that long could be taken for the current window (a rolling slot is also checked
/// against the head).
const GEN_MASK: u64 = (1 << (64 - AMOUNT_BITS)) - 1;
/// A limit's largest value in counting units: a quarter of the packed range, so a calendar
/// window can be overspent fourfold (requests spending more than they reserved) before its
/// count saturates, and a rolling slot twofold ([`SLOT_MAX`]). A larger limit (above
/// ≈ 275 USD, or 275 billion tokens, per window) counts in units of 2^shift nano-dollars or
/// tokens, 2^-38 of the limit, to which each amount is rounded up (for a 10,000 USD month,
/// 64 nano-dollars).
const LIMIT_MAX: u64 = AMOUNT_MAX / 4;

/// A calendar window, without a lock: its counters ([`Pair`]) are each one word packing the
/// window's number with an amount, so the first change in a new window resets the amount in
/// the same compare-and-swap that adds to it, and a reservation checks and takes room in
/// one step. The counters live in [`Budgets::lines`], away from the budget's settings
/// (which requests the budget does not match read, and should not wait for).
struct Calendar {
    period: BudgetPeriod,
    /// Where its counters are in [`Budgets::lines`]: `used`, then `spent`.
    counters: usize,
    /// 1 + the number of the window in which the last warning (exhaustion event) was sent;
    /// 0 when none was.
    warned: AtomicU64,
    exhausted: AtomicU64,
}

/// A window number and an amount, in one atomic word.
struct Packed(AtomicU64);

impl Packed {
    /// Releases `release` if the word still counts window `token`, then adds `add`, in the
    /// current window: the word's, or window `number` (the caller's clock) if that is newer.
    /// Returns the window's packed number, the amount after, and its full number.
    fn add(&self, number: u64, token: Option<u64>, release: u64, add: u64) -> (u64, u64, u64) {
        match self.change(number, token, release, add, None) {
            Ok(done) | Err(done) => done,
        }
    }

    /// [`add`](Self::add), refused (`Err`, with the amount before) if the amount after would
    /// be above `cap`.
    fn change(
        &self,
        number: u64,
        token: Option<u64>,
        release: u64,
        add: u64,
        cap: Option<u64>,
    ) -> Result<(u64, u64, u64), (u64, u64, u64)> {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let (g, amount) = unpack(word);
            let (full, base) = match window_of(number, g) {
                WordIs::Behind => (number, 0),
                WordIs::Current(full) => (full, amount),
            };
            let g = full & GEN_MASK;
            let base = if token == Some(g) {
                base.saturating_sub(release)
            } else {
                base
            };
            let after = base.saturating_add(add).min(AMOUNT_MAX);
            if cap.is_some_and(|cap| after > cap) {
                return Err((g, base, full));
            }
            match self.0.compare_exchange_weak(
                word,
                (g << AMOUNT_BITS) | after,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok((g, after, full)),
                Err(now) => word = now,
            }
        }
    }

    /// Adds `delta` to the amount of rolling slot `id` (signed, see [`slot_value`]), within
    /// ±[`SLOT_MAX`], if the word still counts that slot: what it took (`delta`, unless the
    /// bound cut it), or `None` if the slot has left the window.
    fn adjust(&self, id: u64, delta: i64) -> Option<i64> {
        let tag = id & GEN_MASK;
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let (g, amount) = unpack(word);
            if g != tag {
                return None;
            }
            let before = slot_value(amount);
            let after = before.saturating_add(delta).clamp(-SLOT_MAX, SLOT_MAX);
            match self.0.compare_exchange_weak(
                word,
                (g << AMOUNT_BITS) | (after as u64 & AMOUNT_MAX),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(after - before),
                Err(now) => word = now,
            }
        }
    }

    /// Whether the word counts rolling slot `id`.
    fn is_on(&self, id: u64) -> bool {
        unpack(self.0.load(Ordering::Relaxed)).0 == id & GEN_MASK
    }

    /// The amount counted in rolling slot `id`, signed (0 if the word is on another slot).
    fn amount_on(&self, id: u64) -> i64 {
        let (g, amount) = unpack(self.0.load(Ordering::Relaxed));
        if g == id & GEN_MASK {
            slot_value(amount)
        } else {
            0
        }
    }

    /// The amount counted in window `number` (0 if the word is still on an older one).
    fn read(&self, number: u64) -> u64 {
        let (g, amount) = unpack(self.0.load(Ordering::Relaxed));
        match window_of(number, g) {
            WordIs::Behind => 0,
            WordIs::Current(_) => amount,
        }
    }
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> AMOUNT_BITS, word & AMOUNT_MAX)
}

enum WordIs {
    /// On a window before `number`: its amount is gone.
    Behind,
    /// On window `number`, or on the next one, which another thread's clock already
    /// reached: this full number.
    Current(u64),
}

/// Where a word on packed window `g` stands against window `number`. A word is at most one
/// window ahead of a caller's clock (read just before, by a call starting as the window
/// turns); any other number is a window that has passed.
fn window_of(number: u64, g: u64) -> WordIs {
    match g.wrapping_sub(number) & GEN_MASK {
        0 => WordIs::Current(number),
        1 => WordIs::Current(number + 1),
        _ => WordIs::Behind,
    }
}

impl Calendar {
    fn new(period: BudgetPeriod, counters: usize) -> Self {
        Self {
            period,
            counters,
            warned: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    /// Takes `amount` in the current window if it fits under the limit: the reservation's
    /// token (the packed window number).
    fn reserve(
        &self,
        p: Pair<'_>,
        t: &Tracked,
        amount: u64,
        now: u64,
        warned: &mut SmallVec<[Warned; 2]>,
        i: usize,
    ) -> Result<u64, Refused> {
        let number = now_number(self, now);
        match p.used.change(number, None, 0, amount, Some(t.limit)) {
            Ok((token, after, full)) => {
                if let Some(w) = t.warn
                    && after >= w
                {
                    let before = self.warned.fetch_max(full + 1, Ordering::Relaxed);
                    if before <= full {
                        warned.push((i, before, full + 1, after));
                    }
                }
                Ok(token)
            }
            Err((_, used, full)) => {
                let first = self.exhausted.load(Ordering::Relaxed) <= full
                    && self.exhausted.fetch_max(full + 1, Ordering::Relaxed) <= full;
                Err(Refused {
                    used,
                    resets_at: window_bounds(self.period, full).1,
                    first,
                })
            }
        }
    }

    /// Whether a reservation's window is the current one.
    fn is_current(&self, p: Pair<'_>, token: u64, now: u64) -> bool {
        let (g, _) = unpack(p.used.0.load(Ordering::Relaxed));
        g == token && matches!(window_of(now_number(self, now), g), WordIs::Current(_))
    }

    /// The used amount, if it reached the warning threshold for the first time in window
    /// `full`.
    fn check_warning(&self, warn: Option<u64>, used: u64, full: u64) -> Option<u64> {
        (used >= warn?
            && self.warned.load(Ordering::Relaxed) <= full
            && self.warned.fetch_max(full + 1, Ordering::Relaxed) <= full)
            .then_some(used)
    }

    /// (spent, reserved, resets at) for the window holding `now`.
    fn status(&self, p: Pair<'_>, now: u64) -> (u64, u64, u64) {
        let number = now_number(self, now);
        let used = p.used.read(number);
        let spent = p.spent.read(number).min(used);
        (spent, used - spent, window_bounds(self.period, number).1)
    }
}

/// The number of the calendar window holding `now`.
fn now_number(c: &Calendar, now: u64) -> u64 {
    window_number(c.period, now)
}

/// A rolling window (the last period, as [`SLOTS`] slots; a slot's id is clock time /
/// `slot_ns`) without a lock on the request path. Each slot's counters are packed words
/// tagged with the slot's id, as a calendar window's are with its number, and a total holds
/// the live slots' `used` summed. A change adds to its slot and to the total in two steps,
/// and an expiring slot is cleared in one swap whose amount then leaves the total: these
/// steps add up in any order, so the total is exact once they are done.
///
/// The current slot's counters sit with the total in [`Budgets::lines`], so a request
/// changes one cache line (shared with the calendar budgets), not three. Moving the head
/// takes a lock, once per slot: it clears the slots that leave, then moves the current
/// slot's counts to its place in the ring (tagged beforehand, so a request still holding
/// that slot finds it there), then publishes the new head.
struct Rolling {
    /// Where its counters are in [`Budgets::lines`]: the total, then the current slot's
    /// `used` and `spent` (see [`RollingAt`]).
    counters: usize,
    /// The current slot's id; moved under `advancing`, published with `Release`, so a
    /// request that reads it finds the slot's words tagged.
    head: AtomicU64,
    /// When the head slot ends (published after `head`): a request before it needs no
    /// division to know its slot.
    head_ends: AtomicU64,
    slots: Box<[Line]>,
    slot_ns: u64,
    advancing: Mutex<()>,
    /// Clock times from which a warning, or an exhaustion event, may be sent again.
    warn_rearm: AtomicU64,
    exhausted_rearm: AtomicU64,
}

/// A rolling window with its counters.
#[derive(Clone, Copy)]
struct RollingAt<'a> {
    r: &'a Rolling,
    /// Settled and reserved over the window. Wrapping, read as signed: an expiry can
    /// subtract a change from it before the change is added.
    total: &'a AtomicU64,
    /// The head slot's `used` and `spent`, tagged with its id (the ring's place for it holds
    /// none of them until the head moves on).
    current: &'a Packed,
    current_spent: &'a Packed,
}

impl std::ops::Deref for RollingAt<'_> {
    type Target = Rolling;

    fn deref(&self) -> &Rolling {
        self.r
    }
}

impl Rolling {
    fn slot_ns(b: &Budget) -> u64 {
        (b.period.rolling_ns() / SLOTS).max(1)
    }

    /// The slot holding `now`.
    fn head_at(b: &Budget, now: u64) -> u64 {
        now / Self::slot_ns(b)
    }

    /// Budget `b`'s window with its head at slot `head` and its counters at `counters`.
    fn new(b: &Budget, head: u64, counters: usize) -> Self {
        let slot_ns = Self::slot_ns(b);
        // Slot k holds the id of the window's last SLOTS slots that falls on k, its `used`
        // and `spent` at words 2k and 2k + 1. (Near the epoch the ids below 0 are 0: those
        // slots are never read.)
        let words: Vec<u64> = (0..SLOTS)
            .map(|k| (head.saturating_sub((head + SLOTS - k) % SLOTS) & GEN_MASK) << AMOUNT_BITS)
            .flat_map(|tagged| [tagged, tagged])
            .collect();
        let lines = words.chunks(WORDS_PER_LINE).map(Line::of).collect();
        Self {
            counters,
            head: AtomicU64::new(head),
            head_ends: AtomicU64::new((head + 1).saturating_mul(slot_ns)),
            slots: lines,
            slot_ns,
            advancing: Mutex::new(()),
            warn_rearm: AtomicU64::new(0),
            exhausted_rearm: AtomicU64::new(0),
        }
    }

    fn slot(&self, id: u64) -> Pair<'_> {
        // The ring is whole lines: every slot has its place.
        const _: () = assert!((2 * SLOTS as usize).is_multiple_of(WORDS_PER_LINE));
        let k = 2 * (id % SLOTS) as usize;
        let line = &self.slots[k / WORDS_PER_LINE].0;
        Pair {
            used: &line[k % WORDS_PER_LINE],
            spent: &line[k % WORDS_PER_LINE + 1],
        }
    }
}

impl<'a> RollingAt<'a> {
    /// Settled and reserved over the window.
    fn used(&self) -> u64 {
        signed_or_zero(self.total.load(Ordering::Relaxed))
    }

    /// Adds `delta` to the total: the window's used amount after.
    fn add_total(&self, delta: i64) -> u64 {
        let delta = delta as u64;
        signed_or_zero(
            self.total
                .fetch_add(delta, Ordering::Relaxed)
                .wrapping_add(delta),
        )
    }

    /// Changes slot `id`'s `used` by `delta`, and the total by what the slot took: the
    /// window's used amount after, or `None` if the slot has left the window. An increase
    /// goes to the total first and a decrease to the slot first, so the total never reads
    /// below the live slots' sum, which is what reservations are checked against.
    fn change_used(&self, id: u64, delta: i64) -> Option<u64> {
        if delta > 0 {
            let used = self.add_total(delta);
            match self.adjust_used(id, delta) {
                Some(applied) if applied == delta => Some(used),
                Some(applied) => Some(self.add_total(applied - delta)),
                None => {
                    self.add_total(-delta);
                    None
                }
            }
        } else {
            let applied = self.adjust_used(id, delta)?;
            Some(self.add_total(applied))
        }
    }

    /// Takes `amount` in the current slot if it fits under the limit: the reservation's
    /// token (the slot's id).
    fn reserve(
        &self,
        t: &Tracked,
        amount: u64,
        now: u64,
        warned: &mut SmallVec<[Warned; 2]>,
        i: usize,
    ) -> Result<u64, Refused> {
        loop {
            let head = self.advance(now);
            let mut total = self.total.load(Ordering::Relaxed);
            // The limit is checked and the room taken on the total, in one step.
            let after = loop {
                let used = signed_or_zero(total);
                let after = used.saturating_add(amount);
                if after > t.limit {
                    return Err(Refused {
                        used,
                        resets_at: self.refusal_resets_at(after - t.limit, now, head),
                        first: self.rearm(&self.exhausted_rearm, now).is_some(),
                    });
                }
                match self.total.compare_exchange_weak(
                    total,
                    total.wrapping_add(amount),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break after,
                    Err(now_total) => total = now_total,
                }
            };
            let asked = to_signed(amount);
            if let Some(applied) = self.adjust_used(head, asked) {
                // Less only in a slot at its bound.
                if applied != asked {
                    self.add_total(applied - asked);
                }
                if let Some(w) = t.warn
                    && after >= w
                    && let Some((before, set)) = self.rearm(&self.warn_rearm, now)
                {
                    warned.push((i, before, set, after));
                }
                return Ok(head);
            }
            // The head moved a whole window between the two steps and the slot expired
            // without this amount: the total gives it back, and the request tries again.
            self.add_total(-asked);
        }
    }

    /// Gives back a refused request's reservation (unless its slot expired, taking it
    /// along) and takes back the warning it raised.
    fn release(&self, token: u64, charged: u64, warned: Option<(u64, u64)>) {
        self.change_used(token, -to_signed(charged));
        if let Some((before, set)) = warned {
            let _ =
                self.warn_rearm
                    .compare_exchange(set, before, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Raises a stream's charge to `amount` (if more than `charged`): the token it is now
    /// charged in, the charge, and the window's used amount if it changed.
    fn update(&self, token: u64, charged: u64, amount: u64, now: u64) -> (u64, u64, Option<u64>) {
        self.advance(now);
        if amount <= charged {
            if self.holds(token) {
                return (token, charged, None);
            }
        } else if let Some(used) = self.change_used(token, to_signed(amount - charged)) {
            return (token, amount, Some(used));
        }
        // Its slot left the window and took the reservation along: still in flight, it
        // counts in the current slot.
        let amount = amount.max(charged);
        let (head, used) = self.put(now, amount);
        (head, amount, Some(used))
    }

    /// Replaces a reservation by the spend `amount`: the window's used amount after.
    fn settle(&self, token: u64, charged: u64, amount: u64, now: u64) -> u64 {
        self.advance(now);
        let delta = to_signed(amount).saturating_sub(to_signed(charged));
        let (token, used) = match self.change_used(token, delta) {
            Some(used) => (token, used),
            // Its slot left the window and took the reservation along: the spend counts in
            // the current slot rather than being lost.
            None => self.put(now, amount),
        };
        if !self.adjust_spent(token, amount) {
            let head = self.advance(now);
            self.adjust_spent(head, amount);
        }
        used
    }

    /// Adds `amount` to the current slot without a limit (it was spent): the slot's id and
    /// the window's used amount after.
    fn put(&self, now: u64, amount: u64) -> (u64, u64) {
        loop {
            let head = self.advance(now);
            if let Some(used) = self.change_used(head, to_signed(amount)) {
                return (head, used);
            }
        }
    }

    /// Moves the head to `now`'s slot, clearing the slots that left the window: the head
    /// (which another thread's clock may have taken past `now`'s slot).
    fn advance(&self, now: u64) -> u64 {
        if now < self.head_ends.load(Ordering::Acquire) {
            return self.head.load(Ordering::Acquire);
        }
        let current = now / self.slot_ns;
        let head = self.head.load(Ordering::Acquire);
        if current <= head {
            return head;
        }
        let _moving = lock(&self.advancing);
        let head = self.head.load(Ordering::Acquire);
        if current <= head {
            return head;
        }
        // Past a whole window, every slot is cleared once.
        let from = if current - head >= SLOTS {
            current - (SLOTS - 1)
        } else {
            head + 1
        };
        let empty = |id: u64| (id & GEN_MASK) << AMOUNT_BITS;
        // The places of the slots from the head's next to the new head, this one included
        // (so a request keeping it after the next move finds it tagged), hold slots that
        // left the window.
        for id in from..=current {
            let s = self.slot(id);
            s.spent.0.store(empty(id), Ordering::Relaxed);
            let (_, used) = unpack(s.used.0.swap(empty(id), Ordering::Relaxed));
            self.add_total(-slot_value(used));
        }
        let (_, used) = unpack(self.current.0.swap(empty(current), Ordering::Relaxed));
        let (_, spent) = unpack(self.current_spent.0.swap(empty(current), Ordering::Relaxed));
        let used = slot_value(used);
        // Still in the window: to its place (tagged by the previous move), which requests
        // keeping it now change; the total moves by what does not get there.
        let placed = if current - head < SLOTS {
            let s = self.slot(head);
            s.spent.adjust(head, slot_value(spent));
            s.used.adjust(head, used).unwrap_or(0)
        } else {
            0
        };
        if placed != used {
            self.add_total(placed - used);
        }
        self.head.store(current, Ordering::Release);
        self.head_ends.store(
            (current + 1).saturating_mul(self.slot_ns),
            Ordering::Release,
        );
        current
    }

    /// Whether slot `id` is still in the window: by the head, then by its words' tags (a
    /// tag alone would take a slot 2^24 slots old for a live one).
    fn holds(&self, id: u64) -> bool {
        self.head.load(Ordering::Acquire).saturating_sub(id) < SLOTS
            && (self.current.is_on(id) || self.slot(id).used.is_on(id))
    }

    /// Adds `delta` to slot `id`'s `used`, in the current slot's counters or in its place in
    /// the ring: what it took, or `None` if the slot has left the window.
    fn adjust_used(&self, id: u64, delta: i64) -> Option<i64> {
        if self.head.load(Ordering::Acquire).saturating_sub(id) >= SLOTS {
            return None;
        }
        self.current
            .adjust(id, delta)
            .or_else(|| self.slot(id).used.adjust(id, delta))
    }

    /// As [`adjust_used`](Self::adjust_used), for `spent`; false if the slot has left.
    fn adjust_spent(&self, id: u64, add: u64) -> bool {
        let add = to_signed(add);
        self.current_spent.adjust(id, add).is_some()
            || self.slot(id).spent.adjust(id, add).is_some()
    }

    /// Rearms an event mark if `now` reached it: the mark before and the one set.
    fn rearm(&self, mark: &AtomicU64, now: u64) -> Option<(u64, u64)> {
        let before = mark.load(Ordering::Relaxed);
        if now < before {
            return None;
        }
        // A period later.
        let set = now.saturating_add(self.slot_ns * SLOTS);
        mark.compare_exchange(before, set, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| (before, set))
    }

    /// The used amount, if it reached the warning threshold for the first time this window.
    fn check_warning(&self, warn: Option<u64>, used: u64, now: u64) -> Option<u64> {
        (used >= warn? && self.rearm(&self.warn_rearm, now).is_some()).then_some(used)
    }

    /// The window's live slots, oldest first, with their counters.
    fn live(&self, head: u64) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        (head.saturating_sub(SLOTS - 1)..=head).map(|id| {
            let s = self.slot(id);
            let used = s.used.amount_on(id) + self.current.amount_on(id);
            let spent = s.spent.amount_on(id) + self.current_spent.amount_on(id);
            (id, non_negative(used), non_negative(spent))
        })
    }

    /// When `need` more units fit: when enough of the oldest slots have left the window (at
    /// worst a period from now).
    fn refusal_resets_at(&self, need: u64, now: u64, head: u64) -> u64 {
        let mut freed = 0u64;
        for (id, used, _) in self.live(head) {
            freed = freed.saturating_add(used);
            if used > 0 && freed >= need {
                return (id + SLOTS).saturating_mul(self.slot_ns);
            }
        }
        now.saturating_add(self.slot_ns * SLOTS)
    }

    /// (spent, reserved, resets at: when the oldest spend leaves the window, or now).
    fn status(&self, now: u64) -> (u64, u64, u64) {
        let head = self.advance(now);
        let mut spent = 0u64;
        let mut oldest = None;
        for (id, used, slot_spent) in self.live(head) {
            spent = spent.saturating_add(slot_spent);
            if oldest.is_none() && used > 0 {
                oldest = Some(id);
            }
        }
        let used = self.used();
        let spent = spent.min(used);
        let resets_at = oldest.map_or(now, |id| (id + SLOTS).saturating_mul(self.slot_ns));
        (spent, used - spent, resets_at)
    }
}

/// A rolling slot's amount: 40 bits, two's complement. Amounts are signed because a request
/// may release from the slot's place in the ring before the head's move brings its
/// reservation there; the sum ends right either way.
fn slot_value(amount: u64) -> i64 {
    ((amount << (64 - AMOUNT_BITS)) as i64) >> (64 - AMOUNT_BITS)
}

/// A rolling slot's bound, either way: twice the largest limit, so only spend reported far
/// beyond a window's limit reaches it (it then counts the bound).
const SLOT_MAX: i64 = (1 << (AMOUNT_BITS - 1)) - 1;

/// An amount as a signed change (saturating: amounts come from vendors' usage).
fn to_signed(amount: u64) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

fn non_negative(amount: i64) -> u64 {
    u64::try_from(amount).unwrap_or(0)
}

/// A wrapping total read as signed, below zero as zero.
fn signed_or_zero(total: u64) -> u64 {
    u64::try_from(total as i64).unwrap_or(0)
}

/// UTC wall-clock time that moves with tokio's clock (so a paused clock moves budgets too):
/// a base time plus the tokio time elapsed since.
struct Clock {
    base_ns: u64,
    start: Instant,
}

impl Clock {
    fn new(base: SystemTime) -> Self {
        let base_ns = base
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            base_ns,
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    fn now(&self) -> u64 {
        self.at(Instant::now())
    }

    /// Nanoseconds since the Unix epoch at tokio instant `t`.
    fn at(&self, t: Instant) -> u64 {
        let elapsed = t.saturating_duration_since(self.start).as_nanos();
        self.base_ns
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

fn system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or(UNIX_EPOCH)
}

fn usd_to_nanos(usd: f64) -> u64 {
    let nanos = usd * NANOS_PER_USD;
    // Rounded half up by hand (`f64::round` is a libm call, on every reserve and settle).
    // NaN and negative amounts count 0; `as` saturates huge ones at u64::MAX.
    if nanos > 0.0 { (nanos + 0.5) as u64 } else { 0 }
}

/// The number of the calendar window holding `now` (nanoseconds since the epoch, UTC):
/// minutes, hours, days or months since the epoch.
fn window_number(period: BudgetPeriod, now: u64) -> u64 {
    match period {
        BudgetPeriod::Minute => now / (60 * NS_PER_SEC),
        BudgetPeriod::Hour => now / (3_600 * NS_PER_SEC),
        BudgetPeriod::Day => now / NS_PER_DAY,
        BudgetPeriod::Month => month_number(now),
    }
}

/// Months since the epoch at `now`. Not inlined: inlined, the compiler computes it ahead
/// for every budget, whatever its period.
#[inline(never)]
fn month_number(now: u64) -> u64 {
    let (y, m, _) = civil_from_days((now / NS_PER_DAY) as i64);
    u64::try_from(y * 12 + i64::from(m) - 1).unwrap_or(0)
}

/// Calendar window `number`'s bounds `[start, end)`, in nanoseconds since the epoch.
fn window_bounds(period: BudgetPeriod, number: u64) -> (u64, u64) {
    let fixed = |len: u64| {
        let start = number.saturating_mul(len);
        (start, start.saturating_add(len))
    };
    match period {
        BudgetPeriod::Minute => fixed(60 * NS_PER_SEC),
        BudgetPeriod::Hour => fixed(3_600 * NS_PER_SEC),
        BudgetPeriod::Day => fixed(NS_PER_DAY),
        BudgetPeriod::Month => {
            let month_start = |n: u64| {
                let (y, m) = (i64::try_from(n / 12).unwrap_or(i64::MAX / 2), n % 12 + 1);
                let day = days_from_civil(y, m as u32, 1);
                u64::try_from(day).unwrap_or(0).saturating_mul(NS_PER_DAY)
            };
            (month_start(number), month_start(number.saturating_add(1)))
        }
    }
}

// Civil dates by Howard Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html):
// a dozen lines instead of a date crate for month starts, with month lengths and leap years.

#[cfg(test)]
mod tests {
    use super::*;

    type Log = Arc<Mutex<Vec<(String, BudgetEventKind, f64, f64)>>>;

    fn utc(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64) -> SystemTime {
        let days = u64::try_from(days_from_civil(y, mo, d)).unwrap();
        UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3_600 + mi * 60 + s)
    }

    fn usd(v: f64) -> Spend {
        Spend {
            usd: Some(v),
            tokens: 0,
        }
    }

    fn tokens(n: u64) -> Spend {
        Spend {
            usd: None,
            tokens: n,
        }
    }

    const NONE: &[String] = &[];

    fn q(route: &str) -> BudgetQuery<'_> {
        BudgetQuery {
            route,
            intent: None,
            labels: NONE,
            tags: NONE,
        }
    }

    fn budgets(list: Vec<Budget>, start: SystemTime) -> Budgets {
        Budgets::with_clock_start(list, None, start).unwrap()
    }

    fn recorded(list: Vec<Budget>, start: SystemTime) -> (Budgets, Log) {
        let log: Log = Arc::default();
        let sink = Arc::clone(&log);
        let notify: Notify = Arc::new(move |e: &BudgetEvent<'_>| {
            sink.lock()
                .unwrap()
                .push((e.name.to_owned(), e.kind, e.used, e.limit));
        });
        (
            Budgets::with_clock_start(list, Some(notify), start).unwrap(),
            log,
        )
    }

    fn status(b: &Budgets, name: &str) -> BudgetStatus {
        b.status().into_iter().find(|s| s.name == name).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn civil_dates_match_known_epochs() {
        assert_eq!(
            utc(2026, 12, 31, 23, 59, 30),
            UNIX_EPOCH + secs(1_798_761_570)
        );
        assert_eq!(utc(2028, 2, 29, 0, 0, 0), UNIX_EPOCH + secs(1_835_395_200));
        assert_eq!(utc(2028, 3, 1, 0, 0, 0), UNIX_EPOCH + secs(1_835_481_600));
        assert_eq!(utc(2000, 2, 29, 0, 0, 0), UNIX_EPOCH + secs(951_782_400));
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn validate_rejects_bad_budgets_and_duplicates() {
        let bad = [
            Budget::usd("", 1.0),
            Budget::usd("a", 0.0),
            Budget::usd("a", -1.0),
            Budget::usd("a", f64::NAN),
            Budget::usd("a", f64::INFINITY),
            Budget::tokens("a", 0),
            Budget::usd("a", 1.0).warn_at(0.0),
            Budget::usd("a", 1.0).warn_at(1.0),
            Budget::usd("a", 1.0).warn_at(f64::NAN),
            Budget::usd("a", 1.0).for_route(""),
            Budget::usd("a", 1.0).for_intent(" "),
            Budget::usd("a", 1.0).for_tag(""),
            Budget::usd("a", 1.0).downgrade_to(""),
        ];
        for b in bad {
            let e = b.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{b:?}");
        }
        assert!(
            Budget::usd("a", 1.0)
                .warn_at(0.8)
                .for_route("chat")
                .downgrade_to("cheap")
                .validate()
                .is_ok()
        );
        let dup = Budgets::new(vec![Budget::usd("a", 1.0), Budget::tokens("a", 5)], None);
        assert_eq!(dup.unwrap_err().kind(), ErrorKind::Config);
        assert!(Budgets::new(vec![], None).unwrap().is_empty());
    }

    #[test]
    fn builder_and_getters() {
        let b = Budget::tokens("t", 500)
            .per(BudgetPeriod::Hour)
            .rolling()
            .for_tag("batch")
            .downgrade_to("cheap")
            .warn_at(0.5);
        assert_eq!(b.name(), "t");
        assert_eq!(b.unit(), BudgetUnit::Tokens);
        assert_eq!(b.limit(), 500.0);
        assert_eq!(b.period(), BudgetPeriod::Hour);
        assert!(b.is_rolling());
        assert!(!b.clone().calendar().is_rolling());
        assert_eq!(b.scope(), &BudgetScope::Tag("batch".into()));
        assert_eq!(b.action(), &OverBudget::Downgrade("cheap".into()));
        assert_eq!(b.warning_at(), Some(0.5));
        let d = Budget::usd("u", 2.5);
        assert_eq!(
            (d.period(), d.is_rolling(), d.scope(), d.action()),
            (
                BudgetPeriod::Day,
                false,
                &BudgetScope::Global,
                &OverBudget::Reject
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rejects_at_the_limit_with_the_right_fields() {
        let b = budgets(
            vec![Budget::usd("daily", 1.0).downgrade_to("cheap")],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let c1 = b.reserve(&q("chat"), usd(0.6)).unwrap();
        let r = b.reserve(&q("chat"), usd(0.5)).unwrap_err();
        assert_eq!(r.action, OverBudget::Downgrade("cheap".into()));
        let e = r.exceeded;
        assert_eq!(e.budget, "daily");
        assert_eq!(e.unit, BudgetUnit::Usd);
        assert!(close(e.spent, 0.6) && close(e.limit, 1.0) && close(e.estimate, 0.5));
        assert_eq!(e.resets_at, utc(2026, 5, 11, 0, 0, 0));
        // Exactly at the limit fits; one nano-dollar more does not.
        let c2 = b.reserve(&q("chat"), usd(0.4)).unwrap();
        assert!(b.reserve(&q("chat"), usd(1e-9)).is_err());
        let s = status(&b, "daily");
        assert!(close(s.reserved, 1.0) && close(s.spent, 0.0));
        drop((c1, c2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_estimate_above_the_whole_limit_is_refused() {
        let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
        let e = b.reserve(&q("chat"), usd(1.5)).unwrap_err().exceeded;
        assert!(close(e.spent, 0.0) && close(e.estimate, 1.5));
        let r = budgets(
            vec![Budget::usd("r", 1.0).per(BudgetPeriod::Minute).rolling()],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let e = r.reserve(&q("chat"), usd(1.5)).unwrap_err().exceeded;
        assert_eq!(e.resets_at, utc(2026, 5, 10, 12, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn settle_below_the_estimate_frees_room() {
        let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
        let c = b.reserve(&q("chat"), usd(0.8)).unwrap();
        assert!(b.reserve(&q("chat"), usd(0.5)).is_err());
        c.settle(&b, usd(0.2), Instant::now());
        let s = status(&b, "d");
        assert!(close(s.spent, 0.2) && close(s.reserved, 0.0));
        b.reserve(&q("chat"), usd(0.8))
            .unwrap()
            .settle(&b, usd(0.8), Instant::now());
        assert!(close(status(&b, "d").spent, 1.0));
    }

    #[tokio::test(start_paused = true)]
    async fn keep_and_drop_keep_the_estimate() {
        for rolling in [false, true] {
            let d = Budget::usd("d", 1.0);
            let d = if rolling { d.rolling() } else { d };
            let b = budgets(vec![d], utc(2026, 5, 10, 12, 0, 0));
            b.reserve(&q("chat"), usd(0.5)).unwrap().keep(&b);
            let s = status(&b, "d");
            assert!(close(s.spent, 0.5) && close(s.reserved, 0.0), "{s:?}");
            // Bound, a charge dropped unsettled keeps itself too.
            drop(BoundCharge::new(
                &b,
                b.reserve(&q("chat"), usd(0.2)).unwrap(),
            ));
            let s = status(&b, "d");
            assert!(close(s.spent, 0.7) && close(s.reserved, 0.0), "{s:?}");
            // Unbound and dropped, it stays reserved: still counted.
            drop(b.reserve(&q("chat"), usd(0.2)).unwrap());
            let s = status(&b, "d");
            assert!(close(s.spent, 0.7) && close(s.reserved, 0.2), "{s:?}");
            assert!(b.reserve(&q("chat"), usd(0.2)).is_err());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn update_raises_the_charge_of_a_stream() {
        let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
        let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
        c.update(&b, usd(0.5));
        assert!(close(status(&b, "d").reserved, 0.5));
        c.update(&b, usd(0.3)); // never below what is charged
        assert!(close(status(&b, "d").reserved, 0.5));
        assert!(b.reserve(&q("chat"), usd(0.6)).is_err());
        c.update(&b, usd(0.7));
        c.keep(&b);
        let s = status(&b, "d");
        assert!(close(s.spent, 0.7) && close(s.reserved, 0.0));
        let c = b.reserve(&q("chat"), usd(0.1)).unwrap();
        c.update(&b, usd(0.2));
        c.settle(&b, usd(0.25), Instant::now());
        assert!(close(status(&b, "d").spent, 0.95));
    }

    #[tokio::test(start_paused = true)]
    async fn all_or_nothing_across_budgets() {
        let start = utc(2026, 5, 10, 12, 0, 0);
        // The global budget is taken first, then the route's refuses: the global is given back.
        let b = budgets(
            vec![
                Budget::usd("global", 10.0),
                Budget::usd("chat", 1.0).for_route("chat"),
            ],
            start,
        );
        let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
        assert_eq!(e.budget, "chat");
        assert!(close(status(&b, "global").reserved, 0.0));
        let c = b.reserve(&q("chat"), usd(0.5)).unwrap();
        assert!(close(status(&b, "global").reserved, 0.5));
        assert!(close(status(&b, "chat").reserved, 0.5));
        // Other routes are held by the global budget only.
        let other = b.reserve(&q("code"), usd(5.0)).unwrap();
        assert!(close(status(&b, "chat").reserved, 0.5));
        c.settle(&b, usd(0.5), Instant::now());
        other.settle(&b, usd(5.0), Instant::now());

        // The other order: the route's budget is taken, then the global one refuses.
        let b = budgets(
            vec![
                Budget::usd("chat", 10.0).for_route("chat"),
                Budget::usd("global", 1.0),
            ],
            start,
        );
        let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
        assert_eq!(e.budget, "global");
        assert!(close(status(&b, "chat").reserved, 0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn scopes_match_route_intent_label_and_tag() {
        let b = budgets(
            vec![
                Budget::tokens("route", 1000).for_route("chat"),
                Budget::tokens("intent", 1000).for_intent("code"),
                Budget::tokens("tag", 1000).for_tag("batch"),
            ],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let none = b.reserve(&q("other"), tokens(10)).unwrap();
        assert!(none.is_empty() && !none.held.spilled());

        let reserved =
            |b: &Budgets| -> Vec<f64> { b.status().iter().map(|s| s.reserved).collect() };
        let c = b.reserve(&q("chat"), tokens(1)).unwrap();
        assert!(!c.is_empty());
        assert_eq!(reserved(&b), [1.0, 0.0, 0.0]);
        c.keep(&b);

        let hint = BudgetQuery {
            intent: Some("code"),
            ..q("other")
        };
        let _c1 = b.reserve(&hint, tokens(2)).unwrap();
        // A request label is a tag (not an intent).
        let labels = ["math".to_owned(), "batch".to_owned(), "code".to_owned()];
        let label = BudgetQuery {
            labels: &labels,
            ..q("other")
        };
        let _c2 = b.reserve(&label, tokens(3)).unwrap();
        let wrong = BudgetQuery {
            intent: Some("chat"),
            labels: &labels[..1],
            ..q("other")
        };
        assert!(b.reserve(&wrong, tokens(100)).unwrap().is_empty());
        assert_eq!(reserved(&b), [0.0, 2.0, 3.0]);

        let tags = ["x".to_owned(), "batch".to_owned()];
        let tagged = BudgetQuery {
            tags: &tags,
            ..q("chat")
        };
        let _c3 = b.reserve(&tagged, tokens(4)).unwrap();
        assert_eq!(reserved(&b), [4.0, 2.0, 7.0]);
        let untagged = BudgetQuery {
            tags: &tags[..1],
            ..q("other")
        };
        assert!(b.reserve(&untagged, tokens(4)).unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn calendar_windows_reset_at_the_new_year() {
        let all = |p| Budget::usd(format!("{p:?}"), 1.0).per(p);
        let periods = [
            BudgetPeriod::Minute,
            BudgetPeriod::Hour,
            BudgetPeriod::Day,
            BudgetPeriod::Month,
        ];
        let b = budgets(
            periods.iter().map(|&p| all(p)).collect(),
            utc(2026, 12, 31, 23, 59, 30),
        );
        b.reserve(&q("chat"), usd(0.9))
            .unwrap()
            .settle(&b, usd(0.9), Instant::now());
        for s in b.status() {
            assert!(close(s.spent, 0.9), "{s:?}");
            assert_eq!(s.resets_at, utc(2027, 1, 1, 0, 0, 0), "{s:?}");
        }
        tokio::time::advance(secs(29)).await;
        assert!(b.status().iter().all(|s| close(s.spent, 0.9)));
        tokio::time::advance(secs(1)).await;
        for s in b.status() {
            assert!(close(s.spent, 0.0), "{s:?}");
        }
        let next: Vec<_> = b.status().iter().map(|s| s.resets_at).collect();
        assert_eq!(
            next,
            [
                utc(2027, 1, 1, 0, 1, 0),
                utc(2027, 1, 1, 1, 0, 0),
                utc(2027, 1, 2, 0, 0, 0),
                utc(2027, 2, 1, 0, 0, 0),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calendar_windows_in_a_leap_february() {
        let b = budgets(
            vec![
                Budget::tokens("minute", 100).per(BudgetPeriod::Minute),
                Budget::tokens("hour", 100).per(BudgetPeriod::Hour),
                Budget::tokens("day", 100).per(BudgetPeriod::Day),
                Budget::tokens("month", 100).per(BudgetPeriod::Month),
            ],
            utc(2028, 2, 28, 23, 59, 59),
        );
        b.reserve(&q("chat"), tokens(60))
            .unwrap()
            .settle(&b, tokens(60), Instant::now());
        assert_eq!(status(&b, "day").resets_at, utc(2028, 2, 29, 0, 0, 0));
        assert_eq!(status(&b, "month").resets_at, utc(2028, 3, 1, 0, 0, 0));
        tokio::time::advance(secs(1)).await;
        let spent: Vec<f64> = b.status().iter().map(|s| s.spent).collect();
        assert_eq!(spent, [0.0, 0.0, 0.0, 60.0]);
        // The month budget still refuses until March.
        assert!(b.reserve(&q("chat"), tokens(50)).is_err());
        tokio::time::advance(secs(86_400 - 1)).await;
        assert_eq!(status(&b, "month").spent, 60.0);
        tokio::time::advance(secs(1)).await;
        assert_eq!(status(&b, "month").spent, 0.0);
        assert_eq!(status(&b, "month").resets_at, utc(2028, 4, 1, 0, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn calendar_windows_mid_month() {
        let b = budgets(
            vec![
                Budget::usd("minute", 1.0).per(BudgetPeriod::Minute),
                Budget::usd("hour", 1.0).per(BudgetPeriod::Hour),
                Budget::usd("day", 1.0),
                Budget::usd("month", 1.0).per(BudgetPeriod::Month),
            ],
            utc(2026, 5, 10, 10, 20, 30),
        );
        let resets: Vec<_> = b.status().iter().map(|s| s.resets_at).collect();
        assert_eq!(
            resets,
            [
                utc(2026, 5, 10, 10, 21, 0),
                utc(2026, 5, 10, 11, 0, 0),
                utc(2026, 5, 11, 0, 0, 0),
                utc(2026, 6, 1, 0, 0, 0),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rolling_window_frees_spend_gradually() {
        let start = utc(2026, 5, 10, 12, 0, 0);
        let b = budgets(
            vec![Budget::usd("r", 1.0).per(BudgetPeriod::Minute).rolling()],
            start,
        );
        b.reserve(&q("chat"), usd(0.5))
            .unwrap()
            .settle(&b, usd(0.5), Instant::now());
        tokio::time::advance(secs(30)).await;
        b.reserve(&q("chat"), usd(0.4))
            .unwrap()
            .settle(&b, usd(0.4), Instant::now());
        // The first spend leaving the window makes room.
        let e = b.reserve(&q("chat"), usd(0.3)).unwrap_err().exceeded;
        assert_eq!(e.resets_at, start + secs(60));
        assert_eq!(status(&b, "r").resets_at, start + secs(60));
        // Only both leaving makes room for 0.95.
        let e = b.reserve(&q("chat"), usd(0.95)).unwrap_err().exceeded;
        assert_eq!(e.resets_at, start + secs(90));
        tokio::time::advance(secs(29)).await;
        assert!(close(status(&b, "r").spent, 0.9));
        tokio::time::advance(secs(1)).await;
        assert!(close(status(&b, "r").spent, 0.4));
        assert_eq!(status(&b, "r").resets_at, start + secs(90));
        b.reserve(&q("chat"), usd(0.3))
            .unwrap()
            .settle(&b, usd(0.3), Instant::now());
        tokio::time::advance(secs(30)).await;
        assert!(close(status(&b, "r").spent, 0.3));
        tokio::time::advance(secs(600)).await;
        let s = status(&b, "r");
        assert!(close(s.spent, 0.0) && close(s.reserved, 0.0));
        assert_eq!(s.resets_at, start + secs(690)); // nothing left: now
    }

    #[tokio::test(start_paused = true)]
    async fn a_settle_after_the_window_rolled_counts_in_the_new_window() {
        let b = budgets(
            vec![
                Budget::usd("cal", 1.0).per(BudgetPeriod::Minute),
                Budget::usd("roll", 1.0).per(BudgetPeriod::Minute).rolling(),
            ],
            utc(2026, 12, 31, 23, 59, 30),
        );
        let c = b.reserve(&q("chat"), usd(0.5)).unwrap();
        tokio::time::advance(secs(40)).await;
        // The calendar window rolled and took the reservation; the rolling slot is still in.
        assert!(close(status(&b, "cal").reserved, 0.0));
        assert!(close(status(&b, "roll").reserved, 0.5));
        c.settle(&b, usd(0.7), Instant::now());
        for s in b.status() {
            assert!(close(s.spent, 0.7) && close(s.reserved, 0.0), "{s:?}");
        }

        let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
        tokio::time::advance(secs(120)).await;
        for s in b.status() {
            assert!(close(s.spent, 0.0) && close(s.reserved, 0.0), "{s:?}");
        }
        // Still in flight: an update charges the current windows.
        c.update(&b, usd(0.1));
        for s in b.status() {
            assert!(close(s.reserved, 0.2), "{s:?}");
        }
        c.settle(&b, usd(0.3), Instant::now());
        for s in b.status() {
            assert!(close(s.spent, 0.3) && close(s.reserved, 0.0), "{s:?}");
        }
        // A dropped charge whose window passed counts its charge in the current one too.
        let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
        tokio::time::advance(secs(120)).await;
        c.keep(&b);
        for s in b.status() {
            assert!(close(s.spent, 0.2), "{s:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn large_limits_count_in_coarser_units() {
        let b = budgets(
            vec![
                Budget::usd("big", 2_000_000.0).per(BudgetPeriod::Month),
                Budget::tokens("huge", u64::MAX / 2),
                Budget::usd("big-rolling", 2_000_000.0)
                    .per(BudgetPeriod::Month)
                    .rolling(),
            ],
            utc(2026, 5, 10, 12, 0, 0),
        );
        assert!(
            b.budgets
                .iter()
                .all(|t| t.shift > 0 && t.limit <= LIMIT_MAX)
        );
        let big = Spend {
            usd: Some(1_999_999.0),
            tokens: u64::MAX / 4,
        };
        let c = b.reserve(&q("chat"), big).unwrap();
        // A coarser unit is still far below a cent: two dollars more do not fit.
        let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
        assert_eq!(e.budget, "big");
        assert!((e.spent - 1_999_999.0).abs() < 1e-3, "{e:?}");
        let _small = b.reserve(&q("chat"), usd(0.5)).unwrap();
        c.settle(&b, big, Instant::now());
        let s = b.status();
        assert!((s[0].spent - 1_999_999.0).abs() < 1e-3 && (s[0].reserved - 0.5).abs() < 1e-3);
        assert!(
            (s[1].spent / (u64::MAX / 4) as f64 - 1.0).abs() < 1e-9,
            "{s:?}"
        );
        assert!((s[2].spent - 1_999_999.0).abs() < 1e-3 && (s[2].reserved - 0.5).abs() < 1e-3);
    }

    /// A 100-token minute budget, 90 of them spent, at 12:00:30.
    fn minute_budget_with_90_spent() -> Budgets {
        let b = budgets(
            vec![Budget::tokens("m", 100).per(BudgetPeriod::Minute)],
            utc(2026, 5, 10, 12, 0, 30),
        );
        b.reserve(&q("chat"), tokens(90))
            .unwrap()
            .settle(&b, tokens(90), Instant::now());
        b
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_started_as_the_window_turned_counts_in_the_new_one() {
        let b = minute_budget_with_90_spent();
        let before = Instant::now();
        tokio::time::advance(secs(30)).await;
        // Another call moved the window; one whose clock read came just before reserves after.
        let c1 = b.reserve(&q("chat"), tokens(40)).unwrap();
        let c2 = b.reserve_at(&q("chat"), tokens(50), before).unwrap();
        let s = status(&b, "m");
        assert_eq!((s.spent, s.reserved), (0.0, 90.0));
        assert!(b.reserve(&q("chat"), tokens(11)).is_err());
        c2.settle(&b, tokens(5), Instant::now());
        c1.settle(&b, tokens(5), Instant::now());
        let s = status(&b, "m");
        assert_eq!((s.spent, s.reserved), (10.0, 0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_left_alone_for_years_starts_empty() {
        let b = minute_budget_with_90_spent();
        // Eight million minutes (sixteen years) later: half the packed window numbers away.
        tokio::time::advance(secs(60 << 23)).await;
        let s = status(&b, "m");
        assert_eq!((s.spent, s.reserved), (0.0, 0.0));
        b.reserve(&q("chat"), tokens(100))
            .unwrap()
            .settle(&b, tokens(100), Instant::now());
        assert_eq!(status(&b, "m").spent, 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn token_budgets_count_tokens() {
        let b = budgets(
            vec![Budget::tokens("t", 1000).per(BudgetPeriod::Hour)],
            utc(2026, 5, 10, 10, 20, 30),
        );
        let c = b
            .reserve(
                &q("chat"),
                Spend {
                    usd: Some(5.0),
                    tokens: 600,
                },
            )
            .unwrap();
        let e = b.reserve(&q("chat"), tokens(500)).unwrap_err().exceeded;
        assert_eq!(e.unit, BudgetUnit::Tokens);
        assert_eq!((e.spent, e.limit, e.estimate), (600.0, 1000.0, 500.0));
        assert_eq!(e.resets_at, utc(2026, 5, 10, 11, 0, 0));
        c.settle(&b, tokens(450), Instant::now());
        b.reserve(&q("chat"), tokens(550))
            .unwrap()
            .settle(&b, tokens(550), Instant::now());
        let s = status(&b, "t");
        assert_eq!(
            (s.spent, s.reserved, s.unit),
            (1000.0, 0.0, BudgetUnit::Tokens)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_price_counts_zero_on_a_usd_budget() {
        let b = budgets(
            vec![Budget::usd("usd", 1.0), Budget::tokens("tok", 1000)],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let shared = &b;
        assert!(
            !shared.budgets[0]
                .unknown_price_logged
                .load(Ordering::Relaxed)
        );
        let c = b.reserve(&q("chat"), tokens(100)).unwrap();
        assert!(
            shared.budgets[0]
                .unknown_price_logged
                .load(Ordering::Relaxed)
        );
        assert!(
            !shared.budgets[1]
                .unknown_price_logged
                .load(Ordering::Relaxed)
        );
        c.update(&b, tokens(200));
        c.settle(&b, tokens(300), Instant::now());
        let s = b.status();
        assert_eq!((s[0].spent, s[0].reserved), (0.0, 0.0));
        assert_eq!(s[1].spent, 300.0);
    }

    #[tokio::test(start_paused = true)]
    async fn warning_and_exhausted_events_once_per_window() {
        let (b, log) = recorded(
            vec![Budget::usd("m", 1.0).per(BudgetPeriod::Minute).warn_at(0.5)],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let take = || std::mem::take(&mut *log.lock().unwrap());
        for _ in 0..2 {
            b.reserve(&q("chat"), usd(0.3))
                .unwrap()
                .settle(&b, usd(0.3), Instant::now());
            assert!(take().is_empty());
            b.reserve(&q("chat"), usd(0.3))
                .unwrap()
                .settle(&b, usd(0.3), Instant::now());
            let ev = take();
            assert_eq!(ev.len(), 1);
            assert_eq!(ev[0].1, BudgetEventKind::Warning);
            assert!(close(ev[0].2, 0.6) && close(ev[0].3, 1.0));
            b.reserve(&q("chat"), usd(0.3))
                .unwrap()
                .settle(&b, usd(0.3), Instant::now());
            assert!(take().is_empty());
            assert!(b.reserve(&q("chat"), usd(0.3)).is_err());
            let ev = take();
            assert_eq!(ev.len(), 1);
            assert_eq!(
                (ev[0].0.as_str(), ev[0].1),
                ("m", BudgetEventKind::Exhausted)
            );
            assert!(close(ev[0].2, 0.9));
            assert!(b.reserve(&q("chat"), usd(0.3)).is_err());
            assert!(b.reserve(&q("chat"), usd(0.5)).is_err());
            assert!(take().is_empty());
            tokio::time::advance(secs(60)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_request_takes_back_its_warning() {
        let (b, log) = recorded(
            vec![
                Budget::usd("global", 1.0).warn_at(0.5),
                Budget::usd("chat", 0.5).for_route("chat"),
            ],
            utc(2026, 5, 10, 12, 0, 0),
        );
        assert!(b.reserve(&q("chat"), usd(0.6)).is_err());
        let ev = std::mem::take(&mut *log.lock().unwrap());
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].0.as_str(), ev[0].1),
            ("chat", BudgetEventKind::Exhausted)
        );
        let _c = b.reserve(&q("code"), usd(0.6)).unwrap();
        let ev = std::mem::take(&mut *log.lock().unwrap());
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].0.as_str(), ev[0].1),
            ("global", BudgetEventKind::Warning)
        );
    }

    /// 64 tasks reserving 0.03 at once on the budgets, released together.
    async fn race(b: &Arc<Budgets>) -> Vec<(&'static str, Charge)> {
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (b, barrier) = (Arc::clone(b), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let route = if i % 2 == 0 { "chat" } else { "code" };
                    b.reserve(&q(route), usd(0.03)).ok().map(|c| (route, c))
                })
            })
            .collect();
        let mut charges = Vec::new();
        for t in tasks {
            if let Some(c) = t.await.unwrap() {
                charges.push(c);
            }
        }
        charges
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reserves_updates_and_settles_lose_nothing() {
        let start = utc(2026, 6, 15, 12, 0, 0);
        let b = Arc::new(budgets(
            vec![
                // Below 2^38 tokens: counted in single tokens, exactly.
                Budget::tokens("calendar", 100_000_000_000),
                Budget::tokens("rolling", 100_000_000_000).rolling(),
            ],
            start,
        ));
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let b = Arc::clone(&b);
                tokio::spawn(async move {
                    let mut settled = 0;
                    for i in 0..2_000u64 {
                        let n = 1 + (task * 7 + i * 13) % 97;
                        let c = b.reserve(&q("chat"), tokens(n)).unwrap();
                        if i % 3 == 0 {
                            c.update(&b, tokens(n + 5));
                        }
                        if i % 5 == 0 {
                            // Kept: what is charged becomes spend.
                            settled += if i % 3 == 0 { n + 5 } else { n };
                            c.keep(&b);
                        } else {
                            settled += n / 2;
                            c.settle(&b, tokens(n / 2), Instant::now());
                        }
                        if i % 50 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    settled
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        for s in b.status() {
            assert_eq!((s.spent, s.reserved), (total as f64, 0.0), "{s:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_at_the_edge_never_overshoot() {
        let start = utc(2026, 6, 15, 12, 0, 0);
        for round in 0..20 {
            let global = if round % 2 == 0 {
                Budget::usd("global", 1.0)
            } else {
                Budget::usd("global", 1.0).rolling()
            };
            let b = Arc::new(budgets(vec![global], start));
            let charges = race(&b).await;
            // floor(1.00 / 0.03)
            assert_eq!(charges.len(), 33, "round {round}");
            let s = &b.status()[0];
            assert!(s.reserved <= 1.0 && close(s.reserved, 0.99), "{s:?}");
            for (_, c) in charges {
                c.keep(&b);
            }
            let s = &b.status()[0];
            assert!(close(s.spent, 0.99) && close(s.reserved, 0.0), "{s:?}");

            // Two budgets: a request the route's budget refuses gives the global one back,
            // and neither is ever over its limit.
            let b = Arc::new(budgets(
                vec![
                    Budget::usd("global", 1.0),
                    Budget::usd("chat", 0.5).for_route("chat"),
                ],
                start,
            ));
            let charges = race(&b).await;
            let chat = charges.iter().filter(|(r, _)| *r == "chat").count();
            let s = b.status();
            assert!(charges.len() <= 33 && chat <= 16, "round {round}");
            assert!(close(s[0].reserved, 0.03 * charges.len() as f64), "{s:?}");
            assert!(close(s[1].reserved, 0.03 * chat as f64), "{s:?}");
            assert!(s[0].reserved <= 1.0 && s[1].reserved <= 0.5, "{s:?}");
        }
    }

    fn rolling(b: &Budgets) -> RollingAt<'_> {
        let Window::Rolling(r) = &b.budgets[0].window else {
            unreachable!("a rolling budget")
        };
        b.rolling(r).unwrap()
    }

    /// Many threads reserving, raising and settling on a rolling window while their clocks
    /// cross several windows' worth of slots: whatever the interleaving with the slots'
    /// expiry, the total stays the sum of the live slots, and a window later it is empty.
    #[test]
    fn a_rolling_total_stays_exact_while_slots_expire_under_it() {
        let start = utc(2026, 6, 15, 12, 0, 0);
        let b = Arc::new(budgets(
            vec![
                Budget::tokens("rolling", 100_000_000_000)
                    .per(BudgetPeriod::Minute)
                    .rolling(),
            ],
            start,
        ));
        let base = b.clock.now();
        // Status and refusals read the slots meanwhile.
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (b, done) = (Arc::clone(&b), Arc::clone(&done));
            std::thread::spawn(move || {
                let r = rolling(&b);
                let mut k = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let now = base + (k % 200) * NS_PER_SEC;
                    let (spent, reserved, _) = r.status(now);
                    assert!(spent.saturating_add(reserved) < 1 << 40);
                    r.refusal_resets_at(10, now, r.head.load(Ordering::Acquire));
                    k += 1;
                }
            })
        };
        let threads: Vec<_> = (0..8u64)
            .map(|thread| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let (t, r) = (&b.budgets[0], rolling(&b));
                    let mut none = SmallVec::new();
                    for i in 0..4_000u64 {
                        // 40 ms a step, each thread's clock a little off the others': the
                        // head crosses 160 one-second slots, under the threads' feet. Now
                        // and then a clock is behind the head, or more than a window ahead.
                        let step = base + i * 40_000_000 + thread * 7_000_000;
                        let now = match (i * 7 + thread) % 23 {
                            0 => step.saturating_sub(10 * NS_PER_SEC),
                            1 => step + 75 * NS_PER_SEC,
                            _ => step,
                        };
                        let n = 1 + (thread * 7 + i * 13) % 97;
                        let token = r.reserve(t, n, now, &mut none, 0).ok().unwrap();
                        let (token, charged, _) = match i % 3 {
                            0 => r.update(token, n, n + 5, now + 1_000_000),
                            1 => r.update(token, n, n / 2, now + 1_000_000),
                            _ => (token, n, None),
                        };
                        // Some settle seconds later, after their slot may have left.
                        let late = (i % 7) * 900_000_000;
                        match i % 11 {
                            0 => r.release(token, charged, None),
                            1 => drop(r.put(now + late, n)),
                            _ => drop(r.settle(token, charged, n / 2, now + late)),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let r = rolling(&b);
        let end = base + 4_000 * 40_000_000 + 90 * NS_PER_SEC;
        let head = r.advance(end);
        let live: u64 = r.live(head).map(|(_, used, _)| used).sum();
        assert!(live > 0);
        assert_eq!(r.total.load(Ordering::Relaxed), live);
        r.advance(end + 61 * NS_PER_SEC);
        assert_eq!(r.total.load(Ordering::Relaxed), 0);
        assert_eq!(r.status(end + 61 * NS_PER_SEC).0, 0);
    }

    /// Spend reported far beyond the limit (a vendor's usage is not checked) saturates its
    /// slot instead of wrapping it, and leaves the window with it: the limit still holds
    /// meanwhile, and a window later the budget is whole again.
    #[tokio::test(start_paused = true)]
    async fn a_huge_reported_spend_saturates_a_rolling_slot_and_leaves_with_it() {
        for huge in [1u64 << 39, 1 << 41, u64::MAX] {
            let b = budgets(
                vec![
                    Budget::tokens("r", 1_000_000)
                        .per(BudgetPeriod::Minute)
                        .rolling(),
                ],
                utc(2026, 5, 10, 12, 0, 0),
            );
            let c = b.reserve(&q("chat"), tokens(1_000)).unwrap();
            let d = b.reserve(&q("chat"), tokens(1_000)).unwrap();
            c.settle(&b, tokens(huge), Instant::now());
            assert!(b.reserve(&q("chat"), tokens(1)).is_err(), "{huge}");
            let c = d;
            c.update(&b, tokens(huge));
            c.settle(&b, tokens(huge), Instant::now());
            assert!(b.reserve(&q("chat"), tokens(1)).is_err(), "{huge}");
            tokio::time::advance(secs(61)).await;
            let s = status(&b, "r");
            assert!(
                close(s.spent, 0.0) && close(s.reserved, 0.0),
                "{huge}: {s:?}"
            );
            b.reserve(&q("chat"), tokens(1_000_000)).unwrap().settle(
                &b,
                tokens(10),
                Instant::now(),
            );
            assert!(close(status(&b, "r").spent, 10.0), "{huge}");
        }
    }

    /// A clock near the epoch (a device without a real-time clock) leaves some of a rolling
    /// window's slots before it.
    #[tokio::test(start_paused = true)]
    async fn rolling_windows_starting_near_the_epoch() {
        let start = UNIX_EPOCH + secs(10);
        let periods = [
            BudgetPeriod::Minute,
            BudgetPeriod::Hour,
            BudgetPeriod::Day,
            BudgetPeriod::Month,
        ];
        let list = periods
            .iter()
            .enumerate()
            .map(|(i, p)| Budget::tokens(format!("r{i}"), 100).per(*p).rolling())
            .collect();
        let b = budgets(list, start);
        b.reserve(&q("chat"), tokens(60))
            .unwrap()
            .settle(&b, tokens(50), Instant::now());
        assert!(b.reserve(&q("chat"), tokens(60)).is_err());
        for s in b.status() {
            assert!(close(s.spent, 50.0) && close(s.reserved, 0.0), "{s:?}");
        }
        tokio::time::advance(secs(61)).await;
        assert!(close(status(&b, "r0").spent, 0.0));
        assert!(close(status(&b, "r1").spent, 50.0));
    }

    /// However the budgets mix, each one's counters sit on one cache line.
    #[test]
    fn each_budgets_counters_sit_on_one_line() {
        let list = (0..9)
            .map(|i| {
                let b = Budget::tokens(format!("b{i}"), 100);
                if i % 3 == 1 { b.rolling() } else { b }
            })
            .collect();
        let b = Budgets::with_clock_start(list, None, utc(2026, 5, 10, 12, 0, 0)).unwrap();
        let mut seen = HashSet::new();
        for t in b.budgets.iter() {
            let (first, n) = match &t.window {
                Window::Calendar(c) => (c.counters, 2),
                Window::Rolling(r) => (r.counters, 3),
            };
            assert_eq!(first / WORDS_PER_LINE, (first + n - 1) / WORDS_PER_LINE);
            assert!((first..first + n).all(|w| seen.insert(w)), "shared words");
        }
        assert!(b.lines.len() <= 4, "{} lines", b.lines.len());
    }
}
