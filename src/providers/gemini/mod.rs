//! Google Gemini through the Generative Language API (`generateContent`,
//! `streamGenerateContent?alt=sse`), natively — not through Google's OpenAI-compatible
//! endpoint, so thought signatures, thinking budgets and Gemini's own error details survive.
//!
//! ```
//! use polyrelay::providers::Gemini;
//! let gemini = Gemini::new("AIza…");
//! let vertex_proxy = Gemini::new("AIza…")
//!     .base_url("https://llm-proxy.internal/gemini/v1beta")
//!     .header("x-team", "support").unwrap();
//! ```
//!
//! # Request mapping
//!
//! | Chat Completions | Gemini |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | `systemInstruction.parts[].text` |
//! | `user` / `assistant` | `contents[]` with role `user` / `model`; consecutive same-role turns merged, turns without parts dropped |
//! | text, `image_url` (`data:` URL) | `text`, `inlineData {mimeType, data}` |
//! | `image_url` / `file` (`https://`, `http://`, `gs://`) | `fileData {fileUri, mimeType?}` (MIME type guessed from the extension when obvious) |
//! | `input_audio`, `file` with `file_data` | `inlineData` |
//! | assistant `tool_calls` | `functionCall {id?, name, args}` parts, `thoughtSignature` from [`ToolCall::thought_signature`](crate::ToolCall) |
//! | assistant `thinking_blocks` with a signature | `{text, thought: true, thoughtSignature}` parts; a signature without text goes on the turn's text part |
//! | `tool` messages | `functionResponse {id?, name, response}` in a user turn; `name` from the assistant call whose id the result answers; `response` is the result when it is a JSON object, else `{"result": <text>}` |
//! | `tools[].function` | `tools[0].functionDeclarations[]`, `parameters` cleaned to Gemini's schema subset (see below) and omitted for an object without properties |
//! | `tool_choice` `auto` / `none` / `required` / `{function}` | `toolConfig.functionCallingConfig.mode` `AUTO` / `NONE` / `ANY` / `ANY` + `allowedFunctionNames` |
//! | `temperature`, `top_p`, `max_completion_tokens` (else `max_tokens`), `stop`, `n`, `seed` | `generationConfig.temperature`, `topP`, `maxOutputTokens`, `stopSequences`, `candidateCount`, `seed` (wrapped to int32) |
//! | `response_format` `json_object` / `json_schema` | `responseMimeType: application/json` (+ `responseSchema`, cleaned) |
//! | `reasoning_effort` | `thinkingConfig.thinkingBudget` per [`thinking_budget`] (`none` 0, `minimal` 512, `low` 1024, `medium` 8192, `high` 24576) with `includeThoughts: true` when not 0 |
//!
//! Not sent: `user`, `parallel_tool_calls`, `stream_options`, message `name`s, reasoning text
//! without a signature, redacted thinking, and every field of [`ChatRequest::extra`]
//! (they are OpenAI's). Tool-call ids this crate generated (`gcall_…`) are not sent back.
//!
//! Tool schemas and `responseSchema` go through a cleaner: `$ref`s to `$defs`/`definitions`
//! are inlined (recursive ones dropped), `allOf` merged, `oneOf` becomes `anyOf`, `null` types
//! and branches become `nullable: true`, `const` becomes a one-value `enum`, non-string enums
//! move to the description, and keywords outside Gemini's subset (`$schema`, `$id`,
//! `additionalProperties`, `exclusiveMinimum`/`Maximum`, `examples`, `default`, `title`,
//! `patternProperties`, `unevaluatedProperties`, unknown `format`s, …) are dropped.
//!
//! For Gemini 3 models (`gemini-3…` and later), a model turn whose function calls carry no
//! thought signature (one another vendor produced, say) gets Google's documented
//! `skip_thought_signature_validator` on its first call: Gemini 3 answers 400 otherwise.
//!
//! # Responses, streams and errors
//!
//! See [`GeminiEvents`] for the stream grammar, which non-streamed responses go through too.
//! Usage is normalised: `input_tokens = promptTokenCount + toolUsePromptTokenCount`,
//! `cache_read_tokens = cachedContentTokenCount`, `output_tokens = candidatesTokenCount +
//! thoughtsTokenCount`, `reasoning_tokens = thoughtsTokenCount`. Response `id` is
//! `responseId`, `model` is `modelVersion`, `created` is Vertex's `createTime` (0 when absent).
//!
//! Errors (`google.rpc.Status`): `RESOURCE_EXHAUSTED` is [`ErrorKind::RateLimited`] with
//! `RetryInfo.retryDelay` as the retry-after, or [`ErrorKind::QuotaExhausted`] when a
//! `QuotaFailure` names a per-day quota; `API_KEY_*` reasons, `UNAUTHENTICATED`,
//! `PERMISSION_DENIED` and `FAILED_PRECONDITION` (region or billing) are [`ErrorKind::Auth`];
//! `NOT_FOUND` is [`ErrorKind::NotFound`]; `INVALID_ARGUMENT` is [`ErrorKind::InvalidRequest`]
//! (or [`ErrorKind::ContextLengthExceeded`] when the input is too long); `INTERNAL` is
//! [`ErrorKind::Server`], `UNAVAILABLE` [`ErrorKind::Overloaded`], `DEADLINE_EXCEEDED`
//! [`ErrorKind::Timeout`]. The error code is the `ErrorInfo.reason` when there is one, else the
//! status name.

