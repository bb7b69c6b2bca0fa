//! `[routers.NAME.rules.language]`: a language rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::{ConfigError, KeyPath, RelayConfig};
use super::share;
use crate::relay::Rules;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "language"), allow(dead_code))]
pub(super) struct LanguageFile {
    /// Script name (`han`, `kana`, `hangul`, `cyrillic`…) → route.
    #[serde(default)]
    scripts: BTreeMap<String, String>,
    /// Language (ISO 639-1 or 639-3 code or English name: `fr`, `fra`, `French`) → route.
    #[serde(default)]
    languages: BTreeMap<String, String>,
    #[serde(default)]
    min_confidence: Option<f64>,
    #[serde(default)]
    candidates: Option<Vec<String>>,
    #[serde(default)]
    all_languages: bool,
}

#[cfg(feature = "language")]
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    l: &LanguageFile,
    route: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
    rules: Rules,
    name: &str,
) -> Result<Rules, ConfigError> {
    use crate::routing::{LanguageRule, Script};
    let mut r = LanguageRule::new();
    if let Some(names) = &l.candidates {
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = LanguageRule::new().candidates([name]) {
                return Err(config.error(&key.key("candidates").index(i), e.message()));
            }
        }
        r = r
            .candidates(names)
            .map_err(|e| config.error(&key.key("candidates"), e.message()))?;
    }
    if l.all_languages {
        r = r.all_languages();
    }
    for (script, to) in &l.scripts {
        let at = key.key("scripts").key(script);
        let Some(s) = Script::from_name(script) else {
            return Err(config.error(
                &at,
                format!("unknown script {script:?} (han, kana, hangul, latin, cyrillic, …)"),
            ));
        };
        route(at, to)?;
        r = r.script(s, to.as_str());
    }
    for (name, to) in &l.languages {
        let at = key.key("languages").key(name);
        r = r
            .language(name, to.as_str())
            .map_err(|e| config.error(&at, e.message()))?;
        route(at, to)?;
    }
    if let Some(m) = l.min_confidence {
        share(config, &key.key("min_confidence"), m)?;
        r = r.min_confidence(m);
    }
    Ok(rules.rule(name, r))
}

#[cfg(not(feature = "language"))]
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    _: &LanguageFile,
    _: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
    _: Rules,
    _: &str,
) -> Result<Rules, ConfigError> {
    Err(config.error(
        key,
        "language rules need polyrelay's `language` cargo feature, which this build lacks",
    ))
}
