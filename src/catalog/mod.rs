//! [`Catalog::builtin`] is a catalog of over a thousand chat models of the providers this crate
//! ships (OpenAI, Anthropic, Gemini, the OpenAI-compatible presets, and the clouds: `bedrock`
//! and `bedrock_mantle` by Bedrock's model and inference-profile ids, `vertex` by Vertex's ids),
//! embedded in the crate and
//! parsed once, on first use.
//!
//! # Source
//!
//! The built-in data is derived from LiteLLM's `model_prices_and_context_window.json` as shipped
//! in the PyPI package `litellm` 1.106.2 (file
//! `litellm/model_prices_and_context_window_backup.json`, MIT licence, (c) Berri AI), taken on
//! 2026-11-22; [`Catalog::source`] says so at run time. Only chat models of our providers are
//! kept, under the provider names our providers report (`openai`, `anthropic`, `gemini`,
//! `deepseek`, `qwen`, `together`, …) and the model ids their APIs take. Prices are in **USD
//! per million tokens**. Batch, priority, flex, audio and image prices are not carried.
//!
//! The data file is `src/catalog/catalog.json`. To rebuild it (after updating the copy of the
//! source in `tools/catalog-gen/source/`), run from the repository root:
//!
//! ```text
//! cargo run --manifest-path tools/catalog-gen/Cargo.toml --release
//! ```
//!
//! The generator is deterministic: the same input gives the same bytes.
//!
//! # Unknown model, unknown cost
//!
//! A model that is not in the catalog, or whose entry has no [`price`](ModelInfo::price), has
//! an *unknown* cost: [`ModelInfo::cost`] and lookups return `None`, never zero. Zero is a real
//! price here (local servers, free experimental models), not a placeholder.
//!
//! # Overriding and extending
//!
//! Negotiated prices, private deployments and models newer than the data are added with
//! [`Catalog::insert`] (which replaces an entry of the same provider and model) or
//! [`Catalog::with`]:
//!
//! ```
//! use polyrelay::catalog::{Catalog, ModelInfo, Price};
//!
//! let catalog = Catalog::builtin()
//!     .clone()
//!     .with(ModelInfo::new("openai", "gpt-4o").price(Price::per_million(2.0, 8.0)))
//!     .with(ModelInfo::new("vllm", "my-finetune").context_window(32_768));
//! assert_eq!(catalog.get("openai", "gpt-4o").and_then(|m| m.price.as_ref()).map(|p| p.input), Some(2.0));
//! assert!(catalog.get("vllm", "my-finetune").is_some());
//! ```
//!
//! A whole catalog of one's own can be read with [`Catalog::from_json`] (the format of
//! `catalog.json`; `source` may be left out). A [`Price`] also deserializes on its own, e.g.
//! from a config file: `{ input = 2.5, output = 10 }`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use crate::types::Usage;
use crate::types::{Error, ErrorKind};

/// The embedded data file (see the module documentation for its source).
const BUILTIN_JSON: &str = include_str!("catalog.json");

/// Providers tried, in this order, by [`Catalog::find`] for a bare model id whose first-party
/// vendor has no entry for it; providers not listed come after, sorted by name.
const PREFERENCE: &[&str] = &[
    "openai",
    "anthropic",
    "gemini",
    "deepseek",
    "mistral",
    "qwen",
    "xai",
    "zai",
    "moonshot",
    "perplexity",
    "groq",
    "cerebras",
    "together",
    "fireworks",
    "openrouter",
    "ollama",
    "vllm",
    "llama.cpp",
];

/// Model id prefixes (lowercase) → the vendor that makes the model, tried first by
/// [`Catalog::find`].
const FIRST_PARTY: &[(&str, &str)] = &[
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("ft:", "openai"),
    ("computer-use-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gemini"),
    ("gemma-", "gemini"),
    ("learnlm-", "gemini"),
    ("deepseek-", "deepseek"),
    ("mistral-", "mistral"),
    ("codestral-", "mistral"),
    ("devstral-", "mistral"),
    ("magistral-", "mistral"),
    ("ministral-", "mistral"),
    ("pixtral-", "mistral"),
    ("open-mistral-", "mistral"),
    ("open-mixtral-", "mistral"),
    ("qwen", "qwen"),
    ("qwq-", "qwen"),
    ("qvq-", "qwen"),
    ("grok-", "xai"),
    ("glm-", "zai"),
    ("kimi-", "moonshot"),
    ("moonshot-", "moonshot"),
    ("sonar", "perplexity"),
];

