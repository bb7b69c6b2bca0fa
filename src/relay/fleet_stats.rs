//! Stats across a fleet ([`crate::store`]): every replica publishes its stats since start
//! with its exchanges (every few seconds), and any replica reads them all and adds them up,
//! so the cost per model per query type covers the whole fleet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::accounting::{Percentiles, StatsRow, nanos, usd};
use crate::types::{Error, ErrorKind};

/// The fleet's stats, as [`Relay::fleet_stats`](crate::Relay::fleet_stats) reads them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FleetStats {
    /// The replicas whose stats are counted (those that published in the last hour), by id.
    pub replicas: Vec<String>,
    /// Since each replica started, added up, sorted by route, query type, provider, model.
    /// Counts, tokens and costs are sums; a latency's count and mean are exact, its
    /// percentiles and maximum are the largest any replica saw (an upper bound).
    pub total: Vec<StatsRow>,
}

/// What a replica publishes: its rows since start.
#[derive(Serialize)]
pub(super) struct Published<'a> {
    pub total: &'a [StatsRow],
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireSnapshot {
    total: Vec<StatsRow>,
}

/// Two latency summaries as one: count and mean exact, the rest an upper bound.
fn merge_latency(a: &mut Percentiles, b: Percentiles) {
    let count = a.count.saturating_add(b.count);
    if count > 0 {
        a.mean_ms = (a.mean_ms * a.count as f64 + b.mean_ms * b.count as f64) / count as f64;
    }
    a.count = count;
    a.p50_ms = a.p50_ms.max(b.p50_ms);
    a.p90_ms = a.p90_ms.max(b.p90_ms);
    a.p95_ms = a.p95_ms.max(b.p95_ms);
    a.p99_ms = a.p99_ms.max(b.p99_ms);
    a.max_ms = a.max_ms.max(b.max_ms);
}

/// Adds `w` into `row`.
fn add(row: &mut StatsRow, w: StatsRow) {
    row.requests = row.requests.saturating_add(w.requests);
    row.successes = row.successes.saturating_add(w.successes);
    row.cancelled = row.cancelled.saturating_add(w.cancelled);
    row.failures = row.failures.saturating_add(w.failures);
    for (k, v) in w.errors {
        let e = row.errors.entry(k).or_default();
        *e = e.saturating_add(v);
    }
    row.retries = row.retries.saturating_add(w.retries);
    row.failovers_out = row.failovers_out.saturating_add(w.failovers_out);
    row.failovers_in = row.failovers_in.saturating_add(w.failovers_in);
    row.input_tokens = row.input_tokens.saturating_add(w.input_tokens);
    row.output_tokens = row.output_tokens.saturating_add(w.output_tokens);
    row.cached_tokens = row.cached_tokens.saturating_add(w.cached_tokens);
    row.cache_write_tokens = row.cache_write_tokens.saturating_add(w.cache_write_tokens);
    row.reasoning_tokens = row.reasoning_tokens.saturating_add(w.reasoning_tokens);
    // Summed in nano-dollars, as one relay's rows are: no floating-point noise.
    row.cost = usd(nanos(row.cost).saturating_add(nanos(w.cost)));
    row.cost_unknown = row.cost_unknown.saturating_add(w.cost_unknown);
    row.baseline_cost = usd(nanos(row.baseline_cost).saturating_add(nanos(w.baseline_cost)));
    merge_latency(&mut row.latency, w.latency);
    if let Some(t) = w.time_to_first_chunk {
        merge_latency(row.time_to_first_chunk.get_or_insert_default(), t);
    }
}

/// Adds up the replicas' published stats (`(replica, JSON)`). A replica's entry that does
/// not parse is a `Decode` error naming it.
pub(super) fn merge(published: Vec<(String, String)>) -> Result<FleetStats, Error> {
    let mut rows: BTreeMap<(String, Option<String>, String, String), StatsRow> = BTreeMap::new();
    let mut replicas = Vec::with_capacity(published.len());
    for (replica, json) in published {
        let snapshot: WireSnapshot = serde_json::from_str(&json).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("the stats replica {replica:?} published do not parse: {e}"),
            )
        })?;
        for w in snapshot.total {
            let key = (
                w.route.clone(),
                w.query_type.clone(),
                w.provider.clone(),
                w.model.clone(),
            );
            let row = rows.entry(key).or_insert_with(|| StatsRow {
                route: w.route.clone(),
                query_type: w.query_type.clone(),
                provider: w.provider.clone(),
                model: w.model.clone(),
                ..StatsRow::default()
            });
            add(row, w);
        }
        replicas.push(replica);
    }
    Ok(FleetStats {
        replicas,
        total: rows.into_values().collect(),
    })
}
