//! The target registry: what the relay keeps per target (provider + model), shared by every
//! route and every request-scoped chain that names it — its health (breaker, latency,
//! attempts in flight, retry budget), its client-side rate limit, and the pool keys resting
//! for it — and carried over a reload while the target's policies are unchanged.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::health::{BreakerPolicy, Health, RetryBudget};
use super::policy::RetryPolicy;
use crate::catalog::Price;
use crate::provider::Provider;
use crate::spend::keys::KeyRing;
use crate::spend::limiter::{Limiter, RateLimit};
use crate::types::TargetId;

/// Most request-scoped targets whose state the relay keeps (a gateway's clients may name any
/// model). At the limit, the targets nothing uses are forgotten to make room; only when
/// every kept target is in use does a new name get state of its own that is not shared.
const MAX_REGISTERED_TARGETS: usize = 10_000;

/// What the relay keeps per target (provider + model), shared by every route and every
/// request-scoped chain that names it: its health (breaker, latency, attempts in flight,
/// retry budget).
#[derive(Debug)]
pub(crate) struct TargetState {
    pub id: TargetId,
    pub health: Health,
    /// Its client-side rate limit, when one is configured.
    pub limiter: Option<Limiter>,
    /// Pool keys resting for this target only (a 403: the key may not use this model).
    pub key_rests: KeyRests,
}

/// Pool keys resting for one target only: a key the vendor forbids a model keeps serving
/// the provider's other models. Empty in the common case, read without a lock then.
#[derive(Debug, Default)]
pub(crate) struct KeyRests {
    any: std::sync::atomic::AtomicBool,
    until: std::sync::Mutex<Vec<(usize, Instant)>>,
}

impl KeyRests {
    /// Rests key `key` for this target until `until` (never shortening a rest).
    pub fn rest(&self, key: usize, until: Instant) {
        let mut list = self.until.lock().unwrap_or_else(|e| e.into_inner());
        match list.iter_mut().find(|(k, _)| *k == key) {
            Some((_, u)) => *u = (*u).max(until),
            None => list.push((key, until)),
        }
        self.any.store(true, Ordering::Release);
    }

    /// Adds the keys resting for this target at `now` to `out`.
    pub fn resting(&self, now: Instant, out: &mut Vec<usize>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut list = self.until.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(_, until)| *until > now);
        out.extend(list.iter().map(|(k, _)| *k));
        if list.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }

    /// When the first key resting for this target returns.
    pub fn next_return(&self, now: Instant) -> Option<Instant> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let list = self.until.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().map(|(_, u)| *u).filter(|u| *u > now).min()
    }
}

/// Per-target state, keyed by `provider/model`.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    states: RwLock<HashMap<String, Arc<TargetState>>>,
    pub breaker: BreakerPolicy,
    pub retry_budget: RetryBudget,
    /// Breakers set for one target (`provider/model`), in place of `breaker`.
    pub breaker_overrides: HashMap<String, BreakerPolicy>,
    /// Client-side rate limits per target (`provider/model`) and per provider (`provider`).
    pub rate_limits: HashMap<String, RateLimit>,
    /// The provider-wide limiters, shared by every target of their provider.
    provider_limiters: HashMap<String, Arc<Limiter>>,
    /// The states of the registry this one replaces (a reload), taken over by the targets
    /// that are used again under the same policies.
    previous: HashMap<String, Arc<TargetState>>,
}

