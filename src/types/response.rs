//! The response side: `ChatResponse` serializes to OpenAI's Chat Completions response JSON.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{lenient_enum, null_as_default};
use super::{Message, Usage};
use crate::error::{Error, ErrorKind};

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
    /// Always `chat.completion`.
    #[serde(default = "completion_object")]
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

impl ChatResponse {
    /// The first choice's text (empty when there is none).
    pub fn text(&self) -> String {
        self.choices
            .first()
            .map(|c| c.message.text())
            .unwrap_or_default()
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
    /// The assistant message.
    pub message: Message,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    /// Log probabilities, as the vendor sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
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

/// Which provider and model a relay target names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TargetId {
    /// The name the provider was registered under (e.g. `"openai"`).
    pub provider: Arc<str>,
    /// The vendor's model name.
    pub model: Arc<str>,
}

impl TargetId {
    /// A target identity.
    pub fn new(provider: impl Into<Arc<str>>, model: impl Into<Arc<str>>) -> Self {
        TargetId {
            provider: provider.into(),
            model: model.into(),
        }
    }
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// What the relay did to produce a response.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ResponseMeta {
    /// The route that handled the request.
    pub route: Option<Arc<str>>,
    /// The target whose answer this is.
    pub served_by: Option<TargetId>,
    /// Every attempt, in order, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Wall time of the whole call.
    pub latency: Duration,
    /// The vendor's request id (`x-request-id`, `request-id`…), when sent.
    pub request_id: Option<String>,
}

/// One try of one target.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Attempt {
    /// The target tried.
    pub target: TargetId,
    /// 1 for the first try of this target, 2 for its first retry…
    pub try_number: u32,
    /// `None` when it succeeded; the error's kind otherwise.
    pub failure: Option<ErrorKind>,
    /// The HTTP status, when one was received.
    pub status: Option<u16>,
    /// Time from sending to the answer or the error.
    pub latency: Duration,
    /// The error, when it failed.
    pub error: Option<Error>,
}

impl Attempt {
    /// Whether this attempt produced the answer.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}
