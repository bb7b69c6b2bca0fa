//! The `[store]` table of a configuration file: the fleet store the replicas of an
//! application share their breakers and budgets through ([`crate::store`]).
//!
//! The table's keys and defaults are in the [`config`](super) module's documentation.
//!
//! The Redis store needs the `redis` cargo feature: without it a `[store]` table is an error
//! that says so. A password written out in the URL is refused, as a literal key is elsewhere.
//!
//! One server is `url = "${REDIS_URL}"`; a Redis Cluster is `cluster = [...]` instead, some
//! of its nodes' URLs (one reachable is enough), each element `${VAR}`-expanded and split on
//! commas, so `cluster = ["${REDIS_CLUSTER_NODES}"]` takes
//! `REDIS_CLUSTER_NODES=redis://10.0.0.1:6379,redis://10.0.0.2:6379`.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, KeyPath, RelayConfig};
use crate::store::Store;

/// `[store]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreFile {
    /// The server's URL, usually `"${REDIS_URL}"`; or `cluster`.
    #[serde(default)]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    url: Option<String>,
    /// A Redis Cluster's nodes' URLs (some of them), each expanded and split on commas.
    #[serde(default)]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    cluster: Option<Vec<String>>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, with = "crate::relay::duration::opt")]
    sync_interval: Option<Duration>,
    #[serde(default, with = "crate::relay::duration::opt")]
    timeout: Option<Duration>,
    #[serde(default, with = "crate::relay::duration::opt")]
    max_backoff: Option<Duration>,
    #[serde(default)]
    replica_id: Option<String>,
}

/// Settings only: the URL may hold a password.
impl std::fmt::Debug for StoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreFile")
            .field("namespace", &self.namespace)
            .field("sync_interval", &self.sync_interval)
            .field("timeout", &self.timeout)
            .field("max_backoff", &self.max_backoff)
            .field("replica_id", &self.replica_id)
            .finish_non_exhaustive()
    }
}

/// The URL schemes of a Redis or Valkey server.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "redis+unix",
    "valkey+unix",
    "unix",
];

impl StoreFile {
    /// The store link this table describes, `${VAR}` references read through `env`.
    pub(super) fn store(
        &self,
        cfg: &RelayConfig,
        here: &KeyPath,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Store, ConfigError> {
        #[cfg(not(feature = "redis"))]
        {
            let _ = env;
            Err(cfg.error(
                here,
                "a [store] needs polyrelay built with the `redis` cargo feature: enable it \
                 (features = [\"redis\"]; the gateway binary: build it with `--features \
                 gateway,redis`) or remove the [store] table",
            ))
        }
        #[cfg(feature = "redis")]
        {
            // The connection and the sync task run on the caller's runtime.
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(cfg.error(
                    here,
                    "a relay with a store starts its sync task on the tokio runtime: build it \
                     inside one (in an async fn under #[tokio::main], say)",
                ));
            }
            let timeout = self.timeout.unwrap_or(crate::store::DEFAULT_STORE_TIMEOUT);
            let backend = match (&self.url, &self.cluster) {
                (Some(url), None) => {
                    let key = here.key("url");
                    let url = Self::expand(cfg, &key, url, env)?;
                    Self::scheme(cfg, &key, &url)?;
                    crate::store::RedisStore::open(&url, timeout)
                        .map_err(|e| cfg.error(&key, e.message()))?
                }
                (None, Some(nodes)) => {
                    let key = here.key("cluster");
                    let mut urls = Vec::with_capacity(nodes.len());
                    for (i, node) in nodes.iter().enumerate() {
                        let at = key.index(i);
                        let listed = Self::expand(cfg, &at, node, env)?;
                        for url in listed.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                            Self::scheme(cfg, &at, url)?;
                            urls.push(url.to_owned());
                        }
                    }
                    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                    crate::store::RedisStore::open_cluster(&urls, timeout)
                        .map_err(|e| cfg.error(&key, e.message()))?
                }
                (Some(_), Some(_)) => {
                    return Err(cfg.error(
                        &here.key("cluster"),
                        "a [store] has either `url` (one server) or `cluster` (a Redis \
                         Cluster's nodes), not both",
                    ));
                }
                (None, None) => {
                    return Err(cfg.error(
                        here,
                        "a [store] needs `url` (one server: url = \"${REDIS_URL}\") or \
                         `cluster` (a Redis Cluster's nodes: cluster = [\"redis://host:port\", ...])",
                    ));
                }
            };
            self.settings(cfg, here, env, Store::new(backend))
        }
    }

    /// `raw` (the URL, or a cluster's element, at `key`) with its `${VAR}` references
    /// expanded, once checked that no password is written out in it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn expand(
        cfg: &RelayConfig,
        key: &KeyPath,
        raw: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        // A password before `@`, or in `?pass=` (as redis-rs reads it for a unix socket).
        super::checks::url(cfg, key, raw)?;
        cfg.expand(key, raw, env)
    }

    /// Checks an expanded URL's scheme: a Redis or Valkey one. Messages never quote the URL
    /// (it may hold a password from the environment).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn scheme(cfg: &RelayConfig, key: &KeyPath, url: &str) -> Result<(), ConfigError> {
        match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
            Some(s) if SCHEMES.contains(&s.as_str()) => Ok(()),
            Some(s) => Err(cfg.error(
                key,
                format!(
                    "the store URL's scheme is {s:?}: a Redis or Valkey URL starts with \
                     redis:// (or {})",
                    SCHEMES[1..].join("://, ") + "://"
                ),
            )),
            None => Err(cfg.error(
                key,
                "the store URL is not a URL: write redis://host:port/db (or \"${REDIS_URL}\")",
            )),
        }
    }

    /// `store` with the table's settings, each error placed on its key.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn settings(
        &self,
        cfg: &RelayConfig,
        here: &KeyPath,
        env: &impl Fn(&str) -> Option<String>,
        mut store: Store,
    ) -> Result<Store, ConfigError> {
        if let Some(ns) = &self.namespace {
            store = store.namespace(cfg.expand(&here.key("namespace"), ns, env)?);
        }
        if let Some(id) = &self.replica_id {
            store = store.replica_id(cfg.expand(&here.key("replica_id"), id, env)?);
        }
        if let Some(t) = self.timeout {
            store = store.timeout(t);
        }
        if let Some(i) = self.sync_interval {
            store = store.sync_interval(i);
        }
        // A value below the sync interval counts as the interval (`Store::get_max_backoff`).
        if let Some(m) = self.max_backoff {
            store = store.max_backoff(m);
        }
        store.validate().map_err(|e| {
            let message = e.message();
            let field = [
                ("store namespace", "namespace"),
                ("store replica id", "replica_id"),
                ("store sync_interval", "sync_interval"),
                ("store timeout", "timeout"),
                ("store max_backoff", "max_backoff"),
            ]
            .iter()
            .find(|(said, _)| message.starts_with(said))
            .map(|(_, field)| here.key(field))
            .filter(|k| cfg.place(k).is_some());
            cfg.error(field.as_ref().unwrap_or(here), message)
        })?;
        Ok(store)
    }
}
