//! Built-in routing rules: by intent or label, by input size, by language
//! ([`LanguageRule`]), and by classifiers. Compose them in a [`Rules`] list and register it
//! with [`RelayBuilder::router`](crate::RelayBuilder::router); any type implementing
//! [`Router`] can stand beside them.

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::relay::{RouteChoice, Router, RouterContext, RoutingQuery, Rules};

#[cfg(feature = "language")]
mod language;
#[cfg(feature = "language")]
mod scorer;
#[cfg(feature = "language")]
mod script;
#[cfg(feature = "language")]
pub use language::{DEFAULT_CANDIDATES, LanguageDetection, LanguageRule, Script, Verdict};
mod llm;
pub use llm::{
    DEFAULT_CLASSIFIER_BUDGET, DEFAULT_CLASSIFIER_MAX_TOKENS, DEFAULT_CLASSIFIER_QUERY_CHARS,
    LlmClassifier,
};
mod classifier;
pub use classifier::{ClassifierRule, Prediction, TextClassifier, TrainOptions};
#[cfg(feature = "sensitive")]
mod sensitive;
#[cfg(feature = "sensitive")]
pub use sensitive::{Finding, SensitiveDataRule, SensitiveKind, detect_sensitive};

/// Routes by the request's intent ([`ChatRequest::intent`](crate::ChatRequest::intent)), then
/// by its labels ([`ChatRequest::label`](crate::ChatRequest::label)): the first that has an
/// entry picks its route. A lookup in a hash map: well under a microsecond.
#[derive(Clone, Default)]
pub struct IntentRule {
    /// Intent or label → its route and the decision's reasons, written once here rather
    /// than formatted on every call. Hashed with foldhash (hashbrown's default), not SipHash:
    /// the keys are the deployment's own names.
    table: hashbrown::HashMap<String, Entry>,
}

/// A table entry: the route, and the reason a decision by intent or by label gives.
#[derive(Clone)]
struct Entry {
    route: Arc<str>,
    by_intent: String,
    by_label: String,
}

impl std::fmt::Debug for IntentRule {
    /// As `IntentRule { table: {intent: route, …} }`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Table<'a>(&'a hashbrown::HashMap<String, Entry>);
        impl std::fmt::Debug for Table<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, e)| (k, &e.route)))
                    .finish()
            }
        }
        f.debug_struct("IntentRule")
            .field("table", &Table(&self.table))
            .finish()
    }
}

impl IntentRule {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends requests whose intent (or one of whose labels) is `intent` to `route`.
    pub fn intent(mut self, intent: impl Into<String>, route: impl Into<Arc<str>>) -> Self {
        let intent = intent.into();
        let entry = Entry {
            route: route.into(),
            by_intent: format!("intent {intent:?}"),
            by_label: format!("label {intent:?}"),
        };
        self.table.insert(intent, entry);
        self
    }
}

#[async_trait]
impl Router for IntentRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        if let Some(intent) = q.intent()
            && let Some(e) = self.table.get(intent)
        {
            return Some(RouteChoice::new(e.route.clone(), e.by_intent.clone()));
        }
        q.labels().iter().find_map(|l| {
            self.table
                .get(l.as_str())
                .map(|e| RouteChoice::new(e.route.clone(), e.by_label.clone()))
        })
    }

    fn routes(&self) -> Vec<Arc<str>> {
        self.table.values().map(|e| e.route.clone()).collect()
    }
}

/// Routes requests by their estimated input ([`RoutingQuery::estimated_input_tokens`]) to a
/// long-context route: above a fixed threshold ([`SizeRule::above`]), or above the smallest
/// context window a route's targets declare ([`SizeRule::beyond_window_of`]).
#[derive(Debug, Clone)]
pub struct SizeRule {
    limit: SizeLimit,
    route: Arc<str>,
}

#[derive(Debug, Clone)]
enum SizeLimit {
    Tokens(u64),
    WindowOf(Arc<str>),
}

impl SizeRule {
    /// Sends requests estimated above `tokens` input tokens to `route`.
    pub fn above(tokens: u64, route: impl Into<Arc<str>>) -> Self {
        SizeRule {
            limit: SizeLimit::Tokens(tokens),
            route: route.into(),
        }
    }

    /// Sends requests whose estimated input does not fit the smallest context window
    /// declared in route `usual` ([`Relay::context_window`](crate::Relay::context_window))
    /// to `route`. Passes when `usual` declares no window.
    pub fn beyond_window_of(usual: impl Into<Arc<str>>, route: impl Into<Arc<str>>) -> Self {
        SizeRule {
            limit: SizeLimit::WindowOf(usual.into()),
            route: route.into(),
        }
    }
}

#[async_trait]
impl Router for SizeRule {
    async fn route(&self, q: &RoutingQuery<'_>, cx: &RouterContext<'_>) -> Option<RouteChoice> {
        let (limit, what) = match &self.limit {
            SizeLimit::Tokens(t) => (*t, String::new()),
            SizeLimit::WindowOf(usual) => (
                u64::from(cx.relay.context_window(usual)?),
                format!(" (the window of {usual:?})"),
            ),
        };
        (q.estimated_input_tokens > limit).then(|| {
            RouteChoice::new(
                self.route.clone(),
                format!(
                    "input of ~{} tokens is above {limit}{what}",
                    q.estimated_input_tokens
                ),
            )
        })
    }

    fn routes(&self) -> Vec<Arc<str>> {
        vec![self.route.clone()]
    }
}
