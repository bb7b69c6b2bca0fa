//! Regenerates polyrelay's model catalog (`src/catalog/catalog.json`) from LiteLLM's
//! `model_prices_and_context_window.json`.
//!
//! ```text
//! cargo run --manifest-path tools/catalog-gen/Cargo.toml --release [-- [--check] [INPUT [OUTPUT]]]
//! ```
//!
//! INPUT defaults to `tools/catalog-gen/source/model_prices_and_context_window.json`, OUTPUT to
//! `src/catalog/catalog.json`. With `--check` nothing is written: the run fails when OUTPUT
//! differs from what INPUT generates.
//!
//! What is kept: entries with `mode == "chat"` whose `litellm_provider` maps to one of
//! polyrelay's provider names ([`PROVIDERS`]). Prices are converted from USD per token to USD
//! per million tokens by shifting the decimal point (no binary rounding noise), and the output
//! is sorted by provider then model, one model per line, so the same input always gives the
//! same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value};

/// Provenance written into the catalog's `source` object.
const SOURCE: Source = Source {
    name: "LiteLLM model_prices_and_context_window.json",
    package: "litellm 1.106.2 (PyPI), litellm/model_prices_and_context_window_backup.json",
    license: "MIT, (c) Berri AI",
    taken: "2026-11-22",
    generated_by: "tools/catalog-gen",
};

/// LiteLLM's `litellm_provider` → polyrelay's provider name (the name a provider reports,
/// `Preset::name` for the OpenAI-compatible ones).
///
/// Qwen: LiteLLM lists the same Alibaba Model Studio models under three names —
/// `qwencloud` (international brand), `qwen_ai_platform` (mainland-China brand) and
/// `dashscope` (the legacy name, an alias of both). All three use the ids DashScope's
/// OpenAI-compatible endpoint (`/compatible-mode/v1`) takes (`qwen-plus`, `qwen3-max`, …) and
/// carry the same figures; `dashscope` is the superset, so it is the one read.
/// [`QWEN_CROSS_CHECK`] is compared against it and any disagreement is reported.
///
/// Clouds: Bedrock's Converse and InvokeModel entries (`bedrock_converse`, `bedrock`) are one
/// provider, `bedrock`, keyed by the model id Bedrock takes (inference-profile ids such as
/// `us.anthropic…` included); region- and commitment-specific entries (`bedrock/us-gov-east-1/…`,
/// `…/1-month-commitment/…`) are left out. Every `vertex_ai*` family is `vertex`, keyed by the
/// id Vertex takes (`claude-sonnet-4-5@20250929`, `gemini-2.5-flash`, `meta/llama-…-maas`).
const PROVIDERS: &[(&str, &str)] = &[
    ("anthropic", "anthropic"),
    ("bedrock", "bedrock"),
    ("bedrock_converse", "bedrock"),
    ("bedrock_mantle", "bedrock_mantle"),
    ("cerebras", "cerebras"),
    ("dashscope", "qwen"),
    ("deepseek", "deepseek"),
    ("fireworks_ai", "fireworks"),
    ("gemini", "gemini"),
    ("groq", "groq"),
    ("hosted_vllm", "vllm"),
    ("mistral", "mistral"),
    ("moonshot", "moonshot"),
    ("ollama", "ollama"),
    ("openai", "openai"),
    ("openrouter", "openrouter"),
    ("perplexity", "perplexity"),
    ("together_ai", "together"),
    ("vertex_ai", "vertex"),
    ("vertex_ai-ai21_models", "vertex"),
    ("vertex_ai-anthropic_models", "vertex"),
    ("vertex_ai-deepseek_models", "vertex"),
    ("vertex_ai-language-models", "vertex"),
    ("vertex_ai-llama_models", "vertex"),
    ("vertex_ai-minimax_models", "vertex"),
    ("vertex_ai-mistral_models", "vertex"),
    ("vertex_ai-moonshot_models", "vertex"),
    ("vertex_ai-openai_models", "vertex"),
    ("vertex_ai-qwen_models", "vertex"),
    ("vertex_ai-zai_models", "vertex"),
    ("xai", "xai"),
    ("zai", "zai"),
];

