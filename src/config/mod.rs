//! Configuration files: a relay written down in TOML ([`RelayConfig`],
//! [`Relay::from_config_file`](crate::Relay::from_config_file)).
//!
//! A file says what the builders say — providers, targets, routes, routers and their rules,
//! breakers, the stats baseline, catalog entries, the fleet store — so a model is added by
//! editing it. Its shape is strict: unknown keys are errors, API keys are named by
//! environment variable only, and every error names the file, the line and the key
//! ([`ConfigError`]).
//!
//! The replicas of one application share breakers, rate limits, pool keys, budgets and
//! stats through a Redis or Valkey server or cluster ([`crate::store`]; the `redis` cargo
//! feature, without which the table is an error) with a `[store]` table; a password in its
//! URL comes from the environment:
//!
//! ```toml
//! [store]
//! url = "${REDIS_URL}"        # redis://[user:${PASSWORD}@]host:port/db, or valkey://…
//! namespace = "support-bot"   # default "default"
//! # cluster = ["${REDIS_CLUSTER_NODES}"]  # instead of url: a cluster's nodes (comma-separated)
//! sync_interval = "250ms"     # default 250 ms
//! timeout = "100ms"           # every exchange with the server; default 100 ms
//! max_backoff = "5s"          # longest pause while it fails (at least the interval); 5 s
//! replica_id = "${HOSTNAME}"  # unique per replica; default random
//! ```
//!
//! ```
//! use polyrelay::Relay;
//! let relay = Relay::from_toml_str(r#"
//!     [providers.local]
//!     kind = "ollama"
//!     base_url = "http://127.0.0.1:11434/v1"
//!
//!     [routes.support]
//!     targets = ["local/llama3.2", "local/qwen2.5"]
//!     first_token_timeout = "2.5s"
//! "#)?;
//! assert_eq!(relay.routes(), ["support"]);
//! # Ok::<(), polyrelay::config::ConfigError>(())
//! ```
//!
//! The complete format is in the README ("Configuration file") and in
//! `examples/support_bot.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::{Catalog, ModelInfo};
use crate::provider::Provider;
use crate::providers::kinds::{self, KindError, KindSettings};
use crate::relay::{BreakerPolicy, Chain, Relay, RelayBuilder, RetryBudget, Target};

mod checks;
mod gateway;
mod rules;
mod spend;
mod store;

pub use gateway::GatewaySettings;

/// A configuration error: where (the file, the line and column, the key) and what.
///
/// Displayed as `support_bot.toml:12:1: routes.fast.targets[1]: unknown provider
/// "anthropc" (providers: anthropic, openai)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    file: Option<PathBuf>,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    /// The file, when the configuration came from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The line (1-based) the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The column (1-based), when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The key, as a dotted path (`routes.fast.targets[1]`), when the error is about one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = match &self.file {
            Some(f) => f.display().to_string(),
            None => "<config>".to_owned(),
        };
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                out.push_str(&format!(":{col}"));
            }
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> Self {
        crate::Error::new(crate::ErrorKind::Config, e.to_string()).with_source(e)
    }
}

/// One step of a key path.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A key path, e.g. `routes.fast.targets[1]`.
#[derive(Clone, Debug, Default)]
struct KeyPath(Vec<Seg>);

