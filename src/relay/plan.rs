//! Resolved routes and targets, and the [`Plan`]: the ordered steps one request walks.
//!
//! A [`Chain`] (a value) is resolved once against the registered providers and the relay's
//! defaults into a [`Route`] of [`ResolvedTarget`]s; every setting is then concrete. A
//! [`Plan`] is built per call from a route (the routing issue fills it from routers,
//! constraints and health); mid-stream recovery builds plans of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::time::Instant;

use super::accounts::Accounting;
use super::chain::{Chain, Hedge, MidStreamRecovery, Target};
use super::duration::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_STREAM_DURATION, DEFAULT_TOTAL_TIMEOUT, MAX_TIMEOUT,
};
use super::policy::{ContextOverflow, RetryPolicy};
use super::registry::{Registry, ResolvedTarget};
use super::strategy::Step;
use super::strategy::{Candidates, Strategy, TargetOrder};
use crate::catalog::Catalog;
use crate::provider::Provider;
use crate::spend::admission::{InputEstimate, output_estimate};
use crate::spend::keys::KeyRing;
use crate::types::TargetId;
use crate::types::{Error, ErrorKind};

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
            strategy: self.strategy.clone(),
            require_tags: self.require_tags.clone(),
            next: AtomicUsize::new(0),
            acct: self.acct.clone(),
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
        let mut candidates = Candidates::new(&mut steps, &route.targets, &route.next, req);
        route.strategy.order(&mut candidates);
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

/// Resolves chains against the registered providers and the relay's defaults.
pub(crate) struct Resolver<'a> {
    pub providers: &'a HashMap<String, Arc<dyn Provider>>,
    pub defaults: &'a Chain,
    pub registry: &'a Registry,
    pub catalog: &'a Catalog,
    pub acct: &'a Arc<Accounting>,
    /// Key pools by provider name.
    pub keys: &'a HashMap<String, Arc<KeyRing>>,
    /// Settings of `provider/model` wherever it is used ([`RelayBuilder::target`]).
    ///
    /// [`RelayBuilder::target`]: crate::RelayBuilder::target
    pub targets: &'a HashMap<String, Target>,
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
            strategy: chain
                .strategy
                .as_ref()
                .or(d.strategy.as_ref())
                .cloned()
                .unwrap_or_default(),
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
        // The target's own settings first, then the ones registered for it wherever used.
        let filled;
        let registered = (!self.targets.is_empty())
            .then(|| self.targets.get(&format!("{}/{}", t.provider, t.model)))
            .flatten();
        let t = match registered {
            Some(registered) => {
                filled = t.clone().filled_from(registered);
                &filled
            }
            None => t,
        };
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
