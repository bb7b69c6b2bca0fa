//! The printed dashboard, and the hour-by-hour series the SVG draws too.

use std::collections::BTreeMap;

use polyrelay::{StatsRow, StatsSnapshot};

use super::{BASELINE, OUTAGE};

/// The query type of a row, for the dashboard: calls with no intent and no classifier label
/// (e.g. routed by the language rule) count as unlabelled.
pub(crate) fn query_type(r: &StatsRow) -> &str {
    match r.query_type.as_deref() {
        None => "unlabelled",
        Some(q) => q,
    }
}

/// Attempts on a row's target: one per call that tried it, plus its retries.
fn attempts(r: &StatsRow) -> u64 {
    r.requests + r.retries
}

pub(crate) fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

pub(crate) fn print_table(day: &StatsSnapshot) {
    println!(
        "{:<17} {:<13} {:<26} {:>6} {:>6} {:>6} {:>6} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "query type",
        "route",
        "model",
        "calls",
        "served",
        "err %",
        "fo in",
        "in tok",
        "out tok",
        "cost $",
        "base $",
        "p50 ms",
        "p95 ms"
    );
    let mut rows: Vec<&StatsRow> = day.total.iter().collect();
    rows.sort_by(|a, b| {
        (query_type(a), &a.route)
            .cmp(&(query_type(b), &b.route))
            .then(b.successes.cmp(&a.successes))
    });
    for r in rows {
        println!(
            "{:<17} {:<13} {:<26} {:>6} {:>6} {:>6.1} {:>6} {:>10} {:>9} {:>9.4} {:>9.4} {:>7.0} {:>7.0}",
            query_type(r),
            r.route,
            format!("{}/{}", r.provider, r.model),
            r.requests,
            r.successes,
            pct(r.error_count() as f64, attempts(r) as f64),
            r.failovers_in,
            r.input_tokens,
            r.output_tokens,
            r.cost,
            r.baseline_cost,
            r.latency.p50_ms,
            r.latency.p95_ms
        );
    }

    println!("\nPer query type (all routes):");
    println!(
        "{:<17} {:>6} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "query type", "served", "in tok", "out tok", "cost $", "base $", "saved"
    );
    for (q, t) in by_query_type(day) {
        println!(
            "{:<17} {:>6} {:>10} {:>9} {:>9.4} {:>9.4} {:>6.1}%",
            q,
            t.successes,
            t.input_tokens,
            t.output_tokens,
            t.cost,
            t.baseline_cost,
            pct(t.baseline_cost - t.cost, t.baseline_cost)
        );
    }
    let t = day.totals();
    println!(
        "\nTotal: {} calls served ({} failed), {} input + {} output tokens.",
        t.successes, t.failures, t.input_tokens, t.output_tokens
    );
    println!(
        "Spend: ${:.2} actual vs ${:.2} on the baseline ({BASELINE}): ${:.2} saved ({:.1} %).",
        t.cost,
        t.baseline_cost,
        t.saved(),
        pct(t.saved(), t.baseline_cost)
    );
    if t.cost_unknown > 0 {
        println!(
            "({} answers of unknown cost are not in the spend.)",
            t.cost_unknown
        );
    }
}

/// What one query type added up to, over every route and model.
#[derive(Default, Clone, Copy)]
pub(crate) struct QtTotals {
    pub(crate) successes: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost: f64,
    pub(crate) baseline_cost: f64,
}

/// `StatsSnapshot::by_query_type` groups by route too; a query type can go to several
/// routes (Chinese order-status tickets go to Qwen), so sum per query type alone.
pub(crate) fn by_query_type(day: &StatsSnapshot) -> Vec<(String, QtTotals)> {
    let mut m: BTreeMap<String, QtTotals> = BTreeMap::new();
    for r in &day.total {
        let t = m.entry(query_type(r).to_owned()).or_default();
        t.successes += r.successes;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cost += r.cost;
        t.baseline_cost += r.baseline_cost;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.baseline_cost.total_cmp(&a.1.baseline_cost));
    v
}

