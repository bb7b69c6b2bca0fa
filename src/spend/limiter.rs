//! Client-side rate limits for one target or key: requests per minute, tokens per minute and
//! requests in flight, plus holds when the vendor says to wait (its rate-limit headers, a
//! 429's `Retry-After`).
//!
//! [`RateLimit`] is the configuration. The relay keeps one crate-internal `Limiter` per
//! limited target, asks it before each attempt, and tells it what the vendor answered. The
//! per-minute limits are GCRA token buckets from [`governor`], on tokio's clock, so tests
//! with a paused clock drive them. The requests bucket holds [`RateLimit::burst`] cells (1
//! unless set: see there for why, and for the most requests any 60 s window can see); the
//! tokens bucket holds a minute's tokens. Both refill continuously.

use std::num::{NonZeroU32, NonZeroU64};
use std::ops::Add;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use tokio::time::Instant;

pub use super::fleet_limits::WhenStoreFails;
use super::fleet_limits::{FleetQuota, FleetSignals, FleetTokens, Leased};
use crate::types::RateLimitInfo;
use crate::types::{Error, ErrorKind, LimitedBy};

/// `now + d`, saturating a century ahead instead of overflowing (a vendor's reset time or a
/// configured wait may be anything).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// A client-side rate limit: any of requests per minute, tokens per minute and requests in
/// flight, and what the relay does when a request would exceed it ([`WhenLimited`]).
///
/// ```
/// use std::time::Duration;
/// use polyrelay::spend::limiter::{RateLimit, WhenLimited};
///
/// let limit = RateLimit::new()
///     .requests_per_minute(500)
///     .burst(8)
///     .tokens_per_minute(200_000)
///     .max_concurrent(16)
///     .wait_up_to(Duration::from_secs(2));
/// assert!(limit.validate().is_ok());
/// assert_eq!(limit.request_burst(), Some(8));
/// assert_eq!(limit.when_limited(), WhenLimited::Wait(Duration::from_secs(2)));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    rpm: Option<u32>,
    /// The period `rpm` counts over (a minute unless [`RateLimit::requests_per`] set another).
    request_period: Duration,
    when_store_fails: WhenStoreFails,
    /// The requests bucket's size, when set ([`DEFAULT_BURST`] otherwise).
    burst: Option<u32>,
    tpm: Option<u32>,
    concurrency: Option<u32>,
    when_limited: WhenLimited,
}

/// The requests bucket's size when [`RateLimit::burst`] is not set: 1 cell, so that no 60 s
/// window, the first included, sees more requests than the per-minute limit.
pub const DEFAULT_BURST: u32 = 1;

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

