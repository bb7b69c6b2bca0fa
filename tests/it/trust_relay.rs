//! Trust at the boundary, through the relay on the loopback simulator: whose fault a failure
//! is (key pools act only on the key's), bounds a request cannot lift, the response window
//! for plain calls, and the relay's own refusals named (rate limit, open breakers, pool keys
//! out, deadline), counted as refusals, never "0 attempts on 0 targets".

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyrelay::accounting::{BudgetEvent, Observer};
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{
    BreakerPolicy, Chain, ChatRequest, ErrorKind, Fault, Limit, LimitScope, LimitedBy, Relay,
    RetryPolicy, SkipReason, Target,
};
use polyrelay::{KeyPool, KeyState};
use support::*;

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

/// A pool of two keys on `sim`, route `r` = gpt-4o-mini then gpt-4o, no retries.
fn pooled(sim: &Simulator) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route(
            "r",
            Chain::of(["sim/gpt-4o-mini", "sim/gpt-4o"]).retry(RetryPolicy::no_retries()),
        )
        .route(
            "big",
            Chain::of(["sim/gpt-4o"]).retry(RetryPolicy::no_retries()),
        )
        .key_pool("sim", KeyPool::new().key("sk-one-AAAA").key("sk-two-BBBB"))
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap()
}

fn keys_sent(sim: &Simulator, model: &str) -> Vec<String> {
    sim.requests_for(model)
        .iter()
        .map(|r| r.header("authorization").unwrap_or("-").to_owned())
        .collect()
}

fn key_states(relay: &Relay) -> Vec<KeyState> {
    let health = relay.health();
    let h = health
        .iter()
        .find(|h| !h.keys.is_empty())
        .expect("a target with a pool");
    h.keys.iter().map(|k| k.state.clone()).collect()
}

fn hi(route: &str) -> ChatRequest {
    ChatRequest::new(route).user("hi")
}

/// OpenAI's answer to one request above the key's tokens-per-minute limit (as documented).
fn request_too_large() -> Reply {
    Reply::openai_error(
        429,
        "tokens",
        Some("rate_limit_exceeded"),
        "Request too large for gpt-4o-mini in organization org-x on tokens per min (TPM): \
         Limit 30000, Requested 52000. The input or output tokens must be reduced in order \
         to run successfully.",
    )
}

#[tokio::test]
async fn a_request_too_large_fails_over_and_leaves_every_key_ready() {
    let sim = sim().await;
    sim.script("gpt-4o-mini", [request_too_large()]);
    sim.set_default(Reply::text("ok"));
    let relay = pooled(&sim);
    let resp = relay.chat(hi("r")).await.unwrap();
    // The other target served; the request was not replayed on the pool's next key.
    assert_eq!(
        resp.meta.served_by.as_ref().unwrap().model.as_ref(),
        "gpt-4o"
    );
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 1, "{:?}", resp.meta);
    let failed = resp.meta.attempts[0].error.as_ref().unwrap();
    assert_eq!(failed.kind(), ErrorKind::RequestTooLarge);
    assert_eq!(failed.fault(), Fault::Request);
    assert!(
        key_states(&relay).iter().all(|s| *s == KeyState::Ready),
        "{:?}",
        key_states(&relay)
    );
}

