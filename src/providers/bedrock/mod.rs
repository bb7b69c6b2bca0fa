//! AWS Bedrock: Converse and ConverseStream for every model family, Anthropic's own body
//! through InvokeModel, and the OpenAI-compatible Mantle endpoint — codecs on the one
//! [`HttpProvider`], with SigV4 or a Bedrock API key ([`auth`]).
//!
//! ```no_run
//! use polyrelay::providers::bedrock::{AwsAuth, Bedrock};
//! # fn main() -> Result<(), polyrelay::Error> {
//! // Region from AWS_REGION (or AWS_DEFAULT_REGION), credentials from the AWS chain.
//! let bedrock = Bedrock::from_env()?;
//! // Or by hand: a region and how to sign.
//! let bedrock = Bedrock::new("eu-west-1", AwsAuth::from_env()?);
//! # let _ = bedrock; Ok(()) }
//! ```
//!
//! # Model ids
//!
//! A foundation-model id (`amazon.nova-micro-v1:0`), an inference-profile id
//! (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`, `eu.`, `apac.`, `global.`…) or an ARN all
//! work as the model. It goes in the path as the bytes the signature covers (`:` → `%3A`,
//! `/` → `%2F`); an id with other characters than letters, digits and `.-_:/`, longer than
//! 2048 bytes, empty, or with an empty, `.` or `..` part between `/` is refused as an
//! [`ErrorKind::Config`] error before anything is sent. Bedrock refuses a bare id of a newer model on demand; that
//! [`ErrorKind::Config`] error names the profile to use (`us.` + the id in `us-*` regions,
//! `eu.` in `eu-*`, `apac.` in `ap-*`).
//!
//! # Request mapping (Converse)
//!
//! * `system`/`developer` messages → `system` text blocks; consecutive messages of the same
//!   role → one turn (Converse wants turns to alternate); `tool` messages → `toolResult`
//!   blocks in a user turn, consecutive results in one turn (parallel calls), first in it.
//! * Text parts → `text` blocks (empty text left out); `data:image/<png|jpeg|gif|webp>;base64`
//!   URLs → `image` blocks with the bytes; an `http(s)` image URL is an
//!   [`ErrorKind::InvalidRequest`] (Converse takes bytes or S3 only). A raw part that is one
//!   Converse block (`{"cachePoint": …}`, `{"document": …}`…) is sent as it is.
//! * Assistant `tool_calls` → `toolUse` blocks (arguments parsed to an object); its
//!   `thinking_blocks` signed by Bedrock (or of unknown origin) → `reasoningContent`
//!   (`reasoningText {text, signature}`; redacted → `redactedContent`), first in the turn.
//! * A message's (or tool's) `cache_control` (`{"type": "ephemeral", "ttl"?}`, LiteLLM's
//!   convention) → a `cachePoint` after it (`{"type": "default", "ttl"?}`).
//! * `tools` → `toolConfig.tools[].toolSpec {name, description, inputSchema.json, strict}`;
//!   `tool_choice` auto → none sent (Converse's default), required → `{any: {}}`, a function
//!   → `{tool: {name}}`, `none` → the tools are left out (unless the conversation already
//!   holds tool calls, which Converse refuses without a `toolConfig`).
//! * `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `stop` →
//!   `inferenceConfig {maxTokens, temperature, topP, stopSequences}` (for Claude the
//!   temperature is clamped to 0–1).
//! * `reasoning_effort` on a Claude model → `additionalModelRequestFields.thinking` with the
//!   Anthropic codec's budgets ([`thinking_budget`](super::anthropic::thinking_budget));
//!   `maxTokens` kept above the budget, sampling settings left out. On gpt-oss
//!   (`openai.` ids) → `additionalModelRequestFields.reasoning_effort`.
//! * `response_format` JSON → a system instruction. `n` > 1 is an
//!   [`ErrorKind::InvalidRequest`]; `seed`, `user` and `extra` are not sent.
//!
//! # Response mapping
//!
//! Text blocks are joined into the content; `citationsContent` adds its text and an
//! annotation per citation (`{"type": "citation", "start_index", "end_index", "citation"}`);
//! `toolUse` → tool calls (server tools skipped); `reasoningContent` → `reasoning` and
//! signed [`ThinkingBlock`](crate::ThinkingBlock)s (source `bedrock`, sent back to Bedrock
//! only). `stopReason` `end_turn`/`stop_sequence` → `stop`, `max_tokens` → `length`,
//! `tool_use` → `tool_calls`, `guardrail_intervened`/`content_filtered` →
//! `content_filter`; `malformed_model_output`/`malformed_tool_use` are
//! [`ErrorKind::Server`] errors. Usage: input counts the cache reads and writes
//! (`cacheReadInputTokens`, `cacheWriteInputTokens`) that Converse's `inputTokens` leaves
//! out. Converse sends no id: the answer gets a new one; its model is the id asked for
//! (the relay fills it in).
//!
//! # Errors
//!
//! The type comes from `x-amzn-ErrorType` (cut at `:`) or the body's `__type`, the message
//! from `message` or `Message`. `ThrottlingException`/429 → [`ErrorKind::RateLimited`]
//! (Bedrock sends no rate-limit headers); `ServiceUnavailableException`/503 and
//! `ModelNotReadyException` → [`ErrorKind::Overloaded`]; `InternalServerException`/500 and
//! `ModelErrorException`/`ModelStreamErrorException`/424 → [`ErrorKind::Server`];
//! `ModelTimeoutException` → [`ErrorKind::Timeout`]; a `ValidationException` saying the
//! input is too long → [`ErrorKind::ContextLengthExceeded`], any other →
//! [`ErrorKind::InvalidRequest`]; `AccessDeniedException`/403, `UnrecognizedClientException`,
//! signature and token errors → [`ErrorKind::Auth`] with a key fault ([`Fault::Key`], or
//! [`Fault::KeyOnTarget`] for an IAM denial of this model), so a bad key never opens the
//! target's breaker; `ResourceNotFoundException` → [`ErrorKind::NotFound`];
//! `ServiceQuotaExceededException` → [`ErrorKind::QuotaExhausted`]. Every error keeps its
//! status, the type as code and the message.
//!
//! [`Fault::Key`]: crate::types::Fault::Key
//! [`Fault::KeyOnTarget`]: crate::types::Fault::KeyOnTarget

