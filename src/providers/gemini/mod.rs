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

mod partial;
mod schema;
mod stream;
mod wire;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName};

use crate::providers::base_url::{BadBaseUrl, BaseUrl};
use crate::providers::{ChunkDecoder, Codec, HttpProvider, KeyHeader, Redactor};
use crate::secret::ApiKey;
use crate::types::{ChatRequest, ChatResponse, ChatStream};
use crate::types::{Error, ErrorKind};

pub use stream::{GeminiEvents, decode_response, decode_stream_array};
pub use wire::{encode_request, thinking_budget};

/// Decodes a Gemini error response (any HTTP status, headers and body, `google.rpc.Status`
/// possibly wrapped in a one-element array) into a typed [`Error`]. See the
/// [module documentation](self) for the kinds.
pub fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    wire::error_from_body(Some(status), headers, body, &|s| s.to_owned())
}

/// The default base URL (the part before `/models/{model}:generateContent`).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The API key header of [`Gemini::new`].
const API_KEY_HEADER: &str = "x-goog-api-key";

/// Where the credential goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// `x-goog-api-key: {key}`.
    KeyHeader,
    /// `?key={key}` in the URL.
    KeyQuery,
    /// `Authorization: Bearer {token}`.
    Bearer,
}

/// A provider for Google's Gemini API: the [`HttpProvider`] over [`GeminiCodec`].
///
/// # Authentication
///
/// One constructor per place the credential goes:
///
/// | Constructor | Sends |
/// |---|---|
/// | [`Gemini::new`] (and [`from_env`](Gemini::from_env)) | `x-goog-api-key: {key}` |
/// | [`Gemini::with_query_key`] | `?key={key}` in the URL, for proxies that only take that |
/// | [`Gemini::with_bearer`] | `Authorization: Bearer {token}`: Vertex AI (an OAuth access token), gateways |
///
/// In every mode an empty key or token sends no credential at all, and a
/// [`header`](HttpProvider::header) of the same name replaces the built-in one:
/// `.header("x-goog-api-key", …)` replaces the key of [`Gemini::new`],
/// `.header("authorization", …)` the token of [`Gemini::with_bearer`].
///
/// # Base URLs
///
/// Requests go to `{base_url}/models/{model}:generateContent` and
/// `{base_url}/models/{model}:streamGenerateContent?alt=sse`. A base URL may carry a query
/// string: it is kept after the path, and `alt=sse` is added to it
/// (`https://proxy/v1beta?team=a` streams from
/// `https://proxy/v1beta/models/{model}:streamGenerateContent?team=a&alt=sse`). A base URL
/// that is not an absolute `http(s)` URL does not make the constructor fail:
/// [`Provider::validate`] (which the relay's builder calls) and every call report it as an
/// [`ErrorKind::Config`] error.
///
/// [`Provider::validate`]: crate::Provider::validate
pub type Gemini = HttpProvider<GeminiCodec>;

/// The Generative Language API's wire format ([`Codec`]): its base URL and where the key
/// goes. Built through [`Gemini`]'s constructors.
#[derive(Clone)]
pub struct GeminiCodec {
    base: Result<Urls, BadBaseUrl>,
    auth: Auth,
    /// The key, kept to rebuild the query strings when it goes in the URL
    /// ([`Auth::KeyQuery`]); never shown.
    key: ApiKey,
}

/// A checked base URL and the query strings calls append, built once per base URL.
#[derive(Clone)]
struct Urls {
    base: BaseUrl,
    /// What `generateContent` and `streamGenerateContent` calls append after the method:
    /// the base URL's query, `alt=sse` for streams, and `key=` in [`Auth::KeyQuery`] mode.
    /// Never shown: they may hold the key.
    send_query: [String; 2],
}