/// LiteLLM providers carrying the same Qwen models as `dashscope`, checked against it.
const QWEN_CROSS_CHECK: &[&str] = &["qwencloud", "qwen_ai_platform"];

/// Key prefixes that are not model ids: LiteLLM's Together AI price buckets by model size
/// (`together-ai-up-to-4b`, `together-ai-8.1b-21b`, …).
const NOT_MODELS: &[&str] = &["together-ai-"];

/// Per-token cost keys read into a tier (`<key>_above_<N>k_tokens`).
const TIER_KEYS: &[&str] = &[
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
];

#[derive(Serialize)]
struct Source {
    name: &'static str,
    package: &'static str,
    license: &'static str,
    taken: &'static str,
    generated_by: &'static str,
}

#[derive(Serialize, Clone, PartialEq, Debug)]
struct Model {
    provider: String,
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context_window: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    capabilities: Capabilities,
}

#[derive(Serialize, Clone, PartialEq, Debug)]
struct Price {
    input: f64,
    output: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_write: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tiers: Vec<Tier>,
}

#[derive(Serialize, Clone, PartialEq, Debug)]
struct Tier {
    above_input_tokens: u64,
    input: f64,
    output: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_write: Option<f64>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Debug, Default)]
struct Capabilities {
    tools: bool,
    vision: bool,
    json_schema: bool,
    prefill: bool,
    reasoning: bool,
}