pub mod auth;
mod converse;
#[cfg(test)]
mod converse_tests;
mod decode;
#[cfg(test)]
mod decode_tests;
mod errors;
#[cfg(test)]
mod errors_tests;
mod eventstream;
#[cfg(test)]
mod eventstream_tests;
mod invoke;
#[cfg(test)]
mod invoke_tests;
mod stream;
#[cfg(test)]
mod stream_tests;
mod url;

use reqwest::Url;
use reqwest::header::HeaderMap;

use crate::providers::base_url::BadBaseUrl;
use crate::providers::{Codec, HttpProvider, KeyHeader, Redactor};
use crate::secret::ApiKey;
use crate::types::{ChatRequest, ChatResponse, Error, ErrorKind};

pub use auth::AwsAuth;
pub use invoke::{BEDROCK_ANTHROPIC_VERSION, InvokeEvents};
pub use stream::{BedrockStream, ConverseEvents};

/// A provider for Bedrock's Converse API: the [`HttpProvider`] over [`BedrockCodec`].
/// Requests go to `https://bedrock-runtime.{region}.amazonaws.com/model/{model}/converse`
/// (`/converse-stream` for streams), signed by its [`AwsAuth`].
pub type Bedrock = HttpProvider<BedrockCodec>;

/// A provider for Anthropic's own Messages body on Bedrock (InvokeModel, for features only
/// Anthropic's API has): the [`HttpProvider`] over [`BedrockAnthropicCodec`]. Requests go
/// to `…/model/{model}/invoke` (`/invoke-with-response-stream` for streams).
pub type BedrockAnthropic = HttpProvider<BedrockAnthropicCodec>;

