//! Stats by (route, query type, provider, model): counts, tokens, cost, latency and
//! time-to-first-chunk percentiles, since start and over a rolling window.
//!
//! Recording locks one of several shards (one per worker thread, chosen once per thread),
//! so concurrent calls on different threads do not contend; a snapshot merges the shards.
//!
//! Each row also keeps the last [`STATS_HOURS`] UTC hours (`hours`), and the stats keep
//! the latest failovers (`failovers`). Time is the relay's clock (tokio's, so a test with a
//! paused clock drives it): an offset from when the stats were made, with the wall clock
//! read once then to place it in UTC.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use hashbrown::{Equivalent, HashMap};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::CallRecord;
use crate::types::{Attempt, ErrorKind, TargetId};

mod failovers;
mod hours;

use failovers::FailoverLog;
pub use failovers::{FailoverRecord, MAX_FAILOVER_RECORDS};
use hours::{HOUR_MS, HourCounts, HourRing};
pub use hours::{HourBucket, HourRow, STATS_HOURS};

/// Slots of the rolling window: it covers the last `window`, in steps of `window / SLOTS`.
const SLOTS: u32 = 4;
/// Ring entries: the slots of the window plus the one being filled.
const RING: usize = SLOTS as usize + 1;
/// Longest latency a histogram tells apart (longer ones count as this), in µs: one hour.
const MAX_MICROS: u64 = 3_600_000_000;
/// Most rows a shard keeps (a row is a few kB): names a client makes up (intents,
/// `provider/model` pairs) cannot grow memory past this; later new names share the
/// [`OTHER`] row.
pub const MAX_STATS_ROWS: usize = 1024;
/// The route, provider and model of the row that takes calls past [`MAX_STATS_ROWS`].
pub const OTHER: &str = "(other)";

/// How the relay keeps stats.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatsConfig {
    /// The rolling window.
    pub window: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            window: Duration::from_secs(3600),
        }
    }
}

/// A row's key, owned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    route: Arc<str>,
    query_type: Option<Arc<str>>,
    provider: Arc<str>,
    model: Arc<str>,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        KeyRef {
            route: &self.route,
            query_type: self.query_type.as_deref(),
            provider: &self.provider,
            model: &self.model,
        }
        .hash(h)
    }
}

/// A row's key, borrowed: looking a row up allocates nothing.
#[derive(Hash)]
struct KeyRef<'a> {
    route: &'a str,
    query_type: Option<&'a str>,
    provider: &'a str,
    model: &'a str,
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        *k.route == *self.route
            && k.query_type.as_deref() == self.query_type
            && *k.provider == *self.provider
            && *k.model == *self.model
    }
}

/// The plain counters of a row (what a call adds, and what a row sums).
#[derive(Clone, Copy, Default)]
struct Counts {
    requests: u64,
    successes: u64,
    failures: u64,
    retries: u64,
    failovers_out: u64,
    failovers_in: u64,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
    /// In nano-dollars: integers sum without floating-point noise, so the stats print what
    /// the calls cost to the nano-dollar (`0.00422375`, not `0.004223750000000002`).
    cost: u64,
    cost_unknown: u64,
    /// In nano-dollars.
    baseline_cost: u64,
    cancelled: u64,
}

/// `usd` in nano-dollars, rounded (0 for a negative or non-finite amount; saturating).
pub(crate) fn nanos(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        // `as` saturates at u64::MAX.
        (usd * 1e9).round() as u64
    } else {
        0
    }
}

/// `nanos` nano-dollars in US dollars: the double nearest to that decimal, which prints as
/// it (shortest round trip).
pub(crate) fn usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.successes += o.successes;
        self.failures += o.failures;
        self.retries += o.retries;
        self.failovers_out += o.failovers_out;
        self.failovers_in += o.failovers_in;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cached_tokens += o.cached_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost = self.cost.saturating_add(o.cost);
        self.cost_unknown += o.cost_unknown;
        self.cancelled += o.cancelled;
        self.baseline_cost = self.baseline_cost.saturating_add(o.baseline_cost);
    }
}

