//! What the benches share.

use async_trait::async_trait;
use polyrelay::{CallContext, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Provider};

/// A provider that is never called: the benches that use it stop before sending.
#[derive(Debug)]
pub struct Idle;

#[async_trait]
impl Provider for Idle {
    fn name(&self) -> &str {
        "idle"
    }
    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        Err(Error::new(ErrorKind::Server, "idle"))
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::Server, "idle"))
    }
}
