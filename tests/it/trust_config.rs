//! Every setting is checked when it is given (issue #19, point 5): from code
//! (`Relay::builder()`) and from a file (`RelayConfig`) alike, a setting that cannot work is a
//! `Config` error — a file's names the key and the line — never a panic or a silent outage on
//! a later request. A breaker's endless cooldown used to pass and then panic on the request
//! path at the target's first failure.

use crate::support;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use polyrelay::config::{ConfigError, RelayConfig};
use polyrelay::providers::OpenAi;
use polyrelay::{
    BreakerPolicy, BreakerState, Chain, ChatRequest, Error, ErrorKind, Relay, RelayBuilder,
    RetryBudget, RetryPolicy, Target,
};
use support::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn req() -> ChatRequest {
    ChatRequest::new("r").user("hello")
}

/// A provider at an address nothing listens on: for checks made before any call.
fn nowhere() -> OpenAi {
    OpenAi::compatible("sim", "http://127.0.0.1:9/v1", "sk-test")
}

/// A builder with the provider `sim` and the route `r` over `sim/primary`, `sim/fallback`.
fn builder() -> RelayBuilder {
    Relay::builder()
        .provider("sim", nowhere())
        .route("r", Chain::of(["sim/primary", "sim/fallback"]))
}

/// The error a builder's `build` gives: a `Config` error.
#[track_caller]
fn build_error(b: RelayBuilder) -> Error {
    match b.build() {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            e
        }
    }
}

/// Seven lines: the provider `sim` (lines 1–4) and the route `r` (lines 6–7); settings
/// appended start on line 8.
const FILE: &str = "[providers.sim]\nkind = \"openai_compatible\"\n\
    base_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"SIM_KEY\"\n\n\
    [routes.r]\ntargets = [\"sim/primary\", \"sim/fallback\"]\n";

/// The error building `text` gives, with every environment variable answered.
#[track_caller]
fn file_error(text: &str) -> ConfigError {
    let built = RelayConfig::from_toml_str(text)
        .and_then(|c| c.build_with_env(|_| Some("sk-test".to_owned())));
    match built {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Calls `relay` `n` times, failing the test if a call panics (today's main did, in the
/// breaker's arithmetic); returns how many calls succeeded.
async fn drive_without_panic(relay: &Relay, n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let call = AssertUnwindSafe(relay.chat(req())).catch_unwind().await;
        match call {
            Ok(result) => ok += usize::from(result.is_ok()),
            Err(_) => panic!("call {i} panicked on the request path"),
        }
    }
    ok
}

/// A simulator whose `primary` always fails with a 500 and whose `fallback` answers.
async fn failing_primary() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(500, "server_error", None, "down")],
    );
    sim.set_default(Reply::openai_text("ok"));
    sim
}

fn endless_breaker() -> BreakerPolicy {
    BreakerPolicy::default()
        .consecutive_failures(1)
        .cooldown(Duration::MAX)
}

// ---------------------------------------------------------------------------------------
// The breaker's cooldown: refused when endless, working when long
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_endless_cooldown_from_code_is_refused_instead_of_panicking_later() {
    let sim = failing_primary().await;
    let built = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .breaker(endless_breaker())
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", "primary").max_attempts(1))
                .target("sim/fallback"),
        )
        .build();
    match built {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.message().contains("breaker: cooldown"), "{e}");
            assert!(e.message().contains("24 h"), "{e}");
        }
        Ok(relay) => {
            // What today's main does: the primary's first failure panics in the breaker.
            let served = guarded(drive_without_panic(&relay, 3)).await;
            panic!("an endless cooldown was accepted (and {served} calls were served)");
        }
    }
    // The same through breaker_for.
    let e = build_error(builder().breaker_for("sim/primary", endless_breaker()));
    assert!(
        e.message()
            .starts_with("breaker_for(\"sim/primary\"): cooldown"),
        "{e}"
    );
}

