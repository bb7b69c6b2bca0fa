//! Client-side rate limits for one target or key: requests per minute, tokens per minute and
//! requests in flight, plus holds when the vendor says to wait (its rate-limit headers, a
//! 429's `Retry-After`).
//!
//! [`RateLimit`] is the configuration. The relay keeps one crate-internal `Limiter` per
//! limited target, asks it before each attempt, and tells it what the vendor answered. The
//! per-minute limits are GCRA token buckets from [`governor`], on tokio's clock, so tests
//! with a paused clock drive them. A bucket holds a minute's allowance and refills
//! continuously, so a full minute's requests may come in one burst.

use std::num::{NonZeroU32, NonZeroU64};
use std::ops::Add;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use tokio::time::Instant;

use super::RateLimitInfo;
use crate::error::{Error, ErrorKind};

/// A client-side rate limit: any of requests per minute, tokens per minute and requests in
/// flight, and what the relay does when a request would exceed it ([`WhenLimited`]).
///
/// ```
/// use std::time::Duration;
/// use polyrelay::spend::limiter::{RateLimit, WhenLimited};
///
/// let limit = RateLimit::new()
///     .requests_per_minute(500)
///     .tokens_per_minute(200_000)
///     .max_concurrent(16)
///     .wait_up_to(Duration::from_secs(2));
/// assert!(limit.validate().is_ok());
/// assert_eq!(limit.when_limited(), WhenLimited::Wait(Duration::from_secs(2)));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    rpm: Option<u32>,
    tpm: Option<u32>,
    concurrency: Option<u32>,
    when_limited: WhenLimited,
}

/// What the relay does with a request its target's [`RateLimit`] does not admit now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenLimited {
    /// Move to the next target of the chain at once (the default).
    #[default]
    FailOver,
    /// Wait until the limit admits the request, if that is within this long and within the
    /// call's deadline; otherwise move to the next target.
    Wait(Duration),
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new()
    }
}

impl RateLimit {
    /// No limit yet, failing over when limited; set at least one limit before use.
    pub fn new() -> Self {
        RateLimit {
            rpm: None,
            tpm: None,
            concurrency: None,
            when_limited: WhenLimited::FailOver,
        }
    }

    /// At most `n` requests per minute (a bucket of `n` that refills continuously).
    pub fn requests_per_minute(mut self, n: u32) -> Self {
        self.rpm = Some(n);
        self
    }

    /// At most `n` tokens (prompt and completion) per minute. Each request is admitted on an
    /// estimate, and charged the difference when its usage comes back larger.
    pub fn tokens_per_minute(mut self, n: u32) -> Self {
        self.tpm = Some(n);
        self
    }

    /// At most `n` requests in flight at once (a stream counts until it ends).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// When limited, move to the next target at once (the default).
    pub fn fail_over(mut self) -> Self {
        self.when_limited = WhenLimited::FailOver;
        self
    }

    /// When limited, wait for the limit up to `max` (and never past the call's deadline)
    /// before moving to the next target.
    pub fn wait_up_to(mut self, max: Duration) -> Self {
        self.when_limited = WhenLimited::Wait(max);
        self
    }

    /// What the relay does when limited.
    pub fn when_limited(&self) -> WhenLimited {
        self.when_limited
    }

    /// The requests-per-minute limit, if set.
    pub fn rpm(&self) -> Option<u32> {
        self.rpm
    }

    /// The tokens-per-minute limit, if set.
    pub fn tpm(&self) -> Option<u32> {
        self.tpm
    }

    /// The limit on requests in flight, if set.
    pub fn concurrency(&self) -> Option<u32> {
        self.concurrency
    }

