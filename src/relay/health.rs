//! Health per target: a circuit breaker (consecutive failures or an error rate over a sliding
//! window open it; after a cooldown one probe at a time may close it), a peak-EWMA latency,
//! the attempts in flight and a retry budget. One state per target (provider + model), shared
//! by every route and request-scoped chain; no lock is held across an await.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::duration::saturating_add;
use super::duration::{self, check_span};
use crate::store::{BreakerReport, FleetBreaker};
use crate::types::{BreakerState, TargetId};
use crate::types::{Error, ErrorKind};

/// When a target's circuit breaker opens and how it recovers.
///
/// Defaults: opens after 5 consecutive failures, or when at least half of at least 10
/// attempts in the last 30 s failed; stays open 5 s (or as long as a 429/503/529's
/// `Retry-After` says, up to 5 min), then lets one probe through at a time. What says nothing
/// about the target's health never counts: invalid requests, context length, content filter,
/// attempts the relay or the caller cancelled.
///
/// Checked when the relay is built ([`validate`](Self::validate)): a policy that cannot
/// work (no failure needed to open, an error rate outside 0–1, a zero or day-long cooldown)
/// is a `Config` error, from code and from a file alike.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker (at least 1). Default 5.
    pub consecutive_failures: u32,
    /// Share of failed attempts in the window that opens it, from 0 to 1. Default 0.5.
    pub error_rate: f64,
    /// Attempts the window must hold before the error rate counts. Default 10.
    pub min_requests: u32,
    /// The sliding window for the error rate, 1 ms to 24 h. Default 30 s.
    #[serde(with = "duration::req")]
    pub window: Duration,
    /// How long an open breaker stays open before a probe, 1 ms to 24 h. Default 5 s.
    #[serde(with = "duration::req")]
    pub cooldown: Duration,
    /// Longest a vendor's `Retry-After` keeps it open, 1 ms to 24 h. Default 5 min.
    #[serde(with = "duration::req")]
    pub max_open: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(5),
            max_open: Duration::from_secs(300),
        }
    }
}

impl BreakerPolicy {
    /// A breaker that never opens (no run of failures is long enough, and the error rate
    /// never has enough attempts to count).
    pub fn disabled() -> Self {
        BreakerPolicy {
            consecutive_failures: u32::MAX,
            error_rate: 1.0,
            min_requests: u32::MAX,
            ..BreakerPolicy::default()
        }
    }

    /// Sets the consecutive failures that open it. 0 is raised to 1 (every failure opens
    /// it). Default 5.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n.max(1);
        self
    }

    /// Sets the error rate and the attempts needed in the window. The rate is a share from
    /// 0 to 1; anything else (NaN, negative, over 1) makes the relay's build fail with a
    /// `Config` error. Default 0.5 of at least 10 attempts.
    pub fn error_rate(mut self, rate: f64, min_requests: u32) -> Self {
        self.error_rate = rate;
        self.min_requests = min_requests;
        self
    }

    /// Sets the sliding window, 1 ms to 24 h (outside that, the relay's build fails with a
    /// `Config` error). Default 30 s.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets the cooldown before a probe, 1 ms to 24 h (outside that, the relay's build
    /// fails with a `Config` error). Default 5 s.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets the longest a vendor's `Retry-After` keeps the breaker open, 1 ms to 24 h
    /// (outside that, the relay's build fails with a `Config` error). Default 5 min.
    pub fn max_open(mut self, max_open: Duration) -> Self {
        self.max_open = max_open;
        self
    }

    /// Checks the policy: at least one consecutive failure, an error rate from 0 to 1, and a
    /// window, cooldown and `max_open` each from 1 ms to 24 h.
    /// [`RelayBuilder::build`](crate::RelayBuilder::build) calls it; a configuration file's
    /// `[breaker]` and `[breakers."provider/model"]` are checked the same way. The message
    /// starts with the field at fault.
    pub fn validate(&self) -> Result<(), Error> {
        let config = |m: String| Err(Error::new(ErrorKind::Config, m));
        if self.consecutive_failures == 0 {
            return config("consecutive_failures must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return config(format!(
                "error_rate must be a share from 0 to 1, not {}",
                self.error_rate
            ));
        }
        check_span("window", self.window)?;
        check_span("cooldown", self.cooldown)?;
        check_span("max_open", self.max_open)
    }
}

