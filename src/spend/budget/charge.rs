//! A request's side of its budgets: its reservation on every budget it matches, all or
//! nothing ([`Budgets::reserve_at`]), which it holds as a [`Charge`], raised while it streams
//! and settled (or kept) when it ends.

use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;
use tokio::time::Instant;

use super::calendar::{now_number, window_number};
use super::clock::system_time;
use super::ledger::{Budgets, Raw, Window};
use super::ticket::StrictTicket;
use super::window::Warned;
use super::{BudgetQuery, OverBudget, Spend};
use crate::accounting::BudgetEventKind;
use crate::store::StrictItem;
use crate::types::BudgetExceeded;

/// Why [`Budgets::reserve`] refused a request, and what to do with it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Refusal {
    /// The budget that refused it, with its window.
    pub exceeded: BudgetExceeded,
    /// That budget's action.
    pub action: OverBudget,
}

impl Budgets {
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
            strict: None,
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
                    Some(p) => c.reserve(p, t.cap_at(now), amount, now, &mut warned, i),
                    None => continue,
                },
                Window::Rolling(r) => match self.rolling(r) {
                    Some(r) => r.reserve(t.cap_at(now), amount, now, &mut warned, i),
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
                            spent: t.to_unit(refused.used.saturating_add(t.others(now))),
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
}

/// A request's reservations, to settle with its budgets when it ends. Without a settle it
/// stays reserved in its windows, still counted; [`keep`](Self::keep) turns it into spend,
/// which is what a call cancelled by its caller does: it may have been billed, and
/// undercounting is what overshoots budgets.
#[must_use = "a charge is settled (or kept) on its budgets"]
pub(crate) struct Charge {
    /// Inline: a request matches a few budgets, and an allocation per call costs more than
    /// the bookkeeping.
    pub(super) held: SmallVec<[Held; 3]>,
    /// Strict budgets' reservations held at the fleet's store, settled there too.
    pub(super) strict: Option<Box<StrictTicket>>,
}

/// One budget's reservation. The atomics are only changed by the charge's owner; they are
/// atomics so [`Charge::update`] can take `&self`.
pub(super) struct Held {
    pub(super) budget: usize,
    /// The window it is charged in: the calendar window's number (its low bits, as packed),
    /// or the rolling slot.
    pub(super) token: AtomicU64,
    /// In the window's counting units.
    pub(super) charged: AtomicU64,
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

    /// Whether a budget it holds is strict.
    pub fn is_strict(&self, budgets: &Budgets) -> bool {
        self.held.iter().any(|h| {
            budgets
                .budgets
                .get(h.budget)
                .is_some_and(|t| t.budget.strict)
        })
    }

    /// Holds `ticket`: the strict reservations the store made for this charge.
    pub fn hold_strict(&mut self, ticket: StrictTicket) {
        self.strict = Some(Box::new(ticket));
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
            if let Some(ticket) = &self.strict {
                ticket.settle(h.budget, t.to_raw(amount));
            }
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

impl Charge {
    /// The strict budgets this charge holds, as store items (budget index with each), with
    /// their window at the charge's reservation.
    pub fn strict_items(&self, budgets: &Budgets) -> Vec<(usize, StrictItem)> {
        let now = budgets.clock.now();
        self.held
            .iter()
            .filter_map(|h| {
                let t = budgets.budgets.get(h.budget)?;
                if !t.budget.strict || !matches!(t.window, Window::Calendar(_)) {
                    return None;
                }
                let charged = h.charged.load(std::sync::atomic::Ordering::Relaxed);
                Some((
                    h.budget,
                    StrictItem {
                        budget: t.budget.name.clone(),
                        window: window_number(t.budget.period, now),
                        amount: t.to_raw(charged),
                        limit: t.to_raw(t.limit),
                    },
                ))
            })
            .collect()
    }
}