struct Args {
    input: PathBuf,
    output: PathBuf,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // tools/catalog-gen → the repository root.
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    let mut positional = Vec::new();
    let mut check = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                return Err("usage: catalog-gen [--check] [INPUT [OUTPUT]]\n\
                     INPUT  default tools/catalog-gen/source/model_prices_and_context_window.json\n\
                     OUTPUT default src/catalog/catalog.json"
                    .to_owned());
            }
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    if positional.len() > 2 {
        return Err("at most two paths: INPUT OUTPUT".to_owned());
    }
    let mut positional = positional.into_iter();
    Ok(Args {
        input: positional
            .next()
            .unwrap_or_else(|| manifest.join("source/model_prices_and_context_window.json")),
        output: positional
            .next()
            .unwrap_or_else(|| root.join("src/catalog/catalog.json")),
        check,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("catalog-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("reading {}: {e}", args.input.display()))?;
    let root: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| format!("parsing {}: {e}", args.input.display()))?;

    let models = extract(&root)?;
    cross_check_qwen(&root, &models);
    let out = render(&models)?;

    // Every provider mapped, zeros included (a mapping that yields nothing shows).
    let mut counts: BTreeMap<&str, usize> = PROVIDERS.iter().map(|(_, ours)| (*ours, 0)).collect();
    for m in &models {
        *counts.entry(m.provider.as_str()).or_default() += 1;
    }
    println!("models per provider:");
    for (p, n) in &counts {
        println!("  {p:<12} {n}");
    }
    let with_models = counts.values().filter(|n| **n > 0).count();
    let priced = models.iter().filter(|m| m.price.is_some()).count();
    let tiered = models
        .iter()
        .filter(|m| m.price.as_ref().is_some_and(|p| !p.tiers.is_empty()))
        .count();
    println!(
        "total: {} chat models ({priced} priced, {tiered} with tiers) from {with_models} providers, {} bytes",
        models.len(),
        out.len()
    );

    if args.check {
        let current = std::fs::read_to_string(&args.output).unwrap_or_default();
        if current == out {
            println!("{} is up to date", args.output.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("{} is stale: rerun without --check", args.output.display());
        return Ok(ExitCode::FAILURE);
    }
    std::fs::write(&args.output, &out)
        .map_err(|e| format!("writing {}: {e}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Every kept model, sorted by (provider, model), one entry per pair.
fn extract(root: &Map<String, Value>) -> Result<Vec<Model>, String> {
    // (provider, model) → (rank of the key it came from, model).
    let mut kept: BTreeMap<(String, String), (u8, Model)> = BTreeMap::new();
    for ChatEntry {
        key,
        litellm,
        id,
        prefixed,
        entry,
    } in chat_entries(root)
    {
        let Some(ours) = our_name(litellm) else {
            continue;
        };
        if id.is_empty() || NOT_MODELS.iter().any(|p| id.starts_with(p)) {
            continue;
        }
        // A Bedrock id never has a `/`: these are one region's or one commitment's prices.
        if ours.starts_with("bedrock") && id.contains('/') {
            continue;
        }
        let model_id = api_id(ours, id);
        // LiteLLM sometimes lists a model twice: bare (`deepseek-chat`) and prefixed
        // (`deepseek/deepseek-chat`), or for Fireworks short (`fireworks_ai/glm-5p1`) and full
        // (`fireworks_ai/accounts/fireworks/models/glm-5p1`). The prefixed entry is the
        // provider-specific one, and an id as the API takes it beats one LiteLLM rewrites.
        let rank = match (prefixed, model_id == id) {
            (true, true) => 2,
            (true, false) => 1,
            (false, _) => 0,
        };
        let Some(model) = convert(ours, &model_id, entry).map_err(|e| format!("{key}: {e}"))?
        else {
            continue;
        };
        let slot = (ours.to_owned(), model_id);
        match kept.get(&slot) {
            Some((r, _)) if *r > rank => {}
            Some((r, _)) if *r == rank => {
                return Err(format!("{key}: a second entry for {}/{}", slot.0, slot.1));
            }
            _ => {
                kept.insert(slot, (rank, model));
            }
        }
    }
    Ok(kept.into_values().map(|(_, m)| m).collect())
}

/// The id the provider's API takes for LiteLLM's `id`. Fireworks only takes full ids
/// (`accounts/fireworks/models/…`); LiteLLM completes short ones the way done here (its
/// `FireworksAIConfig.transform_request`: `-fast` models are routers).
fn api_id(provider: &str, id: &str) -> String {
    if provider == "fireworks" && !id.starts_with("accounts/") && !id.contains('#') {
        if id.ends_with("-fast") {
            return format!("accounts/fireworks/routers/{id}");
        }
        return format!("accounts/fireworks/models/{id}");
    }
    id.to_owned()
}

/// Our name for LiteLLM's provider `litellm`, for the providers we map.
fn our_name(litellm: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .find(|(l, _)| *l == litellm)
        .map(|(_, ours)| *ours)
}

/// One `mode == "chat"` entry of LiteLLM's file.
struct ChatEntry<'a> {
    key: &'a str,
    /// Its `litellm_provider`.
    litellm: &'a str,
    /// The key without a leading `<litellm_provider>/`.
    id: &'a str,
    /// Whether the key had that prefix.
    prefixed: bool,
    entry: &'a Map<String, Value>,
}

fn chat_entries(root: &Map<String, Value>) -> impl Iterator<Item = ChatEntry<'_>> {
    root.iter().filter_map(|(key, entry)| {
        let entry = entry.as_object()?;
        if entry.get("mode").and_then(Value::as_str) != Some("chat") {
            return None;
        }
        let litellm = entry.get("litellm_provider")?.as_str()?;
        // Vertex's families (`vertex_ai-anthropic_models`…) prefix their keys `vertex_ai/`.
        let family = if litellm.starts_with("vertex_ai") {
            "vertex_ai"
        } else {
            litellm
        };
        let rest = key.strip_prefix(family).and_then(|k| k.strip_prefix('/'));
        Some(ChatEntry {
            key,
            litellm,
            id: rest.unwrap_or(key),
            prefixed: rest.is_some(),
            entry,
        })
    })
}

/// One LiteLLM entry as a catalog model; `None` for an entry that carries no facts we keep.
fn convert(
    provider: &str,
    model: &str,
    entry: &Map<String, Value>,
) -> Result<Option<Model>, String> {
    let price = price(entry)?;
    let context_window = tokens(entry, "max_input_tokens")?.or(tokens(entry, "max_tokens")?);
    let max_output_tokens = tokens(entry, "max_output_tokens")?;
    let flag = |k: &str| entry.get(k).and_then(Value::as_bool).unwrap_or(false);
    let capabilities = Capabilities {
        tools: flag("supports_function_calling"),
        vision: flag("supports_vision"),
        json_schema: flag("supports_response_schema"),
        prefill: flag("supports_assistant_prefill"),
        reasoning: flag("supports_reasoning"),
    };
    // e.g. OpenAI's `container` (code-interpreter sessions): not a model.
    if price.is_none()
        && context_window.is_none()
        && max_output_tokens.is_none()
        && capabilities == Capabilities::default()
    {
        return Ok(None);
    }
    Ok(Some(Model {
        provider: provider.to_owned(),
        model: model.to_owned(),
        price,
        context_window,
        max_output_tokens,
        capabilities,
    }))
}

/// A token count field, which must fit a u32.
fn tokens(entry: &Map<String, Value>, key: &str) -> Result<Option<u32>, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| format!("{key} is not a token count: {v}"))?;
            u32::try_from(n)
                .map(Some)
                .map_err(|_| format!("{key} {n} does not fit a u32"))
        }
    }
}

