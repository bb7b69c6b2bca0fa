//! What a relay is made of, as plain values: for comparing two relays (a configuration file
//! against the code it stands for), for listing routes (a gateway's `/v1/models`), and for
//! logs.

use std::time::Duration;

use super::{ContextOverflow, Hedge, MidStreamRecovery, Price, Relay, RetryPolicy, Strategy};

/// A relay's providers, routes and routers, resolved (every default applied), from
/// [`Relay::describe`]. Two relays built alike describe alike; API keys never appear (a
/// provider is shown by its redacting `Debug`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RelayDescription {
    /// Providers by name, sorted.
    pub providers: Vec<ProviderDescription>,
    /// Routes, sorted by name.
    pub routes: Vec<RouteDescription>,
    /// Routers, sorted by name.
    pub routers: Vec<RouterDescription>,
}

/// A registered provider.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProviderDescription {
    /// The name targets refer to.
    pub name: String,
    /// The provider's `Debug` output (kind, URL; credentials redacted).
    pub detail: String,
}

/// A route with its settings resolved.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RouteDescription {
    /// The route's name.
    pub name: String,
    /// Its targets, in the written order.
    pub targets: Vec<TargetDescription>,
    /// The call's deadline.
    pub total_timeout: Duration,
    /// How targets are ordered per request.
    pub strategy: Strategy,
    /// Hedging, if any.
    pub hedge: Option<Hedge>,
    /// Tags every target must carry.
    pub require_tags: Vec<String>,
    /// What a context-length error does.
    pub context_overflow: ContextOverflow,
    /// Whether invalid requests fail over.
    pub fail_over_invalid_requests: bool,
    /// Longest silence in a started stream.
    pub stream_idle_timeout: Option<Duration>,
    /// Longest whole stream.
    pub max_stream_duration: Duration,
    /// Whether malformed stream events are skipped.
    pub lenient_streams: bool,
    /// Recovery of a stream interrupted after its start.
    pub mid_stream_recovery: MidStreamRecovery,
}

/// A target of a route with its settings resolved.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TargetDescription {
    /// The provider's name.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Time for one attempt.
    pub attempt_timeout: Duration,
    /// The response window.
    pub first_token_timeout: Option<Duration>,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Its context window (set, or the catalog's).
    pub context_window: Option<u32>,
    /// Whether it continues an assistant prefill.
    pub prefill: bool,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its weight.
    pub weight: f64,
    /// Its price (set, or the catalog's).
    pub price: Option<Price>,
}

/// A router: its rules in order and the routes each may pick.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RouterDescription {
    /// The router's name.
    pub name: String,
    /// The route taken when no rule matches.
    pub default_route: String,
    /// Each rule's name and the routes it declares, sorted.
    pub rules: Vec<(String, Vec<String>)>,
}

impl Relay {
    /// What this relay is made of (see [`RelayDescription`]).
    pub fn describe(&self) -> RelayDescription {
        let inner = self.current();
        let mut providers: Vec<ProviderDescription> = inner
            .providers
            .iter()
            .map(|(name, p)| ProviderDescription {
                name: name.clone(),
                detail: format!("{p:?}"),
            })
            .collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut routes: Vec<RouteDescription> = inner
            .routes
            .values()
            .map(|r| RouteDescription {
                name: r.name.to_string(),
                targets: r
                    .targets
                    .iter()
                    .map(|t| TargetDescription {
                        provider: t.id.provider.to_string(),
                        model: t.id.model.to_string(),
                        attempt_timeout: t.attempt_timeout,
                        first_token_timeout: t.first_token_timeout,
                        retry: t.retry.clone(),
                        context_window: t.context_window,
                        prefill: t.prefill,
                        tags: t.tags.clone(),
                        weight: t.weight,
                        price: t.price.clone(),
                    })
                    .collect(),
                total_timeout: r.total_timeout,
                strategy: r.strategy.clone(),
                hedge: r.hedge,
                require_tags: r.require_tags.clone(),
                context_overflow: r.context_overflow,
                fail_over_invalid_requests: r.fail_over_invalid,
                stream_idle_timeout: r.stream.idle_timeout,
                max_stream_duration: r.stream.max_duration,
                lenient_streams: r.stream.lenient,
                mid_stream_recovery: r.stream.recovery,
            })
            .collect();
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut routers: Vec<RouterDescription> = inner
            .routers
            .iter()
            .map(|(name, (_, rules))| RouterDescription {
                name: name.clone(),
                default_route: rules.default_route.to_string(),
                rules: rules
                    .rules
                    .iter()
                    .map(|(rule, router)| {
                        let mut routes: Vec<String> =
                            router.routes().iter().map(|r| r.to_string()).collect();
                        routes.sort();
                        routes.dedup();
                        (rule.to_string(), routes)
                    })
                    .collect(),
            })
            .collect();
        routers.sort_by(|a, b| a.name.cmp(&b.name));
        RelayDescription {
            providers,
            routes,
            routers,
        }
    }
}
