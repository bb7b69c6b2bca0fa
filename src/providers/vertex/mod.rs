//! Google Vertex AI: Gemini on Vertex's paths, Claude through `rawPredict` /
//! `streamRawPredict`, and Vertex's OpenAI-compatible endpoint — codecs on the one
//! [`HttpProvider`](super::HttpProvider), with Google OAuth tokens ([`GoogleAuth`]).
//!
//! ```no_run
//! use polyrelay::providers::vertex::{GoogleAuth, VertexAnthropic, VertexGemini};
//! # fn main() -> Result<(), polyrelay::Error> {
//! let auth = GoogleAuth::service_account_file("key.json")?;
//! let gemini = VertexGemini::new("my-project", "us-central1", auth.clone());
//! let claude = VertexAnthropic::new("my-project", "global", auth.clone());
//! let compatible = polyrelay::providers::vertex::openai("my-project", "us-central1", auth);
//! # Ok(()) }
//! ```
//!
//! # Hosts and paths
//!
//! | location | host |
//! |---|---|
//! | `global` | `https://aiplatform.googleapis.com` |
//! | `us`, `eu` (multi-region) | `https://aiplatform.us.rep.googleapis.com`, `https://aiplatform.eu.rep.googleapis.com` |
//! | a region (`us-central1`, `europe-west4`…) | `https://{location}-aiplatform.googleapis.com` |
//!
//! Paths are under `/v1/projects/{project}/locations/{location}`:
//! `/publishers/google/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`)
//! for Gemini, `/publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict`) for
//! Claude (model ids with their `@version`: `claude-sonnet-4-5@20250929`), and
//! `/endpoints/openapi/chat/completions` for the OpenAI-compatible endpoint (model in the
//! body: `google/gemini-2.0-flash`, `meta/llama-3.3-70b-instruct-maas`). `base_url`
//! replaces the host (a Private Service Connect endpoint, a proxy, the simulator).
//!
//! A project or location outside Google's alphabet, a base URL that does not parse, or a
//! model id that would change the URL (`/`, `?`, `#`, `..`) is an
//! [`ErrorKind::Config`] error from
//! [`Provider::validate`](crate::Provider::validate) and from every call.
//!
//! # Credentials and key pools
//!
//! Every call carries `Authorization: Bearer {token}` from the provider's [`GoogleAuth`]
//! (see there for the sources, the cache and the refresh). In a
//! [`KeyPool`](crate::KeyPool) for a Vertex provider, each key is a credential of its own:
//! a credential file's JSON (a key starting with `{`: a service account or gcloud user
//! credentials, with its own token cache), else a fixed access token. A key that fails to
//! get a token (its token endpoint down, its key refused) is the key's fault: the pool
//! moves on to its next key, and the target's breaker is not charged while another key is
//! usable. A provider with no pool has one credential: its failures count for the target.
//!
//! # Errors
//!
//! Vertex answers `google.rpc.Status` (for Claude too; on streaming paths wrapped in a JSON
//! array), decoded as Gemini's errors are: `RESOURCE_EXHAUSTED` is
//! [`RateLimited`](crate::ErrorKind::RateLimited) with `RetryInfo.retryDelay` as the
//! retry-after, `UNAVAILABLE` [`Overloaded`](crate::ErrorKind::Overloaded), `PERMISSION_DENIED`
//! and `UNAUTHENTICATED` [`Auth`](crate::ErrorKind::Auth) (a fault of the credential, on this
//! model for a 403). A 401 whose body says `UNAUTHENTICATED` (`ACCESS_TOKEN_EXPIRED`) drops
//! the cached token and sends the call once more with a new one. Anthropic-shaped errors
//! (`{"type":"error"}`, and `event: error` in a stream) decode as Anthropic's.

