//! `[routers.NAME.rules.sensitive]`: a sensitive-data rule (issue 22, being built).

use serde::Deserialize;

use super::super::{ConfigError, KeyPath, RelayConfig};
use std::sync::Arc;

use crate::relay::Router;

/// `[routers.NAME.rules.sensitive]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SensitiveFile {}

/// The rule `s` describes at `key`, every route it names checked by `route`.
pub(super) fn build(
    config: &RelayConfig,
    key: &KeyPath,
    _s: &SensitiveFile,
    _route: &dyn Fn(KeyPath, &str) -> Result<(), ConfigError>,
) -> Result<Arc<dyn Router>, ConfigError> {
    Err(config.error(key, "sensitive-data rules are not available yet"))
}