/// Where a Bedrock codec sends and how it signs: the region, the endpoint, the auth.
#[derive(Clone)]
struct Runtime {
    region: String,
    base: Result<url::Base, BadBaseUrl>,
    auth: AwsAuth,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = match &self.base {
            Ok(b) => b.shown(),
            Err(bad) => bad.shown().to_owned(),
        };
        f.debug_struct("Bedrock")
            .field("region", &self.region)
            .field("base_url", &base)
            .field("auth", &self.auth)
            .finish()
    }
}

impl Runtime {
    fn new(region: &str, auth: AwsAuth) -> Self {
        Runtime {
            region: region.to_owned(),
            base: url::Base::for_region(region),
            auth,
        }
    }

    fn url(&self, model: &str, action: &str) -> Result<Url, Error> {
        let base = self.base.as_ref().map_err(BadBaseUrl::error)?;
        base.model_url(model, action)
    }

    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        errors::decode_error(Some(status), headers, body, &self.region, &|s| {
            key.redact(s)
        })
    }
}

/// The [`Codec`] methods both Bedrock codecs share: validation, no key header, errors,
/// signing.
macro_rules! runtime_methods {
    () => {
        /// Refuses a region or base URL that cannot make a URL.
        fn validate(&self) -> Result<(), Error> {
            self.rt.base.as_ref().map(|_| ()).map_err(BadBaseUrl::error)
        }

        /// None: the [`AwsAuth`] signs each request.
        fn credential(&self) -> Option<KeyHeader> {
            None
        }

        fn decode_error(
            &self,
            status: u16,
            headers: &HeaderMap,
            body: &[u8],
            key: &Redactor<'_>,
        ) -> Error {
            self.rt.decode_error(status, headers, body, key)
        }

        async fn sign(
            &self,
            request: &mut reqwest::Request,
            http: &reqwest::Client,
        ) -> Result<(), Error> {
            self.rt.auth.sign(request, &self.rt.region, http).await
        }

        fn should_resend(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
            self.rt.auth.should_resend(status, headers, body)
        }
    };
}

/// The Converse wire format ([`Codec`]): region, endpoint and [`AwsAuth`]. Built through
/// [`Bedrock`]'s constructors.
#[derive(Clone, Debug)]
pub struct BedrockCodec {
    rt: Runtime,
}

impl Codec for BedrockCodec {
    type Decoder = BedrockStream<ConverseEvents>;

    fn name(&self) -> &str {
        "bedrock"
    }

    runtime_methods!();

    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        self.rt.url(
            model,
            if stream {
                "converse-stream"
            } else {
                "converse"
            },
        )
    }

    fn encode(&self, req: &ChatRequest, model: &str, _stream: bool) -> Result<Vec<u8>, Error> {
        converse::encode(req, model)
    }

    /// The answer, with a new id and the creation time (Converse sends neither).
    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let mut resp = decode::decode_response(body, &|s| key.redact(s))?;
        resp.complete_identity("");
        Ok(resp)
    }

    fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder {
        BedrockStream::new(ConverseEvents::new(), &self.rt.region, key.key().clone())
    }
}

/// Anthropic's Messages body through InvokeModel ([`Codec`]): region, endpoint and
/// [`AwsAuth`]. Built through [`BedrockAnthropic`]'s constructors. The body is the Anthropic
/// codec's (see [`crate::providers::anthropic`]) without `model` and `stream`, with
/// `anthropic_version` [`BEDROCK_ANTHROPIC_VERSION`]; answers and streams are decoded by
/// the Anthropic codec's logic, errors as Bedrock's.
#[derive(Clone, Debug)]
pub struct BedrockAnthropicCodec {
    rt: Runtime,
    /// `max_tokens` when the request sets none.
    default_max_tokens: u32,
}

impl Codec for BedrockAnthropicCodec {
    type Decoder = BedrockStream<InvokeEvents>;

    fn name(&self) -> &str {
        "bedrock"
    }

