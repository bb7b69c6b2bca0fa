//! Health: circuit breakers route around a target that is down and come back to it when it
//! recovers. Time-driven scenarios run on tokio's paused clock with in-process providers;
//! the same behaviour is then checked over real HTTP on the simulator with short timings.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use polyrelay::{
    BreakerPolicy, BreakerState, CallContext, Chain, ChatRequest, ChatResponse, ChatStream, Choice,
    Error, ErrorKind, FinishReason, Message, Provider, Relay, RetryBudget, Strategy, Target,
};
use support::*;
use tokio::time::Instant;

/// An in-process model that fails with `kind` until `healthy_at`, then answers; it records
/// when it was called.
#[derive(Debug)]
struct Flaky {
    healthy_at: Instant,
    kind: ErrorKind,
    status: u16,
    calls: Mutex<Vec<Instant>>,
}

impl Flaky {
    fn down_for(d: Duration, kind: ErrorKind, status: u16) -> Arc<Flaky> {
        Arc::new(Flaky {
            healthy_at: Instant::now() + d,
            kind,
            status,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

fn answer(text: &str) -> ChatResponse {
    let mut r = ChatResponse::default();
    r.choices = vec![Choice::new(
        0,
        Message::assistant(text),
        Some(FinishReason::Stop),
    )];
    r
}

#[async_trait]
impl Provider for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn chat(
        &self,
        _: &ChatRequest,
        model: &str,
        _: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let now = Instant::now();
        self.calls.lock().unwrap().push(now);
        // A little latency, so the paused clock moves as a vendor's would.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if now < self.healthy_at {
            return Err(Error::new(self.kind, "down").with_status(self.status));
        }
        Ok(answer(model))
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::InvalidRequest, "not used"))
    }
}

fn relay_of(primary: Arc<Flaky>, backup: Arc<Flaky>) -> Relay {
    Relay::builder()
        .provider_arc("primary", primary)
        .provider_arc("backup", backup)
        .route("r", Chain::of(["primary/m", "backup/m"]))
        .build()
        .unwrap()
}

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Where is my order?")
}

