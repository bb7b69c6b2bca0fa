//! The relay: resolves each request to a plan of targets (a route, a `provider/model` pair,
//! request-scoped fallbacks or a scoped chain), runs it through one attempt engine under one
//! deadline, and reports what it did.

mod accounts;
mod admission;
mod chain;
mod describe;
pub(crate) mod duration;
mod engine;
mod health;
mod limits;
mod plan;
mod policy;
mod router;
mod stream;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::accounting::{
    self, BudgetEventKind, CallRecord, Observer, Observers, Stats, StatsConfig, StatsSnapshot,
};
use crate::catalog::Catalog;
use crate::provider::{CallContext, Provider};
use crate::spend::budget::{
    BoundCharge, Budget, BudgetQuery, BudgetStatus, Budgets, Charge, OverBudget, Refusal, Spend,
};
use crate::spend::keys::{KeyPool, KeyRing};
use crate::spend::limiter::RateLimit;
use crate::telemetry;
use crate::types::{ChatRequest, ChatResponse, ChatStream, ResponseMeta, RoutingDecision};
use crate::types::{Error, ErrorKind};
use accounts::{Accounting, spend_of};

pub use crate::catalog::Price;
pub use chain::{Chain, Hedge, MidStreamRecovery, Strategy, Target};
pub use describe::{
    ProviderDescription, RelayDescription, RouteDescription, RouterDescription, TargetDescription,
};
pub use duration::parse_duration;
use duration::saturating_add;
pub use engine::MAX_ATTEMPTS_PER_CALL;
use engine::Mode;
pub use health::{BreakerPolicy, RetryBudget, TargetHealth};
pub use limits::{BudgetLimits, KeyLimits, KeyPoolLimits, LimitsSnapshot, NamedLimiter};
pub use plan::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_STREAM_DURATION, DEFAULT_TOTAL_TIMEOUT, MAX_TIMEOUT,
};
use plan::{Plan, Registry, Resolver, Route};
pub use policy::{ContextOverflow, RetryPolicy};
pub use router::{RouteChoice, Router, RouterContext, RoutingQuery, Rules};

/// Most `provider/model` routes kept resolved for reuse.
const MAX_CACHED_PAIRS: usize = 1024;

/// Most request-scoped fallbacks one request may name (after removing repeats): a client
/// cannot make one call into thousands of vendor calls.
pub const MAX_REQUEST_FALLBACKS: usize = 8;

/// Longest piece of a client's text (a model or route name) an error message repeats.
const MAX_ECHO: usize = 128;

/// `name` as an error message shows it: quoted, and cut at [`MAX_ECHO`] bytes.
fn echo(name: &str) -> String {
    let cut = crate::types::truncate_utf8(name, MAX_ECHO);
    if cut.len() < name.len() {
        format!("{cut:?}… ({} bytes)", name.len())
    } else {
        format!("{name:?}")
    }
}

struct Inner {
    providers: HashMap<String, Arc<dyn Provider>>,
    routes: HashMap<String, Arc<Route>>,
    routers: HashMap<String, (Arc<str>, Arc<Rules>)>,
    defaults: Chain,
    registry: Registry,
    /// `provider/model` requests resolved with the defaults, kept for the next call.
    pairs: RwLock<HashMap<String, Arc<Route>>>,
    cx: CallContext,
    /// The catalog targets take their defaults from.
    catalog: Arc<Catalog>,
    acct: Arc<Accounting>,
    /// The budgets as configured (a reload that keeps them keeps their spend).
    budget_defs: Vec<Budget>,
    /// Who the budgets tell about their events: swapped by a reload that keeps the budgets,
    /// so the events reach the new observers, not the ones the budgets were built with.
    budget_observers: Arc<arc_swap::ArcSwap<Observers>>,
    /// Key pools by provider name.
    keys: HashMap<String, Arc<KeyRing>>,
}

/// Sends chat requests through fallback chains of providers. Cheap to clone and share
/// across tasks (an `Arc` inside).
///
/// ```no_run
/// # async fn demo() -> Result<(), polyrelay::Error> {
/// use std::time::Duration;
/// use polyrelay::{Chain, ChatRequest, Relay, Target, providers::OpenAi};
/// let relay = Relay::builder()
///     .provider("openai", OpenAi::new("sk-…"))
///     .provider("deepseek", OpenAi::deepseek("sk-…"))
///     .route("support", Chain::new()
///         .target(Target::new("openai", "gpt-4o").attempt_timeout(Duration::from_millis(2500)))
///         .target("deepseek/deepseek-chat"))
///     .build()?;
/// let resp = relay.chat(ChatRequest::new("support").user("Where is my order #123?")).await?;
/// println!("{} (served by {:?})", resp.text(), resp.meta.served_by);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Relay {
    /// The table calls read: swapped whole by [`Relay::reload`]; a call holds the table it
    /// started with to its end.
    table: Arc<Table>,
}

/// The swappable table, and the lock that keeps two reloads from interleaving.
struct Table {
    current: arc_swap::ArcSwap<Inner>,
    reloading: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.current();
        let mut routes: Vec<_> = inner.routes.keys().collect();
        routes.sort();
        f.debug_struct("Relay")
            .field("providers", &inner.providers)
            .field("routes", &routes)
            .field("defaults", &inner.defaults)
            .finish()
    }
}

impl Relay {
    /// Starts building a relay.
    pub fn builder() -> RelayBuilder {
        RelayBuilder::default()
    }

    /// The current table, owned: a call holds it to its end.
    fn inner(&self) -> Arc<Inner> {
        self.table.current.load_full()
    }

    /// The current table, for a quick look (no reference count taken).
    fn current(&self) -> arc_swap::Guard<Arc<Inner>> {
        self.table.current.load()
    }