/// What the example measured of one hour's calls itself. The relay's stats keep latency
/// percentiles per row since start (or the last reset): an hour's cannot be had from two
/// snapshots, nor one for all rows together.
pub(crate) struct HourLatency {
    /// Latency of each call, in ms.
    pub(crate) samples: Vec<f64>,
    pub(crate) failed: u64,
    /// OpenAI's breakers not closed at the end of the hour.
    pub(crate) breakers: String,
}

pub(crate) struct HourStats {
    pub(crate) calls: usize,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    /// Failed attempts (any target), from the stats.
    pub(crate) errors: u64,
    /// Attempts, from the stats.
    pub(crate) attempts: u64,
    /// Of the calls served on the routes that start at OpenAI, the share Anthropic served.
    pub(crate) fallback_share: f64,
    pub(crate) cost: f64,
    pub(crate) failed: u64,
    pub(crate) breakers: String,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

pub(crate) fn hour_series(marks: &[StatsSnapshot], hourly: &mut [HourLatency]) -> Vec<HourStats> {
    let index =
        |s: &StatsSnapshot| -> BTreeMap<(String, Option<String>, String, String), StatsRow> {
            s.total
                .iter()
                .map(|r| {
                    (
                        (
                            r.route.clone(),
                            r.query_type.clone(),
                            r.provider.clone(),
                            r.model.clone(),
                        ),
                        r.clone(),
                    )
                })
                .collect()
        };
    (0..24)
        .map(|h| {
            let before = index(&marks[h]);
            let after = index(&marks[h + 1]);
            let (mut errors, mut att, mut cost) = (0, 0, 0.0);
            let (mut openai_first, mut by_fallback) = (0u64, 0u64);
            for (k, r) in &after {
                let prev = before.get(k);
                let d = |f: fn(&StatsRow) -> u64| f(r) - prev.map_or(0, f);
                errors += d(StatsRow::error_count);
                att += d(attempts);
                cost += r.cost - prev.map_or(0.0, |p| p.cost);
                if ["fast", "strong", "general"].contains(&r.route.as_str()) {
                    let served = d(|r| r.successes);
                    openai_first += served;
                    if r.provider == "anthropic" {
                        by_fallback += served;
                    }
                }
            }
            let s = &mut hourly[h].samples;
            s.sort_by(f64::total_cmp);
            HourStats {
                calls: s.len(),
                p50: quantile(s, 0.50),
                p95: quantile(s, 0.95),
                p99: quantile(s, 0.99),
                errors,
                attempts: att,
                fallback_share: pct(by_fallback as f64, openai_first as f64),
                cost,
                failed: hourly[h].failed,
                breakers: hourly[h].breakers.clone(),
            }
        })
        .collect()
}

pub(crate) fn print_hours(hours: &[HourStats]) {
    println!("\nPer hour (→ Anthropic: the share of the OpenAI-first routes' calls it served):");
    println!(
        "{:<6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>11} {:>8} {:>7}  OpenAI breakers at the end of the hour",
        "hour",
        "calls",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "att. err",
        "→ Anthropic",
        "cost $",
        "failed"
    );
    for (h, s) in hours.iter().enumerate() {
        println!(
            "{:02}:00{} {:>6} {:>7.0} {:>7.0} {:>7.0} {:>8.1}% {:>10.1}% {:>8.3} {:>7}  {}",
            h,
            if OUTAGE.contains(&h) { "!" } else { " " },
            s.calls,
            s.p50,
            s.p95,
            s.p99,
            pct(s.errors as f64, s.attempts as f64),
            s.fallback_share,
            s.cost,
            s.failed,
            if s.breakers.is_empty() {
                "closed"
            } else {
                &s.breakers
            }
        );
    }
}
