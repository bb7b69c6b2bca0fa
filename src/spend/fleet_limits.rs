//! A request limit shared by a fleet of relays ([`crate::store`]): this replica's lease of
//! slots from the fleet's schedule, and what it does while the store fails.
//!
//! The fleet's requests under one limit of `limit` per `period` follow one schedule of
//! slots, `spacing` apart, kept by the store; the relay's sync task leases the next free
//! slots for this replica (as many as it used or was refused since the last exchange, its
//! share of the horizon at most), as runs of consecutive slots. A request takes a slot whose
//! time has come — never one ahead of time — and a slot left unused for `late` (the sync
//! interval, at most a twentieth of the period) lapses. So a request sent in a window
//! `[t, t + period)` took a slot in `(t - late, t + period)`, and with
//! `spacing = (period + late + late / 4) / limit` (the last quarter for the network's
//! jitter) that interval holds at most `limit` slots: no window of the period sees more
//! than the limit, and a busy fleet uses `period / (period + 1.25 late)` of it (above 93 %).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::{LeaseGrant, LeaseRequest};

/// What a requests limit shared by a fleet ([`crate::store`]) becomes while the store fails.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum WhenStoreFails {
    /// The limit divided by the replicas live at the last exchange, on this replica's own
    /// schedule (the default): the fleet stays near the limit.
    #[default]
    EvenShare,
    /// This share of the limit (above 0, at most 1), on this replica's own schedule.
    Share(f64),
    /// No limit until the store is back (the vendor's own limit still answers 429s).
    Open,
    /// Admit nothing under this limit until the store is back: the one case where a store
    /// failure refuses requests (they fail over, or wait as [`WhenLimited`](super::limiter::WhenLimited) says).
    Closed,
}

/// What the request path needs of the fleet's sync task, shared by every fleet limit.
#[derive(Debug, Clone)]
pub(crate) struct FleetSignals {
    /// Whether the store answered the last exchange.
    pub up: Arc<AtomicBool>,
    /// Whether the first exchange has ended (answered or failed): before it, a shared limit
    /// waits for it as for a refill rather than run on its local share.
    pub started: Arc<AtomicBool>,
    /// Wakes the sync task (a lease ran dry).
    pub wake: Arc<Notify>,
    /// Replicas live at the last exchange (for an even share while the store fails).
    pub replicas: Arc<AtomicU32>,
    /// How long a request waits for a dry lease's refill: the store's timeout.
    pub refill_wait: Duration,
    /// The sync interval: how long a due slot stays usable (at most a twentieth of the
    /// limit's period).
    pub interval: Duration,
}

/// How often a request asks again while its lease's refill is on the way.
const DRY_POLL: Duration = Duration::from_millis(1);

/// Consecutive slots of a lease: `count` slots from `first`, `spacing` apart.
#[derive(Clone, Copy, Debug)]
struct Run {
    first: Instant,
    count: u32,
}

/// One shared request limit, on this replica.
#[derive(Debug)]
pub(crate) struct FleetQuota {
    /// Its name in the store.
    bucket: String,
    spacing: Duration,
    /// How long a due slot stays usable.
    late: Duration,
    /// The limit and its period, for the local share while the store fails.
    limit: u32,
    period: Duration,
    when_down: WhenStoreFails,
    signals: FleetSignals,
    /// The slots leased, earliest first.
    runs: Mutex<VecDeque<Run>>,
    /// Requests that took or wanted a slot since the last exchange.
    demand: AtomicU32,
    /// A dry lease asked the sync task for a refill, not yet granted (one wake a refill).
    refill_asked: AtomicBool,
    /// Since when the lease has been dry (nanoseconds from `local`'s base + 1; 0: not dry).
    dry_since: AtomicU64,
    /// A vendor's hold to tell the fleet (whole milliseconds; 0: none).
    hold_ms: AtomicU64,
    /// The local schedule while the store fails.
    local: LocalSchedule,
}

