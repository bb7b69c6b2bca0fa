//! The relay: resolves each request to a plan of targets (a route, a `provider/model` pair,
//! request-scoped fallbacks or a scoped chain), runs it through one attempt engine under one
//! deadline, and reports what it did.

mod accounts;
mod admission;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench;
mod builder;
mod call;
mod chain;
mod describe;
pub(crate) mod duration;
mod engine;
mod fleet;
mod fleet_stats;
mod health;
mod limits;
mod plan;
mod policy;
mod registry;
mod retry;
mod router;
mod scoped;
mod strategy;
mod stream;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::time::Instant;

use crate::accounting::{Observers, StatsSnapshot};
use crate::catalog::Catalog;
use crate::provider::{CallContext, Provider};
use crate::spend::budget::{Budget, BudgetStatus};
use crate::spend::keys::KeyRing;
use crate::types::{ChatRequest, ChatResponse, ChatStream, Error};
use accounts::Accounting;

pub use crate::catalog::Price;
pub use builder::RelayBuilder;
pub use call::MAX_REQUEST_FALLBACKS;
pub use chain::{Chain, Hedge, MidStreamRecovery, Target};
pub use describe::{
    ProviderDescription, RelayDescription, RouteDescription, RouterDescription, TargetDescription,
};
pub use duration::parse_duration;
pub use duration::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_STREAM_DURATION, DEFAULT_TOTAL_TIMEOUT, MAX_TIMEOUT,
};
pub use engine::MAX_ATTEMPTS_PER_CALL;
pub use fleet_stats::FleetStats;
pub use health::{BreakerPolicy, RetryBudget, TargetHealth};
pub use limits::{BudgetLimits, KeyLimits, KeyPoolLimits, LimitsSnapshot, NamedLimiter};
use plan::{Resolver, Route};
pub use policy::{ContextOverflow, RetryPolicy};
use registry::Registry;
pub use router::{RouteChoice, Router, RouterContext, RoutingQuery, Rules};
pub use scoped::ScopedChain;
pub use strategy::{Candidate, Candidates, Strategy, TargetOrder};

/// The routers by name, each with its name shared (for the routing decisions it makes).
type Routers = HashMap<String, (Arc<str>, Arc<Rules>)>;

struct Inner {
    providers: HashMap<String, Arc<dyn Provider>>,
    routes: HashMap<String, Arc<Route>>,
    routers: Routers,
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
    /// Settings of `provider/model` wherever it is used, by `provider/model`.
    targets: HashMap<String, Target>,
    /// Pattern routes (`openai/*`, `openai/gpt-4*`): the part before `*`, the route's name
    /// and its chain (the fallbacks after the matched target), longest prefix first.
    patterns: Vec<Pattern>,
}

/// A pattern route: every `provider/model` that starts with `prefix` goes through `chain`,
/// the model itself first.
#[derive(Clone, Debug)]
struct Pattern {
    prefix: String,
    name: String,
    chain: Chain,
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
    /// The sync task of a relay with a store ([`RelayBuilder::store`]), stopped with the
    /// table.
    fleet: std::sync::OnceLock<fleet::Fleet>,
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
        call::chat(self, None, req.borrow()).await
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
        Box::pin(async move { call::chat_stream(self, None, req.borrow()).await })
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

    /// The state of the relay's link to its fleet store ([`RelayBuilder::store`]): whether
    /// the last exchange succeeded, counts of exchanges and failures, the last error. `None`
    /// without a store.
    pub fn store_health(&self) -> Option<crate::store::StoreHealth> {
        self.table.fleet.get().map(fleet::Fleet::health)
    }

    /// Exchanges state with the fleet store now and waits for it (an exchange that starts
    /// after this call): breakers and budgets are then as the fleet had them. Requests never
    /// need this (a background task exchanges every sync interval); it is for tests, and for
    /// a replica about to stop that wants its last spend counted. Errors: `Config` without a
    /// store, else the store's error when it did not answer in time.
    pub async fn sync_store(&self) -> Result<(), Error> {
        match self.table.fleet.get() {
            Some(f) => f.sync().await,
            None => Err(Error::new(
                crate::types::ErrorKind::Config,
                "the relay has no store (RelayBuilder::store)",
            )),
        }
    }

    /// The whole fleet's stats ([`RelayBuilder::store`]): every replica's stats since it
    /// started, added up per route, query type, provider and model, so the cost per model
    /// per query type covers the fleet. Replicas publish theirs every 5 s (this one first
    /// publishes its own); one read of the store. Errors: `Config` without a store, else
    /// the store's error.
    pub async fn fleet_stats(&self) -> Result<FleetStats, Error> {
        match self.table.fleet.get() {
            Some(f) => f.stats().await,
            None => Err(Error::new(
                crate::types::ErrorKind::Config,
                "the relay has no store (RelayBuilder::store)",
            )),
        }
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
        let table = self.current();
        table.routes.contains_key(name) || table.pattern_for(name).is_some()
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
            targets: &self.targets,
        }
    }

    /// The pattern route a `provider/model` name falls under, if any (the longest prefix).
    fn pattern_for(&self, name: &str) -> Option<&Pattern> {
        if self.patterns.is_empty() {
            return None;
        }
        let (provider, model) = name.split_once('/')?;
        if model.is_empty() || !self.providers.contains_key(provider) {
            return None;
        }
        self.patterns.iter().find(|p| name.starts_with(&p.prefix))
    }

    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ErrorKind;

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
