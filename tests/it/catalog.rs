//! The built-in model catalog: that it parses, its size, and spot checks of real figures from
//! its source (LiteLLM 1.106.2).

use std::collections::BTreeMap;

use polyrelay::catalog::{Catalog, ModelInfo, Price};
use polyrelay::providers::{Anthropic, Gemini, openai::Preset};
use polyrelay::{Provider, Usage};

/// The provider names our providers report: Anthropic, Gemini and every OpenAI-compatible
/// preset.
fn our_providers() -> Vec<String> {
    let mut names: Vec<String> = Preset::ALL.iter().map(|p| p.name.to_owned()).collect();
    names.push(Anthropic::new("k").name().to_owned());
    names.push(Gemini::new("k").name().to_owned());
    // The clouds' providers report these names (Bedrock's Converse and InvokeModel codecs,
    // the Mantle preset, Vertex's codecs).
    names.extend(["bedrock", "bedrock_mantle", "vertex"].map(str::to_owned));
    names
}

fn price(info: &ModelInfo) -> &Price {
    info.price
        .as_ref()
        .unwrap_or_else(|| panic!("{}/{} has no price", info.provider, info.model))
}

#[test]
fn catalog_size() {
    let catalog = Catalog::builtin();
    let mut per_provider: BTreeMap<&str, usize> = BTreeMap::new();
    for m in catalog.models() {
        *per_provider.entry(m.provider.as_str()).or_default() += 1;
    }
    for (provider, n) in &per_provider {
        println!("{provider:<12} {n}");
    }
    let all = our_providers();
    let ours: Vec<&str> = per_provider
        .keys()
        .copied()
        .filter(|p| all.iter().any(|o| o == p))
        .collect();
    println!(
        "{} chat models from {} of our providers",
        catalog.len(),
        ours.len()
    );
    // Everything in it is one of ours.
    assert_eq!(ours.len(), per_provider.len(), "{per_provider:?}");
    assert!(catalog.len() >= 171, "only {} models", catalog.len());
    assert!(ours.len() >= 14, "only {} providers: {ours:?}", ours.len());
    assert_eq!(catalog.providers(), ours);
}