/// A minute, the default period of a requests limit.
const MINUTE: Duration = Duration::from_secs(60);

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
            request_period: MINUTE,
            when_store_fails: WhenStoreFails::EvenShare,
            burst: None,
            tpm: None,
            concurrency: None,
            when_limited: WhenLimited::FailOver,
        }
    }

    /// At most `n` requests per minute, on average: a bucket of [`burst`](Self::burst)
    /// cells (default [`DEFAULT_BURST`], 1) that starts full and gains one every `60/n` s.
    pub fn requests_per_minute(mut self, n: u32) -> Self {
        self.rpm = Some(n);
        self.request_period = MINUTE;
        self
    }

    /// At most `n` requests per `period` (from 1 s to 1 h), on average: as
    /// [`requests_per_minute`](Self::requests_per_minute), over another period (`n / 60 s`
    /// is `requests_per_minute(n)`).
    pub fn requests_per(mut self, n: u32, period: Duration) -> Self {
        self.rpm = Some(n);
        self.request_period = period;
        self
    }

    /// With a fleet store ([`RelayBuilder::store`](crate::RelayBuilder::store)) the
    /// requests limit is the fleet's, and this says what it becomes while the store fails.
    /// Default: [`WhenStoreFails::EvenShare`].
    pub fn when_store_fails(mut self, fallback: WhenStoreFails) -> Self {
        self.when_store_fails = fallback;
        self
    }

    /// How many requests may go at once after a quiet spell: the requests bucket holds `n`
    /// cells (from 1 to [`requests_per_minute`](Self::requests_per_minute)). Default:
    /// [`DEFAULT_BURST`], 1.
    ///
    /// The bucket starts full and gains a cell every `60/rpm` s, so any 60 s window
    /// `[t, t + 60 s)`, the first after a cold start included, sees at most
    /// `rpm + burst - 1` requests: the `burst` cells at its start, then one per interval,
    /// the last of `rpm - 1` intervals ending inside the window. The default of 1 keeps
    /// every window within the limit, as vendors enforce it:
    ///
    /// - OpenAI documents that a per-minute limit may be enforced over shorter periods (60
    ///   requests a minute as one a second); a vendor that counts fixed or sliding minutes
    ///   refuses any minute over the limit. A bucket of a whole minute (`burst = rpm`, the
    ///   relay's behaviour before this setting) sends up to `2 * rpm - 1` in the first
    ///   minute and bursts that a quantised limit refuses.
    /// - Anthropic refills its bucket continuously: a steady one-per-interval pace is never
    ///   refused, whatever that bucket's size.
    ///
    /// With burst 1 a request within `60/rpm` s of the last waits or fails over
    /// ([`WhenLimited`]). Raise it where the vendor allows bursts (e.g. `rpm / 60`, a
    /// second's worth, as OpenAI quantises), accepting up to `burst - 1` requests over the
    /// limit in some 60 s window. The relay counts when it sends: requests that reach the
    /// vendor closer together (network jitter), or several relays sharing one key, can
    /// still exceed it, so set a limit a little under the vendor's and divide it between
    /// replicas. The tokens-per-minute bucket always holds a minute's tokens (up to about
    /// twice the limit in the first 60 s).
    pub fn burst(mut self, n: u32) -> Self {
        self.burst = Some(n);
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

    /// The requests limit, if set: requests per [`request_period`](Self::request_period).
    pub fn rpm(&self) -> Option<u32> {
        self.rpm
    }

    /// The period the requests limit counts over. Default: a minute.
    pub fn request_period(&self) -> Duration {
        self.request_period
    }

    /// What a fleet's requests limit becomes while the store fails.
    pub fn store_fallback(&self) -> WhenStoreFails {
        self.when_store_fails
    }

    /// The requests bucket's size: the [`burst`](Self::burst) set, else [`DEFAULT_BURST`];
    /// `None` without a requests-per-minute limit.
    pub fn request_burst(&self) -> Option<u32> {
        self.rpm.map(|_| self.burst.unwrap_or(DEFAULT_BURST))
    }

    /// The tokens-per-minute limit, if set.
    pub fn tpm(&self) -> Option<u32> {
        self.tpm
    }

    /// The limit on requests in flight, if set.
    pub fn concurrency(&self) -> Option<u32> {
        self.concurrency
    }

    /// Checks the limit: a [`Config`](ErrorKind::Config) error when a limit or the burst is
    /// zero, when a burst is set without a requests-per-minute limit or above it, when the
    /// wait is zero, or when no limit is set at all.
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
        if let Some(problem) = self.burst_problem() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("rate limit: {problem}"),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.request_period) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "rate limit: the requests period {:?} must be from 1 s to 1 h",
                    self.request_period
                ),
            ));
        }
        if let WhenStoreFails::Share(f) = self.when_store_fails
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("rate limit: when_store_fails share {f} must be above 0 and at most 1"),
            ));
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

impl RateLimit {
    /// What is wrong with the burst set, if anything: 0, no requests-per-minute limit, or
    /// more than it.
    pub(crate) fn burst_problem(&self) -> Option<String> {
        let burst = self.burst?;
        match self.rpm {
            _ if burst == 0 => Some("burst is 0; it must be at least 1".to_owned()),
            None => {
                Some("burst is the requests bucket's size; set requests_per_minute too".to_owned())
            }
            Some(rpm) if burst > rpm => Some(format!(
                "burst {burst} is more than requests_per_minute {rpm}; it must be from 1 to {rpm}"
            )),
            Some(_) => None,
        }
    }
}

