//! Unified, OpenAI Chat Completions shaped request, response and stream types.

mod error;
mod health;
mod keys;
mod lenient;
mod limits;
mod request;
mod response;
mod stream;
mod usage;

pub(crate) use error::truncate_utf8;
pub use error::{
    Attempt, AttemptOutcome, BODY_SNIPPET_LIMIT, Error, ErrorKind, Fault, Limit, LimitScope,
    LimitedBy, Skip, SkipReason, TargetId,
};
pub use health::BreakerState;
pub(crate) use keys::fingerprint;
pub use keys::{KeyLabel, KeyState};
pub use limits::{BudgetExceeded, BudgetUnit, RateLimitInfo};
pub use request::{
    ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, JsonSchemaFormat,
    Message, ReasoningEffort, RelayHints, ResponseFormat, Role, StreamOptions, ThinkingBlock, Tool,
    ToolCall, ToolChoice,
};
pub use response::{ChatResponse, Choice, FinishReason, ResponseMeta, RoutingDecision};
pub use stream::{
    ChatChunk, ChatStream, ChunkChoice, ChunkKind, Delta, FunctionCallDelta, StreamAccumulator,
    ToolCallDelta,
};
pub(crate) use stream::{ChunkSource, response_to_chunks};
pub use usage::Usage;
