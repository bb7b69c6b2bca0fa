//! Resolved routes and targets, and the [`Plan`]: the ordered steps one request walks.
//!
//! A [`Chain`] (a value) is resolved once against the registered providers and the relay's
//! defaults into a [`Route`] of [`ResolvedTarget`]s; every setting is then concrete. A
//! [`Plan`] is built per call from a route (the routing issue fills it from routers,
//! constraints and health); mid-stream recovery builds plans of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::accounts::Accounting;
use super::chain::{Chain, Hedge, MidStreamRecovery, Strategy, Target};
use super::health::{BreakerPolicy, Health, RetryBudget};
use super::policy::{ContextOverflow, RetryPolicy};
use crate::catalog::{Catalog, Price};
use crate::provider::Provider;
use crate::spend::keys::KeyRing;
use crate::spend::limiter::{Limiter, RateLimit};
use crate::types::TargetId;
use crate::types::{Error, ErrorKind};

/// Default time allowed for one attempt: 120 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default deadline for a whole call up to its answer, retries and failover included: 300 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Default longest duration of a whole stream: 30 minutes.
pub const DEFAULT_MAX_STREAM_DURATION: Duration = Duration::from_secs(30 * 60);
/// Longest timeout a configuration may set (24 h): anything longer is a mistake.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

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

/// What a stream does after its commit point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamSettings {
    pub idle_timeout: Option<Duration>,
    pub max_duration: Duration,
    pub lenient: bool,
    pub recovery: MidStreamRecovery,
}

/// A chain resolved and validated.
#[derive(Debug)]
pub(crate) struct Route {
    pub name: Arc<str>,
    pub targets: Vec<Arc<ResolvedTarget>>,
    pub total_timeout: Duration,
    pub context_overflow: ContextOverflow,
    pub fail_over_invalid: bool,
    pub stream: StreamSettings,
    pub hedge: Option<Hedge>,
    pub strategy: Strategy,
    pub require_tags: Vec<String>,
    /// Where the next round-robin request starts.
    pub next: AtomicUsize,
    /// The relay's observers, stats and baseline.
    pub acct: Arc<Accounting>,
}

impl Route {
    /// The same settings over other targets (request-scoped fallbacks).
    pub fn with_targets(&self, targets: Vec<Arc<ResolvedTarget>>) -> Route {
        Route {
            name: self.name.clone(),
            targets,
            total_timeout: self.total_timeout,
            context_overflow: self.context_overflow,
            fail_over_invalid: self.fail_over_invalid,
            stream: self.stream,
            hedge: self.hedge,
            strategy: self.strategy,
            require_tags: self.require_tags.clone(),
            next: AtomicUsize::new(0),
            acct: self.acct.clone(),
        }
    }
}

/// One step of a plan: a target of the route, and how it is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Index into the route's targets.
    pub target: usize,
    /// Send the continuation request (the partial answer as an assistant prefill).
    pub continuation: bool,
    /// Tries this target already had in this call (its retry policy counts them).
    pub prior_tries: u32,
    /// Every target of the plan is open and this one failed longest ago: try it anyway.
    pub last_resort: bool,
}

impl Step {
    pub fn fresh(target: usize) -> Self {
        Step {
            target,
            continuation: false,
            prior_tries: 0,
            last_resort: false,
        }
    }
}

/// The ordered steps for one request.
#[derive(Debug)]
pub(crate) struct Plan {
    pub route: Arc<Route>,
    pub steps: Vec<Step>,
    /// The request's estimated tokens (input and `max_tokens`), for rate limits; 0 when no
    /// target is limited.
    pub estimated_tokens: u32,
}

