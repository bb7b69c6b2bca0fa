//! Routing: a [`Router`] looks at a request and picks a route. Routers compose as an ordered
//! rule list ([`Rules`]): the first rule that picks a route wins, else the default route.
//! Built-in rules live in [`crate::routing`]; any type can implement [`Router`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::spend::admission::estimate_input;
use crate::types::{ChatRequest, Role, RoutingDecision, Usage};

/// What a router sees of a request: the request itself, and facts computed once for every
/// rule (the last user message's text, an estimate of the input size, whether tools or
/// images are present).
///
/// A rule may also replace the request for what follows it ([`rewrite`](Self::rewrite)):
/// the sensitive-data rule masks card numbers and addresses this way before a third-party
/// vendor sees them.
#[derive(Debug)]
#[non_exhaustive]
pub struct RoutingQuery<'a> {
    /// The request.
    pub request: &'a ChatRequest,
    /// The text of the last user message (its text parts joined).
    pub last_user_text: Cow<'a, str>,
    /// An estimate of the input size in tokens (characters / 4 over every message, plus
    /// tool definitions), for size rules; no tokenizer is run.
    pub estimated_input_tokens: u64,
    /// Whether the request offers tools.
    pub has_tools: bool,
    /// Whether any message carries an image.
    pub has_images: bool,
    /// What rules that called a model and then passed spent ([`record_spend`](Self::record_spend)).
    spent: std::sync::Mutex<Spent>,
    /// The request a rule put in place of this one, and its note ([`rewrite`](Self::rewrite)).
    rewritten: std::sync::OnceLock<Box<(ChatRequest, String)>>,
}

/// Usage and cost of the model calls routing made for a request.
#[derive(Debug, Default)]
struct Spent {
    calls: u32,
    usage: Option<Usage>,
    cost: Option<f64>,
}

impl<'a> RoutingQuery<'a> {
    /// The facts about `request`.
    pub fn new(request: &'a ChatRequest) -> Self {
        let last_user_text = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.text())
            .unwrap_or(Cow::Borrowed(""));
        let (estimated_input_tokens, has_images) = estimate_input(request);
        RoutingQuery {
            request,
            last_user_text,
            estimated_input_tokens,
            has_tools: !request.tools.is_empty(),
            has_images,
            spent: std::sync::Mutex::default(),
            rewritten: std::sync::OnceLock::new(),
        }
    }

    /// Replaces the request for everything after the rule that calls it: the rules after it
    /// see `request` (in a query of its own), and the route chosen — by this rule, a later
    /// one, or the default — is sent `request` instead of the caller's. `note` says what
    /// changed, without the values (e.g. `masked card, email`); it is appended to the
    /// routing decision's reason as `; RULE: NOTE`.
    ///
    /// A rule that rewrites may still pick a route or pass. The first rewrite a rule makes
    /// counts; a second in the same call is ignored. The caller's request is never changed:
    /// the relay keeps the rewritten one for this call only. Use it for one-way changes
    /// (masking, removing a field); the answer is not rewritten back.
    pub fn rewrite(&self, request: ChatRequest, note: impl Into<String>) {
        let _ = self.rewritten.set(Box::new((request, note.into())));
    }

    /// Records what a rule spent on a model call (an LLM classifier's), whether the rule
    /// then decides or passes: it is counted under the request (`meta.routing`'s classifier
    /// usage and cost, `meta.cost`, the stats). A call with usage and no known `cost` makes
    /// the routing cost unknown, never a partial sum.
    pub fn record_spend(&self, usage: Option<Usage>, cost: Option<f64>) {
        let Some(usage) = usage else {
            return;
        };
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.usage = Some(match spent.usage.take() {
            Some(before) => before.add(&usage),
            None => usage,
        });
        spent.cost = match (spent.calls, spent.cost, cost) {
            (0, _, c) => c,
            (_, Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        spent.calls += 1;
    }

    /// What passing rules spent, taken out.
    fn take_spent(&self) -> Spent {
        std::mem::take(&mut *self.spent.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The request's intent ([`ChatRequest::intent`]).
    pub fn intent(&self) -> Option<&str> {
        self.request.relay.intent.as_deref()
    }

    /// The request's labels ([`ChatRequest::label`]).
    pub fn labels(&self) -> &[String] {
        &self.request.relay.labels
    }
}

/// A router's pick: the route, and why.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RouteChoice {
    /// The route chosen.
    pub route: Arc<str>,
    /// Why, in words (e.g. `intent "refund_dispute"`, `language cmn (0.97)`).
    pub reason: String,
    /// The label the rule gave the query: a classifier's label, or e.g. a language rule's
    /// script or language code.
    pub label: Option<String>,
    /// How long the classifier took, if one ran (a router that sets it declares `label` a
    /// classifier's label: the call's query type in the stats). What a classifier's model
    /// call spent goes through [`RoutingQuery::record_spend`].
    pub classifier_latency: Option<Duration>,
}

impl RouteChoice {
    /// A choice of `route` for `reason`.
    pub fn new(route: impl Into<Arc<str>>, reason: impl Into<String>) -> Self {
        RouteChoice {
            route: route.into(),
            reason: reason.into(),
            label: None,
            classifier_latency: None,
        }
    }

    /// Records the classifier's label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// What a router can use besides the query: the relay itself (an LLM classifier calls one of
/// its routes).
#[derive(Debug)]
#[non_exhaustive]
pub struct RouterContext<'a> {
    /// The relay the request goes through.
    pub relay: &'a super::Relay,
}

impl<'a> RouterContext<'a> {
    /// The context of a call through `relay` (for testing a router on its own).
    pub fn new(relay: &'a super::Relay) -> Self {
        RouterContext { relay }
    }
}

/// Picks a route for a request, or passes (`None`) to the next rule.
///
/// Implement it for your own rules; the relay records the decision (which rule, why, which
/// route) in `meta.routing` and on the call's span. A router must not fail the request: when
/// it cannot decide (a classifier timed out, an unknown label) it passes.
#[async_trait]
pub trait Router: Send + Sync + std::fmt::Debug {
    /// Picks a route for `query`, or `None` to let the next rule decide.
    async fn route(&self, query: &RoutingQuery<'_>, cx: &RouterContext<'_>) -> Option<RouteChoice>;

    /// The routes this router may pick, so [`RelayBuilder::build`](crate::RelayBuilder::build)
    /// can check they exist. Default: none declared (not checked).
    fn routes(&self) -> Vec<Arc<str>> {
        Vec::new()
    }
}

/// An ordered rule list: the first rule that picks a route wins; if none does, the default
/// route.
///
/// ```
/// use polyrelay::routing::{IntentRule, Rules};
/// let rules = Rules::new("general")
///     .rule("intents", IntentRule::new()
///         .intent("order_status", "cheap")
///         .intent("refund_dispute", "strong"));
/// ```
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) rules: Vec<(Arc<str>, Arc<dyn Router>)>,
    pub(crate) default_route: Arc<str>,
}

