//! Client-side rate limits that keep the relay under a vendor's limit.

use super::*;

#[tokio::test]
async fn a_limited_target_fails_over_before_the_vendor_says_429() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    // The vendor allows 5 requests a minute on gpt-4o-mini, then answers 429.
    sim.limit_requests("gpt-4o-mini", 5, Duration::from_secs(60));
    let relay = mini_then_4o(&sim)
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new().requests_per_minute(5).burst(5).fail_over(),
        )
        .build()
        .unwrap();
    let calls = (0..12).map(|_| {
        let relay = relay.clone();
        tokio::spawn(async move { relay.chat(ChatRequest::new("r").user("hi")).await })
    });
    let mut by_model = std::collections::BTreeMap::<String, usize>::new();
    for r in guarded(futures::future::join_all(calls)).await {
        let resp = r.unwrap().expect("every call is served");
        *by_model
            .entry(resp.meta.served_by.unwrap().model.to_string())
            .or_default() += 1;
        // Nothing was sent that the vendor refused.
        assert!(resp.meta.attempts.iter().all(|a| a.failure().is_none()));
    }
    assert_eq!(sim.rate_limited("gpt-4o-mini"), 0);
    assert_eq!(by_model.get("gpt-4o-mini"), Some(&5));
    assert_eq!(by_model.get("gpt-4o"), Some(&7));
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 5);
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert!(mini.limiter.is_some());
}

#[tokio::test]
async fn a_provider_wide_limit_counts_every_model_of_the_provider() {
    let (sim, other) = (sim().await, sim().await);
    sim.set_default(Reply::text("ok"));
    other.set_default(Reply::text("elsewhere"));
    // The vendor allows 5 requests a minute over all its models, then answers 429.
    sim.limit_all_requests(5, Duration::from_secs(60));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .provider(
            "other",
            OpenAi::compatible("other", &format!("{}/v1", other.base_url()), "sk-o"),
        )
        .route(
            "mini",
            Chain::of(["sim/gpt-4o-mini", "other/deepseek-chat"]),
        )
        .route("4o", Chain::of(["sim/gpt-4o", "other/deepseek-chat"]))
        .rate_limit(
            "sim",
            RateLimit::new().requests_per_minute(5).burst(5).fail_over(),
        )
        .build()
        .unwrap();
    let mut served_by_sim = 0;
    for i in 0..12 {
        let route = if i % 2 == 0 { "mini" } else { "4o" };
        let resp = relay
            .chat(ChatRequest::new(route).user("hi"))
            .await
            .unwrap();
        assert!(resp.meta.attempts.iter().all(|a| a.failure().is_none()));
        served_by_sim += usize::from(&*resp.meta.served_by.unwrap().provider == "sim");
    }
    assert_eq!(served_by_sim, 5);
    let sent = sim.requests_for("gpt-4o-mini").len() + sim.requests_for("gpt-4o").len();
    assert_eq!(sent, 5);
    assert_eq!(
        sim.rate_limited("gpt-4o-mini") + sim.rate_limited("gpt-4o"),
        0
    );
    assert_eq!(other.requests_for("deepseek-chat").len(), 7);
    let h = relay.health();
    let sim_targets: Vec<_> = h.iter().filter(|t| &*t.target.provider == "sim").collect();
    assert_eq!(sim_targets.len(), 2);
    assert!(
        sim_targets
            .iter()
            .all(|t| t.limiter.is_none() && t.provider_limiter.is_some())
    );

    // An unknown provider is refused.
    let err = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .rate_limit("nowhere", RateLimit::new().requests_per_minute(5))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A limit that refuses an attempt takes nothing from the limits before it: the target's
/// minute is not spent on attempts its provider's limit kept from being sent.
#[tokio::test]
async fn a_refusing_limit_takes_nothing_from_the_others() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    let builder = |provider_limit: bool| {
        let b = mini_then_4o(&sim).rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new()
                .requests_per_minute(10)
                .burst(10)
                .fail_over(),
        );
        if provider_limit {
            b.rate_limit(
                "sim",
                RateLimit::new().requests_per_minute(2).burst(2).fail_over(),
            )
        } else {
            b
        }
    };
    let relay = builder(true).build().unwrap();
    for _ in 0..6 {
        // Two served by the provider's limit, four refused (by it) without being sent.
        let _ = relay.chat(ChatRequest::new("r").user("hi")).await;
    }
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 2);
    // Without the provider's limit (the target's limiter is kept): 8 of the target's 10
    // are left.
    relay.reload(builder(false)).unwrap();
    for _ in 0..9 {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    }
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 10);
    assert_eq!(sim.requests_for("gpt-4o").len(), 1);
}

