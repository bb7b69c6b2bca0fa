//! `[routers.NAME.rules.classifier]`: an in-process classifier rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::{ConfigError, KeyPath, RelayConfig};
use super::{at_least_one, share};
use crate::routing::{ClassifierRule, TextClassifier};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassifierFile {
    /// A JSON Lines file of `{"text": …, "label": …}` (or a CSV file with `text` and `label`
    /// columns), relative to the configuration file: the classifier is trained at build.
    #[serde(default)]
    examples: Option<String>,
    /// A model saved by `TextClassifier::save`, relative to the configuration file: loaded,
    /// not trained. Exactly one of `examples` and `model`.
    #[serde(default)]
    model: Option<String>,
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
    let (field, file, read): (&str, _, fn(&std::path::Path) -> _) = match (&c.examples, &c.model) {
        (Some(file), None) => ("examples", file, |p| TextClassifier::from_examples_file(p)),
        (None, Some(file)) => ("model", file, |p| TextClassifier::load(p)),
        _ => {
            return Err(config.error(key, "a classifier has exactly one of examples, model"));
        }
    };
    let path = config.resolve_path(file);
    let model = read(&path).map_err(|e| {
        let message = e.message();
        let shown = path.display().to_string();
        if message.contains(&shown) {
            config.error(&key.key(field), message.to_owned())
        } else {
            config.error(&key.key(field), format!("{shown}: {message}"))
        }
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