    /// Replaces the relay's providers, routes, routers, defaults, breaker settings, catalog,
    /// observers and baseline with `builder`'s, atomically, for every clone of this relay.
    ///
    /// Calls in flight finish on the table they started with; the next call sees the new
    /// one. What the relay has learnt is kept: a target (`provider/model`) that remains,
    /// under the same breaker policy and retry budget, carries its health over (breaker
    /// state, error rate, latency, retry budget); one whose policy changed starts fresh, and
    /// one no longer used is forgotten. A pool key that remains keeps its state (resting and
    /// parked keys stay out until their time; an invalid one gets another chance), its
    /// counts, and its rate limiter if the pool's limit is unchanged. Budgets whose
    /// definitions are unchanged keep their windows. The stats go on accumulating (the
    /// rolling window keeps its length); the HTTP client (and its connection pool) is kept
    /// unless `builder` brings its own. Reloads run one at a time. An invalid `builder` is refused with the error
    /// [`build`](RelayBuilder::build) would give, and the current table keeps serving.
    ///
    /// ```
    /// use polyrelay::{Chain, Relay, providers::OpenAi};
    /// let relay = Relay::builder()
    ///     .provider("local", OpenAi::vllm())
    ///     .route("support", Chain::of(["local/llama-3.3-70b"]))
    ///     .build()?;
    /// relay.reload(Relay::builder()
    ///     .provider("local", OpenAi::vllm())
    ///     .route("support", Chain::of(["local/qwen3-32b", "local/llama-3.3-70b"])))?;
    /// assert_eq!(relay.describe().routes[0].targets.len(), 2);
    /// // Refused: the table keeps serving.
    /// assert!(relay.reload(Relay::builder().route("support", Chain::of(["nowhere/x"]))).is_err());
    /// assert_eq!(relay.describe().routes[0].targets.len(), 2);
    /// # Ok::<(), polyrelay::Error>(())
    /// ```
    pub fn reload(&self, builder: RelayBuilder) -> Result<(), Error> {
        let _one_at_a_time = self
            .table
            .reloading
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = self.inner();
        let next = builder.build_inner(Some(&current))?;
        let routes = next.routes.len();
        self.table.current.store(Arc::new(next));
        tracing::info!(
            relay.routes = routes,
            "relay reloaded: new routes, routers and providers serve the next calls"
        );
        Ok(())
    }

    /// Sends `req` through the route its `model` names (or straight to a `provider/model`
    /// pair, with the relay's defaults), then through its
    /// [`fallbacks`](ChatRequest::fallbacks), and returns the first answer, with
    /// [`ChatResponse::meta`] telling who served it and every attempt. Dropping the returned
    /// future cancels the in-flight requests (their connections close).
    ///
    /// Takes the request by value or by reference (`relay.chat(&req)` reuses a request
    /// without cloning it).
    pub async fn chat(&self, req: impl Borrow<ChatRequest>) -> Result<ChatResponse, Error> {
        let req = req.borrow();
        let inner = self.inner();
        let (route, routing) = self.route_for(&inner, req).await?;
        inner.chat_on(route, req, routing).await
    }

