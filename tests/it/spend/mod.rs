//! Spend control over real HTTP on the loopback simulator (and, for the window's reset,
//! tokio's paused clock with an in-process provider): budgets that refuse or downgrade,
//! client-side rate limits that keep the relay under a vendor's limit, and key pools.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polyrelay::BudgetUnit;
use polyrelay::accounting::{BudgetEvent, BudgetEventKind, Observer};
use polyrelay::providers::OpenAi;
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{Chain, ChatRequest, ErrorKind, Price, Relay, Target};
use polyrelay::{KeyPool, KeyState};
use support::*;

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

/// Collects budget events as "kind name route".
#[derive(Clone, Default)]
struct BudgetLog(Arc<Mutex<Vec<String>>>);

impl Observer for BudgetLog {
    fn budget(&self, e: &BudgetEvent<'_>) {
        let line = format!("{:?} {} {}", e.kind, e.name, e.route.unwrap_or("-"));
        self.0.lock().unwrap().push(line);
    }
}

impl BudgetLog {
    fn kinds(&self, kind: BudgetEventKind) -> usize {
        let k = format!("{kind:?} ");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&k))
            .count()
    }
}

fn premium_and_cheap(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("premium", Chain::of(["sim/gpt-4o"]))
        .route("cheap", Chain::of(["sim/gpt-4o-mini"]))
}

fn ticket() -> ChatRequest {
    ChatRequest::new("premium")
        .user("Where is my order #4411? It was due on Monday.")
        .max_tokens(40)
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

// ---- client-side rate limits ----

fn mini_then_4o(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", Chain::of(["sim/gpt-4o-mini", "sim/gpt-4o"]))
}

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

// ---- key pools ----

#[derive(Clone, Default)]
struct KeyLog(Arc<Mutex<Vec<String>>>);

impl Observer for KeyLog {
    fn key_state(&self, e: &polyrelay::accounting::KeyEvent<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {:?} {}", e.key.index, e.state, e.error));
    }
}

fn pooled(sim: &Simulator, log: &KeyLog) -> Relay {
    mini_then_4o(sim)
        .key_pool("sim", KeyPool::new().key("sk-one-AAAA").key("sk-two-BBBB"))
        .observer(log.clone())
        .build()
        .unwrap()
}

fn keys_sent(sim: &Simulator, model: &str) -> Vec<String> {
    sim.requests_for(model)
        .iter()
        .map(|r| r.header("authorization").unwrap_or("-").to_owned())
        .collect()
}

/// OpenAI's answer to a key whose quota is spent (as recorded).
fn out_of_quota() -> Reply {
    Reply::openai_error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota, please check your plan and billing details.",
    )
}

#[tokio::test]
async fn a_key_out_of_quota_is_parked_and_the_next_key_serves() {
    let sim = sim().await;
    sim.script("gpt-4o-mini", [out_of_quota(), Reply::text("ok")]);
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    let first = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(first.text(), "ok");
    // The next key of the same provider, before the next target.
    assert_eq!(first.meta.attempts.len(), 2);
    assert!(
        first
            .meta
            .attempts
            .iter()
            .all(|a| a.target.model.as_ref() == "gpt-4o-mini")
    );
    assert_eq!(
        first.meta.attempts[0].failure(),
        Some(ErrorKind::QuotaExhausted)
    );
    for _ in 0..3 {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    }
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    assert!(sim.requests_for("gpt-4o").is_empty());
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini.keys.len(), 2);
    assert!(
        matches!(mini.keys[0].state, KeyState::Parked { for_ms } if for_ms > 3_000_000),
        "{:?}",
        mini.keys[0]
    );
    assert_eq!(mini.keys[1].state, KeyState::Ready);
    // The key's failure is not the target's: its breaker saw no failure.
    assert_eq!(mini.consecutive_failures, 0);
    let events = log.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("0 Parked"), "{events:?}");
}