impl std::fmt::Debug for GeminiCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = match &self.base {
            Ok(urls) => urls.base.shown(),
            Err(bad) => bad.shown().to_owned(),
        };
        f.debug_struct("Gemini")
            .field("base_url", &self.key.redact(&base))
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Codec for GeminiCodec {
    type Decoder = ChunkDecoder<GeminiEvents>;

    fn name(&self) -> &str {
        "gemini"
    }

    /// Refuses a base URL that does not parse.
    fn validate(&self) -> Result<(), Error> {
        self.base.as_ref().map(|_| ()).map_err(BadBaseUrl::error)
    }

    /// `x-goog-api-key`, `Authorization: Bearer`, or none when the key goes in the URL.
    fn credential(&self) -> Option<KeyHeader> {
        match self.auth {
            Auth::KeyHeader => Some(KeyHeader::new(HeaderName::from_static(API_KEY_HEADER))),
            Auth::Bearer => Some(KeyHeader::bearer()),
            Auth::KeyQuery => None,
        }
    }

    /// With the key in the URL ([`Gemini::with_query_key`]), the key is in the prebuilt
    /// query strings: rebuilds them from the same base URL.
    fn set_key(&mut self, key: &ApiKey) {
        self.key = key.clone();
        if self.auth == Auth::KeyQuery {
            let auth = self.auth;
            if let Ok(urls) = &mut self.base {
                *urls = queries(urls.base.clone(), key, auth);
            }
        }
    }

    /// The URL to send a request for `model` to, with the key when it goes in the query.
    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        let urls = self.base.as_ref().map_err(BadBaseUrl::error)?;
        let path = model_path(model)?;
        let url = format!(
            "{}/{path}:{}{}",
            urls.base.prefix(),
            method(stream),
            urls.send_query[usize::from(stream)]
        );
        Url::parse(&url).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{model:?} does not make a Gemini URL"),
            )
            .with_source(e)
        })
    }

    fn encode(&self, req: &ChatRequest, model: &str, _stream: bool) -> Result<Vec<u8>, Error> {
        let opts = wire::EncodeOptions {
            signature_sentinel: is_gemini_3_or_later(model),
        };
        wire::encode(req, opts)
    }

    /// The answer as decoded, with what OpenAI's wire requires and the vendor left out
    /// completed (Gemini sends no creation time (Vertex does), and its id as `responseId`): the decoder itself stays a pure function of the body.
    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let mut resp = stream::decode_response_with(body, Some(key.key()))?;
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
        wire::error_from_body(Some(status), headers, body, &|s| key.redact(s))
    }

    fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder {
        ChunkDecoder::new(GeminiEvents::with_key(Some(key.key().clone())))
    }

    /// A server (or proxy) that answered with the JSON-array form of the stream.
    fn decode_stream_json(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatStream, Error> {
        let (chunks, error) = stream::decode_stream_array_partial(body, Some(key.key()));
        if chunks.is_empty()
            && let Some(e) = error
        {
            // Nothing delivered yet: report it as the call's error, not the stream's.
            return Err(e);
        }
        let items = chunks.into_iter().map(Ok).chain(error.map(Err));
        Ok(ChatStream::new(futures::stream::iter(items)))
    }
}

impl Gemini {
    /// Gemini with an API key, sent in the `x-goog-api-key` header (the mode Google
    /// recommends: the key stays out of URLs). An empty key sends no header.
    pub fn new(key: impl Into<ApiKey>) -> Self {
        Self::with_auth(key.into(), Auth::KeyHeader)
    }

    /// Gemini with an API key sent as the `?key=` query parameter, for proxies and gateways
    /// that take nothing else. An empty key sends no parameter.
    ///
    /// The key is then part of every request URL. This crate never logs a URL nor puts one
    /// in an error or in `Debug` output, and [`endpoint`](Self::endpoint) leaves the key
    /// out; but proxies and servers on the way may log request lines, and so does
    /// reqwest's `connection_verbose` tracing. Prefer [`Gemini::new`] where it is accepted.
    pub fn with_query_key(key: impl Into<ApiKey>) -> Self {
        Self::with_auth(key.into(), Auth::KeyQuery)
    }

