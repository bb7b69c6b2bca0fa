//! Every name the relay's `tracing` spans and metrics use, in one place: the
//! [OpenTelemetry GenAI semantic conventions](https://opentelemetry.io/docs/specs/semconv/gen-ai/)
//! where they have a name, `relay.*` for the relay's own facts.
//!
//! Spans: `relay.chat`, one per call (`gen_ai.operation.name = "chat"`, the request and
//! response model, the usage of the answer, `relay.route`, `relay.rule`, `relay.attempts`,
//! `relay.served_by`, `relay.cost_usd`, `error.type` when it failed), and `relay.attempt`, one
//! per attempt inside it (`gen_ai.provider.name`, `gen_ai.request.model`, `relay.provider`,
//! `relay.try_number`, `http.response.status_code`, `error.type`). Metrics (feature
//! `metrics`): see [`metric`].

use crate::types::{ResponseMeta, Usage};

/// `gen_ai.operation.name`: always `chat`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// `gen_ai.provider.name`: the vendor (`openai`, `anthropic`, `gemini`, `deepseek`…).
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// `gen_ai.request.model`: the model asked for (on a call: the route or pair named).
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// `gen_ai.response.model`: the model the vendor says answered.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// `gen_ai.usage.input_tokens`.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// `gen_ai.usage.output_tokens`.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// `gen_ai.token.type` (metric attribute): `input` or `output`.
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
/// `error.type`: the [`ErrorKind`](crate::ErrorKind) name.
pub const ERROR_TYPE: &str = "error.type";
/// `http.response.status_code`.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";

/// `relay.operation`: `chat` or `chat_stream`.
pub const RELAY_OPERATION: &str = "relay.operation";
/// `relay.route`: the route that handled the call.
pub const RELAY_ROUTE: &str = "relay.route";
/// `relay.router`: the router the request named.
pub const RELAY_ROUTER: &str = "relay.router";
/// `relay.rule`: the routing rule that matched.
pub const RELAY_RULE: &str = "relay.rule";
/// `relay.routing_reason`: why the router chose the route.
pub const RELAY_ROUTING_REASON: &str = "relay.routing_reason";
/// `relay.intent`: the request's intent.
pub const RELAY_INTENT: &str = "relay.intent";
/// `relay.query_type` (metric attribute): the intent, else the classifier's label.
pub const RELAY_QUERY_TYPE: &str = "relay.query_type";
/// `relay.attempts`: how many attempts the call made.
pub const RELAY_ATTEMPTS: &str = "relay.attempts";
/// `relay.served_by`: the `provider/model` that answered.
pub const RELAY_SERVED_BY: &str = "relay.served_by";
/// `relay.cost_usd`: what the call cost, when known.
pub const RELAY_COST_USD: &str = "relay.cost_usd";
/// `relay.provider`: the registered provider name of an attempt's target.
pub const RELAY_PROVIDER: &str = "relay.provider";
/// `relay.attempt`: an attempt's index in the call.
pub const RELAY_ATTEMPT: &str = "relay.attempt";
/// `relay.try_number`: 1 for a target's first try in the call, 2 for its first retry…
pub const RELAY_TRY_NUMBER: &str = "relay.try_number";

/// Metric names (feature `metrics`).
pub mod metric {
    /// Histogram of tokens per call, by `gen_ai.token.type` (OpenTelemetry GenAI).
    pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    /// Histogram of call durations, in seconds (OpenTelemetry GenAI).
    pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    /// Histogram of the time to a stream's first chunk, in seconds (OpenTelemetry GenAI).
    pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
    /// Counter of retries.
    pub const RETRIES: &str = "relay.retries";
    /// Counter of failovers from one target to the next.
    pub const FAILOVERS: &str = "relay.failovers";
    /// Counter of circuit breakers opening.
    pub const BREAKER_OPENS: &str = "relay.breaker.opens";
    /// Spend, in US dollars: a gauge that only ever increases (`metrics` counters count in
    /// integers), so `rate()` and `increase()` read it as a counter.
    pub const COST: &str = "relay.cost_usd";
    /// Counter of calls whose cost is unknown (a model with no price).
    pub const COST_UNKNOWN: &str = "relay.cost_unknown";
    /// Counter of budget events, by `relay.budget` and `relay.budget.event` (`warning`,
    /// `exhausted`, `rejected`, `downgraded`).
    pub const BUDGET_EVENTS: &str = "relay.budget.events";
    /// Counter of attempts a client-side rate limit held back, by target and `relay.action`
    /// (`wait` or `fail_over`).
    pub const RATE_LIMITED: &str = "relay.rate_limited";
    /// Counter of pool keys going out, by `relay.provider`, `relay.key` (its label) and
    /// `relay.key.state` (`resting`, `parked`, `invalid`).
    pub const KEY_STATE_CHANGES: &str = "relay.key.state_changes";
    /// Counter of calls the relay refused on its own before sending anything, by
    /// `relay.route` and `relay.refusal` (`rate_limited`, `budget`, `breaker_open`,
    /// `keys_exhausted`, `constraint`, `no_route`, `deadline`): not upstream failures.
    pub const REFUSALS: &str = "relay.refusals";

    /// Bucket boundaries for [`TOKEN_USAGE`], as the OpenTelemetry GenAI conventions advise
    /// (for an exporter's explicit-bucket histograms, e.g.
    /// `PrometheusBuilder::set_buckets_for_metric`).
    pub const TOKEN_USAGE_BUCKETS: [f64; 14] = [
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0, 16777216.0, 67108864.0,
    ];
    /// Bucket boundaries in seconds for [`OPERATION_DURATION`] and [`TIME_TO_FIRST_CHUNK`], as
    /// the OpenTelemetry GenAI conventions advise for the client's duration histograms.
    pub const DURATION_BUCKETS: [f64; 14] = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
}

/// Records an answer's facts on the call's span.
pub(crate) fn record_answer(
    span: &tracing::Span,
    meta: &ResponseMeta,
    usage: Option<&Usage>,
    response_model: &str,
) {
    if span.is_disabled() {
        return;
    }
    if !response_model.is_empty() {
        span.record(GEN_AI_RESPONSE_MODEL, response_model);
    }
    if let Some(u) = usage {
        span.record(GEN_AI_USAGE_INPUT_TOKENS, u.input_tokens);
        span.record(GEN_AI_USAGE_OUTPUT_TOKENS, u.output_tokens);
    }
    if let Some(c) = meta.cost {
        span.record(RELAY_COST_USD, c);
    }
}