mod schema;
mod stream;
mod wire;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName};

use crate::error::{Error, ErrorKind};
use crate::provider::{CallContext, Provider};
use crate::providers::{ChunkDecoder, transport};
use crate::secret::ApiKey;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

pub use stream::GeminiEvents;
pub use wire::{decode_response, decode_stream_array, encode_request, thinking_budget};

/// Decodes a Gemini error response (any HTTP status, headers and body, `google.rpc.Status`
/// possibly wrapped in a one-element array) into a typed [`Error`]. See the
/// [module documentation](self) for the kinds.
pub fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    wire::error_from_body(Some(status), headers, body, &|s| s.to_owned())
}

/// The default base URL (the part before `/models/{model}:generateContent`).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The API key header. The key never goes in the URL (`?key=`), where it would end up in
/// logs and error messages.
const API_KEY_HEADER: &str = "x-goog-api-key";

/// A provider for Google's Gemini API.
#[derive(Clone)]
pub struct Gemini {
    base: String,
    headers: HeaderMap,
    key: ApiKey,
}

impl std::fmt::Debug for Gemini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemini")
            .field("base_url", &self.base)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Gemini {
    /// Gemini with an API key (sent in the `x-goog-api-key` header).
    pub fn new(key: impl Into<ApiKey>) -> Self {
        let mut p = Gemini {
            base: DEFAULT_BASE_URL.to_owned(),
            headers: HeaderMap::new(),
            key: key.into(),
        };
        p.set_auth();
        p
    }

    /// Gemini with the key from `GEMINI_API_KEY`, else `GOOGLE_API_KEY`; `None` when both are
    /// unset or empty.
    pub fn from_env() -> Option<Self> {
        ApiKey::from_env("GEMINI_API_KEY")
            .or_else(|| ApiKey::from_env("GOOGLE_API_KEY"))
            .map(Self::new)
    }

    /// Overrides the base URL (a proxy, the simulator): requests go to
    /// `{base_url}/models/{model}:generateContent`.
    pub fn base_url(mut self, base_url: &str) -> Self {
        base_url.trim_end_matches('/').clone_into(&mut self.base);
        self
    }

    /// Adds a header to every request (sent as sensitive: never logged by the HTTP stack).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        transport::insert_header(&mut self.headers, name, value)?;
        Ok(self)
    }

    /// The URL a request for `model` goes to. `model` may be `gemini-2.5-flash`,
    /// `models/gemini-2.5-flash` or `tunedModels/…`.
    pub fn endpoint(&self, model: &str, stream: bool) -> Result<String, Error> {
        let path = model_path(model)?;
        Ok(if stream {
            format!("{}/{path}:streamGenerateContent?alt=sse", self.base)
        } else {
            format!("{}/{path}:generateContent", self.base)
        })
    }

    /// A sans-I/O decoder for this API's `?alt=sse` streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<GeminiEvents> {
        ChunkDecoder::new(GeminiEvents::new())
    }

    fn set_auth(&mut self) {
        transport::auth_headers(
            &mut self.headers,
            HeaderName::from_static(API_KEY_HEADER),
            self.key.expose(),
        );
    }

    fn redact(&self, s: &str) -> String {
        self.key.redact(s)
    }

    async fn send(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
        cx: &CallContext,
    ) -> Result<reqwest::Response, Error> {
        let url = self.endpoint(model, stream)?;
        let opts = wire::EncodeOptions {
            signature_sentinel: is_gemini_3_or_later(model),
        };
        let body = wire::encode(req, opts)?;
        transport::post_json(cx, &url, &self.headers, body, |status, headers, body| {
            wire::error_from_body(Some(status), headers, body, &|s| self.redact(s))
        })
        .await
    }
}