/// A limiter's state, as the relay reports it. Serialized with its durations as whole
/// milliseconds, rounded up (`held_for_ms`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimiterStatus {
    /// The requests-per-minute bucket; `None` without that limit.
    pub requests: Option<BucketStatus>,
    /// The tokens-per-minute bucket; `None` without that limit.
    pub tokens: Option<BucketStatus>,
    /// The limit on requests in flight; `None` without one.
    pub max_concurrent: Option<u32>,
    /// Requests admitted and not finished.
    pub in_flight: u32,
    /// How much longer no request is sent because the vendor said to wait (its headers or a
    /// 429's `Retry-After`); `None` when not held.
    #[serde(rename = "held_for_ms", serialize_with = "millis_some")]
    pub held_for: Option<Duration>,
    /// What the vendor's rate-limit headers said last.
    pub last_vendor_info: Option<RateLimitInfo>,
    /// With a fleet store, the requests limit is the fleet's and `requests` (this replica's
    /// own bucket) does not apply: the slots of the fleet's schedule this replica holds now.
    /// `None` when the requests limit is not shared.
    pub fleet_slots: Option<u32>,
    /// With a fleet store, the tokens limit is the fleet's and `tokens` does not apply: the
    /// tokens this replica holds on lease now (below zero: spent beyond its lease, repaid by
    /// the next). `None` when the tokens limit is not shared.
    pub fleet_tokens: Option<i64>,
}

/// A per-minute bucket's state (requests or tokens). Serialized with `next_cell_in` as
/// `next_cell_in_ms`, whole milliseconds rounded up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BucketStatus {
    /// The limit: cells a minute.
    pub per_minute: u32,
    /// How many cells the bucket holds ([`RateLimit::burst`] for requests; a minute's
    /// tokens).
    pub burst: u32,
    /// Cells left now: requests (or tokens) that would be admitted at once.
    pub remaining: u32,
    /// When the bucket gains its next cell (the next request fits, when none is left);
    /// `None` when full.
    #[serde(rename = "next_cell_in_ms", serialize_with = "millis_some")]
    pub next_cell_in: Option<Duration>,
}

/// `d` as whole milliseconds, rounded up.
fn whole_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Serializes a duration as whole milliseconds, rounded up.
pub(crate) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(whole_ms(*d))
}

/// Serializes an optional duration as whole milliseconds, rounded up (`null` for `None`).
pub(crate) fn millis_some<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    d.map(whole_ms).serialize(s)
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
        later(self.base, Duration::from_nanos(tick.0))
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
    /// The limit: cells a period.
    per_period: NonZeroU32,
    period: Duration,
    /// The bucket's size, in cells.
    burst: NonZeroU32,
}