/// What one call adds to one row.
#[derive(Default)]
struct Delta {
    n: Counts,
    errors: Vec<ErrorKind>,
    latency: Option<Duration>,
    ttft: Option<Duration>,
}

/// A row's running totals.
#[derive(Clone, Default)]
struct Acc {
    n: Counts,
    errors: Vec<(ErrorKind, u64)>,
    latency: Option<Box<Histogram<u32>>>,
    ttft: Option<Box<Histogram<u32>>>,
}

fn histogram() -> Option<Box<Histogram<u32>>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2)
        .ok()
        .map(Box::new)
}

fn record_into(h: &mut Option<Box<Histogram<u32>>>, d: Duration) {
    if h.is_none() {
        *h = histogram();
    }
    if let Some(h) = h {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        h.saturating_record(us.clamp(1, MAX_MICROS));
    }
}

fn merge_into(into: &mut Option<Box<Histogram<u32>>>, from: &Option<Box<Histogram<u32>>>) {
    let Some(from) = from else { return };
    match into {
        Some(h) => {
            // Same bounds on both sides: adding cannot fail.
            let _ = h.add(&**from);
        }
        None => *into = Some(from.clone()),
    }
}

impl Acc {
    fn count_error(&mut self, k: ErrorKind, n: u64) {
        match self.errors.iter_mut().find(|(e, _)| *e == k) {
            Some((_, m)) => *m += n,
            None => self.errors.push((k, n)),
        }
    }

    fn apply(&mut self, d: &Delta) {
        self.n.add(&d.n);
        for &k in &d.errors {
            self.count_error(k, 1);
        }
        if let Some(l) = d.latency {
            record_into(&mut self.latency, l);
        }
        if let Some(t) = d.ttft {
            record_into(&mut self.ttft, t);
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.n.add(&o.n);
        for &(k, n) in &o.errors {
            self.count_error(k, n);
        }
        merge_into(&mut self.latency, &o.latency);
        merge_into(&mut self.ttft, &o.ttft);
    }
}

/// One row: totals since start, the ring of rolling-window slots and the hourly buckets.
#[derive(Default)]
struct Row {
    total: Acc,
    ring: [(u64, Option<Box<Acc>>); RING],
    hours: HourRing,
}

/// A refusal's (route, query type, reason).
type RefusalKey = (Arc<str>, Option<Arc<str>>, &'static str);

#[derive(Default)]
struct Shard {
    rows: HashMap<Key, Row>,
    /// Calls the relay refused on its own, by (route, query type, reason).
    refusals: HashMap<RefusalKey, u64>,
}

/// The relay's stats.
#[derive(Debug)]
pub(crate) struct Stats {
    shards: Box<[Mutex<Shard>]>,
    epoch: Instant,
    /// The wall clock at `epoch`, in milliseconds since the Unix epoch: read once, so the
    /// hours follow the relay's clock from there.
    epoch_unix_ms: u64,
    slot: Duration,
    window: Duration,
    reset_at: Mutex<Instant>,
    /// The latest failovers (rare: one lock for all threads).
    failovers: Mutex<FailoverLog>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows", self.rows.len())
    }
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

impl Stats {
    pub fn new(config: StatsConfig) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 32)
            .next_power_of_two();
        let window = config.window.max(Duration::from_secs(SLOTS.into()));
        let now = Instant::now();
        let epoch_unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Stats {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            epoch: now,
            epoch_unix_ms,
            slot: window / SLOTS,
            window,
            reset_at: Mutex::new(now),
            failovers: Mutex::new(FailoverLog::default()),
        }
    }

