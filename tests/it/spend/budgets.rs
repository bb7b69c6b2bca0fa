//! Budgets that refuse or downgrade, reset at the end of their window, never overshoot,
//! count a stream as it arrives and each billed attempt once, per tag and per intent.

use super::*;

#[tokio::test]
async fn a_request_larger_than_an_unspent_budget_is_told_so_not_that_the_budget_is_spent() {
    let sim = sim().await;
    let relay = premium_and_cheap(&sim)
        .budget(Budget::usd("tiny", 0.000_001).for_route("premium"))
        .build()
        .unwrap();
    let err = relay.chat(ticket()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    let ex = err.budget().expect("which budget");
    assert_eq!(ex.spent, 0.0);
    let said = err.to_string();
    assert!(!said.contains("is spent"), "{said}");
    assert!(
        said.contains(format!("estimate of {:.6}", ex.estimate).trim_end_matches('0'))
            && said.contains("whole limit of 0.000001 USD"),
        "{said}"
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_spent_budget_refuses_with_budget_exceeded_and_sends_nothing() {
    let sim = sim().await;
    sim.set_default(Reply::text("Your order ships tomorrow."));
    let log = BudgetLog::default();
    let relay = premium_and_cheap(&sim)
        .budget(
            Budget::usd("premium-daily", 0.0015)
                .for_route("premium")
                .per(BudgetPeriod::Day),
        )
        .observer(log.clone())
        .build()
        .unwrap();
    let mut served = 0;
    let mut spent = 0.0;
    let err = loop {
        match relay.chat(ticket()).await {
            Ok(resp) => {
                served += 1;
                spent += resp.meta.cost.expect("gpt-4o is priced");
                assert!(served < 100, "the budget never refused");
            }
            Err(e) => break e,
        }
    };
    assert!(served >= 1);
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    let ex = err.budget().expect("which budget");
    assert_eq!(ex.budget, "premium-daily");
    assert_eq!(ex.unit, BudgetUnit::Usd);
    assert_eq!(ex.limit, 0.0015);
    assert!((ex.spent - spent).abs() < 1e-9, "{} vs {spent}", ex.spent);
    assert!(ex.spent + ex.estimate > ex.limit && ex.spent <= ex.limit);
    // The message weighs the request's own estimate against what is left.
    let said = err.to_string();
    assert!(
        said.contains("estimate of") && said.contains("left of 0.0015 in this window"),
        "{said}"
    );
    assert!(ex.resets_at > SystemTime::now());
    assert!(ex.resets_at <= SystemTime::now() + Duration::from_secs(24 * 3600));
    // Refused before sending: the vendor saw only the served calls.
    assert_eq!(sim.requests_for("gpt-4o").len(), served);
    // Other routes are not under this budget.
    let cheap = relay
        .chat(ChatRequest::new("cheap").user("hi"))
        .await
        .unwrap();
    assert_eq!(cheap.meta.route.as_deref(), Some("cheap"));
    let status = &relay.budgets()[0];
    assert_eq!(status.name, "premium-daily");
    assert!((status.spent - spent).abs() < 1e-9);
    assert_eq!(status.reserved, 0.0);
    assert_eq!(log.kinds(BudgetEventKind::Rejected), 1);
    assert_eq!(log.kinds(BudgetEventKind::Exhausted), 1);
    // The stats count the refusal as a refusal of its route, not as a target's failure.
    let stats = relay.stats();
    let refused: u64 = stats
        .refused
        .iter()
        .filter(|r| r.route == "premium" && r.reason == "budget")
        .map(|r| r.calls)
        .sum();
    assert!(refused >= 1, "{:?}", stats.refused);
    assert!(
        stats.total.iter().all(|r| r.failures == 0),
        "{:?}",
        stats.total
    );
}

#[tokio::test]
async fn a_spent_budget_downgrades_to_its_cheaper_route() {
    let sim = sim().await;
    sim.set_default(Reply::text("Your order ships tomorrow."));
    let log = BudgetLog::default();
    let relay = premium_and_cheap(&sim)
        .budget(
            Budget::usd("premium-hourly", 0.0006)
                .for_route("premium")
                .per(BudgetPeriod::Hour)
                .downgrade_to("cheap"),
        )
        .observer(log.clone())
        .build()
        .unwrap();
    let mut routes = Vec::new();
    for _ in 0..8 {
        let resp = relay.chat(ticket()).await.unwrap();
        routes.push(resp.meta.route.as_deref().unwrap_or("?").to_owned());
    }
    let first_cheap = routes
        .iter()
        .position(|r| r == "cheap")
        .expect("downgraded");
    assert!(first_cheap >= 1, "{routes:?}");
    assert!(
        routes[first_cheap..].iter().all(|r| r == "cheap"),
        "{routes:?}"
    );
    assert_eq!(sim.requests_for("gpt-4o").len(), first_cheap);
    assert_eq!(sim.requests_for("gpt-4o-mini").len(), 8 - first_cheap);
    assert_eq!(log.kinds(BudgetEventKind::Downgraded), 8 - first_cheap);
    assert!(
        log.0
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "Downgraded premium-hourly cheap")
    );
}

#[tokio::test(start_paused = true)]
async fn a_calendar_budget_resets_at_the_end_of_its_window() {
    // 15 tokens per call (10 in, 5 out); each is estimated at its input and `max_tokens`.
    let relay = Relay::builder()
        .provider("fixed", FixedProvider)
        .route(
            "r",
            Chain::new().target(Target::new("fixed", "m").price(Price::per_million(1.0, 1.0))),
        )
        .budget(Budget::tokens("per-minute", 35).per(BudgetPeriod::Minute))
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("x").max_tokens(5);
    relay.chat(&req).await.unwrap();
    relay.chat(&req).await.unwrap();
    let err = relay.chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    let ex = err.budget().unwrap().clone();
    assert_eq!(
        (ex.unit, ex.spent, ex.limit),
        (BudgetUnit::Tokens, 30.0, 35.0)
    );
    // The window is a UTC minute: it resets within the next 60 s.
    let wait = ex
        .resets_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(wait <= Duration::from_secs(60), "{wait:?}");
    // A second before the reset: still refused.
    tokio::time::advance(wait.saturating_sub(Duration::from_secs(1))).await;
    if wait > Duration::from_secs(2) {
        assert_eq!(
            relay.chat(&req).await.unwrap_err().kind(),
            ErrorKind::BudgetExceeded
        );
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    relay.chat(&req).await.expect("a new window");
    assert_eq!(relay.budgets()[0].spent, 15.0);
}

#[tokio::test]
async fn many_concurrent_requests_at_the_edge_never_overshoot() {
    let sim = sim().await;
    // Every answer takes 300 ms, so all the calls reserve before any settles.
    sim.set_default(Reply::text("ok").delay(Duration::from_millis(300)));
    let limit = 1_000u64;
    let relay = premium_and_cheap(&sim)
        .budget(Budget::tokens("edge", limit))
        .build()
        .unwrap();
    let calls = (0..40).map(|_| {
        let relay = relay.clone();
        tokio::spawn(async move { relay.chat(ticket()).await })
    });
    let results = guarded(futures::future::join_all(calls)).await;
    let mut served = Vec::new();
    let mut estimate = None;
    for r in results {
        match r.unwrap() {
            Ok(resp) => served.push(resp),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::BudgetExceeded);
                estimate = Some(e.budget().unwrap().estimate);
            }
        }
    }
    let estimate = estimate.expect("some calls were refused");
    assert_eq!(served.len() as f64, (limit as f64 / estimate).floor());
    let used: u64 = served.iter().map(|r| r.usage.unwrap().total_tokens()).sum();
    assert!(used <= limit);
    assert_eq!(sim.requests_for("gpt-4o").len(), served.len());
    let status = &relay.budgets()[0];
    assert_eq!(status.spent, used as f64);
    assert_eq!(status.reserved, 0.0);
}

#[tokio::test]
async fn a_stream_counts_its_usage_as_it_arrives_and_settles_at_its_end() {
    use futures::StreamExt;
    let sim = sim().await;
    // 300 output tokens though the request asked for at most 5: the estimate falls short.
    let frames = tokens("s", 0, 300, 40);
    let n = frames.len();
    sim.script("gpt-4o", [Reply::sse(frames.clone()).stall_after(n - 1)]);
    let relay = premium_and_cheap(&sim)
        .budget(Budget::tokens("stream", 100_000))
        .build()
        .unwrap();
    let req = ChatRequest::new("premium").user("hi").max_tokens(5);
    let mut stream = guarded(relay.chat_stream(&req)).await.unwrap();
    let mut seen_usage = false;
    while let Some(chunk) = guarded(stream.next()).await {
        if chunk.unwrap().usage.is_some() {
            seen_usage = true;
            break;
        }
    }
    assert!(seen_usage);
    // The stream is still open (stalled before [DONE]): its usage already counts.
    let b = &relay.budgets()[0];
    assert_eq!(b.spent + b.reserved, 340.0, "{b:?}");
    drop(stream);
    // Dropped: settled at what it reported.
    let b = &relay.budgets()[0];
    assert_eq!((b.spent, b.reserved), (340.0, 0.0), "{b:?}");
}

#[tokio::test]
async fn a_retried_and_failed_over_call_is_counted_once_per_billed_attempt() {
    let sim = sim().await;
    // A 500 and a 503 on its retry (neither reports usage: not billed), then the
    // fallback's answer.
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(500, "server_error", None, "boom"),
            Reply::openai_error(503, "server_error", None, "still down"),
        ],
    );
    sim.script("gpt-4o", [Reply::text("served")]);
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route(
            "r",
            Chain::new()
                .target(
                    Target::new("sim", "gpt-4o-mini").retry(
                        polyrelay::RetryPolicy::default()
                            .max_attempts(2)
                            .backoff(Duration::from_millis(1), Duration::from_millis(1)),
                    ),
                )
                .target("sim/gpt-4o"),
        )
        .budget(Budget::tokens("all", 1_000_000))
        .budget(Budget::usd("money", 10.0))
        .build()
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("r").user("Where is my order?"))
        .await
        .unwrap();
    assert_eq!(resp.meta.attempts.len(), 3);
    let b = relay.budgets();
    // Only the served attempt reported usage: it alone is counted, once.
    assert_eq!(b[0].spent, resp.usage.unwrap().total_tokens() as f64);
    assert!((b[1].spent - resp.meta.cost.unwrap()).abs() < 1e-12);
    assert_eq!((b[0].reserved, b[1].reserved), (0.0, 0.0));
    // The same again: twice the spend, not more.
    let again = relay
        .chat(ChatRequest::new("r").user("Where is my order?"))
        .await
        .unwrap();
    let b2 = relay.budgets();
    assert_eq!(
        b2[0].spent,
        (resp.usage.unwrap().total_tokens() + again.usage.unwrap().total_tokens()) as f64
    );
}

