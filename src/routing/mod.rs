//! Built-in routing rules: by intent or label, by input size, by language
//! ([`LanguageRule`]), and by classifiers. Compose them in a [`Rules`] list and register it
//! with [`RelayBuilder::router`](crate::RelayBuilder::router); any type implementing
//! [`Router`] can stand beside them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use crate::relay::{RouteChoice, Router, RouterContext, RoutingQuery, Rules};

#[cfg(feature = "language")]
mod language;
#[cfg(feature = "language")]
pub use language::{DEFAULT_CANDIDATES, LanguageDetection, LanguageRule, Script, detect_language};
mod llm;
pub use llm::{
    DEFAULT_CLASSIFIER_BUDGET, DEFAULT_CLASSIFIER_MAX_TOKENS, DEFAULT_CLASSIFIER_QUERY_CHARS,
    LlmClassifier,
};
mod classifier;
pub use classifier::{ClassifierRule, Prediction, TextClassifier};

/// Routes by the request's intent ([`ChatRequest::intent`](crate::ChatRequest::intent)), then
/// by its labels ([`ChatRequest::label`](crate::ChatRequest::label)): the first that has an
/// entry picks its route. A lookup in a hash map: well under a microsecond.
#[derive(Debug, Clone, Default)]
pub struct IntentRule {
    table: HashMap<String, Arc<str>>,
}

impl IntentRule {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends requests whose intent (or one of whose labels) is `intent` to `route`.
    pub fn intent(mut self, intent: impl Into<String>, route: impl Into<Arc<str>>) -> Self {
        self.table.insert(intent.into(), route.into());
        self
    }
}

#[async_trait]
impl Router for IntentRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        if let Some(intent) = q.intent()
            && let Some(route) = self.table.get(intent)
        {
            return Some(RouteChoice::new(
                route.clone(),
                format!("intent {intent:?}"),
            ));
        }
        q.labels().iter().find_map(|l| {
            self.table
                .get(l)
                .map(|route| RouteChoice::new(route.clone(), format!("label {l:?}")))
        })
    }

    fn routes(&self) -> Vec<Arc<str>> {
        self.table.values().cloned().collect()
    }
}

/// Routes requests whose estimated input ([`RoutingQuery::estimated_input_tokens`]) is above
/// a threshold to a long-context route.
#[derive(Debug, Clone)]
pub struct SizeRule {
    above_tokens: u64,
    route: Arc<str>,
}

impl SizeRule {
    /// Sends requests estimated above `tokens` input tokens to `route`.
    pub fn above(tokens: u64, route: impl Into<Arc<str>>) -> Self {
        SizeRule {
            above_tokens: tokens,
            route: route.into(),
        }
    }
}

#[async_trait]
impl Router for SizeRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        (q.estimated_input_tokens > self.above_tokens).then(|| {
            RouteChoice::new(
                self.route.clone(),
                format!(
                    "input of ~{} tokens is above {}",
                    q.estimated_input_tokens, self.above_tokens
                ),
            )
        })
    }

    fn routes(&self) -> Vec<Arc<str>> {
        vec![self.route.clone()]
    }
}