/// `models/{name}` (or a `tunedModels/…` path as given), refusing characters that would
/// change the URL's meaning.
fn model_path(model: &str) -> Result<String, Error> {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let ok = !name.is_empty()
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'@'));
    if !ok {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{model:?} is not a Gemini model name"),
        ));
    }
    Ok(if name.contains('/') {
        name.to_owned()
    } else {
        format!("models/{name}")
    })
}

/// Gemini 3 and later enforce thought signatures on replayed function calls.
fn is_gemini_3_or_later(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    let Some(version) = name.strip_prefix("gemini-") else {
        return false;
    };
    let major: String = version.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().is_ok_and(|m| m >= 3)
}

#[async_trait]
impl Provider for Gemini {
    fn name(&self) -> &str {
        "gemini"
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let resp = self.send(req, model, false, cx).await?;
        transport::read_response(resp, |body| {
            wire::decode_response_with(body, Some(&self.key))
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
        let handler = GeminiEvents::with_key(Some(self.key.clone()));
        // A server (or proxy) that answered with the JSON-array form of the stream.
        transport::open_stream(resp, handler, |body| {
            let (chunks, error) = wire::decode_stream_array_partial(body, Some(&self.key));
            if chunks.is_empty()
                && let Some(e) = error
            {
                // Nothing delivered yet: report it as the call's error, not the stream's.
                return Err(e);
            }
            let items = chunks.into_iter().map(Ok).chain(error.map(Err));
            Ok(ChatStream::new(futures::stream::iter(items)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let g = Gemini::new("AIzaSECRET").base_url("http://127.0.0.1:9/v1beta/");
        assert_eq!(
            g.endpoint("gemini-2.5-flash", false).expect("url"),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            g.endpoint("models/gemini-2.5-flash", true).expect("url"),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            g.endpoint("tunedModels/my-model-42", false).expect("url"),
            "http://127.0.0.1:9/v1beta/tunedModels/my-model-42:generateContent"
        );
        for bad in ["", "a?key=x", "a#b", "../../x", "gemini pro"] {
            assert_eq!(
                g.endpoint(bad, false).expect_err(bad).kind(),
                ErrorKind::Config
            );
        }
        assert_eq!(
            Gemini::new("k")
                .endpoint("gemini-3-pro-preview", true)
                .expect("url"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn key_only_in_a_sensitive_header() {
        let g = Gemini::new("AIzaSECRET")
            .header("x-team", "a")
            .expect("header");
        let v = g.headers.get(API_KEY_HEADER).expect("key header");
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().ok(), Some("AIzaSECRET"));
        let dbg = format!("{g:?}");
        assert!(!dbg.contains("AIzaSECRET"), "{dbg}");
        assert!(
            !g.endpoint("gemini-2.5-pro", false)
                .expect("url")
                .contains("SECRET")
        );
        assert!(Gemini::new("").headers.get(API_KEY_HEADER).is_none());
        assert_eq!(
            Gemini::new("k")
                .header("bad name", "v")
                .expect_err("name")
                .kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn gemini_3_detection() {
        for m in [
            "gemini-3-pro-preview",
            "models/gemini-3.1-pro-preview",
            "gemini-3.7-flash",
            "gemini-10-ultra",
        ] {
            assert!(is_gemini_3_or_later(m), "{m}");
        }
        for m in [
            "gemini-2.5-pro",
            "gemini-1.5-flash",
            "gemma-3-27b",
            "gemini-exp-1206",
        ] {
            assert!(!is_gemini_3_or_later(m), "{m}");
        }
    }
}
