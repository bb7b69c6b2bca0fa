//! Metrics through the [`metrics`] facade (feature `metrics`): the OpenTelemetry GenAI client
//! histograms and the relay's own counters, under the names of [`crate::telemetry::metric`].
//!
//! With the feature on, every relay registers a [`MetricsObserver`]; whatever recorder the
//! application installed (`metrics-exporter-prometheus`, an OpenTelemetry bridge…) receives
//! the values, and without one they go nowhere. Descriptions and units are sent once per
//! process, with the first value recorded, so a recorder installed after the relay was built
//! still gets them.
//!
//! Per call, when it ends ([`Observer::completed`]), labelled with the **call labels**:
//! `gen_ai.operation.name` (`chat`), `gen_ai.request.model` and `relay.route` (both the
//! route), `gen_ai.provider.name` and `relay.provider` (the registered provider name of the
//! target that served, or for a failed call the target of its last attempt; omitted when no
//! attempt was made), `gen_ai.response.model` (the served target's model; omitted when
//! nothing served) and `relay.query_type` (when the call has one):
//!
//! - `gen_ai.client.token.usage` (histogram, tokens): twice when the vendor reported usage,
//!   with `gen_ai.token.type` `input` then `output`;
//! - `gen_ai.client.operation.duration` (histogram, seconds), once, with `error.type` (the
//!   [`ErrorKind`](crate::ErrorKind) name) when the call failed;
//! - `gen_ai.client.operation.time_to_first_chunk` (histogram, seconds), for streams that
//!   delivered a first chunk only;
//! - `relay.cost_usd`, the call's [cost](crate::ResponseMeta::cost) in US dollars, when known:
//!   a **gauge that only ever increases** (`metrics` counters are integers, and micro-dollars
//!   would round a cheap call's cost away), so `rate()` and `increase()` read it as a counter;
//! - `relay.cost_unknown` (counter): calls that served an answer of unknown cost.
//!
//! Per event, labelled `relay.provider`, `gen_ai.provider.name` and `gen_ai.request.model` of
//! the target (its model, as on the `relay.attempt` span):
//!
//! - `relay.retries` (counter, with `relay.route` and `error.type`): each retry of a target;
//! - `relay.failovers` (counter, with `relay.route` and `error.type`): each move from a failed
//!   target to the next;
//! - `relay.breaker.opens` (counter): each time a target's circuit breaker opens;
//! - `relay.rate_limited` (counter, with `relay.route` and `relay.action`, `wait` or
//!   `fail_over`): each attempt a client-side rate limit held back.
//!
//! Spend control's events: `relay.budget.events` (counter, labelled `relay.budget` and
//! `relay.budget.event`: `warning`, `exhausted`, `rejected`, `downgraded`) and
//! `relay.key.state_changes` (counter, labelled `relay.provider`, `relay.key` — the key's
//! index and fingerprint, never the key —, `relay.key.state` and `error.type`).
//!
//! Refusals: `relay.refusals` (counter, labelled `relay.route` and `relay.refusal`:
//! `rate_limited`, `budget`, `breaker_open`, `keys_exhausted`, `constraint`, `no_route`,
//! `deadline`) counts the calls the relay refused before sending anything; their
//! `gen_ai.client.operation.duration` carries no provider label.
//!
//! Label values a client can make up (routes named `provider/model`, models, intents) are
//! bounded: past [`MAX_LABEL_VALUES`] distinct values per relay, new ones are reported as
//! `(other)`, so an exporter's series cannot grow without bound.
//!
//! `gen_ai.provider.name` is the provider's **registered** name, the only one the observer
//! sees: register providers under their vendor's name (`openai`, `anthropic`…) for the label
//! to follow the convention. Label values come from configuration (routes, provider names,
//! models), the request's intent or the classifier's labels and the closed list of error
//! kinds, never from request text or error messages; keep intents to a small set.

use std::sync::{Arc, Once, RwLock};