    /// Checks the limit: a [`Config`](ErrorKind::Config) error when a limit is zero, when
    /// the wait is zero, or when no limit is set at all.
    pub fn validate(&self) -> Result<(), Error> {
        let zero = |what: &str| {
            Error::new(
                ErrorKind::Config,
                format!("rate limit: {what} is 0; it must be at least 1"),
            )
        };
        if self.rpm == Some(0) {
            return Err(zero("requests_per_minute"));
        }
        if self.tpm == Some(0) {
            return Err(zero("tokens_per_minute"));
        }
        if self.concurrency == Some(0) {
            return Err(zero("max_concurrent"));
        }
        if self.when_limited == WhenLimited::Wait(Duration::ZERO) {
            return Err(Error::new(
                ErrorKind::Config,
                "rate limit: wait_up_to(0) never waits; use fail_over()",
            ));
        }
        if self.rpm.is_none() && self.tpm.is_none() && self.concurrency.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                "rate limit: no limit set (requests_per_minute, tokens_per_minute or max_concurrent)",
            ));
        }
        Ok(())
    }
}

/// A limiter's state, as the relay reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimiterStatus {
    /// Requests admitted and not finished.
    pub in_flight: u32,
    /// How much longer no request is sent because the vendor said to wait (its headers or a
    /// 429's `Retry-After`); `None` when not held.
    pub held_for: Option<Duration>,
    /// What the vendor's rate-limit headers said last.
    pub last_vendor_info: Option<RateLimitInfo>,
}

/// How soon a request refused for want of a concurrency slot should ask again. When a slot
/// frees depends on requests in flight, which nobody can tell; this is a poll interval, not
/// a promise.
pub(crate) const CONCURRENCY_POLL: Duration = Duration::from_millis(20);

/// How far ahead of now a token bucket may be booked by charges past its estimates: two
/// minutes (a full bucket's minute, plus one of debt), so one badly wrong estimate costs at
/// most a minute more of waiting.
const MAX_BOOKED_WINDOWS: u64 = 2;

/// Governor's clock over tokio's: nanoseconds since the limiter was made. Governor reads
/// the time its caller passed in just before ([`TokioClock::set`]) rather than the system
/// clock: the call already read it once, and a clock read costs more than the whole GCRA
/// check on some virtual machines. The time passes through a thread-local, not a shared
/// word that every request would write. (Two threads' times may be a little out of order;
/// GCRA takes a time before the bucket's state as that state, so this only ever admits less.)
#[derive(Clone, Debug)]
struct TokioClock {
    base: Instant,
}