    /// `now` in milliseconds since the Unix epoch, on the relay's clock.
    fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_millis();
        self.epoch_unix_ms
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    fn shard(&self) -> MutexGuard<'_, Shard> {
        let i = SHARD.with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
                s.set(i);
            }
            i
        });
        let m = &self.shards[i & (self.shards.len() - 1)];
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_index(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos();
        let slot = self.slot.as_nanos().max(1);
        u64::try_from(nanos / slot).unwrap_or(u64::MAX)
    }

    /// Adds one finished call.
    pub fn record(&self, call: &CallRecord<'_>) {
        let now = Instant::now();
        let slot = self.slot_index(now);
        let now_ms = self.unix_ms(now);
        let hour = now_ms / HOUR_MS;
        if call.meta.attempts.is_empty()
            && let Some(e) = call.error
        {
            // Nothing was sent: a refusal, not an upstream failure.
            let reason = refusal_reason(e);
            let mut shard = self.shard();
            let full = shard.refusals.len() >= MAX_STATS_ROWS;
            let key = if full
                && !shard.refusals.keys().any(|(r, q, why)| {
                    **r == **call.route && q.as_deref() == call.query_type && *why == reason
                }) {
                (Arc::from(OTHER), None, reason)
            } else {
                (call.route.clone(), call.query_type.map(Arc::from), reason)
            };
            *shard.refusals.entry(key).or_default() += 1;
            return;
        }
        let mut deltas: Vec<(&TargetId, Delta)> = Vec::new();
        let meta = call.meta;
        let attempts = &meta.attempts;
        // How an attempt failed; hedge losers the relay cancelled did not fail.
        let failure = |a: &Attempt| a.failure().filter(|k| *k != ErrorKind::Cancelled);
        // The caller went away (a client that dropped its stream): neither a success nor a
        // failure, though what the vendor reported still costs.
        let cancelled = call.error.is_some_and(|e| e.kind() == ErrorKind::Cancelled);
        for a in attempts {
            let p = match deltas.iter().position(|(t, _)| **t == a.target) {
                Some(p) => p,
                None => {
                    let n = Counts {
                        requests: 1,
                        ..Counts::default()
                    };
                    deltas.push((
                        &a.target,
                        Delta {
                            n,
                            ..Delta::default()
                        },
                    ));
                    deltas.len() - 1
                }
            };
            let d = &mut deltas[p].1;
            if a.try_number > 1 {
                d.n.retries += 1;
            }
            if let Some(k) = failure(a) {
                d.errors.push(k);
            }
            if let Some(u) = &a.usage {
                d.n.input_tokens += u.input_tokens;
                d.n.output_tokens += u.output_tokens;
                d.n.cached_tokens += u.cache_read_tokens;
                d.n.cache_write_tokens += u.cache_write_tokens;
                d.n.reasoning_tokens += u.reasoning_tokens;
                d.n.cost = d.n.cost.saturating_add(nanos(a.cost.unwrap_or(0.0)));
            }
        }
        // Failed over from a target: another target was tried after one of its failures.
        for (t, d) in &mut deltas {
            let first_failure = attempts
                .iter()
                .filter(|a| a.target == **t && failure(a).is_some())
                .map(|a| a.started)
                .min();
            let moved_on = first_failure
                .is_some_and(|f| attempts.iter().any(|y| y.target != **t && y.started >= f));
            d.n.failovers_out = u64::from(moved_on);
        }
        if let Some(served) = meta.served_attempt() {
            if let Some((_, d)) = deltas.iter_mut().find(|(t, _)| **t == served.target) {
                if cancelled {
                    d.n.cancelled += 1;
                } else {
                    d.n.successes += 1;
                    d.latency = Some(call.duration);
                    d.ttft = meta.time_to_first_chunk;
                }
                d.n.baseline_cost =
                    d.n.baseline_cost
                        .saturating_add(nanos(meta.baseline_cost.unwrap_or(0.0)));
                d.n.cost_unknown += u64::from(meta.cost.is_none());
                d.n.failovers_in += u64::from(
                    attempts
                        .iter()
                        .any(|a| a.target != served.target && a.started <= served.started),
                );
                if let Some(r) = &meta.routing {
                    d.n.cost =
                        d.n.cost
                            .saturating_add(nanos(r.classifier_cost.unwrap_or(0.0)));
                }
            }
        } else if call.error.is_some()
            && let Some(last) = attempts.last()
            && let Some((_, d)) = deltas.iter_mut().find(|(t, _)| **t == last.target)
        {
            if cancelled {
                d.n.cancelled += 1;
            } else {
                d.n.failures += 1;
            }
        }
        if deltas.iter().any(|(_, d)| d.n.failovers_out > 0) {
            let duration = u64::try_from(call.duration.as_millis()).unwrap_or(u64::MAX);
            let records = failovers::of_call(
                attempts,
                failure,
                call.error.is_some() && !cancelled,
                now_ms.saturating_sub(duration),
                call.route,
                call.query_type,
            );
            let mut log = self.failovers.lock().unwrap_or_else(|p| p.into_inner());
            for r in records {
                log.push(r);
            }
        }
        for (t, d) in &deltas {
            self.apply(
                slot,
                hour,
                KeyRef {
                    route: call.route,
                    query_type: call.query_type,
                    provider: &t.provider,
                    model: &t.model,
                },
                d,
            );
        }
    }

    fn apply(&self, slot: u64, hour: u64, key: KeyRef<'_>, d: &Delta) {
        let mut shard = self.shard();
        let full = shard.rows.len() >= MAX_STATS_ROWS && !shard.rows.contains_key(&key);
        let key = if full {
            KeyRef {
                route: OTHER,
                query_type: None,
                provider: OTHER,
                model: OTHER,
            }
        } else {
            key
        };
        let row = match shard.rows.get_mut(&key) {
            Some(r) => r,
            None => shard
                .rows
                .entry(Key {
                    route: key.route.into(),
                    query_type: key.query_type.map(Into::into),
                    provider: key.provider.into(),
                    model: key.model.into(),
                })
                .or_default(),
        };
        row.total.apply(d);
        row.hours.add(hour, &HourCounts::of(&d.n, d.errors.len()));
        let (at, acc) = &mut row.ring[(slot % RING as u64) as usize];
        // An entry from an older turn of the ring starts over.
        if *at != slot || acc.is_none() {
            *acc = Some(Box::default());
            *at = slot;
        }
        if let Some(acc) = acc {
            acc.apply(d);
        }
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            s.rows.clear();
            s.refusals.clear();
        }
        self.failovers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self.reset_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Merges the shards.
    pub fn snapshot(&self) -> StatsSnapshot {
        let now = Instant::now();
        let current = self.slot_index(now);
        let oldest = current.saturating_sub(u64::from(SLOTS));
        let hour = self.unix_ms(now) / HOUR_MS;
        let first_hour = hour.saturating_sub(STATS_HOURS as u64 - 1);
        let mut hours = BTreeMap::new();
        let mut total: BTreeMap<Key, Acc> = BTreeMap::new();
        let mut recent: BTreeMap<Key, Acc> = BTreeMap::new();
        let mut refused: BTreeMap<(String, Option<String>, &'static str), u64> = BTreeMap::new();
        for s in self.shards.iter() {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            for ((route, q, reason), n) in &s.refusals {
                let key = (route.to_string(), q.as_deref().map(str::to_owned), *reason);
                *refused.entry(key).or_default() += n;
            }
            for (k, row) in &s.rows {
                total.entry(k.clone()).or_default().merge(&row.total);
                row.hours.merge_into(k, first_hour, hour, &mut hours);
                for (at, acc) in &row.ring {
                    if let Some(acc) = acc
                        && *at >= oldest
                        && *at <= current
                    {
                        recent.entry(k.clone()).or_default().merge(acc);
                    }
                }
            }
        }
        let since = *self.reset_at.lock().unwrap_or_else(|p| p.into_inner());
        let failovers = self
            .failovers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latest();
        StatsSnapshot {
            since_secs: now.saturating_duration_since(since).as_secs_f64(),
            window_secs: self.window.as_secs_f64(),
            total: total.into_iter().map(|(k, a)| row_of(k, &a)).collect(),
            recent: recent.into_iter().map(|(k, a)| row_of(k, &a)).collect(),
            refused: refused
                .into_iter()
                .map(|((route, query_type, reason), calls)| RefusalRow {
                    route,
                    query_type,
                    reason: reason.to_owned(),
                    calls,
                })
                .collect(),
            hours: hours::buckets(hours),
            failovers,
        }
    }
}

