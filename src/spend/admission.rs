//! Budget admission: what a request is estimated to spend (its input and output tokens, and
//! their cost at the dearest price it may land on), and whether the budgets let it be sent —
//! reserved, downgraded to a budget's cheaper route, or refused with `BudgetExceeded`.
//!
//! The estimate is made here once for the whole call: the router's size rules, the budgets,
//! the context windows and the rate limits all read it. Admission is written against what a
//! route looks like to a budget ([`Priced`]: a name and prices), so it sits below the relay
//! and knows nothing of its targets.

use std::sync::Arc;

use tokio::time::Instant;

use crate::accounting::cost::estimate_cost;
use crate::accounting::{BudgetEvent, BudgetEventKind, Observers};
use crate::catalog::Price;
use crate::spend::budget::{BudgetQuery, Budgets, Charge, OverBudget, Refusal, Spend};
use crate::types::{
    BudgetExceeded, BudgetUnit, ChatRequest, Content, ContentPart, Error, ErrorKind,
    RoutingDecision,
};

/// Output tokens a request that sets no `max_tokens` is estimated at (budgets and rate
/// limits reserve its estimate, then reconcile with what it used).
pub(crate) const DEFAULT_OUTPUT_ESTIMATE: u32 = 1024;

/// A request's input estimate, made at most once per call: the budgets, the context windows
/// and the rate limits all read it, and it walks every message.
pub(crate) struct InputEstimate<'a> {
    req: &'a ChatRequest,
    tokens: Option<u64>,
}

impl<'a> InputEstimate<'a> {
    /// Not made yet.
    pub fn new(req: &'a ChatRequest) -> Self {
        Self { req, tokens: None }
    }

    /// The estimate, in tokens.
    pub fn get(&mut self) -> u64 {
        *self
            .tokens
            .get_or_insert_with(|| estimate_input(self.req).0)
    }
}

/// The request's output allowance: its `max_tokens`, else [`DEFAULT_OUTPUT_ESTIMATE`].
pub(crate) fn output_estimate(req: &ChatRequest) -> u64 {
    u64::from(
        req.max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
    )
}

/// An estimate of `request`'s input in tokens (bytes / 4 over every message, tool call and
/// tool definition; no tokenizer), and whether any message carries an image.
pub(crate) fn estimate_input(request: &ChatRequest) -> (u64, bool) {
    let mut chars = 0u64;
    let mut has_images = false;
    for m in &request.messages {
        match &m.content {
            Some(Content::Text(t)) => chars += t.len() as u64,
            Some(Content::Parts(parts)) => {
                for p in parts {
                    match p {
                        ContentPart::Text { text } => chars += text.len() as u64,
                        ContentPart::ImageUrl { .. } => has_images = true,
                        ContentPart::Other(v) => chars += json_len(v),
                    }
                }
            }
            None => {}
        }
        for c in &m.tool_calls {
            chars += (c.function.name.len() + c.function.arguments.len()) as u64;
        }
    }
    for f in request.tools.iter().filter_map(|t| t.function.as_ref()) {
        chars += f.name.len() as u64
            + f.description.as_deref().map_or(0, str::len) as u64
            + f.parameters.as_ref().map_or(0, json_len);
    }
    (chars.div_ceil(4), has_images)
}

/// The length of `v` as JSON, counted without building the string.
fn json_len(v: &serde_json::Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing to a counter cannot fail; an error would only leave the count short.
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

/// A route as budgets see it: its name, and the prices of the targets a request on it may
/// land on.
pub(crate) trait Priced {
    /// The route's name (budgets scoped to a route match it).
    fn name(&self) -> &str;
    /// The prices of its targets that have one.
    fn prices(&self) -> impl Iterator<Item = &Price>;
}

/// Where a request is admitted: the relay's budgets, who hears what they did, and the
/// request with its routing decision.
pub(crate) struct Gate<'a> {
    pub budgets: &'a Budgets,
    pub observers: &'a Observers,
    pub req: &'a ChatRequest,
    pub routing: Option<&'a RoutingDecision>,
}

/// A request the budgets let through: the route it goes to if not the one it asked for (a
/// downgrade), and its reservation (`None` when no budget applies).
pub(crate) type Admitted<R> = (Option<Arc<R>>, Option<Charge>);

/// A request the budgets refused: the route it was refused on if not the one it asked for,
/// and why.
pub(crate) type Refused<R> = (Option<Arc<R>>, Error);