use metrics::{
    Label, SharedString, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

use super::stats::{OTHER, refusal_reason};
use super::{
    BreakerEvent, BudgetEvent, BudgetEventKind, CallRecord, FailoverEvent, KeyEvent, LimitAction,
    LimitEvent, Observer, RetryEvent,
};
use crate::telemetry::{
    ERROR_TYPE, GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL, GEN_AI_TOKEN_TYPE, RELAY_PROVIDER, RELAY_QUERY_TYPE, RELAY_ROUTE,
    metric,
};
use crate::types::BreakerState;
use crate::types::KeyState;
use crate::types::{ErrorKind, TargetId};

/// Emits the relay's metrics (names in [`crate::telemetry::metric`]).
/// Most distinct label values (routes, models, query types) one relay reports; later new
/// values are reported as `(other)`.
pub const MAX_LABEL_VALUES: usize = 1000;

#[derive(Debug, Default)]
pub(crate) struct MetricsObserver {
    /// The label values reported so far (bounded by [`MAX_LABEL_VALUES`]).
    seen: RwLock<hashbrown::HashSet<Arc<str>>>,
}

impl MetricsObserver {
    pub fn new() -> Self {
        MetricsObserver::default()
    }

    /// `value`, or `(other)` once [`MAX_LABEL_VALUES`] others were reported.
    fn bounded(&self, value: &Arc<str>) -> SharedString {
        let known = self.seen.read().is_ok_and(|seen| seen.contains(&**value));
        if known {
            return SharedString::from(value.clone());
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() < MAX_LABEL_VALUES || seen.contains(&**value) {
            seen.insert(value.clone());
            SharedString::from(value.clone())
        } else {
            SharedString::const_str(OTHER)
        }
    }

    /// `bounded` for a borrowed value.
    fn bounded_str(&self, value: &str) -> SharedString {
        let known = self.seen.read().is_ok_and(|seen| seen.contains(value));
        if known {
            return shared(value);
        }
        self.bounded(&Arc::from(value))
    }

    fn target_labels(&self, target: &TargetId, extra: usize) -> Vec<Label> {
        let mut labels = Vec::with_capacity(3 + extra);
        labels.push(Label::new(RELAY_PROVIDER, target.provider.clone()));
        labels.push(Label::new(GEN_AI_PROVIDER_NAME, target.provider.clone()));
        labels.push(Label::new(
            GEN_AI_REQUEST_MODEL,
            self.bounded(&target.model),
        ));
        labels
    }

    fn event_labels(&self, target: &TargetId, route: &Arc<str>, error: ErrorKind) -> Vec<Label> {
        let mut labels = self.target_labels(target, 2);
        labels.push(Label::new(RELAY_ROUTE, self.bounded(route)));
        labels.push(error_label(error));
        labels
    }

    fn call_labels(&self, call: &CallRecord<'_>) -> Vec<Label> {
        let mut labels = Vec::with_capacity(8);
        let route = self.bounded(call.route);
        labels.push(Label::new(GEN_AI_OPERATION_NAME, "chat"));
        labels.push(Label::new(GEN_AI_REQUEST_MODEL, route.clone()));
        labels.push(Label::new(RELAY_ROUTE, route));
        let meta = call.meta;
        let target = meta
            .served_by
            .as_ref()
            .or_else(|| meta.attempts.last().map(|a| &a.target));
        if let Some(t) = target {
            labels.push(Label::new(GEN_AI_PROVIDER_NAME, t.provider.clone()));
            labels.push(Label::new(RELAY_PROVIDER, t.provider.clone()));
        }
        if let Some(t) = &meta.served_by {
            labels.push(Label::new(GEN_AI_RESPONSE_MODEL, self.bounded(&t.model)));
        }
        if let Some(q) = call.query_type {
            labels.push(Label::new(RELAY_QUERY_TYPE, self.bounded_str(q)));
        }
        labels
    }
}

/// Sends every metric's unit and description to the recorder, once per process.
fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        describe_histogram!(
            metric::TOKEN_USAGE,
            Unit::Count,
            "Tokens used per call, by gen_ai.token.type (input or output)."
        );
        describe_histogram!(
            metric::OPERATION_DURATION,
            Unit::Seconds,
            "Duration of a relay call, retries and failovers included, to its last byte."
        );
        describe_histogram!(
            metric::TIME_TO_FIRST_CHUNK,
            Unit::Seconds,
            "Time from the start of a streamed call to its first content chunk."
        );
        describe_counter!(metric::RETRIES, Unit::Count, "Retries of a target.");
        describe_counter!(
            metric::FAILOVERS,
            Unit::Count,
            "Moves from a failed target to the next one of the route."
        );
        describe_counter!(
            metric::BREAKER_OPENS,
            Unit::Count,
            "Times a target's circuit breaker opened."
        );
        describe_gauge!(
            metric::COST,
            "Spend in US dollars, for the calls whose cost is known (only ever increases)."
        );
        describe_counter!(
            metric::BUDGET_EVENTS,
            Unit::Count,
            "Budget events: warnings, exhaustion, requests refused or downgraded."
        );
        describe_counter!(
            metric::RATE_LIMITED,
            Unit::Count,
            "Attempts a client-side rate limit held back (waited or failed over)."
        );
        describe_counter!(
            metric::KEY_STATE_CHANGES,
            Unit::Count,
            "Pool keys that went out: resting after a 429, parked out of quota, invalid."
        );
        describe_counter!(
            metric::REFUSALS,
            Unit::Count,
            "Calls the relay refused before sending anything, by route and reason."
        );
        describe_counter!(
            metric::COST_UNKNOWN,
            Unit::Count,
            "Calls served whose cost is unknown (a model with no price, or no usage reported)."
        );
    });
}