/// A per-token cost as USD per million tokens.
fn cost(entry: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let f = v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| format!("{key} is not a non-negative number: {v}"))?;
            per_million(f).map(Some)
        }
    }
}

/// `per_token × 10⁶`, computed on the decimal text so `2.5e-6` becomes exactly `2.5` (a float
/// multiplication would give `2.4999999999999996`).
fn per_million(per_token: f64) -> Result<f64, String> {
    // `{:e}` prints the shortest digits that round-trip: "2.5e-6", "1e-5", "0e0".
    let text = format!("{per_token:e}");
    let (mantissa, exp) = text
        .split_once('e')
        .ok_or_else(|| format!("unexpected float text {text}"))?;
    let exp: i32 = exp
        .parse()
        .map_err(|_| format!("unexpected float text {text}"))?;
    format!("{mantissa}e{}", exp + 6)
        .parse()
        .map_err(|_| format!("unexpected float text {text}"))
}

/// The rates of `obj` whose keys end in `suffix` (`""` for the flat price); `None` when it has
/// neither an input nor an output cost.
fn rates(obj: &Map<String, Value>, suffix: &str) -> Result<Option<Price>, String> {
    let rate = |k: &str| cost(obj, &format!("{k}{suffix}"));
    match (
        rate("input_cost_per_token")?,
        rate("output_cost_per_token")?,
    ) {
        (Some(input), Some(output)) => Ok(Some(Price {
            input,
            output,
            cache_read: rate("cache_read_input_token_cost")?,
            cache_write: rate("cache_creation_input_token_cost")?,
            reasoning: rate("output_cost_per_reasoning_token")?,
            tiers: Vec::new(),
        })),
        (None, None) => Ok(None),
        // Input priced by another unit (Bedrock's video models: per second of video): no
        // token price to carry.
        (None, Some(_))
            if obj
                .keys()
                .any(|k| k.starts_with("input_cost_per_") && !k.contains("token")) =>
        {
            Ok(None)
        }
        _ => Err(format!(
            "input_cost_per_token{suffix} and output_cost_per_token{suffix} must come together"
        )),
    }
}

/// `p`'s rates as a tier above `above` tokens. A tier's own reasoning rate has no field in
/// the catalog; the base rate applies.
fn tier(above: u64, p: &Price) -> Tier {
    Tier {
        above_input_tokens: above,
        input: p.input,
        output: p.output,
        cache_read: p.cache_read,
        cache_write: p.cache_write,
    }
}

