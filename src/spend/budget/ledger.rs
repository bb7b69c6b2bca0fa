//! The ledger: the relay's budgets with their windows and their counters packed on cache
//! lines, their status and their events. A request's side (reserving, settling) is in
//! [`charge`](super::charge).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::calendar::{Calendar, window_number};
use super::clock::{Clock, system_time};
use super::packed::{AMOUNT_BITS, GEN_MASK, LIMIT_MAX, Line, Packed, Pair, WORDS_PER_LINE};
use super::rolling::{Rolling, RollingAt};
use super::ticket::StrictGate;
use super::window::FleetShare;
use super::{Amount, Budget, BudgetStatus, NANOS_PER_USD, Spend, usd_to_nanos};
use crate::accounting::{BudgetEvent, BudgetEventKind};
use crate::types::{Error, ErrorKind};

/// How the budgets tell the observers about warnings and exhaustion.
pub(crate) type Notify = Arc<dyn Fn(&BudgetEvent<'_>) + Send + Sync>;

/// The relay's budgets with their windows; shared by the relay behind an `Arc`.
pub(crate) struct Budgets {
    pub(super) clock: Clock,
    pub(super) budgets: Box<[Tracked]>,
    /// The budgets' counters (a calendar window's two, a rolling window's total and current
    /// slot), [`WORDS_PER_LINE`] to a cache line, none across two: a request under several
    /// budgets changes one line, not one per budget.
    pub(super) lines: Box<[Line]>,
    notify: Option<Notify>,
    /// With a fleet store and a strict budget: how strict budgets reserve at the store.
    pub(super) strict_gate: std::sync::OnceLock<StrictGate>,
}

/// One budget with its window.
pub(crate) struct Tracked {
    pub(super) budget: Budget,
    /// The limit and the warning threshold, in the window's counting units.
    pub(super) limit: u64,
    pub(super) warn: Option<u64>,
    /// Windows count in units of 2^shift (nano-dollars or tokens), so that their limit fits
    /// a packed word (see [`LIMIT_MAX`]).
    pub(super) shift: u32,
    pub(super) window: Window,
    /// So an unknown price is logged once per budget, not per call.
    pub(super) unknown_price_logged: AtomicBool,
    /// What the other replicas of a fleet spent (nothing without a store).
    pub(super) fleet: FleetShare,
}

pub(crate) enum Window {
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
                    fleet: FleetShare::default(),
                }
            })
            .collect();
        let lines = words.chunks(WORDS_PER_LINE).map(Line::of).collect();
        Ok(Self {
            clock,
            budgets,
            lines,
            notify,
            strict_gate: std::sync::OnceLock::new(),
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
    pub(super) fn pair(&self, c: &Calendar) -> Option<Pair<'_>> {
        let [used, spent] = self.words(c.counters)?;
        Some(Pair { used, spent })
    }

    /// Rolling window `r` with its counters (`None` cannot happen: every rolling budget has
    /// them).
    pub(super) fn rolling<'a>(&'a self, r: &'a Rolling) -> Option<RollingAt<'a>> {
        let [total, current, current_spent] = self.words(r.counters)?;
        Some(RollingAt {
            r,
            total: &total.0,
            current,
            current_spent,
        })
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
                    fleet_spent: t.fleet_spent(spent, now).map(|s| t.to_unit(s)),
                    reserved: t.to_unit(reserved),
                    limit: t.budget.limit(),
                    period: t.budget.period,
                    rolling: t.budget.rolling,
                    resets_at: system_time(resets_at),
                }
            })
            .collect()
    }

    pub(super) fn emit(&self, budget: usize, kind: BudgetEventKind, used: u64) {
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

/// A spend in integer units: nano-dollars (`None`: no price) and tokens. Converted once per
/// request, not once per budget.
#[derive(Clone, Copy)]
pub(super) struct Raw {
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
    pub(super) fn units(&self, s: Raw) -> u64 {
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

    pub(super) fn to_unit(&self, units: u64) -> f64 {
        let raw = units as f64 * (1u64 << self.shift) as f64;
        match self.budget.limit {
            Amount::Usd(_) => raw / NANOS_PER_USD,
            Amount::Tokens(_) => raw,
        }
    }
}
