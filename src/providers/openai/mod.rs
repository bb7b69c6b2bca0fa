//! OpenAI Chat Completions, and every vendor that speaks it (DeepSeek, Mistral, Qwen,
//! OpenRouter, Groq, Together, xAI, Fireworks, Moonshot, Cerebras, Perplexity, and local
//! Ollama, vLLM and llama.cpp servers).

mod stream;
mod wire;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap};

use crate::error::Error;
use crate::http::classify;
use crate::provider::{CallContext, Provider};
use crate::providers::{ChunkDecoder, transport};
use crate::secret::ApiKey;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

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

/// A provider for OpenAI's Chat Completions API and every API compatible with it.
///
/// ```
/// use polyrelay::providers::OpenAi;
/// let openai = OpenAi::new("sk-…");
/// let deepseek = OpenAi::deepseek("sk-…");
/// let local = OpenAi::ollama();
/// let other = OpenAi::compatible("acme", "https://llm.acme.internal/v1", "key")
///     .header("x-team", "support").unwrap();
/// ```
#[derive(Clone)]
pub struct OpenAi {
    name: String,
    url: String,
    headers: HeaderMap,
    key: ApiKey,
    quirks: RequestQuirks,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
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
    /// OpenAI with an API key.
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

    /// A vendor from its preset.
    pub fn from_preset(preset: Preset, key: impl Into<ApiKey>) -> Self {
        let mut p = OpenAi {
            name: preset.name.to_owned(),
            url: String::new(),
            headers: HeaderMap::new(),
            key: key.into(),
            quirks: preset.quirks,
        };
        p.set_base_url(preset.base_url);
        p.set_auth();
        p
    }

    /// A vendor from its preset with the key read from the preset's environment variable;
    /// `None` when the variable is unset or empty.
    pub fn from_env(preset: Preset) -> Option<Self> {
        ApiKey::from_env(preset.key_env).map(|k| Self::from_preset(preset, k))
    }

    /// Any OpenAI-compatible API by base URL (the part before `/chat/completions`).
    pub fn compatible(name: impl Into<String>, base_url: &str, key: impl Into<ApiKey>) -> Self {
        let mut p = Self::from_preset(Preset::OPENAI, key);
        p.name = name.into();
        p.quirks = RequestQuirks::default();
        p.set_base_url(base_url);
        p
    }

    /// Overrides the base URL (a proxy, a regional endpoint, the simulator).
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.set_base_url(base_url);
        self
    }

    /// Adds a header to every request (e.g. OpenRouter's `HTTP-Referer`, an org id).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        transport::insert_header(&mut self.headers, name, value)?;
        Ok(self)
    }

    /// Whether to send `stream_options.include_usage` (on by default where the vendor accepts it).
    pub fn stream_usage(mut self, on: bool) -> Self {
        self.quirks.stream_options = on;
        self
    }

    /// The endpoint URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A sans-I/O decoder for this API's streams (bytes in, chunks out).
    pub fn stream_decoder() -> ChunkDecoder<OpenAiEvents> {
        ChunkDecoder::new(OpenAiEvents::new())
    }

    fn set_base_url(&mut self, base_url: &str) {
        self.url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    }

    fn set_auth(&mut self) {
        let bearer = if self.key.is_empty() {
            String::new()
        } else {
            format!("Bearer {}", self.key.expose())
        };
        transport::auth_headers(&mut self.headers, AUTHORIZATION, &bearer);
    }

    async fn send(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
        cx: &CallContext,
    ) -> Result<reqwest::Response, Error> {
        let body = wire::encode_request(req, model, stream, self.quirks)?;
        transport::post_json(
            cx,
            &self.url,
            &self.headers,
            body,
            |status, headers, body| {
                classify::http_error(status, headers, body, &|s| self.key.redact(s))
            },
        )
        .await
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
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
        // A server that ignored `stream: true` and answered JSON is served as chunks.
        transport::open_stream(resp, OpenAiEvents::new(), |body| {
            wire::decode_response_with(body, &|s| self.key.redact(s)).map(transport::stream_of)
        })
        .await
    }
}
