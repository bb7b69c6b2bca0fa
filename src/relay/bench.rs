//! Benchmarks only, behind the non-default `bench-internals` feature (hidden from the docs):
//! the relay's internal bookkeeping, reached the way a call reaches it, for `benches/` to
//! measure parts too small to see through a whole call (a stats record, a budget reservation,
//! a plan, a breaker's cycle). Not part of the API; may change or go away in any release.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::accounts::Accounting;
use super::duration::saturating_add;
use super::plan::{Plan, Route};
use super::registry::TargetState;
use super::{Relay, admission, call, health};
use crate::accounting::CallRecord;
use crate::accounting::cost::attempt_cost;
use crate::spend::admission::{InputEstimate, output_estimate};
use crate::spend::budget::Spend;
use crate::types::{Attempt, AttemptOutcome, ChatRequest, Error, ResponseMeta, TargetId, Usage};

/// The stats recording of a served call on `provider/model`, on `relay`'s stats.
pub fn stats(relay: &Relay, provider: &str, model: &str) -> BenchStats {
    let target = TargetId::new(provider, model);
    let usage = Usage::new(420, 80);
    let attempt = Attempt {
        target: target.clone(),
        try_number: 1,
        outcome: AttemptOutcome::Served,
        status: Some(200),
        started: Duration::ZERO,
        latency: Duration::from_millis(420),
        error: None,
        usage: Some(usage),
        cost: Some(0.0001),
        key: None,
    };
    BenchStats {
        acct: relay.current().acct.clone(),
        meta: ResponseMeta {
            route: Some(Arc::from("bench")),
            served_by: Some(target),
            attempts: vec![attempt],
            served: Some(0),
            cost: Some(0.0001),
            baseline_cost: Some(0.002),
            ..ResponseMeta::default()
        },
    }
}

/// Spend control's bookkeeping for one request on route `route`'s first target, as a call
/// does it (budgets reserve then settle; the target's and its pool key's limiters admit,
/// free and reconcile).
pub fn spend(relay: &Relay, route: &str) -> Result<BenchSpend, Error> {
    let inner = relay.inner();
    let route = inner.resolve_name(route)?;
    // A ticket of about 500 input tokens, 200 allowed out, intent "billing".
    let req = ChatRequest::new(route.name.to_string())
        .intent("billing")
        .user("x".repeat(2000))
        .max_tokens(200);
    let (input, output) = (InputEstimate::new(&req).get(), output_estimate(&req));
    let tokens = u32::try_from(input + output).unwrap_or(u32::MAX);
    Ok(BenchSpend {
        inner,
        route,
        req,
        tokens,
    })
}

/// The route `name`, resolved, for [`BenchRoute::plan`].
pub fn route(relay: &Relay, name: &str) -> Result<BenchRoute, Error> {
    Ok(BenchRoute(relay.current().resolve_name(name)?))
}

/// The health of `provider/model`, for [`BenchHealth::cycle`].
pub fn health(relay: &Relay, provider: &str, model: &str) -> BenchHealth {
    BenchHealth(relay.current().registry.state(provider, model))
}

/// A resolved route.
pub struct BenchRoute(Arc<Route>);

impl BenchRoute {
    /// Builds `req`'s plan (constraints, windows, strategy, breakers) as a call does before
    /// sending; returns the number of steps.
    pub fn plan(&self, req: &ChatRequest) -> Result<usize, Error> {
        let input = &mut InputEstimate::new(req);
        Ok(Plan::build(self.0.clone(), req, Instant::now(), input)?
            .steps
            .len())
    }
}

/// One target's health, reached as an attempt reaches it.
pub struct BenchHealth(Arc<TargetState>);

impl BenchHealth {
    /// One successful attempt's bookkeeping: permit, in-flight count, outcome with latency
    /// and the retry-budget deposit.
    pub fn cycle(&self, latency: Duration) {
        use std::sync::atomic::Ordering;
        let h = &self.0.health;
        let now = Instant::now();
        let permit = h.permit(now, false);
        h.in_flight.fetch_add(1, Ordering::Relaxed);
        h.record(
            saturating_add(now, latency),
            permit,
            health::Outcome::Success(latency),
            true,
        );
        h.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The stats recording of one served call.
pub struct BenchStats {
    acct: Arc<Accounting>,
    meta: ResponseMeta,
}

impl BenchStats {
    /// Records one served call (one attempt on `provider/model`, with usage and cost) under
    /// route `bench` and `query_type`, as a finished call is recorded.
    pub fn record(&self, query_type: Option<&str>) {
        if let (Some(s), Some(route)) = (&self.acct.stats, &self.meta.route) {
            s.record(&CallRecord {
                route,
                query_type,
                streamed: false,
                meta: &self.meta,
                usage: self.meta.attempts[0].usage.as_ref(),
                error: None,
                duration: Duration::from_millis(420),
            });
        }
    }
}

/// See [`spend`].
pub struct BenchSpend {
    inner: Arc<super::Inner>,
    route: Arc<Route>,
    req: ChatRequest,
    /// The request's token estimate, as its plan holds it.
    tokens: u32,
}

impl BenchSpend {
    /// One request's bookkeeping, through the code a call runs: the budgets' admission (the
    /// estimate reserved), the first target's limits (admitted, the slot freed, reconciled
    /// with 500 tokens), then the budgets settled with 420 in, 80 out. Returns whether the
    /// budgets and limits let it through.
    pub fn cycle(&self) -> bool {
        let now = Instant::now();
        let input = &mut InputEstimate::new(&self.req);
        let Ok((cheaper, charge)) =
            call::admit(&self.inner, &self.route, &self.req, None, now, input)
        else {
            return false;
        };
        let route = cheaper.as_ref().unwrap_or(&self.route);
        let target = route.targets.first();
        let mut admitted = true;
        if let Some(t) = target {
            match admission::admit(t, 0, &[], self.tokens, now) {
                Ok(permits) => {
                    drop(permits);
                    admission::reconcile(t, None, self.tokens, 500, now);
                }
                Err(_) => admitted = false,
            }
        }
        if let (Some(c), Some(budgets)) = (charge, self.route.acct.budgets.as_deref()) {
            let usage = Usage::new(420, 80);
            let usd = attempt_cost(target.and_then(|t| t.price.as_ref()), Some(&usage));
            // At the cycle's start: a call settles at a clock read it makes anyway (for its
            // duration).
            c.settle(
                budgets,
                Spend {
                    usd,
                    tokens: usage.total_tokens(),
                },
                now,
            );
        }
        admitted
    }
}