#[tokio::test(start_paused = true)]
async fn an_outage_of_60_s_is_routed_around_and_the_primary_is_back_within_30_s() {
    let start = Instant::now();
    let primary = Flaky::down_for(Duration::from_secs(60), ErrorKind::Server, 500);
    let backup = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = relay_of(primary.clone(), backup);
    let cooldown = BreakerPolicy::default().cooldown;
    let mut back_at = None;
    for i in 0..30u32 {
        tokio::time::sleep_until(start + Duration::from_secs(4 * u64::from(i))).await;
        let at = Instant::now() - start;
        let resp = relay.chat(req()).await.expect("every request is served");
        let by = resp.meta.served_by.clone().unwrap().provider.to_string();
        if at < Duration::from_secs(60) {
            assert_eq!(
                by, "backup",
                "during the outage the backup serves (t = {at:?})"
            );
            // Once open, the primary is either probed (an attempt) or skipped (and named).
            if i >= 3 {
                let probed = resp
                    .meta
                    .attempts
                    .iter()
                    .any(|a| &*a.target.provider == "primary");
                let skipped = resp
                    .meta
                    .skipped
                    .iter()
                    .any(|s| &*s.target.provider == "primary");
                assert!(probed != skipped, "t = {at:?}: {:?}", resp.meta);
            }
        } else if by == "primary" && back_at.is_none() {
            back_at = Some(at);
        }
        if back_at.is_some() {
            assert_eq!(by, "primary", "once back, the primary stays (t = {at:?})");
        }
    }
    let back_at = back_at.expect("the primary served again");
    assert!(
        back_at <= Duration::from_secs(90),
        "back on the primary {back_at:?} after the start, 60 s outage"
    );
    // Before the breaker opened: 5 consecutive failures (2 + 2 + 1 tries). After: at most
    // one attempt (a probe) per cooldown.
    let calls: Vec<Duration> = primary.calls().iter().map(|c| *c - start).collect();
    let during: Vec<Duration> = calls
        .iter()
        .copied()
        .filter(|c| *c < Duration::from_secs(60))
        .collect();
    assert!(during.len() >= 5, "{calls:?}");
    for pair in during[5..].windows(2) {
        assert!(
            pair[1] - pair[0] >= cooldown,
            "probes closer than the cooldown: {calls:?}"
        );
    }
    assert!(
        during.len() <= 5 + 60 / 5,
        "{} primary attempts in the outage",
        during.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_503_spell_is_routed_around_and_the_primary_serves_again_before_the_end() {
    let start = Instant::now();
    let primary = Flaky::down_for(Duration::from_secs(6), ErrorKind::Overloaded, 503);
    let backup = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = relay_of(primary.clone(), backup);
    let mut served = Vec::new();
    for i in 0..10u32 {
        tokio::time::sleep_until(start + Duration::from_millis(1200 * u64::from(i))).await;
        let resp = relay.chat(req()).await.expect("every request is served");
        served.push(resp.meta.served_by.unwrap().provider.to_string());
    }
    assert_eq!(
        served.last().map(String::as_str),
        Some("primary"),
        "{served:?}"
    );
    assert!(served[..3].iter().all(|s| s == "backup"), "{served:?}");
    let health = relay.health();
    let p = health
        .iter()
        .find(|h| &*h.target.provider == "primary")
        .unwrap();
    assert_eq!(p.state, BreakerState::Closed);
    assert_eq!(p.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_reported_and_all_open_still_tries_the_oldest() {
    let primary = Flaky::down_for(Duration::from_secs(3600), ErrorKind::Server, 500);
    let backup = Flaky::down_for(Duration::from_secs(3600), ErrorKind::Server, 500);
    let relay = relay_of(primary.clone(), backup.clone());
    // Three calls: 2 + 2 + 1 primary tries open it; the backup fails as often.
    for _ in 0..3 {
        let err = relay.chat(req()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    }
    let health = relay.health();
    assert_eq!(health.len(), 2);
    for h in &health {
        assert_eq!(h.state, BreakerState::Open, "{h:?}");
        assert!(h.next_probe_in.is_some_and(|d| d <= Duration::from_secs(5)));
        assert!(h.error_rate > 0.99);
    }
    // Both open: the relay still tries one (the one that failed longest ago), once.
    let before = (primary.calls().len(), backup.calls().len());
    let err = relay.chat(req()).await.unwrap_err();
    assert_eq!(err.attempts().len(), 1, "{err:?}");
    let after = (primary.calls().len(), backup.calls().len());
    assert_eq!(after.0 - before.0 + after.1 - before.1, 1);
    // The error says where the rest of the plan went: passed over, breaker open.
    assert_eq!(err.skipped().len(), 1, "{err:?}");
    assert_ne!(err.skipped()[0].target, err.attempts()[0].target);
    assert_eq!(err.skipped()[0].reason, polyrelay::SkipReason::BreakerOpen);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_set_for_one_target_replaces_the_relay_wide_one() {
    let primary = Flaky::down_for(Duration::from_secs(3600), ErrorKind::Server, 500);
    let backup = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = Relay::builder()
        .provider_arc("primary", primary.clone())
        .provider_arc("backup", backup.clone())
        .breaker_for(
            "primary/m",
            BreakerPolicy::default()
                .consecutive_failures(1)
                .cooldown(Duration::from_secs(60)),
        )
        .route(
            "r",
            Chain::new()
                .target(Target::new("primary", "m").max_attempts(1))
                .target("backup/m"),
        )
        .build()
        .unwrap();
    // One failure opens the primary (the relay-wide default would need five).
    let res = relay.chat(req()).await.unwrap();
    assert_eq!(
        res.meta.served_by.as_ref().unwrap().provider.as_ref(),
        "backup"
    );
    let state = |name: &str| {
        relay
            .health()
            .into_iter()
            .find(|h| &*h.target.provider == name)
            .unwrap()
            .state
    };
    assert_eq!(state("primary"), BreakerState::Open);
    for _ in 0..5 {
        relay.chat(req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    assert_eq!(primary.calls().len(), 1, "open for its own 60 s cooldown");
    assert_eq!(state("backup"), BreakerState::Closed);
}

#[test]
fn breaker_for_names_a_known_provider_and_a_model() {
    for (name, wanted) in [
        ("nobody/m", "no provider named"),
        ("primary", "expected"),
        ("primary/", "expected"),
    ] {
        let err = Relay::builder()
            .provider_arc(
                "primary",
                Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500),
            )
            .route("r", Chain::of(["primary/m"]))
            .breaker_for(name, BreakerPolicy::default())
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains(wanted), "{name}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn what_says_nothing_about_health_never_opens_a_breaker() {
    #[derive(Debug)]
    struct Picky;
    #[async_trait]
    impl Provider for Picky {
        fn name(&self) -> &str {
            "picky"
        }
        async fn chat(
            &self,
            r: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatResponse, Error> {
            Err(match r.messages.len() {
                1 => Error::new(ErrorKind::InvalidRequest, "bad").with_status(400),
                2 => Error::new(ErrorKind::ContextLengthExceeded, "too long").with_status(400),
                _ => Error::new(ErrorKind::ContentFiltered, "no").with_status(400),
            })
        }
        async fn chat_stream(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatStream, Error> {
            Err(Error::new(ErrorKind::InvalidRequest, "not used"))
        }
    }
    let relay = Relay::builder().provider("p", Picky).build().unwrap();
    for i in 0..30 {
        let mut r = ChatRequest::new("p/m");
        for _ in 0..=(i % 3) {
            r = r.user("x");
        }
        let _ = relay.chat(r).await.unwrap_err();
    }
    // A caller that gives up (drops the call) says nothing either.
    let slow = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay2 = Relay::builder().provider_arc("slow", slow).build().unwrap();
    for _ in 0..10 {
        let call = relay2.chat(ChatRequest::new("slow/m").user("x"));
        let _ = tokio::time::timeout(Duration::from_millis(5), call).await;
    }
    for h in relay.health().into_iter().chain(relay2.health()) {
        assert_eq!(h.state, BreakerState::Closed, "{h:?}");
        assert_eq!(h.consecutive_failures, 0, "{h:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_stops_a_retry_storm() {
    let primary = Flaky::down_for(Duration::from_secs(3600), ErrorKind::Server, 500);
    let backup = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = Relay::builder()
        .provider_arc("primary", primary.clone())
        .provider_arc("backup", backup)
        .route("r", Chain::of(["primary/m", "backup/m"]))
        .breaker(BreakerPolicy::disabled())
        .retry_budget(RetryBudget::new(0.2, 2.0))
        .build()
        .unwrap();
    for _ in 0..20 {
        relay.chat(req()).await.expect("served by the backup");
    }
    // 20 first tries, and retries bounded by the burst (2) plus 20 % of the requests (4).
    let tries = primary.calls().len();
    assert!(
        (20..=26).contains(&tries),
        "{tries} primary tries for 20 requests"
    );
}

#[tokio::test(start_paused = true)]
async fn strategies_pick_the_first_target_per_request() {
    let a = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let b = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let c = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = Relay::builder()
        .provider_arc("a", a)
        .provider_arc("b", b)
        .provider_arc("c", c)
        .route(
            "rr",
            Chain::of(["a/m", "b/m", "c/m"]).strategy(Strategy::RoundRobin),
        )
        .route(
            "cheap",
            Chain::new()
                .target(Target::new("a", "m").price(polyrelay::Price::per_million(5.0, 15.0)))
                .target(Target::new("b", "m"))
                .target(Target::new("c", "m").price(polyrelay::Price::per_million(0.1, 0.4)))
                .strategy(Strategy::CheapestFirst),
        )
        .route(
            "weighted",
            Chain::new()
                .target(Target::new("a", "m").weight(3.0))
                .target(Target::new("b", "m").weight(1.0))
                .target(Target::new("c", "m").weight(0.0))
                .strategy(Strategy::WeightedRandom),
        )
        .route(
            "fast",
            Chain::of(["a/m", "b/m"]).strategy(Strategy::LowestLatency),
        )
        .build()
        .unwrap();
    let first = |resp: &ChatResponse| resp.meta.served_by.as_ref().unwrap().provider.to_string();
    let mut rr = Vec::new();
    for _ in 0..6 {
        rr.push(first(
            &relay.chat(ChatRequest::new("rr").user("x")).await.unwrap(),
        ));
    }
    assert_eq!(rr, ["a", "b", "c", "a", "b", "c"]);
    let resp = relay
        .chat(ChatRequest::new("cheap").user("x"))
        .await
        .unwrap();
    assert_eq!(first(&resp), "c");
    let mut counts = std::collections::HashMap::<String, u32>::new();
    for _ in 0..400 {
        let resp = relay
            .chat(ChatRequest::new("weighted").user("x"))
            .await
            .unwrap();
        *counts.entry(first(&resp)).or_default() += 1;
    }
    let (na, nb) = (counts["a"], counts.get("b").copied().unwrap_or(0));
    assert!(
        !counts.contains_key("c"),
        "weight 0 never goes first: {counts:?}"
    );
    assert!(na > 2 * nb && nb > 40, "about 3:1: {counts:?}");
    // Lowest latency: both answer in 20 ms; each then carries an EWMA and the first stays
    // first while equal (a stable order).
    let resp = relay
        .chat(ChatRequest::new("fast").user("x"))
        .await
        .unwrap();
    assert_eq!(first(&resp), "a");
}

#[tokio::test]
async fn over_http_the_breaker_opens_probes_and_closes() {
    let sim = Simulator::start().await.unwrap();
    let down = || Reply::openai_error(503, "server_error", None, "down");
    // Five failures open it; the first probe still fails; the second succeeds.
    sim.script(
        "primary",
        [
            down(),
            down(),
            down(),
            down(),
            down(),
            down(),
            Reply::openai_text("primary is back"),
        ],
    );
    sim.script("fallback", [Reply::openai_text("fallback")]);
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("r", primary_fallback())
        .breaker(BreakerPolicy::default().cooldown(Duration::from_millis(300)))
        .build()
        .unwrap();
    let mut served = Vec::new();
    let mut saw_open = false;
    for _ in 0..14 {
        let resp = guarded(relay.chat(req()))
            .await
            .expect("every request is served");
        served.push(resp.meta.served_by.unwrap().model.to_string());
        let h = relay.health();
        let p = h.iter().find(|h| &*h.target.model == "primary").unwrap();
        saw_open |= p.state == BreakerState::Open;
        // Pacing the scenario (not waiting for anything): one request every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_open, "the breaker was seen open");
    // Six failures (five that opened it, one failed probe), then one request per answer.
    let by_primary = served.iter().filter(|s| *s == "primary").count();
    assert_eq!(
        sim.requests_for("primary").len(),
        6 + by_primary,
        "{served:?}"
    );
    assert_eq!(
        served.last().map(String::as_str),
        Some("primary"),
        "{served:?}"
    );
    assert!(served[..3].iter().all(|s| s == "fallback"), "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn a_probe_the_caller_gave_up_on_frees_the_probe() {
    let primary = Flaky::down_for(Duration::from_secs(3600), ErrorKind::Server, 500);
    let backup = Flaky::down_for(Duration::ZERO, ErrorKind::Server, 500);
    let relay = relay_of(primary.clone(), backup);
    // 2 + 2 + 1 failures open the primary's breaker.
    for _ in 0..3 {
        relay.chat(req()).await.expect("the backup serves");
    }
    tokio::time::sleep(BreakerPolicy::default().cooldown).await;
    // The next call probes the primary, and its caller gives up during the probe.
    let before = primary.calls().len();
    let call = relay.chat(req());
    assert!(
        tokio::time::timeout(Duration::from_millis(5), call)
            .await
            .is_err()
    );
    assert_eq!(primary.calls().len(), before + 1, "the probe started");
    // The probe told nothing: the next call may probe again instead of skipping it.
    let resp = relay.chat(req()).await.expect("served");
    assert_eq!(primary.calls().len(), before + 2, "{:?}", resp.meta);
    assert!(resp.meta.skipped.is_empty(), "{:?}", resp.meta.skipped);
}