impl KeyPath {
    fn of(keys: &[&str]) -> KeyPath {
        KeyPath(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }

    fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        out.push_str(k);
                    } else {
                        out.push_str(&format!("{k:?}"));
                    }
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// A relay configuration, parsed and checked for shape (unknown keys, types, durations),
/// not yet built: [`builder`](Self::builder) checks what it refers to (providers,
/// routes, environment variables, URLs, files) and makes the [`RelayBuilder`], to which code
/// can still add (observers, an HTTP client) before [`build`](RelayBuilder::build).
#[derive(Clone)]
pub struct RelayConfig {
    file: RelayFile,
    source: Arc<str>,
    path: Option<PathBuf>,
}

/// Names only: the text may hold a literal key that [`RelayConfig::builder`] refuses.
impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("path", &self.path)
            .field("providers", &self.file.providers.keys().collect::<Vec<_>>())
            .field("routes", &self.file.routes.keys().collect::<Vec<_>>())
            .field("routers", &self.file.routers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The file's shape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    #[serde(default)]
    providers: BTreeMap<String, ProviderFile>,
    #[serde(default)]
    defaults: Option<Chain>,
    #[serde(default)]
    targets: BTreeMap<String, toml::Table>,
    #[serde(default)]
    routes: BTreeMap<String, Chain>,
    #[serde(default)]
    routers: BTreeMap<String, rules::RouterFile>,
    #[serde(default)]
    breaker: Option<BreakerPolicy>,
    #[serde(default)]
    breakers: BTreeMap<String, BreakerPolicy>,
    #[serde(default)]
    retry_budget: Option<RetryBudget>,
    #[serde(default)]
    stats: StatsFile,
    #[serde(default)]
    catalog: CatalogFile,
    #[serde(default)]
    gateway: GatewaySettings,
    #[serde(default)]
    budgets: Vec<spend::BudgetFile>,
    #[serde(default)]
    rate_limits: BTreeMap<String, spend::RateLimitFile>,
    #[serde(default)]
    store: Option<store::StoreFile>,
}

/// `[providers.NAME]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    kind: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    /// Only to refuse it with a reason.
    #[serde(default)]
    api_key: Option<toml::Value>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Azure: resource, deployment, API version.
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    deployment: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    /// The clouds: Bedrock's region, API and profile; Vertex's project, location, key file
    /// and publisher.
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    credentials: Option<String>,
    #[serde(default)]
    publisher: Option<String>,
    /// Several keys (in place of `api_key_env`).
    #[serde(default)]
    key_pool: Option<spend::KeyPoolFile>,
}

/// `[stats]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StatsFile {
    enabled: bool,
    baseline: Option<String>,
    #[serde(with = "crate::relay::duration::opt")]
    window: Option<Duration>,
}

impl Default for StatsFile {
    fn default() -> Self {
        StatsFile {
            enabled: true,
            baseline: None,
            window: None,
        }
    }
}

/// `[catalog]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CatalogFile {
    /// Start from an empty catalog instead of the built-in one.
    empty: bool,
    /// Entries added or replaced (`[[catalog.models]]`).
    models: Vec<ModelInfo>,
}

impl RelayConfig {
    /// Parses a configuration from TOML text. Text that defines no provider, route or router
    /// (empty, or comments only) is an error, as is a `[gateway]` setting out of range; the
    /// settings the builders check (breakers, chains, targets) are checked when the relay
    /// is built, and their errors are placed on their line too.
    pub fn from_toml_str(text: &str) -> Result<RelayConfig, ConfigError> {
        Self::parse(text, None)
    }

