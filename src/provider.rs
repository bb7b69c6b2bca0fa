//! The `Provider` trait: one implementation per vendor API, and yours for in-house models.

use std::sync::Arc;

use async_trait::async_trait;

use crate::secret::ApiKey;
use crate::types::Error;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// What a provider gets from its caller besides the request: the shared HTTP client, and
/// room for more (call ids, deadlines) without breaking implementations.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallContext {
    http: reqwest::Client,
}

impl CallContext {
    /// A context using `http` for requests.
    pub fn new(http: reqwest::Client) -> Self {
        CallContext { http }
    }

    /// A context using the process-wide default client ([`crate::http::default_client`]).
    pub fn shared() -> Result<Self, Error> {
        Ok(CallContext::new(crate::http::shared_client()?))
    }

    /// The HTTP client to send requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// A vendor API (or any model) that answers chat requests.
///
/// Object-safe: the relay holds `Arc<dyn Provider>`, so you can implement it for your own
/// model and put it in a chain beside the built-in vendors. Implementations must not retry or
/// fail over themselves (the relay does), must not apply a total timeout (the relay applies
/// per-attempt and per-call deadlines), and must report failures as [`Error`]s with the right
/// [`ErrorKind`](crate::ErrorKind), since that is what retry and failover decide from.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The vendor family, used in telemetry as `gen_ai.provider.name` (e.g. `"openai"`).
    fn name(&self) -> &str;

    /// Checks the provider's own configuration (a base URL that parses, header values…).
    /// [`RelayBuilder::build`](crate::RelayBuilder::build) calls it for every registered
    /// provider, so a bad configuration fails at start-up rather than at the first call.
    /// The default accepts everything.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The same provider with another API key (for key pools): everything else — base URL,
    /// headers, settings — kept. `None` (the default) when the provider has no key to swap;
    /// the relay then refuses a key pool for it.
    ///
    /// The new key replaces the credential the provider sends (its header, or wherever the
    /// key goes), including a header of the same name set by hand. A key that cannot be sent
    /// is reported by the new provider's [`validate`](Self::validate), as at construction.
    fn with_key(&self, key: ApiKey) -> Option<Arc<dyn Provider>> {
        let _ = key;
        None
    }

    /// Sends `req` to `model` and returns the whole answer.
    async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatResponse, Error>;

    /// Sends `req` to `model` and returns the answer as a stream, once the vendor has
    /// accepted the request (HTTP errors come back here, not on the stream).
    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatStream, Error>;
}
