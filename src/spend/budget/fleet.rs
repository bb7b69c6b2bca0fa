//! Budgets shared by a fleet of relays ([`crate::store`]): what this replica spent in each
//! budget's window, for the store, and what the other replicas spent, from it.
//!
//! A request is admitted against `limit − others` (see [`Tracked::cap_at`]), where `others`
//! is the fleet's total at the last exchange minus this replica's part of it. Between two
//! exchanges the others may spend more than that snapshot says, so the fleet overshoots a
//! budget by at most what the other replicas spend in one sync interval (plus the exchange's
//! own time) and what they have in flight. Amounts travel in the budget's integer units
//! (nano-dollars or tokens, before any scaling), so totals add up exactly.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::calendar::window_number;
use super::ledger::{Budgets, Tracked, Window};
use super::window::Cap;
use crate::store::SpendReport;

impl Tracked {
    /// The cap a reservation at `now` is checked against: the limit less the other
    /// replicas' spend in the current window (the limit itself without a fleet).
    #[inline]
    pub(super) fn cap_at(&self, now: u64) -> Cap {
        let others = self.others(now);
        Cap {
            limit: self.limit.saturating_sub(others),
            warn: self.warn.map(|w| w.saturating_sub(others)),
        }
    }

    /// The other replicas' spend in the window holding `now`, in counting units.
    #[inline]
    pub(super) fn others(&self, now: u64) -> u64 {
        let stamp = self.fleet.stamp.load(Ordering::Acquire);
        if stamp == 0 {
            return 0;
        }
        let current = match &self.window {
            Window::Calendar(_) => stamp - 1 == window_number(self.budget.period, now),
            Window::Rolling(_) => now.saturating_sub(stamp - 1) < self.budget.period.rolling_ns(),
        };
        if current {
            self.fleet.others.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    pub(super) fn to_raw(&self, units: u64) -> u64 {
        units.checked_shl(self.shift).unwrap_or(u64::MAX)
    }

    pub(super) fn units_of_raw(&self, raw: u64) -> u64 {
        if self.shift == 0 {
            raw
        } else {
            raw.div_ceil(1 << self.shift)
        }
    }
}

impl Budgets {
    /// This replica's spend in every budget's current window, for the store; `seq` orders a
    /// rolling window's writes.
    pub fn fleet_reports(&self, seq: u64) -> Vec<SpendReport> {
        let now = self.clock.now();
        self.budgets
            .iter()
            .map(|t| {
                let (window, spent) = match &t.window {
                    Window::Calendar(c) => {
                        let number = window_number(t.budget.period, now);
                        let spent = self.pair(c).map_or(0, |p| p.spent.read(number));
                        (Some(number), spent)
                    }
                    Window::Rolling(r) => (None, self.rolling(r).map_or(0, |r| r.status(now).0)),
                };
                SpendReport {
                    budget: t.budget.name.clone(),
                    window,
                    spent: t.to_raw(spent),
                    period: Duration::from_nanos(t.budget.period.rolling_ns()),
                    seq,
                }
            })
            .collect()
    }

    /// Takes the fleet's totals for `sent` (from [`fleet_reports`](Self::fleet_reports)):
    /// the others' spend is each total less what this replica sent.
    pub fn apply_fleet(&self, sent: &[SpendReport], totals: &[u64]) {
        let now = self.clock.now();
        for ((t, report), &total) in self.budgets.iter().zip(sent).zip(totals) {
            if t.budget.name != report.budget {
                continue;
            }
            let others = t.units_of_raw(total.saturating_sub(report.spent));
            let stamp = match report.window {
                Some(number) => number.saturating_add(1),
                None => now.saturating_add(1),
            };
            t.fleet.others.store(others, Ordering::Relaxed);
            t.fleet.stamp.store(stamp, Ordering::Release);
        }
    }
}

impl Tracked {
    /// The fleet-wide spend now, in counting units: the others' last known spend plus this
    /// replica's `spent`; `None` before any exchange.
    pub(super) fn fleet_spent(&self, spent: u64, now: u64) -> Option<u64> {
        if self.fleet.stamp.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(self.others(now).saturating_add(spent))
    }
}
