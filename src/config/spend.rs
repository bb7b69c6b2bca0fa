//! The spend-control tables of a configuration file: `[[budgets]]`, `[rate_limits."p/m"]`
//! (or `[rate_limits.p]`, a provider's) and a provider's `[providers.NAME.key_pool]`.

use std::time::Duration;

use serde::Deserialize;

use super::{KeyPath, RelayConfig};
use crate::ApiKey;
use crate::config::ConfigError;
use crate::spend::budget::{Budget, BudgetPeriod};
use crate::spend::keys::KeyPool;
use crate::spend::limiter::RateLimit;

/// `[rate_limits."provider/model"]` or `[rate_limits.provider]`, and a pool's `limit_each`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitFile {
    requests_per_minute: Option<u32>,
    /// The requests bucket's size (absent: `RateLimit`'s default, 1).
    burst: Option<u32>,
    tokens_per_minute: Option<u32>,
    max_concurrent: Option<u32>,
    /// Absent: a limited target fails over at once.
    #[serde(default, with = "crate::relay::duration::opt")]
    wait_up_to: Option<Duration>,
}

impl RateLimitFile {
    pub(super) fn limit(
        &self,
        cfg: &RelayConfig,
        here: &KeyPath,
    ) -> Result<RateLimit, ConfigError> {
        for (field, v) in [
            ("requests_per_minute", self.requests_per_minute),
            ("burst", self.burst),
            ("tokens_per_minute", self.tokens_per_minute),
            ("max_concurrent", self.max_concurrent),
        ] {
            if v == Some(0) {
                return Err(cfg.error(&here.key(field), format!("{field} must be at least 1")));
            }
        }
        let mut l = RateLimit::new();
        if let Some(n) = self.requests_per_minute {
            l = l.requests_per_minute(n);
        }
        if let Some(n) = self.burst {
            l = l.burst(n);
        }
        if let Some(n) = self.tokens_per_minute {
            l = l.tokens_per_minute(n);
        }
        if let Some(n) = self.max_concurrent {
            l = l.max_concurrent(n);
        }
        if let Some(d) = self.wait_up_to {
            crate::relay::duration::check_span("wait_up_to", d)
                .map_err(|e| cfg.error(&here.key("wait_up_to"), e.message()))?;
            l = l.wait_up_to(d);
        }
        if let Some(problem) = l.burst_problem() {
            return Err(cfg.error(&here.key("burst"), problem));
        }
        l.validate().map_err(|e| cfg.error(here, e.message()))?;
        Ok(l)
    }
}

/// `[providers.NAME.key_pool]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyPoolFile {
    /// The environment variables holding the keys, in pool order.
    keys_env: Vec<String>,
    /// Weights, one per key: the pool spreads requests by them.
    #[serde(default)]
    weights: Option<Vec<u32>>,
    #[serde(default, with = "crate::relay::duration::opt")]
    park_exhausted_for: Option<Duration>,
    #[serde(default)]
    limit_each: Option<RateLimitFile>,
}

impl KeyPoolFile {
    /// The pool, with its keys read through `env`; the first key, for the provider itself.
    pub(super) fn pool(
        &self,
        cfg: &RelayConfig,
        here: &KeyPath,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(KeyPool, String), ConfigError> {
        if self.keys_env.is_empty() {
            return Err(cfg.error(&here.key("keys_env"), "a key pool needs at least one key"));
        }
        if let Some(w) = &self.weights
            && w.len() != self.keys_env.len()
        {
            return Err(cfg.error(
                &here.key("weights"),
                format!(
                    "{} weights for {} keys: give one per key",
                    w.len(),
                    self.keys_env.len()
                ),
            ));
        }
        let mut pool = KeyPool::new();
        let mut first = String::new();
        for (i, var) in self.keys_env.iter().enumerate() {
            let key = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                cfg.error(
                    &here.key("keys_env").index(i),
                    format!("the environment variable {var} is not set"),
                )
            })?;
            if i == 0 {
                first.clone_from(&key);
            }
            let weight = self.weights.as_ref().and_then(|w| w.get(i)).copied();
            pool = pool.weighted_key(ApiKey::new(key), weight.unwrap_or(1));
        }
        if self.weights.is_some() {
            pool = pool.weighted();
        }
        if let Some(d) = self.park_exhausted_for {
            crate::relay::duration::check_span("park_exhausted_for", d)
                .map_err(|e| cfg.error(&here.key("park_exhausted_for"), e.message()))?;
            pool = pool.park_exhausted_for(d);
        }
        if let Some(l) = &self.limit_each {
            pool = pool.limit_each(l.limit(cfg, &here.key("limit_each"))?);
        }
        pool.validate().map_err(|e| cfg.error(here, e.message()))?;
        Ok((pool, first))
    }
}

/// `[[budgets]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetFile {
    name: String,
    /// A limit in US dollars…
    #[serde(default)]
    usd: Option<f64>,
    /// …or in tokens.
    #[serde(default)]
    tokens: Option<u64>,
    #[serde(default)]
    period: Option<BudgetPeriod>,
    /// `"calendar"` (UTC, the default) or `"rolling"`.
    #[serde(default)]
    window: Option<String>,
    /// At most one scope; none: the whole relay.
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// The cheaper route to send requests to once spent (absent: refuse them).
    #[serde(default)]
    downgrade_to: Option<String>,
    #[serde(default)]
    warn_at: Option<f64>,
}

impl BudgetFile {
    pub(super) fn budget(
        &self,
        cfg: &RelayConfig,
        here: &KeyPath,
        known_route: &dyn Fn(&str) -> bool,
    ) -> Result<Budget, ConfigError> {
        let mut b = match (self.usd, self.tokens) {
            (Some(usd), None) => Budget::usd(self.name.clone(), usd),
            (None, Some(tokens)) => Budget::tokens(self.name.clone(), tokens),
            _ => {
                return Err(cfg.error(
                    here,
                    "a budget sets its limit with exactly one of usd = … or tokens = …",
                ));
            }
        };
        if let Some(p) = self.period {
            b = b.per(p);
        }
        match self.window.as_deref() {
            None | Some("calendar") => {}
            Some("rolling") => b = b.rolling(),
            Some(other) => {
                return Err(cfg.error(
                    &here.key("window"),
                    format!("window {other:?} is not one of \"calendar\", \"rolling\""),
                ));
            }
        }
        let scopes = [&self.route, &self.intent, &self.tag]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if scopes > 1 {
            return Err(cfg.error(here, "a budget has at most one scope: route, intent or tag"));
        }
        if let Some(r) = &self.route {
            if !known_route(r) {
                return Err(cfg.error(&here.key("route"), format!("no route named {r:?}")));
            }
            b = b.for_route(r.clone());
        }
        if let Some(i) = &self.intent {
            b = b.for_intent(i.clone());
        }
        if let Some(t) = &self.tag {
            b = b.for_tag(t.clone());
        }
        if let Some(r) = &self.downgrade_to {
            if !known_route(r) {
                return Err(cfg.error(&here.key("downgrade_to"), format!("no route named {r:?}")));
            }
            b = b.downgrade_to(r.clone());
        }
        if let Some(w) = self.warn_at {
            b = b.warn_at(w);
        }
        b.validate().map_err(|e| cfg.error(here, e.message()))?;
        Ok(b)
    }
}
