//! The relay: routes a request to a chain of targets, retrying and failing over under one
//! deadline, and reports what it did.

mod chain;
mod executor;
mod hedge;
mod policy;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::provider::{CallContext, Provider};
use crate::types::{ChatRequest, ChatResponse, ChatStream, TargetId};

pub use chain::{Chain, MidStreamRecovery, StreamPolicy, TargetSpec};
use executor::Mode;
pub use policy::{ContextOverflow, RetryPolicy};

/// Default time allowed for one attempt: 120 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default deadline for a whole call, retries and failover included: 300 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// A target resolved against the registered providers.
#[derive(Clone)]
pub(crate) struct Target {
    pub id: TargetId,
    pub provider: Arc<dyn Provider>,
    pub attempt_timeout: Duration,
    pub first_token_timeout: Option<Duration>,
    /// The target continues an assistant prefill (for mid-stream continuation).
    pub prefill: bool,
    pub retry: RetryPolicy,
    pub context_window: Option<u32>,
}

/// A chain resolved and validated.
pub(crate) struct Route {
    pub name: Arc<str>,
    pub targets: Vec<Target>,
    pub total_timeout: Duration,
    pub context_overflow: ContextOverflow,
    pub fail_over_invalid: bool,
    pub stream: StreamPolicy,
    pub hedge: Option<hedge::Hedge>,
}

struct Inner {
    providers: HashMap<String, Arc<dyn Provider>>,
    routes: HashMap<String, Arc<Route>>,
    cx: CallContext,
    defaults: Defaults,
}

#[derive(Clone, Debug)]
struct Defaults {
    attempt_timeout: Duration,
    total_timeout: Duration,
    retry: RetryPolicy,
}

/// Sends chat requests through fallback chains of providers. Cheap to clone and share
/// across tasks (an `Arc` inside).
///
/// ```no_run
/// # async fn demo() -> Result<(), polyrelay::Error> {
/// use std::time::Duration;
/// use polyrelay::{Chain, ChatRequest, Relay, providers::OpenAi};
/// let relay = Relay::builder()
///     .provider("openai", OpenAi::new("sk-…"))
///     .provider("deepseek", OpenAi::deepseek("sk-…"))
///     .route("support", Chain::new()
///         .target("openai", "gpt-4o").attempt_timeout(Duration::from_millis(2500))
///         .target("deepseek", "deepseek-chat"))
///     .build()?;
/// let resp = relay.chat(ChatRequest::new("support").user("Where is my order #123?")).await?;
/// println!("{} (served by {:?})", resp.text(), resp.meta.served_by);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routes: Vec<_> = self.inner.routes.keys().collect();
        routes.sort();
        f.debug_struct("Relay")
            .field("providers", &self.inner.providers)
            .field("routes", &routes)
            .field("defaults", &self.inner.defaults)
            .finish()
    }
}

impl Relay {
    /// Starts building a relay.
    pub fn builder() -> RelayBuilder {
        RelayBuilder::default()
    }

    /// Sends `req` through the route its `model` names (or straight to a `provider/model`
    /// pair) and returns the first answer, with [`ChatResponse::meta`] telling who served it
    /// and every attempt. Dropping the returned future cancels in-flight requests.
    ///
    /// Takes the request by value or by reference (`relay.chat(&req)` reuses a request without
    /// cloning it).
    pub async fn chat(
        &self,
        req: impl std::borrow::Borrow<ChatRequest>,
    ) -> Result<ChatResponse, Error> {
        let req = req.borrow();
        let route = self.resolve(req)?;
        let cx = &self.inner.cx;
        let (mut resp, meta) =
            executor::execute(&route, &route.targets, req, Mode::Chat, |t: &Target| {
                let provider = t.provider.clone();
                let model = t.id.model.clone();
                async move { provider.chat(req, &model, cx).await }
            })
            .await?;
        let request_id = resp.meta.request_id.take();
        resp.meta = meta;
        resp.meta.request_id = request_id;
        Ok(resp)
    }

    /// Like [`chat`](Self::chat), streaming. Retries and failover apply until the stream's
    /// first content event (its commit point), within each target's first-token timeout
    /// ([`Chain::first_token_timeout`]) and the call's deadline; nothing of an abandoned attempt
    /// reaches the caller. After the commit point a stall ([`Chain::stream_idle_timeout`]), a
    /// cut or an error event ends the stream with a `StreamInterrupted` error, unless the route
    /// recovers it ([`Chain::mid_stream_recovery`]). Every chunk names the target that produced
    /// it. Dropping the stream closes the vendor connection.
    pub async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream, Error> {
        let route = self.resolve(&req)?;
        stream::relay_stream(route, Arc::new(req), self.inner.cx.clone()).await
    }