thread_local! {
    /// The tick the limiter running on this thread set for governor to read.
    static NOW_TICK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A reading of [`TokioClock`]: nanoseconds since its base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Tick(u64);

impl Add<Nanos> for Tick {
    type Output = Tick;

    fn add(self, other: Nanos) -> Tick {
        Tick(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for Tick {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_sub(earlier.0))
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Tick(self.0.saturating_sub(duration.as_u64()))
    }
}

impl Clock for TokioClock {
    type Instant = Tick;

    fn now(&self) -> Tick {
        Tick(NOW_TICK.get())
    }
}

impl TokioClock {
    fn new(base: Instant) -> Self {
        TokioClock { base }
    }

    /// What governor reads next on this thread: `at`.
    fn set(&self, at: Instant) -> Tick {
        let t = self.tick(at);
        NOW_TICK.set(t.0);
        t
    }

    fn tick(&self, at: Instant) -> Tick {
        let since = at.saturating_duration_since(self.base).as_nanos();
        Tick(u64::try_from(since).unwrap_or(u64::MAX))
    }

    fn instant(&self, tick: Tick) -> Instant {
        self.base + Duration::from_nanos(tick.0)
    }
}

/// A GCRA state (the bucket's theoretical arrival time, in nanoseconds since the start; 0
/// for a fresh bucket) shared with the limiter, so that it can give back a cell governor
/// took or charge cells governor would refuse, which governor's own state does not allow.
#[derive(Clone)]
struct SharedTat {
    hot: Arc<Hot>,
    /// Which of `hot.tat`.
    bucket: usize,
}

impl SharedTat {
    fn word(&self) -> &AtomicU64 {
        &self.hot.tat[self.bucket]
    }
}

/// A limiter's atomics that every request changes, together on one cache line: under
/// contention a request then waits for one line, not five.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Hot {
    /// The GCRA states of the requests bucket and the tokens bucket.
    tat: [AtomicU64; 2],
    /// Requests admitted and not finished.
    in_flight: AtomicU32,
    /// No request before this tick (0: no hold).
    held_until: AtomicU64,
    /// The tokens of a typical request: a moving average of reconciled usage (0: none yet).
    typical_tokens: AtomicU64,
}

/// The requests bucket's and the tokens bucket's places in [`Hot::tat`].
const RPM: usize = 0;
const TPM: usize = 1;

impl StateStore for SharedTat {
    type Key = NotKeyed;

    fn measure_and_replace<T, F, E>(&self, _key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // As governor's in-memory state: decide on the value read, store if still current.
        let word = self.word();
        let mut prev = word.load(Ordering::Acquire);
        loop {
            let (out, next) = f(NonZeroU64::new(prev).map(|n| Nanos::from(n.get())))?;
            match word.compare_exchange_weak(
                prev,
                next.as_u64(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(out),
                Err(current) => prev = current,
            }
        }
    }
}

/// One per-minute bucket.
struct Bucket {
    gcra: RateLimiter<NotKeyed, SharedTat, TokioClock, NoOpMiddleware<Tick>>,
    tat: SharedTat,
    /// Nanoseconds one cell takes to refill.
    cell: u64,
    /// The bucket's size, in cells.
    burst: NonZeroU32,
}

impl Bucket {
    fn per_minute(n: NonZeroU32, clock: TokioClock, hot: &Arc<Hot>, bucket: usize) -> Bucket {
        let quota = Quota::per_minute(n);
        let tat = SharedTat {
            hot: Arc::clone(hot),
            bucket,
        };
        Bucket {
            // Governor measures from its first clock reading, set here to the clock's base:
            // `charge` relies on it.
            gcra: {
                NOW_TICK.set(0);
                RateLimiter::new(quota, tat.clone(), clock)
            },
            tat,
            cell: u64::try_from(quota.replenish_interval().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: quota.burst_size(),
        }
    }

    /// Gives back `n` cells taken by a check that another check then undid.
    fn give_back(&self, n: u32) {
        let back = self.cell.saturating_mul(u64::from(n));
        // A state at or before now means a full bucket, whatever its value, so saturating
        // at 0 (fresh) changes nothing.
        let _ = self
            .tat
            .word()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(back))
            });
    }

    /// Takes `n` cells whether or not they are there (the bucket goes into debt), booking
    /// it at most [`MAX_BOOKED_WINDOWS`] minutes ahead of `now`.
    fn charge(&self, n: u64, now: Tick) {
        let add = self.cell.saturating_mul(n);
        let window = self.cell.saturating_mul(u64::from(self.burst.get()));
        let ceiling = now
            .0
            .saturating_add(window.saturating_mul(MAX_BOOKED_WINDOWS));
        let _ = self
            .tat
            .word()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let from = tat.max(now.0);
                Some(from.saturating_add(add).min(ceiling).max(tat))
            });
    }
}

/// The limiter of one target: admits requests under its [`RateLimit`] and holds them while
/// the vendor says to wait. `Send + Sync`, shared behind an `Arc`; admission costs a few
/// atomic operations, no lock.
pub(crate) struct Limiter {
    limit: RateLimit,
    clock: TokioClock,
    rpm: Option<Bucket>,
    tpm: Option<Bucket>,
    /// The counters requests change (the concurrency slots are a counter rather than a
    /// semaphore: nothing waits on it, as a limited request asks again after
    /// [`CONCURRENCY_POLL`], and a semaphore's release takes a lock).
    hot: Arc<Hot>,
    /// How many requests may be in flight (`u32::MAX`: no limit).
    max_in_flight: u32,
    last_info: Mutex<Option<RateLimitInfo>>,
}

