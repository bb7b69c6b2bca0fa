//! One call, top to bottom: **route** (the request's `model` through its router, or a scoped
//! chain; then its fallbacks) → **admit** (the budgets reserve its estimate, downgrade or
//! refuse: [`crate::spend::admission`]) → **plan** (constraints, windows, strategy, breakers:
//! [`Plan::build`]) → **run** the attempt engine under one deadline ([`engine::run`], or a
//! stream's [`stream::relay_stream`]) → **account** (cost, budgets settled, stats, observers).
//!
//! [`Relay::chat`] and [`Relay::chat_stream`] (and a [`ScopedChain`](super::ScopedChain)'s)
//! enter here once; the request's estimate is made once ([`InputEstimate`]) and read by the
//! budgets, the plan and the rate limits.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use super::accounts::{Accounting, spend_of};
use super::chain::{Chain, MidStreamRecovery, Target};
use super::duration::saturating_add;
use super::engine::{self, Mode};
use super::plan::{Plan, Route};
use super::router::RouterContext;
use super::{Inner, Relay, stream};
use crate::accounting::{self, CallRecord};
use crate::catalog::Price;
use crate::spend::admission::{Admitted, Gate, InputEstimate, Priced, Refused};
use crate::spend::budget::{BoundCharge, Charge};
use crate::telemetry;
use crate::types::{ChatRequest, ChatResponse, ChatStream, ResponseMeta, RoutingDecision};
use crate::types::{Error, ErrorKind};

/// Most `provider/model` routes kept resolved for reuse.
const MAX_CACHED_PAIRS: usize = 1024;

/// Most request-scoped fallbacks one request may name (after removing repeats): a client
/// cannot make one call into thousands of vendor calls.
pub const MAX_REQUEST_FALLBACKS: usize = 8;

/// Longest piece of a client's text (a model or route name) an error message repeats.
const MAX_ECHO: usize = 128;

/// A call's route, the routing decision that chose it (when a router did), and the request
/// a routing rule rewrote (masked) to be sent in place of the caller's.
type Routed = (
    Arc<Route>,
    Option<RoutingDecision>,
    Option<Box<ChatRequest>>,
);

/// [`Relay::chat`]: `req` through the route its `model` names, or through `scoped`.
pub(super) async fn chat(
    relay: &Relay,
    scoped: Option<&Arc<Route>>,
    req: &ChatRequest,
) -> Result<ChatResponse, Error> {
    let inner = relay.inner();
    let (route, routing, rewritten) = route(&inner, relay, scoped, req).await?;
    chat_on(&inner, route, rewritten.as_deref().unwrap_or(req), routing).await
}

/// [`Relay::chat_stream`]: `req` through the route its `model` names, or through `scoped`.
pub(super) async fn chat_stream(
    relay: &Relay,
    scoped: Option<&Arc<Route>>,
    req: &ChatRequest,
) -> Result<ChatStream, Error> {
    let inner = relay.inner();
    let (route, routing, rewritten) = route(&inner, relay, scoped, req).await?;
    stream_on(&inner, route, rewritten.as_deref().unwrap_or(req), routing).await
}

/// 1. Route: `scoped`, or the route `req.model` names (asking its router when it names
///    one), followed by the request's fallbacks. A rule may rewrite the request
///    ([`RoutingQuery::rewrite`](super::router::RoutingQuery::rewrite)): the rewritten one
///    is what every later step and every vendor sees.
async fn route(
    table: &Inner,
    relay: &Relay,
    scoped: Option<&Arc<Route>>,
    req: &ChatRequest,
) -> Result<Routed, Error> {
    if let Some(route) = scoped {
        return Ok((table.with_fallbacks(route.clone(), req)?, None, None));
    }
    let Some((name, rules)) = table.routers.get(&req.model) else {
        let primary = table.resolve_name(&req.model)?;
        return Ok((table.with_fallbacks(primary, req)?, None, None));
    };
    let (decision, rewritten) = rules.decide(name, req, &RouterContext { relay }).await;
    tracing::debug!(
        relay.router = %name,
        relay.rule = decision.rule.as_deref(),
        relay.route = %decision.route,
        reason = %decision.reason,
        "routed"
    );
    table.acct.observers.each(|o| o.routed(&decision));
    let primary = table.resolve_name(&decision.route)?;
    let sent = rewritten.as_deref().unwrap_or(req);
    Ok((
        table.with_fallbacks(primary, sent)?,
        Some(decision),
        rewritten,
    ))
}

