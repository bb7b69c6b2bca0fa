//! [`RelayBuilder`]: the relay's configuration, checked and resolved into the table calls
//! read (at [`build`](RelayBuilder::build), and again at every [`Relay::reload`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::chain::{self, Chain, Target};
use super::fleet::Fleet;
use super::health::{BreakerPolicy, RetryBudget};
use super::plan::{Resolver, Route};
use super::registry::Registry;
use super::router::Rules;
use super::{Accounting, Inner, Relay, Routers, Table};
use crate::accounting::{Observer, Observers, Stats, StatsConfig};
use crate::catalog::{Catalog, Price};
use crate::provider::{CallContext, Provider};
use crate::spend::budget::{Budget, Budgets};
use crate::spend::keys::{KeyPool, KeyRing};
use crate::spend::limiter::RateLimit;
use crate::store::Store;
use crate::types::{Error, ErrorKind};

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
    store: Option<Store>,
    targets: HashMap<String, Target>,
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

    /// Settings of one `provider/model` wherever the relay uses it: as a route's target (a
    /// setting the route's target gives itself wins), as a request's `model`, as a
    /// request-scoped fallback and in scoped chains — e.g. a response window or tags that
    /// hold for the model everywhere. Registering the same `provider/model` again replaces
    /// it. Default: none (the relay's [`defaults`](Self::defaults)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use polyrelay::{Relay, Target};
    /// let builder = Relay::builder().target(
    ///     Target::new("openai", "gpt-4o").first_token_timeout(Duration::from_millis(2500)),
    /// );
    /// ```
    pub fn target(mut self, target: Target) -> Self {
        self.targets
            .insert(format!("{}/{}", target.provider, target.model), target);
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
    ///
    /// [`ResponseMeta::baseline_cost`]: crate::types::ResponseMeta::baseline_cost
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

    /// Shares breakers and budgets with the other replicas of the application through
    /// `store` ([`crate::store`]): a background task exchanges them every sync interval, and
    /// no request waits on the store, which may be down (the relay then runs on its own
    /// state, and catches up when it returns). Needs a tokio runtime when the relay is built.
    /// Set when the relay is built: a [`Relay::reload`] keeps the relay's store. Default:
    /// none (every replica on its own).
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
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
    ///
    /// [`MAX_TIMEOUT`]: super::MAX_TIMEOUT
    pub fn build(mut self) -> Result<Relay, Error> {
        let store = self.store.take();
        if let Some(s) = &store {
            s.validate()?;
        }
        let table = Arc::new(Table {
            current: arc_swap::ArcSwap::from_pointee(self.build_inner(None)?),
            reloading: std::sync::Mutex::new(()),
            fleet: std::sync::OnceLock::new(),
        });
        if let Some(store) = store {
            let fleet = Fleet::start(store, Arc::downgrade(&table))?;
            let _ = table.fleet.set(fleet);
        }
        Ok(Relay { table })
    }

    /// The table, taking over `previous`'s per-target state, stats and HTTP client (a
    /// [`Relay::reload`]). Every setting is checked here, from code as from a file: a
    /// policy, budget, chain or target that cannot work is refused here, never on a later
    /// request.
    pub(super) fn build_inner(self, previous: Option<&Inner>) -> Result<Inner, Error> {
        let RelayBuilder {
            providers,
            routes,
            routers,
            http,
            defaults,
            breaker,
            breaker_overrides,
            retry_budget,
            catalog,
            baseline,
            observers,
            stats,
            no_stats,
            budgets,
            rate_limits,
            key_pools,
            // Set at build only: a reload keeps the relay's store.
            store: _,
            targets,
        } = self;
        let providers = check_providers(providers)?;
        check_breakers(&breaker, &breaker_overrides, &retry_budget, &providers)?;
        check_chains(&defaults, &routes)?;
        check_rate_limits(&rate_limits, &providers)?;
        let keys = key_rings(&key_pools, &providers, previous)?;
        let registry = Registry::new(
            breaker,
            retry_budget,
            breaker_overrides,
            rate_limits,
            previous.map(|p| &p.registry),
        );
        let catalog = match catalog {
            Some(c) => Arc::new(c),
            None => Catalog::builtin_shared(),
        };
        let baseline = baseline_price(baseline.as_deref(), &catalog)?;
        let (acct, budget_observers) = accounting(
            observers,
            &budgets,
            (!no_stats).then(|| stats.unwrap_or_default()),
            baseline,
            previous,
        )?;
        let resolver = Resolver {
            providers: &providers,
            defaults: &defaults,
            registry: &registry,
            catalog: &catalog,
            acct: &acct,
            keys: &keys,
            targets: &targets,
        };
        // Every registered target resolves (provider known, settings in range), so a request
        // that names it later cannot fail on its settings.
        let alone = Chain::default();
        for (name, t) in &targets {
            resolver.target(name, &alone, t)?;
        }
        let (patterns, routes): (Vec<_>, Vec<_>) =
            routes.into_iter().partition(|(name, _)| is_pattern(name));
        let patterns = resolve_patterns(&resolver, patterns)?;
        let routes = resolve_routes(&resolver, &routes)?;
        let routers = check_routers(routers, &routes, &providers)?;
        let http = match (http, previous) {
            (Some(c), _) => c,
            (None, Some(p)) => p.cx.http().clone(),
            (None, None) => crate::http::default_client()?,
        };
        Ok(Inner {
            providers,
            routes,
            routers,
            defaults,
            registry,
            pairs: RwLock::new(HashMap::new()),
            cx: CallContext::new(http),
            catalog,
            acct,
            budget_defs: budgets,
            budget_observers,
            keys,
            targets,
            patterns,
        })
    }
}

