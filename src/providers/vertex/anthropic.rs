//! Claude on Vertex AI: Anthropic's Messages bodies through `rawPredict` /
//! `streamRawPredict`, the model in the URL.

use reqwest::Url;
use reqwest::header::HeaderMap;

use super::{GoogleAuth, Place, check_model};
use crate::providers::anthropic::{self, AnthropicEvents, DEFAULT_MAX_TOKENS};
use crate::providers::{
    Anthropic, AnthropicCodec, ChunkDecoder, Codec, HttpProvider, KeyHeader, Redactor,
};
use crate::types::{ChatRequest, ChatResponse, Error};

/// Claude on Vertex AI: the [`HttpProvider`] over [`VertexAnthropicCodec`].
///
/// Calls go to `…/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict`
/// (streams: `:streamRawPredict`), with the model id as Vertex names it
/// (`claude-sonnet-4-5@20250929`) and a token from the [`GoogleAuth`]. The body is
/// [`Anthropic`]'s without `model`, with `anthropic_version: "vertex-2023-10-16"`; answers
/// and streams decode as Anthropic's (see [`crate::providers::anthropic`]).
///
/// ```
/// use polyrelay::providers::vertex::{GoogleAuth, VertexAnthropic};
/// let claude = VertexAnthropic::new("my-project", "us-east5", GoogleAuth::access_token("ya29.…"))
///     .default_max_tokens(8192);
/// ```
pub type VertexAnthropic = HttpProvider<VertexAnthropicCodec>;

/// Anthropic's Messages wire format on Vertex AI's `rawPredict` ([`Codec`]). Built through
/// [`VertexAnthropic`].
#[derive(Clone)]
pub struct VertexAnthropicCodec {
    place: Place,
    /// Anthropic's codec, for answers, streams and Anthropic-shaped errors.
    anthropic: AnthropicCodec,
    default_max_tokens: u32,
}

impl std::fmt::Debug for VertexAnthropicCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VertexAnthropic")
            .field("place", &self.place)
            .field("default_max_tokens", &self.default_max_tokens)
            .finish()
    }
}

impl VertexAnthropic {
    /// Claude in `project` at `location` (`us-east5`, `europe-west1`, `global`…), with tokens
    /// from `auth`. Nothing is checked or fetched here: [`Provider::validate`] reports a
    /// project, location or base URL that makes no URL, and the first call fetches a token.
    ///
    /// [`Provider::validate`]: crate::Provider::validate
    pub fn new(project: &str, location: &str, auth: GoogleAuth) -> Self {
        let codec = VertexAnthropicCodec {
            place: Place::new(project, location, auth),
            anthropic: Anthropic::new("").codec().clone(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        };
        HttpProvider::from_codec(codec, "")
    }

    /// Replaces the host the location picks (see [`VertexGemini::base_url`](super::VertexGemini::base_url)).
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.codec_mut().place.set_host(base_url);
        self
    }

    /// `max_tokens` for requests that set no output limit (Anthropic requires one). Default
    /// [`DEFAULT_MAX_TOKENS`] (4096).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.codec_mut().default_max_tokens = max_tokens;
        self
    }
}

impl Codec for VertexAnthropicCodec {
    type Decoder = ChunkDecoder<AnthropicEvents>;

    vertex_codec_common!(anthropic);

    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        let method = if stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        let path = format!(
            "/publishers/anthropic/models/{}:{method}",
            check_model(model)?
        );
        self.place.url(&path, &[])
    }

    fn encode(&self, req: &ChatRequest, _model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        anthropic::encode_vertex_request(req, stream, self.default_max_tokens)
    }

    /// Vertex's `google.rpc.Status` (quota, auth; in an array on streaming paths) as
    /// Gemini's errors; Anthropic's `{"type":"error"}` as Anthropic's.
    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        if super::is_google_status(body) {
            return self.place.google_error(status, headers, body, key);
        }
        self.anthropic.decode_error(status, headers, body, key)
    }
}