    /// Reads and parses a configuration file. Relative paths inside it (a classifier's
    /// examples) are taken from the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<RelayConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            ..ConfigError::new(format!("cannot read the file: {e}"))
        })?;
        Self::parse(&text, Some(path.to_owned()))
    }

    fn parse(text: &str, path: Option<PathBuf>) -> Result<RelayConfig, ConfigError> {
        let at = |e: &toml::de::Error, key: Option<String>| {
            let (line, column) = e.span().map_or((None, None), |s| {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            });
            ConfigError {
                file: path.clone(),
                line,
                column,
                key,
                message: e.message().trim().to_owned(),
            }
        };
        // Syntax first (a duplicate table such as two `[routes.fast]` is one).
        toml::de::DeTable::parse(text)
            .map_err(|e| at(&e, e.span().and_then(|s| key_at(text, s.start))))?;
        let de = toml::Deserializer::parse(text).map_err(|e| at(&e, None))?;
        let file: RelayFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let mut key = e.path().to_string();
            let inner = e.into_inner();
            // An unknown field is reported at its table: name the field itself.
            if let Some(field) = inner
                .message()
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next())
            {
                if key == "." || key.is_empty() {
                    key = field.to_owned();
                } else if !key.ends_with(field) {
                    key = format!("{key}.{field}");
                }
            }
            let key = (key != "." && !key.is_empty()).then_some(key);
            at(&inner, key)
        })?;
        let config = RelayConfig {
            file,
            source: Arc::from(text),
            path,
        };
        checks::whole_file(&config)?;
        Ok(config)
    }

    /// An error about `key`, placed on its line.
    fn error(&self, key: &KeyPath, message: impl Into<String>) -> ConfigError {
        let (line, column) = self
            .place(key)
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ConfigError {
            file: self.path.clone(),
            line,
            column,
            key: Some(key.render()).filter(|k| !k.is_empty()),
            message: message.into(),
        }
    }

    /// The line and column where `key` is written, if it is.
    fn place(&self, key: &KeyPath) -> Option<(usize, usize)> {
        toml::de::DeTable::parse(&self.source)
            .ok()
            .and_then(|doc| {
                let mut value = toml::de::DeValue::Table(doc.into_inner());
                let mut span = None;
                for seg in &key.0 {
                    let next = match seg {
                        Seg::Key(k) => value.get(k.as_str()),
                        Seg::Index(i) => value.get(*i),
                    }?
                    .clone();
                    span = Some(next.span());
                    value = next.into_inner();
                }
                span
            })
            .map(|s| line_col(&self.source, s.start))
    }

    /// The builder this configuration describes, with API keys and `${VAR}` references
    /// read from the process environment.
    pub fn builder(&self) -> Result<RelayBuilder, ConfigError> {
        self.builder_with_env(|name| std::env::var(name).ok())
    }

    /// The builder this configuration describes, with environment variables looked up by
    /// `env` (for tests, or secrets from elsewhere).
    pub fn builder_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RelayBuilder, ConfigError> {
        self.builder_for(env, true)
    }

    /// The builder, with the `[store]` table's store when `with_store` (a reload keeps the
    /// relay's store, so it does not make one: it may run outside a runtime).
    fn builder_for(
        &self,
        env: impl Fn(&str) -> Option<String>,
        with_store: bool,
    ) -> Result<RelayBuilder, ConfigError> {
        let f = &self.file;
        let mut b = Relay::builder();
        for (name, p) in &f.providers {
            let mut first_key = None;
            if let Some(pool) = &p.key_pool {
                let here = KeyPath::of(&["providers", name]);
                if p.api_key_env.is_some() {
                    return Err(self.error(
                        &here.key("api_key_env"),
                        "a provider with a key_pool takes its keys from key_pool.keys_env",
                    ));
                }
                let (pool, first) = pool.pool(self, &here.key("key_pool"), &env)?;
                b = b.key_pool(name.clone(), pool);
                first_key = Some(first);
            }
            let provider = self.provider(name, p, &env, first_key)?;
            b = b.provider_arc(name.clone(), provider);
        }
        let known_provider = |name: &str| f.providers.contains_key(name);
        let providers_list = || {
            let names: Vec<&str> = f.providers.keys().map(String::as_str).collect();
            if names.is_empty() {
                "none is configured".to_owned()
            } else {
                format!("providers: {}", names.join(", "))
            }
        };
        // `[targets."provider/model"]`: settings for every use of that target.
        for (key, table) in &f.targets {
            let here = KeyPath::of(&["targets", key]);
            let Some(t) = Target::parse(key) else {
                return Err(self.error(&here, "a target is named \"provider/model\""));
            };
            if !known_provider(&t.provider) {
                return Err(self.error(
                    &here,
                    format!("unknown provider {:?} ({})", t.provider, providers_list()),
                ));
            }
            for field in ["provider", "model"] {
                if table.contains_key(field) {
                    return Err(self.error(
                        &here.key(field),
                        "set by the table's name (\"provider/model\")",
                    ));
                }
            }
            let mut table = table.clone();
            table.insert("provider".into(), toml::Value::String(t.provider.clone()));
            table.insert("model".into(), toml::Value::String(t.model.clone()));
            let target: Target = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| self.error(&here, e.message().trim()))?;
            b = b.target(target);
        }
        if let Some(defaults) = &f.defaults {
            if !defaults.targets.is_empty() {
                return Err(self.error(
                    &KeyPath::of(&["defaults", "targets"]),
                    "the defaults are settings only; targets belong to routes",
                ));
            }
            b = b.defaults(defaults.clone());
        }
        for (name, chain) in &f.routes {
            let here = KeyPath::of(&["routes", name]);
            if f.routers.contains_key(name) {
                return Err(self.error(&here, format!("{name:?} is both a route and a router")));
            }
            if chain.targets.is_empty() {
                return Err(self.error(&here.key("targets"), "a route needs at least one target"));
            }
            for (i, t) in chain.targets.iter().enumerate() {
                if !known_provider(&t.provider) {
                    return Err(self.error(
                        &here.key("targets").index(i),
                        format!("unknown provider {:?} ({})", t.provider, providers_list()),
                    ));
                }
            }
            b = b.route(name.clone(), chain.clone());
        }
        let known_route = |route: &str| {
            f.routes.contains_key(route)
                || Target::parse(route).is_some_and(|t| known_provider(&t.provider))
        };
        for (name, router) in &f.routers {
            let rules = router.rules(self, name, &known_route)?;
            b = b.router(name.clone(), rules);
        }
        if let Some(policy) = f.breaker {
            b = b.breaker(policy);
        }
        for (key, policy) in &f.breakers {
            let here = KeyPath::of(&["breakers", key]);
            match Target::parse(key) {
                Some(t) if known_provider(&t.provider) => b = b.breaker_for(key.clone(), *policy),
                Some(t) => {
                    return Err(self.error(
                        &here,
                        format!("unknown provider {:?} ({})", t.provider, providers_list()),
                    ));
                }
                None => return Err(self.error(&here, "a target is named \"provider/model\"")),
            }
        }
        if let Some(budget) = f.retry_budget {
            b = b.retry_budget(budget);
        }
        for (key, limit) in &f.rate_limits {
            let here = KeyPath::of(&["rate_limits", key]);
            match Target::parse(key) {
                Some(t) if known_provider(&t.provider) => {
                    b = b.rate_limit(key.clone(), limit.limit(self, &here)?);
                }
                Some(t) => {
                    return Err(self.error(
                        &here,
                        format!("unknown provider {:?} ({})", t.provider, providers_list()),
                    ));
                }
                // A provider's name alone: its limit over all its targets.
                None if known_provider(key) => {
                    b = b.rate_limit(key.clone(), limit.limit(self, &here)?);
                }
                None => {
                    return Err(self.error(
                        &here,
                        format!(
                            "a rate limit is for a target (\"provider/model\") or a provider ({})",
                            providers_list()
                        ),
                    ));
                }
            }
        }
        for (i, budget) in f.budgets.iter().enumerate() {
            let here = KeyPath::of(&["budgets"]).index(i);
            b = b.budget(budget.budget(self, &here, &known_route)?);
        }
        let mut catalog = if f.catalog.empty {
            Catalog::empty()
        } else {
            Catalog::builtin().clone()
        };
        let custom_catalog = f.catalog.empty || !f.catalog.models.is_empty();
        for m in &f.catalog.models {
            catalog.insert(m.clone());
        }
        if let Some(model) = &f.stats.baseline {
            if catalog.find(model).and_then(|m| m.price.as_ref()).is_none() {
                return Err(self.error(
                    &KeyPath::of(&["stats", "baseline"]),
                    format!("the catalog has no price for {model:?}"),
                ));
            }
            b = b.baseline(model.clone());
        }
        if custom_catalog {
            b = b.catalog(catalog);
        }
        if !f.stats.enabled {
            b = b.without_stats();
        }
        if let Some(window) = f.stats.window {
            b = b.stats_window(window);
        }
        if let Some(file) = f.store.as_ref().filter(|_| with_store) {
            b = b.store(file.store(self, &KeyPath::of(&["store"]), &env)?);
        }
        Ok(b)
    }

    /// The `[gateway]` table.
    pub fn gateway_settings(&self) -> &GatewaySettings {
        &self.file.gateway
    }

    /// Builds the relay (environment from the process).
    pub fn build(&self) -> Result<Relay, ConfigError> {
        self.builder()?.build().map_err(|e| self.build_error(e))
    }

    /// Builds the relay, with environment variables looked up by `env`.
    pub fn build_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Relay, ConfigError> {
        self.builder_with_env(env)?
            .build()
            .map_err(|e| self.build_error(e))
    }

    /// A builder's own error (a zero timeout, say), placed in the file by the route,
    /// target, router or provider it names: the most precise key written in the file.
    fn build_error(&self, e: crate::Error) -> ConfigError {
        let message = e.message();
        let quoted = |after: &str| {
            let rest = message.split(after).nth(1)?.strip_prefix('"')?;
            rest.split('"').next().map(str::to_owned)
        };
        let mut candidates: Vec<KeyPath> = Vec::new();
        if message.starts_with("relay defaults") {
            candidates.push(KeyPath::of(&["defaults"]));
        } else if message.starts_with("breaker: ") {
            candidates.push(KeyPath::of(&["breaker"]));
        } else if let Some(target) = quoted("breaker_for(") {
            candidates.push(KeyPath::of(&["breakers", &target]));
        } else if message.starts_with("store ") || message.contains("with a store") {
            candidates.push(KeyPath::of(&["store"]));
        } else if message.starts_with("retry_budget: ") {
            candidates.push(KeyPath::of(&["retry_budget"]));
        } else if let Some(route) = quoted("route ") {
            let here = KeyPath::of(&["routes", &route]);
            if let (Some(target), Some(chain)) = (quoted("target "), self.file.routes.get(&route))
                && let Some(i) = chain.targets.iter().position(|t| t.to_string() == target)
            {
                candidates.push(here.key("targets").index(i));
                candidates.push(KeyPath::of(&["targets", &target]));
            }
            candidates.push(here);
        } else if let Some(router) = quoted("router ") {
            candidates.push(KeyPath::of(&["routers", &router]));
        } else if let Some(provider) = quoted("provider ") {
            candidates.push(KeyPath::of(&["providers", &provider]));
        }
        // The setting itself, when the message names one written under the key: the first
        // word after the places (`route "r": target "p/m": retry.max_attempts must…`), a
        // dotted path tried whole, then shorter.
        const PLACES: &[&str] = &[
            "route ",
            "target ",
            "router ",
            "provider ",
            "relay defaults",
            "breaker",
            "retry_budget",
        ];
        let field: Vec<&str> = message
            .split(": ")
            .find(|m| !PLACES.iter().any(|p| m.starts_with(p)))
            .and_then(|m| m.split_whitespace().next())
            .map(|f| f.split('.').collect())
            .unwrap_or_default();
        let mut ordered: Vec<KeyPath> = Vec::new();
        for depth in (1..=field.len()).rev() {
            for c in &candidates {
                ordered.push(field[..depth].iter().fold(c.clone(), |k, f| k.key(f)));
            }
        }
        ordered.extend(candidates);
        match ordered.iter().find(|k| self.place(k).is_some()) {
            Some(key) => self.error(key, message),
            None => ConfigError {
                file: self.path.clone(),
                ..ConfigError::new(message)
            },
        }
    }

    /// Resolves a path written in the file: relative to the file's directory.
    fn resolve_path(&self, written: &str) -> PathBuf {
        let p = Path::new(written);
        match &self.path {
            Some(file) if p.is_relative() => file
                .parent()
                .map_or_else(|| p.to_owned(), |dir| dir.join(p)),
            _ => p.to_owned(),
        }
    }

    fn provider(
        &self,
        name: &str,
        p: &ProviderFile,
        env: &impl Fn(&str) -> Option<String>,
        pool_key: Option<String>,
    ) -> Result<Arc<dyn Provider>, ConfigError> {
        let here = KeyPath::of(&["providers", name]);
        if name.is_empty() || name.contains('/') {
            return Err(self.error(&here, "a provider name must be non-empty, without '/'"));
        }
        if p.api_key.is_some() {
            return Err(self.error(
                &here.key("api_key"),
                "a literal API key is refused: keys stay out of files (and out of version \
                 control); put it in an environment variable and name the variable with \
                 api_key_env = \"...\"",
            ));
        }
        let kind = p.kind.as_str();
        let Some(registered) = kinds::kind(kind) else {
            let names: Vec<&str> = kinds::KINDS.iter().map(|k| k.name).collect();
            return Err(self.error(
                &here.key("kind"),
                format!(
                    "unknown provider kind {kind:?} (kinds: {})",
                    names.join(", ")
                ),
            ));
        };
        let auth = p.auth.as_deref().unwrap_or("default");
        let auths = registered.auth_modes;
        if !auths.contains(&auth) {
            return Err(self.error(
                &here.key("auth"),
                format!(
                    "auth {auth:?} is not one of {} for kind {kind:?}",
                    auths.join(", ")
                ),
            ));
        }
        let default_env = registered.key_env;
        let key = if auth == "none" {
            String::new()
        } else if let Some(first) = pool_key {
            first
        } else {
            match (&p.api_key_env, default_env) {
                (Some(var), _) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    self.error(
                        &here.key("api_key_env"),
                        format!("the environment variable {var} is not set"),
                    )
                })?,
                (None, Some(var)) if registered.key_optional => env(var).unwrap_or_default(),
                (None, Some(var)) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    self.error(
                        &here,
                        format!(
                            "no API key: the environment variable {var} is not set (name \
                             another with api_key_env, or set auth = \"none\")"
                        ),
                    )
                })?,
                (None, None) if registered.key_optional => String::new(),
                (None, None) => {
                    return Err(self.error(
                        &here,
                        "name the environment variable holding the key with api_key_env \
                         (or set auth = \"none\")",
                    ));
                }
            }
        };
        let base_url = match &p.base_url {
            Some(url) => {
                let key = here.key("base_url");
                checks::url(self, &key, url)?;
                let url = self.expand(&key, url, env)?;
                check_url(&url).map_err(|m| self.error(&key, m))?;
                Some(url)
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (h, value) in &p.headers {
            let key = here.key("headers").key(h);
            checks::header(self, &key, h, value)?;
            headers.push((h.as_str(), self.expand(&key, value, env)?, key));
        }
        let pairs: Vec<(&str, String)> = headers.iter().map(|(h, v, _)| (*h, v.clone())).collect();
        let mut settings = KindSettings::new(name, key);
        settings.auth = auth;
        settings.base_url = base_url.as_deref();
        settings.resource = p.resource.as_deref();
        settings.deployment = p.deployment.as_deref();
        settings.api_version = p.api_version.as_deref();
        settings.headers = &pairs;
        let credentials = match &p.credentials {
            Some(path) => Some(self.expand(&here.key("credentials"), path, env)?),
            None => None,
        };
        settings.region = p.region.as_deref();
        settings.profile = p.profile.as_deref();
        settings.project = p.project.as_deref();
        settings.location = p.location.as_deref();
        settings.credentials = credentials.as_deref();
        settings.api = p.api.as_deref().or(p.publisher.as_deref());
        let env_lookup = |var: &str| env(var);
        settings.env = &env_lookup;
        registered.build(&settings).map_err(|e| match e {
            KindError::Missing(field) => self.error(&here, format!("kind {kind:?} needs {field}")),
            KindError::Invalid { field, error } => {
                let at = match field {
                    "" => here.clone(),
                    "api" if p.api.is_none() => here.key("publisher"),
                    field => here.key(field),
                };
                self.error(&at, error.message())
            }
            KindError::Header { index, error } => match headers.get(index) {
                Some((_, _, key)) => self.error(key, error.message()),
                None => self.error(&here, error.message()),
            },
        })
    }

    /// `text` with each `${VAR}` replaced by the variable's value.
    fn expand(
        &self,
        key: &KeyPath,
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.error(key, "an unclosed ${ in the value"));
            };
            let var = &after[..end];
            match env(var) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(
                        self.error(key, format!("the environment variable {var} is not set"))
                    );
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Checks a base URL: absolute, http or https, with a host.
fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "{url:?} is not an http(s) URL (scheme {:?})",
            u.scheme()
        )),
        Err(e) => Err(format!("{url:?} is not a URL: {e}")),
    }
}

