//! Anthropic's native Messages API (`POST {base}/messages`).
//!
//! # Request mapping
//!
//! * `system` and `developer` messages become the top-level `system` string, joined with a
//!   blank line in their order. Consecutive messages of the same role are merged into one
//!   turn; `tool` messages become `tool_result` blocks in a **user** turn (consecutive results
//!   share one turn, as Anthropic requires).
//! * Text parts → `text` blocks (empty text is left out: Anthropic rejects it); image parts:
//!   `data:<mime>;base64,…` → a base64 `image` source, `http(s)://…` → a `url` source; raw
//!   parts of type `image` or `document` are sent as they are; other part types are an
//!   [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
//! * Assistant `tool_calls` → `tool_use` blocks (arguments parsed to an object; `""` → `{}`;
//!   anything that is not a JSON object is an [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) naming the call).
//!   Assistant `thinking_blocks` are sent back first in their turn (`thinking` with its
//!   signature, `redacted_thinking`); unsigned reasoning and `reasoning` text are not sent.
//! * `tools` → `{name, description, input_schema}` (`{"type":"object","properties":{}}` when
//!   the function has no parameters); tools of another `type` (Anthropic server tools such as
//!   `web_search_20250305`) are sent as `{"type": …, ...their other fields}`.
//! * `tool_choice` auto / required / none / a function → `{"type":"auto"}` / `{"type":"any"}`
//!   / `{"type":"none"}` / `{"type":"tool","name":…}`; `parallel_tool_calls: false` adds
//!   `disable_parallel_tool_use: true`. Without tools no `tool_choice` is sent.
//! * `max_tokens` = [`ChatRequest::output_limit`] or the provider's default
//!   ([`DEFAULT_MAX_TOKENS`] = 4096, see [`Anthropic::default_max_tokens`]).
//! * `reasoning_effort` → `thinking: {"type":"enabled","budget_tokens":N}` with the budgets of
//!   [`thinking_budget`] (low 1024, medium 4096, high 16384; none/minimal → no thinking).
//!   `max_tokens` is kept above the budget: a limit at or below it becomes budget + limit, no
//!   limit becomes budget + default. With thinking on, `temperature` and `top_p` are not sent
//!   (Anthropic rejects them with thinking).
//! * `stop` → `stop_sequences`; `temperature` (clamped to Anthropic's 0–1), `top_p`;
//!   `user` → `metadata.user_id`; `stream: true` when streaming.
//! * `response_format` `json_schema` → `output_config: {"format": {"type": "json_schema",
//!   "schema": …}}` (the form the recorded requests use, with no beta header);
//!   `json_object` → the system instruction [`JSON_OBJECT_INSTRUCTION`].
//! * `n` > 1 is an [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest); `seed`, `name`, `refusal` and the
//!   request's `extra` fields (OpenAI-specific) are not forwarded.
//!
//! # Response mapping
//!
//! Text blocks are joined into the content; `tool_use` blocks become tool calls (arguments =
//! the input as compact JSON, `{}` for none); `thinking` text is joined into `reasoning` and
//! signed `thinking` / `redacted_thinking` blocks are kept in `thinking_blocks`; server tool
//! blocks are skipped. Usage is normalised: `input_tokens` counts cache reads and writes
//! too, and `reasoning_tokens` is `output_tokens_details.thinking_tokens` where newer models
//! report it (0 otherwise).

mod stream;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::provider::{CallContext, Provider};
use crate::providers::ChunkDecoder;
use crate::providers::transport::{self, BadBaseUrl, BaseUrl};
use crate::secret::ApiKey;
use crate::types::Error;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

pub use stream::AnthropicEvents;
pub use wire::{DEFAULT_MAX_TOKENS, JSON_OBJECT_INSTRUCTION, thinking_budget};

/// Default base URL (the part before `/messages`).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com/v1";

/// The header the API key is sent in.
const API_KEY_HEADER: &str = "x-api-key";

/// Default `anthropic-version` header.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// Encodes `req` for `model` as a Messages request body (`max_tokens` defaulting to
/// [`DEFAULT_MAX_TOKENS`]).
pub fn encode_request(req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
    wire::encode_request(req, model, stream, DEFAULT_MAX_TOKENS)
}

