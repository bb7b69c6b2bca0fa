//! What the client-side limits and key pools say around each attempt: admission (a key,
//! the key's, the target's and the provider's limits), skips and their reasons, and what an
//! answer or a failure tells the limits and the pool afterwards. Only the key's own faults
//! move a pool key.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::accounts::Accounting;
use super::duration::saturating_add;
use super::registry::ResolvedTarget;
use crate::accounting::KeyEvent;
use crate::spend::limiter::{LimitPermit, Limiter, WhenLimited};
use crate::types::RateLimitInfo;
use crate::types::Usage;
use crate::types::{Error, ErrorKind, Fault, LimitScope, LimitedBy, Skip, SkipReason};

/// The concurrency slots an attempt holds (its key's, its target's and its provider's),
/// freed when it ends.
pub(super) type Permits<'a> = [Option<LimitPermit<'a>>; 3];
use crate::telemetry::ERROR_TYPE;

/// The pool keys of target `index` that failed for their own sake in this call.
pub(super) fn spent_for(spent: &[(usize, usize)], index: usize) -> Vec<usize> {
    spent
        .iter()
        .filter(|(t, _)| *t == index)
        .map(|(_, k)| *k)
        .collect()
}

/// Picks a key (for a target with a pool) and takes the attempt's place under the key's and
/// the target's rate limits; or says when it is worth asking again, and what held it back.
pub(super) fn admit<'a>(
    target: &'a ResolvedTarget,
    index: usize,
    spent: &[(usize, usize)],
    tokens: u32,
    now: Instant,
) -> Result<(Option<usize>, Permits<'a>), (Instant, SkipReason)> {
    let limited = |scope, by| SkipReason::RateLimited { scope, by };
    let mut key = None;
    let mut key_permit = None;
    if let Some(ring) = &target.keys {
        let mut exclude = spent_for(spent, index);
        target.state.key_rests.resting(now, &mut exclude);
        // The earliest a key's own limit admits again, and which of its buckets said so.
        let mut earliest: Option<(Instant, LimitedBy)> = None;
        loop {
            let Some(i) = ring.pick(now, &exclude) else {
                // No usable key: when the first one is back (a pool with every key invalid
                // never is). Keys at their rate limit: the key's limit held it back.
                let reason = match earliest {
                    Some((_, by)) => limited(LimitScope::Key, by),
                    None => SkipReason::KeysExhausted,
                };
                let back = [
                    earliest.map(|(at, _)| at),
                    ring.next_ready(now),
                    target.state.key_rests.next_return(now),
                ]
                .into_iter()
                .flatten()
                .min();
                return Err((back.unwrap_or_else(|| saturating_add(now, NEVER)), reason));
            };
            match ring.limiter(i).map(|l| l.try_acquire(tokens, now)) {
                Some(Err(refused)) => {
                    earliest = Some(
                        earliest.map_or(refused, |e| if e.0 <= refused.0 { e } else { refused }),
                    );
                    exclude.push(i);
                }
                Some(Ok(p)) => {
                    key = Some(i);
                    key_permit = Some(p);
                    break;
                }
                None => {
                    key = Some(i);
                    break;
                }
            }
        }
    }
    // The key's, the target's, then the provider's limit: one that refuses gives back what
    // those before it took (the attempt is not sent).
    let key_limiter = key
        .and_then(|k| target.keys.as_ref()?.limiter(k))
        .filter(|_| key_permit.is_some());
    let give_back = |taken: &[Option<&Limiter>]| {
        for l in taken.iter().flatten() {
            l.give_back(tokens);
        }
    };
    let target_limiter = target.state.limiter.as_ref();
    let target_permit = match target_limiter.map(|l| l.try_acquire(tokens, now)) {
        Some(Err((at, by))) => {
            give_back(&[key_limiter]);
            return Err((at, limited(LimitScope::Target, by)));
        }
        admitted => admitted.and_then(Result::ok),
    };
    let provider_permit = match &target.provider_limiter {
        None => None,
        Some(l) => match l.try_acquire(tokens, now) {
            Ok(p) => Some(p),
            Err((at, by)) => {
                give_back(&[key_limiter, target_limiter]);
                return Err((at, limited(LimitScope::Provider, by)));
            }
        },
    };
    Ok((key, [key_permit, target_permit, provider_permit]))
}

/// Records a skipped target once (the first reason it was skipped for is kept).
pub(super) fn note_skip(skipped: &mut Vec<Skip>, skip: Skip) {
    if !skipped.iter().any(|s| s.target == skip.target) {
        skipped.push(skip);
    }
}