impl Bucket {
    /// A bucket of `burst` cells (at most `n`) that gains `n` a minute.
    fn per_period(
        n: NonZeroU32,
        period: Duration,
        burst: NonZeroU32,
        clock: TokioClock,
        hot: &Arc<Hot>,
        bucket: usize,
    ) -> Bucket {
        let quota = Quota::with_period(period / n.get())
            .unwrap_or_else(|| Quota::per_minute(n))
            .allow_burst(burst.min(n));
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
            per_period: n,
            period,
            burst: quota.burst_size(),
        }
    }

    /// The bucket at `now`. Governor admits a cell while the state is at most `burst - 1`
    /// cells ahead of now, so `ceil(ahead / cell)` cells are in use (more, in debt).
    fn status(&self, now: Tick) -> BucketStatus {
        let ahead = self
            .tat
            .word()
            .load(Ordering::Acquire)
            .saturating_sub(now.0);
        let burst = u64::from(self.burst.get());
        let used = ahead.div_ceil(self.cell);
        // The next cell that counts: the one that brings `remaining` from `burst - used` (or
        // from 0, in debt) up by one.
        let next = (ahead > 0).then(|| {
            let keep = used.min(burst).saturating_sub(1);
            Duration::from_nanos(ahead.saturating_sub(keep.saturating_mul(self.cell)))
        });
        // The rate as a per-minute figure (the period is a minute unless set otherwise).
        let per_minute = u64::from(self.per_period.get()).saturating_mul(60_000)
            / u64::try_from(self.period.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
        BucketStatus {
            per_minute: u32::try_from(per_minute).unwrap_or(u32::MAX),
            burst: self.burst.get(),
            remaining: u32::try_from(burst.saturating_sub(used)).unwrap_or(u32::MAX),
            next_cell_in: next,
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
        let window = self.cell.saturating_mul(u64::from(self.per_period.get()));
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
    /// With a fleet store: the requests limit is the fleet's, taken from this replica's
    /// lease of slots (set by the relay's sync task the first time it sees the limiter).
    fleet: OnceLock<Arc<FleetQuota>>,
    /// With a fleet store: the tokens limit is the fleet's, taken from this replica's credit.
    fleet_tokens: OnceLock<Arc<FleetTokens>>,
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
        let bucket = |n: Option<u32>, period, burst: Option<u32>, which| {
            let n = NonZeroU32::new(n?)?;
            let burst = burst.and_then(NonZeroU32::new).unwrap_or(n);
            Some(Bucket::per_period(
                n,
                period,
                burst,
                clock.clone(),
                &hot,
                which,
            ))
        };
        // Without a concurrency limit the counter still counts requests in flight.
        let max_in_flight = limit.concurrency.filter(|n| *n > 0).unwrap_or(u32::MAX);
        let (rpm, tpm) = (
            bucket(limit.rpm, limit.request_period, limit.request_burst(), RPM),
            bucket(limit.tpm, MINUTE, None, TPM),
        );
        Limiter {
            limit: limit.clone(),
            clock,
            rpm,
            tpm,
            hot,
            max_in_flight,
            last_info: Mutex::new(None),
            fleet: OnceLock::new(),
            fleet_tokens: OnceLock::new(),
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
    /// request, unless other requests come first; with it, which bucket refused. `now` should
    /// be tokio's current time: the token buckets read the same clock.
    pub fn try_acquire(
        &self,
        tokens: u32,
        now: Instant,
    ) -> Result<LimitPermit<'_>, (Instant, LimitedBy)> {
        let held = self.hot.held_until.load(Ordering::Acquire);
        if held > self.clock.set(now).0 {
            return Err((self.clock.instant(Tick(held)), LimitedBy::VendorHold));
        }
        // First the slot: giving it back (dropping it) is exact.
        let max = self.max_in_flight;
        self.hot
            .in_flight
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| (later(now, CONCURRENCY_POLL), LimitedBy::Concurrency))?;
        let slot = LimitPermit {
            in_flight: &self.hot.in_flight,
        };
        if let Some(rpm) = &self.rpm {
            let refused = match self.fleet.get() {
                Some(fleet) => fleet.try_take(now).err().map(|(at, dry)| {
                    (
                        at,
                        if dry {
                            LimitedBy::FleetLease
                        } else {
                            LimitedBy::Requests
                        },
                    )
                }),
                None => rpm.gcra.check().err().map(|not_until| {
                    let at = self.clock.instant(not_until.earliest_possible());
                    (at, LimitedBy::Requests)
                }),
            };
            if let Some(refused) = refused {
                return Err(refused);
            }
        }
        if let Some(fleet) = self.fleet_tokens.get()
            && tokens > 0
        {
            if let Err(at) = fleet.try_take(tokens, now) {
                if let (Some(rpm), None) = (&self.rpm, self.fleet.get()) {
                    rpm.give_back(1);
                }
                return Err((at, LimitedBy::Tokens));
            }
        } else if let Some(tpm) = &self.tpm
            && let Some(n) = NonZeroU32::new(tokens)
        {
            // More than a bucket needs a full bucket, and the rest is charged as debt.
            let fits = n.min(tpm.burst);
            let refused = match tpm.gcra.check_n(fits) {
                Ok(Ok(())) => None,
                Ok(Err(not_until)) => Some(self.clock.instant(not_until.earliest_possible())),
                // Cannot happen (`fits` is at most the bucket); a minute refills any bucket.
                Err(_) => Some(later(now, Duration::from_secs(60))),
            };
            if let Some(retry_at) = refused {
                if let Some(rpm) = &self.rpm {
                    rpm.give_back(1);
                }
                return Err((retry_at, LimitedBy::Tokens));
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
        // A fleet slot is not given back: it lapses (giving it back later would let two of
        // the fleet's requests closer than its schedule).
        if let Some(rpm) = &self.rpm
            && self.fleet.get().is_none()
        {
            rpm.give_back(1);
        }
        if let Some(fleet) = self.fleet_tokens.get() {
            fleet.charge(-i64::from(tokens));
        } else if let Some(tpm) = &self.tpm {
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
            self.hold(later(now, reset));
        }
        if let (Some(left), Some(reset)) = (info.remaining_tokens, info.reset_tokens) {
            let typical = self.hot.typical_tokens.load(Ordering::Relaxed);
            let full = info.limit_tokens == Some(left);
            if left == 0 || (left < typical && !full) {
                self.hold(later(now, reset));
            }
        }
        *self.last_info.lock().unwrap_or_else(|e| e.into_inner()) = Some(*info);
    }

    /// No request until `until` (a 429's `Retry-After`, or another vendor signal). A hold
    /// only ever extends an earlier one.
    pub fn hold(&self, until: Instant) {
        self.hold_here(until);
        if let Some(fleet) = self.fleet.get() {
            fleet.publish_hold(until.saturating_duration_since(Instant::now()));
        }
    }

    /// [`hold`](Self::hold) on this replica only (the fleet's hold, read from the store).
    pub fn hold_here(&self, until: Instant) {
        self.hot
            .held_until
            .fetch_max(self.clock.tick(until).0, Ordering::AcqRel);
    }

    /// Shares this limiter's requests and tokens limits with the fleet under the name
    /// `bucket` (once). Returns their shared forms.
    pub fn attach_fleet(&self, bucket: &str, signals: &FleetSignals) -> Vec<Arc<dyn Leased>> {
        let mut shared: Vec<Arc<dyn Leased>> = Vec::new();
        if let Some(n) = self.limit.rpm {
            let quota = self.fleet.get_or_init(|| {
                Arc::new(FleetQuota::new(
                    format!("{bucket}:requests"),
                    n,
                    self.limit.request_period,
                    self.limit.when_store_fails,
                    signals.clone(),
                ))
            });
            shared.push(quota.clone());
        }
        if let Some(n) = self.limit.tpm {
            let tokens = self.fleet_tokens.get_or_init(|| {
                Arc::new(FleetTokens::new(
                    format!("{bucket}:tokens"),
                    n,
                    MINUTE,
                    self.limit.when_store_fails,
                    signals.clone(),
                ))
            });
            shared.push(tokens.clone());
        }
        shared
    }

    /// After the answer: charges the tokens used beyond the estimate to the token bucket
    /// (best effort: into debt if need be, never blocking). Tokens estimated but not used
    /// are not given back, as vendors that count an estimate at admission (OpenAI) do not
    /// either.
    pub fn reconcile(&self, estimated: u32, actual: u64, now: Instant) {
        let excess = actual.saturating_sub(u64::from(estimated));
        if let Some(fleet) = self.fleet_tokens.get() {
            fleet.charge(i64::try_from(excess).unwrap_or(i64::MAX));
        } else if let Some(tpm) = &self.tpm
            && excess > 0
        {
            tpm.charge(excess, self.clock.tick(now));
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
        let tick = self.clock.tick(now);
        LimiterStatus {
            requests: self.rpm.as_ref().map(|b| b.status(tick)),
            tokens: self.tpm.as_ref().map(|b| b.status(tick)),
            max_concurrent: (self.max_in_flight < u32::MAX).then_some(self.max_in_flight),
            in_flight,
            held_for,
            last_vendor_info: *self.last_info.lock().unwrap_or_else(|e| e.into_inner()),
            fleet_slots: self.fleet.get().map(|f| f.queued()),
            fleet_tokens: self.fleet_tokens.get().map(|f| f.credit()),
        }
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
