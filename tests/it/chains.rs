//! Chains as values, configuration checked at build time, request-scoped fallbacks and
//! scoped chains, and errors a caller can match — through the relay on the loopback
//! simulator.

use crate::support;

use std::error::Error as _;
use std::time::{Duration, Instant};

use polyrelay::providers::OpenAi;
use polyrelay::{
    Chain, ChatRequest, ContextOverflow, ErrorKind, Hedge, Limit, MidStreamRecovery, Relay,
    RetryPolicy, Target,
};
use support::*;

fn req(model: &str) -> ChatRequest {
    ChatRequest::new(model).user("Where is my order #123?")
}

fn build_err(b: polyrelay::RelayBuilder) -> polyrelay::Error {
    b.build().expect_err("the configuration must be rejected")
}

fn sim_builder(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder().provider("sim", openai_at(sim, "sk-test"))
}

// --- Chains as values -------------------------------------------------------------------

#[test]
fn targets_and_chains_deserialize_with_durations() {
    let chain: Chain = serde_json::from_str(
        r#"{
            "targets": [
                "openai/gpt-4o",
                {"provider": "anthropic", "model": "claude-sonnet-4",
                 "attempt_timeout": "2.5s", "prefill": true, "context_window": 200000,
                 "tags": ["eu"], "weight": 2.0, "max_attempts": 3},
                "openrouter/meta-llama/llama-3.3-70b"
            ],
            "first_token_timeout": "250ms",
            "total_timeout": "1m30s",
            "retry": {"max_attempts": 3, "base_delay": "200ms"},
            "mid_stream_recovery": "continue_only",
            "context_overflow": "next_target",
            "hedge": {"after": "400ms", "max_extra": 2}
        }"#,
    )
    .expect("chain");
    assert_eq!(chain.targets.len(), 3);
    assert_eq!(chain.targets[0], Target::new("openai", "gpt-4o"));
    assert_eq!(
        chain.targets[1],
        Target::new("anthropic", "claude-sonnet-4")
            .attempt_timeout(Duration::from_millis(2500))
            .prefill(true)
            .context_window(200_000)
            .tags(["eu"])
            .weight(2.0)
            .max_attempts(3)
    );
    assert_eq!(chain.targets[2].model, "meta-llama/llama-3.3-70b");
    assert_eq!(chain.first_token_timeout, Some(Duration::from_millis(250)));
    assert_eq!(chain.total_timeout, Some(Duration::from_secs(90)));
    assert_eq!(chain.retry.as_ref().map(|r| r.max_attempts), Some(3));
    assert_eq!(
        chain.mid_stream_recovery,
        Some(MidStreamRecovery::ContinueOnly)
    );
    assert_eq!(chain.context_overflow, Some(ContextOverflow::NextTarget));
    assert_eq!(
        chain.hedge,
        Some(Hedge::after(Duration::from_millis(400)).max_extra(2))
    );
    // The same chain in code.
    let built = Chain::new()
        .target("openai/gpt-4o")
        .first_token_timeout(Duration::from_millis(250));
    assert_eq!(built.targets[0], chain.targets[0]);
}

