//! Configuration files: the support bot's file builds the relay its code builds, and every
//! mistake is reported with the file, the line and the key.

use polyrelay::config::{ConfigError, RelayConfig};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{ChatRequest, Relay};
use support::assert_at;

use crate::support;

#[allow(dead_code)]
#[path = "../../examples/support_bot.rs"]
mod support_bot;

#[tokio::test]
async fn the_support_bot_file_builds_the_relay_its_code_builds() {
    let sim = Simulator::start().await.unwrap();
    let from_code = support_bot::relay_from_code(&format!("{}/v1", sim.base_url())).unwrap();
    let from_file = support_bot::relay_from_file(&sim.base_url()).unwrap();
    let (a, b) = (from_code.describe(), from_file.describe());
    assert_eq!(a, b);
    // Not vacuous: seven routes with their resolved targets, one router with five rules.
    assert_eq!(a.routes.len(), 7);
    assert_eq!(a.routers[0].rules.len(), 5);
    let fast = a.routes.iter().find(|r| r.name == "fast").unwrap();
    assert_eq!(
        fast.targets[0].first_token_timeout,
        Some(std::time::Duration::from_millis(2500))
    );
    // And they behave alike: the same ticket takes the same rule, route and target.
    sim.set_default(Reply::openai_text("ok"));
    for relay in [&from_code, &from_file] {
        let req = ChatRequest::new("support").user("退款");
        let resp = relay.chat(&req).await.unwrap();
        let routing = resp.meta.routing.as_ref().unwrap();
        assert_eq!(routing.rule.as_deref(), Some("language"));
        assert_eq!(resp.meta.route.as_deref(), Some("qwen"));
        assert_eq!(resp.meta.served_by.unwrap().to_string(), "qwen/qwen-plus");
    }
}

/// The error a configuration gives, with `env` answering `KEY` for `OPENAI_API_KEY`.
fn error_of(text: &str) -> ConfigError {
    let built = RelayConfig::from_toml_str(text).and_then(|c| {
        c.builder_with_env(|v| (v == "OPENAI_API_KEY").then(|| "sk-test".to_owned()))
    });
    match built {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

const PROVIDERS: &str = r#"
[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
"#;

#[test]
fn an_unknown_provider_in_a_route_names_the_target() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/gpt-4o-mini\", \"anthropc/claude-haiku-4-5\"]\n"
    ));
    assert_at(
        &e,
        7,
        "routes.fast.targets[1]",
        "unknown provider \"anthropc\"",
    );
    assert!(e.message().contains("providers: openai"), "{e}");
}

#[test]
fn a_missing_environment_variable_is_named() {
    let e = error_of(
        "[providers.anthropic]\nkind = \"anthropic\"\napi_key_env = \"ANTHROPIC_KEY_FOR_TESTS\"\n",
    );
    assert_at(
        &e,
        3,
        "providers.anthropic.api_key_env",
        "ANTHROPIC_KEY_FOR_TESTS is not set",
    );
    let e = error_of(&format!(
        "{PROVIDERS}base_url = \"${{GATEWAY_URL_FOR_TESTS}}/v1\"\n"
    ));
    assert_at(
        &e,
        5,
        "providers.openai.base_url",
        "GATEWAY_URL_FOR_TESTS is not set",
    );
}

#[test]
fn a_duplicate_route_is_refused() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\n\n[routes.fast]\ntargets = [\"openai/b\"]\n"
    ));
    assert_eq!(e.line(), Some(9), "{e}");
    assert!(e.message().contains("duplicate"), "{e}");
    assert_eq!(e.key(), Some("routes.fast"), "{e}");
    // A route and a router of the same name.
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\n\n[routers.fast]\ndefault = \"fast\"\n"
    ));
    assert_at(&e, 6, "routes.fast", "both a route and a router");
}

#[test]
fn an_unknown_strategy_is_refused() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\nstrategy = \"fastest\"\n"
    ));
    assert_at(&e, 8, "routes.fast.strategy", "unknown variant `fastest`");
}

#[test]
fn a_bad_duration_is_refused() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\nfirst_token_timeout = \"2.5 parsecs\"\n"
    ));
    assert_at(&e, 8, "routes.fast.first_token_timeout", "2.5 parsecs");
}

