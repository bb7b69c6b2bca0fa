//! A chain resolved once against a relay ([`Relay::scoped`]): calls through it skip the
//! lookup of the request's `model`.

use std::borrow::Borrow;
use std::sync::Arc;

use super::plan::Route;
use super::{Relay, call};
use crate::types::{ChatRequest, ChatResponse, ChatStream, Error};

/// A chain resolved once against a relay ([`Relay::scoped`]): calls through it walk the
/// chain's targets instead of looking up the request's `model` (the request's
/// [`fallbacks`](ChatRequest::fallbacks), if any, still follow).
#[derive(Clone)]
pub struct ScopedChain {
    pub(super) relay: Relay,
    pub(super) route: Arc<Route>,
}

impl std::fmt::Debug for ScopedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<String> = self
            .route
            .targets
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        f.debug_struct("ScopedChain")
            .field("targets", &targets)
            .finish()
    }
}

impl ScopedChain {
    /// Like [`Relay::chat`], through this chain.
    pub async fn chat(&self, req: impl Borrow<ChatRequest>) -> Result<ChatResponse, Error> {
        call::chat(&self.relay, Some(&self.route), req.borrow()).await
    }

    /// Like [`Relay::chat_stream`], through this chain.
    pub fn chat_stream<'a>(
        &'a self,
        req: impl Borrow<ChatRequest> + Send + 'a,
    ) -> impl std::future::Future<Output = Result<ChatStream, Error>> + Send + 'a {
        // Boxed for the same reason as `Relay::chat_stream`.
        Box::pin(
            async move { call::chat_stream(&self.relay, Some(&self.route), req.borrow()).await },
        )
    }
}