#[test]
fn bad_chain_files_are_refused_with_the_reason() {
    for (text, needle) in [
        (r#"{"targets": ["gpt-4o"]}"#, "provider/model"),
        (r#"{"targets": [], "total_timeout": "5"}"#, "no unit"),
        (
            r#"{"targets": [], "total_timeout": "5 parsecs"}"#,
            "unknown unit",
        ),
        (r#"{"targets": [], "totl_timeout": "5s"}"#, "unknown field"),
        (
            r#"{"targets": [{"provider": "a", "model": "b", "timeout": "1s"}]}"#,
            "unknown field",
        ),
        (r#"{"mid_stream_recovery": "sometimes"}"#, "unknown variant"),
        (r#"{"retry": {"retries": 2}}"#, "unknown field"),
    ] {
        let err = serde_json::from_str::<Chain>(text).expect_err(text);
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
}

#[test]
fn per_target_settings_do_not_depend_on_where_they_stand() {
    // Chain-wide settings are defaults for every target, wherever they are written.
    let a = Chain::new()
        .attempt_timeout(Duration::from_secs(3))
        .target("p/a")
        .target(Target::new("p", "b").attempt_timeout(Duration::from_secs(1)));
    let b = Chain::new()
        .target("p/a")
        .target(Target::new("p", "b").attempt_timeout(Duration::from_secs(1)))
        .attempt_timeout(Duration::from_secs(3));
    assert_eq!(a, b);
    assert_eq!(a.targets[0].attempt_timeout, None);
    assert_eq!(a.targets[1].attempt_timeout, Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn build_rejects_what_cannot_work_naming_route_and_target() {
    let sim = Simulator::start().await.unwrap();
    let cases: Vec<(polyrelay::RelayBuilder, &[&str])> = vec![
        (
            sim_builder(&sim).route(
                "support",
                Chain::new().target(Target::new("sim", "m").attempt_timeout(Duration::ZERO)),
            ),
            &["support", "sim/m", "attempt_timeout", "greater than zero"],
        ),
        (
            sim_builder(&sim).route(
                "support",
                Chain::of(["sim/m"]).total_timeout(Duration::from_secs(90 * 24 * 3600)),
            ),
            &["support", "total_timeout", "longer than"],
        ),
        (
            sim_builder(&sim).route(
                "support",
                Chain::new().target(
                    Target::new("sim", "m").first_token_timeout(Duration::from_secs(48 * 3600)),
                ),
            ),
            &["support", "sim/m", "first_token_timeout"],
        ),
        (
            sim_builder(&sim).route("support", Chain::of(["nope/m"])),
            &["support", "nope/m", "unknown provider", "sim"],
        ),
        (
            sim_builder(&sim).route("sim/gpt-4o", Chain::of(["sim/m"])),
            &["sim/gpt-4o", "shadows"],
        ),
        (
            sim_builder(&sim).route("support", Chain::of(["sim"])),
            &["support", "provider and a model"],
        ),
        (
            sim_builder(&sim).route("support", Chain::new()),
            &["support", "no target"],
        ),
        (
            sim_builder(&sim)
                .route("support", Chain::of(["sim/m"]))
                .route("support", Chain::of(["sim/n"])),
            &["support", "twice"],
        ),
        (
            sim_builder(&sim).route(
                "support",
                Chain::of(["sim/m"]).retry(
                    RetryPolicy::default().backoff(Duration::from_secs(1), Duration::from_secs(1)),
                ),
            ),
            &[],
        ),
        (
            sim_builder(&sim).defaults(Chain::new().stream_idle_timeout(Duration::ZERO)),
            &["defaults", "stream_idle_timeout"],
        ),
        (
            sim_builder(&sim).defaults(Chain::of(["sim/m"])),
            &["defaults", "no targets"],
        ),
        (
            sim_builder(&sim).route(
                "support",
                Chain::new().target(Target::new("sim", "m").weight(f64::NAN)),
            ),
            &["support", "weight"],
        ),
    ];
    for (builder, needles) in cases {
        if needles.is_empty() {
            builder.build().expect("a valid configuration builds");
            continue;
        }
        let err = build_err(builder);
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        for n in needles {
            assert!(err.message().contains(n), "{n:?} not in {err}");
        }
    }
}

#[test]
fn a_base_url_that_does_not_parse_fails_at_build() {
    let err = build_err(
        Relay::builder()
            .provider("local", OpenAi::compatible("local", "not a url", "k"))
            .route("r", Chain::of(["local/m"])),
    );
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("local"), "{err}");
}

// --- Request-scoped fallbacks and scoped chains -----------------------------------------

#[tokio::test]
async fn a_request_carries_its_own_fallbacks() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script("backup", [Reply::openai_text("from the backup")]);
    let relay = sim_builder(&sim)
        .route("backups", Chain::of(["sim/backup"]))
        .build()
        .unwrap();
    // provider/model, then a provider/model fallback.
    let resp = guarded(relay.chat(req("sim/primary").fallbacks(["sim/backup"])))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from the backup");
    let tried: Vec<String> = resp
        .meta
        .attempts
        .iter()
        .map(|a| a.target.to_string())
        .collect();
    assert_eq!(tried, ["sim/primary", "sim/primary", "sim/backup"]);
    // A route name as a fallback, streamed.
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script(
        "backup",
        [Reply::openai_stream_text(&["from ", "the ", "route"])],
    );
    let resp = folded(&relay, req("sim/primary").fallbacks(["backups"]))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from the route");
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/backup");
    // An unknown fallback is an error before anything is sent.
    sim.clear();
    let err = relay
        .chat(req("sim/primary").fallbacks(["nowhere"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRoute);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn provider_model_calls_and_fallbacks_get_the_relay_defaults() {
    let sim = Simulator::start().await.unwrap();
    sim.script("slow", [Reply::hang()]);
    sim.script("quick", [Reply::openai_stream_text(&["on ", "time"])]);
    let relay = sim_builder(&sim)
        .defaults(
            Chain::new()
                .first_token_timeout(Duration::from_millis(300))
                .total_timeout(Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = folded(&relay, req("sim/slow").fallbacks(["sim/quick"]))
        .await
        .unwrap();
    assert_eq!(resp.text(), "on time");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "the default 300 ms window applied: {elapsed:?}"
    );
    let first = &resp.meta.attempts[0];
    assert_eq!(
        first.error.as_ref().unwrap().limit(),
        Some(Limit::FirstToken)
    );
    assert_eq!(
        sim.requests_for("slow").len(),
        1,
        "a silent target is tried once"
    );
}

#[tokio::test]
async fn a_scoped_chain_is_resolved_once_and_reused() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    sim.script("fallback", [Reply::openai_text("scoped answer")]);
    let relay = sim_builder(&sim).build().unwrap();
    let scoped = relay
        .scoped(
            &Chain::new()
                .target(Target::new("sim", "primary").max_attempts(1))
                .target("sim/fallback"),
        )
        .unwrap();
    // The request's model is not looked up: the chain decides.
    let resp = guarded(scoped.chat(req("whatever"))).await.unwrap();
    assert_eq!(resp.text(), "scoped answer");
    assert_eq!(resp.meta.attempts.len(), 2);
    sim.script(
        "fallback",
        [Reply::openai_stream_text(&["scoped ", "stream"])],
    );
    let stream = guarded(scoped.chat_stream(&req("whatever"))).await.unwrap();
    assert_eq!(
        guarded(stream.into_response()).await.unwrap().text(),
        "scoped stream"
    );
    let err = relay.scoped(&Chain::of(["nope/m"])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

// --- Errors a caller can match ----------------------------------------------------------

#[tokio::test]
async fn predicates_tell_errors_apart_without_reading_messages() {
    let sim = Simulator::start().await.unwrap();
    // Attempt timeout.
    sim.script("silent", [Reply::hang()]);
    let relay = sim_builder(&sim)
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", "silent").attempt_timeout(Duration::from_millis(200))),
        )
        .build()
        .unwrap();
    let err = guarded(relay.chat(req("r"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert!(err.is_timeout() && !err.is_deadline(), "{err:?}");
    assert_eq!(err.last_error().unwrap().limit(), Some(Limit::Attempt));
    assert!(err.is_retryable());
    // The call's own deadline.
    let err = guarded(relay.chat(req("r").timeout(Duration::from_millis(150))))
        .await
        .unwrap_err();
    assert!(err.is_deadline() && err.is_timeout(), "{err:?}");
    assert_eq!(err.last_error().unwrap().limit(), Some(Limit::Deadline));
    // Connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let relay = Relay::builder()
        .provider(
            "gone",
            OpenAi::compatible("gone", &format!("http://127.0.0.1:{port}/v1"), "k"),
        )
        .defaults(Chain::new().retry(RetryPolicy::no_retries()))
        .build()
        .unwrap();
    let err = guarded(relay.chat(req("gone/m"))).await.unwrap_err();
    assert!(err.last_error().unwrap().is_connect(), "{err:?}");
    assert!(err.is_retryable());
    // An invalid request: not retryable; status, code and type kept.
    sim.script(
        "picky",
        [Reply::openai_error(
            400,
            "invalid_request_error",
            Some("unsupported_parameter"),
            "Unsupported parameter: 'foo'",
        )],
    );
    let relay = sim_builder(&sim).build().unwrap();
    let err = guarded(relay.chat(req("sim/picky"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(!err.is_retryable() && !err.is_timeout() && !err.is_connect());
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("unsupported_parameter"));
    assert_eq!(err.error_type(), Some("invalid_request_error"));
    // A rate limit.
    sim.script(
        "busy",
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "60"),
        ],
    );
    let err = guarded(relay.chat(req("sim/busy"))).await.unwrap_err();
    assert!(err.last_error().unwrap().is_rate_limited());
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_route_that_failed_everywhere_answers_from_its_last_error() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    sim.script(
        "fallback",
        [Reply::openai_error(
            503,
            "service_unavailable",
            Some("overloaded"),
            "busy",
        )],
    );
    let relay = relay(&sim, primary_fallback().retry(RetryPolicy::no_retries()));
    let err = guarded(relay.chat(req("r"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(err.attempts().len(), 2);
    let last = err.last_error().unwrap();
    assert_eq!(last.kind(), ErrorKind::Overloaded);
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.code(), Some("overloaded"));
    assert_eq!(err.error_type(), Some("service_unavailable"));
    assert_eq!(err.target().unwrap().to_string(), "sim/fallback");
    assert_eq!(err.provider(), Some("sim"));
    // The cause chain leads to the last error.
    let source = err.source().expect("a source");
    assert_eq!(source.to_string(), last.to_string());
}

#[tokio::test]
async fn display_prints_each_cause_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = OpenAi::compatible("gone", &format!("http://127.0.0.1:{port}/v1"), "k");
    let cx = polyrelay::CallContext::shared().unwrap();
    let err = polyrelay::Provider::chat(&p, &req("m"), "m", &cx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    // Walk the chain as error reporters (anyhow, eyre) do: no line repeats another.
    let mut lines = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(c) = cur {
        lines.push(c.to_string());
        cur = c.source();
    }
    assert!(lines.len() >= 2, "the cause is kept: {lines:?}");
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            assert!(!a.contains(b.as_str()), "{a:?} repeats its cause {b:?}");
        }
    }
}

#[tokio::test]
async fn no_duration_makes_the_relay_panic() {
    let sim = Simulator::start().await.unwrap();
    sim.script("m", [Reply::openai_text("fine")]);
    sim.script("s", [Reply::openai_stream_text(&["fine ", "too"])]);
    let relay = sim_builder(&sim)
        .route(
            "hedged",
            Chain::of(["sim/m"]).hedge(Hedge::after(Duration::from_secs(24 * 3600))),
        )
        .build()
        .unwrap();
    let resp = guarded(relay.chat(req("sim/m").timeout(Duration::MAX)))
        .await
        .unwrap();
    assert_eq!(resp.text(), "fine");
    sim.script("m", [Reply::openai_text("fine")]);
    let resp = guarded(relay.chat(req("hedged").timeout(Duration::MAX)))
        .await
        .unwrap();
    assert_eq!(resp.text(), "fine");
    let stream = guarded(relay.chat_stream(req("sim/s").timeout(Duration::MAX)))
        .await
        .unwrap();
    assert_eq!(
        guarded(stream.into_response()).await.unwrap().text(),
        "fine too"
    );
}

#[tokio::test]
async fn redirects_are_followed_on_the_same_host_only() {
    let sim = Simulator::start().await.unwrap();
    let other = Simulator::start().await.unwrap();
    let port = other.addr().port();
    // Another host name for the same loopback: the key headers must not go there.
    sim.script(
        "moved",
        [Reply::json(307, "{}").header(
            "location",
            &format!("http://localhost:{port}/v1/chat/completions"),
        )],
    );
    other.script("moved", [Reply::openai_text("should not be reached")]);
    let relay = sim_builder(&sim)
        .defaults(Chain::new().retry(RetryPolicy::no_retries()))
        .build()
        .unwrap();
    let err = guarded(relay.chat(req("sim/moved"))).await.unwrap_err();
    assert_eq!(err.status(), Some(307), "{err}");
    assert!(
        other.requests().is_empty(),
        "no request follows to another host"
    );
    // The same host: followed.
    let base = sim.base_url();
    sim.script(
        "here",
        [
            Reply::json(307, "{}").header("location", &format!("{base}/v1/chat/completions")),
            Reply::openai_text("after the redirect"),
        ],
    );
    let resp = guarded(relay.chat(req("sim/here"))).await.unwrap();
    assert_eq!(resp.text(), "after the redirect");
    assert_eq!(
        sim.requests_for("here").len(),
        2,
        "the redirect was followed"
    );
}

// --- Pattern routes ---------------------------------------------------------------------

/// A route named `provider/*` (or `provider/prefix*`) serves every model of that provider
/// with the same fallbacks, so a deployment need not write one route per model (issue 23,
/// point 7); the longest prefix wins.
#[tokio::test]
async fn a_pattern_route_gives_every_matching_model_the_same_fallbacks() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("from the fallback"));
    sim.script(
        "gpt-x",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script(
        "gpt-4-y",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    let relay = sim_builder(&sim)
        .route(
            "sim/*",
            Chain::of(["sim/backup"]).retry(RetryPolicy::no_retries()),
        )
        .route(
            "sim/gpt-4*",
            Chain::of(["sim/big-backup"]).retry(RetryPolicy::no_retries()),
        )
        .build()
        .unwrap();
    assert!(relay.has_route("sim/anything") && !relay.has_route("other/anything"));
    let resp = relay.chat(&req("sim/gpt-x")).await.unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("sim/*"));
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/backup");
    let resp = relay.chat(&req("sim/gpt-4-y")).await.unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("sim/gpt-4*"));
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/big-backup");
    // The fallback itself is not tried twice when it is the model asked for.
    sim.script(
        "backup",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    let err = relay.chat(&req("sim/backup")).await.unwrap_err();
    assert_eq!(err.attempts().len(), 1);
}

#[test]
fn a_bad_pattern_route_is_refused_at_build() {
    for name in ["sim/a*b*", "nope/*"] {
        let e = build_err(
            Relay::builder()
                .provider(
                    "sim",
                    OpenAi::compatible("sim", "http://127.0.0.1:9/v1", ""),
                )
                .route(name, Chain::of(["sim/x"])),
        );
        assert_eq!(e.kind(), ErrorKind::Config, "{name}: {e}");
        assert!(e.to_string().contains(name), "{e}");
    }
}
