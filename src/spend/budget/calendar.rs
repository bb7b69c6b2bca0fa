//! Calendar windows: the current UTC minute, hour, day or month, counted in packed words,
//! and the window arithmetic (window numbers and bounds).

use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

use super::packed::{Pair, WordIs, unpack, window_of};
use super::window::{Cap, Refused, Warned};
use super::{BudgetPeriod, NS_PER_DAY, NS_PER_SEC};
use crate::time::{civil_from_days, days_from_civil};

/// A calendar window, without a lock: its counters ([`Pair`]) are each one word packing the
/// window's number with an amount, so the first change in a new window resets the amount in
/// the same compare-and-swap that adds to it, and a reservation checks and takes room in
/// one step. The counters live in [`Budgets::lines`], away from the budget's settings
/// (which requests the budget does not match read, and should not wait for).
///
/// [`Budgets::lines`]: super::ledger::Budgets::lines
pub(super) struct Calendar {
    period: BudgetPeriod,
    /// Where its counters are in [`Budgets::lines`]: `used`, then `spent`.
    ///
    /// [`Budgets::lines`]: super::ledger::Budgets::lines
    pub(super) counters: usize,
    /// 1 + the number of the window in which the last warning (exhaustion event) was sent;
    /// 0 when none was.
    pub(super) warned: AtomicU64,
    exhausted: AtomicU64,
}

impl Calendar {
    pub(super) fn new(period: BudgetPeriod, counters: usize) -> Self {
        Self {
            period,
            counters,
            warned: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    /// Takes `amount` in the current window if it fits under the limit: the reservation's
    /// token (the packed window number).
    #[inline]
    pub(super) fn reserve(
        &self,
        p: Pair<'_>,
        cap: Cap,
        amount: u64,
        now: u64,
        warned: &mut SmallVec<[Warned; 2]>,
        i: usize,
    ) -> Result<u64, Refused> {
        let number = now_number(self, now);
        match p.used.change(number, None, 0, amount, Some(cap.limit)) {
            Ok((token, after, full)) => {
                if let Some(w) = cap.warn
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
    pub(super) fn is_current(&self, p: Pair<'_>, token: u64, now: u64) -> bool {
        let (g, _) = unpack(p.used.0.load(Ordering::Relaxed));
        g == token && matches!(window_of(now_number(self, now), g), WordIs::Current(_))
    }

    /// The used amount, if it reached the warning threshold for the first time in window
    /// `full`.
    pub(super) fn check_warning(&self, warn: Option<u64>, used: u64, full: u64) -> Option<u64> {
        (used >= warn?
            && self.warned.load(Ordering::Relaxed) <= full
            && self.warned.fetch_max(full + 1, Ordering::Relaxed) <= full)
            .then_some(used)
    }

    /// (spent, reserved, resets at) for the window holding `now`.
    pub(super) fn status(&self, p: Pair<'_>, now: u64) -> (u64, u64, u64) {
        let number = now_number(self, now);
        let used = p.used.read(number);
        let spent = p.spent.read(number).min(used);
        (spent, used - spent, window_bounds(self.period, number).1)
    }
}

/// The number of the calendar window holding `now`.
pub(super) fn now_number(c: &Calendar, now: u64) -> u64 {
    window_number(c.period, now)
}

/// The number of the calendar window holding `now` (nanoseconds since the epoch, UTC):
/// minutes, hours, days or months since the epoch.
pub(super) fn window_number(period: BudgetPeriod, now: u64) -> u64 {
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