    /// Like [`chat`](Self::chat), streaming. Retries and failover apply until the stream's
    /// first content event (its commit point), within each target's first-token timeout
    /// ([`Target::first_token_timeout`]) and the call's deadline
    /// ([`Chain::total_timeout`]); nothing of an abandoned attempt reaches the caller. After
    /// the commit point a stall ([`Chain::stream_idle_timeout`]), a cut, an error event or the
    /// stream's longest duration ([`Chain::max_stream_duration`]) ends the stream with a
    /// `StreamInterrupted` error, unless the route recovers it
    /// ([`Chain::mid_stream_recovery`]). Every chunk names the target that produced it.
    /// Dropping the stream closes the vendor connection.
    ///
    /// Takes the request by value or by reference; a route that recovers interrupted streams
    /// keeps a copy of it for the stream's life.
    pub fn chat_stream<'a>(
        &'a self,
        req: impl Borrow<ChatRequest> + Send + 'a,
    ) -> impl std::future::Future<Output = Result<ChatStream, Error>> + Send + 'a {
        // Boxed, request included: the caller's task holds a pointer while the stream opens,
        // not the opening state machine, which would otherwise stay in it for the stream's life.
        Box::pin(async move {
            let req = req.borrow();
            let inner = self.inner();
            let (route, routing) = self.route_for(&inner, req).await?;
            inner.stream_on(route, req, routing).await
        })
    }

    /// Each budget's spend in its current window, its limit and when it resets, in the
    /// order they were configured.
    pub fn budgets(&self) -> Vec<BudgetStatus> {
        self.current()
            .acct
            .budgets
            .as_ref()
            .map(|b| b.status())
            .unwrap_or_default()
    }

    /// The stats so far: per (route, query type, provider, model), requests, successes,
    /// errors by kind, retries, failovers, tokens, cost against the baseline, latency and
    /// time-to-first-chunk percentiles, since start and over the rolling window
    /// ([`RelayBuilder::stats_window`]). Empty with [`RelayBuilder::without_stats`].
    pub fn stats(&self) -> StatsSnapshot {
        self.current()
            .acct
            .stats
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default()
    }

    /// Forgets the stats recorded so far (e.g. at the start of a reporting period).
    pub fn reset_stats(&self) {
        if let Some(s) = &self.current().acct.stats {
            s.reset();
        }
    }

    /// Benchmarks only: stats recording of a served call on `provider/model`.
    #[doc(hidden)]
    pub fn bench_stats(&self, provider: &str, model: &str) -> BenchStats {
        let target = crate::types::TargetId::new(provider, model);
        let usage = crate::types::Usage::new(420, 80);
        let attempt = crate::types::Attempt {
            target: target.clone(),
            try_number: 1,
            outcome: crate::types::AttemptOutcome::Served,
            status: Some(200),
            started: Duration::ZERO,
            latency: Duration::from_millis(420),
            error: None,
            usage: Some(usage),
            cost: Some(0.0001),
            key: None,
        };
        BenchStats {
            acct: self.current().acct.clone(),
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

    /// Benchmarks only: spend control's bookkeeping for one request on route `route`'s first
    /// target, as a call does it (budgets reserve then settle; the target's and its pool
    /// key's limiters admit, free and reconcile).
    #[doc(hidden)]
    pub fn bench_spend(&self, route: &str) -> Result<BenchSpend, Error> {
        let inner = self.inner();
        let route = inner.resolve_name(route)?;
        // A ticket of about 500 input tokens, 200 allowed out, intent "billing".
        let req = ChatRequest::new(route.name.to_string())
            .intent("billing")
            .user("x".repeat(2000))
            .max_tokens(200);
        let (input, output) = (
            plan::InputEstimate::new(&req).get(),
            plan::output_estimate(&req),
        );
        let tokens = u32::try_from(input + output).unwrap_or(u32::MAX);
        Ok(BenchSpend {
            inner,
            route,
            req,
            tokens,
        })
    }

    /// The model catalog the relay's targets take their defaults from.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current().catalog.clone()
    }

    /// Resolves `chain` once, for calls that bring their own chain instead of naming a route
    /// (a gateway whose clients name targets per request). Its targets share their state with
    /// every route that uses the same `provider/model`; settings it leaves unset come from
    /// the relay's defaults. Fails with a `Config` error as [`RelayBuilder::build`] would.
    /// A scoped chain keeps the providers it was resolved with across a
    /// [`reload`](Relay::reload).
    pub fn scoped(&self, chain: &Chain) -> Result<ScopedChain, Error> {
        let route = self.current().resolver().route("(scoped)", chain)?;
        Ok(ScopedChain {
            relay: self.clone(),
            route: Arc::new(route),
        })
    }

    /// The registered provider called `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.current().providers.get(name).cloned()
    }

    /// The health of every target the relay knows (routes' targets, and those request-scoped
    /// calls have used), sorted by name: breaker state, recent error rate, latency, attempts
    /// in flight, when an open breaker may next be probed, its rate limiter and the state of
    /// each key of its provider's pool.
    pub fn health(&self) -> Vec<TargetHealth> {
        let now = Instant::now();
        let inner = self.current();
        inner
            .registry
            .all()
            .into_iter()
            .map(|s| {
                let mut h = s.health.snapshot(s.id.clone(), now);
                h.limiter = s.limiter.as_ref().map(|l| l.status(now));
                h.provider_limiter = inner
                    .registry
                    .provider_limiter(&s.id.provider)
                    .map(|l| l.status(now));
                if let Some(ring) = inner.keys.get(&*s.id.provider) {
                    h.keys = ring.health(now);
                }
                h
            })
            .collect()
    }

    /// Benchmarks only: the route `name`, resolved, for [`BenchRoute::plan`].
    #[doc(hidden)]
    pub fn bench_route(&self, name: &str) -> Result<BenchRoute, Error> {
        Ok(BenchRoute(self.current().resolve_name(name)?))
    }

    /// Benchmarks only: the health of `provider/model`, for [`BenchHealth::cycle`].
    #[doc(hidden)]
    pub fn bench_health(&self, provider: &str, model: &str) -> BenchHealth {
        BenchHealth(self.current().registry.state(provider, model))
    }

    /// The smallest context window declared by the targets of route `name` (or of a
    /// `provider/model` pair), if any declares one: what a request must fit to be served
    /// there without a context-length failover.
    pub fn context_window(&self, name: &str) -> Option<u32> {
        let route = self.current().resolve_name(name).ok()?;
        route.targets.iter().filter_map(|t| t.context_window).min()
    }

    /// Route names, sorted.
    pub fn routes(&self) -> Vec<String> {
        let mut r: Vec<String> = self.current().routes.keys().cloned().collect();
        r.sort_unstable();
        r
    }

    /// Whether `name` is one of the relay's routes.
    pub fn has_route(&self, name: &str) -> bool {
        self.current().routes.contains_key(name)
    }

    /// Whether a provider is registered as `name`.
    pub fn has_provider(&self, name: &str) -> bool {
        self.current().providers.contains_key(name)
    }

    /// Router names, sorted.
    pub fn routers(&self) -> Vec<String> {
        let mut r: Vec<String> = self.current().routers.keys().cloned().collect();
        r.sort_unstable();
        r
    }

    /// The route for `req` on table `inner`, asking its router when `model` names one.
    async fn route_for(
        &self,
        inner: &Inner,
        req: &ChatRequest,
    ) -> Result<(Arc<Route>, Option<RoutingDecision>), Error> {
        let Some((name, rules)) = inner.routers.get(&req.model) else {
            let primary = inner.resolve_name(&req.model)?;
            return Ok((inner.with_fallbacks(primary, req)?, None));
        };
        let query = RoutingQuery::new(req);
        let decision = rules
            .decide(name, &query, &RouterContext { relay: self })
            .await;
        tracing::debug!(
            relay.router = %name,
            relay.rule = decision.rule.as_deref(),
            relay.route = %decision.route,
            reason = %decision.reason,
            "routed"
        );
        inner.acct.observers.each(|o| o.routed(&decision));
        let primary = inner.resolve_name(&decision.route)?;
        Ok((inner.with_fallbacks(primary, req)?, Some(decision)))
    }
}