impl Gate<'_> {
    /// Checks `route` against the budgets: reserves the request's estimated spend, or, when
    /// a budget is spent, downgrades to its cheaper route (`cheaper` resolves a route name,
    /// `None` when it cannot) or refuses with `BudgetExceeded`.
    pub fn admit<R: Priced>(
        &self,
        route: &R,
        start: Instant,
        input: &mut InputEstimate<'_>,
        cheaper: impl FnOnce(&str) -> Option<Arc<R>>,
    ) -> Result<Admitted<R>, Refused<R>> {
        let req = self.req;
        if req.relay.nested {
            // A classifier's call is counted under the request it routes.
            return Ok((None, None));
        }
        let intent = req
            .relay
            .intent
            .as_deref()
            .or_else(|| self.routing.and_then(|r| r.label.as_deref()));
        let (input, output) = (input.get(), output_estimate(req));
        let reserve = |route: &R| {
            let query = BudgetQuery {
                route: route.name(),
                intent,
                labels: &req.relay.labels,
                tags: &req.relay.require_tags,
            };
            let estimate = Spend {
                usd: estimate_cost(route.prices(), input, output),
                tokens: input + output,
            };
            self.budgets.reserve_at(&query, estimate, start)
        };
        let refusal = match reserve(route) {
            Ok(charge) => return Ok((None, (!charge.is_empty()).then_some(charge))),
            Err(r) => r,
        };
        let OverBudget::Downgrade(to) = &refusal.action else {
            return Err((None, self.refuse(route.name(), refusal)));
        };
        let Some(to) = cheaper(to) else {
            return Err((None, self.refuse(route.name(), refusal)));
        };
        match reserve(&to) {
            Ok(charge) => {
                let ex = &refusal.exceeded;
                tracing::info!(
                    relay.budget = %ex.budget,
                    relay.route = %route.name(),
                    relay.downgraded_to = %to.name(),
                    "budget spent: request downgraded"
                );
                self.event(ex, BudgetEventKind::Downgraded, to.name());
                Ok((Some(to), (!charge.is_empty()).then_some(charge)))
            }
            Err(again) => {
                let err = self.refuse(to.name(), again);
                Err((Some(to), err))
            }
        }
    }

    /// The error of a request refused on route `on`, told to the observers.
    fn refuse(&self, on: &str, refusal: Refusal) -> Error {
        let ex = &refusal.exceeded;
        self.event(ex, BudgetEventKind::Rejected, on);
        Error::new(ErrorKind::BudgetExceeded, refusal_message(ex)).with_budget(refusal.exceeded)
    }

    /// Tells the observers what a budget did to a request.
    fn event(&self, ex: &BudgetExceeded, kind: BudgetEventKind, route: &str) {
        self.observers.each(|o| {
            o.budget(&BudgetEvent {
                name: &ex.budget,
                kind,
                unit: ex.unit,
                used: ex.spent,
                limit: ex.limit,
                route: Some(route),
            })
        });
    }
}

/// What a refusal says: the request's own estimate against what is left of the window, so a
/// request too large for an unspent budget is not told the budget "is spent".
fn refusal_message(ex: &BudgetExceeded) -> String {
    let unit = unit_name(ex.unit);
    let amount = |v: f64| amount(ex.unit, v);
    let left = (ex.limit - ex.spent).max(0.0);
    if ex.spent <= 0.0 {
        format!(
            "budget {:?} cannot take this request: its estimate of {} {unit} is more than the \
             whole limit of {} {unit} for a window; the request was not sent",
            ex.budget,
            amount(ex.estimate),
            amount(ex.limit),
        )
    } else {
        format!(
            "budget {:?} cannot take this request: its estimate of {} {unit} is more than the \
             {} {unit} left of {} in this window ({} spent or reserved); the request was not \
             sent",
            ex.budget,
            amount(ex.estimate),
            amount(left),
            amount(ex.limit),
            amount(ex.spent),
        )
    }
}

/// `v` as a message shows it: dollars to the micro-dollar without trailing zeros, tokens
/// whole.
fn amount(unit: BudgetUnit, v: f64) -> String {
    match unit {
        BudgetUnit::Usd => {
            let s = format!("{v:.6}");
            let s = s.trim_end_matches('0');
            s.strip_suffix('.').unwrap_or(s).to_owned()
        }
        _ => format!("{}", v.round()),
    }
}

fn unit_name(unit: BudgetUnit) -> &'static str {
    match unit {
        BudgetUnit::Usd => "USD",
        _ => "tokens",
    }
}