    runtime_methods!();

    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        self.rt.url(
            model,
            if stream {
                "invoke-with-response-stream"
            } else {
                "invoke"
            },
        )
    }

    fn encode(&self, req: &ChatRequest, _model: &str, _stream: bool) -> Result<Vec<u8>, Error> {
        invoke::encode(req, self.default_max_tokens)
    }

    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let mut resp = crate::providers::anthropic::decode_response(body).map_err(|e| {
            match e.body_snippet() {
                Some(b) => {
                    let shown = key.redact(b);
                    e.with_body(&shown)
                }
                None => e,
            }
        })?;
        resp.complete_identity("");
        Ok(resp)
    }

    fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder {
        BedrockStream::new(InvokeEvents::new(), &self.rt.region, key.key().clone())
    }
}

/// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION` (as `env` reads them).
fn env_region(env: impl Fn(&str) -> Option<String>) -> Result<String, Error> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|v| env(v).filter(|r| !r.trim().is_empty()))
        .map(|r| r.trim().to_owned())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)",
            )
        })
}

macro_rules! runtime_constructors {
    ($provider:ident, $codec:ident) => {
        impl $provider {
            /// The provider for `region` (e.g. `us-east-1`), calls signed by `auth`.
            /// A region that cannot make a host name is reported by
            /// [`Provider::validate`](crate::Provider::validate) and every call, as an
            /// [`ErrorKind::Config`] error.
            pub fn new(region: &str, auth: AwsAuth) -> Self {
                HttpProvider::from_codec($codec::at(Runtime::new(region, auth)), ApiKey::new(""))
            }

            /// The provider for the region in `AWS_REGION` (else `AWS_DEFAULT_REGION`),
            /// with [`AwsAuth::from_env`]: a Bedrock API key in `AWS_BEARER_TOKEN_BEDROCK`,
            /// else the AWS credential chain. An [`ErrorKind::Config`] error when no region
            /// is set or no credential is found.
            pub fn from_env() -> Result<Self, Error> {
                let region = env_region(|v| std::env::var(v).ok())?;
                Ok(Self::new(&region, AwsAuth::from_env()?))
            }

            /// Overrides the endpoint (default
            /// `https://bedrock-runtime.{region}.amazonaws.com`; `….amazonaws.com.cn` in
            /// China regions): a VPC endpoint, a proxy, the simulator. Requests go to
            /// `{base_url}/model/{model}/…`, followed by the base URL's query string if it
            /// has one. The signature keeps the configured region.
            pub fn base_url(mut self, url: &str) -> Self {
                self.codec_mut().rt.base = url::Base::parse(url);
                self
            }

            /// The region calls are signed for.
            pub fn region(&self) -> &str {
                &self.codec().rt.region
            }
        }
    };
}

runtime_constructors!(Bedrock, BedrockCodec);
runtime_constructors!(BedrockAnthropic, BedrockAnthropicCodec);

impl BedrockCodec {
    fn at(rt: Runtime) -> Self {
        BedrockCodec { rt }
    }
}

impl BedrockAnthropicCodec {
    fn at(rt: Runtime) -> Self {
        BedrockAnthropicCodec {
            rt,
            default_max_tokens: crate::providers::anthropic::DEFAULT_MAX_TOKENS,
        }
    }
}

impl BedrockAnthropic {
    /// `max_tokens` for requests that set none (Anthropic's body requires one); default
    /// [`DEFAULT_MAX_TOKENS`](crate::providers::anthropic::DEFAULT_MAX_TOKENS) (4096), as
    /// [`Anthropic::default_max_tokens`](crate::providers::Anthropic::default_max_tokens).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.codec_mut().default_max_tokens = max_tokens;
        self
    }
}

/// Bedrock's OpenAI-compatible endpoint ("Mantle") in `region` as an OpenAI-compatible
/// provider named `bedrock_mantle`: requests go to
/// `https://bedrock-mantle.{region}.api.aws/v1/chat/completions` with the Bedrock API key
/// as `Authorization: Bearer {key}`. Model ids are Mantle's (`openai.gpt-oss-120b`…).
pub fn mantle(region: &str, key: impl Into<ApiKey>) -> crate::providers::OpenAi {
    let base = format!("https://bedrock-mantle.{region}.api.aws/v1");
    crate::providers::OpenAi::compatible("bedrock_mantle", &base, key)
}