#[tokio::test]
async fn a_reload_keeps_the_pool_keys_state() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            out_of_quota(),
            Reply::openai_error(401, "invalid_request_error", Some("invalid_api_key"), "no"),
            Reply::text("ok"),
        ],
    );
    let pool = || {
        KeyPool::new()
            .key("sk-one-AAAA")
            .key("sk-two-BBBB")
            .key("sk-three-CCCC")
    };
    let builder = |pool: KeyPool| mini_then_4o(&sim).key_pool("sim", pool);
    let relay = builder(pool()).build().unwrap();
    // Key 0 is out of quota, key 1 refused, key 2 serves.
    let r = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(r.meta.attempts.len(), 3);
    let states = |relay: &Relay| -> Vec<KeyState> {
        let h = relay.health();
        let mini = h
            .iter()
            .find(|t| &*t.target.model == "gpt-4o-mini")
            .unwrap();
        mini.keys.iter().map(|k| k.state.clone()).collect()
    };
    let before = states(&relay);
    assert!(matches!(before[0], KeyState::Parked { .. }), "{before:?}");
    assert_eq!(before[1..], [KeyState::Invalid, KeyState::Ready]);

    // The same keys, reordered, and a route more: the parked key stays parked, the invalid
    // one gets another chance, the counts go on.
    let reordered = KeyPool::new()
        .key("sk-three-CCCC")
        .key("sk-two-BBBB")
        .key("sk-one-AAAA");
    relay
        .reload(builder(reordered).route("other", Chain::of(["sim/gpt-4o"])))
        .unwrap();
    let after = states(&relay);
    assert_eq!(after[..2], [KeyState::Ready, KeyState::Ready], "{after:?}");
    assert!(matches!(after[2], KeyState::Parked { .. }), "{after:?}");
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!((mini.keys[0].served, mini.keys[2].failures), (1, 1));
    for _ in 0..4 {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    }
    let sent = keys_sent(&sim, "gpt-4o-mini");
    assert!(
        sent[3..].iter().all(|k| k != "Bearer sk-one-AAAA"),
        "the parked key was sent: {sent:?}"
    );
    assert!(
        sent[3..].iter().any(|k| k == "Bearer sk-two-BBBB"),
        "{sent:?}"
    );

    // A new key starts ready; a rebuilt relay forgets everything.
    relay.reload(builder(pool().key("sk-four-DDDD"))).unwrap();
    let after = states(&relay);
    assert!(matches!(after[0], KeyState::Parked { .. }), "{after:?}");
    assert_eq!(after[3], KeyState::Ready);
    let fresh = builder(pool()).build().unwrap();
    assert!(states(&fresh).iter().all(|s| *s == KeyState::Ready));
}

#[tokio::test]
async fn a_429_rests_the_key_not_the_target() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "20"),
            Reply::text("ok"),
        ],
    );
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    let started = std::time::Instant::now();
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    // No 20 s wait: the other key went at once.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(resp.meta.attempts.len(), 2);
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert!(
        matches!(mini.keys[0].state, KeyState::Resting { for_ms } if (15_000..=20_000).contains(&for_ms)),
        "{:?}",
        mini.keys[0]
    );
    assert_eq!(mini.state, polyrelay::BreakerState::Closed);
    assert_eq!(mini.consecutive_failures, 0);
}

#[tokio::test]
async fn an_invalid_key_is_parked_and_reported_and_keys_never_show() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided.",
            ),
            Reply::text("ok"),
        ],
    );
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini.keys[0].state, KeyState::Invalid);
    assert_eq!(log.0.lock().unwrap().len(), 1);
    assert!(log.0.lock().unwrap()[0].starts_with("0 Invalid"));
    // Every key refused: the error names keys by label only.
    sim.script(
        "gpt-4o-mini",
        [Reply::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        )],
    );
    sim.script(
        "gpt-4o",
        [Reply::openai_error(500, "server_error", None, "down")],
    );
    let err = relay
        .chat(ChatRequest::new("r").user("hi"))
        .await
        .unwrap_err();
    let shown = format!(
        "{err} {err:?} {:?} {:?} {}",
        relay.health(),
        relay,
        serde_json::to_string(&mini.keys).unwrap()
    );
    for secret in ["sk-one-AAAA", "sk-two-BBBB", "AAAA", "BBBB"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
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

#[tokio::test]
async fn a_streams_tokens_are_reconciled_on_its_pool_keys_limit() {
    let sim = sim().await;
    // Key 0's stream reports 2,050 tokens, against each key's 1,000 a minute.
    sim.script(
        "gpt-4o-mini",
        [
            Reply::sse(tokens("s", 0, 50, 2000)),
            Reply::text("two"),
            Reply::text("three"),
        ],
    );
    let relay = mini_then_4o(&sim)
        .key_pool(
            "sim",
            KeyPool::new()
                .key("sk-one-AAAA")
                .key("sk-two-BBBB")
                .limit_each(RateLimit::new().tokens_per_minute(1000)),
        )
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("hi").max_tokens(10);
    let streamed = folded(&relay, &req).await.unwrap();
    assert_eq!(streamed.usage.unwrap().total_tokens(), 2050);
    let key = streamed.meta.attempts[0].key.clone().expect("a pool key");
    assert_eq!(key.index, 0);
    // Round robin: key 1, then key 0 again, except that key 0's minute is spent (and more),
    // so key 1 serves once more, and no request goes over a key's limit.
    for _ in 0..2 {
        let r = relay.chat(&req).await.unwrap();
        assert_eq!(r.meta.attempts.len(), 1);
        assert_eq!(r.meta.attempts[0].key.as_ref().map(|k| k.index), Some(1));
    }
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    // Keys are named, never shown.
    let shown = format!("{:?}", streamed.meta.attempts);
    assert!(
        !shown.contains("sk-one") && shown.contains(&key.fingerprint),
        "{shown}"
    );
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