/// An admitted request's concurrency slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct LimitPermit<'a> {
    in_flight: &'a AtomicU32,
}

impl Drop for LimitPermit<'_> {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter for `limit`, with full buckets. A zero limit (refused by
    /// [`RateLimit::validate`]) counts as unset.
    pub fn new(limit: &RateLimit) -> Self {
        let clock = TokioClock::new(Instant::now());
        let hot = Arc::new(Hot::default());
        let bucket = |n: Option<u32>, which| {
            NonZeroU32::new(n?).map(|n| Bucket::per_minute(n, clock.clone(), &hot, which))
        };
        // Without a concurrency limit the counter still counts requests in flight.
        let max_in_flight = limit.concurrency.filter(|n| *n > 0).unwrap_or(u32::MAX);
        let (rpm, tpm) = (bucket(limit.rpm, RPM), bucket(limit.tpm, TPM));
        Limiter {
            limit: limit.clone(),
            clock,
            rpm,
            tpm,
            hot,
            max_in_flight,
            last_info: Mutex::new(None),
        }
    }

    /// The limit this limiter applies.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Admits one request estimated at `tokens` now, or says from when it is worth asking
    /// again.
    ///
    /// Nothing is taken from a limit when another refuses. A request estimated above the
    /// whole tokens-per-minute allowance is admitted when the token bucket is full (and
    /// charged in full, into debt), rather than refused for ever. The time returned for a
    /// full concurrency limit is only a poll interval ([`CONCURRENCY_POLL`]) away, since when
    /// a slot frees is not known; for the other limits it is when they would admit this
    /// request, unless other requests come first. `now` should be tokio's current time: the
    /// token buckets read the same clock.
    pub fn try_acquire(&self, tokens: u32, now: Instant) -> Result<LimitPermit<'_>, Instant> {
        let held = self.hot.held_until.load(Ordering::Acquire);
        if held > self.clock.set(now).0 {
            return Err(self.clock.instant(Tick(held)));
        }
        // First the slot: giving it back (dropping it) is exact.
        let max = self.max_in_flight;
        self.hot
            .in_flight
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| now + CONCURRENCY_POLL)?;
        let slot = LimitPermit {
            in_flight: &self.hot.in_flight,
        };
        if let Some(rpm) = &self.rpm
            && let Err(not_until) = rpm.gcra.check()
        {
            return Err(self.clock.instant(not_until.earliest_possible()));
        }
        if let Some(tpm) = &self.tpm
            && let Some(n) = NonZeroU32::new(tokens)
        {
            // More than a bucket needs a full bucket, and the rest is charged as debt.
            let fits = n.min(tpm.burst);
            let refused = match tpm.gcra.check_n(fits) {
                Ok(Ok(())) => None,
                Ok(Err(not_until)) => Some(self.clock.instant(not_until.earliest_possible())),
                // Cannot happen (`fits` is at most the bucket); a minute refills any bucket.
                Err(_) => Some(now + Duration::from_secs(60)),
            };
            if let Some(retry_at) = refused {
                if let Some(rpm) = &self.rpm {
                    rpm.give_back(1);
                }
                return Err(retry_at);
            }
            if n > fits {
                tpm.charge(u64::from(n.get() - fits.get()), self.clock.tick(now));
            }
        }
        Ok(slot)
    }

    /// Gives back the request and the `tokens` an admission took: a later limit refused the
    /// attempt, which is not sent. (Its concurrency slot goes back with its permit.)
    pub fn give_back(&self, tokens: u32) {
        if let Some(rpm) = &self.rpm {
            rpm.give_back(1);
        }
        if let Some(tpm) = &self.tpm {
            tpm.give_back(tokens);
        }
    }

    /// Takes in a vendor's rate-limit headers: no requests left holds the limiter until the
    /// requests reset; tokens left below a typical request (a moving average of reconciled
    /// usage), or none, hold it until the tokens reset. An allowance still full never holds:
    /// waiting cannot make a request fit that is larger than the whole allowance. The info
    /// is kept for [`status`](Self::status).
    pub fn observe(&self, info: &RateLimitInfo, now: Instant) {
        if info.remaining_requests == Some(0)
            && let Some(reset) = info.reset_requests
        {
            self.hold(now + reset);
        }
        if let (Some(left), Some(reset)) = (info.remaining_tokens, info.reset_tokens) {
            let typical = self.hot.typical_tokens.load(Ordering::Relaxed);
            let full = info.limit_tokens == Some(left);
            if left == 0 || (left < typical && !full) {
                self.hold(now + reset);
            }
        }
        *self.last_info.lock().unwrap_or_else(|e| e.into_inner()) = Some(*info);
    }

    /// No request until `until` (a 429's `Retry-After`, or another vendor signal). A hold
    /// only ever extends an earlier one.
    pub fn hold(&self, until: Instant) {
        self.hot
            .held_until
            .fetch_max(self.clock.tick(until).0, Ordering::AcqRel);
    }

    /// After the answer: charges the tokens used beyond the estimate to the token bucket
    /// (best effort: into debt if need be, never blocking). Tokens estimated but not used
    /// are not given back, as vendors that count an estimate at admission (OpenAI) do not
    /// either.
    pub fn reconcile(&self, estimated: u32, actual: u64, now: Instant) {
        if let Some(tpm) = &self.tpm {
            let excess = actual.saturating_sub(u64::from(estimated));
            if excess > 0 {
                tpm.charge(excess, self.clock.tick(now));
            }
        }
        // An average over about the last eight requests; a lost update under contention
        // only makes it a little staler.
        let old = self.hot.typical_tokens.load(Ordering::Relaxed);
        let typical = if old == 0 {
            actual
        } else {
            old.saturating_mul(7).saturating_add(actual) / 8
        };
        // Stored only when it moves: every request reads this line.
        if typical != old {
            self.hot.typical_tokens.store(typical, Ordering::Relaxed);
        }
    }

    /// The limiter's state at `now`.
    pub fn status(&self, now: Instant) -> LimiterStatus {
        let in_flight = self.hot.in_flight.load(Ordering::Relaxed);
        let held = self.hot.held_until.load(Ordering::Acquire);
        let held_for = self
            .clock
            .instant(Tick(held))
            .checked_duration_since(now)
            .filter(|d| held > 0 && !d.is_zero());
        LimiterStatus {
            in_flight,
            held_for,
            last_vendor_info: *self.last_info.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn limiter(limit: RateLimit) -> Limiter {
        assert!(limit.validate().is_ok(), "{limit:?}");
        Limiter::new(&limit)
    }

    fn admitted(l: &Limiter, tokens: u32) -> LimitPermit<'_> {
        match l.try_acquire(tokens, Instant::now()) {
            Ok(p) => p,
            Err(at) => panic!("refused until {:?} from now", at - Instant::now()),
        }
    }

    /// How long from now the limiter says to wait.
    fn refused(l: &Limiter, tokens: u32) -> Duration {
        let now = Instant::now();
        match l.try_acquire(tokens, now) {
            Ok(_) => panic!("admitted"),
            Err(at) => at.saturating_duration_since(now),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_admits_n_then_refuses_until_a_cell_refills() {
        let l = limiter(RateLimit::new().requests_per_minute(3));
        for _ in 0..3 {
            drop(admitted(&l, 0));
        }
        // One cell refills every 20 s.
        assert_eq!(refused(&l, 0), Duration::from_secs(20));
        tokio::time::advance(Duration::from_secs(19)).await;
        assert_eq!(refused(&l, 0), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(admitted(&l, 0));
        assert_eq!(refused(&l, 0), Duration::from_secs(20));
        // A whole minute refills the whole bucket.
        tokio::time::advance(MIN).await;
        for _ in 0..3 {
            drop(admitted(&l, 0));
        }
        assert!(l.try_acquire(0, Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_admits_on_estimates_and_charges_the_excess() {
        let l = limiter(RateLimit::new().tokens_per_minute(6000));
        let p = admitted(&l, 4000);
        drop(p);
        // 2000 left: 3000 more needs 1000 to refill, at 100 per second.
        assert_eq!(refused(&l, 3000), Duration::from_secs(10));
        drop(admitted(&l, 2000));
        // The first request used 5000, not 4000: the excess goes into debt.
        l.reconcile(4000, 5000, Instant::now());
        assert_eq!(refused(&l, 1), Duration::from_millis(10_010));
        // Using less than estimated gives nothing back.
        l.reconcile(2000, 10, Instant::now());
        assert_eq!(refused(&l, 1), Duration::from_millis(10_010));
        tokio::time::advance(Duration::from_millis(10_010)).await;
        drop(admitted(&l, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn debt_is_bounded() {
        let l = limiter(RateLimit::new().tokens_per_minute(600));
        drop(admitted(&l, 600));
        l.reconcile(600, 1_000_000, Instant::now());
        // At most two minutes booked ahead, so a token is free again a minute and a cell on.
        assert_eq!(refused(&l, 1), MIN + Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_larger_than_the_bucket_waits_for_a_full_bucket() {
        let l = limiter(RateLimit::new().tokens_per_minute(1000));
        drop(admitted(&l, 10));
        // Not refused for ever: admitted once the bucket is full again.
        assert_eq!(refused(&l, 5000), Duration::from_millis(600));
        tokio::time::advance(Duration::from_millis(600)).await;
        drop(admitted(&l, 5000));
        // Charged in full: 4000 of debt on an empty bucket, capped at two minutes booked.
        assert_eq!(refused(&l, 1), MIN + Duration::from_millis(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_takes_nothing_from_the_other_limits() {
        let l = limiter(
            RateLimit::new()
                .requests_per_minute(2)
                .tokens_per_minute(100),
        );
        drop(admitted(&l, 100));
        // TPM refuses: the request cell taken for it is given back.
        for _ in 0..5 {
            assert!(l.try_acquire(100, Instant::now()).is_err());
        }
        drop(admitted(&l, 0));
        assert_eq!(refused(&l, 0), Duration::from_secs(30));
        // Concurrency refuses: no request or token cell is taken.
        let l = limiter(
            RateLimit::new()
                .requests_per_minute(2)
                .tokens_per_minute(100)
                .max_concurrent(1),
        );
        let held = admitted(&l, 50);
        for _ in 0..5 {
            assert_eq!(refused(&l, 50), CONCURRENCY_POLL);
        }
        drop(held);
        drop(admitted(&l, 50));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_slots_come_back_when_permits_drop() {
        let l = limiter(RateLimit::new().max_concurrent(2));
        let a = admitted(&l, 0);
        let b = admitted(&l, 0);
        assert_eq!(l.status(Instant::now()).in_flight, 2);
        assert_eq!(refused(&l, 0), CONCURRENCY_POLL);
        drop(a);
        assert_eq!(l.status(Instant::now()).in_flight, 1);
        let c = admitted(&l, 0);
        drop((b, c));
        assert_eq!(l.status(Instant::now()).in_flight, 0);
        // Without a concurrency limit, requests in flight are still counted.
        let l = limiter(RateLimit::new().requests_per_minute(10));
        let p = admitted(&l, 0);
        assert_eq!(l.status(Instant::now()).in_flight, 1);
        drop(p);
        assert_eq!(l.status(Instant::now()).in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn vendor_headers_hold_the_limiter() {
        let l = limiter(RateLimit::new().requests_per_minute(100));
        let info = RateLimitInfo {
            limit_requests: Some(50),
            remaining_requests: Some(0),
            reset_requests: Some(Duration::from_secs(7)),
            ..RateLimitInfo::default()
        };
        l.observe(&info, Instant::now());
        assert_eq!(refused(&l, 0), Duration::from_secs(7));
        let status = l.status(Instant::now());
        assert_eq!(status.held_for, Some(Duration::from_secs(7)));
        assert_eq!(status.last_vendor_info, Some(info));
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(l.status(Instant::now()).held_for, None);
        drop(admitted(&l, 0));
        // Requests left: no hold, whatever the reset.
        l.observe(
            &RateLimitInfo {
                remaining_requests: Some(1),
                reset_requests: Some(MIN),
                ..RateLimitInfo::default()
            },
            Instant::now(),
        );
        drop(admitted(&l, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn few_tokens_left_hold_until_the_tokens_reset() {
        let l = limiter(RateLimit::new().max_concurrent(4));
        let tokens = |left: u64, limit: u64| RateLimitInfo {
            limit_tokens: Some(limit),
            remaining_tokens: Some(left),
            reset_tokens: Some(Duration::from_secs(3)),
            ..RateLimitInfo::default()
        };
        // Nothing known of a typical request yet: only none left holds.
        l.observe(&tokens(10, 1000), Instant::now());
        drop(admitted(&l, 0));
        l.reconcile(0, 500, Instant::now());
        l.observe(&tokens(600, 1000), Instant::now());
        drop(admitted(&l, 0));
        l.observe(&tokens(400, 1000), Instant::now());
        assert_eq!(refused(&l, 0), Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(3)).await;
        // A full allowance smaller than a typical request does not hold.
        l.observe(&tokens(300, 300), Instant::now());
        drop(admitted(&l, 0));
        l.observe(&tokens(0, 300), Instant::now());
        assert_eq!(refused(&l, 0), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_and_holds_only_extend() {
        let l = limiter(RateLimit::new().requests_per_minute(100));
        let now = Instant::now();
        l.hold(now + Duration::from_secs(5));
        l.hold(now + Duration::from_secs(2));
        assert_eq!(refused(&l, 0), Duration::from_secs(5));
        // A hold in the past does nothing.
        tokio::time::advance(Duration::from_secs(5)).await;
        l.hold(now);
        drop(admitted(&l, 0));
        assert_eq!(
            l.status(Instant::now()),
            LimiterStatus {
                in_flight: 0,
                held_for: None,
                last_vendor_info: None
            }
        );
    }

    #[test]
    fn builder_getters_and_validation() {
        let l = RateLimit::new();
        assert_eq!(l, RateLimit::default());
        assert_eq!(l.when_limited(), WhenLimited::FailOver);
        assert_eq!((l.rpm(), l.tpm(), l.concurrency()), (None, None, None));
        assert_eq!(l.validate().map_err(|e| e.kind()), Err(ErrorKind::Config));
        let l = RateLimit::new()
            .requests_per_minute(1)
            .tokens_per_minute(2)
            .max_concurrent(3)
            .wait_up_to(Duration::from_secs(4));
        assert_eq!(
            (l.rpm(), l.tpm(), l.concurrency()),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(l.when_limited(), WhenLimited::Wait(Duration::from_secs(4)));
        assert_eq!(l.clone().fail_over().when_limited(), WhenLimited::FailOver);
        assert!(l.validate().is_ok());
        for bad in [
            RateLimit::new().requests_per_minute(0),
            RateLimit::new().tokens_per_minute(0).max_concurrent(1),
            RateLimit::new().max_concurrent(0),
            RateLimit::new()
                .requests_per_minute(1)
                .wait_up_to(Duration::ZERO),
        ] {
            let e = bad.validate().err();
            assert_eq!(
                e.as_ref().map(Error::kind),
                Some(ErrorKind::Config),
                "{bad:?}"
            );
        }
        // A zero limit that slipped past validation limits nothing.
        let zero = RateLimit::new().requests_per_minute(0).max_concurrent(0);
        let l = Limiter::new(&zero);
        assert_eq!(l.limit(), &zero);
        assert!(l.try_acquire(5, Instant::now()).is_ok());
    }

    #[test]
    fn shared_across_threads() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Limiter>();
        is_send_sync::<LimitPermit>();
    }
}