#[tokio::test]
async fn the_vendors_headers_make_the_relay_wait_instead_of_collecting_429s() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    // 3 requests per 1.5 s; every answer says how many are left and when they reset.
    sim.limit_requests("gpt-4o-mini", 3, Duration::from_millis(1500));
    let relay = mini_then_4o(&sim)
        // No client-side quota of its own: the headers alone hold it back.
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new()
                .max_concurrent(8)
                .wait_up_to(Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..7 {
        let resp = guarded(relay.chat(ChatRequest::new("r").user("hi")))
            .await
            .expect("served");
        assert_eq!(
            resp.meta.served_by.unwrap().model.as_ref(),
            "gpt-4o-mini",
            "it waited rather than failing over"
        );
        assert_eq!(resp.meta.attempts.len(), 1);
    }
    assert_eq!(sim.rate_limited("gpt-4o-mini"), 0);
    assert!(sim.requests_for("gpt-4o").is_empty());
    // Seven requests at three per 1.5 s: at least two resets waited for.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_holds_the_limiter_for_its_retry_after() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "30"),
            Reply::text("ok"),
        ],
    );
    sim.script("gpt-4o", [Reply::text("fallback")]);
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", "gpt-4o-mini").max_attempts(1))
                .target("sim/gpt-4o"),
        )
        .rate_limit("sim/gpt-4o-mini", RateLimit::new().requests_per_minute(100))
        .build()
        .unwrap();
    let first = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(first.text(), "fallback");
    // The next calls do not knock on the target the vendor asked to wait 30 s.
    for _ in 0..3 {
        let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
        assert_eq!(resp.meta.served_by.unwrap().model.as_ref(), "gpt-4o");
        assert_eq!(resp.meta.attempts.len(), 1);
    }
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 1);
    // The limiter says so (the breaker opened for the same 30 s).
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    let held = mini.limiter.as_ref().unwrap().held_for.expect("held");
    assert!(
        held > Duration::from_secs(25) && held <= Duration::from_secs(30),
        "{held:?}"
    );
}

#[tokio::test]
async fn the_vendors_rate_limit_headers_reach_the_response_meta() {
    let sim = sim().await;
    sim.set_default(Reply::text("ok"));
    sim.limit_requests("gpt-4o-mini", 10, Duration::from_secs(60));
    let relay = mini_then_4o(&sim).build().unwrap();
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    let info = resp.meta.rate_limit.expect("the headers, in meta");
    assert_eq!(
        (info.limit_requests, info.remaining_requests),
        (Some(10), Some(9))
    );
    let streamed = folded(&relay, ChatRequest::new("r").user("hi"))
        .await
        .unwrap();
    let info = streamed.meta.rate_limit.expect("for a stream too");
    assert_eq!(info.remaining_requests, Some(8));
}

#[tokio::test]
async fn a_streams_tokens_are_reconciled_with_the_tokens_per_minute_limit() {
    let sim = sim().await;
    // The stream reports 2,050 tokens, though it was admitted on an estimate of a few dozen.
    sim.script("gpt-4o-mini", [Reply::sse(tokens("s", 0, 50, 2000))]);
    sim.script("gpt-4o", [Reply::text("fallback")]);
    let relay = mini_then_4o(&sim)
        .rate_limit("sim/gpt-4o-mini", RateLimit::new().tokens_per_minute(1000))
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("hi").max_tokens(10);
    let streamed = folded(&relay, &req).await.unwrap();
    assert_eq!(streamed.usage.unwrap().total_tokens(), 2050);
    assert_eq!(
        streamed.meta.served_by.unwrap().model.as_ref(),
        "gpt-4o-mini"
    );
    // The minute's tokens are spent (and more): the next call goes to the fallback unsent.
    let next = relay.chat(&req).await.unwrap();
    assert_eq!(next.meta.served_by.unwrap().model.as_ref(), "gpt-4o");
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 1);
}

