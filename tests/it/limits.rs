//! Rate limits and budgets as they work, over real HTTP on the loopback simulator with
//! tokio's paused clock: a limit set to a vendor's sends no 60 s window more than the vendor
//! allows (the bucket's burst), and `Relay::limits` shows each limiter's cells, each
//! budget's spend and each pool key's state.
//!
//! The relay's HTTP client keeps no idle connection: hyper's pool would arm a 90 s idle
//! timer, and with a paused clock tokio may jump to it whenever the runtime waits on the
//! socket.

use crate::support;

use std::time::Duration;

use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{Chain, ChatRequest, LimitsSnapshot, NamedLimiter, Relay, Target};
use polyrelay::{KeyPool, KeyState};
use serde_json::json;
use support::*;
use tokio::time::Instant;

const MINI: &str = "gpt-4o-mini";
const MIN: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    unpooled_client()
}

/// `sim/gpt-4o-mini` then `sim/gpt-4o` on route `r`, no retries on the first.
fn mini_then_4o(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder()
        .http_client(client())
        .provider("sim", openai_at(sim, "sk-test"))
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", MINI).max_attempts(1))
                .target("sim/gpt-4o"),
        )
}

/// The most requests for `model` the simulator received within any `window` (`[t, t + window)`).
fn busiest(sim: &Simulator, model: &str, window: Duration) -> usize {
    let at: Vec<Instant> = sim.requests_for(model).iter().map(|r| r.at).collect();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window).count())
        .max()
        .unwrap_or(0)
}

/// What a vendor saw of three minutes of traffic.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The most requests in any 60 s.
    minute: usize,
    /// The most requests in any 10 s.
    ten_seconds: usize,
    /// Its 429s.
    refused: usize,
}

/// Three minutes of traffic from a cold start, two calls at once every 5 s, through a relay
/// whose limit on `gpt-4o-mini` is `limit`, against a vendor that allows 6 requests a
/// minute enforced as OpenAI documents it may be: one in any 10 s, and 6 in any 60 s. Calls
/// the limit keeps from it go to another vendor. Returns what the vendor saw and how many
/// calls it served.
async fn three_minutes_against_6_a_minute(limit: RateLimit) -> (Seen, usize) {
    let sim = Simulator::start().await.expect("simulator starts");
    let other = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    other.set_default(Reply::text("elsewhere"));
    sim.limit_requests(MINI, 1, Duration::from_secs(10));
    sim.limit_all_requests(6, MIN);
    let relay = Relay::builder()
        .http_client(client())
        .provider("sim", openai_at(&sim, "sk-test"))
        .provider(
            "other",
            polyrelay::providers::OpenAi::compatible(
                "other",
                &format!("{}/v1", other.base_url()),
                "sk-o",
            ),
        )
        .route(
            "r",
            Chain::new()
                .target(Target::new("sim", MINI).max_attempts(1))
                .target("other/deepseek-chat"),
        )
        .rate_limit(format!("sim/{MINI}"), limit)
        .build()
        .expect("valid relay");
    let start = Instant::now();
    let mut served = 0;
    for i in 0..36u32 {
        tokio::time::sleep_until(start + Duration::from_secs(5 * u64::from(i))).await;
        let call = || relay.chat(ChatRequest::new("r").user("hi"));
        let (a, b) = tokio::join!(call(), call());
        for resp in [a, b] {
            let resp = resp.expect("every call is served, by one vendor or the other");
            served += usize::from(&*resp.meta.served_by.expect("served").model == MINI);
        }
    }
    let seen = Seen {
        minute: busiest(&sim, MINI, MIN),
        ten_seconds: busiest(&sim, MINI, Duration::from_secs(10)),
        refused: sim.rate_limited(MINI),
    };
    (seen, served)
}

#[tokio::test(start_paused = true)]
async fn a_limit_set_to_the_vendors_never_sends_more_in_any_window() {
    let within = Seen {
        minute: 6,
        ten_seconds: 1,
        refused: 0,
    };
    // The default burst (1): one request every 10 s; the second call of each pair, and
    // every other pair, fail over.
    let fail_over = RateLimit::new().requests_per_minute(6);
    let (seen, served) = three_minutes_against_6_a_minute(fail_over).await;
    assert_eq!(seen, within);
    // At 0 s, 10 s, ... 170 s.
    assert_eq!(served, 18);

    // Waiting for the next cell instead (calls that cannot get one within 8 s fail over).
    let waits = RateLimit::new()
        .requests_per_minute(6)
        .wait_up_to(Duration::from_secs(8));
    let (seen, served) = three_minutes_against_6_a_minute(waits).await;
    assert_eq!(seen, within);
    assert!(served >= 18, "{served}");

    // A bucket of the whole minute (the old behaviour) sends both calls of a pair at once,
    // and the vendor refuses the second.
    let whole_minute = RateLimit::new().requests_per_minute(6).burst(6);
    let (seen, _) = three_minutes_against_6_a_minute(whole_minute).await;
    assert!(seen.ten_seconds > 1 && seen.refused > 0, "{seen:?}");
}

