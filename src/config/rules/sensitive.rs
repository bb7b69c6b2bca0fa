//! `[[routers.NAME.rules]] sensitive = { … }`: a sensitive-data rule
//! ([`SensitiveDataRule`](crate::routing::SensitiveDataRule)).
//!
//! ```toml
//! [[routers.support.rules]]
//! name = "pii"
//! sensitive = { route = "onprem", kinds = ["card", "iban", "ssn"], patterns = { employee_id = "EMP-[0-9]{6}" } }
//!
//! [[routers.support.rules]]
//! name = "mask"
//! sensitive = { mask = true, kinds = ["email", "phone"] }
//! ```
//!
//! `route` (a route name) sends matching requests there; `mask = true` masks the matched
//! spans (with a route: routes the masked request; without: masks and passes to the next
//! rule). One of them is required. `kinds` (default: every built-in kind) names built-in
//! kinds: `card`, `iban`, `email`, `phone`, `ssn`, `national_id`, `api_key`. `patterns`
//! maps a kind name of the user's to a regular expression.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::super::{ConfigError, KeyPath, RelayConfig};
use crate::relay::Router;

/// `sensitive = { … }` of a rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "sensitive"), allow(dead_code))]
pub(super) struct SensitiveFile {
    /// Where a match goes.
    #[serde(default)]
    route: Option<String>,
    /// Built-in kinds by name; absent: all.
    #[serde(default)]
    kinds: Option<Vec<String>>,
    /// Whether matched spans are masked.
    #[serde(default)]
    mask: bool,
    /// Kind name → regular expression.
    #[serde(default)]
    patterns: BTreeMap<String, String>,
}

/// The rule `s` describes at `key`, every route it names checked by `route`.
#[cfg(feature = "sensitive")]
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    s: &SensitiveFile,
    route: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
) -> Result<Arc<dyn Router>, ConfigError> {
    use crate::routing::{SensitiveDataRule, SensitiveKind};
    let mut rule = match &s.route {
        Some(to) => {
            route(key.key("route"), to)?;
            SensitiveDataRule::new(to.as_str()).masked(s.mask)
        }
        None if s.mask => SensitiveDataRule::masking(),
        None => {
            return Err(config.error(
                key,
                "a sensitive rule needs a route, or mask = true (or both)",
            ));
        }
    };
    if let Some(names) = &s.kinds {
        let mut kinds = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match SensitiveKind::from_name(name.trim()) {
                Some(kind) => kinds.push(kind),
                None => {
                    return Err(config.error(
                        &key.key("kinds").index(i),
                        format!(
                            "unknown kind {name:?} (card, iban, email, phone, ssn, national_id, \
                             api_key; your own kinds go in patterns)"
                        ),
                    ));
                }
            }
        }
        if kinds.is_empty() && s.patterns.is_empty() {
            return Err(config.error(
                &key.key("kinds"),
                "no kinds and no patterns: the rule would never match",
            ));
        }
        rule = rule.kinds(kinds);
    }
    for (name, regex) in &s.patterns {
        rule = rule
            .pattern(name, regex)
            .map_err(|e| config.error(&key.key("patterns").key(name), e.message()))?;
    }
    Ok(Arc::new(rule))
}

/// Without the `sensitive` feature: a config error.
#[cfg(not(feature = "sensitive"))]
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    _: &SensitiveFile,
    _: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
) -> Result<Arc<dyn Router>, ConfigError> {
    Err(config.error(
        key,
        "sensitive-data rules need polyrelay's `sensitive` cargo feature, which this build lacks",
    ))
}
