//! `[routers.NAME.rules.classifier]`: an in-process classifier rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::{ConfigError, KeyPath, RelayConfig};
use super::{at_least_one, share};
use crate::routing::{ClassifierRule, TextClassifier};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassifierFile {
    /// A JSON Lines file of `{"text": …, "label": …}`, relative to the configuration file.
    examples: String,
    /// Label → route.
    labels: BTreeMap<String, String>,
    #[serde(default)]
    min_confidence: Option<f32>,
    #[serde(default)]
    max_query_chars: Option<usize>,
}

/// The rule `c` describes at `key`, every route it names checked by `route`.
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    c: &ClassifierFile,
    route: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
) -> Result<ClassifierRule, ConfigError> {
    let path = config.resolve_path(&c.examples);
    let model = TextClassifier::from_jsonl(&path).map_err(|e| {
        config.error(
            &key.key("examples"),
            format!("{}: {}", path.display(), e.message()),
        )
    })?;
    let mut r = ClassifierRule::new(model);
    for (label, to) in &c.labels {
        route(key.key("labels").key(label), to)?;
        r = r.label(label, to.as_str());
    }
    if let Some(m) = c.min_confidence {
        share(config, &key.key("min_confidence"), f64::from(m))?;
        r = r.min_confidence(m);
    }
    if let Some(n) = c.max_query_chars {
        at_least_one(config, &key.key("max_query_chars"), n)?;
        r = r.max_query_chars(n);
    }
    Ok(r)
}