fn limiter<'a>(list: &'a [NamedLimiter], name: &str) -> &'a NamedLimiter {
    list.iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no limiter {name} in {list:?}"))
}

fn requests_left(limits: &LimitsSnapshot, name: &str) -> (u32, Option<Duration>) {
    let r = limiter(&limits.targets, name)
        .status
        .requests
        .expect("a requests bucket");
    (r.remaining, r.next_cell_in)
}

#[tokio::test(start_paused = true)]
async fn limits_show_cells_left_and_when_the_next_comes() {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let relay = mini_then_4o(&sim)
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new()
                .requests_per_minute(6)
                .burst(3)
                .tokens_per_minute(60_000)
                .max_concurrent(4),
        )
        .rate_limit("sim", RateLimit::new().requests_per_minute(120).burst(10))
        .rate_limit("sim/unused", RateLimit::new().requests_per_minute(5))
        .build()
        .expect("valid relay");
    let limits = relay.limits();
    assert_eq!(requests_left(&limits, "sim/gpt-4o-mini"), (3, None));
    let mini = &limiter(&limits.targets, "sim/gpt-4o-mini").status;
    assert_eq!(mini.max_concurrent, Some(4));
    let tokens = mini.tokens.expect("a tokens bucket");
    assert_eq!((tokens.per_minute, tokens.burst), (60_000, 60_000));
    assert_eq!(tokens.remaining, 60_000);
    // A limit no call has used yet shows full.
    assert_eq!(requests_left(&limits, "sim/unused"), (1, None));

    for left in [2, 1, 0] {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
        // Each call took a cell; the first one back comes 10 s after the first was taken.
        assert_eq!(
            requests_left(&relay.limits(), "sim/gpt-4o-mini"),
            (left, Some(Duration::from_secs(10)))
        );
    }
    let limits = relay.limits();
    let tokens = limiter(&limits.targets, "sim/gpt-4o-mini").status.tokens;
    assert!(tokens.is_some_and(|t| t.remaining < 60_000), "{tokens:?}");
    let provider = limiter(&limits.providers, "sim").status.requests.unwrap();
    assert_eq!((provider.burst, provider.remaining), (10, 7));
    assert_eq!(provider.next_cell_in, Some(Duration::from_millis(500)));

    // The fourth call fails over without sending; 4 s on, the next cell is 6 s away.
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(&*resp.meta.served_by.unwrap().model, "gpt-4o");
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        requests_left(&relay.limits(), "sim/gpt-4o-mini"),
        (0, Some(Duration::from_secs(6)))
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(
        requests_left(&relay.limits(), "sim/gpt-4o-mini"),
        (1, Some(Duration::from_secs(10)))
    );

    // The JSON a /limits page shows.
    let shown = serde_json::to_value(relay.limits()).unwrap();
    let mini = shown["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sim/gpt-4o-mini")
        .unwrap();
    assert_eq!(
        mini["requests"],
        json!({"per_minute": 6, "burst": 3, "remaining": 1, "next_cell_in_ms": 10_000})
    );
    assert_eq!(mini["max_concurrent"], 4);
    assert_eq!(mini["in_flight"], 0);
    assert_eq!(mini["held_for_ms"], json!(null));
}

#[tokio::test(start_paused = true)]
async fn limits_show_a_budgets_spend_reservations_and_reset() {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.script(MINI, [Reply::text("ok"), Reply::hang()]);
    let relay = mini_then_4o(&sim)
        .budget(Budget::tokens("daily", 100_000).per(BudgetPeriod::Day))
        .budget(
            Budget::tokens("minute", 100_000)
                .per(BudgetPeriod::Minute)
                .rolling(),
        )
        .build()
        .expect("valid relay");
    let fresh = relay.limits();
    assert_eq!(fresh.budgets.len(), 2);
    let day = &fresh.budgets[0];
    assert_eq!(
        (day.status.spent, day.status.reserved, day.status.limit),
        (0.0, 0.0, 100_000.0)
    );
    assert!(day.resets_in > Duration::ZERO && day.resets_in <= Duration::from_secs(86_400));
    // A rolling window with nothing spent resets now.
    assert_eq!(fresh.budgets[1].resets_in, Duration::ZERO);

    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    let used = resp.usage.expect("usage").total_tokens() as f64;
    tokio::time::advance(Duration::from_secs(15)).await;
    let limits = relay.limits();
    let day_after = &limits.budgets[0];
    assert_eq!(
        (day_after.status.spent, day_after.status.reserved),
        (used, 0.0)
    );
    // The calendar day is 15 s nearer its end; the minute's spend leaves it in 45 s.
    assert_eq!(day.resets_in - day_after.resets_in, Duration::from_secs(15));
    let minute = &limits.budgets[1];
    assert_eq!(
        (minute.status.spent, minute.status.period),
        (used, BudgetPeriod::Minute)
    );
    assert!(minute.status.rolling);
    assert!(
        minute.resets_in <= Duration::from_secs(45) && minute.resets_in > Duration::from_secs(40),
        "{:?}",
        minute.resets_in
    );

    // A call in flight holds its estimate as reserved.
    let req = ChatRequest::new("r").user("hi").max_tokens(50);
    let mut call = Box::pin(relay.chat(&req));
    tokio::select! {
        r = &mut call => panic!("the hung vendor answered: {r:?}"),
        () = sim.wait_for_requests(2) => {}
    }
    let reserved = relay.limits().budgets[0].status.reserved;
    assert!(reserved >= 50.0, "{reserved}");
    drop(call);
    let shown = serde_json::to_value(relay.limits()).unwrap();
    let daily = &shown["budgets"][0];
    assert_eq!(daily["name"], "daily");
    assert_eq!(daily["unit"], "tokens");
    assert_eq!(daily["period"], "day");
    assert_eq!(daily["limit"], 100_000.0);
    assert!(daily["resets_in_ms"].as_u64().is_some(), "{daily}");
}

