//! Vertex AI's OpenAI-compatible endpoint: the OpenAI codec on Vertex's path.

use reqwest::Url;
use reqwest::header::HeaderMap;

use super::{GoogleAuth, NAME, Place};
use crate::providers::openai::OpenAiEvents;
use crate::providers::{
    ChunkDecoder, Codec, HttpProvider, KeyHeader, OpenAi, OpenAiCodec, Redactor,
};
use crate::types::{ChatRequest, ChatResponse, Error};

/// Vertex AI's OpenAI-compatible endpoint: the [`HttpProvider`] over [`VertexOpenAiCodec`].
/// Built with [`openai`].
pub type VertexOpenAi = HttpProvider<VertexOpenAiCodec>;

/// The OpenAI Chat Completions wire format on Vertex AI's
/// `…/v1/projects/{project}/locations/{location}/endpoints/openapi/chat/completions` ([`Codec`]).
#[derive(Clone)]
pub struct VertexOpenAiCodec {
    place: Place,
    openai: OpenAiCodec,
}

impl std::fmt::Debug for VertexOpenAiCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VertexOpenAi").field(&self.place).finish()
    }
}

/// OpenAI's codec posting to `place`'s OpenAI-compatible endpoint.
fn openai_at(place: &Place) -> OpenAiCodec {
    let base = place.base_for("/endpoints/openapi");
    OpenAi::compatible(NAME, &base, "").codec().clone()
}

/// Vertex AI's OpenAI-compatible endpoint in `project` at `location`, with tokens from
/// `auth`. Models are named with their publisher: `google/gemini-2.0-flash`,
/// `meta/llama-3.3-70b-instruct-maas`. Requests and answers are OpenAI's
/// (see [`crate::providers::openai`]).
///
/// ```
/// use polyrelay::providers::vertex::{self, GoogleAuth};
/// let compatible = vertex::openai("my-project", "us-central1", GoogleAuth::access_token("ya29.…"));
/// ```
pub fn openai(project: &str, location: &str, auth: GoogleAuth) -> VertexOpenAi {
    VertexOpenAi::new(project, location, auth)
}

impl VertexOpenAi {
    /// The same as [`openai`].
    pub fn new(project: &str, location: &str, auth: GoogleAuth) -> Self {
        let place = Place::new(project, location, auth);
        let openai = openai_at(&place);
        HttpProvider::from_codec(VertexOpenAiCodec { place, openai }, "")
    }

    /// Replaces the host the location picks (see [`VertexGemini::base_url`](super::VertexGemini::base_url)).
    pub fn base_url(mut self, base_url: &str) -> Self {
        let codec = self.codec_mut();
        codec.place.set_host(base_url);
        codec.openai = openai_at(&codec.place);
        self
    }
}

impl Codec for VertexOpenAiCodec {
    type Decoder = ChunkDecoder<OpenAiEvents>;

    vertex_codec_common!(openai);

    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        self.place.validate()?;
        self.openai.url(model, stream)
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        self.openai.encode(req, model, stream)
    }

    /// Vertex's own `google.rpc.Status` errors (the endpoint's auth and quota layer) decode
    /// as Gemini's; the model's OpenAI-shaped errors as OpenAI's.
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
        self.openai.decode_error(status, headers, body, key)
    }
}