/// Why the relay refused a call on its own, as counted in [`StatsSnapshot::refused`].
pub(crate) fn refusal_reason(e: &crate::types::Error) -> &'static str {
    match e.kind() {
        ErrorKind::LimitReached => "rate_limited",
        ErrorKind::BudgetExceeded => "budget",
        ErrorKind::BreakerOpen => "breaker_open",
        ErrorKind::KeysExhausted => "keys_exhausted",
        ErrorKind::ConstraintViolated => "constraint",
        ErrorKind::NoRoute => "no_route",
        ErrorKind::Timeout => "deadline",
        kind => kind.as_str(),
    }
}

fn row_of(k: Key, a: &Acc) -> StatsRow {
    StatsRow {
        route: k.route.to_string(),
        query_type: k.query_type.map(|q| q.to_string()),
        provider: k.provider.to_string(),
        model: k.model.to_string(),
        requests: a.n.requests,
        successes: a.n.successes,
        failures: a.n.failures,
        errors: a
            .errors
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        retries: a.n.retries,
        failovers_out: a.n.failovers_out,
        failovers_in: a.n.failovers_in,
        input_tokens: a.n.input_tokens,
        output_tokens: a.n.output_tokens,
        cached_tokens: a.n.cached_tokens,
        cache_write_tokens: a.n.cache_write_tokens,
        reasoning_tokens: a.n.reasoning_tokens,
        cost: usd(a.n.cost),
        cost_unknown: a.n.cost_unknown,
        baseline_cost: usd(a.n.baseline_cost),
        cancelled: a.n.cancelled,
        latency: Percentiles::of(a.latency.as_deref()),
        time_to_first_chunk: a.ttft.as_deref().map(|h| Percentiles::of(Some(h))),
    }
}