    /// Gemini with a bearer token, sent as `Authorization: Bearer {token}`: for Vertex AI
    /// (an OAuth 2 access token, e.g. from `gcloud auth print-access-token`) and for
    /// gateways that authenticate that way. An empty token sends no header.
    ///
    /// The token is sent as given: refreshing an expiring token is the caller's business
    /// (build a new provider, or set the header on a client you inject). For Vertex AI, set
    /// the publisher's base URL:
    ///
    /// ```
    /// use polyrelay::providers::Gemini;
    /// let vertex = Gemini::with_bearer("ya29.…").base_url(
    ///     "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1/publishers/google",
    /// );
    /// ```
    pub fn with_bearer(token: impl Into<ApiKey>) -> Self {
        Self::with_auth(token.into(), Auth::Bearer)
    }

    fn with_auth(key: ApiKey, auth: Auth) -> Self {
        let codec = GeminiCodec {
            base: urls(DEFAULT_BASE_URL, &key, auth),
            auth,
            key: ApiKey::new(""),
        };
        HttpProvider::from_codec(codec, key)
    }

    /// Gemini with the key from `GEMINI_API_KEY`, else `GOOGLE_API_KEY` (sent in the
    /// `x-goog-api-key` header); `None` when both are unset or empty.
    pub fn from_env() -> Option<Self> {
        ApiKey::from_env("GEMINI_API_KEY")
            .or_else(|| ApiKey::from_env("GOOGLE_API_KEY"))
            .map(Self::new)
    }

    /// Overrides the base URL (a proxy, Vertex AI, the simulator; default
    /// [`DEFAULT_BASE_URL`]): requests go to `{base_url}/models/{model}:generateContent`,
    /// with the base URL's query string (if any) after the path.
    pub fn base_url(mut self, base_url: &str) -> Self {
        let codec = &mut self.codec;
        codec.base = urls(base_url, &codec.key, codec.auth);
        self
    }

    /// The URL a request for `model` goes to. `model` may be `gemini-2.5-flash`,
    /// `models/gemini-2.5-flash` or `tunedModels/…`. In [`with_query_key`](Self::with_query_key)
    /// mode the `key` parameter is left out (it is added only when sending).
    pub fn endpoint(&self, model: &str, stream: bool) -> Result<String, Error> {
        let urls = self.codec.base.as_ref().map_err(BadBaseUrl::error)?;
        let path = model_path(model)?;
        let extra: &[(&str, &str)] = if stream { &[("alt", "sse")] } else { &[] };
        Ok(format!(
            "{}/{path}:{}{}",
            urls.base.prefix(),
            method(stream),
            urls.base.query_with(extra)
        ))
    }

    /// A sans-I/O decoder for this API's `?alt=sse` streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<GeminiEvents> {
        ChunkDecoder::new(GeminiEvents::new())
    }
}

/// Checks `base_url` and builds the query strings calls append to it.
fn urls(base_url: &str, key: &ApiKey, auth: Auth) -> Result<Urls, BadBaseUrl> {
    Ok(queries(BaseUrl::parse(base_url)?, key, auth))
}

/// The query strings calls append to `base` (with the key in [`Auth::KeyQuery`] mode).
fn queries(base: BaseUrl, key: &ApiKey, auth: Auth) -> Urls {
    let key = (auth == Auth::KeyQuery && !key.is_empty()).then(|| ("key", key.expose()));
    let send_query = [false, true].map(|stream| {
        let extra: Vec<(&str, &str)> = stream
            .then_some(("alt", "sse"))
            .into_iter()
            .chain(key)
            .collect();
        base.query_with(&extra)
    });
    Urls { base, send_query }
}