#[tokio::test(start_paused = true)]
async fn limits_show_a_pool_key_resting_after_a_429_and_when_it_returns() {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.script(
        MINI,
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "20"),
            Reply::text("ok"),
        ],
    );
    let relay = mini_then_4o(&sim)
        .key_pool(
            "sim",
            KeyPool::new()
                .key("sk-one-AAAA")
                .key("sk-two-BBBB")
                .limit_each(RateLimit::new().requests_per_minute(30)),
        )
        .build()
        .expect("valid relay");
    let before = relay.limits();
    assert_eq!(before.key_pools.len(), 1);
    assert!(
        before.key_pools[0]
            .keys
            .iter()
            .all(|k| k.health.state == KeyState::Ready && k.returns_in.is_none())
    );
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    // The first key was told to wait; the second served.
    assert_eq!(resp.meta.attempts.len(), 2, "{:?}", resp.meta.attempts);
    // Each key's own limiter took its cell: the next comes 2 s after.
    for key in &relay.limits().key_pools[0].keys {
        let r = key
            .limiter
            .as_ref()
            .and_then(|l| l.requests)
            .expect("a key limiter");
        assert_eq!(
            (r.remaining, r.next_cell_in),
            (0, Some(Duration::from_secs(2)))
        );
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    let limits = relay.limits();
    let pool = &limits.key_pools[0];
    assert_eq!(pool.provider, "sim");
    let (first, second) = (&pool.keys[0], &pool.keys[1]);
    assert_eq!(first.health.state, KeyState::Resting { for_ms: 15_000 });
    assert_eq!(first.returns_in, Some(Duration::from_secs(15)));
    assert_eq!(second.health.state, KeyState::Ready);
    assert_eq!(second.returns_in, None);
    let r = first
        .limiter
        .as_ref()
        .and_then(|l| l.requests)
        .expect("a key limiter");
    assert_eq!((r.remaining, r.next_cell_in), (1, None));
    let shown = serde_json::to_value(&limits).unwrap();
    let key = &shown["key_pools"][0]["keys"][0];
    assert_eq!(key["returns_in_ms"], 15_000);
    assert_eq!(key["state"], json!({"state": "resting", "for_ms": 15_000}));
    assert!(!shown.to_string().contains("sk-one"), "{shown}");
}

/// The builder `text` makes, with `env` answering for `OPENAI_API_KEY`.
fn from_file(text: &str) -> Result<polyrelay::RelayBuilder, polyrelay::config::ConfigError> {
    polyrelay::config::RelayConfig::from_toml_str(text)
        .and_then(|c| c.builder_with_env(|v| (v == "OPENAI_API_KEY").then(|| "sk-test".into())))
}

#[test]
fn burst_in_a_file_is_checked_with_its_key_and_line() {
    let file = |limit: &str| {
        format!(
            "[providers.openai]\nkind = \"openai\"\napi_key_env = \"OPENAI_API_KEY\"\n\n[rate_limits.\"openai/gpt-4o\"]\n{limit}\n"
        )
    };
    let relay = from_file(&file("requests_per_minute = 60\nburst = 5"))
        .expect("valid")
        .build()
        .expect("valid");
    let limits = relay.limits();
    let r = limiter(&limits.targets, "openai/gpt-4o")
        .status
        .requests
        .unwrap();
    assert_eq!((r.per_minute, r.burst, r.remaining), (60, 5, 5));
    let relay = from_file(&file("requests_per_minute = 60"))
        .expect("valid")
        .build()
        .expect("valid");
    let r = limiter(&relay.limits().targets, "openai/gpt-4o")
        .status
        .requests
        .unwrap();
    assert_eq!(r.burst, 1, "the default");
    for (limit, says) in [
        ("requests_per_minute = 60\nburst = 0", "at least 1"),
        ("requests_per_minute = 60\nburst = 61", "from 1 to 60"),
        (
            "tokens_per_minute = 600\nburst = 2",
            "set requests_per_minute",
        ),
    ] {
        let e = match from_file(&file(limit)) {
            Ok(_) => panic!("accepted {limit}"),
            Err(e) => e,
        };
        assert_eq!(e.line(), Some(7), "{e}");
        assert_eq!(e.key(), Some("rate_limits.\"openai/gpt-4o\".burst"), "{e}");
        assert!(e.message().contains(says), "{e}");
    }
}