/// A snapshot of [`Relay::stats`](crate::Relay::stats): one row per (route, query type,
/// provider, model) that saw a call, since start (or the last
/// [`reset_stats`](crate::Relay::reset_stats)) and over the rolling window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Seconds since the relay started or the stats were last reset.
    pub since_secs: f64,
    /// The rolling window, in seconds (the relay's
    /// [`stats_window`](crate::RelayBuilder::stats_window); default one hour). `recent`
    /// covers the last window to within a quarter of it.
    pub window_secs: f64,
    /// Since start, sorted by route, query type, provider, model.
    pub total: Vec<StatsRow>,
    /// Over the rolling window, sorted the same way.
    pub recent: Vec<StatsRow>,
    /// Calls the relay refused on its own before sending anything (its rate limits, a
    /// budget, every breaker open, every pool key out, constraints no target met, the
    /// deadline), by route, query type and reason, since start: they are not upstream
    /// failures, so no target's row counts them.
    pub refused: Vec<RefusalRow>,
    /// The last [`STATS_HOURS`] (24) UTC hours, the current one included, oldest first: what
    /// each (route, query type, provider, model) cost and did in each hour that saw a call
    /// (an hour without calls has no bucket). A call counts in the hour it ended.
    pub hours: Vec<HourBucket>,
    /// The latest failovers, newest first: at most [`MAX_FAILOVER_RECORDS`] (50), since
    /// start or the last reset.
    pub failovers: Vec<FailoverRecord>,
}

/// Calls refused for one reason on one route ([`StatsSnapshot::refused`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RefusalRow {
    /// The route (or the router's default route when the call was refused before routing
    /// ended; [`OTHER`](crate::accounting::OTHER) past the row limit).
    pub route: String,
    /// The query type, as in [`StatsRow::query_type`].
    pub query_type: Option<String>,
    /// Why: `rate_limited`, `budget`, `breaker_open`, `keys_exhausted`, `constraint`,
    /// `no_route` or `deadline`.
    pub reason: String,
    /// Calls refused.
    pub calls: u64,
}

impl StatsSnapshot {
    /// All rows of `total` summed.
    pub fn totals(&self) -> StatsTotals {
        StatsTotals::of(self.total.iter())
    }

    /// `total` summed per (route, query type), sorted.
    pub fn by_query_type(&self) -> Vec<(String, Option<String>, StatsTotals)> {
        let mut groups: BTreeMap<(String, Option<String>), Vec<&StatsRow>> = BTreeMap::new();
        for r in &self.total {
            groups
                .entry((r.route.clone(), r.query_type.clone()))
                .or_default()
                .push(r);
        }
        groups
            .into_iter()
            .map(|((route, q), rows)| (route, q, StatsTotals::of(rows.into_iter())))
            .collect()
    }
}

