//! The latest failovers, kept by the stats: a bounded log of the calls that moved on from a
//! failed target (and of those that then failed with nothing left), so an operator sees
//! what happened before opening a dashboard.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::types::{Attempt, ErrorKind, TargetId};

/// How many failovers [`StatsSnapshot::failovers`](super::StatsSnapshot::failovers) keeps:
/// the latest 50 (older ones are dropped as new ones come).
pub const MAX_FAILOVER_RECORDS: usize = 50;

/// One failover of [`StatsSnapshot::failovers`](super::StatsSnapshot::failovers): a call
/// moved on from a target that failed, or failed there with nothing left to try after an
/// earlier failover.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct FailoverRecord {
    /// When the target's last failed try ended, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The route.
    pub route: String,
    /// The call's query type, as in [`StatsRow::query_type`](super::StatsRow::query_type).
    pub query_type: Option<String>,
    /// The target that failed, as `provider/model`.
    pub from: String,
    /// The target tried next, as `provider/model`; `None` when nothing was left to try and
    /// the call failed (recorded only for a call that had failed over before).
    pub to: Option<String>,
    /// Why: the [`ErrorKind`] of its last failed try (`ErrorKind::as_str`, e.g.
    /// `server_error`, `rate_limited`, `timeout`, `stream_interrupted`).
    pub error: String,
    /// The HTTP status of that try, when one came.
    pub status: Option<u16>,
    /// Its failed tries in this call before it was left (retries included).
    pub tries: u32,
}

/// The log: newest at the back, at most [`MAX_FAILOVER_RECORDS`].
#[derive(Debug, Default)]
pub(super) struct FailoverLog(VecDeque<FailoverRecord>);

impl FailoverLog {
    pub(super) fn push(&mut self, r: FailoverRecord) {
        if self.0.len() >= MAX_FAILOVER_RECORDS {
            self.0.pop_front();
        }
        self.0.push_back(r);
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Newest first (by the time of the failure).
    pub(super) fn latest(&self) -> Vec<FailoverRecord> {
        let mut v: Vec<FailoverRecord> = self.0.iter().rev().cloned().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
        v
    }
}

/// The failovers of one finished call, in the order they happened: for each target that
/// failed and was left for another, the target tried next; when the call `failed` after a
/// failover, its last target with no next one. `start_ms` is when the call started (Unix
/// milliseconds); `failure` says how an attempt failed (`None` for one that served or that
/// the relay cancelled).
pub(super) fn of_call(
    attempts: &[Attempt],
    failure: impl Fn(&Attempt) -> Option<ErrorKind>,
    failed: bool,
    start_ms: u64,
    route: &str,
    query_type: Option<&str>,
) -> Vec<FailoverRecord> {
    let mut out = Vec::new();
    let record = |from: &TargetId, to: Option<&TargetId>, before: Option<std::time::Duration>| {
        // The target's failed tries before the call moved on.
        let tries: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.target == *from && failure(a).is_some())
            .filter(|a| before.is_none_or(|b| a.started <= b))
            .collect();
        let last = tries.iter().max_by_key(|a| a.started)?;
        let ended = last.started.saturating_add(last.latency);
        Some(FailoverRecord {
            at_ms: start_ms.saturating_add(u64::try_from(ended.as_millis()).unwrap_or(u64::MAX)),
            route: route.to_owned(),
            query_type: query_type.map(str::to_owned),
            from: from.to_string(),
            to: to.map(ToString::to_string),
            error: failure(last).map_or("", |k| k.as_str()).to_owned(),
            status: last.status,
            tries: u32::try_from(tries.len()).unwrap_or(u32::MAX),
        })
    };
    let mut seen: Vec<&TargetId> = Vec::new();
    for a in attempts {
        if seen.contains(&&a.target) {
            continue;
        }
        seen.push(&a.target);
        let Some(first_failure) = attempts
            .iter()
            .filter(|x| x.target == a.target && failure(x).is_some())
            .map(|x| x.started)
            .min()
        else {
            continue;
        };
        // The next target tried after its first failure.
        let next = attempts
            .iter()
            .filter(|y| y.target != a.target && y.started >= first_failure)
            .min_by_key(|y| y.started);
        match next {
            Some(y) => out.extend(record(&a.target, Some(&y.target), Some(y.started))),
            None if failed && !out.is_empty() => out.extend(record(&a.target, None, None)),
            None => {}
        }
    }
    out.sort_by_key(|r| r.at_ms);
    out
}
