//! OpenAI Chat Completions, and every vendor that speaks it (DeepSeek, Mistral, Qwen,
//! OpenRouter, Groq, Together, xAI, Fireworks, Moonshot, Cerebras, Perplexity, and local
//! Ollama, vLLM and llama.cpp servers).

mod stream;
mod wire;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName};

use crate::http::classify;
use crate::providers::base_url::{BadBaseUrl, BaseUrl, Endpoint};
use crate::providers::{ChunkDecoder, Codec, HttpProvider, KeyHeader, Redactor};
use crate::secret::ApiKey;
use crate::types::Error;
use crate::types::{ChatRequest, ChatResponse};

pub use stream::OpenAiEvents;

/// Decodes an OpenAI-family error response (any HTTP status, headers and body) into a typed
/// [`Error`]: kind, status, vendor code and message, request id, `Retry-After`.
pub fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    classify::http_error(status, headers, body, &|s| s.to_owned())
}
use wire::RequestQuirks;
pub use wire::decode_response;

/// Encodes `req` for `model` as an OpenAI Chat Completions request body (with
/// `stream_options.include_usage` when `stream`).
pub fn encode_request(req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
    wire::encode_request(req, model, stream, RequestQuirks::default())
}

/// A named OpenAI-compatible vendor: its default base URL, the environment variable its key
/// is read from, and its request quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preset {
    /// Vendor name, used as `gen_ai.provider.name`.
    pub name: &'static str,
    /// Default base URL (the part before `/chat/completions`).
    pub base_url: &'static str,
    /// Environment variable holding the API key (empty for servers that need none).
    pub key_env: &'static str,
    quirks: RequestQuirks,
}

const fn preset(name: &'static str, base_url: &'static str, key_env: &'static str) -> Preset {
    Preset {
        name,
        base_url,
        key_env,
        quirks: RequestQuirks {
            stream_options: true,
            max_completion_tokens: false,
        },
    }
}

impl Preset {
    /// OpenAI.
    pub const OPENAI: Preset = Preset {
        quirks: RequestQuirks {
            stream_options: true,
            max_completion_tokens: true,
        },
        ..preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY")
    };
    /// DeepSeek.
    pub const DEEPSEEK: Preset = preset(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
    );
    /// Mistral (rejects `stream_options`; sends usage on the finish chunk anyway).
    pub const MISTRAL: Preset = Preset {
        quirks: RequestQuirks {
            stream_options: false,
            max_completion_tokens: false,
        },
        ..preset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY")
    };
    /// Qwen through Alibaba Cloud DashScope's OpenAI-compatible mode (international endpoint).
    pub const QWEN: Preset = preset(
        "qwen",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
    );
    /// OpenRouter.
    pub const OPENROUTER: Preset = preset(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
    );
    /// Groq.
    pub const GROQ: Preset = preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY");
    /// Together AI.
    pub const TOGETHER: Preset = preset(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
    );
    /// xAI (Grok).
    pub const XAI: Preset = preset("xai", "https://api.x.ai/v1", "XAI_API_KEY");
    /// Fireworks AI.
    pub const FIREWORKS: Preset = preset(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
    );
    /// Moonshot (Kimi).
    pub const MOONSHOT: Preset =
        preset("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY");
    /// Cerebras.
    pub const CEREBRAS: Preset =
        preset("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY");
    /// Perplexity (repeats usage on every chunk; no `stream_options`).
    pub const PERPLEXITY: Preset = Preset {
        quirks: RequestQuirks {
            stream_options: false,
            max_completion_tokens: false,
        },
        ..preset(
            "perplexity",
            "https://api.perplexity.ai",
            "PERPLEXITY_API_KEY",
        )
    };
    /// Z.ai (GLM).
    pub const ZAI: Preset = preset("zai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY");
    /// A local Ollama server.
    pub const OLLAMA: Preset = preset("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY");
    /// A local vLLM server.
    pub const VLLM: Preset = preset("vllm", "http://localhost:8000/v1", "VLLM_API_KEY");
    /// A local llama.cpp server (`llama-server`).
    pub const LLAMA_CPP: Preset = preset("llama.cpp", "http://localhost:8080/v1", "LLAMA_API_KEY");

