//! The response side: `ChatResponse` serializes to OpenAI's Chat Completions response JSON.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{lenient_enum, null_as_default};
use super::{Message, Usage};

use crate::types::{Attempt, Skip, TargetId};

lenient_enum! {
    /// Why the model stopped. Vendor spellings are normalised (Anthropic's `end_turn`,
    /// Gemini's `SAFETY`, TGI's `eos_token`…); anything else is kept in `Other`.
    pub enum FinishReason {
        /// A natural end or a stop sequence.
        Stop = "stop" | "end_turn" | "stop_sequence" | "eos" | "eos_token" | "STOP",
        /// The output token cap was reached.
        Length = "length" | "max_tokens" | "model_length" | "MAX_TOKENS" | "model_context_window_exceeded",
        /// The model called tools.
        ToolCalls = "tool_calls" | "function_call" | "tool_use",
        /// Output was withheld by a content filter or refused.
        ContentFilter = "content_filter" | "refusal" | "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII",
    }
}

/// A chat completion, shaped like OpenAI's response, plus what the relay did to get it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The vendor's response id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Always `chat.completion` (written so even when a response built in code left it
    /// empty).
    #[serde(
        default = "completion_object",
        serialize_with = "completion_object_out"
    )]
    pub object: String,
    /// Unix seconds when the vendor created the response.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: u64,
    /// The model that answered, as the vendor names it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    /// The generated choices (one unless `n` > 1).
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<Choice>,
    /// Token usage, when the vendor reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend configuration fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// The service tier that served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// What the relay did: who served, every attempt, latency. Not part of the JSON.
    #[serde(skip)]
    pub meta: ResponseMeta,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

/// `object` as OpenAI's wire has it: a response built in code (`Default`) has none of its
/// own.
fn completion_object_out<S: serde::Serializer>(object: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if object.is_empty() {
        "chat.completion"
    } else {
        object
    })
}

impl ChatResponse {
    /// A new completion id, `chatcmpl-` and 24 random letters and digits (OpenAI's form), for
    /// an answer or stream whose vendor gave none.
    pub(crate) fn new_id() -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut id = String::with_capacity(9 + 24);
        id.push_str("chatcmpl-");
        id.extend((0..24).map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())])));
        id
    }

    /// Unix seconds now (0 for a clock before 1970): the `created` of an answer or stream
    /// whose vendor gave none.
    pub(crate) fn created_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Completes what OpenAI's wire requires of an answer and its vendor left out: a new
    /// [`id`](Self::id), [`created`](Self::created) now, and `model` (the model asked for)
    /// when the vendor named none.
    pub(crate) fn complete_identity(&mut self, model: &str) {
        Self::complete_fields(&mut self.id, &mut self.created, &mut self.model, model);
    }

    /// [`complete_identity`](Self::complete_identity) on the three fields of an answer or a
    /// stream: a new id when `id` is empty, the time now when `created` is 0, `fallback`
    /// when `model` is empty.
    pub(crate) fn complete_fields(
        id: &mut String,
        created: &mut u64,
        model: &mut String,
        fallback: &str,
    ) {
        if id.is_empty() {
            *id = Self::new_id();
        }
        if *created == 0 {
            *created = Self::created_now();
        }
        if model.is_empty() {
            fallback.clone_into(model);
        }
    }

    /// The first choice's text (empty when there is none). Borrows when the text is one
    /// string, as vendors answer; joins the parts otherwise.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self.choices.first() {
            Some(c) => c.message.text(),
            None => std::borrow::Cow::Borrowed(""),
        }
    }

    /// The first choice's reasoning text, if any.
    pub fn reasoning(&self) -> Option<&str> {
        self.choices.first()?.message.reasoning.as_deref()
    }

    /// The first choice's tool calls.
    pub fn tool_calls(&self) -> &[super::ToolCall] {
        self.choices
            .first()
            .map(|c| c.message.tool_calls.as_slice())
            .unwrap_or(&[])
    }

    /// The first choice's finish reason.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.choices.first()?.finish_reason.as_ref()
    }
}

/// One generated answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Choice {
    /// Position among the choices.
    #[serde(default, deserialize_with = "null_as_default")]
    pub index: u32,
    /// The assistant message (written with `content: null` when it has none, as OpenAI's
    /// wire has it).
    #[serde(serialize_with = "answer_message")]
    pub message: Message,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    /// Log probabilities, as the vendor sent them (written as `null` when none).
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// An answer's message as OpenAI writes it: `content` is always there (`null` when there is
/// none, as beside tool calls).
fn answer_message<S: serde::Serializer>(m: &Message, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        m: &'a Message,
        /// `Some(())` writes `null`.
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<()>,
        /// OpenAI's answers always carry `refusal` (`null` without one).
        #[serde(skip_serializing_if = "Option::is_none")]
        refusal: Option<()>,
        /// And `annotations` (`[]` unless the vendor sent some, kept in `extra`).
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<[u8; 0]>,
    }
    Out {
        m,
        content: m.content.is_none().then_some(()),
        refusal: m.refusal.is_none().then_some(()),
        annotations: (!m.extra.contains_key("annotations")).then_some([]),
    }
    .serialize(s)
}