impl Rules {
    /// A rule list whose default route is `default_route`.
    pub fn new(default_route: impl Into<Arc<str>>) -> Self {
        Rules {
            rules: Vec::new(),
            default_route: default_route.into(),
        }
    }

    /// Appends a rule named `name` (the name recorded when it matches).
    pub fn rule(mut self, name: impl Into<Arc<str>>, router: impl Router + 'static) -> Self {
        self.rules.push((name.into(), Arc::new(router)));
        self
    }

    /// Appends a shared rule.
    pub fn rule_arc(mut self, name: impl Into<Arc<str>>, router: Arc<dyn Router>) -> Self {
        self.rules.push((name.into(), router));
        self
    }

    /// The routes this rule list can pick, as far as its rules declare them (the default
    /// route first), for validation at build time.
    pub(crate) fn declared_routes(&self) -> Vec<(Option<&str>, Arc<str>)> {
        let mut out = vec![(None, self.default_route.clone())];
        for (name, rule) in &self.rules {
            out.extend(rule.routes().into_iter().map(|r| (Some(&**name), r)));
        }
        out
    }

    /// Runs the rules in order over `request`: the decision, and the request the route is
    /// to be sent when a rule rewrote it ([`RoutingQuery::rewrite`]).
    pub(crate) async fn decide(
        &self,
        router: &Arc<str>,
        request: &ChatRequest,
        cx: &RouterContext<'_>,
    ) -> (RoutingDecision, Option<Box<ChatRequest>>) {
        let mut rewritten: Option<Box<ChatRequest>> = None;
        // What rewrites said, appended to the reason.
        let mut notes = String::new();
        let mut spent = Spent::default();
        let mut next = 0;
        let (chosen, spent) = 'rules: loop {
            let mut query = RoutingQuery::new(rewritten.as_deref().unwrap_or(request));
            *query.spent.get_mut().unwrap_or_else(|p| p.into_inner()) = std::mem::take(&mut spent);
            while let Some((name, rule)) = self.rules.get(next) {
                next += 1;
                let choice = rule.route(&query, cx).await;
                if let Some(rewrite) = query.rewritten.take() {
                    let (request, note) = *rewrite;
                    notes.push_str("; ");
                    notes.push_str(name);
                    notes.push_str(": ");
                    notes.push_str(&note);
                    spent = query.take_spent();
                    drop(query);
                    rewritten = Some(Box::new(request));
                    if let Some(choice) = choice {
                        break 'rules (Some((name, choice)), spent);
                    }
                    continue 'rules;
                }
                if let Some(choice) = choice {
                    break 'rules (Some((name, choice)), query.take_spent());
                }
            }
            break (None, query.take_spent());
        };
        let mut decision = match chosen {
            Some((name, choice)) => RoutingDecision {
                router: router.clone(),
                rule: Some(name.clone()),
                route: choice.route,
                reason: choice.reason,
                label: choice.label,
                classifier_latency: choice.classifier_latency,
                classifier_usage: spent.usage,
                classifier_cost: spent.cost,
            },
            None => RoutingDecision {
                router: router.clone(),
                rule: None,
                route: self.default_route.clone(),
                reason: "no rule matched: the default route".to_owned(),
                label: None,
                classifier_latency: None,
                classifier_usage: spent.usage,
                classifier_cost: spent.cost,
            },
        };
        decision.reason.push_str(&notes);
        (decision, rewritten)
    }
}