    /// Every preset, for lookup by name (e.g. from a config file).
    pub const ALL: &'static [Preset] = &[
        Preset::OPENAI,
        Preset::DEEPSEEK,
        Preset::MISTRAL,
        Preset::QWEN,
        Preset::OPENROUTER,
        Preset::GROQ,
        Preset::TOGETHER,
        Preset::XAI,
        Preset::FIREWORKS,
        Preset::MOONSHOT,
        Preset::CEREBRAS,
        Preset::PERPLEXITY,
        Preset::ZAI,
        Preset::OLLAMA,
        Preset::VLLM,
        Preset::LLAMA_CPP,
    ];

    /// The preset called `name`, if any.
    pub fn by_name(name: &str) -> Option<Preset> {
        Preset::ALL.iter().copied().find(|p| p.name == name)
    }
}

/// A provider for OpenAI's Chat Completions API and every API compatible with it: the
/// [`HttpProvider`] over [`OpenAiCodec`].
///
/// ```
/// use polyrelay::providers::OpenAi;
/// let openai = OpenAi::new("sk-…");
/// let deepseek = OpenAi::deepseek("sk-…");
/// let local = OpenAi::ollama();
/// let other = OpenAi::compatible("acme", "https://llm.acme.internal/v1", "key")
///     .header("x-team", "support").unwrap();
/// let azure = OpenAi::azure("my-resource", "gpt-4o-prod", "2024-10-21", "azure-key");
/// ```
///
/// # Authentication
///
/// The key goes in `Authorization: Bearer {key}` ([`azure`](Self::azure): in `api-key`). An
/// empty key sends no credential header at all (local servers, or a gateway authenticated by
/// a [`header`](HttpProvider::header) of your own). A header of the same name
/// (case-insensitive) replaces the built-in one: `.header("authorization", "Bearer …")`
/// overrides the key's bearer, `.header("api-key", …)` the Azure key header.
///
/// # Base URLs
///
/// Requests go to `{base_url}/chat/completions`. A base URL may carry a query string, which
/// is kept after the path: `https://gw.internal/v1?tenant=a` posts to
/// `https://gw.internal/v1/chat/completions?tenant=a`. A base URL that is not an absolute
/// `http(s)` URL does not make the constructor fail: [`Provider::validate`] (which the
/// relay's builder calls) and every call report it as an [`ErrorKind::Config`] error.
///
/// [`ErrorKind::Config`]: crate::ErrorKind::Config
/// [`Provider::validate`]: crate::Provider::validate
pub type OpenAi = HttpProvider<OpenAiCodec>;

/// The OpenAI Chat Completions wire format ([`Codec`]), with a vendor's name, endpoint, key
/// header and request quirks. Built through [`OpenAi`]'s constructors.
#[derive(Clone)]
pub struct OpenAiCodec {
    name: String,
    /// The whole endpoint, parsed once: it does not depend on the model.
    endpoint: Endpoint,
    /// Where the key goes, so that [`Provider::with_key`](crate::Provider::with_key) can put
    /// another key there.
    auth: KeyPlace,
    quirks: RequestQuirks,
}

/// The header the key is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyPlace {
    /// `Authorization: Bearer {key}`.
    Bearer,
    /// Azure's `api-key: {key}`.
    Azure,
}

impl KeyPlace {
    /// The header and its prefix.
    fn header(self) -> KeyHeader {
        match self {
            KeyPlace::Bearer => KeyHeader::bearer(),
            KeyPlace::Azure => KeyHeader::new(HeaderName::from_static(AZURE_KEY_HEADER)),
        }
    }
}

impl std::fmt::Debug for OpenAiCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.endpoint.shown();
        f.debug_struct("OpenAi")
            .field("name", &self.name)
            .field("url", &url)
            .finish_non_exhaustive()
    }
}

impl Codec for OpenAiCodec {
    type Decoder = ChunkDecoder<OpenAiEvents>;