#[test]
fn a_bad_url_is_refused() {
    let e = error_of(&format!("{PROVIDERS}base_url = \"ftp://example.com/v1\"\n"));
    assert_at(&e, 5, "providers.openai.base_url", "not an http(s) URL");
    let e = error_of(&format!("{PROVIDERS}base_url = \"not a url\"\n"));
    assert_at(&e, 5, "providers.openai.base_url", "not a URL");
}

#[test]
fn a_literal_key_is_refused_with_the_reason() {
    let e = error_of("[providers.openai]\nkind = \"openai\"\napi_key = \"sk-live-1234\"\n");
    assert_at(&e, 3, "providers.openai.api_key", "environment variable");
    assert!(e.message().contains("api_key_env"), "{e}");
    assert!(!e.to_string().contains("sk-live-1234"), "{e}");
    assert!(!format!("{e:?}").contains("sk-live-1234"), "{e:?}");
    let parsed = RelayConfig::from_toml_str(
        "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-live-1234\"\n",
    )
    .unwrap();
    assert!(
        !format!("{parsed:?}").contains("sk-live-1234"),
        "{parsed:?}"
    );
}

#[test]
fn unknown_fields_are_errors() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\nfirst_token_timout = \"2s\"\n"
    ));
    assert_eq!(e.line(), Some(8), "{e}");
    assert_eq!(e.key(), Some("routes.fast.first_token_timout"), "{e}");
    assert!(e.message().contains("unknown field"), "{e}");
    let e = error_of(&format!("{PROVIDERS}colour = \"blue\"\n"));
    assert_eq!(e.key(), Some("providers.openai.colour"), "{e}");
    assert_eq!(e.line(), Some(5), "{e}");
}

#[test]
fn routers_name_only_known_routes_and_kinds() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\n\n[routers.support]\ndefault = \"fast\"\n\n[[routers.support.rules]]\nname = \"intents\"\nintents = {{ refund = \"strong\" }}\n"
    ));
    assert_at(
        &e,
        14,
        "routers.support.rules[0].intents.refund",
        "route \"strong\" is neither a route",
    );
    let e = error_of("[providers.x]\nkind = \"openia\"\n");
    assert_at(
        &e,
        2,
        "providers.x.kind",
        "unknown provider kind \"openia\"",
    );
    assert!(e.message().contains("deepseek"), "{e}");
}