impl FleetQuota {
    /// The shared form of a limit of `limit` requests per `period`.
    pub fn new(
        bucket: String,
        limit: u32,
        period: Duration,
        when_down: WhenStoreFails,
        signals: FleetSignals,
    ) -> Self {
        let limit = limit.max(1);
        let late = signals.interval.min(period / 20);
        let spacing = period.saturating_add(late).saturating_add(late / 4) / limit;
        FleetQuota {
            bucket,
            spacing: spacing.max(Duration::from_nanos(1)),
            late,
            limit,
            period,
            when_down,
            signals,
            runs: Mutex::new(VecDeque::new()),
            demand: AtomicU32::new(0),
            refill_asked: AtomicBool::new(false),
            dry_since: AtomicU64::new(0),
            hold_ms: AtomicU64::new(0),
            local: LocalSchedule::default(),
        }
    }

    /// Asks the sync task for a refill now (once until it comes).
    fn ask_refill(&self) {
        if !self.refill_asked.swap(true, Ordering::AcqRel) {
            self.signals.wake.notify_one();
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, VecDeque<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot at `now`, or says when to ask again, and whether the lease was dry
    /// (its refill on the way) rather than its next slot not yet due.
    pub fn try_take(&self, now: Instant) -> Result<(), (Instant, bool)> {
        if !self.signals.up.load(Ordering::Relaxed) {
            if self.signals.started.load(Ordering::Acquire) {
                return self.while_down(now).map_err(|at| (at, false));
            }
            // The first exchange is on its way: wait for it as for a refill (a local share
            // now would add to the fleet's schedule unseen).
            self.demand.fetch_add(1, Ordering::Relaxed);
            return Err(self.dry(now));
        }
        self.demand.fetch_add(1, Ordering::Relaxed);
        let mut runs = self.runs();
        let oldest = now.checked_sub(self.late).unwrap_or(now);
        // Slots that lapsed unused.
        while let Some(run) = runs.front_mut() {
            if run.first >= oldest {
                break;
            }
            let behind = (oldest - run.first).as_nanos();
            let skip = behind.div_ceil(self.spacing.as_nanos().max(1));
            if skip >= u128::from(run.count) {
                runs.pop_front();
            } else {
                // Below `count`, so it fits.
                let skip = skip as u32;
                run.first = run
                    .first
                    .checked_add(self.spacing.saturating_mul(skip))
                    .unwrap_or(run.first);
                run.count -= skip;
            }
        }
        match runs.front_mut() {
            Some(run) if run.first <= now => {
                run.count -= 1;
                if run.count == 0 {
                    runs.pop_front();
                    if runs.is_empty() {
                        // The last slot: ask for more before a request finds none.
                        self.ask_refill();
                    }
                } else {
                    run.first = run.first.checked_add(self.spacing).unwrap_or(run.first);
                }
                self.dry_since.store(0, Ordering::Relaxed);
                Ok(())
            }
            Some(run) => Err((run.first, false)),
            None => {
                drop(runs);
                self.ask_refill();
                Err(self.dry(now))
            }
        }
    }

    /// A dry lease at `now`: ask again in a millisecond, for up to the store's timeout (the
    /// refill is a round trip away); then the limit's own policy applies.
    fn dry(&self, now: Instant) -> (Instant, bool) {
        let at = self.local.nanos(now).saturating_add(1);
        let since =
            match self
                .dry_since
                .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => at,
                Err(since) => since,
            };
        let dry_for = Duration::from_nanos(at.saturating_sub(since));
        let again = now.checked_add(DRY_POLL).unwrap_or(now);
        (again, dry_for < self.signals.refill_wait)
    }

    /// While the store fails: this replica's share of the limit on a local schedule, no
    /// limit, or none admitted, as configured.
    fn while_down(&self, now: Instant) -> Result<(), Instant> {
        let share = match self.when_down {
            WhenStoreFails::Open => return Ok(()),
            WhenStoreFails::Closed => {
                return Err(now.checked_add(self.spacing).unwrap_or(now));
            }
            WhenStoreFails::Share(f) => f,
            WhenStoreFails::EvenShare => {
                1.0 / f64::from(self.signals.replicas.load(Ordering::Relaxed).max(1))
            }
        };
        // The share's own schedule: `period / (limit × share)` apart.
        let per = (f64::from(self.limit) * share).max(1.0);
        let step = u64::try_from(self.period.as_nanos())
            .unwrap_or(u64::MAX)
            .checked_div(per as u64)
            .unwrap_or(u64::MAX);
        self.local.take(now, step, 0)
    }

    /// The slots queued now.
    pub fn queued(&self) -> u32 {
        self.runs()
            .iter()
            .fold(0u32, |a, r| a.saturating_add(r.count))
    }

    /// Tells the fleet that a vendor asked to wait `for_`.
    pub fn publish_hold(&self, for_: Duration) {
        let ms = u64::try_from(for_.as_millis()).unwrap_or(u64::MAX).max(1);
        self.hold_ms.fetch_max(ms, Ordering::Relaxed);
        self.signals.wake.notify_one();
    }

    /// The next lease request: as many slots as were used or wanted since the last one,
    /// less those still queued, at most this replica's share of the horizon (`replicas` live).
    pub fn lease_request(&self, horizon: Duration, replicas: u32) -> LeaseRequest {
        let queued = self.queued();
        let demand = self.demand.swap(0, Ordering::Relaxed);
        let in_horizon = u32::try_from(horizon.as_nanos() / self.spacing.as_nanos().max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        let share = (in_horizon / replicas.max(1)).max(1);
        LeaseRequest {
            bucket: self.bucket.clone(),
            // Twice the last interval's demand: headroom for a growing load (what is not used
            // lapses after `late`).
            want: demand.saturating_mul(2).saturating_sub(queued).min(share),
            spacing: self.spacing,
            horizon,
            burst: Duration::ZERO,
            hold: Duration::from_millis(self.hold_ms.swap(0, Ordering::Relaxed)),
        }
    }

    /// Queues the slots of `grant`, the store's answer received at `at` (so a slot's local
    /// time is never before its time at the store); returns the fleet's hold, if any.
    pub fn apply(&self, grant: LeaseGrant, at: Instant) -> Option<Instant> {
        if grant.slots > 0 {
            let first = at.checked_add(grant.first_in).unwrap_or(at);
            self.runs().push_back(Run {
                first,
                count: grant.slots,
            });
        }
        if grant.slots > 0 {
            // A grant of nothing (the schedule is booked past the horizon) leaves the ask
            // standing: the regular exchanges ask again, a dry lease does not wake them.
            self.refill_asked.store(false, Ordering::Release);
            self.dry_since.store(0, Ordering::Relaxed);
        }
        (!grant.hold_left.is_zero()).then(|| at.checked_add(grant.hold_left).unwrap_or(at))
    }
}

/// What the sync task does with a shared limit: ask for a lease, take the grant.
pub(crate) trait Leased: Send + Sync + std::fmt::Debug {
    /// The next lease request (`replicas` live at the last exchange).
    fn lease_request(&self, horizon: Duration, replicas: u32) -> LeaseRequest;
    /// Takes the store's grant, received at `at`; returns the fleet's hold, if any.
    fn apply(&self, grant: LeaseGrant, at: Instant) -> Option<Instant>;
}

impl Leased for FleetQuota {
    fn lease_request(&self, horizon: Duration, replicas: u32) -> LeaseRequest {
        FleetQuota::lease_request(self, horizon, replicas)
    }
    fn apply(&self, grant: LeaseGrant, at: Instant) -> Option<Instant> {
        FleetQuota::apply(self, grant, at)
    }
}

/// A tokens limit shared by a fleet: this replica's credit of tokens leased from the fleet's
/// bucket (one schedule of token slots, `period / limit` apart, that refills up to a
/// period's worth, like the local bucket). A request takes its estimate from the credit;
/// usage beyond the estimate is charged to it afterwards (into debt, repaid by the next
/// leases).
#[derive(Debug)]
pub(crate) struct FleetTokens {
    bucket: String,
    spacing: Duration,
    limit: u32,
    period: Duration,
    when_down: WhenStoreFails,
    signals: FleetSignals,
    credit: std::sync::atomic::AtomicI64,
    /// Tokens refused for want of credit since the last exchange.
    demand: AtomicU64,
    /// While the store fails: the local bucket (a period's worth).
    local: LocalSchedule,
}

impl FleetTokens {
    /// The shared form of a limit of `limit` tokens per `period`.
    pub fn new(
        bucket: String,
        limit: u32,
        period: Duration,
        when_down: WhenStoreFails,
        signals: FleetSignals,
    ) -> Self {
        let limit = limit.max(1);
        FleetTokens {
            bucket,
            spacing: period / limit,
            limit,
            period,
            when_down,
            signals,
            credit: std::sync::atomic::AtomicI64::new(0),
            demand: AtomicU64::new(0),
            local: LocalSchedule::default(),
        }
    }

    /// Takes `tokens` (a request's estimate) from the credit at `now`, or says when to ask
    /// again. An estimate above the whole limit needs a full limit's credit and goes into
    /// debt for the rest.
    pub fn try_take(&self, tokens: u32, now: Instant) -> Result<(), Instant> {
        if !self.signals.up.load(Ordering::Relaxed) {
            return self.while_down(tokens, now);
        }
        let need = i64::from(tokens.min(self.limit));
        let take = i64::from(tokens);
        let taken = self
            .credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c >= need).then_some(c.saturating_sub(take))
            });
        if taken.is_ok() {
            return Ok(());
        }
        self.demand.fetch_add(u64::from(tokens), Ordering::Relaxed);
        self.signals.wake.notify_one();
        Err(now.checked_add(self.signals.refill_wait).unwrap_or(now))
    }

    /// The tokens held on lease now.
    pub fn credit(&self) -> i64 {
        self.credit.load(Ordering::Acquire)
    }

    /// Charges tokens used beyond an estimate (or gives back ones a refused attempt took).
    pub fn charge(&self, tokens: i64) {
        self.credit.fetch_sub(tokens, Ordering::AcqRel);
    }

    fn while_down(&self, tokens: u32, now: Instant) -> Result<(), Instant> {
        let share = match self.when_down {
            WhenStoreFails::Open => return Ok(()),
            WhenStoreFails::Closed => return Err(now.checked_add(self.period).unwrap_or(now)),
            WhenStoreFails::Share(f) => f,
            WhenStoreFails::EvenShare => {
                1.0 / f64::from(self.signals.replicas.load(Ordering::Relaxed).max(1))
            }
        };
        // A local bucket of `share` of the limit, holding a period's worth.
        let step = (self.spacing.as_nanos() as f64 / share.max(1e-9)) as u64;
        let period = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        let cost = step.saturating_mul(u64::from(tokens));
        self.local.take(now, cost, period)
    }
}