    fn name(&self) -> &str {
        &self.name
    }

    /// Refuses a base URL that does not parse.
    fn validate(&self) -> Result<(), Error> {
        self.endpoint.check()
    }

    /// `Authorization: Bearer {key}`, or Azure's `api-key`.
    fn credential(&self) -> Option<KeyHeader> {
        Some(self.auth.header())
    }

    fn url(&self, _model: &str, _stream: bool) -> Result<Url, Error> {
        self.endpoint.url()
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        wire::encode_request(req, model, stream, self.quirks)
    }

    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        wire::decode_response_with(body, &|s| key.redact(s))
    }

    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        classify::http_error(status, headers, body, &|s| key.redact(s))
    }

    fn stream_decoder(&self, _key: &Redactor<'_>) -> Self::Decoder {
        ChunkDecoder::new(OpenAiEvents::new())
    }
}

macro_rules! preset_ctors {
    ($($(#[$doc:meta])* $fn:ident => $preset:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $fn(key: impl Into<ApiKey>) -> Self {
                Self::from_preset(Preset::$preset, key)
            }
        )*
    };
}

impl OpenAi {
    /// OpenAI with an API key (sent as `Authorization: Bearer {key}`; an empty key sends no
    /// `Authorization` header).
    pub fn new(key: impl Into<ApiKey>) -> Self {
        Self::from_preset(Preset::OPENAI, key)
    }

    preset_ctors! {
        /// DeepSeek with an API key.
        deepseek => DEEPSEEK,
        /// Mistral with an API key.
        mistral => MISTRAL,
        /// Qwen (DashScope compatible mode) with an API key.
        qwen => QWEN,
        /// OpenRouter with an API key.
        openrouter => OPENROUTER,
        /// Groq with an API key.
        groq => GROQ,
        /// Together AI with an API key.
        together => TOGETHER,
        /// xAI with an API key.
        xai => XAI,
        /// Fireworks AI with an API key.
        fireworks => FIREWORKS,
        /// Moonshot with an API key.
        moonshot => MOONSHOT,
        /// Cerebras with an API key.
        cerebras => CEREBRAS,
        /// Perplexity with an API key.
        perplexity => PERPLEXITY,
        /// Z.ai with an API key.
        zai => ZAI,
    }

    /// A local Ollama server (no key).
    pub fn ollama() -> Self {
        Self::from_preset(Preset::OLLAMA, "")
    }

    /// A local vLLM server (no key).
    pub fn vllm() -> Self {
        Self::from_preset(Preset::VLLM, "")
    }

    /// A local llama.cpp server (no key).
    pub fn llama_cpp() -> Self {
        Self::from_preset(Preset::LLAMA_CPP, "")
    }

    /// A vendor from its preset. The key is sent as `Authorization: Bearer {key}`; an empty
    /// key sends no `Authorization` header.
    pub fn from_preset(preset: Preset, key: impl Into<ApiKey>) -> Self {
        let codec = OpenAiCodec {
            name: preset.name.to_owned(),
            endpoint: chat_endpoint(BaseUrl::parse(preset.base_url)),
            auth: KeyPlace::Bearer,
            quirks: preset.quirks,
        };
        HttpProvider::from_codec(codec, key)
    }

    /// A vendor from its preset with the key read from the preset's environment variable;
    /// `None` when the variable is unset or empty.
    pub fn from_env(preset: Preset) -> Option<Self> {
        ApiKey::from_env(preset.key_env).map(|k| Self::from_preset(preset, k))
    }

    /// Any OpenAI-compatible API by base URL (the part before `/chat/completions`; a query
    /// string is kept after the path). The key is sent as `Authorization: Bearer {key}`; an
    /// empty key sends no `Authorization` header.
    pub fn compatible(name: impl Into<String>, base_url: &str, key: impl Into<ApiKey>) -> Self {
        let mut p = Self::from_preset(Preset::OPENAI, key);
        let codec = p.codec_mut();
        codec.name = name.into();
        codec.quirks = RequestQuirks::default();
        codec.endpoint = chat_endpoint(BaseUrl::parse(base_url));
        p
    }