/// 2.–5. A call that answers once: admitted and planned, run, accounted.
async fn chat_on(
    table: &Inner,
    route: Arc<Route>,
    req: &ChatRequest,
    mut routing: Option<RoutingDecision>,
) -> Result<ChatResponse, Error> {
    let start = Instant::now();
    let (route, mut charge, plan) = prepare(table, route, req, &mut routing, start, false)?;
    if let Err(e) = reserve_strict(&route, &mut charge).await {
        failed(
            &route.acct,
            &route.name,
            req,
            routing.take(),
            &e,
            start,
            false,
            charge,
        );
        return Err(e);
    }
    // Bound while the call runs: a caller dropping the call leaves its charge counted.
    let charge = route
        .acct
        .budgets
        .as_deref()
        .zip(charge)
        .map(|(budgets, c)| BoundCharge::new(budgets, c));
    let deadline = saturating_add(start, req.relay.timeout.unwrap_or(route.total_timeout));
    let span = call_span("chat", &route, req, routing.as_ref());
    let acct = &route.acct;
    let cx = &table.cx;
    // 4. Run.
    // The answer is boxed as it comes out of its attempt: the engine and the accounting
    // below move a pointer, not a whole response.
    let run = engine::run(&plan, start, deadline, Mode::Chat, |_step, t, a| {
        let answer = a.provider.chat(req, &t.id.model, cx);
        async move { answer.await.map(Box::new) }
    });
    // Wrapping in a disabled span only costs moves: skip it when nothing listens.
    let result = if span.is_disabled() {
        run.await
    } else {
        run.instrument(span.clone()).await
    };
    // 5. Account.
    match result {
        Ok(won) => {
            let mut resp = won.value;
            let request_id = resp.meta.request_id.take();
            let status = resp.meta.status;
            let rate_limit = resp.meta.rate_limit.take();
            resp.meta = won.meta;
            resp.meta.request_id = request_id;
            resp.meta.status = status;
            resp.meta.rate_limit = rate_limit;
            resp.meta.routing = routing;
            // An OpenAI-shaped answer names its model, even when the vendor's did not.
            if resp.model.is_empty()
                && let Some(served) = &resp.meta.served_by
            {
                resp.model = served.model.to_string();
            }
            acct.price_call(&mut resp.meta, resp.usage.as_ref());
            let end = Instant::now();
            if let Some(charge) = charge {
                charge.settle(spend_of(&resp.meta), end);
            }
            telemetry::record_answer(&span, &resp.meta, resp.usage.as_ref(), &resp.model);
            if !req.relay.nested {
                acct.finish(&CallRecord {
                    route: &route.name,
                    query_type: accounting::query_type(req.relay.intent.as_deref(), &resp.meta),
                    streamed: false,
                    meta: &resp.meta,
                    usage: resp.usage.as_ref(),
                    error: None,
                    duration: end.saturating_duration_since(start),
                });
            }
            Ok(*resp)
        }
        Err(e) => {
            span.record(telemetry::ERROR_TYPE, e.kind().as_str());
            let charge = charge.and_then(BoundCharge::into_inner);
            failed(acct, &route.name, req, routing, &e, start, false, charge);
            Err(e)
        }
    }
}

/// 2.–5. A streamed call: admitted and planned, run to its commit point, then handed to
/// the caller with its accounting riding along (it settles when the stream ends).
async fn stream_on(
    table: &Inner,
    route: Arc<Route>,
    req: &ChatRequest,
    mut routing: Option<RoutingDecision>,
) -> Result<ChatStream, Error> {
    let start = Instant::now();
    let (route, mut charge, plan) = prepare(table, route, req, &mut routing, start, true)?;
    if let Err(e) = reserve_strict(&route, &mut charge).await {
        failed(
            &route.acct,
            &route.name,
            req,
            routing.take(),
            &e,
            start,
            true,
            charge,
        );
        return Err(e);
    }
    let span = call_span("chat_stream", &route, req, routing.as_ref());
    let keep = (route.stream.recovery != MidStreamRecovery::Off).then(|| Arc::new(req.clone()));
    // The charge rides with the stream (it settles when the stream ends), or stays here
    // if no stream opens. A nested call has no charge (admission gave it none).
    let mut finish = (!req.relay.nested).then(|| stream::Finish {
        acct: route.acct.clone(),
        intent: req.relay.intent.as_deref().map(Arc::from),
        start,
        span: span.clone(),
        charge,
        estimated_tokens: plan.estimated_tokens,
    });
    // 4. Run (to the stream's commit point).
    let open = stream::relay_stream(plan, req, keep, &table.cx, start, &mut finish);
    let result = if span.is_disabled() {
        open.await
    } else {
        open.instrument(span.clone()).await
    };
    // 5. Account (a stream that opened accounts for itself when it ends).
    match result {
        Ok(mut stream) => {
            stream.meta_mut().routing = routing;
            Ok(stream)
        }
        Err(e) => {
            span.record(telemetry::ERROR_TYPE, e.kind().as_str());
            let charge = finish.and_then(|mut f| f.charge.take());
            let (acct, name) = (&route.acct, &route.name);
            failed(acct, name, req, routing, &e, start, true, charge);
            Err(e)
        }
    }
}