    /// The registered provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.inner.providers.get(name)
    }

    /// Route names, sorted.
    pub fn routes(&self) -> Vec<&str> {
        let mut r: Vec<&str> = self.inner.routes.keys().map(String::as_str).collect();
        r.sort_unstable();
        r
    }

    fn resolve(&self, req: &ChatRequest) -> Result<Arc<Route>, Error> {
        if let Some(route) = self.inner.routes.get(&req.model) {
            return Ok(route.clone());
        }
        // `provider/model`: a one-target route with the relay's defaults.
        if let Some((provider, model)) = req.model.split_once('/')
            && let Some(p) = self.inner.providers.get(provider)
        {
            let d = &self.inner.defaults;
            let route = Arc::new(Route {
                name: Arc::from(req.model.as_str()),
                targets: vec![Target {
                    id: TargetId::new(provider, model),
                    provider: p.clone(),
                    attempt_timeout: d.attempt_timeout,
                    first_token_timeout: None,
                    prefill: false,
                    retry: d.retry.clone(),
                    context_window: None,
                }],
                total_timeout: d.total_timeout,
                context_overflow: ContextOverflow::default(),
                fail_over_invalid: false,
                stream: StreamPolicy::default(),
                hedge: None,
            });
            return Ok(route);
        }
        Err(Error::new(
            ErrorKind::NoRoute,
            format!(
                "no route or provider/model matches {:?} (routes: {})",
                req.model,
                self.routes().join(", ")
            ),
        ))
    }
}

/// Builds a [`Relay`]. Every setter documents its default.
#[derive(Default)]
pub struct RelayBuilder {
    providers: Vec<(String, Arc<dyn Provider>)>,
    routes: Vec<(String, Chain)>,
    http: Option<reqwest::Client>,
    attempt_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl std::fmt::Debug for RelayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBuilder")
            .field("providers", &self.providers)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl RelayBuilder {
    /// Registers a provider under `name`, the name chains refer to.
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

    /// The HTTP client shared by every provider. Default: [`crate::http::default_client`]
    /// (pooled, 10 s connect timeout, no total timeout).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Default time for one attempt. Default: [`DEFAULT_ATTEMPT_TIMEOUT`] (120 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Default deadline of a whole call. Default: [`DEFAULT_TOTAL_TIMEOUT`] (300 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// Default retry policy. Default: [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Validates the configuration and builds the relay.
    pub fn build(self) -> Result<Relay, Error> {
        let config = |msg: String| Error::new(ErrorKind::Config, msg);
        let defaults = Defaults {
            attempt_timeout: self.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
            total_timeout: self.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT),
            retry: self.retry.unwrap_or_default(),
        };
        if defaults.attempt_timeout.is_zero() || defaults.total_timeout.is_zero() {
            return Err(config("timeouts must be greater than zero".into()));
        }
        let mut providers = HashMap::new();
        for (name, p) in self.providers {
            if name.is_empty() || name.contains('/') {
                return Err(config(format!(
                    "provider name {name:?} must be non-empty and contain no '/'"
                )));
            }
            if providers.insert(name.clone(), p).is_some() {
                return Err(config(format!("provider {name:?} registered twice")));
            }
        }
        let mut routes = HashMap::new();
        for (name, chain) in self.routes {
            if chain.targets.is_empty() {
                return Err(config(format!("route {name:?} has no target")));
            }
            let retry = chain
                .retry
                .clone()
                .unwrap_or_else(|| defaults.retry.clone());
            let mut targets = Vec::with_capacity(chain.targets.len());
            for t in &chain.targets {
                let provider = providers.get(&t.provider).cloned().ok_or_else(|| {
                    config(format!(
                        "route {name:?} names unknown provider {:?}",
                        t.provider
                    ))
                })?;
                let attempt_timeout = t
                    .attempt_timeout
                    .or(chain.attempt_timeout)
                    .unwrap_or(defaults.attempt_timeout);
                if attempt_timeout.is_zero() {
                    return Err(config(format!(
                        "route {name:?}: attempt timeout must be > 0"
                    )));
                }
                let mut retry = retry.clone();
                if let Some(n) = t.max_attempts.or(chain.max_attempts) {
                    retry.max_attempts = n.max(1);
                }
                let first_token_timeout = t.first_token_timeout.or(chain.first_token_timeout);
                if first_token_timeout.is_some_and(|d| d.is_zero()) {
                    return Err(config(format!(
                        "route {name:?}: first-token timeout must be > 0"
                    )));
                }
                targets.push(Target {
                    id: TargetId::new(t.provider.as_str(), t.model.as_str()),
                    provider,
                    attempt_timeout,
                    first_token_timeout,
                    prefill: t.prefill,
                    retry,
                    context_window: t.context_window,
                });
            }
            let route = Route {
                name: Arc::from(name.as_str()),
                targets,
                total_timeout: chain.total_timeout.unwrap_or(defaults.total_timeout),
                context_overflow: chain.context_overflow,
                fail_over_invalid: chain.fail_over_invalid,
                stream: chain.stream.clone(),
                hedge: chain.hedge_after.map(|after| hedge::Hedge {
                    after,
                    max_extra: chain.max_hedges.unwrap_or(1).max(1),
                }),
            };
            if routes.insert(name.clone(), Arc::new(route)).is_some() {
                return Err(config(format!("route {name:?} defined twice")));
            }
        }
        let http = match self.http {
            Some(c) => c,
            None => crate::http::default_client()?,
        };
        Ok(Relay {
            inner: Arc::new(Inner {
                providers,
                routes,
                cx: CallContext::new(http),
                defaults,
            }),
        })
    }
}