#[tokio::test]
async fn an_endless_cooldown_from_a_file_is_placed_instead_of_panicking_later() {
    let sim = failing_primary().await;
    let dir = std::env::temp_dir().join(format!("polyrelay-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        "[providers.sim]\nkind = \"openai_compatible\"\nbase_url = \"${SIM}/v1\"\n\
         api_key_env = \"SIM_KEY\"\n\n[routes.r]\ntargets = [{ provider = \"sim\", model = \
         \"primary\", max_attempts = 1 }, \"sim/fallback\"]\n\n[breaker]\n\
         consecutive_failures = 1\ncooldown = \"18000000000000000000s\"\n",
    )
    .unwrap();
    let base = sim.base_url();
    let built = RelayConfig::from_file(&path).and_then(|c| {
        c.build_with_env(|var| match var {
            "SIM" => Some(base.clone()),
            _ => Some("sk-test".to_owned()),
        })
    });
    std::fs::remove_dir_all(&dir).ok();
    match built {
        Err(e) => {
            assert_at(&e, 11, "breaker.cooldown", "longer than the 24 h allowed");
            assert_eq!(e.file(), Some(path.as_path()));
            let relay_error: Error = e.into();
            assert_eq!(relay_error.kind(), ErrorKind::Config);
        }
        Ok(relay) => {
            let served = guarded(drive_without_panic(&relay, 3)).await;
            panic!("an endless cooldown was accepted (and {served} calls were served)");
        }
    }
}

#[tokio::test]
async fn a_day_long_cooldown_is_accepted_and_the_relay_keeps_working() {
    let sim = failing_primary().await;
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .breaker(
            BreakerPolicy::default()
                .consecutive_failures(1)
                .cooldown(polyrelay::relay::MAX_TIMEOUT),
        )
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", "primary").max_attempts(1))
                .target("sim/fallback"),
        )
        .route(
            "alone",
            Chain::new().target(Target::new("sim", "primary").max_attempts(1)),
        )
        .build()
        .expect("24 h is the longest cooldown allowed, and allowed");
    // The primary fails once, opens for a day, and the fallback serves every call.
    assert_eq!(guarded(drive_without_panic(&relay, 5)).await, 5);
    assert_eq!(sim.requests_for("primary").len(), 1);
    assert_eq!(sim.requests_for("fallback").len(), 5);
    let primary = relay
        .health()
        .into_iter()
        .find(|h| &*h.target.model == "primary")
        .unwrap();
    assert_eq!(primary.state, BreakerState::Open);
    assert!(
        primary
            .next_probe_in
            .is_some_and(|d| d > Duration::from_secs(23 * 3600)),
        "{primary:?}"
    );
    // A route whose only target is open still tries it as a last resort, and fails cleanly.
    for _ in 0..3 {
        let call = AssertUnwindSafe(relay.chat(ChatRequest::new("alone").user("hi")))
            .catch_unwind()
            .await;
        let err = call.expect("no panic").unwrap_err();
        assert_ne!(err.kind(), ErrorKind::Config, "{err}");
    }
    assert!(
        sim.requests_for("primary").len() > 1,
        "the last resort was tried"
    );
}

// ---------------------------------------------------------------------------------------
// The other breaker settings, and the retry budget
// ---------------------------------------------------------------------------------------

#[test]
fn a_breaker_that_needs_no_failure_to_open_is_refused() {
    let e = file_error(&format!("{FILE}\n[breaker]\nconsecutive_failures = 0\n"));
    assert_at(&e, 10, "breaker.consecutive_failures", "at least 1");
    let mut p = BreakerPolicy::default();
    p.consecutive_failures = 0;
    let e = build_error(builder().breaker(p));
    assert!(
        e.message()
            .starts_with("breaker: consecutive_failures must be at least 1"),
        "{e}"
    );
    // The setter documents its clamp: 0 is raised to 1.
    assert_eq!(
        BreakerPolicy::default()
            .consecutive_failures(0)
            .consecutive_failures,
        1
    );
}

#[test]
fn a_zero_cooldown_is_refused() {
    let e = file_error(&format!("{FILE}\n[breaker]\ncooldown = \"0s\"\n"));
    assert_at(&e, 10, "breaker.cooldown", "greater than zero");
    let e = file_error(&format!(
        "{FILE}\n[breakers.\"sim/primary\"]\ncooldown = \"0s\"\n"
    ));
    assert_at(
        &e,
        10,
        "breakers.\"sim/primary\".cooldown",
        "greater than zero",
    );
    let e = build_error(builder().breaker(BreakerPolicy::default().cooldown(Duration::ZERO)));
    assert!(
        e.message().contains("cooldown must be greater than zero"),
        "{e}"
    );
}

