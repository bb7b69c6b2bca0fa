//! The rule that routes by a [`TextClassifier`]'s label.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::TextClassifier;
use crate::routing::{RouteChoice, Router, RouterContext, RoutingQuery};

/// The default [`ClassifierRule::max_query_chars`].
const DEFAULT_QUERY_CHARS: usize = 2_000;

/// Routes by the label a [`TextClassifier`] gives the last user message, in process.
///
/// The same contract as [`LlmClassifier`](crate::routing::LlmClassifier): a label with a route picks
/// it, with the label, the reason (`classifier: refund_dispute (0.83)`) and the classifier's
/// latency recorded in `meta.routing`; a label without a route, a confidence below
/// [`min_confidence`](Self::min_confidence) (by default the classifier's own abstain
/// threshold, as [`TextClassifier::classify`]), or no user text, passes to the next rule (or
/// the default route). It never fails the request.
///
/// ```
/// use polyrelay::routing::{ClassifierRule, Rules, TextClassifier};
/// let clf = TextClassifier::train([
///     ("where is my order", "order_status"),
///     ("my parcel has not arrived", "order_status"),
///     ("I want my money back", "refund_dispute"),
///     ("please refund the charge", "refund_dispute"),
/// ])?;
/// let rules = Rules::new("general").rule("classifier", ClassifierRule::new(clf)
///     .label("order_status", "cheap")
///     .label("refund_dispute", "strong")
///     .min_confidence(0.6));
/// # Ok::<(), polyrelay::Error>(())
/// ```
#[derive(Clone)]
pub struct ClassifierRule {
    classifier: Arc<TextClassifier>,
    /// Route per label index of the classifier.
    routes: Vec<Option<Arc<str>>>,
    /// `None`: the classifier's [`abstain_below`](TextClassifier::abstain_below).
    min_confidence: Option<f32>,
    max_query_chars: usize,
}

impl ClassifierRule {
    /// A rule over `classifier` (a [`TextClassifier`] or an `Arc` of one). It passes until
    /// labels are given routes with [`label`](Self::label).
    pub fn new(classifier: impl Into<Arc<TextClassifier>>) -> Self {
        let classifier = classifier.into();
        ClassifierRule {
            routes: vec![None; classifier.labels.len()],
            classifier,
            min_confidence: None,
            max_query_chars: DEFAULT_QUERY_CHARS,
        }
    }

    /// Sends queries labelled `label` to `route`; giving a label again changes its route. A
    /// label the classifier was not trained on is never predicted: it is ignored, with a
    /// warning in the log.
    pub fn label(mut self, label: impl AsRef<str>, route: impl Into<Arc<str>>) -> Self {
        let label = label.as_ref();
        match self.classifier.labels.iter().position(|l| &**l == label) {
            Some(i) => {
                if let Some(slot) = self.routes.get_mut(i) {
                    *slot = Some(route.into());
                }
            }
            None => tracing::warn!(
                label,
                known = ?self.classifier.labels,
                "classifier rule: label not in the classifier's labels, ignored"
            ),
        }
        self
    }

    /// The lowest calibrated confidence the rule acts on (clamped to `0..=1`); below it the
    /// rule passes. Default: the classifier's own threshold,
    /// [`TextClassifier::abstain_below`] (0.5 unless trained or loaded otherwise). A NaN
    /// restores the default.
    ///
    /// The confidence is calibrated on held-out folds, so the threshold trades coverage for
    /// precision: of the queries the rule acts on at `min_confidence(0.8)`, about 8 in 10 or
    /// more are labelled right (on queries like the training examples); raising it acts on
    /// fewer queries, more of them right, and passes more unknown intents on. The measured
    /// trade-off on public benchmarks is in `docs/routing-quality/classifier.md`.
    pub fn min_confidence(mut self, confidence: f32) -> Self {
        self.min_confidence = (!confidence.is_nan()).then(|| confidence.clamp(0.0, 1.0));
        self
    }

    /// How much of the query is classified: its first `chars` characters (which bounds the
    /// rule's time on very long prompts). Default: 2,000.
    pub fn max_query_chars(mut self, chars: usize) -> Self {
        self.max_query_chars = chars;
        self
    }
}

impl fmt::Debug for ClassifierRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<(&str, &str)> = self
            .classifier
            .labels
            .iter()
            .zip(&self.routes)
            .filter_map(|(l, r)| r.as_deref().map(|r| (&**l, r)))
            .collect();
        f.debug_struct("ClassifierRule")
            .field("classifier", &self.classifier)
            .field("routes", &routes)
            .field("min_confidence", &self.min_confidence)
            .field("max_query_chars", &self.max_query_chars)
            .finish()
    }
}

/// The first `max` characters of `text`.
fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[async_trait]
impl Router for ClassifierRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        let text = truncate_chars(q.last_user_text.trim(), self.max_query_chars);
        if text.is_empty() || self.routes.iter().all(Option::is_none) {
            return None;
        }
        let started = Instant::now();
        let (index, confidence) = self.classifier.top(text);
        let latency = started.elapsed();
        let label = self.classifier.labels.get(index)?;
        let min_confidence = self.min_confidence.unwrap_or(self.classifier.abstain_below);
        if confidence < min_confidence {
            tracing::debug!(
                %label,
                confidence,
                min_confidence,
                "classifier rule: unsure, passing"
            );
            return None;
        }
        let Some(route) = self.routes.get(index).and_then(Option::as_ref) else {
            tracing::debug!(%label, confidence, "classifier rule: label has no route, passing");
            return None;
        };
        let mut choice = RouteChoice::new(
            route.clone(),
            format!("classifier: {label} ({confidence:.2})"),
        )
        .with_label(&**label);
        choice.classifier_latency = Some(latency);
        Some(choice)
    }

    fn routes(&self) -> Vec<Arc<str>> {
        let mut routes: Vec<Arc<str>> = Vec::new();
        for r in self.routes.iter().flatten() {
            if !routes.contains(r) {
                routes.push(r.clone());
            }
        }
        routes
    }
}