/// Decodes a successful (HTTP 2xx) Messages body. A body that is an error object
/// (`{"type":"error",…}`) decodes to that error; a body with nothing in it (no content block
/// and no `stop_reason`: `{}`, another vendor's dialect) is an
/// [`ErrorKind::Decode`](crate::ErrorKind::Decode) error, not an empty answer.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
    wire::decode_response_with(body, &|s| s.to_owned())
}

/// Decodes an Anthropic error response (any HTTP status, headers and body) into a typed
/// [`Error`]: kind, status, error type as code, message, request id, and the retry hint
/// (`retry-after`, or for a 429 without it, the reset time of the exhausted
/// `anthropic-ratelimit-*` limit).
pub fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    wire::decode_error_with(status, headers, body, &|s| s.to_owned())
}

/// A provider for Anthropic's Messages API.
///
/// ```
/// use polyrelay::providers::Anthropic;
/// let claude = Anthropic::new("sk-ant-…")
///     .beta("context-management-2025-06-27")
///     .default_max_tokens(8192);
/// ```
///
/// Requests go to `{base_url}/messages`; a base URL's query string is kept after the path
/// (`https://gw.internal/anthropic/v1?team=a` posts to
/// `https://gw.internal/anthropic/v1/messages?team=a`). A base URL that is not an absolute
/// `http(s)` URL does not make the constructor fail: [`Provider::validate`] (which the
/// relay's builder calls) and every call report it as an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
#[derive(Clone)]
pub struct Anthropic {
    /// The whole endpoint, parsed once: it does not depend on the model.
    endpoint: Result<Url, BadBaseUrl>,
    headers: HeaderMap,
    key: ApiKey,
    /// `false` when the key could not be put in its header.
    key_sendable: bool,
    version: String,
    betas: Vec<String>,
    default_max_tokens: u32,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match &self.endpoint {
            Ok(url) => transport::shown_url(url.as_str()),
            Err(bad) => bad.shown().to_owned(),
        };
        f.debug_struct("Anthropic")
            .field("url", &self.key.redact(&url))
            .field("version", &self.version)
            .field("betas", &self.betas)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    /// Anthropic with an API key, sent in the `x-api-key` header. An empty key sends no
    /// `x-api-key` header (for a gateway authenticated by a [`header`](Self::header) of your
    /// own).
    pub fn new(key: impl Into<ApiKey>) -> Self {
        let key: ApiKey = key.into();
        let mut headers = HeaderMap::new();
        let key_sendable = crate::http::auth::auth_headers(
            &mut headers,
            HeaderName::from_static(API_KEY_HEADER),
            key.expose(),
        );
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(DEFAULT_VERSION),
        );
        Anthropic {
            endpoint: messages_endpoint(DEFAULT_BASE_URL),
            headers,
            key,
            key_sendable,
            version: DEFAULT_VERSION.to_owned(),
            betas: Vec::new(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// Anthropic with the key from `ANTHROPIC_API_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Option<Self> {
        ApiKey::from_env("ANTHROPIC_API_KEY").map(Self::new)
    }

    /// Overrides the base URL (default [`DEFAULT_BASE_URL`]; requests go to `{base}/messages`,
    /// followed by the base URL's query string if it has one).
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.endpoint = messages_endpoint(base_url);
        self
    }

    /// Sets the `anthropic-version` header (default [`DEFAULT_VERSION`]). A value a header
    /// cannot hold is ignored.
    pub fn version(mut self, version: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(version) {
            self.version = version.to_owned();
            self.headers.insert("anthropic-version", v);
        }
        self
    }

    /// Adds a beta flag to the `anthropic-beta` header (flags are comma-joined). A flag a
    /// header cannot hold is ignored.
    pub fn beta(mut self, flag: &str) -> Self {
        if HeaderValue::from_str(flag).is_err() || self.betas.iter().any(|b| b == flag) {
            return self;
        }
        self.betas.push(flag.to_owned());
        if let Ok(v) = HeaderValue::from_str(&self.betas.join(",")) {
            self.headers.insert("anthropic-beta", v);
        }
        self
    }