/// The [`Codec`] methods the Vertex codecs share: their name, the place's checks, the
/// token at `sign`, the resend on an expired token, and answers and streams decoded by the
/// wrapped codec in `$inner`.
macro_rules! vertex_codec_common {
    ($inner:ident) => {
        fn name(&self) -> &str {
            super::NAME
        }

        /// Refuses a project, location or base URL that makes no URL.
        fn validate(&self) -> Result<(), Error> {
            self.place.validate()
        }

        /// None: the token goes in at [`sign`](Codec::sign).
        fn credential(&self) -> Option<KeyHeader> {
            None
        }

        /// A key pool's key replaces the [`GoogleAuth`]: a credential file's JSON, or a
        /// fixed access token.
        fn set_key(&mut self, key: &crate::secret::ApiKey) {
            self.place.set_key(key);
        }

        fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
            self.$inner.decode(body, key)
        }

        fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder {
            self.$inner.stream_decoder(key)
        }

        fn decode_stream_json(
            &self,
            body: &[u8],
            key: &Redactor<'_>,
        ) -> Result<crate::types::ChatStream, Error> {
            self.$inner.decode_stream_json(body, key)
        }

        /// `Authorization: Bearer` with the [`GoogleAuth`]'s current token.
        async fn sign(
            &self,
            request: &mut reqwest::Request,
            http: &reqwest::Client,
        ) -> Result<(), Error> {
            self.place.sign(request, http).await
        }

        /// A 401 saying the token expired: a new token, once.
        fn should_resend(&self, status: u16, _headers: &HeaderMap, body: &[u8]) -> bool {
            self.place.should_resend(status, body)
        }
    };
}

mod anthropic;
mod auth;
mod gemini;
mod openai;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::providers::base_url::{BadBaseUrl, BaseUrl};
use crate::providers::{Codec, Gemini, GeminiCodec, Redactor};
use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind};

pub use anthropic::{VertexAnthropic, VertexAnthropicCodec};
pub use auth::GoogleAuth;
pub use gemini::{VertexGemini, VertexGeminiCodec};
pub use openai::{VertexOpenAi, VertexOpenAiCodec, openai};

/// The codecs' name ([`Codec::name`](crate::providers::Codec::name)), the catalog's
/// provider for Vertex's model ids.
const NAME: &str = "vertex";

/// What the three Vertex codecs share: the project and location, the host, and the token.
#[derive(Clone)]
struct Place {
    project: String,
    location: String,
    /// `{host}/v1/projects/{p}/locations/{l}` (and the base URL's query), or why not.
    prefix: Result<Prefix, Error>,
    auth: GoogleAuth,
    /// Why a pool key could not become a credential (reported by `validate`).
    bad_key: Option<Error>,
    /// Gemini's codec, for Vertex's own `google.rpc.Status` errors.
    google: GeminiCodec,
}

#[derive(Clone)]
struct Prefix {
    base: BaseUrl,
    path: String,
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Vertex");
        d.field("project", &self.project)
            .field("location", &self.location);
        if let Ok(p) = &self.prefix {
            d.field("host", &p.base.shown());
        }
        d.field("auth", &self.auth).finish_non_exhaustive()
    }
}

/// The host for `location` (see the [module documentation](self)).
fn default_host(location: &str) -> String {
    match location {
        "global" => "https://aiplatform.googleapis.com".to_owned(),
        "us" | "eu" => format!("https://aiplatform.{location}.rep.googleapis.com"),
        region => format!("https://{region}-aiplatform.googleapis.com"),
    }
}