impl Leased for FleetTokens {
    fn lease_request(&self, horizon: Duration, replicas: u32) -> LeaseRequest {
        let demand = self.demand.swap(0, Ordering::Relaxed);
        let debt = u64::try_from(-self.credit.load(Ordering::Acquire).min(0)).unwrap_or(0);
        let share = u64::from(self.limit / replicas.max(1)).max(1);
        let want = demand.saturating_add(debt).min(share);
        LeaseRequest {
            bucket: self.bucket.clone(),
            want: u32::try_from(want).unwrap_or(u32::MAX),
            spacing: self.spacing,
            horizon,
            burst: self.period,
            hold: Duration::ZERO,
        }
    }

    fn apply(&self, grant: LeaseGrant, _at: Instant) -> Option<Instant> {
        if grant.slots > 0 {
            self.credit
                .fetch_add(i64::from(grant.slots), Ordering::AcqRel);
        }
        None
    }
}

/// A local GCRA for while the store fails: the next free instant, in nanoseconds from
/// `base`.
#[derive(Debug)]
struct LocalSchedule {
    next: AtomicU64,
    base: Instant,
}

impl Default for LocalSchedule {
    fn default() -> Self {
        LocalSchedule {
            next: AtomicU64::new(0),
            base: Instant::now(),
        }
    }
}

impl LocalSchedule {
    /// `now` in nanoseconds from the base.
    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes `cost` nanoseconds of the schedule at `now`, if it has fallen no more than
    /// `tolerance` behind (a bucket of that much), or says when to ask again.
    fn take(&self, now: Instant, cost: u64, tolerance: u64) -> Result<(), Instant> {
        let at =
            u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let from = next.max(at.saturating_sub(tolerance));
            if from > at {
                let wait = Duration::from_nanos(from - at);
                return Err(now.checked_add(wait).unwrap_or(now));
            }
            match self.next.compare_exchange_weak(
                next,
                from.saturating_add(cost),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => next = current,
            }
        }
    }
}