    /// Adds a header to every request (e.g. a gateway's own auth). Values are marked
    /// sensitive, so they never show in logs.
    ///
    /// A header of the same name (case-insensitive) replaces the built-in one:
    /// `.header("x-api-key", …)` replaces the key, `.header("anthropic-version", …)` the
    /// version (until [`version`](Self::version) or [`beta`](Self::beta) set theirs again).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        crate::http::auth::insert_header(&mut self.headers, name, value)?;
        Ok(self)
    }

    /// `max_tokens` for requests that set no output limit (Anthropic requires one). Default
    /// [`DEFAULT_MAX_TOKENS`] (4096).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = max_tokens;
        self
    }

    /// The endpoint URL requests go to, with the base URL's query string (which may hold a
    /// credential: do not log it); empty when the base URL was refused (see
    /// [`Provider::validate`]).
    pub fn url(&self) -> &str {
        self.endpoint.as_ref().map_or("", Url::as_str)
    }

    /// A sans-I/O decoder for this API's streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<AnthropicEvents> {
        ChunkDecoder::new(AnthropicEvents::new())
    }

    /// This provider with `key` in `x-api-key` ([`Provider::with_key`]).
    fn keyed(&self, key: ApiKey) -> Anthropic {
        let mut p = self.clone();
        p.key_sendable = crate::http::auth::replace_credential(
            &mut p.headers,
            HeaderName::from_static(API_KEY_HEADER),
            key.expose(),
        );
        p.key = key;
        p
    }

    /// The endpoint, or the configuration problem every call reports.
    fn checked(&self) -> Result<&Url, Error> {
        if !self.key_sendable {
            return Err(crate::http::auth::unsendable_key());
        }
        self.endpoint.as_ref().map_err(BadBaseUrl::error)
    }

    async fn send(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
        cx: &CallContext,
    ) -> Result<reqwest::Response, Error> {
        // A clone of the parsed URL is cheaper than reqwest parsing a string on every call.
        let url = self.checked()?.clone();
        let body = wire::encode_request(req, model, stream, self.default_max_tokens)?;
        transport::post_json(cx, url, &self.headers, body, |status, headers, body| {
            wire::decode_error_with(status, headers, body, &|s| self.key.redact(s))
        })
        .await
    }
}

/// `{base}/messages`, keeping the base URL's query after the path.
fn messages_endpoint(base_url: &str) -> Result<Url, BadBaseUrl> {
    BaseUrl::parse(base_url)?.endpoint("/messages", &[])
}

#[async_trait]
impl Provider for Anthropic {
    fn name(&self) -> &str {
        "anthropic"
    }

    /// Refuses a base URL that does not parse and a key no header can hold.
    fn validate(&self) -> Result<(), Error> {
        self.checked().map(|_| ())
    }

    /// This provider with `key` in `x-api-key`, replacing whatever that header held, even
    /// one set by [`header`](Anthropic::header); every other header and setting is kept.
    fn with_key(&self, key: ApiKey) -> Option<Arc<dyn Provider>> {
        Some(Arc::new(self.keyed(key)))
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let resp = self.send(req, model, false, cx).await?;
        transport::read_response(resp, |body| {
            wire::decode_response_with(body, &|s| self.key.redact(s))
        })
        .await
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatStream, Error> {
        let resp = self.send(req, model, true, cx).await?;
        // A server (a proxy, a mock) that answered JSON is served as chunks.
        transport::open_stream(resp, AnthropicEvents::with_key(self.key.clone()), |body| {
            wire::decode_response_with(body, &|s| self.key.redact(s)).map(transport::stream_of)
        })
        .await
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;
    use crate::types::ErrorKind;

    #[test]
    fn base_url_query_goes_after_the_path() {
        let p = Anthropic::new("k").base_url("https://gw.internal/v1/?beta=true");
        assert_eq!(p.url(), "https://gw.internal/v1/messages?beta=true");
        assert!(Provider::validate(&p).is_ok());
    }

    #[test]
    fn bad_base_urls_and_keys_are_config_errors() {
        for bad in ["", "not a url", "htp:/bad url"] {
            let p = Anthropic::new("sk-ant-secret").base_url(bad);
            assert_eq!(p.url(), "");
            let e = Provider::validate(&p).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(!format!("{e:?} {p:?}").contains("sk-ant-secret"));
        }
        let p = Anthropic::new("sk-ant-secret\n");
        assert_eq!(
            Provider::validate(&p).expect_err("key").kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn empty_key_and_replaced_key() {
        assert!(Anthropic::new("").headers.get("x-api-key").is_none());
        let p = Anthropic::new("k")
            .header("X-Api-Key", "other")
            .expect("header");
        assert_eq!(p.headers.get_all("x-api-key").iter().count(), 1);
        assert_eq!(p.headers["x-api-key"], "other");
    }
}