fn price(entry: &Map<String, Value>) -> Result<Option<Price>, String> {
    let flat = rates(entry, "")?;

    // LiteLLM's `tiered_pricing`: [{range: [lo, hi], input_cost_per_token, …}, …].
    let mut ranges: Vec<(u64, Price)> = Vec::new();
    if let Some(list) = entry.get("tiered_pricing") {
        let list = list
            .as_array()
            .ok_or("tiered_pricing is not a list".to_owned())?;
        for t in list {
            let t = t
                .as_object()
                .ok_or("tiered_pricing entry is not an object".to_owned())?;
            let lo = t
                .get("range")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(Value::as_f64)
                .filter(|lo| *lo >= 0.0 && lo.fract() == 0.0)
                .ok_or("tiered_pricing entry without a range".to_owned())?
                as u64;
            let p = rates(t, "")?
                .ok_or("tiered_pricing entry without input and output cost".to_owned())?;
            ranges.push((lo, p));
        }
        ranges.sort_by_key(|(lo, _)| *lo);
    }

    let mut base = match flat {
        Some(p) => p,
        None => match ranges.first() {
            Some((0, p)) => p.clone(),
            Some(_) => return Err("tiered_pricing does not start at 0".to_owned()),
            None => return Ok(None),
        },
    };

    let mut tiers: BTreeMap<u64, Tier> = ranges
        .iter()
        .filter(|(lo, _)| *lo > 0)
        .map(|(lo, p)| (*lo, tier(*lo, p)))
        .collect();

    // `<cost key>_above_<N>k_tokens`, exactly (not `…_batches`, `…_priority`, `…_1hr`…).
    let mut thresholds: Vec<u64> = entry
        .keys()
        .filter_map(|k| {
            TIER_KEYS.iter().find_map(|base_key| {
                k.strip_prefix(base_key)?
                    .strip_prefix("_above_")?
                    .strip_suffix("k_tokens")?
                    .parse::<u64>()
                    .ok()
            })
        })
        .collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    for n in thresholds {
        let p = rates(entry, &format!("_above_{n}k_tokens"))?
            .ok_or_else(|| format!("tier above {n}k without both input and output cost"))?;
        if tiers.insert(n * 1000, tier(n * 1000, &p)).is_some() {
            return Err(format!("two tiers above {n}k"));
        }
    }
    // A tier that changes nothing (Gemini's experimental models list zeros for both) is noise.
    tiers.retain(|_, t| {
        (t.input, t.output, t.cache_read, t.cache_write)
            != (base.input, base.output, base.cache_read, base.cache_write)
    });
    base.tiers = tiers.into_values().collect();
    Ok(Some(base))
}

/// Reports Qwen entries of `qwencloud`/`qwen_ai_platform` that disagree with `dashscope`'s.
fn cross_check_qwen(root: &Map<String, Value>, models: &[Model]) {
    let qwen: BTreeMap<&str, &Model> = models
        .iter()
        .filter(|m| m.provider == "qwen")
        .map(|m| (m.model.as_str(), m))
        .collect();
    for other in QWEN_CROSS_CHECK {
        let (mut same, mut differ, mut missing) = (0, Vec::new(), 0);
        for ChatEntry { id, entry, .. } in chat_entries(root).filter(|e| e.litellm == *other) {
            match (qwen.get(id), convert("qwen", id, entry)) {
                (Some(ours), Ok(Some(theirs))) if **ours == theirs => same += 1,
                (Some(_), _) => differ.push(id.to_owned()),
                (None, _) => missing += 1,
            }
        }
        println!(
            "qwen cross-check: {other}: {same} same as dashscope, {} differ{}, {missing} not in dashscope",
            differ.len(),
            if differ.is_empty() {
                String::new()
            } else {
                format!(" ({})", differ.join(", "))
            }
        );
    }
}

/// The catalog file: compact JSON, one model per line.
fn render(models: &[Model]) -> Result<String, String> {
    let mut out = String::with_capacity(models.len() * 256);
    out.push_str("{\"source\":");
    out.push_str(&serde_json::to_string(&SOURCE).map_err(|e| e.to_string())?);
    out.push_str(",\n\"models\":[\n");
    for (i, m) in models.iter().enumerate() {
        out.push_str(&serde_json::to_string(m).map_err(|e| e.to_string())?);
        out.push_str(if i + 1 < models.len() { ",\n" } else { "\n" });
    }
    out.push_str("]}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_million_is_exact_in_decimal() {
        assert_eq!(per_million(2.5e-6), Ok(2.5));
        assert_eq!(per_million(1e-5), Ok(10.0));
        assert_eq!(per_million(2.8e-8), Ok(0.028));
        assert_eq!(per_million(3.125e-6), Ok(3.125));
        assert_eq!(per_million(0.0), Ok(0.0));
    }
}