/// 2.–3. What a call does before its first attempt: the budgets' admission, then the
/// plan. A refusal is accounted here (`routing` is taken for it).
fn prepare(
    table: &Inner,
    route: Arc<Route>,
    req: &ChatRequest,
    routing: &mut Option<RoutingDecision>,
    start: Instant,
    streamed: bool,
) -> Result<(Arc<Route>, Option<Charge>, Plan), Error> {
    let mut input = InputEstimate::new(req);
    // 2. Admit.
    let (route, charge) = match admit(table, &route, req, routing.as_ref(), start, &mut input) {
        Ok((cheaper, charge)) => (cheaper.unwrap_or(route), charge),
        Err((on, e)) => {
            let route = on.unwrap_or(route);
            let (acct, name) = (&route.acct, &route.name);
            failed(acct, name, req, routing.take(), &e, start, streamed, None);
            return Err(e);
        }
    };
    // 3. Plan.
    match Plan::build(route.clone(), req, start, &mut input) {
        Ok(plan) => Ok((route, charge, plan)),
        Err(e) => {
            let (acct, name) = (&route.acct, &route.name);
            failed(acct, name, req, routing.take(), &e, start, streamed, charge);
            Err(e)
        }
    }
}

/// 2b. A strict budget across a fleet ([`Budget::strict`](crate::Budget::strict)) also
/// reserves the call's estimate at the store: one round trip, boxed so that the common call
/// carries only a pointer for it.
async fn reserve_strict(route: &Route, charge: &mut Option<Charge>) -> Result<(), Error> {
    match (route.acct.budgets.as_deref(), charge.as_mut()) {
        (Some(b), Some(c)) if b.needs_strict(c) => Box::pin(b.reserve_strict(c)).await,
        _ => Ok(()),
    }
}

/// The budgets' admission of `req` on `route` ([`Gate::admit`]); a downgrade resolves
/// its cheaper route here, with the request's fallbacks.
pub(super) fn admit(
    table: &Inner,
    route: &Route,
    req: &ChatRequest,
    routing: Option<&RoutingDecision>,
    start: Instant,
    input: &mut InputEstimate<'_>,
) -> Result<Admitted<Route>, Refused<Route>> {
    let Some(budgets) = &route.acct.budgets else {
        return Ok((None, None));
    };
    let gate = Gate {
        budgets,
        observers: &route.acct.observers,
        req,
        routing,
    };
    gate.admit(route, start, input, |cheaper| {
        table
            .resolve_name(cheaper)
            .and_then(|r| table.with_fallbacks(r, req))
            .ok()
    })
}

impl Inner {
    /// A route name, or a `provider/model` pair resolved with the relay's defaults.
    pub(super) fn resolve_name(&self, name: &str) -> Result<Arc<Route>, Error> {
        if let Some(route) = self.routes.get(name) {
            return Ok(route.clone());
        }
        if let Ok(pairs) = self.pairs.read()
            && let Some(route) = pairs.get(name)
        {
            return Ok(route.clone());
        }
        let target = Target::parse(name).filter(|t| self.providers.contains_key(&t.provider));
        let Some(target) = target else {
            let mut routes: Vec<&str> = self.routes.keys().map(String::as_str).collect();
            routes.sort_unstable();
            return Err(Error::new(
                ErrorKind::NoRoute,
                format!(
                    "no route or provider/model matches {} (routes: {})",
                    echo(name),
                    routes.join(", ")
                ),
            ));
        };
        let resolver = self.resolver();
        let route = match self.pattern_for(name) {
            // A pattern route: the model itself, then the pattern's chain (not twice).
            Some(pattern) => {
                let mut chain = pattern.chain.clone();
                chain
                    .targets
                    .retain(|t| t.provider != target.provider || t.model != target.model);
                chain.targets.insert(0, target);
                Arc::new(resolver.route(&pattern.name, &chain)?)
            }
            None => {
                let none = Chain::default();
                let resolved = resolver.target(name, &none, &target)?;
                Arc::new(resolver.route_with(name, &none, vec![Arc::new(resolved)]))
            }
        };
        if let Ok(mut pairs) = self.pairs.write()
            && pairs.len() < MAX_CACHED_PAIRS
        {
            pairs.insert(name.to_owned(), route.clone());
        }
        Ok(route)
    }