#[test]
fn an_error_rate_outside_zero_to_one_is_refused() {
    for (written, shown) in [("nan", "NaN"), ("1.5", "1.5"), ("-0.5", "-0.5")] {
        let e = file_error(&format!("{FILE}\n[breaker]\nerror_rate = {written}\n"));
        assert_at(&e, 10, "breaker.error_rate", "from 0 to 1");
        assert!(e.message().contains(shown), "{e}");
    }
    for rate in [f64::NAN, 1.5, -0.5, f64::INFINITY] {
        let e = build_error(builder().breaker(BreakerPolicy::default().error_rate(rate, 10)));
        assert!(
            e.message().starts_with("breaker: error_rate"),
            "{rate}: {e}"
        );
    }
    // The bounds themselves are fine, and so is a disabled breaker.
    for rate in [0.0, 1.0] {
        builder()
            .breaker(BreakerPolicy::default().error_rate(rate, 10))
            .build()
            .unwrap();
    }
    builder()
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
}

#[test]
fn a_zero_window_is_refused() {
    let e = file_error(&format!("{FILE}\n[breaker]\nwindow = \"0s\"\n"));
    assert_at(&e, 10, "breaker.window", "greater than zero");
    let e = build_error(builder().breaker(BreakerPolicy::default().window(Duration::ZERO)));
    assert!(e.message().starts_with("breaker: window"), "{e}");
}