/// What a model costs, in USD per **million** tokens.
///
/// Optional rates fall back to the input rate when absent (see [`cost`](Self::cost)).
/// Deserializes from as little as `{"input": 2.5, "output": 10}`; unknown fields are an error,
/// so a misspelt rate cannot be silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens (reasoning included, unless [`reasoning`](Self::reasoning) is set).
    pub output: f64,
    /// Prompt tokens read from the vendor's cache; the input rate when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the vendor's cache; the input rate when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Reasoning tokens, when the vendor prices them apart from other output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// Long-context rates, each applying above a prompt size (see [`PriceTier`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<PriceTier>,
}

impl Price {
    /// A price of `input` and `output` USD per million tokens.
    ///
    /// ```
    /// use polyrelay::catalog::{Price, PriceTier};
    /// let price = Price::per_million(1.25, 10.0)
    ///     .cache_read(0.125)
    ///     .tier(PriceTier::above(200_000, 2.5, 15.0).cache_read(0.25));
    /// assert_eq!(price.tiers.len(), 1);
    /// ```
    pub fn per_million(input: f64, output: f64) -> Self {
        Price {
            input,
            output,
            ..Price::default()
        }
    }

    /// Sets the rate of prompt tokens read from the cache.
    pub fn cache_read(mut self, per_million: f64) -> Self {
        self.cache_read = Some(per_million);
        self
    }

    /// Sets the rate of prompt tokens written to the cache.
    pub fn cache_write(mut self, per_million: f64) -> Self {
        self.cache_write = Some(per_million);
        self
    }

    /// Prices reasoning tokens apart from other output.
    pub fn reasoning(mut self, per_million: f64) -> Self {
        self.reasoning = Some(per_million);
        self
    }

    /// Adds a long-context tier.
    pub fn tier(mut self, tier: PriceTier) -> Self {
        self.tiers.push(tier);
        self
    }

    /// What `usage` costs, in USD.
    ///
    /// * Input: [`uncached_input_tokens`](Usage::uncached_input_tokens) at `input`,
    ///   `cache_read_tokens` at `cache_read` and `cache_write_tokens` at `cache_write` (each
    ///   the input rate when unset).
    /// * Output: with a [`reasoning`](Self::reasoning) rate, `reasoning_tokens` at it and the
    ///   rest of `output_tokens` at `output`; without one, all `output_tokens` at `output`.
    /// * Tiers: the tier with the highest `above_input_tokens` strictly below
    ///   `usage.input_tokens` (all prompt tokens, cached ones included) replaces the input,
    ///   output and cache rates; cache rates it leaves unset are its own input rate. The
    ///   reasoning rate is not tiered.
    ///
    /// ```
    /// use polyrelay::Usage;
    /// use polyrelay::catalog::Price;
    /// let gpt_4o = Price::per_million(2.5, 10.0).cache_read(1.25);
    /// let mut usage = Usage::new(1_000_000, 100_000);
    /// usage.cache_read_tokens = 400_000;
    /// // 600k × 2.5 + 400k × 1.25 + 100k × 10, per million
    /// assert!((gpt_4o.cost(&usage) - 3.0).abs() < 1e-9);
    /// ```
    pub fn cost(&self, usage: &Usage) -> f64 {
        let (input, output, cache_read, cache_write) = match self.tier_for(usage.input_tokens) {
            Some(t) => (
                t.input,
                t.output,
                t.cache_read.unwrap_or(t.input),
                t.cache_write.unwrap_or(t.input),
            ),
            None => (
                self.input,
                self.output,
                self.cache_read.unwrap_or(self.input),
                self.cache_write.unwrap_or(self.input),
            ),
        };
        let output_cost = match self.reasoning {
            Some(reasoning) => {
                let thought = usage.reasoning_tokens.min(usage.output_tokens);
                count(thought) * reasoning + count(usage.output_tokens - thought) * output
            }
            None => count(usage.output_tokens) * output,
        };
        let input_cost = count(usage.uncached_input_tokens()) * input
            + count(usage.cache_read_tokens) * cache_read
            + count(usage.cache_write_tokens) * cache_write;
        (input_cost + output_cost) / 1_000_000.0
    }