    /// Azure OpenAI, through a deployment: requests go to
    /// `https://{resource}.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version={api_version}`
    /// with the key in the `api-key` header (not `Authorization`).
    ///
    /// `resource` is the Azure resource name (`my-resource`), or the resource's endpoint as
    /// a URL for other hosts (`https://my-resource.cognitiveservices.azure.com`, a gateway):
    /// anything containing `://` is taken as the URL the `/openai/deployments/…` path is
    /// appended to. The deployment name is percent-encoded into the path. An empty
    /// `api_version` sends no `api-version` parameter (for a gateway that adds its own).
    ///
    /// Azure picks the model from the deployment and ignores the body's `model`, which is
    /// sent anyway. The provider is named `azure`; requests are sent as to OpenAI
    /// (`max_completion_tokens` as given, `stream_options.include_usage` for streams: turn
    /// that off with [`stream_usage(false)`](Self::stream_usage) for API versions older
    /// than `2024-09-01-preview`).
    ///
    /// An empty key sends no `api-key` header: with Microsoft Entra ID, pass `""` and set
    /// `.header("authorization", "Bearer {token}")`. A resource, deployment or URL that cannot
    /// make a valid URL is reported by [`Provider::validate`](crate::Provider::validate) and
    /// by every call, as an [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    ///
    /// ```
    /// use polyrelay::{ApiKey, providers::OpenAi};
    /// let key = ApiKey::from_env("AZURE_OPENAI_API_KEY").unwrap_or_else(|| ApiKey::new(""));
    /// let azure = OpenAi::azure("my-resource", "gpt-4o-prod", "2024-10-21", key);
    /// assert_eq!(
    ///     azure.url(),
    ///     "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    /// );
    /// ```
    pub fn azure(
        resource: &str,
        deployment: &str,
        api_version: &str,
        key: impl Into<ApiKey>,
    ) -> Self {
        let codec = OpenAiCodec {
            name: "azure".to_owned(),
            endpoint: chat_endpoint(azure_base(resource, deployment, api_version)),
            auth: KeyPlace::Azure,
            quirks: Preset::OPENAI.quirks,
        };
        HttpProvider::from_codec(codec, key)
    }

    /// Overrides the base URL (a proxy, a regional endpoint, the simulator): requests go to
    /// `{base_url}/chat/completions`, followed by the base URL's query string if it has one.
    /// On an [`azure`](Self::azure) provider this replaces the whole deployment URL.
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.codec_mut().endpoint = chat_endpoint(BaseUrl::parse(base_url));
        self
    }

    /// Whether to send `stream_options.include_usage` (on by default where the vendor accepts it).
    pub fn stream_usage(mut self, on: bool) -> Self {
        self.codec_mut().quirks.stream_options = on;
        self
    }

    /// The endpoint URL requests go to, with the base URL's query string (which may hold a
    /// credential: do not log it); empty when the base URL was refused (see
    /// [`Provider::validate`](crate::Provider::validate)).
    pub fn url(&self) -> &str {
        self.codec().endpoint.as_str()
    }

    /// A sans-I/O decoder for this API's streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<OpenAiEvents> {
        ChunkDecoder::new(OpenAiEvents::new())
    }
}

/// Azure's API key header.
const AZURE_KEY_HEADER: &str = "api-key";

/// `{base}/chat/completions`, keeping the base URL's query after the path.
fn chat_endpoint(base: Result<BaseUrl, BadBaseUrl>) -> Endpoint {
    Endpoint::new(base, "/chat/completions")
}