/// The API method for a plain or streamed call.
fn method(stream: bool) -> &'static str {
    if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{CallContext, Provider};
    use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

    impl Gemini {
        /// The URL a call is sent to, the key included where it goes in the URL.
        fn send_url(&self, model: &str, stream: bool) -> Result<String, Error> {
            self.call_url(model, stream).map(String::from)
        }
    }

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
    fn base_url_query_is_kept_and_merged() {
        let g = Gemini::new("k").base_url("https://proxy.internal/v1beta/?team=a#frag");
        assert_eq!(
            g.endpoint("gemini-2.5-flash", false).expect("url"),
            "https://proxy.internal/v1beta/models/gemini-2.5-flash:generateContent?team=a"
        );
        assert_eq!(
            g.endpoint("gemini-2.5-flash", true).expect("url"),
            "https://proxy.internal/v1beta/models/gemini-2.5-flash:streamGenerateContent?team=a&alt=sse"
        );
        assert_eq!(
            g.send_url("gemini-2.5-flash", true).expect("url"),
            g.endpoint("gemini-2.5-flash", true).expect("url")
        );
    }

    #[test]
    fn auth_modes_put_the_key_in_one_place() {
        let key = "AIzaSECRET";
        let header = Gemini::new(key);
        assert_eq!(header.headers[API_KEY_HEADER], key);
        assert!(header.headers.get(AUTHORIZATION).is_none());
        assert!(!header.send_url("m", true).expect("url").contains(key));

        let query = Gemini::with_query_key(key).base_url("http://h/v1beta?team=a");
        assert!(query.headers.get(API_KEY_HEADER).is_none());
        assert!(query.headers.get(AUTHORIZATION).is_none());
        assert_eq!(
            query.send_url("m", false).expect("url"),
            "http://h/v1beta/models/m:generateContent?team=a&key=AIzaSECRET"
        );
        assert_eq!(
            query.send_url("m", true).expect("url"),
            "http://h/v1beta/models/m:streamGenerateContent?team=a&alt=sse&key=AIzaSECRET"
        );
        assert!(!query.endpoint("m", true).expect("url").contains(key));

        let bearer = Gemini::with_bearer(key);
        assert_eq!(bearer.headers[AUTHORIZATION], "Bearer AIzaSECRET");
        assert!(bearer.headers[AUTHORIZATION].is_sensitive());
        assert!(bearer.headers.get(API_KEY_HEADER).is_none());
        assert!(!bearer.send_url("m", false).expect("url").contains(key));

        for g in [&header, &query, &bearer] {
            let shown = format!("{g:?}");
            assert!(!shown.contains(key), "{shown}");
            assert_eq!(g.headers[CONTENT_TYPE], "application/json");
            assert!(Provider::validate(g).is_ok());
        }
        // Replacing the built-in credential.
        let other = Gemini::with_bearer(key)
            .header("Authorization", "Bearer other")
            .expect("header");
        assert_eq!(other.headers.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(other.headers[AUTHORIZATION], "Bearer other");
    }

    #[test]
    fn bad_base_urls_are_config_errors_without_the_key() {
        let g = Gemini::with_query_key("AIzaSECRET").base_url("htp:/bad url?key=AIzaSECRET");
        let e = Provider::validate(&g).expect_err("bad url");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            g.endpoint("m", false).expect_err("bad url").kind(),
            ErrorKind::Config
        );
        let shown = format!("{e} {e:?} {g:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("does not parse"), "{shown}");
        let bad_key = Gemini::new("AIza\nSECRET\n");
        assert_eq!(
            Provider::validate(&bad_key).expect_err("key").kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn with_key_replaces_the_key_where_each_mode_puts_it() {
        let (old, new) = ("AIzaOLD", "AIzaNEW");
        let modes: [fn(ApiKey) -> Gemini; 3] =
            [Gemini::new, Gemini::with_query_key, Gemini::with_bearer];
        for mode in modes {
            let base = mode(ApiKey::new(old))
                .base_url("http://h/v1beta?team=a")
                .header("x-team", "support")
                .expect("header");
            let p = base.keyed(ApiKey::new(new));
            assert_eq!(p.codec.auth, base.codec.auth);
            assert_eq!(p.headers["x-team"], "support");
            assert_eq!(p.headers.len(), base.headers.len());
            let url = p.send_url("m", true).expect("url");
            let sent = format!("{url} {:?}", p.headers.values().collect::<Vec<_>>());
            assert!(!sent.contains(old), "{sent}");
            assert_eq!(p.endpoint("m", true).ok(), base.endpoint("m", true).ok());
            match p.codec.auth {
                Auth::KeyHeader => assert_eq!(p.headers[API_KEY_HEADER], new),
                Auth::Bearer => assert_eq!(p.headers[AUTHORIZATION], "Bearer AIzaNEW"),
                Auth::KeyQuery => assert_eq!(
                    url,
                    "http://h/v1beta/models/m:streamGenerateContent?team=a&alt=sse&key=AIzaNEW"
                ),
            }
            let shown = format!("{:?}", Provider::with_key(&base, ApiKey::new(new)));
            assert!(!shown.contains(new) && !shown.contains(old), "{shown}");
        }
        // A hand-set credential header of the mode's name is replaced too.
        let manual = Gemini::new("")
            .header("x-goog-api-key", old)
            .expect("header");
        assert_eq!(manual.keyed(ApiKey::new(new)).headers[API_KEY_HEADER], new);
        // An unsendable key is still caught; a bad base URL stays bad.
        let bad = Gemini::new(old).keyed(ApiKey::new("AIza\nNEW"));
        assert_eq!(
            Provider::validate(&bad).expect_err("key").kind(),
            ErrorKind::Config
        );
        let bad_url = Gemini::with_query_key(old)
            .base_url("not a url")
            .keyed(ApiKey::new(new));
        assert_eq!(
            Provider::validate(&bad_url).expect_err("url").kind(),
            ErrorKind::Config
        );
    }

    #[cfg(feature = "simulator")]
    #[tokio::test]
    async fn with_key_sends_the_new_key_over_http() {
        use crate::simulator::{Reply, Simulator};
        let sim = Simulator::start().await.expect("simulator");
        sim.set_default(Reply::text("hi"));
        let cx = CallContext::new(reqwest::Client::new());
        let req = ChatRequest::new("m").user("Hello?");
        let base_url = format!("{}/v1beta", sim.base_url());
        let modes: [fn(ApiKey) -> Gemini; 3] =
            [Gemini::new, Gemini::with_query_key, Gemini::with_bearer];
        for mode in modes {
            let base = mode(ApiKey::new("AIzaOLD"))
                .base_url(&base_url)
                .header("x-team", "support")
                .expect("header");
            let swapped = Provider::with_key(&base, ApiKey::new("AIzaNEW")).expect("swappable");
            sim.clear();
            let resp = swapped
                .chat(&req, "gemini-2.5-flash", &cx)
                .await
                .expect("answer");
            assert_eq!(resp.text(), "hi");
            Provider::chat(&base, &req, "gemini-2.5-flash", &cx)
                .await
                .expect("answer");
            let seen = sim.requests();
            let (new, old) = (&seen[0], &seen[1]);
            let sent =
                |r: &crate::simulator::RecordedRequest| format!("{} {:?}", r.path, r.headers);
            assert!(sent(new).contains("AIzaNEW"), "{}", sent(new));
            assert!(!sent(new).contains("AIzaOLD"), "{}", sent(new));
            assert!(sent(old).contains("AIzaOLD") && !sent(old).contains("AIzaNEW"));
            assert_eq!(new.header("x-team"), Some("support"));
            match base.codec.auth {
                Auth::KeyHeader => assert_eq!(new.header(API_KEY_HEADER), Some("AIzaNEW")),
                Auth::Bearer => assert_eq!(new.header("authorization"), Some("Bearer AIzaNEW")),
                Auth::KeyQuery => assert!(new.path.ends_with("?key=AIzaNEW"), "{}", new.path),
            }
        }
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