#[test]
fn a_retry_budget_ratio_over_one_is_refused() {
    let e = file_error(&format!("{FILE}\n[retry_budget]\nratio = 5.0\n"));
    assert_at(&e, 10, "retry_budget.ratio", "from 0 to 1");
    let e = build_error(builder().retry_budget(RetryBudget::new(5.0, 10.0)));
    assert!(e.message().starts_with("retry_budget: ratio"), "{e}");
    let e = build_error(builder().retry_budget(RetryBudget::new(0.2, f64::INFINITY)));
    assert!(e.message().starts_with("retry_budget: burst"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Attempts and timeouts
// ---------------------------------------------------------------------------------------

#[test]
fn max_attempts_has_a_ceiling() {
    // On a route's retry policy, on a target, in the defaults.
    let e = file_error(&format!("{FILE}retry = {{ max_attempts = 4294967295 }}\n"));
    assert_at(&e, 8, "routes.r.retry.max_attempts", "from 1 to 10");
    let e = file_error(
        "[providers.sim]\nkind = \"openai_compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         api_key_env = \"SIM_KEY\"\n\n[routes.r]\ntargets = [\"sim/a\", \
         { provider = \"sim\", model = \"b\", max_attempts = 4294967295 }]\n",
    );
    assert_at(&e, 7, "routes.r.targets[1].max_attempts", "4294967295");
    let e = file_error(&format!(
        "{FILE}\n[defaults]\nretry = {{ max_attempts = 11 }}\n"
    ));
    assert_at(&e, 10, "defaults.retry.max_attempts", "from 1 to 10");
    let e = build_error(Relay::builder().provider("sim", nowhere()).route(
        "r",
        Chain::new().target(Target::new("sim", "m").max_attempts(u32::MAX)),
    ));
    assert!(
        e.message()
            .contains("target \"sim/m\": max_attempts must be from 1 to 10"),
        "{e}"
    );
    let e = build_error(
        builder().defaults(Chain::new().retry(RetryPolicy::default().max_attempts(u32::MAX))),
    );
    assert!(
        e.message()
            .starts_with("relay defaults: retry.max_attempts"),
        "{e}"
    );
    // The ceiling itself is allowed.
    builder()
        .defaults(Chain::new().retry(RetryPolicy::default().max_attempts(10)))
        .build()
        .unwrap();
}

#[test]
fn a_total_timeout_under_a_millisecond_is_refused() {
    let e = file_error(&format!("{FILE}total_timeout = \"1ns\"\n"));
    assert_at(
        &e,
        8,
        "routes.r.total_timeout",
        "shorter than the 1 ms allowed",
    );
    let e = build_error(Relay::builder().provider("sim", nowhere()).route(
        "r",
        Chain::of(["sim/m"]).total_timeout(Duration::from_nanos(1)),
    ));
    assert!(e.message().starts_with("route \"r\": total_timeout"), "{e}");
    Relay::builder()
        .provider("sim", nowhere())
        .route(
            "r",
            Chain::of(["sim/m"]).total_timeout(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
}

#[test]
fn a_first_token_window_longer_than_the_total_timeout_is_refused() {
    // On the chain.
    let e = file_error(&format!(
        "{FILE}first_token_timeout = \"30s\"\ntotal_timeout = \"20s\"\n"
    ));
    assert_at(
        &e,
        8,
        "routes.r.first_token_timeout",
        "longer than the total_timeout",
    );
    // On a target.
    let e = file_error(
        "[providers.sim]\nkind = \"openai_compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         api_key_env = \"SIM_KEY\"\n\n[routes.r]\ntotal_timeout = \"20s\"\ntargets = [\"sim/a\", \
         { provider = \"sim\", model = \"b\", first_token_timeout = \"30s\" }]\n",
    );
    assert_at(
        &e,
        8,
        "routes.r.targets[1].first_token_timeout",
        "longer than",
    );
    // In the defaults, against their own total timeout, or the built-in 300 s.
    let e = file_error(&format!(
        "{FILE}\n[defaults]\nfirst_token_timeout = \"30s\"\ntotal_timeout = \"20s\"\n"
    ));
    assert_at(&e, 10, "defaults.first_token_timeout", "longer than");
    let e = file_error(&format!(
        "{FILE}\n[defaults]\nfirst_token_timeout = \"400s\"\n"
    ));
    assert_at(&e, 10, "defaults.first_token_timeout", "(300 s)");
    // The defaults' window under a route's shorter deadline: the route's deadline is named.
    let e = file_error(&format!(
        "{FILE}total_timeout = \"20s\"\n\n[defaults]\nfirst_token_timeout = \"30s\"\n"
    ));
    assert_at(&e, 8, "routes.r.total_timeout", "shorter than");
    // From code, at each level.
    let e = build_error(
        builder().route(
            "s",
            Chain::of(["sim/m"])
                .first_token_timeout(Duration::from_secs(30))
                .total_timeout(Duration::from_secs(20)),
        ),
    );
    assert!(
        e.message().starts_with("route \"s\": first_token_timeout"),
        "{e}"
    );
    let e = build_error(
        builder().route(
            "s",
            Chain::new()
                .target(Target::new("sim", "m").first_token_timeout(Duration::from_secs(30)))
                .total_timeout(Duration::from_secs(20)),
        ),
    );
    assert!(
        e.message()
            .starts_with("route \"s\": target \"sim/m\": first_token_timeout"),
        "{e}"
    );
    let e = build_error(
        builder().defaults(
            Chain::new()
                .first_token_timeout(Duration::from_secs(30))
                .total_timeout(Duration::from_secs(20)),
        ),
    );
    assert!(
        e.message()
            .starts_with("relay defaults: first_token_timeout"),
        "{e}"
    );
    // A window that fits is fine.
    builder()
        .defaults(
            Chain::new()
                .first_token_timeout(Duration::from_secs(20))
                .total_timeout(Duration::from_secs(20)),
        )
        .build()
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// The file as a whole, the gateway, credentials
// ---------------------------------------------------------------------------------------

#[test]
fn a_zero_body_limit_and_other_file_settings_are_refused() {
    let e = RelayConfig::from_toml_str(&format!("{FILE}\n[gateway]\nmax_body_bytes = 0\n"))
        .unwrap_err();
    assert_at(&e, 10, "gateway.max_body_bytes", "at least 1024");
    let ok =
        RelayConfig::from_toml_str(&format!("{FILE}\n[gateway]\nmax_body_bytes = 1024\n")).unwrap();
    assert_eq!(ok.gateway_settings().max_body_bytes, Some(1024));
    // The other settings of the file's own tables.
    let e = RelayConfig::from_toml_str(&format!(
        "{FILE}\n[gateway]\nshutdown_grace = \"18000000000000000000s\"\n"
    ))
    .unwrap_err();
    assert_at(
        &e,
        10,
        "gateway.shutdown_grace",
        "longer than the 24 h allowed",
    );
    let e = RelayConfig::from_toml_str(&format!("{FILE}\n[stats]\nwindow = \"0s\"\n")).unwrap_err();
    assert_at(&e, 10, "stats.window", "greater than zero");
}

#[test]
fn a_file_that_defines_nothing_is_refused() {
    for text in [
        "",
        "   \n",
        "# a relay, some day\n\n# nothing yet\n",
        "[gateway]\nlisten = \"127.0.0.1:4000\"\n",
    ] {
        let e = RelayConfig::from_toml_str(text).unwrap_err();
        assert!(
            e.message().contains("defines no route, router or provider"),
            "{text:?}: {e}"
        );
    }
    let dir = std::env::temp_dir().join(format!("polyrelay-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.toml");
    std::fs::write(&path, "# TODO: providers\n").unwrap();
    let e = Relay::from_config_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(e.file(), Some(path.as_path()));
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    assert!(e.message().contains("defines no route"), "{e}");
}

#[test]
fn a_literal_key_in_a_header_is_refused() {
    for (header, value) in [
        ("Authorization", "Bearer sk-live-123456"),
        ("x-api-key", "sk-ant-live-123456"),
        ("api-key", "0123456789abcdef"),
        ("X-Custom", "Bearer sk-live-123456"),
    ] {
        let text = format!("{FILE}\n[providers.sim.headers]\n{header:?} = {value:?}\n");
        let e = file_error(&text);
        let key = if header
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            format!("providers.sim.headers.{header}")
        } else {
            format!("providers.sim.headers.{header:?}")
        };
        assert_at(&e, 10, &key, "literal credential");
        assert!(e.message().contains("${VAR}"), "{e}");
        assert!(!e.to_string().contains(value), "{e}");
        assert!(!format!("{e:?}").contains(value), "{e:?}");
    }
    // Named by environment variable, they build.
    for value in ["${SIM_HEADER_KEY}", "Bearer ${SIM_HEADER_KEY}"] {
        RelayConfig::from_toml_str(&format!(
            "{FILE}\n[providers.sim.headers]\nAuthorization = {value:?}\nanthropic-beta = \"tools-2024\"\n"
        ))
        .unwrap()
        .build_with_env(|_| Some("sk-test".to_owned()))
        .unwrap();
    }
}

#[test]
fn a_literal_key_in_a_base_url_is_refused() {
    for url in [
        "https://llm.example/v1?key=AIzaSyLiteral",
        "https://llm.example/v1?api-version=2024&api_key=literal",
        "https://user:hunter2@llm.example/v1",
    ] {
        let text = FILE.replace("http://127.0.0.1:9/v1", url);
        let e = file_error(&text);
        assert_at(&e, 3, "providers.sim.base_url", "literal credential");
        for secret in ["AIzaSyLiteral", "=literal", "hunter2"] {
            assert!(!e.to_string().contains(secret), "{e}");
        }
    }
    let text = FILE.replace(
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:9/v1?api-version=2024&key=${SIM_URL_KEY}",
    );
    RelayConfig::from_toml_str(&text)
        .unwrap()
        .build_with_env(|_| Some("sk-test".to_owned()))
        .unwrap();
}

#[test]
fn router_rule_settings_are_checked() {
    let rule = |setting: &str| {
        format!(
            "{FILE}\n[routers.s]\ndefault = \"r\"\n[[routers.s.rules]]\nname = \"n\"\n\
             llm = {{ route = \"r\", labels = {{ a = \"r\" }}, {setting} }}\n"
        )
    };
    let e = file_error(&rule("budget = \"0s\""));
    assert_at(&e, 13, "routers.s.rules[0].llm.budget", "greater than zero");
    let e = file_error(&rule("max_tokens = 0"));
    assert_at(&e, 13, "routers.s.rules[0].llm.max_tokens", "at least 1");
    let e = file_error(&rule("cache = 1000000000000"));
    assert_at(&e, 13, "routers.s.rules[0].llm.cache", "at most 1000000");
    let e = file_error(&format!(
        "{FILE}\n[routers.s]\ndefault = \"r\"\n[[routers.s.rules]]\nname = \"n\"\n\
         language = {{ scripts = {{ han = \"r\" }}, min_confidence = 1.5 }}\n"
    ));
    assert_eq!(e.line(), Some(13), "{e}");
    assert!(e.message().contains("from 0 to 1"), "{e}");
}

#[test]
fn an_endless_wait_or_park_from_a_file_is_refused() {
    let e = file_error(&format!(
        "{FILE}\n[rate_limits.\"sim/primary\"]\nrequests_per_minute = 5\n\
         wait_up_to = \"18000000000000000000s\"\n"
    ));
    assert_at(
        &e,
        11,
        "rate_limits.\"sim/primary\".wait_up_to",
        "longer than the 24 h allowed",
    );
}

#[test]
fn the_gateways_bounds_are_read_from_the_file() {
    let ok = RelayConfig::from_toml_str(&format!(
        "{FILE}\n[gateway]\nmax_connections = 500\nmax_concurrent_requests = 64\n\
         header_read_timeout = \"2s\"\nbody_read_timeout = \"5s\"\nallow_any_target = true\n"
    ))
    .unwrap();
    let g = ok.gateway_settings();
    assert_eq!(g.max_connections, Some(500));
    assert_eq!(g.max_concurrent_requests, Some(64));
    assert_eq!(g.header_read_timeout, Some(Duration::from_secs(2)));
    assert_eq!(g.body_read_timeout, Some(Duration::from_secs(5)));
    assert_eq!(g.allow_any_target, Some(true));
}