#[test]
fn embedded_file_parses() {
    let text = include_str!("../../src/catalog/catalog.json");
    let parsed = Catalog::from_json(text).expect("the embedded catalog parses");
    assert_eq!(parsed.len(), Catalog::builtin().len());
    assert!(!Catalog::builtin().is_empty());
    // Sorted by provider then model, each once: what the generator writes.
    let keys: Vec<(&str, &str)> = parsed
        .models()
        .map(|m| (m.provider.as_str(), m.model.as_str()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    // One model per line.
    assert_eq!(text.lines().count(), parsed.len() + 3);
}

#[test]
fn source_names_litellm_and_date() {
    let source = Catalog::builtin().source();
    assert_eq!(source.name, "LiteLLM model_prices_and_context_window.json");
    assert!(source.package.contains("litellm 1.106.2"), "{source:?}");
    assert!(
        source
            .package
            .contains("model_prices_and_context_window_backup.json")
    );
    assert_eq!(source.license, "MIT, (c) Berri AI");
    assert_eq!(source.taken, "2026-11-22");
    assert_eq!(source.generated_by, "tools/catalog-gen");
}

#[test]
fn gpt_4o_figures() {
    let m = Catalog::builtin().get("openai", "gpt-4o").expect("gpt-4o");
    let p = price(m);
    assert_eq!((p.input, p.output, p.cache_read), (2.5, 10.0, Some(1.25)));
    assert_eq!(m.context_window, Some(128_000));
    assert_eq!(m.max_output_tokens, Some(16_384));
    assert!(m.capabilities.tools && m.capabilities.vision && m.capabilities.json_schema);
    // Found bare, as provider/model, in another case and as an unlisted dated snapshot.
    let catalog = Catalog::builtin();
    for id in ["gpt-4o", "openai/gpt-4o", "GPT-4o", "gpt-4o-2099-01-31"] {
        assert_eq!(catalog.find(id), Some(m), "{id}");
    }
    // A listed snapshot is its own entry (gpt-4o-2024-05-13 was dearer).
    assert_eq!(price(catalog.find("gpt-4o-2024-05-13").unwrap()).input, 5.0);
    // 1M prompt tokens of which 400k cached, 100k out: 600k × 2.5 + 400k × 1.25 + 100k × 10.
    let mut usage = Usage::new(1_000_000, 100_000);
    usage.cache_read_tokens = 400_000;
    let cost = m.cost(&usage).unwrap();
    assert!((cost - 3.0).abs() < 1e-9, "{cost}");
}

#[test]
fn claude_prefill_and_cache_prices() {
    let catalog = Catalog::builtin();
    let claude: Vec<&ModelInfo> = catalog
        .models()
        .filter(|m| m.provider == "anthropic")
        .collect();
    assert!(claude.len() >= 10);
    assert!(claude.iter().all(|m| m.model.starts_with("claude-")));
    // The source flags assistant prefill on the 4.5 generation (and not on some later models).
    for id in [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5",
        "claude-opus-4-5",
    ] {
        let m = catalog.get("anthropic", id).expect(id);
        assert!(m.capabilities.prefill, "{id}");
        assert!(m.capabilities.tools && m.capabilities.vision, "{id}");
    }
    let sonnet = catalog.find("claude-sonnet-4-5").unwrap();
    assert_eq!(sonnet.provider, "anthropic");
    let p = price(sonnet);
    assert_eq!(
        (p.input, p.output, p.cache_read, p.cache_write),
        (3.0, 15.0, Some(0.3), Some(3.75))
    );
    assert_eq!(sonnet.context_window, Some(200_000));
}

#[test]
fn gemini_2_5_pro_long_context_tier() {
    let m = Catalog::builtin()
        .get("gemini", "gemini-2.5-pro")
        .expect("gemini-2.5-pro");
    let p = price(m);
    assert_eq!((p.input, p.output, p.cache_read), (1.25, 10.0, Some(0.125)));
    let tier = p
        .tiers
        .iter()
        .find(|t| t.above_input_tokens == 200_000)
        .expect("a tier above 200k");
    assert_eq!(
        (tier.input, tier.output, tier.cache_read),
        (2.5, 15.0, Some(0.25))
    );
    assert_eq!(m.context_window, Some(1_048_576));
    // 300k prompt tokens are billed at the tier's rate.
    let cost = p.cost(&Usage::new(300_000, 0));
    assert!((cost - 0.75).abs() < 1e-9, "{cost}");
    assert_eq!(Catalog::builtin().find("gemini-2.5-pro"), Some(m));
}

#[test]
fn deepseek_chat_exists() {
    let catalog = Catalog::builtin();
    let m = catalog
        .get("deepseek", "deepseek-chat")
        .expect("deepseek-chat");
    let p = price(m);
    assert_eq!((p.input, p.output, p.cache_read), (0.28, 0.42, Some(0.028)));
    assert!(m.capabilities.prefill);
    assert_eq!(catalog.find("deepseek-chat"), Some(m));
}

#[test]
fn ids_are_the_ones_the_apis_take() {
    let catalog = Catalog::builtin();
    // Prefixes stripped.
    assert!(catalog.get("groq", "llama-guard-3-8b").is_some());
    assert!(catalog.get("cerebras", "llama-3.3-70b").is_some());
    assert!(catalog.get("mistral", "mistral-large-latest").is_some());
    assert!(catalog.get("xai", "grok-4.3").is_some());
    assert_eq!(
        catalog.find("grok-4.3").map(|m| m.provider.as_str()),
        Some("xai")
    );
    // Ids that contain '/' themselves are kept whole.
    assert!(
        catalog
            .models()
            .filter(|m| m.provider == "fireworks")
            .all(|m| m.model.starts_with("accounts/")),
    );
    assert!(catalog.get("groq", "openai/gpt-oss-120b").is_some());
    // `qwen/…` is not Qwen's own id: the whole string is tried as an id and found on Groq.
    let groq_qwen = catalog.find("qwen/qwen3.8-27b").expect("qwen/qwen3.8-27b");
    assert_eq!(groq_qwen.provider, "groq");
    assert!(
        catalog
            .models()
            .any(|m| m.provider == "together" && m.model.contains('/'))
    );
    // No LiteLLM prefixes left, nor Together's size buckets. (Vertex's partner models are
    // named by publisher, `xai/grok-…`: that is the id Vertex takes.)
    for m in catalog.models().filter(|m| m.provider != "vertex") {
        for prefix in [
            "gemini/",
            "groq/",
            "dashscope/",
            "together_ai/",
            "fireworks_ai/",
            "xai/",
            "deepseek/",
        ] {
            assert!(!m.model.starts_with(prefix), "{}/{}", m.provider, m.model);
        }
        assert!(!m.model.starts_with("together-ai-"), "{}", m.model);
    }
    // Qwen: DashScope's compatible-mode ids.
    let qwen = catalog.get("qwen", "qwen-plus").expect("qwen-plus");
    assert_eq!(catalog.find("qwen-plus"), Some(qwen));
}

#[test]
fn tiered_qwen_and_reasoning_price() {
    let catalog = Catalog::builtin();
    let coder = price(catalog.get("qwen", "qwen3-coder-plus").unwrap());
    assert_eq!((coder.input, coder.output), (1.0, 5.0));
    let above: Vec<u64> = coder.tiers.iter().map(|t| t.above_input_tokens).collect();
    assert_eq!(above, [32_000, 128_000, 256_000]);
    let plus = price(catalog.get("qwen", "qwen-plus-latest").unwrap());
    assert_eq!(plus.reasoning, Some(4.0));
}

#[test]
fn unknown_model_unknown_cost() {
    let catalog = Catalog::builtin();
    assert!(catalog.find("no-such-model-anywhere").is_none());
    assert!(catalog.get("openai", "claude-sonnet-4-5").is_none());
    // Entries the source gives no price for have none (not a zero price).
    assert!(catalog.models().any(|m| m.price.is_none()));
    for m in catalog.models().filter(|m| m.price.is_none()) {
        assert_eq!(m.cost(&Usage::new(1000, 1000)), None);
    }
    // LiteLLM lists a window but no price for this one.
    let unpriced = catalog.get("qwen", "qwen3-30b-a3b").expect("qwen3-30b-a3b");
    assert!(unpriced.price.is_none() && unpriced.context_window.is_some());
    // Zero is a real price (a free experimental model), not "unknown".
    let free = catalog
        .get("gemini", "gemini-exp-1206")
        .expect("gemini-exp-1206");
    assert_eq!(free.cost(&Usage::new(1000, 1000)), Some(0.0));
    // Entries that carry no facts at all (OpenAI's `container` sessions) are not models.
    assert!(catalog.get("openai", "container").is_none());
}

#[test]
fn override_a_builtin_price() {
    let catalog = Catalog::builtin()
        .clone()
        .with(ModelInfo::new("openai", "gpt-4o").price(Price::per_million(2.0, 8.0)));
    assert_eq!(catalog.len(), Catalog::builtin().len());
    assert_eq!(price(catalog.find("gpt-4o").unwrap()).input, 2.0);
    assert_eq!(price(Catalog::builtin().find("gpt-4o").unwrap()).input, 2.5);
}