/// A share of retries a target may spend, as smithy-rs and Finagle bound them: every first
/// attempt deposits `ratio` of a retry, every retry withdraws one, and the balance starts at
/// (and is capped to) `burst`. Default: 20 % of requests, a burst of 10.
///
/// Checked when the relay is built ([`validate`](Self::validate)): `ratio` from 0 to 1,
/// `burst` a finite number ≥ 0.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryBudget {
    /// Retries allowed per first attempt, from 0 to 1. Default 0.2.
    pub ratio: f64,
    /// Retries that may be spent at once, finite and ≥ 0. Default 10.
    pub burst: f64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: 0.2,
            burst: 10.0,
        }
    }
}

impl RetryBudget {
    /// A budget of `ratio` retries per request (0 to 1), `burst` at once (finite, ≥ 0);
    /// other values make the relay's build fail with a `Config` error.
    pub fn new(ratio: f64, burst: f64) -> Self {
        RetryBudget { ratio, burst }
    }

    /// Checks the budget: `ratio` from 0 to 1 (more than one retry per request would let
    /// retries multiply the load the budget exists to bound), `burst` finite and ≥ 0.
    /// [`RelayBuilder::build`](crate::RelayBuilder::build) calls it, for code and files alike;
    /// the message starts with the field at fault.
    pub fn validate(&self) -> Result<(), Error> {
        let config = |m: String| Err(Error::new(ErrorKind::Config, m));
        if !(0.0..=1.0).contains(&self.ratio) {
            return config(format!(
                "ratio must be a share from 0 to 1, not {}",
                self.ratio
            ));
        }
        if !(self.burst.is_finite() && self.burst >= 0.0) {
            return config(format!(
                "burst must be a finite number ≥ 0, not {}",
                self.burst
            ));
        }
        Ok(())
    }
}

/// One target's health, as [`Relay::health`](crate::Relay::health) reports it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TargetHealth {
    /// The target.
    pub target: TargetId,
    /// The breaker's state.
    pub state: BreakerState,
    /// Failed share of the attempts in the window (0 when there were none).
    pub error_rate: f64,
    /// Attempts in the window.
    pub recent_attempts: u32,
    /// Consecutive failures so far.
    pub consecutive_failures: u32,
    /// The peak-EWMA latency of successful attempts, if any succeeded.
    pub latency: Option<Duration>,
    /// Attempts in flight now.
    pub in_flight: usize,
    /// When an open breaker lets its next probe through (from now), if open.
    pub next_probe_in: Option<Duration>,
    /// Its client-side rate limiter ([`RelayBuilder::rate_limit`](crate::RelayBuilder::rate_limit)),
    /// if it has one: attempts in flight, how long the vendor's headers hold it, what they
    /// said last.
    pub limiter: Option<crate::spend::limiter::LimiterStatus>,
    /// Its provider's own rate limiter (`rate_limit("provider", ..)`), shared by all the
    /// provider's targets, if it has one.
    pub provider_limiter: Option<crate::spend::limiter::LimiterStatus>,
    /// The keys of its provider's pool ([`RelayBuilder::key_pool`](crate::RelayBuilder::key_pool)),
    /// by index and fingerprint, with their state; empty without a pool.
    pub keys: Vec<crate::spend::keys::KeyHealth>,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Buckets of the sliding window.
const BUCKETS: usize = 10;

/// Decay time of the latency EWMA (Finagle's default).
const EWMA_DECAY: Duration = Duration::from_secs(10);

/// What a launched attempt is allowed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permit {
    /// An ordinary attempt.
    Normal,
    /// The one probe of a half-open breaker (or the last resort when every target is open):
    /// tried once, its outcome closes or reopens the breaker.
    Probe,
    /// The breaker is open (or its probe is taken): skip the target.
    Denied,
}

/// How an attempt ended, for health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success(Duration),
    Failure {
        kind: ErrorKind,
        retry_after: Option<Duration>,
    },
    /// Cancelled, or an error that says nothing about the target.
    Neutral,
}

