//! Unified, OpenAI Chat Completions shaped request, response and stream types.

mod lenient;
mod request;
mod response;
mod stream;
mod usage;

pub use request::{
    ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, JsonSchemaFormat,
    Message, ReasoningEffort, RelayHints, ResponseFormat, Role, StreamOptions, ThinkingBlock, Tool,
    ToolCall, ToolChoice,
};
pub use response::{
    Attempt, AttemptOutcome, ChatResponse, Choice, FinishReason, ResponseMeta, RoutingDecision,
    TargetId,
};
pub use stream::{
    ChatChunk, ChatStream, ChunkChoice, ChunkKind, Delta, FunctionCallDelta, StreamAccumulator,
    ToolCallDelta,
};
pub(crate) use stream::{ChunkSource, response_to_chunks};
pub use usage::Usage;