/// A `Config` error saying `msg`.
fn config(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

/// The providers by name: each named without `/`, valid ([`Provider::validate`]), once.
fn check_providers(
    list: Vec<(String, Arc<dyn Provider>)>,
) -> Result<HashMap<String, Arc<dyn Provider>>, Error> {
    let mut providers = HashMap::new();
    for (name, p) in list {
        if name.is_empty() || name.contains('/') {
            return Err(config(format!(
                "provider name {name:?} must be non-empty and contain no '/'"
            )));
        }
        p.validate()
            .map_err(|e| config(format!("provider {name:?}: {}", e.message())).with_source(e))?;
        if providers.insert(name.clone(), p).is_some() {
            return Err(config(format!("provider {name:?} registered twice")));
        }
    }
    Ok(providers)
}

/// The breaker policies (the relay's and each target's) and the retry budget.
fn check_breakers(
    breaker: &BreakerPolicy,
    overrides: &HashMap<String, BreakerPolicy>,
    retry_budget: &RetryBudget,
    providers: &HashMap<String, Arc<dyn Provider>>,
) -> Result<(), Error> {
    for key in overrides.keys() {
        check_target_key("breaker_for", key, providers)?;
    }
    breaker
        .validate()
        .map_err(|e| chain::prefixed("breaker: ", e))?;
    for (key, policy) in overrides {
        policy
            .validate()
            .map_err(|e| chain::prefixed(&format!("breaker_for({key:?}): "), e))?;
    }
    retry_budget
        .validate()
        .map_err(|e| chain::prefixed("retry_budget: ", e))
}

/// The relay's defaults, and each route's chain against them.
fn check_chains(defaults: &Chain, routes: &[(String, Chain)]) -> Result<(), Error> {
    defaults
        .validate()
        .and_then(|()| defaults.windows_fit(&Chain::default()))
        .map_err(|e| chain::prefixed("relay defaults: ", e))?;
    for (name, chain) in routes {
        chain
            .validate()
            .and_then(|()| chain.windows_fit(defaults))
            .map_err(|e| chain::prefixed(&format!("route {name:?}: "), e))?;
    }
    Ok(())
}

/// Each rate limit: on a known provider (alone: over all its targets) or `provider/model`.
fn check_rate_limits(
    limits: &HashMap<String, RateLimit>,
    providers: &HashMap<String, Arc<dyn Provider>>,
) -> Result<(), Error> {
    for (key, limit) in limits {
        // A provider's name alone: a limit over all its targets.
        if !key.contains('/') && !providers.contains_key(key.as_str()) {
            return Err(config(format!(
                "rate_limit({key:?}): no provider named {key:?}"
            )));
        } else if key.contains('/') {
            check_target_key("rate_limit", key, providers)?;
        }
        limit.validate().map_err(|e| {
            let message = format!("rate_limit({key:?}): {}", e.message());
            e.with_message(message)
        })?;
    }
    Ok(())
}

/// The key rings by provider, each taking over `previous`'s ring of the same provider.
fn key_rings(
    pools: &[(String, KeyPool)],
    providers: &HashMap<String, Arc<dyn Provider>>,
    previous: Option<&Inner>,
) -> Result<HashMap<String, Arc<KeyRing>>, Error> {
    let mut keys = HashMap::new();
    for (name, pool) in pools {
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
    Ok(keys)
}

/// The baseline model's price, which the catalog must know.
fn baseline_price(baseline: Option<&str>, catalog: &Catalog) -> Result<Option<Price>, Error> {
    let Some(name) = baseline else {
        return Ok(None);
    };
    match catalog.find(name).and_then(|m| m.price.clone()) {
        Some(p) => Ok(Some(p)),
        None => Err(config(format!(
            "baseline {name:?}: the catalog has no price for this model"
        ))),
    }
}

/// The accounting bundle (observers, stats, baseline, budgets) and who the budgets tell
/// about their events. Budgets whose definitions are unchanged since `previous` keep their
/// spend (and tell the new observers); stats (`None`: kept none) carry over.
fn accounting(
    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))] mut observers: Observers,
    budgets: &[Budget],
    stats: Option<StatsConfig>,
    baseline: Option<Price>,
    previous: Option<&Inner>,
) -> Result<(Arc<Accounting>, Arc<arc_swap::ArcSwap<Observers>>), Error> {
    #[cfg(feature = "metrics")]
    observers.push(Arc::new(crate::accounting::metrics::MetricsObserver::new()));
    let kept_budgets = previous
        .filter(|p| p.budget_defs == budgets)
        .and_then(|p| Some((p.acct.budgets.clone()?, p.budget_observers.clone())));
    let (budgets, budget_observers) = if budgets.is_empty() {
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
                let b = Budgets::new(budgets.to_vec(), Some(notify))?;
                (Some(Arc::new(b)), to)
            }
        }
    };
    let acct = Arc::new(Accounting {
        budgets,
        observers,
        stats: stats.map(|config| {
            previous
                .and_then(|p| p.acct.stats.clone())
                .unwrap_or_else(|| Arc::new(Stats::new(config)))
        }),
        baseline,
    });
    Ok((acct, budget_observers))
}