/// When the breaker of `target` lets a probe through (`None` while its probe is in flight).
pub(super) fn next_probe_in(target: &ResolvedTarget, now: Instant) -> Option<Duration> {
    target
        .state
        .health
        .snapshot(target.id.clone(), now)
        .next_probe_in
}

/// A wait no deadline allows.
pub(super) const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What a target does when a limit holds it back: its own limiter's choice, else its pool
/// keys' limiter's, else fail over.
pub(super) fn target_policy(t: &ResolvedTarget) -> WhenLimited {
    t.state
        .limiter
        .as_ref()
        .or_else(|| t.keys.as_ref().and_then(|r| r.limiter(0)))
        .or(t.provider_limiter.as_deref())
        .map_or(WhenLimited::FailOver, |l| l.limit().when_limited())
}

/// The limiter a vendor's answer about key `key` speaks for: the key's when the target has
/// a pool (vendors limit per key), else the target's, else its provider's.
pub(super) fn limiter_for(target: &ResolvedTarget, key: Option<usize>) -> Option<&Limiter> {
    match (key, &target.keys) {
        (Some(k), Some(ring)) => ring.limiter(k),
        _ => target
            .state
            .limiter
            .as_ref()
            .or(target.provider_limiter.as_deref()),
    }
}

/// Feeds an answer to the limits: the vendor's rate-limit headers, the tokens it used
/// against the estimate, the key's success.
pub(super) fn note_answer(
    target: &ResolvedTarget,
    key: Option<usize>,
    rate_limit: Option<RateLimitInfo>,
    usage: Option<Usage>,
    tokens: u32,
) {
    if !target.limited() {
        return;
    }
    let now = Instant::now();
    if let (Some(l), Some(info)) = (limiter_for(target, key), rate_limit) {
        l.observe(&info, now);
    }
    if let Some(u) = usage {
        reconcile(target, key, tokens, u.total_tokens(), now);
    }
    if let (Some(k), Some(ring)) = (key, &target.keys) {
        ring.report_success(k);
    }
}

/// Tokens per minute: what an answer used against the estimate it was admitted with, on the
/// target's limiter and on its pool key's.
pub(crate) fn reconcile(
    target: &ResolvedTarget,
    key: Option<usize>,
    estimated: u32,
    actual: u64,
    now: Instant,
) {
    let key_limiter = key.and_then(|k| target.keys.as_ref()?.limiter(k));
    let provider_limiter = target.provider_limiter.as_deref();
    for l in [target.state.limiter.as_ref(), key_limiter, provider_limiter]
        .into_iter()
        .flatten()
    {
        l.reconcile(estimated, actual, now);
    }
}

/// Feeds a failure to the limits: the headers and `Retry-After` of a 429 hold the limiter,
/// a pool key rests, is parked or marked invalid. Whether the failure was the key's own
/// (the pool's next key may do better).
pub(super) fn note_failure(
    acct: &Accounting,
    route: &Arc<str>,
    target: &ResolvedTarget,
    key: Option<usize>,
    err: &Error,
) -> bool {
    if !target.limited() {
        return false;
    }
    let now = Instant::now();
    if let Some(l) = limiter_for(target, key) {
        if let Some(info) = err.rate_limit() {
            l.observe(info, now);
        }
        if err.kind() == ErrorKind::RateLimited
            && let Some(after) = err.retry_after()
        {
            l.hold(saturating_add(now, after));
        }
    }
    let (Some(k), Some(ring)) = (key, &target.keys) else {
        return false;
    };
    match err.fault() {
        Fault::Key => {}
        // The key may not use this model: it rests for this target only.
        Fault::KeyOnTarget => {
            let until = saturating_add(now, ring.park());
            target.state.key_rests.rest(k, until);
            tracing::warn!(
                relay.route = %route,
                relay.target = %target.id,
                relay.key = %ring.label(k),
                { ERROR_TYPE } = err.kind().as_str(),
                "pool key rests for this target: the vendor refused it this model"
            );
            return true;
        }
        // The request's, the target's or the vendor's fault: the key is not to blame.
        _ => return false,
    }
    if let Some(state) = ring.report_failure(k, err.kind(), err.retry_after(), now) {
        let label = ring.label(k);
        tracing::warn!(
            relay.route = %route,
            relay.provider = %target.id.provider,
            relay.key = %label,
            { ERROR_TYPE } = err.kind().as_str(),
            "pool key is out: {state:?}"
        );
        acct.observers.each(|o| {
            o.key_state(&KeyEvent {
                provider: &target.id.provider,
                key: label,
                state: &state,
                error: err.kind(),
            })
        });
    }
    true
}