#[tokio::test]
async fn a_403_on_one_model_rests_the_key_for_that_model_only() {
    let sim = sim().await;
    let no_access = Reply::openai_error(
        403,
        "invalid_request_error",
        Some("model_not_found"),
        "The model `gpt-4o-mini` does not exist or you do not have access to it.",
    );
    // Key one may not use gpt-4o-mini; key two may.
    sim.script("gpt-4o-mini", [no_access, Reply::text("mini by key two")]);
    sim.set_default(Reply::text("ok"));
    let relay = pooled(&sim);
    let first = relay.chat(hi("r")).await.unwrap();
    assert_eq!(first.text(), "mini by key two");
    // Key one is not invalid: the pool shows it ready, and gpt-4o still gets it.
    assert!(key_states(&relay).iter().all(|s| *s == KeyState::Ready));
    for _ in 0..2 {
        relay.chat(hi("big")).await.unwrap();
    }
    let big = keys_sent(&sim, "gpt-4o");
    assert!(big.iter().any(|k| k.contains("sk-one")), "{big:?}");
    // gpt-4o-mini is not sent key one again while it rests for that model.
    for _ in 0..3 {
        relay.chat(hi("r")).await.unwrap();
    }
    let mini = keys_sent(&sim, "gpt-4o-mini");
    assert_eq!(
        mini.iter().filter(|k| k.contains("sk-one")).count(),
        1,
        "{mini:?}"
    );
}

#[tokio::test]
async fn with_one_key_a_keys_failures_count_for_the_breaker() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [Reply::openai_error(
            429,
            "requests",
            None,
            "Rate limit reached",
        )],
    );
    sim.set_default(Reply::text("ok"));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .provider("backup", openai_at(&sim, "sk-test"))
        .route(
            "r",
            Chain::of(["sim/gpt-4o-mini", "backup/gpt-4o"]).retry(RetryPolicy::no_retries()),
        )
        .key_pool("sim", KeyPool::new().key("sk-only-AAAA"))
        .breaker(BreakerPolicy::default().consecutive_failures(1))
        .build()
        .unwrap();
    relay.chat(hi("r")).await.unwrap();
    let mini = relay
        .health()
        .into_iter()
        .find(|h| h.target.model.as_ref() == "gpt-4o-mini")
        .unwrap();
    // The pool's only key failed: no other key can do better, so the target failed.
    assert_eq!(mini.consecutive_failures, 1, "{mini:?}");
    assert_eq!(mini.state, polyrelay::BreakerState::Open, "{mini:?}");
}

#[tokio::test]
async fn request_fallbacks_are_deduplicated_and_capped() {
    let sim = sim().await;
    sim.set_default(Reply::text("x").status(500));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("r", Chain::of(["sim/a"]).retry(RetryPolicy::no_retries()))
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    // 5,000 names: refused before anything is sent.
    let many: Vec<String> = (0..5000).map(|i| format!("sim/m{i}")).collect();
    let err = relay.chat(hi("r").fallbacks(many)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert_eq!(err.code(), Some("too_many_fallbacks"));
    assert!(sim.requests().is_empty());
    // The same name many times, and the primary again: each target once in the chain
    // (the fallback's own retry policy still applies to it).
    let repeated = vec!["sim/b"; 200].into_iter().chain(["sim/a"]);
    let err = relay.chat(hi("r").fallbacks(repeated)).await.unwrap_err();
    assert_eq!(sim.requests_for("a").len(), 1, "{err}");
    let b = sim.requests_for("b").len();
    assert!((1..=3).contains(&b), "{b} tries of b: {err}");
}

#[tokio::test]
async fn an_unknown_name_is_not_echoed_back_whole() {
    let sim = sim().await;
    let relay = pooled(&sim);
    let name = "x".repeat(1 << 20);
    let err = relay.chat(hi(&name)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRoute);
    assert!(
        err.to_string().len() < 1024,
        "{} bytes",
        err.to_string().len()
    );
}

#[tokio::test]
async fn names_a_client_makes_up_do_not_grow_the_stats_without_bound() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    let n = polyrelay::accounting::MAX_STATS_ROWS + 200;
    for i in 0..n {
        relay.chat(hi(&format!("sim/made-up-{i}"))).await.unwrap();
    }
    let stats = relay.stats();
    // One shard on this single-threaded runtime: the limit, plus the shared row.
    assert!(
        stats.total.len() <= polyrelay::accounting::MAX_STATS_ROWS + 1,
        "{} rows",
        stats.total.len()
    );
    let other = stats
        .total
        .iter()
        .find(|r| r.model == polyrelay::accounting::OTHER)
        .expect("calls past the limit share one row");
    assert_eq!(other.requests, 200);
    assert_eq!(stats.totals().requests, n as u64);
}

