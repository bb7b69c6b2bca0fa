//! Rolling windows: the last period as a ring of slots and a running total, without a lock
//! on a request's path (see [`Rolling`] for why the total stays exact).
//!
//! Memory ordering: the head (and when it ends) is published with `Release` after the slots
//! that leave are cleared and the new head's place is tagged, and read with `Acquire`, so a
//! request that sees a head finds its slots' words tagged. Everything else is `Relaxed`: the
//! total is a wrapping signed sum, and its changes add up in any order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use smallvec::SmallVec;

use super::packed::{
    AMOUNT_BITS, GEN_MASK, Line, Packed, Pair, WORDS_PER_LINE, slot_value, unpack,
};
use super::window::{Cap, Refused, Warned};
use super::{Budget, SLOTS};

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
///
/// [`Budgets::lines`]: super::ledger::Budgets::lines
pub(super) struct Rolling {
    /// Where its counters are in [`Budgets::lines`]: the total, then the current slot's
    /// `used` and `spent` (see [`RollingAt`]).
    ///
    /// [`Budgets::lines`]: super::ledger::Budgets::lines
    pub(super) counters: usize,
    /// The current slot's id; moved under `advancing`, published with `Release`, so a
    /// request that reads it finds the slot's words tagged.
    pub(super) head: AtomicU64,
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
pub(super) struct RollingAt<'a> {
    pub(super) r: &'a Rolling,
    /// Settled and reserved over the window. Wrapping, read as signed: an expiry can
    /// subtract a change from it before the change is added.
    pub(super) total: &'a AtomicU64,
    /// The head slot's `used` and `spent`, tagged with its id (the ring's place for it holds
    /// none of them until the head moves on).
    pub(super) current: &'a Packed,
    pub(super) current_spent: &'a Packed,
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
    pub(super) fn head_at(b: &Budget, now: u64) -> u64 {
        now / Self::slot_ns(b)
    }

    /// Budget `b`'s window with its head at slot `head` and its counters at `counters`.
    pub(super) fn new(b: &Budget, head: u64, counters: usize) -> Self {
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
    #[inline]
    pub(super) fn reserve(
        &self,
        cap: Cap,
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
                if after > cap.limit {
                    return Err(Refused {
                        used,
                        resets_at: self.refusal_resets_at(after - cap.limit, now, head),
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
                if let Some(w) = cap.warn
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
    pub(super) fn release(&self, token: u64, charged: u64, warned: Option<(u64, u64)>) {
        self.change_used(token, -to_signed(charged));
        if let Some((before, set)) = warned {
            let _ =
                self.warn_rearm
                    .compare_exchange(set, before, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Raises a stream's charge to `amount` (if more than `charged`): the token it is now
    /// charged in, the charge, and the window's used amount if it changed.
    pub(super) fn update(
        &self,
        token: u64,
        charged: u64,
        amount: u64,
        now: u64,
    ) -> (u64, u64, Option<u64>) {
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
    #[inline]
    pub(super) fn settle(&self, token: u64, charged: u64, amount: u64, now: u64) -> u64 {
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
    pub(super) fn put(&self, now: u64, amount: u64) -> (u64, u64) {
        loop {
            let head = self.advance(now);
            if let Some(used) = self.change_used(head, to_signed(amount)) {
                return (head, used);
            }
        }
    }

    /// Moves the head to `now`'s slot, clearing the slots that left the window: the head
    /// (which another thread's clock may have taken past `now`'s slot).
    pub(super) fn advance(&self, now: u64) -> u64 {
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
    pub(super) fn check_warning(&self, warn: Option<u64>, used: u64, now: u64) -> Option<u64> {
        (used >= warn? && self.rearm(&self.warn_rearm, now).is_some()).then_some(used)
    }

    /// The window's live slots, oldest first, with their counters.
    pub(super) fn live(&self, head: u64) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        (head.saturating_sub(SLOTS - 1)..=head).map(|id| {
            let s = self.slot(id);
            let used = s.used.amount_on(id) + self.current.amount_on(id);
            let spent = s.spent.amount_on(id) + self.current_spent.amount_on(id);
            (id, non_negative(used), non_negative(spent))
        })
    }

    /// When `need` more units fit: when enough of the oldest slots have left the window (at
    /// worst a period from now).
    pub(super) fn refusal_resets_at(&self, need: u64, now: u64, head: u64) -> u64 {
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
    pub(super) fn status(&self, now: u64) -> (u64, u64, u64) {
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

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    // It guards no data: a panic elsewhere leaves nothing to repair.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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