/// Whether `s` is a project id or location as Google spells them (letters, digits, `-`;
/// `.` and `:` for domain-scoped projects), so it cannot change the URL's meaning.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Place {
    fn new(project: &str, location: &str, auth: GoogleAuth) -> Place {
        let mut place = Place {
            project: project.to_owned(),
            location: location.to_owned(),
            prefix: Err(Error::new(ErrorKind::Config, "")),
            auth,
            bad_key: None,
            google: Gemini::with_bearer("").codec().clone(),
        };
        let host = default_host(location);
        place.set_host(&host);
        place
    }

    /// Replaces the host (scheme, authority and any path before `/v1/…`).
    fn set_host(&mut self, host: &str) {
        let (project, location) = (&self.project, &self.location);
        self.prefix = if !is_name(project) {
            Err(Error::new(
                ErrorKind::Config,
                format!("{project:?} is not a Google Cloud project id"),
            ))
        } else if location.is_empty()
            || !location
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            Err(Error::new(
                ErrorKind::Config,
                format!("{location:?} is not a Vertex AI location"),
            ))
        } else {
            BaseUrl::parse(host)
                .map(|base| Prefix {
                    path: format!(
                        "{}/v1/projects/{project}/locations/{location}",
                        base.prefix()
                    ),
                    base,
                })
                .map_err(|e: BadBaseUrl| e.error())
        };
    }

    fn validate(&self) -> Result<(), Error> {
        if let Some(e) = &self.bad_key {
            return Err(e.clone());
        }
        self.prefix.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// A key pool's key as this place's credential: a credential file's JSON (it starts
    /// with `{`), else a fixed access token. An empty key keeps the [`GoogleAuth`].
    fn set_key(&mut self, key: &ApiKey) {
        let text = key.expose().trim();
        if text.is_empty() {
            return;
        }
        self.bad_key = None;
        if text.starts_with('{') {
            match GoogleAuth::service_account_json(text) {
                Ok(auth) => self.auth = auth,
                Err(e) => self.bad_key = Some(e),
            }
        } else {
            self.auth = GoogleAuth::access_token(key.clone());
        }
    }

    /// `{prefix}{path}` with the base URL's query and `extra` pairs.
    fn url(&self, path: &str, extra: &[(&str, &str)]) -> Result<reqwest::Url, Error> {
        let p = self.prefix.as_ref().map_err(Clone::clone)?;
        let full = format!("{}{path}{}", p.path, p.base.query_with(extra));
        reqwest::Url::parse(&full).map_err(|e| {
            Error::new(ErrorKind::Config, "the Vertex AI URL does not parse").with_source(e)
        })
    }

    /// `{prefix}{sub}` with the base URL's query after it: the base URL a wrapped codec
    /// builds its endpoints on. Empty when the place makes no URL (which `validate` and
    /// every call report before the wrapped codec is used).
    fn base_for(&self, sub: &str) -> String {
        match &self.prefix {
            Ok(p) => format!("{}{sub}{}", p.path, p.base.query_with(&[])),
            Err(_) => String::new(),
        }
    }

    /// Puts the current token in `Authorization: Bearer` (marked sensitive).
    async fn sign(
        &self,
        request: &mut reqwest::Request,
        http: &reqwest::Client,
    ) -> Result<(), Error> {
        let token = self.auth.token(http).await?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| auth::auth_error("the Google access token cannot be sent in a header"))?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(())
    }

    /// A 401 that says the token is expired or not accepted: drop the token and try once
    /// more with a new one (not for a fixed token, which a new attempt cannot cure).
    fn should_resend(&self, status: u16, body: &[u8]) -> bool {
        if status != 401 {
            return false;
        }
        let says = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
        (says(b"ACCESS_TOKEN_EXPIRED") || says(b"UNAUTHENTICATED")) && self.auth.invalidate()
    }
}

impl Place {
    /// Vertex's own error (`google.rpc.Status`, possibly in a one-element array), decoded as
    /// Gemini's.
    fn google_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        self.google.decode_error(status, headers, body, key)
    }
}

/// Whether `body` is a `google.rpc.Status` error (`{"error": {"status": …}}`, or that in a
/// JSON array), rather than the publisher's own error shape.
fn is_google_status(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let root = match &v {
        serde_json::Value::Array(items) => items.first(),
        other => Some(other),
    };
    root.and_then(|r| r.get("error"))
        .and_then(|e| e.get("status"))
        .is_some_and(serde_json::Value::is_string)
}

/// Refuses a model id that would change the URL's meaning.
fn check_model(model: &str) -> Result<&str, Error> {
    let ok = !model.is_empty()
        && !model.contains("..")
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        return Ok(model);
    }
    Err(Error::new(
        ErrorKind::Config,
        format!("{model:?} is not a Vertex AI model id"),
    ))
}

#[cfg(test)]
mod tests;
