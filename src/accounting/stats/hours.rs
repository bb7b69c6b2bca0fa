//! The stats by UTC hour: each row keeps what its calls added in each of the last
//! [`STATS_HOURS`] hours, so the cost per model per query type can be read hour by hour
//! (today's, on a dashboard). Memory is bounded: [`STATS_HOURS`] buckets per row, reused as
//! the hours turn.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Counts, Key, nanos, usd};

/// How many one-hour buckets (UTC hours, the current one included) each stats row keeps:
/// 24, a day. Older hours are dropped as new ones start.
pub const STATS_HOURS: usize = 24;

/// Milliseconds in an hour.
pub(super) const HOUR_MS: u64 = 3_600_000;

/// What one row's calls added in one hour.
#[derive(Clone, Copy, Default)]
pub(super) struct HourCounts {
    requests: u64,
    successes: u64,
    failures: u64,
    errors: u64,
    failovers_out: u64,
    /// In nano-dollars, as [`Counts::cost`].
    cost: u64,
    cost_unknown: u64,
    /// In nano-dollars.
    baseline_cost: u64,
}

impl HourCounts {
    fn add(&mut self, o: &HourCounts) {
        self.requests = self.requests.saturating_add(o.requests);
        self.successes = self.successes.saturating_add(o.successes);
        self.failures = self.failures.saturating_add(o.failures);
        self.errors = self.errors.saturating_add(o.errors);
        self.failovers_out = self.failovers_out.saturating_add(o.failovers_out);
        self.cost = self.cost.saturating_add(o.cost);
        self.cost_unknown = self.cost_unknown.saturating_add(o.cost_unknown);
        self.baseline_cost = self.baseline_cost.saturating_add(o.baseline_cost);
    }

    /// What a call's delta adds: its counts and `errors` failed attempts.
    pub(super) fn of(n: &Counts, errors: usize) -> Self {
        HourCounts {
            requests: n.requests,
            successes: n.successes,
            failures: n.failures,
            errors: errors as u64,
            failovers_out: n.failovers_out,
            cost: n.cost,
            cost_unknown: n.cost_unknown,
            baseline_cost: n.baseline_cost,
        }
    }
}

/// A row's ring of hourly buckets: entry `h % STATS_HOURS` holds hour `h` (hours since the
/// Unix epoch), or an older hour, which starts over when reused. Hour 0 (1970) marks an
/// entry never used.
#[derive(Default)]
pub(super) struct HourRing(Option<Box<[(u64, HourCounts); STATS_HOURS]>>);

impl HourRing {
    /// Adds `c` to hour `hour`.
    pub(super) fn add(&mut self, hour: u64, c: &HourCounts) {
        let ring = self.0.get_or_insert_with(Box::default);
        let (at, counts) = &mut ring[(hour % STATS_HOURS as u64) as usize];
        if *at != hour {
            *at = hour;
            *counts = HourCounts::default();
        }
        counts.add(c);
    }

    /// The hours from `oldest` to `current` (both included), each added into `into`.
    pub(super) fn merge_into(
        &self,
        key: &Key,
        oldest: u64,
        current: u64,
        into: &mut BTreeMap<u64, BTreeMap<Key, HourCounts>>,
    ) {
        let Some(ring) = &self.0 else { return };
        for (at, counts) in ring.iter() {
            if *at != 0 && *at >= oldest && *at <= current {
                into.entry(*at)
                    .or_default()
                    .entry(key.clone())
                    .or_default()
                    .add(counts);
            }
        }
    }
}

/// The merged hours as the snapshot gives them, oldest first.
pub(super) fn buckets(hours: BTreeMap<u64, BTreeMap<Key, HourCounts>>) -> Vec<HourBucket> {
    hours
        .into_iter()
        .map(|(hour, rows)| HourBucket {
            start: hour.saturating_mul(HOUR_MS / 1000),
            rows: rows
                .into_iter()
                .map(|(k, c)| HourRow {
                    route: k.route.to_string(),
                    query_type: k.query_type.map(|q| q.to_string()),
                    provider: k.provider.to_string(),
                    model: k.model.to_string(),
                    requests: c.requests,
                    successes: c.successes,
                    failures: c.failures,
                    errors: c.errors,
                    failovers_out: c.failovers_out,
                    cost: usd(c.cost),
                    cost_unknown: c.cost_unknown,
                    baseline_cost: usd(c.baseline_cost),
                })
                .collect(),
        })
        .collect()
}

/// One UTC hour of [`StatsSnapshot::hours`](super::StatsSnapshot::hours): what each row's
/// calls added in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HourBucket {
    /// When the hour starts, in seconds since the Unix epoch (a multiple of 3,600: a UTC
    /// hour).
    pub start: u64,
    /// One row per (route, query type, provider, model) that saw a call in this hour,
    /// sorted by route, query type, provider, model.
    pub rows: Vec<HourRow>,
}

impl HourBucket {
    /// What the hour's calls cost, in US dollars: its rows summed to the nano-dollar.
    pub fn cost(&self) -> f64 {
        usd(self
            .rows
            .iter()
            .fold(0u64, |s, r| s.saturating_add(nanos(r.cost))))
    }

    /// What the answers served in the hour would have cost on the baseline model.
    pub fn baseline_cost(&self) -> f64 {
        usd(self
            .rows
            .iter()
            .fold(0u64, |s, r| s.saturating_add(nanos(r.baseline_cost))))
    }
}

/// One row of an [`HourBucket`]: the counts of a [`StatsRow`](super::StatsRow) for one hour
/// (no tokens, no latency).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HourRow {
    /// The route.
    pub route: String,
    /// The query type, as in [`StatsRow::query_type`](super::StatsRow::query_type).
    pub query_type: Option<String>,
    /// The target's provider.
    pub provider: String,
    /// The target's model.
    pub model: String,
    /// Calls that tried this target in the hour (counted in the hour the call ended).
    pub requests: u64,
    /// Calls it served.
    pub successes: u64,
    /// Calls that failed with this target as their last try.
    pub failures: u64,
    /// Failed attempts, of every kind.
    pub errors: u64,
    /// Calls that moved on from this target to another after it failed.
    pub failovers_out: u64,
    /// What its attempts cost, in US dollars, exact to the nano-dollar (as
    /// [`StatsRow::cost`](super::StatsRow::cost)).
    pub cost: f64,
    /// Answers it served whose cost is unknown.
    pub cost_unknown: u64,
    /// What the answers it served would have cost on the baseline model; 0 without one.
    pub baseline_cost: f64,
}