impl Outcome {
    pub fn of_error(kind: ErrorKind, retry_after: Option<Duration>) -> Outcome {
        match kind {
            ErrorKind::InvalidRequest
            | ErrorKind::ContextLengthExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::Cancelled
            | ErrorKind::NoRoute
            | ErrorKind::Config
            | ErrorKind::ConstraintViolated => Outcome::Neutral,
            kind => Outcome::Failure { kind, retry_after },
        }
    }
}

#[derive(Debug)]
struct Window {
    /// Start of the bucket at `head`.
    head_start: Instant,
    head: usize,
    ok: [u32; BUCKETS],
    failed: [u32; BUCKETS],
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            head_start: now,
            head: 0,
            ok: [0; BUCKETS],
            failed: [0; BUCKETS],
        }
    }

    /// Moves the head to the bucket of `now`, clearing buckets that fell out.
    fn advance(&mut self, now: Instant, width: Duration) {
        let width = width.max(Duration::from_millis(1));
        let mut steps = 0;
        while now.saturating_duration_since(self.head_start) >= width && steps <= BUCKETS {
            self.head = (self.head + 1) % BUCKETS;
            self.ok[self.head] = 0;
            self.failed[self.head] = 0;
            self.head_start = saturating_add(self.head_start, width);
            steps += 1;
        }
        if steps > BUCKETS {
            // Idle for longer than the window: start afresh at now.
            self.head_start = now;
        }
    }

    fn totals(&self) -> (u32, u32) {
        let sum = |b: &[u32; BUCKETS]| b.iter().fold(0u32, |a, &n| a.saturating_add(n));
        (sum(&self.ok), sum(&self.failed))
    }
}

#[derive(Debug)]
struct Inner {
    open_until: Instant,
    probing: bool,
    consecutive: u32,
    last_failure: Option<Instant>,
    window: Window,
    ewma_secs: f64,
    ewma_at: Option<Instant>,
    retry_tokens: f64,
}

/// The health of one target.
#[derive(Debug)]
pub(crate) struct Health {
    /// Closed, open or half-open, readable without the lock (the common case is closed).
    state: AtomicU8,
    pub in_flight: AtomicUsize,
    /// The latency EWMA in seconds (f64 bits), written under the lock, read without it.
    ewma_bits: AtomicU64,
    policy: BreakerPolicy,
    budget: RetryBudget,
    inner: Mutex<Inner>,
    /// With a fleet store: what this replica has to tell the fleet about this breaker, and
    /// the fleet's probe lease (set by the relay's sync task the first time it sees the
    /// target; unset, the breaker is this replica's alone).
    fleet: OnceLock<Arc<FleetLink>>,
}

impl Health {
    /// Whether this state runs under `policy` and `budget` (a reload keeps it only then).
    pub fn has_policies(&self, policy: BreakerPolicy, budget: RetryBudget) -> bool {
        self.policy == policy && self.budget == budget
    }

