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

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::providers::base_url::{BaseUrl, Endpoint};
use crate::providers::{ChunkDecoder, Codec, HttpProvider, KeyHeader, Redactor};
use crate::secret::ApiKey;
use crate::types::Error;
use crate::types::{ChatRequest, ChatResponse};

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

/// A Messages body for Bedrock's InvokeModel: no `model` (the URL names it), no `stream`
/// (the path says whether it streams), `anthropic_version` as given.
#[cfg(feature = "bedrock")]
pub(crate) fn encode_bedrock_request(
    req: &ChatRequest,
    anthropic_version: &'static str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, Error> {
    let platform = wire::Platform {
        model: None,
        anthropic_version: Some(anthropic_version),
        stream: None,
    };
    wire::encode_request_on(req, &platform, default_max_tokens)
}

/// The `anthropic_version` Vertex AI's `rawPredict` takes in the body.
#[cfg(feature = "vertex")]
pub(crate) const VERTEX_VERSION: &str = "vertex-2023-10-16";

/// A Messages body for Vertex AI's `rawPredict` / `streamRawPredict`: no `model` (the URL
/// names it), `anthropic_version` [`VERTEX_VERSION`], `stream` as given.
#[cfg(feature = "vertex")]
pub(crate) fn encode_vertex_request(
    req: &ChatRequest,
    stream: bool,
    default_max_tokens: u32,
) -> Result<Vec<u8>, Error> {
    let platform = wire::Platform {
        model: None,
        anthropic_version: Some(VERTEX_VERSION),
        stream: Some(stream),
    };
    wire::encode_request_on(req, &platform, default_max_tokens)
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

/// A provider for Anthropic's Messages API: the [`HttpProvider`] over [`AnthropicCodec`].
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
///
/// A [`header`](HttpProvider::header) of the same name (case-insensitive) replaces the
/// built-in one: `.header("x-api-key", …)` replaces the key, `.header("anthropic-version", …)`
/// the version (until [`version`](Self::version) or [`beta`](Self::beta) set theirs again).
///
/// [`Provider::validate`]: crate::Provider::validate
pub type Anthropic = HttpProvider<AnthropicCodec>;

/// The Messages API wire format ([`Codec`]): its endpoint, version, beta flags and default
/// `max_tokens`. Built through [`Anthropic`]'s constructors.
#[derive(Clone)]
pub struct AnthropicCodec {
    /// The whole endpoint, parsed once: it does not depend on the model.
    endpoint: Endpoint,
    version: String,
    betas: Vec<String>,
    default_max_tokens: u32,
}

impl std::fmt::Debug for AnthropicCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.endpoint.shown();
        f.debug_struct("Anthropic")
            .field("url", &url)
            .field("version", &self.version)
            .field("betas", &self.betas)
            .field("default_max_tokens", &self.default_max_tokens)
            .finish_non_exhaustive()
    }
}

impl Codec for AnthropicCodec {
    type Decoder = ChunkDecoder<AnthropicEvents>;

    fn name(&self) -> &str {
        "anthropic"
    }

    /// Refuses a base URL that does not parse.
    fn validate(&self) -> Result<(), Error> {
        self.endpoint.check()
    }

    /// `x-api-key: {key}`.
    fn credential(&self) -> Option<KeyHeader> {
        Some(KeyHeader::new(HeaderName::from_static(API_KEY_HEADER)))
    }

    fn url(&self, _model: &str, _stream: bool) -> Result<Url, Error> {
        self.endpoint.url()
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        wire::encode_request(req, model, stream, self.default_max_tokens)
    }

    /// The answer as decoded, with what OpenAI's wire requires and the vendor left out
    /// completed (Anthropic sends no creation time): the decoder itself stays a pure function of the body.
    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let mut resp = wire::decode_response_with(body, &|s| key.redact(s))?;
        resp.complete_identity("");
        Ok(resp)
    }

    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        wire::decode_error_with(status, headers, body, &|s| key.redact(s))
    }

    fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder {
        ChunkDecoder::new(AnthropicEvents::with_key(key.key().clone()))
    }
}

impl Anthropic {
    /// Anthropic with an API key, sent in the `x-api-key` header. An empty key sends no
    /// `x-api-key` header (for a gateway authenticated by a [`header`](HttpProvider::header)
    /// of your own).
    pub fn new(key: impl Into<ApiKey>) -> Self {
        let codec = AnthropicCodec {
            endpoint: messages_endpoint(DEFAULT_BASE_URL),
            version: DEFAULT_VERSION.to_owned(),
            betas: Vec::new(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        };
        let mut p = HttpProvider::from_codec(codec, key);
        p.headers.insert(
            "anthropic-version",
            HeaderValue::from_static(DEFAULT_VERSION),
        );
        p
    }

    /// Anthropic with the key from `ANTHROPIC_API_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Option<Self> {
        ApiKey::from_env("ANTHROPIC_API_KEY").map(Self::new)
    }

    /// Overrides the base URL (default [`DEFAULT_BASE_URL`]; requests go to `{base}/messages`,
    /// followed by the base URL's query string if it has one).
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.codec_mut().endpoint = messages_endpoint(base_url);
        self
    }

    /// Sets the `anthropic-version` header (default [`DEFAULT_VERSION`]). A value a header
    /// cannot hold is ignored.
    pub fn version(mut self, version: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(version) {
            self.codec_mut().version = version.to_owned();
            self.headers.insert("anthropic-version", v);
        }
        self
    }

    /// Adds a beta flag to the `anthropic-beta` header (flags are comma-joined; none by
    /// default). A flag a header cannot hold is ignored.
    pub fn beta(mut self, flag: &str) -> Self {
        let betas = &mut self.codec_mut().betas;
        if HeaderValue::from_str(flag).is_err() || betas.iter().any(|b| b == flag) {
            return self;
        }
        betas.push(flag.to_owned());
        if let Ok(v) = HeaderValue::from_str(&betas.join(",")) {
            self.headers.insert("anthropic-beta", v);
        }
        self
    }

    /// `max_tokens` for requests that set no output limit (Anthropic requires one). Default
    /// [`DEFAULT_MAX_TOKENS`] (4096).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.codec_mut().default_max_tokens = max_tokens;
        self
    }

    /// The endpoint URL requests go to, with the base URL's query string (which may hold a
    /// credential: do not log it); empty when the base URL was refused (see
    /// [`Provider::validate`](crate::Provider::validate)).
    pub fn url(&self) -> &str {
        self.codec().endpoint.as_str()
    }

    /// A sans-I/O decoder for this API's streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<AnthropicEvents> {
        ChunkDecoder::new(AnthropicEvents::new())
    }
}

/// `{base}/messages`, keeping the base URL's query after the path.
fn messages_endpoint(base_url: &str) -> Endpoint {
    Endpoint::new(BaseUrl::parse(base_url), "/messages")
}

#[cfg(test)]
mod url_tests {
    use super::*;
    use crate::provider::Provider;
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
