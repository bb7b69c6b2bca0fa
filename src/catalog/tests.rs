//! Unit tests of the catalog.

use super::*;

fn usage(input: u64, output: u64) -> Usage {
    Usage::new(input, output)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn plain_cost() {
    let p = Price::per_million(2.5, 10.0);
    assert!(close(p.cost(&usage(1_000_000, 0)), 2.5));
    assert!(close(p.cost(&usage(1000, 500)), 0.0025 + 0.005));
}

#[test]
fn zero_usage_costs_nothing() {
    let p = Price::per_million(2.5, 10.0)
        .cache_read(1.25)
        .reasoning(20.0)
        .tier(PriceTier::above(200_000, 5.0, 15.0));
    assert_eq!(p.cost(&Usage::default()), 0.0);
}

#[test]
fn cached_tokens_at_cache_rate() {
    let p = Price::per_million(2.5, 10.0).cache_read(1.25);
    let mut u = usage(1_000_000, 100_000);
    u.cache_read_tokens = 400_000;
    // 600k × 2.5 + 400k × 1.25 + 100k × 10
    assert!(close(p.cost(&u), 1.5 + 0.5 + 1.0));
}

#[test]
fn cache_rates_fall_back_to_input() {
    let p = Price::per_million(2.0, 8.0);
    let mut u = usage(1_000_000, 0);
    u.cache_read_tokens = 300_000;
    u.cache_write_tokens = 200_000;
    assert!(close(p.cost(&u), 2.0));
}

#[test]
fn cache_write_at_its_rate() {
    let p = Price::per_million(3.0, 15.0)
        .cache_read(0.3)
        .cache_write(3.75);
    let mut u = usage(1_000_000, 0);
    u.cache_read_tokens = 500_000;
    u.cache_write_tokens = 400_000;
    // 100k × 3 + 500k × 0.3 + 400k × 3.75
    assert!(close(p.cost(&u), 0.3 + 0.15 + 1.5));
}

#[test]
fn reasoning_priced_apart() {
    let p = Price::per_million(0.4, 1.2).reasoning(4.0);
    let mut u = usage(0, 1_000_000);
    u.reasoning_tokens = 250_000;
    // 750k × 1.2 + 250k × 4
    assert!(close(p.cost(&u), 0.9 + 1.0));
    // More reasoning than output (a vendor's accounting slip) is capped at the output.
    u.reasoning_tokens = 2_000_000;
    assert!(close(p.cost(&u), 4.0));
}

#[test]
fn reasoning_not_priced_apart_is_output() {
    let p = Price::per_million(0.4, 1.2);
    let mut u = usage(0, 1_000_000);
    u.reasoning_tokens = 250_000;
    assert!(close(p.cost(&u), 1.2));
}

#[test]
fn tier_above_200k() {
    // Gemini 2.5 Pro.
    let p = Price::per_million(1.25, 10.0)
        .cache_read(0.125)
        .tier(PriceTier::above(200_000, 2.5, 15.0).cache_read(0.25));
    // Exactly 200k is not above 200k.
    assert!(close(p.cost(&usage(200_000, 0)), 0.25));
    let mut u = usage(400_000, 10_000);
    u.cache_read_tokens = 100_000;
    // 300k × 2.5 + 100k × 0.25 + 10k × 15
    assert!(close(p.cost(&u), 0.75 + 0.025 + 0.15));
}

#[test]
fn highest_applicable_tier_wins_and_missing_cache_rate_is_tier_input() {
    let p = Price::per_million(1.0, 5.0)
        .cache_read(0.1)
        .tier(PriceTier::above(128_000, 3.0, 15.0))
        .tier(PriceTier::above(32_000, 1.8, 9.0).cache_read(0.18));
    let mut u = usage(100_000, 0);
    u.cache_read_tokens = 50_000;
    // The 32k tier: 50k × 1.8 + 50k × 0.18
    assert!(close(p.cost(&u), 0.09 + 0.009));
    let mut u = usage(1_000_000, 0);
    u.cache_read_tokens = 500_000;
    // The 128k tier, no cache rate of its own: everything at 3.0.
    assert!(close(p.cost(&u), 3.0));
}

#[test]
fn reasoning_rate_is_not_tiered() {
    let p = Price::per_million(0.4, 1.2)
        .reasoning(4.0)
        .tier(PriceTier::above(256_000, 1.2, 3.6));
    let mut u = usage(1_000_000, 1_000_000);
    u.reasoning_tokens = 500_000;
    // 1M × 1.2 + 500k × 3.6 + 500k × 4
    assert!(close(p.cost(&u), 1.2 + 1.8 + 2.0));
}

#[test]
fn blended_is_input_plus_output() {
    assert_eq!(Price::per_million(2.5, 10.0).blended(), 12.5);
}

#[test]
fn price_deserializes_from_two_numbers() {
    let p: Price = serde_json::from_str(r#"{"input": 2.5, "output": 10}"#).unwrap();
    assert_eq!(p, Price::per_million(2.5, 10.0));
    assert!(serde_json::from_str::<Price>(r#"{"input": 1, "output": 2, "inptu": 3}"#).is_err());
    // Round trip, optional fields left out.
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"input":2.5,"output":10.0}"#
    );
}

#[test]
fn from_json_reads_a_minimal_catalog() {
    let c = Catalog::from_json(
        r#"{"models":[{"provider":"acme","model":"m1","price":{"input":1,"output":2}}]}"#,
    )
    .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c.source(), &CatalogSource::default());
    let m = c.get("acme", "m1").unwrap();
    assert_eq!(m.capabilities, Capabilities::default());
    assert_eq!(m.cost(&usage(1_000_000, 0)), Some(1.0));
}

#[test]
fn from_json_errors_are_config_errors() {
    for (bad, needle) in [
        ("not json", "model catalog is not valid"),
        (r#"{"models": ["#, "model catalog is not valid"),
        (r#"{"source":{}}"#, "missing field `models`"),
        (r#"{"models":[],"extra":1}"#, "unknown field `extra`"),
        (r#"{"models":[{"provider":"a"}]}"#, "missing field `model`"),
        (
            r#"{"models":[{"provider":"a","model":"m","price":{"input":1}}]}"#,
            "missing field `output`",
        ),
        (
            r#"{"models":[{"provider":"a","model":"m","context":5}]}"#,
            "unknown field `context`",
        ),
        (
            r#"{"models":[{"provider":"","model":"m"}]}"#,
            "must not be empty",
        ),
        (
            r#"{"models":[{"provider":"a","model":"m","price":{"input":-1,"output":2}}]}"#,
            "price input must be a non-negative number",
        ),
        (
            r#"{"models":[{"provider":"a","model":"m","price":{"input":1,"output":2,
               "tiers":[{"above_input_tokens":9,"input":1,"output":2,"cache_write":-1}]}}]}"#,
            "a/m: price tiers.cache_write must be a non-negative number",
        ),
        (
            r#"{"models":[{"provider":"a","model":"m"},{"provider":"a","model":"m"}]}"#,
            "models[1]: a/m is listed twice",
        ),
        (
            r#"{"models":[{"provider":"a","model":"m","context_window":-3}]}"#,
            "model catalog is not valid",
        ),
    ] {
        let e = Catalog::from_json(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        assert!(e.message().contains(needle), "{bad}: {}", e.message());
    }
}

#[test]
fn insert_overrides_and_extends() {
    let mut c = Catalog::empty().with(
        ModelInfo::new("openai", "gpt-4o")
            .price(Price::per_million(2.5, 10.0))
            .context_window(128_000),
    );
    c.insert(ModelInfo::new("openai", "gpt-4o").price(Price::per_million(2.0, 8.0)));
    assert_eq!(c.len(), 1);
    let m = c.get("openai", "gpt-4o").unwrap();
    assert_eq!(m.price, Some(Price::per_million(2.0, 8.0)));
    // A replacement is the whole entry, not a merge.
    assert_eq!(m.context_window, None);
    c.insert(ModelInfo::new("vllm", "local"));
    assert_eq!(c.len(), 2);
    assert_eq!(c.providers(), ["openai", "vllm"]);
    // Found case-insensitively too, and an unknown price is None, not zero.
    assert_eq!(c.get("vllm", "LOCAL").unwrap().cost(&usage(10, 10)), None);
    // Another spelling is another entry; ignoring case, the first spelling wins.
    c.insert(ModelInfo::new("openai", "GPT-4o").context_window(3));
    assert_eq!(c.len(), 3);
    let cw = |m: &str| c.get("openai", m).and_then(|m| m.context_window);
    assert_eq!(
        (cw("GPT-4o"), cw("gpt-4o"), cw("Gpt-4O")),
        (Some(3), None, None)
    );
    assert!(c.get("openai", "Gpt-4O").unwrap().price.is_some());
    // A replaced entry keeps its place; new ones come last.
    let order: Vec<&str> = c.models().map(|m| m.model.as_str()).collect();
    assert_eq!(order, ["gpt-4o", "local", "GPT-4o"]);
    assert!(c.has_provider("vllm") && !c.has_provider("VLLM") && !c.has_provider("acme"));
}

#[test]
fn preference_covers_every_provider_shipped() {
    use crate::provider::Provider;
    use crate::providers::{Anthropic, Gemini, openai::Preset};
    let mut shipped: Vec<String> = Preset::ALL.iter().map(|p| p.name.to_owned()).collect();
    shipped.push(Anthropic::new("k").name().to_owned());
    shipped.push(Gemini::new("k").name().to_owned());
    let mut preference = PREFERENCE.to_vec();
    preference.sort_unstable();
    shipped.sort_unstable();
    // Each once: a provider of this crate is never left to the by-name tail of `find`.
    assert_eq!(preference, shipped);
    for (prefix, vendor) in FIRST_PARTY {
        assert!(PREFERENCE.contains(vendor), "{prefix} → {vendor}");
        assert_eq!(*prefix, prefix.to_ascii_lowercase());
    }
}

#[test]
fn get_is_exact_then_case_insensitive_then_undated() {
    let c = Catalog::empty()
        .with(ModelInfo::new("anthropic", "claude-x-5").context_window(1))
        .with(ModelInfo::new("anthropic", "claude-x-5-20260101").context_window(2));
    let cw = |m: &str| c.get("anthropic", m).and_then(|m| m.context_window);
    assert_eq!(cw("claude-x-5"), Some(1));
    assert_eq!(cw("Claude-X-5"), Some(1));
    assert_eq!(cw("claude-x-5-20260101"), Some(2));
    assert_eq!(cw("claude-x-5-20261231"), Some(1));
    assert_eq!(cw("claude-x-5-2026-12-31"), Some(1));
    assert_eq!(cw("CLAUDE-X-5-2026-12-31"), Some(1));
    // Not dates: wrong month, 4 digits, version numbers.
    assert_eq!(cw("claude-x-5-20261301"), None);
    assert_eq!(cw("claude-x-5-19991231"), None);
    assert_eq!(cw("claude-x-5-0613"), None);
    assert_eq!(cw("claude-x-5-12345678"), None);
    assert_eq!(cw("claude-x"), None);
    assert_eq!(c.get("openai", "claude-x-5"), None);
}

#[test]
fn strip_date_suffix_forms() {
    assert_eq!(strip_date_suffix("gpt-4o-2024-08-06"), Some("gpt-4o"));
    assert_eq!(
        strip_date_suffix("claude-sonnet-4-5-20250929"),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(strip_date_suffix("gpt-4o"), None);
    assert_eq!(strip_date_suffix("-20250929"), None);
    assert_eq!(
        strip_date_suffix("qwen3-coder-480b-a35b-instruct-2507"),
        None
    );
    assert_eq!(strip_date_suffix("x-2025-13-01"), None);
    assert_eq!(strip_date_suffix("é-2025-1é"), None);
    assert_eq!(strip_date_suffix("ééééééééééé"), None);
}

#[test]
fn find_prefers_the_first_party_vendor() {
    let c = Catalog::empty()
        .with(ModelInfo::new("openrouter", "gpt-4o").context_window(1))
        .with(ModelInfo::new("openai", "gpt-4o").context_window(2))
        .with(ModelInfo::new("together", "deepseek-chat").context_window(3))
        .with(ModelInfo::new("deepseek", "deepseek-chat").context_window(4))
        .with(ModelInfo::new("groq", "llama-3.3-70b").context_window(5))
        .with(ModelInfo::new("fireworks", "llama-3.3-70b").context_window(6))
        .with(ModelInfo::new("zeta", "only-here").context_window(7))
        .with(ModelInfo::new("alpha", "only-here").context_window(8))
        .with(ModelInfo::new("groq", "openai/gpt-oss-120b").context_window(9))
        .with(ModelInfo::new("together", "claude-3").context_window(10));
    let cw = |m: &str| c.find(m).and_then(|m| m.context_window);
    assert_eq!(cw("gpt-4o"), Some(2));
    assert_eq!(cw("deepseek-chat"), Some(4));
    // No first-party vendor: the preference order (groq before fireworks).
    assert_eq!(cw("llama-3.3-70b"), Some(5));
    // Providers outside the preference order: by name.
    assert_eq!(cw("only-here"), Some(8));
    // provider/model.
    assert_eq!(cw("openrouter/gpt-4o"), Some(1));
    assert_eq!(cw("fireworks/llama-3.3-70b"), Some(6));
    // Not a provider (or not its model): the whole string as an id.
    assert_eq!(cw("openai/gpt-oss-120b"), Some(9));
    // The first-party vendor lacks it: found elsewhere.
    assert_eq!(cw("claude-3"), Some(10));
    assert_eq!(cw("nothing"), None);
}

#[test]
fn debug_is_short() {
    let s = format!("{:?}", Catalog::builtin());
    assert!(s.len() < 2_000, "{s}");
    assert!(s.contains("litellm 1.106.2"));
}

#[test]
fn cloud_ids_find_their_prices() {
    let c = Catalog::builtin();
    let input = |provider: &str, model: &str| {
        c.get(provider, model)
            .and_then(|m| m.price.as_ref())
            .map(|p| p.input)
    };
    // A profile the data prices is its own entry (regional profiles cost 10 % more).
    assert_eq!(
        input("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        Some(1.1)
    );
    assert_eq!(
        input("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        Some(1.0)
    );
    // An ARN names the profile or model after its last `/`.
    assert_eq!(
        input(
            "bedrock",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
        ),
        Some(1.1)
    );
    assert_eq!(
        input(
            "bedrock",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"
        ),
        input("bedrock", "amazon.nova-pro-v1:0")
    );
    assert!(input("bedrock", "amazon.nova-pro-v1:0").is_some());
    // A geography the data does not list falls back to the model's own price.
    assert_eq!(
        input("bedrock", "ca.anthropic.claude-haiku-4-5-20251001-v1:0"),
        Some(1.0)
    );
    // Vertex: a listed @version, an unlisted one, a publisher prefix.
    assert_eq!(input("vertex", "claude-haiku-4-5@20251001"), Some(1.0));
    assert_eq!(input("vertex", "claude-haiku-4-5@20991231"), Some(1.0));
    assert_eq!(input("vertex", "google/gemini-2.5-flash"), Some(0.3));
    // Application inference profiles name no model: unknown, never a guess.
    assert_eq!(
        input(
            "bedrock",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
        ),
        None
    );
    // Nothing strips across providers: a cloud spelling is not looked up at another vendor.
    assert_eq!(input("anthropic", "us.anthropic.claude-haiku-4-5"), None);
}