    pub fn new(policy: BreakerPolicy, budget: RetryBudget) -> Self {
        let now = Instant::now();
        Health {
            state: AtomicU8::new(CLOSED),
            in_flight: AtomicUsize::new(0),
            ewma_bits: AtomicU64::new(0f64.to_bits()),
            policy,
            budget,
            inner: Mutex::new(Inner {
                open_until: now,
                probing: false,
                consecutive: 0,
                last_failure: None,
                window: Window::new(now),
                ewma_secs: 0.0,
                ewma_at: None,
                retry_tokens: budget.burst,
            }),
            fleet: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the breaker is open now (open, not yet due for a probe), and since when it
    /// failed last — for ordering a plan.
    pub fn is_open(&self, now: Instant) -> Option<Option<Instant>> {
        if self.state.load(Ordering::Relaxed) != OPEN {
            return None;
        }
        let g = self.lock();
        (now < g.open_until).then_some(g.last_failure)
    }

    /// The latency EWMA, read without the lock: zero before the first answer.
    pub fn latency(&self) -> Duration {
        let secs = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        Duration::try_from_secs_f64(secs).unwrap_or_default()
    }

    /// The peak-EWMA load score: latency × (in flight + 1); 0 before any success, so a new
    /// target gets traffic.
    pub fn load_score(&self) -> f64 {
        let ewma = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        ewma * (self.in_flight.load(Ordering::Relaxed) as f64 + 1.0)
    }

    /// May an attempt start now? `last_resort`: every target of the plan is open and this is
    /// the one that failed longest ago.
    pub fn permit(&self, now: Instant, last_resort: bool) -> Permit {
        if self.state.load(Ordering::Relaxed) == CLOSED {
            return Permit::Normal;
        }
        let mut g = self.lock();
        let fleet = self.fleet.get().filter(|f| f.store_up());
        match self.state.load(Ordering::Relaxed) {
            CLOSED => Permit::Normal,
            OPEN if now < g.open_until && (!last_resort || fleet.is_some()) => Permit::Denied,
            _ if g.probing => Permit::Denied,
            // In a fleet one probe goes for all the replicas: only the holder of the
            // fleet's lease sends it; the others ask for the lease and wait.
            _ if fleet.is_some_and(|f| !f.take_lease()) => Permit::Denied,
            _ => {
                g.probing = true;
                self.state.store(HALF_OPEN, Ordering::Relaxed);
                Permit::Probe
            }
        }
    }

    /// Takes one retry from the budget, if there is one.
    pub fn withdraw_retry(&self) -> bool {
        let mut g = self.lock();
        if g.retry_tokens >= 1.0 {
            g.retry_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Records how an attempt (allowed with `permit`) ended; a request's first attempt
    /// (`first`) also adds its share to the retry budget (one lock for both).
    /// Returns the breaker's new state when this changed it (opened or closed).
    pub fn record(
        &self,
        now: Instant,
        permit: Permit,
        outcome: Outcome,
        first: bool,
    ) -> Option<BreakerState> {
        let p = self.policy;
        let mut changed = None;
        let mut g = self.lock();
        if first {
            g.retry_tokens = (g.retry_tokens + self.budget.ratio).min(self.budget.burst);
        }
        let width = p.window / BUCKETS as u32;
        g.window.advance(now, width);
        if permit == Permit::Probe {
            g.probing = false;
        }
        match outcome {
            Outcome::Neutral => {
                if permit == Permit::Probe && self.state.load(Ordering::Relaxed) == HALF_OPEN {
                    // The probe told nothing: the next request may probe again.
                    g.open_until = now;
                }
            }
            Outcome::Success(latency) => {
                let h = g.window.head;
                g.window.ok[h] = g.window.ok[h].saturating_add(1);
                g.consecutive = 0;
                let sample = latency.as_secs_f64();
                g.ewma_secs = match g.ewma_at {
                    None => sample,
                    // Peak-sensitive: a slower sample is taken at once, faster ones decay in.
                    Some(_) if sample > g.ewma_secs => sample,
                    Some(at) => {
                        let w = (-now.saturating_duration_since(at).as_secs_f64()
                            / EWMA_DECAY.as_secs_f64())
                        .exp();
                        g.ewma_secs * w + sample * (1.0 - w)
                    }
                };
                g.ewma_at = Some(now);
                self.ewma_bits
                    .store(g.ewma_secs.to_bits(), Ordering::Relaxed);
                if self.state.load(Ordering::Relaxed) != CLOSED {
                    tracing::info!("circuit breaker closed: the target answered");
                    self.state.store(CLOSED, Ordering::Relaxed);
                    changed = Some(BreakerState::Closed);
                    if let Some(f) = self.fleet.get() {
                        f.report(Pending::Close);
                    }
                }
            }
            Outcome::Failure { kind, retry_after } => {
                let h = g.window.head;
                g.window.failed[h] = g.window.failed[h].saturating_add(1);
                g.consecutive = g.consecutive.saturating_add(1);
                g.last_failure = Some(now);
                let (ok, failed) = g.window.totals();
                let total = ok.saturating_add(failed);
                let rate_tripped = total >= p.min_requests
                    && total > 0
                    && f64::from(failed) / f64::from(total) >= p.error_rate;
                let hinted = match kind {
                    ErrorKind::RateLimited | ErrorKind::Overloaded => retry_after,
                    _ => None,
                };
                let state = self.state.load(Ordering::Relaxed);
                let trip = permit == Permit::Probe
                    || state != CLOSED
                    || g.consecutive >= p.consecutive_failures
                    || rate_tripped
                    || hinted.is_some();
                if trip {
                    let open_for = hinted.map_or(p.cooldown, |h| h.min(p.max_open));
                    // Saturating: a policy built without validation, or a long hint, must
                    // never panic here, on the request path.
                    let until = saturating_add(now, open_for);
                    // Never shorten an opening already in force (a later, shorter hint).
                    g.open_until = if state == OPEN {
                        g.open_until.max(until)
                    } else {
                        until
                    };
                    if state != OPEN {
                        tracing::warn!(
                            open_ms = open_for.as_millis() as u64,
                            consecutive = g.consecutive,
                            "circuit breaker opened"
                        );
                        changed = Some(BreakerState::Open);
                    }
                    self.state.store(OPEN, Ordering::Relaxed);
                    if let Some(f) = self.fleet.get() {
                        f.report(Pending::Open(g.open_until.saturating_duration_since(now)));
                    }
                }
            }
        }
        changed
    }

    /// Links this breaker to the fleet (once; later links are ignored).
    pub fn attach(&self, link: &Arc<FleetLink>) {
        let _ = self.fleet.set(link.clone());
    }

    /// What to tell the fleet now, with the link's generation to hand back to
    /// [`apply_fleet`](Self::apply_fleet); `None` when not linked.
    pub fn fleet_report(&self) -> Option<(BreakerReport, u64)> {
        let f = self.fleet.get()?;
        let generation = f.generation.load(Ordering::Acquire);
        let pending = *f.pending.lock().unwrap_or_else(|p| p.into_inner());
        let report = match pending {
            Some(Pending::Open(open_for)) => BreakerReport::Open {
                open_for: open_for.max(Duration::from_millis(1)),
            },
            Some(Pending::Close) => BreakerReport::Close,
            None if f.wants_probe.load(Ordering::Relaxed) => BreakerReport::WantProbe {
                lease_for: PROBE_LEASE,
            },
            None => BreakerReport::Read,
        };
        Some((report, generation))
    }

    /// Takes the fleet's view after an exchange that sent the report of `generation`: the
    /// report is delivered, and the fleet's state is this breaker's, unless it changed here
    /// meanwhile (the next exchange tells the fleet, then reads again).
    pub fn apply_fleet(&self, view: FleetBreaker, generation: u64, now: Instant) {
        let Some(f) = self.fleet.get() else {
            return;
        };
        let mut g = self.lock();
        if f.generation.load(Ordering::Acquire) != generation {
            return;
        }
        *f.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let state = self.state.load(Ordering::Relaxed);
        match view {
            FleetBreaker::Closed => {
                f.lease.store(false, Ordering::Relaxed);
                f.wants_probe.store(false, Ordering::Relaxed);
                if state != CLOSED && !g.probing {
                    tracing::info!("circuit breaker closed by the fleet");
                    g.consecutive = 0;
                    self.state.store(CLOSED, Ordering::Relaxed);
                }
            }
            FleetBreaker::Open { remaining } => {
                f.lease.store(false, Ordering::Relaxed);
                let until = saturating_add(now, remaining);
                if state == CLOSED {
                    tracing::warn!(
                        open_ms = remaining.as_millis() as u64,
                        "circuit breaker opened by the fleet"
                    );
                    g.last_failure = Some(now);
                    g.open_until = until;
                } else {
                    g.open_until = g.open_until.max(until);
                }
                if !g.probing {
                    self.state.store(OPEN, Ordering::Relaxed);
                }
            }
            FleetBreaker::HalfOpen { mine, remaining } => {
                if mine {
                    f.wants_probe.store(false, Ordering::Relaxed);
                }
                f.lease.store(mine, Ordering::Relaxed);
                if state == CLOSED {
                    g.last_failure = Some(now);
                }
                if !g.probing {
                    // Due for a probe: the lease holder sends it at its next request; the
                    // others wait for its outcome (or for the lease to lapse).
                    g.open_until = if mine {
                        now
                    } else {
                        saturating_add(now, remaining)
                    };
                    self.state.store(OPEN, Ordering::Relaxed);
                }
            }
        }
    }

    /// A snapshot for [`Relay::health`](crate::Relay::health).
    pub fn snapshot(&self, target: TargetId, now: Instant) -> TargetHealth {
        let mut g = self.lock();
        let width = self.policy.window / BUCKETS as u32;
        g.window.advance(now, width);
        let (ok, failed) = g.window.totals();
        let total = ok.saturating_add(failed);
        let state = match self.state.load(Ordering::Relaxed) {
            CLOSED => BreakerState::Closed,
            OPEN if now < g.open_until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        };
        TargetHealth {
            target,
            state,
            error_rate: if total == 0 {
                0.0
            } else {
                f64::from(failed) / f64::from(total)
            },
            recent_attempts: total,
            consecutive_failures: g.consecutive,
            latency: g
                .ewma_at
                .map(|_| Duration::from_secs_f64(g.ewma_secs.max(0.0))),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            next_probe_in: (state == BreakerState::Open)
                .then(|| g.open_until.saturating_duration_since(now)),
            limiter: None,
            provider_limiter: None,
            keys: Vec::new(),
        }
    }
}

/// How long the fleet's probe lease lasts if its holder never reports (it crashed, or its
/// probe hangs): then another replica may take it.
const PROBE_LEASE: Duration = Duration::from_secs(30);

/// A transition of this replica's breaker not yet delivered to the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    Open(Duration),
    Close,
}

/// One target's link to the fleet's breaker, shared by the breaker (the request path) and
/// the relay's sync task.
#[derive(Debug)]
pub(crate) struct FleetLink {
    /// A transition to deliver (the latest wins: it is the breaker's state now).
    pending: Mutex<Option<Pending>>,
    /// Bumped by every transition here: a fleet view read before it is stale.
    generation: AtomicU64,
    /// A request found the cooldown over: ask the fleet for the probe lease.
    wants_probe: AtomicBool,
    /// This replica holds the fleet's probe lease, not yet used.
    lease: AtomicBool,
    /// Whether the store answered the last exchange (otherwise the breaker decides alone).
    up: Arc<AtomicBool>,
    /// Wakes the sync task.
    wake: Arc<tokio::sync::Notify>,
}

impl FleetLink {
    pub fn new(up: Arc<AtomicBool>, wake: Arc<tokio::sync::Notify>) -> Self {
        FleetLink {
            pending: Mutex::new(None),
            generation: AtomicU64::new(0),
            wants_probe: AtomicBool::new(false),
            lease: AtomicBool::new(false),
            up,
            wake,
        }
    }

    fn store_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn report(&self, p: Pending) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.lease.store(false, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Uses the probe lease if this replica holds it; otherwise asks for it.
    fn take_lease(&self) -> bool {
        if self.lease.swap(false, Ordering::Relaxed) {
            return true;
        }
        if !self.wants_probe.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Outcome {
        Outcome::Failure {
            kind: ErrorKind::Server,
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_probes_once() {
        let h = Health::new(BreakerPolicy::default(), RetryBudget::default());
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(h.permit(now, false), Permit::Normal);
            h.record(now, Permit::Normal, fail(), false);
        }
        assert!(h.is_open(now).is_none());
        h.record(now, Permit::Normal, fail(), false);
        assert!(h.is_open(now).is_some());
        assert_eq!(h.permit(now, false), Permit::Denied);
        let later = now + Duration::from_secs(5);
        assert_eq!(h.permit(later, false), Permit::Probe);
        assert_eq!(
            h.permit(later, false),
            Permit::Denied,
            "one probe at a time"
        );
        h.record(later, Permit::Probe, fail(), false);
        assert_eq!(h.permit(later, false), Permit::Denied, "reopened");
        let again = later + Duration::from_secs(5);
        assert_eq!(h.permit(again, false), Permit::Probe);
        h.record(
            again,
            Permit::Probe,
            Outcome::Success(Duration::from_millis(50)),
            false,
        );
        assert_eq!(h.permit(again, false), Permit::Normal);
        assert_eq!(
            h.snapshot(TargetId::new("p", "m"), again).state,
            BreakerState::Closed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn neutral_outcomes_never_count_and_free_the_probe() {
        let h = Health::new(
            BreakerPolicy::default().consecutive_failures(1),
            RetryBudget::default(),
        );
        let now = Instant::now();
        for _ in 0..20 {
            h.record(
                now,
                Permit::Normal,
                Outcome::of_error(ErrorKind::InvalidRequest, None),
                false,
            );
            h.record(
                now,
                Permit::Normal,
                Outcome::of_error(ErrorKind::ContextLengthExceeded, None),
                false,
            );
            h.record(now, Permit::Normal, Outcome::Neutral, false);
        }
        assert!(h.is_open(now).is_none());
        h.record(now, Permit::Normal, fail(), false);
        let later = now + Duration::from_secs(6);
        assert_eq!(h.permit(later, false), Permit::Probe);
        h.record(later, Permit::Probe, Outcome::Neutral, false);
        assert_eq!(
            h.permit(later, false),
            Permit::Probe,
            "a cancelled probe frees the slot"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_opens_for_that_long_and_error_rate_trips() {
        let h = Health::new(BreakerPolicy::default(), RetryBudget::default());
        let now = Instant::now();
        h.record(
            now,
            Permit::Normal,
            Outcome::Failure {
                kind: ErrorKind::RateLimited,
                retry_after: Some(Duration::from_secs(20)),
            },
            false,
        );
        let s = h.snapshot(TargetId::new("p", "m"), now);
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.next_probe_in, Some(Duration::from_secs(20)));
        assert_eq!(
            h.permit(now + Duration::from_secs(19), false),
            Permit::Denied
        );
        assert_eq!(
            h.permit(now + Duration::from_secs(19), true),
            Permit::Probe,
            "last resort"
        );

        let h = Health::new(BreakerPolicy::default(), RetryBudget::default());
        for i in 0..10 {
            let o = if i % 2 == 0 {
                fail()
            } else {
                Outcome::Success(Duration::from_millis(10))
            };
            h.record(now, Permit::Normal, o, false);
        }
        assert!(
            h.is_open(now).is_none(),
            "never 5 in a row, and 50 % is checked on a failure"
        );
        h.record(now, Permit::Normal, fail(), false);
        assert!(h.is_open(now).is_some(), "6 of 11 failed: over 50 %");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unvalidated_endless_cooldown_saturates_instead_of_panicking() {
        let endless = BreakerPolicy::default()
            .consecutive_failures(1)
            .cooldown(Duration::MAX);
        assert!(endless.validate().is_err(), "refused at build");
        // Defence in depth: even unvalidated, the request path never overflows an instant.
        let h = Health::new(endless, RetryBudget::default());
        let now = Instant::now();
        for _ in 0..3 {
            h.record(now, Permit::Normal, fail(), false);
            h.record(now, Permit::Probe, fail(), false);
        }
        assert!(h.is_open(now).is_some());
        let s = h.snapshot(TargetId::new("p", "m"), now);
        assert!(
            s.next_probe_in
                .is_some_and(|d| d > Duration::from_secs(86_400 * 365))
        );
    }

    #[test]
    fn policies_are_checked() {
        assert!(BreakerPolicy::default().validate().is_ok());
        assert!(BreakerPolicy::disabled().validate().is_ok());
        let p = BreakerPolicy {
            consecutive_failures: 0,
            ..BreakerPolicy::default()
        };
        assert!(p.validate().is_err());
        for rate in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let e = BreakerPolicy::default().error_rate(rate, 10).validate();
            assert!(
                e.is_err_and(|e| e.message().starts_with("error_rate")),
                "{rate}"
            );
        }
        assert!(
            BreakerPolicy::default()
                .window(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            BreakerPolicy::default()
                .max_open(Duration::MAX)
                .validate()
                .is_err()
        );
        assert!(RetryBudget::default().validate().is_ok());
        for (ratio, burst) in [(5.0, 10.0), (f64::NAN, 1.0), (-1.0, 1.0), (0.2, f64::NAN)] {
            assert!(
                RetryBudget::new(ratio, burst).validate().is_err(),
                "{ratio} {burst}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_bounds_retries() {
        let h = Health::new(BreakerPolicy::default(), RetryBudget::new(0.2, 2.0));
        assert!(h.withdraw_retry() && h.withdraw_retry());
        assert!(!h.withdraw_retry());
        for _ in 0..5 {
            h.record(Instant::now(), Permit::Normal, Outcome::Neutral, true);
        }
        assert!(h.withdraw_retry(), "five requests earn one retry");
        assert!(!h.withdraw_retry());
    }
}
