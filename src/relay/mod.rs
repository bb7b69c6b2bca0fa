//! The relay: resolves each request to a plan of targets (a route, a `provider/model` pair,
//! request-scoped fallbacks or a scoped chain), runs it through one attempt engine under one
//! deadline, and reports what it did.

mod accounts;
mod admission;
mod builder;
mod chain;
mod describe;
pub(crate) mod duration;
mod engine;
mod health;
mod limits;
mod plan;
mod policy;
mod router;
mod scoped;
mod stream;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::accounting::{self, BudgetEventKind, CallRecord, Observers, StatsSnapshot};
use crate::catalog::Catalog;
use crate::provider::{CallContext, Provider};
use crate::spend::budget::{
    BoundCharge, Budget, BudgetQuery, BudgetStatus, Charge, OverBudget, Refusal, Spend,
};
use crate::spend::keys::KeyRing;
use crate::telemetry;
use crate::types::{ChatRequest, ChatResponse, ChatStream, ResponseMeta, RoutingDecision};
use crate::types::{Error, ErrorKind};
use accounts::{Accounting, spend_of};

pub use crate::catalog::Price;
pub use builder::RelayBuilder;
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
pub use scoped::ScopedChain;

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