impl Inner {
    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            providers: &self.providers,
            defaults: &self.defaults,
            registry: &self.registry,
            catalog: self.catalog(),
            acct: &self.acct,
            keys: &self.keys,
        }
    }

    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A route name, or a `provider/model` pair resolved with the relay's defaults.
    fn resolve_name(&self, name: &str) -> Result<Arc<Route>, Error> {
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
        let none = Chain::default();
        let resolved = resolver.target(name, &none, &target)?;
        let route = Arc::new(resolver.route_with(name, &none, vec![Arc::new(resolved)]));
        if let Ok(mut pairs) = self.pairs.write()
            && pairs.len() < MAX_CACHED_PAIRS
        {
            pairs.insert(name.to_owned(), route.clone());
        }
        Ok(route)
    }

    /// `primary` followed by the request's fallbacks, under `primary`'s settings.
    fn with_fallbacks(&self, primary: Arc<Route>, req: &ChatRequest) -> Result<Arc<Route>, Error> {
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

    /// Checks `route` against the budgets: reserves the request's estimated spend, or, when a
    /// budget is spent, downgrades to its cheaper route or refuses with `BudgetExceeded` (the
    /// route it was refused on comes back with the error, for the accounting).
    fn admit(
        &self,
        route: &Route,
        req: &ChatRequest,
        routing: Option<&RoutingDecision>,
        start: Instant,
        input: &mut plan::InputEstimate<'_>,
    ) -> Result<Admitted, Refused> {
        let Some(budgets) = &route.acct.budgets else {
            return Ok((None, None));
        };
        if req.relay.nested {
            // A classifier's call is counted under the request it routes.
            return Ok((None, None));
        }
        let intent = req
            .relay
            .intent
            .as_deref()
            .or_else(|| routing.and_then(|r| r.label.as_deref()));
        let (input, output) = (input.get(), plan::output_estimate(req));
        let reserve = |route: &Route| {
            let query = BudgetQuery {
                route: &route.name,
                intent,
                labels: &req.relay.labels,
                tags: &req.relay.require_tags,
            };
            budgets.reserve_at(&query, estimate(route, input, output), start)
        };
        let refusal = match reserve(route) {
            Ok(charge) => return Ok((None, (!charge.is_empty()).then_some(charge))),
            Err(r) => r,
        };
        let rejected = |on: Option<Arc<Route>>, refusal: Refusal| {
            let ex = &refusal.exceeded;
            let name = on.as_ref().map_or(&route.name, |r| &r.name);
            budget_event(&route.acct, ex, BudgetEventKind::Rejected, name);
            let err = Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "budget {:?} is spent for its window ({} of {} {}); the request was not sent",
                    ex.budget,
                    ex.spent,
                    ex.limit,
                    unit_name(ex.unit)
                ),
            )
            .with_budget(refusal.exceeded);
            Err((on, err))
        };
        let OverBudget::Downgrade(cheaper) = &refusal.action else {
            return rejected(None, refusal);
        };
        let Ok(cheaper) = self
            .resolve_name(cheaper)
            .and_then(|r| self.with_fallbacks(r, req))
        else {
            return rejected(None, refusal);
        };
        match reserve(&cheaper) {
            Ok(charge) => {
                let ex = &refusal.exceeded;
                tracing::info!(
                    relay.budget = %ex.budget,
                    relay.route = %route.name,
                    relay.downgraded_to = %cheaper.name,
                    "budget spent: request downgraded"
                );
                budget_event(&route.acct, ex, BudgetEventKind::Downgraded, &cheaper.name);
                Ok((Some(cheaper), (!charge.is_empty()).then_some(charge)))
            }
            Err(again) => rejected(Some(cheaper), again),
        }
    }

    /// What a call does before its first attempt: the budgets' admission, then the plan. A
    /// refusal is accounted here (`routing` is taken for it).
    fn prepare(
        &self,
        route: Arc<Route>,
        req: &ChatRequest,
        routing: &mut Option<RoutingDecision>,
        start: Instant,
        streamed: bool,
    ) -> Result<(Arc<Route>, Option<Charge>, Plan), Error> {
        let mut input = plan::InputEstimate::new(req);
        let (route, charge) = match self.admit(&route, req, routing.as_ref(), start, &mut input) {
            Ok((cheaper, charge)) => (cheaper.unwrap_or(route), charge),
            Err((on, e)) => {
                let route = on.unwrap_or(route);
                let (acct, name) = (&route.acct, &route.name);
                self.failed(acct, name, req, routing.take(), &e, start, streamed, None);
                return Err(e);
            }
        };
        match Plan::build(route.clone(), req, start, &mut input) {
            Ok(plan) => Ok((route, charge, plan)),
            Err(e) => {
                let (acct, name) = (&route.acct, &route.name);
                self.failed(acct, name, req, routing.take(), &e, start, streamed, charge);
                Err(e)
            }
        }
    }

    async fn chat_on(
        &self,
        route: Arc<Route>,
        req: &ChatRequest,
        mut routing: Option<RoutingDecision>,
    ) -> Result<ChatResponse, Error> {
        let start = Instant::now();
        let (route, charge, plan) = self.prepare(route, req, &mut routing, start, false)?;
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
        let cx = &self.cx;
        let run = engine::run(&plan, start, deadline, Mode::Chat, |_step, t, a| {
            a.provider.chat(req, &t.id.model, cx)
        });
        // Wrapping in a disabled span only costs moves: skip it when nothing listens.
        let result = if span.is_disabled() {
            run.await
        } else {
            run.instrument(span.clone()).await
        };
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
                Ok(resp)
            }
            Err(e) => {
                span.record(telemetry::ERROR_TYPE, e.kind().as_str());
                let charge = charge.and_then(BoundCharge::into_inner);
                self.failed(acct, &route.name, req, routing, &e, start, false, charge);
                Err(e)
            }
        }
    }

    /// Accounts for a call that failed (or was refused before any attempt).
    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
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

    async fn stream_on(
        &self,
        route: Arc<Route>,
        req: &ChatRequest,
        mut routing: Option<RoutingDecision>,
    ) -> Result<ChatStream, Error> {
        let start = Instant::now();
        let (route, charge, plan) = self.prepare(route, req, &mut routing, start, true)?;
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
        let open = stream::relay_stream(plan, req, keep, &self.cx, start, &mut finish);
        let result = if span.is_disabled() {
            open.await
        } else {
            open.instrument(span.clone()).await
        };
        match result {
            Ok(mut stream) => {
                stream.meta_mut().routing = routing;
                Ok(stream)
            }
            Err(e) => {
                span.record(telemetry::ERROR_TYPE, e.kind().as_str());
                let charge = finish.and_then(|mut f| f.charge.take());
                self.failed(
                    &route.acct,
                    &route.name,
                    req,
                    routing,
                    &e,
                    start,
                    true,
                    charge,
                );
                Err(e)
            }
        }
    }
}