    /// Input plus output rate: the figure the relay's cheapest-first strategy sorts by.
    pub(crate) fn blended(&self) -> f64 {
        self.input + self.output
    }

    /// The tier applying to a prompt of `input_tokens`, if any.
    fn tier_for(&self, input_tokens: u64) -> Option<&PriceTier> {
        self.tiers
            .iter()
            .filter(|t| t.above_input_tokens < input_tokens)
            .max_by_key(|t| t.above_input_tokens)
    }

    /// The first rate that is negative or not finite, by name.
    fn invalid_rate(&self) -> Option<&'static str> {
        let own = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("reasoning", self.reasoning),
        ];
        let tiers = self.tiers.iter().flat_map(|t| {
            [
                ("tiers.input", Some(t.input)),
                ("tiers.output", Some(t.output)),
                ("tiers.cache_read", t.cache_read),
                ("tiers.cache_write", t.cache_write),
            ]
        });
        own.into_iter()
            .chain(tiers)
            .find(|(_, rate)| rate.is_some_and(|r| !r.is_finite() || r < 0.0))
            .map(|(name, _)| name)
    }
}

/// Rates that apply instead of a [`Price`]'s own once a prompt (all input tokens, cached ones
/// included) is longer than `above_input_tokens`, e.g. Gemini 2.5 Pro above 200k tokens.
/// USD per million tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PriceTier {
    /// The tier applies to prompts of more than this many tokens.
    pub above_input_tokens: u64,
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens.
    pub output: f64,
    /// Prompt tokens read from the cache; this tier's input rate when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the cache; this tier's input rate when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

impl PriceTier {
    /// Rates of `input` and `output` USD per million tokens for prompts of more than `tokens`
    /// tokens.
    pub fn above(tokens: u64, input: f64, output: f64) -> Self {
        PriceTier {
            above_input_tokens: tokens,
            input,
            output,
            ..PriceTier::default()
        }
    }

    /// Sets this tier's rate of prompt tokens read from the cache.
    pub fn cache_read(mut self, per_million: f64) -> Self {
        self.cache_read = Some(per_million);
        self
    }

    /// Sets this tier's rate of prompt tokens written to the cache.
    pub fn cache_write(mut self, per_million: f64) -> Self {
        self.cache_write = Some(per_million);
        self
    }
}

/// What a model supports, as the source reports it (`false` also means "not reported").
///
/// The fields are public; set them on an entry directly:
///
/// ```
/// use polyrelay::catalog::ModelInfo;
/// let mut info = ModelInfo::new("vllm", "my-finetune").context_window(32_768);
/// info.capabilities.prefill = true;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Capabilities {
    /// Tool (function) calling.
    pub tools: bool,
    /// Image input.
    pub vision: bool,
    /// Structured output constrained by a JSON schema.
    pub json_schema: bool,
    /// Continuing a final assistant message (assistant prefill).
    pub prefill: bool,
    /// Reasoning ("thinking") before answering.
    pub reasoning: bool,
}

/// One model of one provider: its price, limits and capabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The provider's name as the provider reports it (`openai`, `anthropic`, `qwen`, …).
    pub provider: String,
    /// The model id the provider's API takes (`gpt-4o`, `accounts/fireworks/models/…`).
    pub model: String,
    /// What it costs; `None` when unknown (never read as zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Longest prompt, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Longest answer, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// What it supports.
    #[serde(default)]
    pub capabilities: Capabilities,
}

impl ModelInfo {
    /// An entry for `model` of `provider` with nothing known about it yet.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        ModelInfo {
            provider: provider.into(),
            model: model.into(),
            price: None,
            context_window: None,
            max_output_tokens: None,
            capabilities: Capabilities::default(),
        }
    }

    /// Sets the price.
    pub fn price(mut self, price: Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Sets the context window (longest prompt), in tokens.
    pub fn context_window(mut self, tokens: u32) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// Sets the longest answer, in tokens.
    pub fn max_output_tokens(mut self, tokens: u32) -> Self {
        self.max_output_tokens = Some(tokens);
        self
    }

    /// Sets the capabilities.
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// What `usage` costs on this model, in USD; `None` when its price is unknown.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        self.price.as_ref().map(|p| p.cost(usage))
    }
}

