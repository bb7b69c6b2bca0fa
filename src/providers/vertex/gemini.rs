//! Gemini on Vertex AI: the Gemini codec's bodies, streams and errors on Vertex's paths.

use reqwest::Url;
use reqwest::header::HeaderMap;

use super::{GoogleAuth, Place, check_model};
use crate::providers::gemini::GeminiEvents;
use crate::providers::{
    ChunkDecoder, Codec, Gemini, GeminiCodec, HttpProvider, KeyHeader, Redactor,
};
use crate::types::{ChatRequest, ChatResponse, Error};

/// Gemini on Vertex AI: the [`HttpProvider`] over [`VertexGeminiCodec`].
///
/// Calls go to `…/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`
/// (streams: `:streamGenerateContent?alt=sse`) with a token from the [`GoogleAuth`]. The
/// bodies, streams and errors are [`Gemini`]'s (see [`crate::providers::gemini`]).
///
/// ```
/// use polyrelay::providers::vertex::{GoogleAuth, VertexGemini};
/// let gemini = VertexGemini::new("my-project", "global", GoogleAuth::access_token("ya29.…"));
/// ```
pub type VertexGemini = HttpProvider<VertexGeminiCodec>;

/// Gemini's wire format on Vertex AI's paths ([`Codec`]). Built through [`VertexGemini`].
#[derive(Clone)]
pub struct VertexGeminiCodec {
    place: Place,
    /// Gemini's codec with the publisher's URL as its base, for bodies, URLs and errors.
    gemini: GeminiCodec,
}

impl std::fmt::Debug for VertexGeminiCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VertexGemini").field(&self.place).finish()
    }
}

/// Gemini's codec posting under `place`'s Google publisher.
fn gemini_at(place: &Place) -> GeminiCodec {
    Gemini::with_bearer("")
        .base_url(&place.base_for("/publishers/google"))
        .codec()
        .clone()
}

impl VertexGemini {
    /// Gemini in `project` at `location` (`us-central1`, `global`, `eu`…), with tokens from
    /// `auth`. Nothing is checked or fetched here: [`Provider::validate`] reports a project,
    /// location or base URL that makes no URL, and the first call fetches a token.
    ///
    /// [`Provider::validate`]: crate::Provider::validate
    pub fn new(project: &str, location: &str, auth: GoogleAuth) -> Self {
        let place = Place::new(project, location, auth);
        let gemini = gemini_at(&place);
        HttpProvider::from_codec(VertexGeminiCodec { place, gemini }, "")
    }

    /// Replaces the host the location picks (default: see [`crate::providers::vertex`]) with
    /// `base_url` — a Private Service Connect endpoint, a proxy, the simulator. Paths
    /// (`/v1/projects/…`) go after it, its query string after them.
    pub fn base_url(mut self, base_url: &str) -> Self {
        let codec = self.codec_mut();
        codec.place.set_host(base_url);
        codec.gemini = gemini_at(&codec.place);
        self
    }
}

impl Codec for VertexGeminiCodec {
    type Decoder = ChunkDecoder<GeminiEvents>;

    vertex_codec_common!(gemini);

    fn url(&self, model: &str, stream: bool) -> Result<Url, Error> {
        self.place.validate()?;
        self.gemini.url(check_model(model)?, stream)
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        self.gemini.encode(req, model, stream)
    }

    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        self.gemini.decode_error(status, headers, body, key)
    }
}
