//! Anthropic's own Messages body through Bedrock's InvokeModel and
//! InvokeModelWithResponseStream, decoded with the Anthropic codec's logic.

use std::collections::VecDeque;

use serde::Deserialize;

use super::stream::FrameEvents;
use crate::http::sse::SseEvent;
use crate::providers::EventHandler;
use crate::providers::anthropic::AnthropicEvents;
use crate::types::{ChatChunk, ChatRequest, Error, ErrorKind};

/// The `anthropic_version` InvokeModel takes in the body.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// A Messages body for InvokeModel: no `model` (the URL names it), no `stream` (the path
/// says whether it streams), `anthropic_version` [`BEDROCK_ANTHROPIC_VERSION`].
/// `max_tokens` defaults to `default_max_tokens`
/// ([`BedrockAnthropic::default_max_tokens`](super::BedrockAnthropic::default_max_tokens)).
pub(crate) fn encode(req: &ChatRequest, default_max_tokens: u32) -> Result<Vec<u8>, Error> {
    crate::providers::anthropic::encode_bedrock_request(
        req,
        BEDROCK_ANTHROPIC_VERSION,
        default_max_tokens,
    )
}

/// InvokeModelWithResponseStream's grammar: `chunk` events whose payload is
/// `{"bytes": base64 of one Anthropic stream event}`, read by [`AnthropicEvents`] (the
/// Anthropic codec's stream logic: `message_stop` ends the answer).
#[derive(Debug, Default)]
pub struct InvokeEvents {
    inner: AnthropicEvents,
}

#[derive(Deserialize)]
struct ChunkPayload {
    #[serde(default)]
    bytes: Option<String>,
}

impl InvokeEvents {
    /// A grammar for one answer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The Anthropic event JSON inside a `chunk` payload.
pub(crate) fn chunk_event(payload: &[u8]) -> Result<Option<String>, Error> {
    use base64::Engine as _;
    let malformed = |msg: &str| {
        Error::new(ErrorKind::Decode, msg.to_owned()).with_body(&String::from_utf8_lossy(payload))
    };
    let p: ChunkPayload = serde_json::from_slice(payload)
        .map_err(|e| malformed("malformed chunk event in a Bedrock stream").with_source(e))?;
    let Some(b64) = p.bytes else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| malformed("a Bedrock chunk's bytes are not base64").with_source(e))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| malformed("a Bedrock chunk's bytes are not UTF-8").with_source(e))
}

impl FrameEvents for InvokeEvents {
    fn on_event(
        &mut self,
        event_type: &str,
        payload: &[u8],
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        if event_type != "chunk" {
            return Ok(false);
        }
        let Some(data) = chunk_event(payload)? else {
            return Ok(false);
        };
        let event = SseEvent {
            event: "",
            data: &data,
            id: "",
        };
        self.inner.on_event(&event, out)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        self.inner.on_eof(out)
    }
}