/// A token count as a float: through `i64`, one instruction on x86-64 (from `u64` it is a
/// branchy sequence, six times per priced call). Counts beyond `i64::MAX` do not occur.
fn count(tokens: u64) -> f64 {
    tokens.min(i64::MAX as u64) as i64 as f64
}

/// Where a catalog's data comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CatalogSource {
    /// What the data is (`LiteLLM model_prices_and_context_window.json`).
    pub name: String,
    /// Which release of it, and where in that release.
    pub package: String,
    /// Its licence and copyright holder.
    pub license: String,
    /// When it was taken (`YYYY-MM-DD`).
    pub taken: String,
    /// What turned it into this catalog.
    pub generated_by: String,
}

/// The file format of [`Catalog::from_json`] (and of the embedded `catalog.json`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    source: CatalogSource,
    models: Vec<ModelInfo>,
}

/// Models by provider and id, with O(1) lookups.
///
/// See the [module documentation](self) for where the built-in data comes from and how to
/// override it.
#[derive(Clone, Default)]
pub struct Catalog {
    source: CatalogSource,
    models: Vec<ModelInfo>,
    /// provider → model → index into `models`.
    exact: HashMap<String, HashMap<String, usize>>,
    /// Lowercased provider → lowercased model → index; the first entry of a spelling wins.
    folded: HashMap<String, HashMap<String, usize>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("source", &self.source)
            .field("models", &self.models.len())
            .field("providers", &self.providers())
            .finish()
    }
}

/// The built-in catalog behind an `Arc`, for relays that share it.
/// One parsed copy, shared by `builtin()` and every relay that uses it.
static BUILTIN: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    Arc::new(Catalog::from_json(BUILTIN_JSON).unwrap_or_else(|e| {
        // Cannot happen (a test parses the embedded file); an empty catalog beats a panic.
        tracing::error!(error = %e, "the embedded model catalog does not parse");
        Catalog::empty()
    }))
});