/// Fails its first call with a 500, then answers (in process, for the paused clock).
#[derive(Debug, Default)]
struct FailsOnce(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl polyrelay::Provider for FailsOnce {
    fn name(&self) -> &str {
        "fails-once"
    }
    async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &polyrelay::CallContext,
    ) -> Result<polyrelay::ChatResponse, polyrelay::Error> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(polyrelay::Error::new(ErrorKind::Server, "boom"));
        }
        FixedProvider.chat(req, model, cx).await
    }
    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &polyrelay::CallContext,
    ) -> Result<polyrelay::ChatStream, polyrelay::Error> {
        FixedProvider.chat_stream(req, model, cx).await
    }
}

/// Always fails with a 503 (in process).
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl polyrelay::Provider for Down {
    fn name(&self) -> &str {
        "down"
    }
    async fn chat(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &polyrelay::CallContext,
    ) -> Result<polyrelay::ChatResponse, polyrelay::Error> {
        Err(polyrelay::Error::new(ErrorKind::Overloaded, "down"))
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &polyrelay::CallContext,
    ) -> Result<polyrelay::ChatStream, polyrelay::Error> {
        Err(polyrelay::Error::new(ErrorKind::Overloaded, "down"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_its_breaker_skips_takes_nothing_from_its_rate_limit() {
    let relay = Relay::builder()
        .provider("flaky", FailsOnce::default())
        .provider("down", Down)
        .route(
            "r",
            Chain::new()
                .target(Target::new("flaky", "m").max_attempts(1))
                .target(Target::new("down", "m").max_attempts(1)),
        )
        .breaker(
            polyrelay::BreakerPolicy::default()
                .consecutive_failures(1)
                .cooldown(Duration::from_secs(10)),
        )
        .breaker_for("down/m", polyrelay::BreakerPolicy::disabled())
        .rate_limit("flaky/m", RateLimit::new().requests_per_minute(2).burst(2))
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("hi");
    // The first call fails on flaky/m (one of its two requests a minute, and its breaker
    // opens), then on down/m.
    relay.chat(&req).await.unwrap_err();
    // While its breaker is open, calls reach flaky/m last and skip it: that takes nothing
    // from its limit.
    for _ in 0..5 {
        let e = relay.chat(&req).await.unwrap_err();
        assert_eq!(e.attempts().len(), 1, "{e:?}");
    }
    // After the cooldown the probe still has a request left under the limit, and serves.
    tokio::time::advance(Duration::from_secs(11)).await;
    let probe = relay.chat(&req).await.unwrap();
    assert_eq!(probe.meta.served_by.unwrap().provider.as_ref(), "flaky");
}

#[tokio::test(start_paused = true)]
async fn a_limited_target_waits_within_its_bound_and_fails_over_past_it() {
    let relay = |wait: Duration| {
        Relay::builder()
            .provider("a", FixedProvider)
            .provider("b", FixedProvider)
            .route("r", Chain::of(["a/m", "b/m"]))
            // Two a minute: the third request's turn comes 30 s after the first.
            .rate_limit(
                "a/m",
                RateLimit::new().requests_per_minute(2).wait_up_to(wait),
            )
            .build()
            .unwrap()
    };
    let req = ChatRequest::new("r").user("hi");
    let served_by = |r: &polyrelay::ChatResponse| r.meta.served_by.clone().unwrap().provider;
    let patient = relay(Duration::from_secs(40));
    for _ in 0..2 {
        assert_eq!(&*served_by(&patient.chat(&req).await.unwrap()), "a");
    }
    let started = tokio::time::Instant::now();
    let third = patient.chat(&req).await.unwrap();
    assert_eq!(&*served_by(&third), "a", "waited for a's next request");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(29) && waited <= Duration::from_secs(31),
        "{waited:?}"
    );
    let hasty = relay(Duration::from_secs(10));
    for _ in 0..2 {
        hasty.chat(&req).await.unwrap();
    }
    let started = tokio::time::Instant::now();
    let third = hasty.chat(&req).await.unwrap();
    assert_eq!(
        &*served_by(&third),
        "b",
        "a's turn is past the bound: failed over"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
