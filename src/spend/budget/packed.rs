//! The packed word under both kinds of window: a window's number (or a rolling slot's id)
//! and an amount in one `AtomicU64`, so that moving to a new window and changing the amount
//! in it are one compare-and-swap, and a reservation checks its cap and takes the room in
//! the same step. Every loop here works on one word, with `Relaxed`: no reader relies on the
//! order of two words' changes. Where one does, a rolling window's head, it is published
//! with `Release` and read with `Acquire` (see [`Rolling`](super::rolling::Rolling)); a
//! rolling window's total adds up in any order.
//!
//! The words sit eight to a cache line ([`Line`]); a window's (or slot's) two counters are a
//! [`Pair`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a packed calendar word that hold the amount; the rest hold the window's number.
pub(super) const AMOUNT_BITS: u32 = 40;
const AMOUNT_MAX: u64 = (1 << AMOUNT_BITS) - 1;
/// Window and slot numbers are kept modulo 2^24 (32 years of minutes): a calendar word left
/// alone that long could be taken for the current window (a rolling slot is also checked
/// against the head).
pub(super) const GEN_MASK: u64 = (1 << (64 - AMOUNT_BITS)) - 1;
/// A limit's largest value in counting units: a quarter of the packed range, so a calendar
/// window can be overspent fourfold (requests spending more than they reserved) before its
/// count saturates, and a rolling slot twofold ([`SLOT_MAX`]). A larger limit (above
/// ≈ 275 USD, or 275 billion tokens, per window) counts in units of 2^shift nano-dollars or
/// tokens, 2^-38 of the limit, to which each amount is rounded up (for a 10,000 USD month,
/// 64 nano-dollars).
pub(super) const LIMIT_MAX: u64 = AMOUNT_MAX / 4;

/// A window number and an amount, in one atomic word.
pub(super) struct Packed(pub(super) AtomicU64);

impl Packed {
    /// Releases `release` if the word still counts window `token`, then adds `add`, in the
    /// current window: the word's, or window `number` (the caller's clock) if that is newer.
    /// Returns the window's packed number, the amount after, and its full number.
    #[inline]
    pub(super) fn add(
        &self,
        number: u64,
        token: Option<u64>,
        release: u64,
        add: u64,
    ) -> (u64, u64, u64) {
        match self.change(number, token, release, add, None) {
            Ok(done) | Err(done) => done,
        }
    }

    /// [`add`](Self::add), refused (`Err`, with the amount before) if the amount after would
    /// be above `cap`.
    #[inline]
    pub(super) fn change(
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
    pub(super) fn adjust(&self, id: u64, delta: i64) -> Option<i64> {
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
    pub(super) fn is_on(&self, id: u64) -> bool {
        unpack(self.0.load(Ordering::Relaxed)).0 == id & GEN_MASK
    }

    /// The amount counted in rolling slot `id`, signed (0 if the word is on another slot).
    pub(super) fn amount_on(&self, id: u64) -> i64 {
        let (g, amount) = unpack(self.0.load(Ordering::Relaxed));
        if g == id & GEN_MASK {
            slot_value(amount)
        } else {
            0
        }
    }

    /// The amount counted in window `number` (0 if the word is still on an older one).
    pub(super) fn read(&self, number: u64) -> u64 {
        let (g, amount) = unpack(self.0.load(Ordering::Relaxed));
        match window_of(number, g) {
            WordIs::Behind => 0,
            WordIs::Current(_) => amount,
        }
    }
}

pub(super) fn unpack(word: u64) -> (u64, u64) {
    (word >> AMOUNT_BITS, word & AMOUNT_MAX)
}

pub(super) enum WordIs {
    /// On a window before `number`: its amount is gone.
    Behind,
    /// On window `number`, or on the next one, which another thread's clock already
    /// reached: this full number.
    Current(u64),
}

/// Where a word on packed window `g` stands against window `number`. A word is at most one
/// window ahead of a caller's clock (read just before, by a call starting as the window
/// turns); any other number is a window that has passed.
pub(super) fn window_of(number: u64, g: u64) -> WordIs {
    match g.wrapping_sub(number) & GEN_MASK {
        0 => WordIs::Current(number),
        1 => WordIs::Current(number + 1),
        _ => WordIs::Behind,
    }
}

/// A rolling slot's amount: 40 bits, two's complement. Amounts are signed because a request
/// may release from the slot's place in the ring before the head's move brings its
/// reservation there; the sum ends right either way.
pub(super) fn slot_value(amount: u64) -> i64 {
    ((amount << (64 - AMOUNT_BITS)) as i64) >> (64 - AMOUNT_BITS)
}

/// A rolling slot's bound, either way: twice the largest limit, so only spend reported far
/// beyond a window's limit reaches it (it then counts the bound).
const SLOT_MAX: i64 = (1 << (AMOUNT_BITS - 1)) - 1;

/// Counters on one cache line.
pub(super) const WORDS_PER_LINE: usize = 8;

#[repr(align(64))]
pub(super) struct Line(pub(super) [Packed; WORDS_PER_LINE]);

impl Line {
    pub(super) fn of(words: &[u64]) -> Line {
        Line(std::array::from_fn(|k| {
            Packed(AtomicU64::new(words.get(k).copied().unwrap_or(0)))
        }))
    }
}

/// A window's (or a rolling slot's) counters: `used` (spent and reserved) is what limits;
/// `spent` (settled) is for the status.
#[derive(Clone, Copy)]
pub(super) struct Pair<'a> {
    pub(super) used: &'a Packed,
    pub(super) spent: &'a Packed,
}