#[tokio::test(start_paused = true)]
async fn budgets_per_tag_and_per_intent_count_only_their_requests() {
    let relay = Relay::builder()
        .provider("fixed", FixedProvider)
        .route("r", Chain::of(["fixed/m"]))
        .budget(Budget::tokens("team-a", 19).for_tag("team-a"))
        .budget(Budget::tokens("billing", 19).for_intent("billing"))
        .build()
        .unwrap();
    let base = || ChatRequest::new("r").user("x").max_tokens(4);
    // Each call uses 15 tokens and is estimated at 5: the second one under a budget would
    // pass its 19.
    relay.chat(base().label("team-a")).await.unwrap();
    let e = relay.chat(base().label("team-a")).await.unwrap_err();
    assert_eq!(e.budget().unwrap().budget, "team-a");
    relay.chat(base().intent("billing")).await.unwrap();
    let e = relay.chat(base().intent("billing")).await.unwrap_err();
    assert_eq!(e.budget().unwrap().budget, "billing");
    // Requests under neither budget go through.
    for _ in 0..3 {
        relay.chat(base().label("team-b")).await.unwrap();
    }
    let spent: Vec<f64> = relay.budgets().iter().map(|b| b.spent).collect();
    assert_eq!(spent, [15.0, 15.0]);
}

/// A call its caller drops while the vendor has not answered (plain, or a stream still
/// opening) keeps its estimate as spend: the vendor may bill it.
#[tokio::test]
async fn a_call_dropped_by_its_caller_keeps_its_charge() {
    let sim = sim().await;
    sim.set_default(polyrelay::simulator::Reply::hang());
    let relay = premium_and_cheap(&sim)
        .budget(Budget::tokens("daily", 100_000))
        .build()
        .unwrap();
    for (n, streamed) in [(1, false), (2, true)] {
        let req = ticket();
        // Boxed, so that dropping it drops the call (a pinned reference would not).
        let mut call = Box::pin(async {
            if streamed {
                relay.chat_stream(&req).await.map(|_| ())
            } else {
                relay.chat(&req).await.map(|_| ())
            }
        });
        tokio::select! {
            r = &mut call => panic!("the hung vendor answered: {r:?}"),
            () = sim.wait_for_requests(n) => {}
        }
        let before = relay.budgets()[0].clone();
        assert!(before.reserved > 0.0, "{before:?}");
        drop(call);
        let after = &relay.budgets()[0];
        assert_eq!(
            (after.spent, after.reserved),
            (before.spent + before.reserved, 0.0),
            "streamed: {streamed}"
        );
    }
}