#[test]
fn a_file_is_named_in_its_errors_and_relative_paths_start_beside_it() {
    let dir = std::env::temp_dir().join(format!("polyrelay-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        "[providers.local]\nkind = \"ollama\"\n\n[routes.r]\ntargets = [\"local/m\"]\n\n\
         [routers.s]\ndefault = \"r\"\n[[routers.s.rules]]\nname = \"c\"\n\
         classifier = { examples = \"missing.jsonl\", labels = { a = \"r\" } }\n",
    )
    .unwrap();
    let e = Relay::from_config_file(&path).unwrap_err();
    assert_eq!(e.file(), Some(path.as_path()));
    assert_eq!(e.line(), Some(11), "{e}");
    assert_eq!(
        e.key(),
        Some("routers.s.rules[0].classifier.examples"),
        "{e}"
    );
    assert!(
        e.message()
            .contains(&dir.join("missing.jsonl").display().to_string()),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_small_file_builds_a_working_relay() {
    let relay = Relay::from_toml_str(
        "[providers.local]\nkind = \"vllm\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n\n\
         [defaults]\ntotal_timeout = \"20s\"\n\n[routes.r]\ntargets = [\"local/a\", \"local/b\"]\n\
         strategy = \"round_robin\"\n",
    )
    .unwrap();
    let d = relay.describe();
    assert_eq!(d.routes[0].targets.len(), 2);
    assert_eq!(
        d.routes[0].total_timeout,
        std::time::Duration::from_secs(20)
    );
    assert_eq!(d.routes[0].strategy, polyrelay::Strategy::RoundRobin);
}

#[test]
fn the_readme_example_file_builds() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Configuration file").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let toml = &section[start..start + section[start..].find("```").unwrap()];
    let dir = std::env::temp_dir().join(format!("polyrelay-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("relay.toml"), toml).unwrap();
    std::fs::write(
        dir.join("tickets.jsonl"),
        include_str!("../data/support_tickets.jsonl"),
    )
    .unwrap();
    let config = RelayConfig::from_file(dir.join("relay.toml")).unwrap();
    let relay = config
        .builder_with_env(|var| match var {
            "LLM_GATEWAY_URL" => Some("https://llm.internal.example".to_owned()),
            _ => Some(format!("test-key-for-{var}")),
        })
        .unwrap()
        .build()
        .unwrap();
    let d = relay.describe();
    assert_eq!(relay.routes(), ["fast", "long", "sensitive", "strong"]);
    assert_eq!(d.routers[0].rules.len(), 5);
    let fast = d.routes.iter().find(|r| r.name == "fast").unwrap();
    assert_eq!(fast.targets[0].price.as_ref().unwrap().input, 0.15);
    assert_eq!(relay.budgets()[0].name, "strong-daily");
    let health = relay.health();
    let mini = health
        .iter()
        .find(|h| h.target.to_string() == "openai/gpt-4o-mini")
        .unwrap();
    assert!(mini.limiter.is_some());
    assert!(health.iter().any(|h| h.keys.len() == 2));
    // Keys never show in what the relay says about itself.
    assert!(!format!("{d:?}").contains("test-key-for"), "{d:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn catalog_entries_from_the_file_feed_the_targets() {
    let relay = Relay::from_toml_str(
        "[providers.local]\nkind = \"vllm\"\n\n[routes.r]\ntargets = [\"local/my-finetune\"]\n\n\
         [[catalog.models]]\nprovider = \"local\"\nmodel = \"my-finetune\"\ncontext_window = 32768\n\
         price = { input = 0.1, output = 0.2 }\n",
    )
    .unwrap();
    let t = &relay.describe().routes[0].targets[0];
    assert_eq!(t.context_window, Some(32768));
    assert_eq!(
        t.price.as_ref().map(|p| (p.input, p.output)),
        Some((0.1, 0.2))
    );
    assert!(relay.catalog().get("local", "my-finetune").is_some());
}

#[test]
fn the_builders_own_checks_are_placed_in_the_file_too() {
    let placed = RelayConfig::from_toml_str(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\"]\nattempt_timeout = \"0s\"\n"
    ))
    .unwrap();
    let e = placed_build_error(&placed);
    assert_at(&e, 8, "routes.fast.attempt_timeout", "greater than zero");
    // A target's own setting, under the target's line.
    let placed = RelayConfig::from_toml_str(&format!(
        "{PROVIDERS}\n[routes.fast]\ntargets = [\"openai/a\", {{ provider = \"openai\", model = \"b\", first_token_timeout = \"0s\" }}]\n"
    ))
    .unwrap();
    let e = placed_build_error(&placed);
    assert_eq!(e.line(), Some(7), "{e}");
    assert!(
        e.key().unwrap().starts_with("routes.fast.targets[1]"),
        "{e}"
    );
}

/// `RelayConfig::build` with `OPENAI_API_KEY` answered, as an error.
fn placed_build_error(config: &RelayConfig) -> ConfigError {
    config
        .build_with_env(|_| Some("sk-test".to_owned()))
        .map(|_| ())
        .unwrap_err()
}

const SPEND: &str = r#"
[providers.sim]
kind = "openai_compatible"
base_url = "${SIM}/v1"
[providers.sim.key_pool]
keys_env = ["SIM_KEY_1", "SIM_KEY_2"]
weights = [1, 1]
park_exhausted_for = "2h"
limit_each = { requests_per_minute = 100 }

[routes.premium]
targets = ["sim/gpt-4o"]

[routes.cheap]
targets = ["sim/gpt-4o-mini"]

[rate_limits."sim/gpt-4o"]
requests_per_minute = 50
tokens_per_minute = 100000
max_concurrent = 4
wait_up_to = "2s"

[rate_limits.sim]
requests_per_minute = 500

[[budgets]]
name = "premium-daily"
usd = 25.0
period = "day"
route = "premium"
downgrade_to = "cheap"
warn_at = 0.8

[[budgets]]
name = "all-tokens"
tokens = 5000000
period = "month"
window = "rolling"
"#;

#[tokio::test]
async fn budgets_rate_limits_and_key_pools_come_from_the_file() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "gpt-4o",
        [
            Reply::openai_error(
                429,
                "insufficient_quota",
                Some("insufficient_quota"),
                "quota",
            ),
            Reply::openai_text("ok"),
        ],
    );
    let base = sim.base_url();
    let relay = RelayConfig::from_toml_str(SPEND)
        .unwrap()
        .build_with_env(|v| match v {
            "SIM" => Some(base.clone()),
            "SIM_KEY_1" => Some("sk-file-one".into()),
            "SIM_KEY_2" => Some("sk-file-two".into()),
            _ => None,
        })
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("premium").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.meta.attempts.len(), 2);
    let keys: Vec<_> = sim
        .requests_for("gpt-4o")
        .iter()
        .map(|r| r.header("authorization").unwrap_or("-").to_owned())
        .collect();
    assert_eq!(keys, ["Bearer sk-file-one", "Bearer sk-file-two"]);
    let budgets = relay.budgets();
    let names: Vec<_> = budgets.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["premium-daily", "all-tokens"]);
    assert!(budgets[0].spent > 0.0 && budgets[1].spent > 0.0);
    assert!(budgets[1].rolling);
    let h = relay.health();
    let t = h.iter().find(|t| &*t.target.model == "gpt-4o").unwrap();
    assert!(t.limiter.is_some() && t.provider_limiter.is_some());
    assert!(
        matches!(t.keys[0].state, polyrelay::KeyState::Parked { for_ms } if for_ms > 7_000_000)
    );
}

#[test]
fn spend_tables_are_checked_and_placed() {
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.r]\ntargets = [\"openai/gpt-4o\"]\n\n[[budgets]]\nname = \"b\"\nusd = 1.0\ntokens = 5\n"
    ));
    assert_at(&e, 9, "budgets[0]", "exactly one of usd");
    let e = error_of(&format!(
        "{PROVIDERS}\n[routes.r]\ntargets = [\"openai/gpt-4o\"]\n\n[[budgets]]\nname = \"b\"\nusd = 1.0\ndowngrade_to = \"nowhere\"\n"
    ));
    assert_at(
        &e,
        12,
        "budgets[0].downgrade_to",
        "no route named \"nowhere\"",
    );
    let e = error_of(&format!(
        "{PROVIDERS}\n[rate_limits.\"openai/gpt-4o\"]\nrequests_per_minute = 0\n"
    ));
    assert_at(
        &e,
        7,
        "rate_limits.\"openai/gpt-4o\".requests_per_minute",
        "at least 1",
    );
    let e = error_of(&format!(
        "{PROVIDERS}\n[rate_limits.nowhere]\nrequests_per_minute = 5\n"
    ));
    assert_at(
        &e,
        6,
        "rate_limits.nowhere",
        "or a provider (providers: openai)",
    );
    let e = error_of(&format!(
        "{PROVIDERS}\n[rate_limits.\"openai/gpt-4o\"]\nrequests_per_hour = 10\n"
    ));
    assert_eq!(e.line(), Some(7), "{e}");
    assert!(e.message().contains("requests_per_hour"), "{e}");
    let e = error_of(
        "[providers.openai]\nkind = \"openai\"\n[providers.openai.key_pool]\nkeys_env = [\"OPENAI_API_KEY\", \"MISSING_KEY\"]\n",
    );
    assert_at(
        &e,
        4,
        "providers.openai.key_pool.keys_env[1]",
        "MISSING_KEY is not set",
    );
}

/// `[targets."provider/model"]` holds wherever the target is used (issue 23, point 7): as a
/// request's own `model` and as a request-scoped fallback, not only inside routes.
#[tokio::test]
async fn a_target_table_applies_to_requests_that_name_the_target_and_to_fallbacks() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let text = r#"
[providers.sim]
kind = "openai"
base_url = "${SIM_URL}/v1"
api_key_env = "SIM_KEY"

[targets."sim/local"]
tags = ["on-prem"]

[routes.public]
targets = ["sim/cloud"]
"#;
    let url = sim.base_url();
    let relay = RelayConfig::from_toml_str(text)
        .unwrap()
        .builder_with_env(|v| match v {
            "SIM_URL" => Some(url.clone()),
            "SIM_KEY" => Some("sk-x".into()),
            _ => None,
        })
        .unwrap()
        .build()
        .unwrap();
    let on_prem = || {
        ChatRequest::new("sim/local")
            .user("hi")
            .require_tags(["on-prem"])
    };
    let resp = relay.chat(&on_prem()).await.unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/local");
    let resp = relay
        .chat(
            &ChatRequest::new("sim/cloud")
                .user("hi")
                .fallbacks(["sim/local"])
                .require_tags(["on-prem"]),
        )
        .await
        .unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/local");
    // An untagged pair still cannot serve an on-prem request.
    let err = relay
        .chat(
            &ChatRequest::new("sim/cloud")
                .user("hi")
                .require_tags(["on-prem"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), polyrelay::ErrorKind::ConstraintViolated);
    assert!(sim.requests_for("cloud").is_empty());
}