/// `{resource endpoint}/openai/deployments/{deployment}?api-version={api_version}`.
fn azure_base(resource: &str, deployment: &str, api_version: &str) -> Result<BaseUrl, BadBaseUrl> {
    let root = if resource.contains("://") {
        resource.to_owned()
    } else if !resource.is_empty()
        && resource
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        format!("https://{resource}.openai.azure.com")
    } else {
        return Err(BadBaseUrl::new(
            resource,
            "not an Azure resource name (letters, digits and '-') nor an http(s) URL",
        ));
    };
    if deployment.is_empty() || matches!(deployment, "." | "..") {
        return Err(BadBaseUrl::new(
            &root,
            format!("{deployment:?} is not an Azure deployment name"),
        ));
    }
    let mut url = Url::parse(&root).map_err(|e| BadBaseUrl::new(&root, e.to_string()))?;
    // Checked before the path is touched: only http(s) URLs are sure to have segments.
    BaseUrl::check(&url, &root)?;
    if let Ok(mut segments) = url.path_segments_mut() {
        // `extend` percent-encodes each segment, so a deployment name cannot add a path.
        segments
            .pop_if_empty()
            .extend(["openai", "deployments", deployment]);
    }
    if !api_version.is_empty() {
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
    }
    let shown = url.as_str().to_owned();
    BaseUrl::from_url(url, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{CallContext, Provider};
    use crate::types::ErrorKind;
    use reqwest::header::AUTHORIZATION;

    #[test]
    fn base_url_query_goes_after_the_path() {
        let p = OpenAi::compatible("gw", "https://gw.internal/v1/?tenant=a#x", "k");
        assert_eq!(p.url(), "https://gw.internal/v1/chat/completions?tenant=a");
        assert_eq!(
            OpenAi::new("k").url(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            OpenAi::new("k").base_url("http://127.0.0.1:9").url(),
            "http://127.0.0.1:9/chat/completions"
        );
    }

    #[test]
    fn azure_deployment_urls() {
        let p = OpenAi::azure("my-res", "gpt-4o", "2024-10-21", "azkey");
        assert_eq!(
            p.url(),
            "https://my-res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(Provider::name(&p), "azure");
        assert_eq!(p.headers[AZURE_KEY_HEADER], "azkey");
        assert!(p.headers[AZURE_KEY_HEADER].is_sensitive());
        assert!(p.headers.get(AUTHORIZATION).is_none());
        let gw = OpenAi::azure(
            "https://gw.internal/azure/?tenant=a",
            "dep/../x y",
            "2025-01-01-preview",
            "",
        );
        assert_eq!(
            gw.url(),
            "https://gw.internal/azure/openai/deployments/dep%2F..%2Fx%20y/chat/completions?tenant=a&api-version=2025-01-01-preview"
        );
        assert!(gw.headers.get(AZURE_KEY_HEADER).is_none());
        for (resource, deployment) in [("a b", "d"), ("a.b", "d"), ("r", ""), ("r", ".")] {
            let p = OpenAi::azure(resource, deployment, "v", "k");
            assert_eq!(p.url(), "");
            let e = Provider::validate(&p).expect_err(resource);
            assert_eq!(e.kind(), ErrorKind::Config);
        }
    }

    #[test]
    fn header_replaces_the_bearer() {
        let p = OpenAi::new("sk-secret")
            .header("Authorization", "Bearer other")
            .expect("header");
        assert_eq!(p.headers.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(p.headers[AUTHORIZATION], "Bearer other");
        assert!(OpenAi::ollama().headers.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn bad_configuration_is_reported_without_secrets() {
        for bad in ["", "not a url", "htp:/bad url", "ftp://h/v1"] {
            let p = OpenAi::new("sk-secret").base_url(bad);
            let e = Provider::validate(&p).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains("does not parse"), "{e}");
        }
        let p = OpenAi::compatible("gw", "htp://h/v1?key=sk-secret", "sk-secret");
        let shown = format!("{:?} {p:?}", Provider::validate(&p));
        assert!(!shown.contains("sk-secret"), "{shown}");
        let p = OpenAi::compatible("gw", "https://h/v1?key=sk-secret", "k");
        let shown = format!("{p:?}");
        assert!(
            shown.contains("https://h/v1/chat/completions?key=[REDACTED]"),
            "{shown}"
        );
        let p = OpenAi::new("sk-secret\n");
        assert_eq!(
            Provider::validate(&p).expect_err("key").kind(),
            ErrorKind::Config
        );
        assert!(Provider::validate(&OpenAi::new("sk-secret")).is_ok());
    }

    #[test]
    fn with_key_replaces_the_credential_header_only() {
        let base = OpenAi::new("sk-old-key")
            .header("content-type", "application/json; charset=utf-8")
            .and_then(|p| p.header("x-team", "support"))
            .expect("headers")
            .base_url("https://gw.internal/v1?tenant=a");
        let p = base.keyed(ApiKey::new("sk-new-key"));
        assert_eq!(p.headers.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(p.headers[AUTHORIZATION], "Bearer sk-new-key");
        assert!(p.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(p.headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(p.headers["x-team"], "support");
        assert_eq!(p.headers.len(), base.headers.len());
        assert_eq!(p.url(), base.url());
        assert_eq!(p.codec.name, base.codec.name);
        assert_eq!(base.headers[AUTHORIZATION], "Bearer sk-old-key");
        let shown = format!("{:?}", base.with_key(ApiKey::new("sk-new-key")));
        assert!(!shown.contains("sk-new-key"), "{shown}");
        // A hand-set Authorization is the credential too: the new key replaces it.
        let manual = OpenAi::new("k").header("authorization", "Bearer manual");
        let p = manual.expect("header").keyed(ApiKey::new("sk-new-key"));
        assert_eq!(p.headers[AUTHORIZATION], "Bearer sk-new-key");
        // Azure's header; an Entra `authorization` set by hand stays.
        let azure = OpenAi::azure("res", "dep", "v", "")
            .header("authorization", "Bearer entra")
            .expect("header")
            .keyed(ApiKey::new("az-new"));
        assert_eq!(azure.headers[AZURE_KEY_HEADER], "az-new");
        assert_eq!(azure.headers[AUTHORIZATION], "Bearer entra");
        // An unsendable key is still caught, and a good one clears a bad one.
        let bad = base
            .with_key(ApiKey::new("sk-new\nkey"))
            .expect("swappable");
        let e = bad.validate().expect_err("unsendable");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!format!("{e} {e:?} {bad:?}").contains("sk-new"));
        let fixed = OpenAi::new("sk-bad\n").with_key(ApiKey::new("sk-good"));
        assert!(fixed.expect("swappable").validate().is_ok());
        // An empty key sends no credential, as at construction.
        let none = base.keyed(ApiKey::new(""));
        assert!(none.headers.get(AUTHORIZATION).is_none());
    }

    #[cfg(feature = "simulator")]
    #[tokio::test]
    async fn with_key_sends_the_new_key_over_http() {
        use crate::simulator::{Reply, Simulator};
        let sim = Simulator::start().await.expect("simulator");
        sim.set_default(Reply::text("hi"));
        let cx = CallContext::new(reqwest::Client::new());
        let req = ChatRequest::new("m").user("Hello?");
        let cases = [
            (
                OpenAi::compatible("gw", &format!("{}/v1", sim.base_url()), "sk-old-key"),
                "authorization",
                "Bearer sk-new-key",
            ),
            (
                OpenAi::azure(&sim.base_url(), "dep", "2024-10-21", "sk-old-key"),
                AZURE_KEY_HEADER,
                "sk-new-key",
            ),
        ];
        for (base, header, expected) in cases {
            let base = base.header("x-team", "support").expect("header");
            let swapped = base.with_key(ApiKey::new("sk-new-key")).expect("swappable");
            sim.clear();
            let resp = swapped.chat(&req, "m", &cx).await.expect("answer");
            assert_eq!(resp.text(), "hi");
            base.chat(&req, "m", &cx).await.expect("answer");
            let seen = sim.requests();
            let (new, old) = (&seen[0], &seen[1]);
            assert_eq!(new.header(header), Some(expected));
            assert_eq!(new.header("x-team"), Some("support"));
            let leaked = new.headers.iter().any(|(_, v)| v.contains("sk-old-key"));
            assert!(!leaked, "{:?}", new.headers);
            assert_eq!(new.path, old.path);
            // The original provider keeps its own key.
            assert!(old.header(header).is_some_and(|v| v.contains("sk-old-key")));
        }
    }
}