    /// `primary` followed by the request's fallbacks, under `primary`'s settings.
    pub(super) fn with_fallbacks(
        &self,
        primary: Arc<Route>,
        req: &ChatRequest,
    ) -> Result<Arc<Route>, Error> {
        if req.relay.fallbacks.is_empty() {
            return Ok(primary);
        }
        let mut names: Vec<&str> = Vec::with_capacity(req.relay.fallbacks.len().min(8));
        for name in &req.relay.fallbacks {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        if names.len() > MAX_REQUEST_FALLBACKS {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{} distinct request-scoped fallbacks; at most {MAX_REQUEST_FALLBACKS} are taken",
                    names.len()
                ),
            )
            .with_code("too_many_fallbacks"));
        }
        let mut targets = primary.targets.clone();
        for name in names {
            for t in self.resolve_name(name)?.targets.iter() {
                // A target already in the chain is not tried twice for naming it again.
                if !targets.iter().any(|have| have.id == t.id) {
                    targets.push(t.clone());
                }
            }
        }
        Ok(Arc::new(primary.with_targets(targets)))
    }
}

/// A route as the budgets see it: its name, and its targets' prices (the estimate is priced
/// at the dearest, since failover may land on any of them).
impl Priced for Route {
    fn name(&self) -> &str {
        &self.name
    }

    fn prices(&self) -> impl Iterator<Item = &Price> {
        self.targets.iter().filter_map(|t| t.price.as_ref())
    }
}

/// 5. Accounts for a call that failed (or was refused before any attempt).
#[allow(clippy::too_many_arguments)]
fn failed(
    acct: &Accounting,
    route: &Arc<str>,
    req: &ChatRequest,
    routing: Option<RoutingDecision>,
    e: &Error,
    start: Instant,
    streamed: bool,
    charge: Option<Charge>,
) {
    if req.relay.nested || (acct.stats.is_none() && !acct.observed() && charge.is_none()) {
        return;
    }
    let end = Instant::now();
    let mut meta = ResponseMeta {
        route: Some(route.clone()),
        routing,
        attempts: e.attempts().to_vec(),
        skipped: e.skipped().to_vec(),
        latency: end.saturating_duration_since(start),
        ..ResponseMeta::default()
    };
    acct.price_call(&mut meta, None);
    // Failed attempts that reported usage were billed; the rest of the estimate is freed.
    acct.settle(charge, &meta, end);
    acct.finish(&CallRecord {
        route,
        query_type: accounting::query_type(req.relay.intent.as_deref(), &meta),
        streamed,
        meta: &meta,
        usage: None,
        error: Some(e),
        duration: end.saturating_duration_since(start),
    });
}

/// `name` as an error message shows it: quoted, and cut at [`MAX_ECHO`] bytes.
fn echo(name: &str) -> String {
    let cut = crate::types::truncate_utf8(name, MAX_ECHO);
    if cut.len() < name.len() {
        format!("{cut:?}… ({} bytes)", name.len())
    } else {
        format!("{name:?}")
    }
}

/// The span of one call (names: [`telemetry`]).
fn call_span(
    operation: &'static str,
    route: &Route,
    req: &ChatRequest,
    routing: Option<&RoutingDecision>,
) -> tracing::Span {
    use telemetry::*;
    tracing::info_span!(
        "relay.chat",
        { GEN_AI_OPERATION_NAME } = "chat",
        { GEN_AI_PROVIDER_NAME } = tracing::field::Empty,
        { GEN_AI_REQUEST_MODEL } = %req.model,
        { GEN_AI_RESPONSE_MODEL } = tracing::field::Empty,
        { GEN_AI_USAGE_INPUT_TOKENS } = tracing::field::Empty,
        { GEN_AI_USAGE_OUTPUT_TOKENS } = tracing::field::Empty,
        { RELAY_OPERATION } = operation,
        { RELAY_ROUTE } = %route.name,
        { RELAY_ROUTER } = routing.map(|r| &*r.router),
        { RELAY_RULE } = routing.and_then(|r| r.rule.as_deref()),
        { RELAY_ROUTING_REASON } = routing.map(|r| r.reason.as_str()),
        { RELAY_INTENT } = req.relay.intent.as_deref(),
        { RELAY_ATTEMPTS } = tracing::field::Empty,
        { RELAY_SERVED_BY } = tracing::field::Empty,
        { RELAY_COST_USD } = tracing::field::Empty,
        { ERROR_TYPE } = tracing::field::Empty,
    )
}