/// The README's first example: a primary with a 2.5 s response window that answers in 5 s,
/// called with `relay.chat` (not streamed): the fallback serves at 2.5 s.
#[tokio::test]
async fn the_response_window_applies_to_plain_calls() {
    let sim = sim().await;
    sim.set_default(Reply::text("from the fallback"));
    sim.script(
        "gpt-4o",
        [Reply::text("too late").delay(Duration::from_secs(5))],
    );
    let relay = Relay::builder()
        .provider("openai", openai_at(&sim, "sk-test"))
        .provider("deepseek", openai_at(&sim, "sk-test"))
        .route(
            "support",
            Chain::new()
                .target(
                    Target::new("openai", "gpt-4o")
                        .first_token_timeout(Duration::from_millis(2500)),
                )
                .target("deepseek/deepseek-chat")
                .total_timeout(Duration::from_secs(20)),
        )
        .build()
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("support").user("Where is my order #123?"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from the fallback");
    let first = resp.meta.attempts[0].error.as_ref().unwrap();
    assert_eq!(first.limit(), Some(Limit::FirstToken), "{first}");
    // Generous: the window is 2.5 s, the primary's answer 5 s.
    assert!(
        resp.meta.latency < Duration::from_millis(4900),
        "{:?}",
        resp.meta.latency
    );
}

#[tokio::test]
async fn the_relays_own_rate_limit_refuses_with_limit_reached_and_when_to_come_back() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    let relay = Relay::builder()
        .provider("fp", openai_at(&sim, "sk-test"))
        .route("limited", Chain::of(["fp/ok"]))
        .rate_limit("fp/ok", RateLimit::new().requests_per_minute(2).fail_over())
        .build()
        .unwrap();
    // Served while the limit has room (its burst), then refused.
    let mut served = 0;
    while relay.chat(hi("limited")).await.is_ok() {
        served += 1;
        assert!(served <= 2, "the limit never refused");
    }
    for _ in 0..2 {
        let err = relay.chat(hi("limited")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached, "{err}");
        assert!(!err.to_string().contains("0 attempts"), "{err}");
        assert_eq!(err.fault(), Fault::Relay);
        let wait = err.retry_after().expect("when a call would be admitted");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(err.skipped().len(), 1);
        assert_eq!(
            err.skipped()[0].reason,
            SkipReason::RateLimited {
                scope: LimitScope::Target,
                by: LimitedBy::Requests,
            }
        );
        assert!(err.is_retryable());
    }
    assert_eq!(sim.requests().len(), served);
    // Counted as refusals, not as upstream failures, and no row without a target.
    let stats = relay.stats();
    assert!(stats.total.iter().all(|r| !r.provider.is_empty()));
    assert_eq!(stats.totals().failures, 0);
    let refused: Vec<_> = stats
        .refused
        .iter()
        .map(|r| (r.route.as_str(), r.reason.as_str(), r.calls))
        .collect();
    assert_eq!(refused, [("limited", "rate_limited", 3)]);
}

