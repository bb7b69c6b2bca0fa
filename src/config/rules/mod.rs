//! `[routers.NAME]`: a router's default route and its rules, in order.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, KeyPath, RelayConfig, check_route};
use crate::relay::Rules;
use crate::relay::duration::check_span;
use crate::routing::{IntentRule, LlmClassifier, SizeRule};

mod classifier;
mod language;
mod sensitive;

/// `[routers.NAME]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouterFile {
    default: String,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

/// `[[routers.NAME.rules]]`: a name and exactly one kind of rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    /// Intent or label → route.
    #[serde(default)]
    intents: Option<BTreeMap<String, String>>,
    #[serde(default)]
    language: Option<language::LanguageFile>,
    #[serde(default)]
    classifier: Option<classifier::ClassifierFile>,
    #[serde(default)]
    sensitive: Option<sensitive::SensitiveFile>,
    #[serde(default)]
    llm: Option<LlmFile>,
    #[serde(default)]
    size: Option<SizeFile>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LlmFile {
    /// The route that classifies.
    route: String,
    /// Label → route.
    labels: BTreeMap<String, String>,
    /// Label → what it means, for the prompt.
    #[serde(default)]
    descriptions: BTreeMap<String, String>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default, with = "crate::relay::duration::opt")]
    budget: Option<Duration>,
    #[serde(default)]
    cache: Option<usize>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_query_chars: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SizeFile {
    route: String,
    #[serde(default)]
    above_tokens: Option<u64>,
    #[serde(default)]
    beyond_window_of: Option<String>,
}

/// The most labels an LLM classifier's cache may keep (each holds up to `max_query_chars`
/// of a query): a larger cache is memory that clients' distinct queries fill.
const MAX_CACHE: usize = 1_000_000;

/// Checks a confidence written at `key`: a share from 0 to 1 (the builders would clamp it
/// silently; a file says what it means).
pub(super) fn share(config: &RelayConfig, key: &KeyPath, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(config.error(key, format!("must be a share from 0 to 1, not {value}")))
    }
}

/// Checks a count written at `key`: at least 1.
pub(super) fn at_least_one(
    config: &RelayConfig,
    key: &KeyPath,
    n: usize,
) -> Result<(), ConfigError> {
    if n == 0 {
        Err(config.error(key, "must be at least 1"))
    } else {
        Ok(())
    }
}

impl RouterFile {
    /// The rule list, every route it names checked.
    pub(super) fn rules(
        &self,
        config: &RelayConfig,
        router: &str,
        known_route: &dyn Fn(&str) -> bool,
    ) -> Result<Rules, ConfigError> {
        let here = KeyPath::of(&["routers", router]);
        check_route(config, &here.key("default"), &self.default, known_route)?;
        let mut rules = Rules::new(self.default.as_str());
        for (i, rule) in self.rules.iter().enumerate() {
            let at = here.key("rules").index(i);
            let kinds = [
                rule.intents.is_some(),
                rule.language.is_some(),
                rule.classifier.is_some(),
                rule.sensitive.is_some(),
                rule.llm.is_some(),
                rule.size.is_some(),
            ];
            if kinds.iter().filter(|&&k| k).count() != 1 {
                return Err(config.error(
                    &at,
                    "a rule has exactly one of intents, language, classifier, sensitive, llm, size",
                ));
            }
            let route = |key: KeyPath, r: &str| check_route(config, &key, r, known_route);
            if let Some(table) = &rule.intents {
                let mut r = IntentRule::new();
                for (intent, to) in table {
                    route(at.key("intents").key(intent), to)?;
                    r = r.intent(intent.clone(), to.as_str());
                }
                rules = rules.rule(rule.name.as_str(), r);
            } else if let Some(l) = &rule.language {
                rules = language::build(config, &at.key("language"), l, &route, rules, &rule.name)?;
            } else if let Some(c) = &rule.classifier {
                let r = classifier::build(config, &at.key("classifier"), c, &route)?;
                rules = rules.rule(rule.name.as_str(), r);
            } else if let Some(s) = &rule.sensitive {
                let r = sensitive::build(config, &at.key("sensitive"), s, &route)?;
                rules = rules.rule_arc(rule.name.as_str(), r);
            } else if let Some(l) = &rule.llm {
                let key = at.key("llm");
                route(key.key("route"), &l.route)?;
                let mut r = LlmClassifier::new(l.route.as_str());
                for (label, to) in &l.labels {
                    route(key.key("labels").key(label), to)?;
                    r = r.label(label.clone(), to.as_str());
                }
                for (label, text) in &l.descriptions {
                    if !l.labels.contains_key(label) {
                        return Err(config.error(
                            &key.key("descriptions").key(label),
                            "describes a label that is not in labels",
                        ));
                    }
                    r = r.describe(label.clone(), text.clone());
                }
                if let Some(t) = &l.instructions {
                    r = r.instructions(t.clone());
                }
                if let Some(d) = l.budget {
                    check_span("budget", d)
                        .map_err(|e| config.error(&key.key("budget"), e.message()))?;
                    r = r.budget(d);
                }
                if let Some(n) = l.cache {
                    if n > MAX_CACHE {
                        return Err(config.error(
                            &key.key("cache"),
                            format!("cache holds at most {MAX_CACHE} labels, not {n}"),
                        ));
                    }
                    r = r.cache(n);
                }
                if let Some(n) = l.max_tokens {
                    at_least_one(config, &key.key("max_tokens"), n as usize)?;
                    r = r.max_tokens(n);
                }
                if let Some(n) = l.max_query_chars {
                    at_least_one(config, &key.key("max_query_chars"), n)?;
                    r = r.max_query_chars(n);
                }
                rules = rules.rule(rule.name.as_str(), r);
            } else if let Some(s) = &rule.size {
                let key = at.key("size");
                route(key.key("route"), &s.route)?;
                let r = match (s.above_tokens, &s.beyond_window_of) {
                    (Some(n), None) => SizeRule::above(n, s.route.as_str()),
                    (None, Some(usual)) => {
                        route(key.key("beyond_window_of"), usual)?;
                        SizeRule::beyond_window_of(usual.as_str(), s.route.as_str())
                    }
                    _ => {
                        return Err(config.error(
                            &key,
                            "a size rule has exactly one of above_tokens, beyond_window_of",
                        ));
                    }
                };
                rules = rules.rule(rule.name.as_str(), r);
            }
        }
        Ok(rules)
    }
}