/// The routes, resolved: each named (not empty, not shadowing a `provider/model` pair) once.
fn resolve_routes(
    resolver: &Resolver<'_>,
    chains: &[(String, Chain)],
) -> Result<HashMap<String, Arc<Route>>, Error> {
    resolver.check_defaults()?;
    let mut routes = HashMap::new();
    for (name, chain) in chains {
        if name.is_empty() {
            return Err(config("a route name must not be empty".into()));
        }
        if let Some((p, _)) = name.split_once('/')
            && resolver.providers.contains_key(p)
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
    Ok(routes)
}

/// Whether a route's name is a pattern (`openai/*`, `openai/gpt-4*`).
fn is_pattern(name: &str) -> bool {
    name.contains('/') && name.ends_with('*')
}

/// The pattern routes, checked: the provider before `/` is registered, `*` ends the name
/// and appears once, and the chain resolves with a model of the pattern in front. Longest
/// prefix first, so `openai/gpt-4*` wins over `openai/*`.
fn resolve_patterns(
    resolver: &Resolver<'_>,
    list: Vec<(String, Chain)>,
) -> Result<Vec<super::Pattern>, Error> {
    let mut out: Vec<super::Pattern> = Vec::with_capacity(list.len());
    for (name, chain) in list {
        let prefix = name.trim_end_matches('*');
        let Some((provider, _)) = prefix.split_once('/') else {
            return Err(config(format!(
                "pattern route {name:?} is not \"provider/…*\""
            )));
        };
        if prefix.contains('*') || prefix.len() + 1 != name.len() {
            return Err(config(format!(
                "pattern route {name:?}: `*` may only end the name, once"
            )));
        }
        if !resolver.providers.contains_key(provider) {
            return Err(config(format!(
                "pattern route {name:?} names provider {provider:?}, which is not registered"
            )));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(config(format!("route {name:?} defined twice")));
        }
        // Checked as a request would use it: some model of the pattern, then the chain.
        let mut probe = chain.clone();
        let model = format!("{}example", prefix.split_once('/').map_or("", |(_, m)| m));
        probe.targets.insert(0, Target::new(provider, model));
        resolver.route(&name, &probe)?;
        out.push(super::Pattern {
            prefix: prefix.to_owned(),
            name,
            chain,
        });
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.prefix.len()));
    Ok(out)
}

/// The routers by name: each named apart from the routes and the `provider/model` pairs,
/// once, every route its rules name known.
fn check_routers(
    list: Vec<(String, Rules)>,
    routes: &HashMap<String, Arc<Route>>,
    providers: &HashMap<String, Arc<dyn Provider>>,
) -> Result<Routers, Error> {
    let mut routers = HashMap::new();
    for (name, rules) in list {
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
    Ok(routers)
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