#[tokio::test]
async fn a_pool_with_every_key_out_refuses_with_keys_exhausted() {
    let sim = sim().await;
    let slow_down = || {
        Reply::openai_error(429, "requests", None, "Rate limit reached").header("retry-after", "30")
    };
    sim.script("gpt-4o", [slow_down(), slow_down()]);
    let relay = pooled(&sim);
    let err = relay.chat(hi("big")).await.unwrap_err();
    // Both keys tried, both resting now.
    assert_eq!(err.attempts().len(), 2, "{err}");
    let err = relay.chat(hi("big")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeysExhausted, "{err}");
    let wait = err.retry_after().expect("when the first key returns");
    assert!(
        wait <= Duration::from_secs(30) && wait > Duration::from_secs(20),
        "{wait:?}"
    );
    assert_eq!(err.skipped()[0].reason, SkipReason::KeysExhausted);
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn with_every_breaker_open_a_call_beside_the_probe_names_each_target_and_the_next_probe() {
    let sim = sim().await;
    sim.set_default(Reply::text("x").status(500));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route(
            "r",
            Chain::of(["sim/a", "sim/b"]).retry(RetryPolicy::no_retries()),
        )
        .breaker(
            BreakerPolicy::default()
                .consecutive_failures(1)
                .cooldown(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    // Both fail once: both open.
    let err = relay.chat(hi("r")).await.unwrap_err();
    assert_eq!(err.attempts().len(), 2);
    // The rule: with every target open, one call at a time probes the one that failed
    // longest ago. This one hangs, holding the probe.
    sim.set_default(Reply::hang());
    let relay2 = relay.clone();
    let probe = tokio::spawn(async move { relay2.chat(hi("r")).await });
    sim.wait_for_requests(3).await;
    // Meanwhile: nothing is sent, and the error says why and until when.
    let err = relay.chat(hi("r")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BreakerOpen, "{err}");
    assert!(err.attempts().is_empty());
    let skipped: Vec<_> = err
        .skipped()
        .iter()
        .map(|s| (s.target.model.to_string(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("a".to_owned(), SkipReason::BreakerOpen),
            ("b".to_owned(), SkipReason::BreakerOpen)
        ]
    );
    // b is open for the cooldown; a's probe is in flight.
    let wait = err.retry_after().expect("the next probe is due");
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert!(err.to_string().contains("breaker open"), "{err}");
    assert_eq!(sim.requests().len(), 3);
    probe.abort();
}

#[tokio::test]
async fn a_deadline_spent_before_any_attempt_is_a_timeout() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    let relay = pooled(&sim);
    let err = relay
        .chat(hi("r").timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_deadline());
    assert!(sim.requests().is_empty());
}

/// Collects the budget events an observer sees.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<usize>>);

impl Observer for Seen {
    fn budget(&self, _: &BudgetEvent<'_>) {
        *self.0.lock().unwrap() += 1;
    }
}

#[tokio::test]
async fn a_reload_with_the_same_budgets_tells_the_new_observers() {
    let sim = sim().await;
    sim.set_default(Reply::text("Your order ships tomorrow."));
    let budget = || Budget::usd("tiny", 0.000_001).per(BudgetPeriod::Day);
    let builder = |seen: &Seen| {
        Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .route("r", Chain::of(["sim/gpt-4o"]))
            .budget(budget())
            .observer(seen.clone())
    };
    let (old, new) = (Seen::default(), Seen::default());
    let relay = builder(&old).build().unwrap();
    relay.reload(builder(&new)).unwrap();
    // The first call spends the budget, the second is refused: events either way.
    let _ = relay.chat(hi("r")).await;
    let _ = relay.chat(hi("r")).await;
    assert!(
        *new.0.lock().unwrap() > 0,
        "the new observer hears the budget"
    );
    assert_eq!(*old.0.lock().unwrap(), 0, "the old observer is gone");
}

#[tokio::test]
async fn a_call_makes_at_most_its_ceiling_of_attempts() {
    let sim = sim().await;
    sim.set_default(Reply::text("x").status(500));
    let names: Vec<String> = (0..40).map(|i| format!("sim/m{i}")).collect();
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("wide", Chain::of(names).retry(RetryPolicy::no_retries()))
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    let err = relay.chat(hi("wide")).await.unwrap_err();
    assert_eq!(
        err.attempts().len(),
        polyrelay::MAX_ATTEMPTS_PER_CALL,
        "{err}"
    );
    assert_eq!(sim.requests().len(), polyrelay::MAX_ATTEMPTS_PER_CALL);
}