/// A label value from a borrowed string, shared: one allocation however many series carry it
/// (an owned `String` would be copied into each series' labels, and again by the recorder).
fn shared(s: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(s))
}

/// The labels of a target: its provider (as `relay.provider` and `gen_ai.provider.name`) and
/// its model (as `gen_ai.request.model`), with room for `extra` more.
fn error_label(kind: ErrorKind) -> Label {
    Label::new(ERROR_TYPE, kind.as_str())
}

/// The labels every per-call metric carries (see the module's documentation), with room for
/// one more.
fn with(labels: &[Label], extra: Label) -> Vec<Label> {
    let mut all = Vec::with_capacity(labels.len() + 1);
    all.extend_from_slice(labels);
    all.push(extra);
    all
}

impl Observer for MetricsObserver {
    fn retry(&self, event: &RetryEvent<'_>) {
        describe();
        let labels = self.event_labels(event.target, event.route, event.error);
        counter!(metric::RETRIES, labels).increment(1);
    }

    fn failover(&self, event: &FailoverEvent<'_>) {
        describe();
        let labels = self.event_labels(event.from, event.route, event.error);
        counter!(metric::FAILOVERS, labels).increment(1);
    }

    fn breaker(&self, event: &BreakerEvent<'_>) {
        if event.state != BreakerState::Open {
            return;
        }
        describe();
        counter!(metric::BREAKER_OPENS, self.target_labels(event.target, 0)).increment(1);
    }

    fn budget(&self, event: &BudgetEvent<'_>) {
        describe();
        let kind = match event.kind {
            BudgetEventKind::Warning => "warning",
            BudgetEventKind::Exhausted => "exhausted",
            BudgetEventKind::Rejected => "rejected",
            _ => "downgraded",
        };
        let labels = vec![
            Label::new("relay.budget", shared(event.name)),
            Label::new("relay.budget.event", kind),
        ];
        counter!(metric::BUDGET_EVENTS, labels).increment(1);
    }

    fn rate_limited(&self, event: &LimitEvent<'_>) {
        describe();
        let action = match event.action {
            LimitAction::Wait(_) => "wait",
            _ => "fail_over",
        };
        let mut labels = self.target_labels(event.target, 2);
        labels.push(Label::new(RELAY_ROUTE, self.bounded(event.route)));
        labels.push(Label::new("relay.action", action));
        counter!(metric::RATE_LIMITED, labels).increment(1);
    }

    fn key_state(&self, event: &KeyEvent<'_>) {
        describe();
        let state = match event.state {
            KeyState::Resting { .. } => "resting",
            KeyState::Parked { .. } => "parked",
            KeyState::Invalid => "invalid",
            _ => "ready",
        };
        let labels = vec![
            Label::new(RELAY_PROVIDER, shared(event.provider)),
            Label::new("relay.key", event.key.to_string()),
            Label::new("relay.key.state", state),
            error_label(event.error),
        ];
        counter!(metric::KEY_STATE_CHANGES, labels).increment(1);
    }

    fn completed(&self, call: &CallRecord<'_>) {
        describe();
        let labels = self.call_labels(call);
        let meta = call.meta;
        if meta.attempts.is_empty()
            && let Some(e) = call.error
        {
            let refusal = vec![
                Label::new(RELAY_ROUTE, self.bounded(call.route)),
                Label::new("relay.refusal", refusal_reason(e)),
            ];
            counter!(metric::REFUSALS, refusal).increment(1);
        }

        if let Some(u) = call.usage {
            for (kind, tokens) in [("input", u.input_tokens), ("output", u.output_tokens)] {
                let labels = with(&labels, Label::new(GEN_AI_TOKEN_TYPE, kind));
                histogram!(metric::TOKEN_USAGE, labels).record(tokens as f64);
            }
        }

        if call.streamed
            && let Some(ttft) = meta.time_to_first_chunk
        {
            histogram!(metric::TIME_TO_FIRST_CHUNK, labels.clone()).record(ttft.as_secs_f64());
        }

        match meta.cost {
            Some(cost) => gauge!(metric::COST, labels.clone()).increment(cost),
            None if meta.served.is_some() => {
                counter!(metric::COST_UNKNOWN, labels.clone()).increment(1);
            }
            None => {}
        }

        let mut labels = labels;
        if let Some(e) = call.error {
            labels.push(error_label(e.kind()));
        }
        histogram!(metric::OPERATION_DURATION, labels).record(call.duration.as_secs_f64());
    }
}