impl Catalog {
    /// The catalog embedded in the crate (see the [module documentation](self)), parsed on
    /// first use.
    pub fn builtin() -> &'static Catalog {
        &BUILTIN
    }

    /// The built-in catalog, shared (one copy for every relay that uses it).
    pub(crate) fn builtin_shared() -> Arc<Catalog> {
        BUILTIN.clone()
    }

    /// A catalog without models.
    pub fn empty() -> Self {
        Catalog::default()
    }

    /// Reads a catalog in the format of the embedded `catalog.json`:
    /// `{"source": {…}, "models": [{"provider": …, "model": …, "price": {…}, …}, …]}`
    /// (`source` is optional).
    ///
    /// Fails with [`ErrorKind::Config`] on invalid JSON, an unknown field, an empty provider
    /// or model, a negative price or one provider and model listed twice.
    pub fn from_json(json: &str) -> Result<Catalog, Error> {
        let file: CatalogFile = serde_json::from_str(json).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("model catalog is not valid: {e}"),
            )
            .with_source(e)
        })?;
        let mut catalog = Catalog {
            source: file.source,
            models: Vec::with_capacity(file.models.len()),
            exact: HashMap::new(),
            folded: HashMap::new(),
        };
        for (n, info) in file.models.into_iter().enumerate() {
            let invalid = |what: String| {
                Error::new(
                    ErrorKind::Config,
                    format!("model catalog is not valid: models[{n}]: {what}"),
                )
            };
            if info.provider.is_empty() || info.model.is_empty() {
                return Err(invalid("provider and model must not be empty".to_owned()));
            }
            if let Some(rate) = info.price.as_ref().and_then(Price::invalid_rate) {
                return Err(invalid(format!(
                    "{}/{}: price {rate} must be a non-negative number",
                    info.provider, info.model
                )));
            }
            if catalog.exact_index(&info.provider, &info.model).is_some() {
                return Err(invalid(format!(
                    "{}/{} is listed twice",
                    info.provider, info.model
                )));
            }
            catalog.push(info);
        }
        Ok(catalog)
    }

    /// Adds `info`, replacing the entry of the same provider and model (exact spelling) if
    /// there is one.
    pub fn insert(&mut self, info: ModelInfo) {
        match self.exact_index(&info.provider, &info.model) {
            Some(i) => self.models[i] = info,
            None => self.push(info),
        }
    }

    /// [`insert`](Self::insert), by value.
    pub fn with(mut self, info: ModelInfo) -> Self {
        self.insert(info);
        self
    }

    /// The entry for `model` of `provider`.
    ///
    /// Tried in order, each an O(1) lookup:
    /// 1. the exact provider and model;
    /// 2. the same, ignoring ASCII case (`GPT-4o` finds `gpt-4o`);
    /// 3. for a model id ending in a date — `-YYYY-MM-DD` or `-YYYYMMDD`, a year from 2000 —
    ///    the id without it (`claude-opus-4-8-20261201` finds `claude-opus-4-8`), exactly and
    ///    then ignoring case. Snapshots the catalog lists are found in step 1, so this only
    ///    serves snapshots newer than the data, which vendors price as their alias.
    ///
    /// 4. for a cloud's spelling of a model, the id it names, then that id without a date
    ///    suffix: an ARN (`arn:aws:bedrock:…:inference-profile/us.anthropic.…`) → the part
    ///    after its last `/`; then without a Bedrock inference-profile geography (`us.`, `eu.`,
    ///    `apac.`, `au.`, `jp.`, `ca.`, `us-gov.`, `global.`) when the catalog has no entry
    ///    for the profile id itself (profiles the data prices are found in step 1); a Vertex
    ///    `@version` (`claude-sonnet-4-5@20250929` → `claude-sonnet-4-5` when the version is
    ///    not listed); a Vertex publisher prefix (`google/gemini-2.5-flash`).
    ///
    /// Nothing else is guessed: no prefix matching, no other provider.
    pub fn get(&self, provider: &str, model: &str) -> Option<&ModelInfo> {
        self.lookup(provider, model)
            .or_else(|| self.lookup(provider, strip_date_suffix(model)?))
            .or_else(|| {
                let mut id = model;
                for strip in [strip_arn, strip_geography, strip_version, strip_publisher] {
                    if let Some(shorter) = strip(id) {
                        id = shorter;
                        let found = self
                            .lookup(provider, id)
                            .or_else(|| self.lookup(provider, strip_date_suffix(id)?));
                        if found.is_some() {
                            return found;
                        }
                    }
                }
                None
            })
            .map(|i| &self.models[i])
    }

    /// The entry for `model` of any provider.
    ///
    /// * `provider/model` (`openai/gpt-4o`): that provider's entry, through
    ///   [`get`](Self::get). When there is none, the whole string is also tried as a model
    ///   id, since some hosts' ids contain `/` (`meta-llama/Llama-3.3-70B-Instruct-Turbo` on
    ///   Together, `openai/gpt-oss-120b` on Groq).
    /// * A bare model id: first the vendor that makes it, known from the id's prefix (`gpt-`,
    ///   `o1`/`o3`/`o4` → `openai`, `claude-` → `anthropic`, `gemini-`/`gemma-` → `gemini`,
    ///   `deepseek-` → `deepseek`, `mistral-`/`codestral-`/… → `mistral`, `qwen`/`qwq-` →
    ///   `qwen`, `grok-` → `xai`, `glm-` → `zai`, `kimi-`/`moonshot-` → `moonshot`, `sonar` →
    ///   `perplexity`); then the providers in this order: openai, anthropic, gemini, deepseek,
    ///   mistral, qwen, xai, zai, moonshot, perplexity, groq, cerebras, together, fireworks,
    ///   openrouter, ollama, vllm, llama.cpp; then any other provider, by name.
    ///
    /// Each step is a [`get`](Self::get), so case and date suffixes are handled as there.
    pub fn find(&self, model: &str) -> Option<&ModelInfo> {
        if let Some((provider, rest)) = model.split_once('/')
            && let Some(found) = self.get(provider, rest)
        {
            return Some(found);
        }
        let lower = fold(model);
        let first_party = FIRST_PARTY
            .iter()
            .find(|(prefix, _)| lower.starts_with(prefix))
            .map(|(_, vendor)| *vendor);
        if let Some(found) = first_party.and_then(|vendor| self.get(vendor, model)) {
            return Some(found);
        }
        if let Some(found) = PREFERENCE
            .iter()
            .filter(|p| Some(**p) != first_party)
            .find_map(|p| self.get(p, model))
        {
            return Some(found);
        }
        // Empty, so no allocation, unless the catalog has providers of its own.
        let mut others: Vec<&str> = self
            .exact
            .keys()
            .map(String::as_str)
            .filter(|p| !PREFERENCE.contains(p))
            .collect();
        others.sort_unstable();
        others.into_iter().find_map(|p| self.get(p, model))
    }

    /// Every entry, in the order they were read or inserted (the embedded catalog: by
    /// provider, then model).
    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.iter()
    }

    /// The providers that have entries, sorted, each once.
    pub fn providers(&self) -> Vec<&str> {
        let mut providers: Vec<&str> = self.exact.keys().map(String::as_str).collect();
        providers.sort_unstable();
        providers
    }

    /// Whether `provider` (exact spelling, as [`providers`](Self::providers) lists it) has
    /// entries. One lookup, no allocation.
    pub fn has_provider(&self, provider: &str) -> bool {
        self.exact.contains_key(provider)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Where the data comes from (empty for a catalog built from nothing).
    pub fn source(&self) -> &CatalogSource {
        &self.source
    }

    fn exact_index(&self, provider: &str, model: &str) -> Option<usize> {
        self.exact.get(provider)?.get(model).copied()
    }

    fn lookup(&self, provider: &str, model: &str) -> Option<usize> {
        self.exact_index(provider, model).or_else(|| {
            self.folded
                .get(fold(provider).as_ref())?
                .get(fold(model).as_ref())
                .copied()
        })
    }

    /// Appends a new entry (not already in `exact`) and indexes it.
    fn push(&mut self, info: ModelInfo) {
        let i = self.models.len();
        self.exact
            .entry(info.provider.clone())
            .or_default()
            .insert(info.model.clone(), i);
        self.folded
            .entry(info.provider.to_ascii_lowercase())
            .or_default()
            .entry(info.model.to_ascii_lowercase())
            .or_insert(i);
        self.models.push(info);
    }
}