/// Checks a setter's `"provider/model"` key names a registered provider.
fn check_target_key(
    setter: &str,
    key: &str,
    providers: &HashMap<String, Arc<dyn Provider>>,
) -> Result<(), Error> {
    let config = |msg: String| Error::new(ErrorKind::Config, msg);
    match key.split_once('/') {
        Some((provider, model)) if !model.is_empty() => {
            if providers.contains_key(provider) {
                Ok(())
            } else {
                Err(config(format!(
                    "{setter}({key:?}): no provider named {provider:?}"
                )))
            }
        }
        _ => Err(config(format!(
            "{setter}({key:?}): expected \"provider/model\""
        ))),
    }
}

/// A request the budgets let through: the route it goes to if not the one it asked for (a
/// downgrade), and its reservation.
type Admitted = (Option<Arc<Route>>, Option<Charge>);

/// A request the budgets refused: the route it was refused on if not the one it asked for,
/// and why.
type Refused = (Option<Arc<Route>>, Error);

/// What a request is estimated to spend on `route`: its input and output estimates at the
/// dearest price among the route's targets (failover may land on any of them).
fn estimate(route: &Route, input: u64, output: u64) -> Spend {
    let usage = crate::types::Usage::new(input, output);
    let usd = route
        .targets
        .iter()
        .filter_map(|t| t.price.as_ref())
        .map(|p| p.cost(&usage))
        .reduce(f64::max);
    Spend {
        usd,
        tokens: input + output,
    }
}

fn unit_name(unit: crate::types::BudgetUnit) -> &'static str {
    match unit {
        crate::types::BudgetUnit::Usd => "USD",
        _ => "tokens",
    }
}