impl Registry {
    /// A registry whose targets use `breaker` (or their override) and `retry_budget`; with
    /// `previous` (a reload), a target used again under unchanged policies keeps its state.
    pub fn new(
        breaker: BreakerPolicy,
        retry_budget: RetryBudget,
        breaker_overrides: HashMap<String, BreakerPolicy>,
        rate_limits: HashMap<String, RateLimit>,
        previous: Option<&Registry>,
    ) -> Self {
        // A provider's limiter carries over (with its requests in flight) while its limit is
        // unchanged.
        let provider_limiters = rate_limits
            .iter()
            .filter(|(key, _)| !key.contains('/'))
            .map(|(provider, limit)| {
                let kept = previous
                    .and_then(|p| p.provider_limiters.get(provider))
                    .filter(|l| l.limit() == limit);
                let limiter = kept
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Limiter::new(limit)));
                (provider.clone(), limiter)
            })
            .collect();
        let previous = previous
            .and_then(|p| p.states.read().ok().map(|m| m.clone()))
            .unwrap_or_default();
        Registry {
            states: RwLock::default(),
            breaker,
            retry_budget,
            breaker_overrides,
            rate_limits,
            provider_limiters,
            previous,
        }
    }

    /// The state for `key` (`provider/model`): the previous registry's under the same
    /// policies, else a new one.
    fn fresh(&self, key: &str, provider: &str, model: &str) -> Arc<TargetState> {
        let policy = self
            .breaker_overrides
            .get(key)
            .copied()
            .unwrap_or(self.breaker);
        let limit = self.rate_limits.get(key);
        if let Some(kept) = self.previous.get(key)
            && kept.health.has_policies(policy, self.retry_budget)
            && kept.limiter.as_ref().map(Limiter::limit) == limit
        {
            return kept.clone();
        }
        Arc::new(TargetState {
            id: TargetId::new(provider, model),
            health: Health::new(policy, self.retry_budget),
            limiter: limit.map(Limiter::new),
            key_rests: KeyRests::default(),
        })
    }

    /// The state of `provider/model`, created on first use.
    pub fn state(&self, provider: &str, model: &str) -> Arc<TargetState> {
        let key = format!("{provider}/{model}");
        if let Ok(map) = self.states.read()
            && let Some(s) = map.get(&key)
        {
            return s.clone();
        }
        let Ok(mut map) = self.states.write() else {
            return self.fresh(&key, provider, model);
        };
        if let Some(s) = map.get(&key) {
            return s.clone();
        }
        if map.len() >= MAX_REGISTERED_TARGETS {
            // Make room by forgetting targets nothing holds (no route names them, no call
            // is using them) and whose breaker is closed: a flood of made-up names must not
            // leave a legitimate target without its breaker and limits.
            let now = Instant::now();
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.health.is_open(now).is_some());
            if map.len() >= MAX_REGISTERED_TARGETS {
                return self.fresh(&key, provider, model);
            }
        }
        let s = self.fresh(&key, provider, model);
        map.insert(key, s.clone());
        s
    }

    /// Provider `provider`'s own limiter, when it has a provider-wide rate limit.
    pub fn provider_limiter(&self, provider: &str) -> Option<Arc<Limiter>> {
        self.provider_limiters.get(provider).cloned()
    }

    /// The providers' own rate limiters, by provider name.
    pub fn provider_limiters(&self) -> impl Iterator<Item = (&String, &Arc<Limiter>)> {
        self.provider_limiters.iter()
    }

    /// Every registered target's state, sorted by name.
    pub fn all(&self) -> Vec<Arc<TargetState>> {
        let mut v: Vec<(String, Arc<TargetState>)> = match self.states.read() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, s)| s).collect()
    }
}

/// A target with every setting concrete.
pub(crate) struct ResolvedTarget {
    pub id: TargetId,
    pub provider: Arc<dyn Provider>,
    pub attempt_timeout: Duration,
    pub first_token_timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub context_window: Option<u32>,
    pub prefill: bool,
    pub tags: Vec<String>,
    pub weight: f64,
    pub price: Option<Price>,
    pub state: Arc<TargetState>,
    /// The provider's key pool, when it has one: attempts pick a key from it.
    pub keys: Option<Arc<KeyRing>>,
    /// The provider's own rate limit, over all its targets, when it has one.
    pub provider_limiter: Option<Arc<Limiter>>,
}

impl ResolvedTarget {
    /// Whether attempts on it go through a limiter or a key pool (and so need the
    /// request's token estimate).
    pub fn limited(&self) -> bool {
        self.state.limiter.is_some() || self.keys.is_some() || self.provider_limiter.is_some()
    }
}

impl std::fmt::Debug for ResolvedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedTarget")
            .field("id", &format_args!("{}", self.id))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_names_does_not_take_a_used_targets_state_away() {
        let registry = Registry::default();
        let legit = registry.state("p", "legit");
        for i in 0..MAX_REGISTERED_TARGETS + 10 {
            drop(registry.state("p", &format!("made-up-{i}")));
        }
        // A target someone holds keeps its one state, and so does a name used again.
        assert!(Arc::ptr_eq(&legit, &registry.state("p", "legit")));
        let again = registry.state("p", "again");
        assert!(Arc::ptr_eq(&again, &registry.state("p", "again")));
        assert!(registry.all().len() <= MAX_REGISTERED_TARGETS);
    }
}