/// The key written on the line of byte `offset`: a table header's name, or a `key = …`
/// under the nearest header above it (for syntax errors, which come with a place only).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let key = line.split_once('=')?.0.trim();
    let table = before[..start].lines().rev().find_map(|l| header(l.trim()));
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}

impl Relay {
    /// Builds a relay from a TOML configuration file (see [`config`](crate::config)); API
    /// keys are read from the environment variables it names.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Relay, ConfigError> {
        RelayConfig::from_file(path)?.build()
    }

    /// Builds a relay from TOML text (see [`config`](crate::config)).
    pub fn from_toml_str(text: &str) -> Result<Relay, ConfigError> {
        RelayConfig::from_toml_str(text)?.build()
    }

    /// Reloads the relay from a configuration file ([`Relay::reload`]): the new table
    /// serves the next calls, per-target state, stats and the fleet store are kept (the
    /// `[store]` table is read when the relay is built). An invalid file is refused (with
    /// its line and key) and the current table keeps serving.
    pub fn reload_config_file(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let config = RelayConfig::from_file(path)?;
        let builder = config.builder_for(|name| std::env::var(name).ok(), false)?;
        self.reload(builder).map_err(|e| config.build_error(e))
    }
}

/// Shared by the rule parsers: the routes a rule names must exist.
fn check_route(
    config: &RelayConfig,
    key: &KeyPath,
    route: &str,
    known_route: &dyn Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    if known_route(route) {
        Ok(())
    } else {
        Err(config.error(
            key,
            format!("route {route:?} is neither a route nor a provider/model pair"),
        ))
    }
}