impl Plan {
    /// The plan for `req` on `route`: targets that do not carry the required tags are left
    /// out (none left: `ConstraintViolated`, nothing is sent); targets whose declared window
    /// is below the estimated input are left out while another remains; the rest are ordered
    /// by the route's strategy; open breakers go last (the one that failed longest ago marked
    /// as the last resort).
    pub fn build(
        route: Arc<Route>,
        req: &crate::types::ChatRequest,
        now: Instant,
        input: &mut InputEstimate<'_>,
    ) -> Result<Plan, Error> {
        let required = route.require_tags.iter().chain(&req.relay.require_tags);
        let mut steps: Vec<Step> = Vec::with_capacity(route.targets.len());
        let constrained = !route.require_tags.is_empty() || !req.relay.require_tags.is_empty();
        for (i, t) in route.targets.iter().enumerate() {
            if constrained
                && !required
                    .clone()
                    .all(|tag| t.tags.iter().any(|have| have == tag))
            {
                continue;
            }
            steps.push(Step::fresh(i));
        }
        if steps.is_empty() {
            let tags: Vec<&str> = route
                .require_tags
                .iter()
                .chain(&req.relay.require_tags)
                .map(String::as_str)
                .collect();
            return Err(Error::new(
                ErrorKind::ConstraintViolated,
                format!(
                    "route {:?}: no target carries every required tag ({}); the request was not sent",
                    route.name,
                    tags.join(", ")
                ),
            ));
        }
        if route.targets.iter().any(|t| t.context_window.is_some()) {
            let estimate = input.get();
            let fits = |s: &Step| {
                route.targets[s.target]
                    .context_window
                    .is_none_or(|w| u64::from(w) >= estimate)
            };
            if steps.iter().any(fits) && !steps.iter().all(fits) {
                steps.retain(fits);
            }
        }
        order(&route, &mut steps);
        // Open breakers last, the one that failed longest ago first among them (no
        // allocation unless one is open).
        let mut open: Vec<(Step, Option<Instant>)> = Vec::new();
        steps.retain(
            |s| match route.targets[s.target].state.health.is_open(now) {
                Some(since) => {
                    open.push((*s, since));
                    false
                }
                None => true,
            },
        );
        if !open.is_empty() {
            open.sort_by_key(|(_, since)| *since);
            if steps.is_empty() {
                open[0].0.last_resort = true;
            }
            steps.extend(open.into_iter().map(|(s, _)| s));
        }
        let estimated_tokens = if route.targets.iter().any(|t| t.limited()) {
            let total = input.get() + output_estimate(req);
            u32::try_from(total).unwrap_or(u32::MAX)
        } else {
            0
        };
        Ok(Plan {
            route,
            steps,
            estimated_tokens,
        })
    }

    pub fn target(&self, step: &Step) -> &ResolvedTarget {
        &self.route.targets[step.target]
    }
}

/// Orders `steps` by the route's strategy.
fn order(route: &Route, steps: &mut [Step]) {
    let t = |s: &Step| &route.targets[s.target];
    match route.strategy {
        Strategy::Ordered => {}
        Strategy::RoundRobin => {
            let n = steps.len();
            if n > 1 {
                let k = route.next.fetch_add(1, Ordering::Relaxed) % n;
                steps.rotate_left(k);
            }
        }
        Strategy::WeightedRandom => {
            // The first is drawn in proportion to the weights (one random number, one
            // pass); the others follow heaviest first, so fallbacks stay predictable.
            let total: f64 = steps.iter().map(|s| t(s).weight.max(0.0)).sum();
            if total > 0.0 {
                let mut x = fastrand::f64() * total;
                let mut pick = 0;
                for (i, s) in steps.iter().enumerate() {
                    let w = t(s).weight.max(0.0);
                    if w > 0.0 {
                        pick = i;
                        if x < w {
                            break;
                        }
                        x -= w;
                    }
                }
                steps[..=pick].rotate_right(1);
                steps[1..].sort_by(|a, b| t(b).weight.total_cmp(&t(a).weight));
            }
        }
        Strategy::LeastBusy => {
            steps.sort_by_key(|s| t(s).state.health.in_flight.load(Ordering::Relaxed));
        }
        Strategy::LowestLatency => {
            // Scores are two relaxed loads each: computing them per comparison beats
            // allocating a keyed copy.
            steps.sort_by(|a, b| {
                let sa = t(a).state.health.load_score();
                let sb = t(b).state.health.load_score();
                sa.total_cmp(&sb)
            });
        }
        Strategy::CheapestFirst => {
            steps.sort_by(|a, b| {
                let pa = t(a).price.as_ref().map_or(f64::INFINITY, |p| p.blended());
                let pb = t(b).price.as_ref().map_or(f64::INFINITY, |p| p.blended());
                pa.total_cmp(&pb)
            });
        }
    }
}

/// Output tokens a request that sets no `max_tokens` is estimated at (budgets and rate
/// limits reserve its estimate, then reconcile with what it used).
pub(crate) const DEFAULT_OUTPUT_ESTIMATE: u32 = 1024;

/// A request's input estimate, made at most once per call: the budgets, the context windows
/// and the rate limits all read it, and it walks every message.
pub(crate) struct InputEstimate<'a> {
    req: &'a crate::types::ChatRequest,
    tokens: Option<u64>,
}