/// Tells the observers what a budget did to a request.
fn budget_event(
    acct: &Accounting,
    ex: &crate::types::BudgetExceeded,
    kind: BudgetEventKind,
    route: &str,
) {
    acct.observers.each(|o| {
        o.budget(&accounting::BudgetEvent {
            name: &ex.budget,
            kind,
            unit: ex.unit,
            used: ex.spent,
            limit: ex.limit,
            route: Some(route),
        })
    });
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

/// Benchmarks only: a resolved route.
#[doc(hidden)]
pub struct BenchRoute(Arc<Route>);

impl BenchRoute {
    /// Builds `req`'s plan (constraints, windows, strategy, breakers) as a call does before
    /// sending; returns the number of steps.
    #[doc(hidden)]
    pub fn plan(&self, req: &ChatRequest) -> Result<usize, Error> {
        Ok(Plan::build(
            self.0.clone(),
            req,
            Instant::now(),
            &mut plan::InputEstimate::new(req),
        )?
        .steps
        .len())
    }
}

/// Benchmarks only: one target's health, reached as an attempt reaches it.
#[doc(hidden)]
pub struct BenchHealth(Arc<plan::TargetState>);

impl BenchHealth {
    /// One successful attempt's bookkeeping: permit, in-flight count, outcome with latency
    /// and the retry-budget deposit.
    #[doc(hidden)]
    pub fn cycle(&self, latency: std::time::Duration) {
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

/// Benchmarks only: the stats recording of one served call.
#[doc(hidden)]
pub struct BenchStats {
    acct: Arc<Accounting>,
    meta: ResponseMeta,
}

impl BenchStats {
    /// Records one served call (one attempt on `provider/model`, with usage and cost) under
    /// route `bench` and `query_type`, as a finished call is recorded.
    #[doc(hidden)]
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

/// Benchmarks only: see [`Relay::bench_spend`].
#[doc(hidden)]
pub struct BenchSpend {
    inner: Arc<Inner>,
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
    #[doc(hidden)]
    pub fn cycle(&self) -> bool {
        let now = Instant::now();
        let input = &mut plan::InputEstimate::new(&self.req);
        let Ok((cheaper, charge)) = self.inner.admit(&self.route, &self.req, None, now, input)
        else {
            return false;
        };
        let route = cheaper.as_ref().unwrap_or(&self.route);
        let target = route.targets.first();
        let mut admitted = true;
        if let Some(t) = target {
            match engine::bench_admit(t, self.tokens, now) {
                Ok(permits) => {
                    drop(permits);
                    engine::reconcile(t, None, self.tokens, 500, now);
                }
                Err(_) => admitted = false,
            }
        }
        if let (Some(c), Some(budgets)) = (charge, self.route.acct.budgets.as_deref()) {
            let usage = crate::types::Usage::new(420, 80);
            let usd = target
                .and_then(|t| t.price.as_ref())
                .map(|p| p.cost(&usage));
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

/// A chain resolved once against a relay ([`Relay::scoped`]): calls through it walk the
/// chain's targets instead of looking up the request's `model` (the request's
/// [`fallbacks`](ChatRequest::fallbacks), if any, still follow).
#[derive(Clone)]
pub struct ScopedChain {
    relay: Relay,
    route: Arc<Route>,
}

impl std::fmt::Debug for ScopedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<String> = self
            .route
            .targets
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        f.debug_struct("ScopedChain")
            .field("targets", &targets)
            .finish()
    }
}

impl ScopedChain {
    /// Like [`Relay::chat`], through this chain.
    pub async fn chat(&self, req: impl Borrow<ChatRequest>) -> Result<ChatResponse, Error> {
        let req = req.borrow();
        let inner = self.relay.inner();
        let route = inner.with_fallbacks(self.route.clone(), req)?;
        inner.chat_on(route, req, None).await
    }

    /// Like [`Relay::chat_stream`], through this chain.
    pub fn chat_stream<'a>(
        &'a self,
        req: impl Borrow<ChatRequest> + Send + 'a,
    ) -> impl std::future::Future<Output = Result<ChatStream, Error>> + Send + 'a {
        // Boxed for the same reason as `Relay::chat_stream`.
        Box::pin(async move {
            let req = req.borrow();
            let inner = self.relay.inner();
            let route = inner.with_fallbacks(self.route.clone(), req)?;
            inner.stream_on(route, req, None).await
        })
    }
}

/// Builds a [`Relay`]. Every setter documents its default.
#[derive(Default)]
pub struct RelayBuilder {
    providers: Vec<(String, Arc<dyn Provider>)>,
    routes: Vec<(String, Chain)>,
    routers: Vec<(String, Rules)>,
    http: Option<reqwest::Client>,
    defaults: Chain,
    breaker: BreakerPolicy,
    breaker_overrides: HashMap<String, BreakerPolicy>,
    retry_budget: RetryBudget,
    catalog: Option<Catalog>,
    baseline: Option<String>,
    observers: Observers,
    stats: Option<StatsConfig>,
    no_stats: bool,
    budgets: Vec<Budget>,
    rate_limits: HashMap<String, RateLimit>,
    key_pools: Vec<(String, KeyPool)>,
}

impl std::fmt::Debug for RelayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBuilder")
            .field("providers", &self.providers)
            .field("routes", &self.routes)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

impl RelayBuilder {
    /// Registers a provider under `name`, the name targets refer to (no `/` in it).
    pub fn provider(self, name: impl Into<String>, provider: impl Provider + 'static) -> Self {
        self.provider_arc(name, Arc::new(provider))
    }

    /// Registers a shared provider under `name`.
    pub fn provider_arc(mut self, name: impl Into<String>, provider: Arc<dyn Provider>) -> Self {
        self.providers.push((name.into(), provider));
        self
    }

    /// Adds a route: requests whose `model` is `name` go through `chain`.
    pub fn route(mut self, name: impl Into<String>, chain: Chain) -> Self {
        self.routes.push((name.into(), chain));
        self
    }

    /// Adds a router: requests whose `model` is `name` are routed by `rules` to one of the
    /// relay's routes (or a `provider/model` pair); `meta.routing` records which rule chose
    /// which route and why.
    pub fn router(mut self, name: impl Into<String>, rules: Rules) -> Self {
        self.routers.push((name.into(), rules));
        self
    }

    /// The relay's defaults: a chain without targets whose settings apply to every route
    /// and target that leaves them unset, to `provider/model` requests, to request-scoped
    /// fallbacks and to scoped chains. Default: the built-in defaults each [`Chain`] and
    /// [`Target`] setter names.
    ///
    /// ```
    /// use std::time::Duration;
    /// use polyrelay::{Chain, Relay};
    /// let builder = Relay::builder().defaults(Chain::new()
    ///     .first_token_timeout(Duration::from_millis(2500))
    ///     .total_timeout(Duration::from_secs(30)));
    /// ```
    pub fn defaults(mut self, defaults: Chain) -> Self {
        self.defaults = defaults;
        self
    }

    /// The circuit breaker of every target. Default: [`BreakerPolicy::default`] (opens after 5
    /// consecutive failures or a 50 % error rate over 30 s, 5 s cooldown, one probe at a time).
    pub fn breaker(mut self, policy: BreakerPolicy) -> Self {
        self.breaker = policy;
        self
    }

    /// The circuit breaker of one target, `"provider/model"`, in place of the relay's
    /// [`breaker`](Self::breaker): e.g. a self-hosted endpoint that should open sooner, or a
    /// last-resort target that should never open ([`BreakerPolicy::disabled`]). The target's
    /// state is shared by every route that names it, so its breaker is set here rather than on
    /// a route's [`Target`]. [`build`](Self::build) rejects a name with no `/` or an unknown
    /// provider.
    pub fn breaker_for(mut self, target: impl Into<String>, policy: BreakerPolicy) -> Self {
        self.breaker_overrides.insert(target.into(), policy);
        self
    }

    /// The retry budget of every target. Default: [`RetryBudget::default`] (20 % of
    /// requests, a burst of 10).
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// The model catalog targets take their prices, context windows and prefill capability
    /// from when they do not set them. Default: [`Catalog::builtin`]; extend or override it
    /// with [`Catalog::insert`] on a clone:
    ///
    /// ```
    /// use polyrelay::{Catalog, ModelInfo, Price, Relay};
    /// let mut catalog = Catalog::builtin().clone();
    /// catalog.insert(ModelInfo::new("onprem", "llama-3.3-70b").price(Price::per_million(0.1, 0.1)));
    /// let builder = Relay::builder().catalog(catalog);
    /// ```
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// The model every answer's cost is also priced on (`"openai/gpt-4o"`, or a model the
    /// catalog knows by name), so [`ResponseMeta::baseline_cost`] and the stats show what
    /// routing saved. [`build`](Self::build) fails if the catalog has no price for it.
    /// Default: none.
    pub fn baseline(mut self, model: impl Into<String>) -> Self {
        self.baseline = Some(model.into());
        self
    }

    /// Adds an observer: callbacks for routing decisions, attempts, retries, failovers,
    /// breaker changes and finished calls (see [`Observer`]).
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Adds a budget: a spend limit in US dollars or tokens over a window, for the whole
    /// relay, a route, an intent or a tag. Each call reserves its estimate (input size and
    /// `max_tokens`, else 1024 output tokens, at the dearest price of its route) before it is
    /// sent and settles what its attempts reported when it ends; once the budget is spent,
    /// calls under it are refused with [`BudgetExceeded`](ErrorKind::BudgetExceeded) or sent
    /// to the budget's cheaper route ([`Budget::downgrade_to`]). Default: no budgets.
    ///
    /// Spend survives a [`Relay::reload`] that keeps the same budgets.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// A client-side rate limit for `target` (`"provider/model"`): requests and tokens per
    /// minute and requests in flight, shared by every route and call that uses the target.
    /// When it is reached the relay fails over to the next target, or waits up to the limit's
    /// bound inside the call's deadline ([`RateLimit::wait_up_to`]). The vendor's rate-limit
    /// headers and a 429's `Retry-After` hold it further, so the relay slows down before the
    /// vendor refuses. Default: none.
    ///
    /// With a provider's name alone (`"deepseek"`), the limit is the provider's, over all its
    /// targets together (a vendor that limits a key, whatever the model); a target's own
    /// limit and its pool key's apply as well. An attempt one of them refuses takes nothing
    /// from the others.
    pub fn rate_limit(mut self, target: impl Into<String>, limit: RateLimit) -> Self {
        self.rate_limits.insert(target.into(), limit);
        self
    }

    /// Several API keys for provider `provider` (registered with [`provider`](Self::provider)):
    /// each attempt takes the next usable key. A key that gets a 429 rests for its
    /// `Retry-After`, one whose quota is exhausted (`insufficient_quota`, 402) is parked, one
    /// refused (401, 403) is parked until the relay is rebuilt or reloaded; the request moves
    /// to the next key of the same provider before it moves to the next target. Keys are
    /// named by index and fingerprint ([`KeyLabel`](crate::types::KeyLabel)) in
    /// [`Relay::health`], logs and events, never by value. Default: the provider's own key.
    pub fn key_pool(mut self, provider: impl Into<String>, pool: KeyPool) -> Self {
        self.key_pools.push((provider.into(), pool));
        self
    }

    /// The rolling window of [`Relay::stats`]. Default: one hour.
    pub fn stats_window(mut self, window: Duration) -> Self {
        self.stats = Some(StatsConfig { window });
        self
    }

    /// Keeps no stats ([`Relay::stats`] is then empty); costs and observers still work.
    pub fn without_stats(mut self) -> Self {
        self.no_stats = true;
        self
    }

    /// The HTTP client shared by every provider. Default: [`crate::http::default_client`]
    /// (pooled, 10 s connect timeout, no total timeout); tune one from
    /// [`crate::http::default_client_builder`].
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Validates the configuration and builds the relay. Fails with a `Config` error that
    /// names the provider, route and target at fault: an unknown or badly named provider, a
    /// provider whose own configuration does not hold ([`Provider::validate`], e.g. a base
    /// URL that does not parse), a route without targets or defined twice, a route name that
    /// shadows a `provider/model` pair, a zero timeout or one over [`MAX_TIMEOUT`].
    pub fn build(self) -> Result<Relay, Error> {
        Ok(Relay {
            table: Arc::new(Table {
                current: arc_swap::ArcSwap::from_pointee(self.build_inner(None)?),
                reloading: std::sync::Mutex::new(()),
            }),
        })
    }

    /// The table, taking over `previous`'s per-target state, stats and HTTP client (a
    /// [`Relay::reload`]).
    fn build_inner(self, previous: Option<&Inner>) -> Result<Inner, Error> {
        let config = |msg: String| Error::new(ErrorKind::Config, msg);
        let mut providers = HashMap::new();
        for (name, p) in self.providers {
            if name.is_empty() || name.contains('/') {
                return Err(config(format!(
                    "provider name {name:?} must be non-empty and contain no '/'"
                )));
            }
            p.validate().map_err(|e| {
                config(format!("provider {name:?}: {}", e.message())).with_source(e)
            })?;
            if providers.insert(name.clone(), p).is_some() {
                return Err(config(format!("provider {name:?} registered twice")));
            }
        }
        for key in self.breaker_overrides.keys() {
            check_target_key("breaker_for", key, &providers)?;
        }
        // Every setting is checked where it is given, from code as from a file: a policy,
        // budget, chain or target that cannot work is refused here, never on a later request.
        self.breaker
            .validate()
            .map_err(|e| chain::prefixed("breaker: ", e))?;
        for (key, policy) in &self.breaker_overrides {
            policy
                .validate()
                .map_err(|e| chain::prefixed(&format!("breaker_for({key:?}): "), e))?;
        }
        self.retry_budget
            .validate()
            .map_err(|e| chain::prefixed("retry_budget: ", e))?;
        self.defaults
            .validate()
            .and_then(|()| self.defaults.windows_fit(&Chain::default()))
            .map_err(|e| chain::prefixed("relay defaults: ", e))?;
        for (name, chain) in &self.routes {
            chain
                .validate()
                .and_then(|()| chain.windows_fit(&self.defaults))
                .map_err(|e| chain::prefixed(&format!("route {name:?}: "), e))?;
        }
        for (key, limit) in &self.rate_limits {
            // A provider's name alone: a limit over all its targets.
            if !key.contains('/') && !providers.contains_key(key.as_str()) {
                return Err(config(format!(
                    "rate_limit({key:?}): no provider named {key:?}"
                )));
            } else if key.contains('/') {
                check_target_key("rate_limit", key, &providers)?;
            }
            limit.validate().map_err(|e| {
                let message = format!("rate_limit({key:?}): {}", e.message());
                e.with_message(message)
            })?;
        }
        let mut keys = HashMap::new();
        for (name, pool) in &self.key_pools {
            let Some(base) = providers.get(name) else {
                return Err(config(format!(
                    "key_pool({name:?}): no provider named {name:?}"
                )));
            };
            let mut ring = KeyRing::new(name, &**base, pool)?;
            if let Some(previous) = previous.and_then(|p| p.keys.get(name)) {
                ring.take_over(previous);
            }
            if keys.insert(name.clone(), Arc::new(ring)).is_some() {
                return Err(config(format!("key_pool({name:?}) set twice")));
            }
        }
        let registry = Registry::new(
            self.breaker,
            self.retry_budget,
            self.breaker_overrides,
            self.rate_limits,
            previous.map(|p| &p.registry),
        );
        let catalog = match self.catalog {
            Some(c) => Arc::new(c),
            None => Catalog::builtin_shared(),
        };
        let catalog_ref: &Catalog = &catalog;
        let baseline = match &self.baseline {
            None => None,
            Some(name) => match catalog_ref.find(name).and_then(|m| m.price.clone()) {
                Some(p) => Some(p),
                None => {
                    return Err(config(format!(
                        "baseline {name:?}: the catalog has no price for this model"
                    )));
                }
            },
        };
        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut observers = self.observers;
        #[cfg(feature = "metrics")]
        observers.push(Arc::new(crate::accounting::metrics::MetricsObserver::new()));
        let kept_budgets = previous
            .filter(|p| p.budget_defs == self.budgets)
            .and_then(|p| Some((p.acct.budgets.clone()?, p.budget_observers.clone())));
        let (budgets, budget_observers) = if self.budgets.is_empty() {
            (
                None,
                Arc::new(arc_swap::ArcSwap::from_pointee(observers.clone())),
            )
        } else {
            match kept_budgets {
                // The same budgets: keep what they have spent, and tell the new observers.
                Some((b, to)) => {
                    to.store(Arc::new(observers.clone()));
                    (Some(b), to)
                }
                None => {
                    let to = Arc::new(arc_swap::ArcSwap::from_pointee(observers.clone()));
                    let notify_to = to.clone();
                    let notify: crate::spend::budget::Notify =
                        Arc::new(move |e| notify_to.load().each(|o| o.budget(e)));
                    let b = Budgets::new(self.budgets.clone(), Some(notify))?;
                    (Some(Arc::new(b)), to)
                }
            }
        };
        let acct = Arc::new(Accounting {
            budgets,
            observers,
            stats: (!self.no_stats).then(|| {
                previous
                    .and_then(|p| p.acct.stats.clone())
                    .unwrap_or_else(|| Arc::new(Stats::new(self.stats.unwrap_or_default())))
            }),
            baseline,
        });
        let mut routes = HashMap::new();
        {
            let resolver = Resolver {
                providers: &providers,
                defaults: &self.defaults,
                registry: &registry,
                catalog: catalog_ref,
                acct: &acct,
                keys: &keys,
            };
            resolver.check_defaults()?;
            for (name, chain) in &self.routes {
                if name.is_empty() {
                    return Err(config("a route name must not be empty".into()));
                }
                if let Some((p, _)) = name.split_once('/')
                    && providers.contains_key(p)
                {
                    return Err(config(format!(
                        "route {name:?} shadows the provider/model pair of provider {p:?}; \
                         give the route a name without '/'"
                    )));
                }
                let route = resolver.route(name, chain)?;
                if routes.insert(name.clone(), Arc::new(route)).is_some() {
                    return Err(config(format!("route {name:?} defined twice")));
                }
            }
        }
        let mut routers = HashMap::new();
        for (name, rules) in self.routers {
            if routes.contains_key(&name) {
                return Err(config(format!("router {name:?} has the name of a route")));
            }
            if let Some((p, _)) = name.split_once('/')
                && providers.contains_key(p)
            {
                return Err(config(format!(
                    "router {name:?} shadows the provider/model pair of provider {p:?}; \
                     give the router a name without '/'"
                )));
            }
            for (rule, route) in rules.declared_routes() {
                let known = routes.contains_key(&*route)
                    || Target::parse(&route).is_some_and(|t| providers.contains_key(&t.provider));
                if !known {
                    let by = match rule {
                        Some(r) => format!("rule {r:?}"),
                        None => "its default".to_owned(),
                    };
                    return Err(config(format!(
                        "router {name:?}: {by} names route {route:?}, which is neither a route \
                         nor a provider/model pair"
                    )));
                }
            }
            let key: Arc<str> = Arc::from(name.as_str());
            if routers
                .insert(name.clone(), (key, Arc::new(rules)))
                .is_some()
            {
                return Err(config(format!("router {name:?} defined twice")));
            }
        }
        let http = match (self.http, previous) {
            (Some(c), _) => c,
            (None, Some(p)) => p.cx.http().clone(),
            (None, None) => crate::http::default_client()?,
        };
        Ok(Inner {
            providers,
            routes,
            routers,
            defaults: self.defaults,
            registry,
            pairs: RwLock::new(HashMap::new()),
            cx: CallContext::new(http),
            catalog,
            acct,
            budget_defs: self.budgets,
            budget_observers,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;

    #[async_trait::async_trait]
    impl Provider for Nothing {
        fn name(&self) -> &str {
            "nothing"
        }
        async fn chat(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatResponse, Error> {
            Err(Error::new(ErrorKind::Server, "no"))
        }
        async fn chat_stream(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatStream, Error> {
            Err(Error::new(ErrorKind::Server, "no"))
        }
    }

    #[test]
    fn target_state_is_shared_by_routes_pairs_and_scoped_chains() {
        let relay = Relay::builder()
            .provider("p", Nothing)
            .route("a", Chain::of(["p/m", "p/other"]))
            .route("b", Chain::of(["p/m"]))
            .build()
            .unwrap();
        let inner = relay.inner();
        let a = &inner.routes["a"].targets[0].state;
        let b = &inner.routes["b"].targets[0].state;
        assert!(Arc::ptr_eq(a, b));
        let pair = inner.resolve_name("p/m").unwrap();
        assert!(Arc::ptr_eq(a, &pair.targets[0].state));
        let scoped = relay.scoped(&Chain::of(["p/m"])).unwrap();
        assert!(Arc::ptr_eq(a, &scoped.route.targets[0].state));
        let req = ChatRequest::new("b").fallbacks(["p/other"]);
        let fb = inner
            .with_fallbacks(inner.resolve_name("b").unwrap(), &req)
            .unwrap();
        assert!(Arc::ptr_eq(
            &inner.routes["a"].targets[1].state,
            &fb.targets[1].state
        ));
        assert!(!Arc::ptr_eq(a, &inner.routes["a"].targets[1].state));
    }
}