/// `s` in ASCII lowercase, borrowed when it already is (most ids are).
fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The resource an ARN names (`arn:aws:bedrock:us-east-1:…:inference-profile/us.x` →
/// `us.x`), or `None` for anything else.
fn strip_arn(model: &str) -> Option<&str> {
    if !model.starts_with("arn:") {
        return None;
    }
    model
        .rsplit_once('/')
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
}

/// A Bedrock inference-profile id without its geography (`us.anthropic.x` → `anthropic.x`).
fn strip_geography(model: &str) -> Option<&str> {
    const GEOGRAPHIES: &[&str] = &[
        "us.", "eu.", "apac.", "au.", "jp.", "ca.", "us-gov.", "global.",
    ];
    GEOGRAPHIES
        .iter()
        .find_map(|g| model.strip_prefix(g))
        .filter(|rest| rest.contains('.'))
}

/// A Vertex model id without its `@version` (`claude-sonnet-4-5@20250929`).
fn strip_version(model: &str) -> Option<&str> {
    model
        .split_once('@')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

/// A Vertex OpenAI-compatible id without its publisher (`google/gemini-2.5-flash`).
fn strip_publisher(model: &str) -> Option<&str> {
    model.strip_prefix("google/")
}

/// `model` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD` (year 2000–2099, a real month and
/// day number), or `None` when it has no such suffix.
fn strip_date_suffix(model: &str) -> Option<&str> {
    fn number(digits: &[u8]) -> Option<u32> {
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    }
    fn is_date(year: &[u8], month: &[u8], day: &[u8]) -> bool {
        year.starts_with(b"20")
            && number(year).is_some()
            && matches!(number(month), Some(1..=12))
            && matches!(number(day), Some(1..=31))
    }
    // Byte positions only: every byte compared or parsed is ASCII, so the cut is a char
    // boundary (and `get` would refuse one that is not).
    let b = model.as_bytes();
    let n = b.len();
    if n > 11
        && b[n - 11] == b'-'
        && b[n - 6] == b'-'
        && b[n - 3] == b'-'
        && is_date(&b[n - 10..n - 6], &b[n - 5..n - 3], &b[n - 2..])
    {
        return model.get(..n - 11);
    }
    if n > 9 && b[n - 9] == b'-' && is_date(&b[n - 8..n - 4], &b[n - 4..n - 2], &b[n - 2..]) {
        return model.get(..n - 9);
    }
    None
}

#[cfg(test)]
mod tests;