impl<'a> InputEstimate<'a> {
    /// Not made yet.
    pub fn new(req: &'a crate::types::ChatRequest) -> Self {
        Self { req, tokens: None }
    }

    /// The estimate, in tokens.
    pub fn get(&mut self) -> u64 {
        *self
            .tokens
            .get_or_insert_with(|| super::router::estimate_input(self.req).0)
    }
}

/// The request's output allowance: its `max_tokens`, else [`DEFAULT_OUTPUT_ESTIMATE`].
pub(crate) fn output_estimate(req: &crate::types::ChatRequest) -> u64 {
    u64::from(
        req.max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
    )
}

/// Resolves chains against the registered providers and the relay's defaults.
pub(crate) struct Resolver<'a> {
    pub providers: &'a HashMap<String, Arc<dyn Provider>>,
    pub defaults: &'a Chain,
    pub registry: &'a Registry,
    pub catalog: &'a Catalog,
    pub acct: &'a Arc<Accounting>,
    /// Key pools by provider name.
    pub keys: &'a HashMap<String, Arc<KeyRing>>,
}

fn config(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

/// Checks a configured timeout: more than zero and at most [`MAX_TIMEOUT`].
fn check_timeout(what: &str, d: Option<Duration>, place: &dyn Fn() -> String) -> Result<(), Error> {
    match d {
        Some(d) if d.is_zero() => Err(config(format!(
            "{}: {what} must be greater than zero",
            place()
        ))),
        Some(d) if d > MAX_TIMEOUT => Err(config(format!(
            "{}: {what} of {} s is longer than the {} h allowed",
            place(),
            d.as_secs(),
            MAX_TIMEOUT.as_secs() / 3600
        ))),
        _ => Ok(()),
    }
}

fn check_retry(policy: &RetryPolicy, place: &dyn Fn() -> String) -> Result<(), Error> {
    if policy.max_attempts == 0 {
        return Err(config(format!(
            "{}: retry.max_attempts must be at least 1",
            place()
        )));
    }
    if policy.base_delay > policy.max_delay {
        return Err(config(format!(
            "{}: retry.base_delay is longer than retry.max_delay",
            place()
        )));
    }
    for (what, d) in [
        ("retry.max_delay", policy.max_delay),
        ("retry.max_retry_after", policy.max_retry_after),
    ] {
        check_timeout(what, Some(d), place)?;
    }
    Ok(())
}

/// Checks a chain's own settings (not its targets).
fn check_chain(chain: &Chain, place: &dyn Fn() -> String) -> Result<(), Error> {
    check_timeout("attempt_timeout", chain.attempt_timeout, place)?;
    check_timeout("first_token_timeout", chain.first_token_timeout, place)?;
    check_timeout("total_timeout", chain.total_timeout, place)?;
    check_timeout("stream_idle_timeout", chain.stream_idle_timeout, place)?;
    check_timeout("max_stream_duration", chain.max_stream_duration, place)?;
    if let Some(r) = &chain.retry {
        check_retry(r, place)?;
    }
    if let Some(h) = &chain.hedge {
        check_timeout("hedge.after", Some(h.after), place)?;
        if h.max_extra == 0 || h.max_extra > 8 {
            return Err(config(format!(
                "{}: hedge.max_extra must be 1 to 8",
                place()
            )));
        }
    }
    Ok(())
}

impl Resolver<'_> {
    /// Checks the relay's defaults (a chain of settings without targets).
    pub fn check_defaults(&self) -> Result<(), Error> {
        let place = || "relay defaults".to_owned();
        if !self.defaults.targets.is_empty() {
            return Err(config(
                "relay defaults: a defaults chain takes no targets".into(),
            ));
        }
        check_chain(self.defaults, &place)
    }

    /// Resolves `chain` as the route `name`.
    pub fn route(&self, name: &str, chain: &Chain) -> Result<Route, Error> {
        let place = || format!("route {name:?}");
        check_chain(chain, &place)?;
        if chain.targets.is_empty() {
            return Err(config(format!("route {name:?} has no target")));
        }
        let targets = chain
            .targets
            .iter()
            .map(|t| self.target(name, chain, t).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.route_with(name, chain, targets))
    }

    /// A route of `targets` under `chain`'s settings (falling back to the defaults).
    pub fn route_with(
        &self,
        name: &str,
        chain: &Chain,
        targets: Vec<Arc<ResolvedTarget>>,
    ) -> Route {
        let d = self.defaults;
        Route {
            name: Arc::from(name),
            targets,
            total_timeout: chain
                .total_timeout
                .or(d.total_timeout)
                .unwrap_or(DEFAULT_TOTAL_TIMEOUT),
            context_overflow: chain
                .context_overflow
                .or(d.context_overflow)
                .unwrap_or_default(),
            fail_over_invalid: chain
                .fail_over_invalid_requests
                .or(d.fail_over_invalid_requests)
                .unwrap_or(false),
            stream: StreamSettings {
                idle_timeout: chain.stream_idle_timeout.or(d.stream_idle_timeout),
                max_duration: chain
                    .max_stream_duration
                    .or(d.max_stream_duration)
                    .unwrap_or(DEFAULT_MAX_STREAM_DURATION),
                lenient: chain.lenient_streams.or(d.lenient_streams).unwrap_or(false),
                recovery: chain
                    .mid_stream_recovery
                    .or(d.mid_stream_recovery)
                    .unwrap_or_default(),
            },
            hedge: chain.hedge.or(d.hedge),
            strategy: chain.strategy.or(d.strategy).unwrap_or_default(),
            require_tags: chain
                .require_tags
                .iter()
                .chain(&d.require_tags)
                .cloned()
                .collect(),
            next: AtomicUsize::new(0),
            acct: self.acct.clone(),
        }
    }

    /// Resolves one target of route `route` (whose chain is `chain`).
    pub fn target(&self, route: &str, chain: &Chain, t: &Target) -> Result<ResolvedTarget, Error> {
        let place = || format!("route {route:?}, target {:?}", t.to_string());
        if t.provider.is_empty() || t.model.is_empty() {
            return Err(config(format!(
                "{}: a target needs a provider and a model (\"provider/model\")",
                place()
            )));
        }
        let provider = self.providers.get(&t.provider).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            known.sort_unstable();
            config(format!(
                "{}: unknown provider {:?} (registered: {})",
                place(),
                t.provider,
                known.join(", ")
            ))
        })?;
        check_timeout("attempt_timeout", t.attempt_timeout, &place)?;
        check_timeout("first_token_timeout", t.first_token_timeout, &place)?;
        if let Some(r) = &t.retry {
            check_retry(r, &place)?;
        }
        if t.max_attempts == Some(0) {
            return Err(config(format!(
                "{}: max_attempts must be at least 1",
                place()
            )));
        }
        let weight = t.weight.unwrap_or(1.0);
        if !weight.is_finite() || weight < 0.0 {
            return Err(config(format!(
                "{}: weight must be a finite number ≥ 0",
                place()
            )));
        }
        let d = self.defaults;
        let mut retry = t
            .retry
            .clone()
            .or_else(|| chain.retry.clone())
            .or_else(|| d.retry.clone())
            .unwrap_or_default();
        if let Some(n) = t.max_attempts {
            retry.max_attempts = n;
        }
        // What the target does not set comes from the catalog: by the vendor's name and the
        // model; for a provider the catalog does not know (a custom name), by the model alone.
        let known = self
            .catalog
            .get(provider.name(), &t.model)
            .or_else(|| self.catalog.get(&t.provider, &t.model))
            .or_else(|| match self.catalog.has_provider(provider.name()) {
                true => None,
                false => self.catalog.find(&t.model),
            });
        Ok(ResolvedTarget {
            id: TargetId::new(t.provider.as_str(), t.model.as_str()),
            provider,
            attempt_timeout: t
                .attempt_timeout
                .or(chain.attempt_timeout)
                .or(d.attempt_timeout)
                .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
            first_token_timeout: t
                .first_token_timeout
                .or(chain.first_token_timeout)
                .or(d.first_token_timeout),
            retry,
            context_window: t
                .context_window
                .or_else(|| known.and_then(|m| m.context_window)),
            prefill: t
                .prefill
                .unwrap_or_else(|| known.is_some_and(|m| m.capabilities.prefill)),
            tags: t.tags.clone(),
            weight,
            price: t
                .price
                .clone()
                .or_else(|| known.and_then(|m| m.price.clone())),
            state: self.registry.state(&t.provider, &t.model),
            keys: self.keys.get(&t.provider).cloned(),
            provider_limiter: self.registry.provider_limiter(&t.provider),
        })
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