impl Choice {
    /// A choice at `index` with a message and finish reason.
    pub fn new(index: u32, message: Message, finish_reason: Option<FinishReason>) -> Self {
        Choice {
            index,
            message,
            finish_reason,
            logprobs: None,
        }
    }
}

/// The routing decision recorded in [`ResponseMeta::routing`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RoutingDecision {
    /// The router entry point the request named.
    pub router: Arc<str>,
    /// The rule that matched (its name), or `None` when the default route applied.
    pub rule: Option<Arc<str>>,
    /// The route chosen.
    pub route: Arc<str>,
    /// Why.
    pub reason: String,
    /// The label the matching rule gave the query: a classifier's label (then also the
    /// call's query type in the stats), or a language rule's script or language code.
    pub label: Option<String>,
    /// How long the classifier took, when a classifier decided (`Some` marks `label` as a
    /// classifier's).
    pub classifier_latency: Option<Duration>,
    /// The classifier call's usage.
    pub classifier_usage: Option<Usage>,
    /// The classifier call's cost, in US dollars (`None` when unknown); it is part of the
    /// routed call's [`cost`](ResponseMeta::cost).
    pub classifier_cost: Option<f64>,
}

/// What the relay did to produce a response.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ResponseMeta {
    /// The route that handled the request.
    pub route: Option<Arc<str>>,
    /// How a router chose the route, when the request named a router.
    pub routing: Option<RoutingDecision>,
    /// The target whose answer this is (for a recovered stream: the target that produced the
    /// end of the answer; for a stream interrupted and not recovered: the target whose partial
    /// answer was delivered, while [`served`](Self::served) is `None`).
    pub served_by: Option<TargetId>,
    /// Every attempt, in the order they started (not the order they ended: with hedging, a
    /// cancelled loser may have started before the winner). [`served`](Self::served) says
    /// which one produced the answer.
    pub attempts: Vec<Attempt>,
    /// The index in [`attempts`](Self::attempts) of the attempt that served.
    pub served: Option<usize>,
    /// Targets of the plan passed over without an attempt, each with why (breaker open, a
    /// client-side limit, every pool key out) and when it may be tried again (see
    /// [`Relay::health`](crate::Relay::health)).
    pub skipped: Vec<Skip>,
    /// Wall time of the whole call (for streams: until the commit point).
    pub latency: Duration,
    /// The vendor's request id (`x-request-id`, `request-id`…), when sent.
    pub request_id: Option<String>,
    /// The HTTP status of the answer, set by providers that speak HTTP (`None` for others).
    pub status: Option<u16>,
    /// Whether the usage reported for this answer leaves part of it out: after a mid-stream
    /// continuation the parts' reports are summed, and this is set when the interrupted
    /// part reported none, or not up to the cut (OpenAI-style streams report at the end,
    /// Anthropic's input at the start). Through the gateway, the final usage chunk then
    /// carries `"polyrelay": {"usage_partial": true}`. Default `false`.
    pub usage_partial: bool,
    /// What the call cost, in US dollars: every attempt that reported usage (the answer, a
    /// cut stream's reported part, a hedge loser that reported usage) and the routing
    /// classifier's call. `None` when one of them is of unknown price (a model the catalog
    /// does not know and no [`Price`](crate::catalog::Price) was set for), or no attempt
    /// reported usage. For a stream, set when it ends.
    pub cost: Option<f64>,
    /// What the answer would have cost on the relay's baseline model
    /// ([`RelayBuilder::baseline`](crate::RelayBuilder::baseline)), for the same usage.
    pub baseline_cost: Option<f64>,
    /// For a stream: the time from the call's start to its first content chunk (its commit
    /// point).
    pub time_to_first_chunk: Option<Duration>,
    /// What the serving vendor's rate-limit headers said (`x-ratelimit-*`,
    /// `anthropic-ratelimit-*`), when it sent them (`None` by default). Boxed: an answer
    /// without the headers, and an open stream, hold a pointer rather than 96 bytes.
    pub rate_limit: Option<Box<crate::types::RateLimitInfo>>,
}

/// A metadata with nothing in it, for streams that never set theirs.
pub(crate) static EMPTY_META: ResponseMeta = ResponseMeta {
    route: None,
    routing: None,
    served_by: None,
    attempts: Vec::new(),
    served: None,
    skipped: Vec::new(),
    latency: Duration::ZERO,
    request_id: None,
    status: None,
    usage_partial: false,
    cost: None,
    baseline_cost: None,
    time_to_first_chunk: None,
    rate_limit: None,
};

impl ResponseMeta {
    /// The attempt that served, if any.
    pub fn served_attempt(&self) -> Option<&Attempt> {
        self.attempts.get(self.served?)
    }
}