/// One row of a [`StatsSnapshot`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StatsRow {
    /// The route.
    pub route: String,
    /// The query type: the request's intent, else a classifier's label.
    pub query_type: Option<String>,
    /// The target's provider ([`OTHER`](crate::accounting::OTHER) for the row that takes
    /// calls past [`MAX_STATS_ROWS`](crate::accounting::MAX_STATS_ROWS); calls refused
    /// before any attempt are in [`StatsSnapshot::refused`], not here).
    pub provider: String,
    /// The target's model.
    pub model: String,
    /// Calls that tried this target.
    pub requests: u64,
    /// Calls it served.
    pub successes: u64,
    /// Calls that failed with this target as their last try.
    pub failures: u64,
    /// Failed attempts by [`ErrorKind`] (`ErrorKind::as_str`); hedge losers the relay
    /// cancelled are not errors.
    pub errors: BTreeMap<String, u64>,
    /// Attempts that were retries of this target.
    pub retries: u64,
    /// Calls that moved on from this target to another after it failed.
    pub failovers_out: u64,
    /// Calls it served after another target was tried first.
    pub failovers_in: u64,
    /// Input tokens of its attempts that reported usage, cached ones included.
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from the vendor's prompt cache.
    pub cached_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// What its attempts cost, in US dollars, plus the routing classifier's calls for the
    /// requests it served. Attempts of unknown price add nothing: see `cost_unknown`. Summed
    /// in nano-dollars, so it is exact to the nano-dollar (and prints so in JSON).
    pub cost: f64,
    /// Answers it served whose cost is unknown (a model with no price).
    pub cost_unknown: u64,
    /// Calls whose caller went away before the answer finished (a client that dropped its
    /// stream): counted here, not as successes or failures; what their vendor reported
    /// still counts in `cost` and the tokens.
    pub cancelled: u64,
    /// What the answers it served would have cost on the baseline model
    /// ([`RelayBuilder::baseline`](crate::RelayBuilder::baseline)); 0 without one.
    pub baseline_cost: f64,
    /// Latency of the calls it served, to the last byte.
    pub latency: Percentiles,
    /// Time to the first content chunk of the streamed calls it served.
    pub time_to_first_chunk: Option<Percentiles>,
}

impl StatsRow {
    /// Failed attempts of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Rows of a [`StatsSnapshot`] summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatsTotals {
    /// Calls that tried any of the rows' targets (a call that failed over counts once per
    /// target).
    pub requests: u64,
    /// Calls served.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost, in US dollars.
    pub cost: f64,
    /// What the served answers would have cost on the baseline model.
    pub baseline_cost: f64,
    /// Answers of unknown cost.
    pub cost_unknown: u64,
}

impl StatsTotals {
    fn of<'a>(rows: impl Iterator<Item = &'a StatsRow>) -> Self {
        let (mut cost, mut baseline) = (0u64, 0u64);
        let mut t = rows.fold(StatsTotals::default(), |mut t, r| {
            t.requests += r.requests;
            t.successes += r.successes;
            t.failures += r.failures;
            t.input_tokens += r.input_tokens;
            t.output_tokens += r.output_tokens;
            cost = cost.saturating_add(nanos(r.cost));
            baseline = baseline.saturating_add(nanos(r.baseline_cost));
            t.cost_unknown += r.cost_unknown;
            t
        });
        t.cost = usd(cost);
        t.baseline_cost = usd(baseline);
        t
    }

    /// What routing saved against the baseline: `baseline_cost - cost`, to the nano-dollar.
    pub fn saved(&self) -> f64 {
        (nanos(self.baseline_cost) as f64 - nanos(self.cost) as f64) / 1e9
    }
}

/// Latency percentiles, in milliseconds (two significant digits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: Option<&Histogram<u32>>) -> Self {
        let Some(h) = h.filter(|h| !h.is_empty()) else {
            return Percentiles::default();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}
