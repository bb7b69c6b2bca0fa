//! Rate limits across replicas: the fleet's requests under one limit follow one schedule,
//! so no window sees more than the limit, and a busy fleet uses nearly all of it.

use std::time::Duration;

use polyrelay::{Chain, ChatRequest, RateLimit, Relay};
use tokio::time::Instant;

use super::*;
use crate::support::redis::RedisServer;

/// The most arrivals in any window `[t, t + width)` starting at an arrival.
fn busiest_window(arrivals: &[Instant], width: Duration) -> usize {
    arrivals
        .iter()
        .enumerate()
        .map(|(i, &t)| arrivals[i..].iter().take_while(|&&a| a < t + width).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_limit_and_no_window_sees_more() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let limit = RateLimit::new()
        .requests_per(20, Duration::from_secs(2))
        .wait_up_to(Duration::from_secs(30));
    let fleet: Vec<Relay> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            Relay::builder()
                .provider("sim", openai_at(&sim, "sk-test"))
                .route(
                    "r",
                    Chain::new()
                        .target("sim/limited")
                        .total_timeout(Duration::from_secs(30)),
                )
                .rate_limit("sim/limited", limit.clone())
                .store(store(&redis, "limits", id))
                .build()
                .unwrap()
        })
        .collect();
    for r in &fleet {
        r.sync_store().await.expect("redis answers");
    }
    let run_for = Duration::from_secs(10);
    let start = Instant::now();
    let end = start + run_for;
    let tasks: Vec<_> = fleet
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.clone(), 16))
        .map(|relay| {
            tokio::spawn(async move {
                let mut served = 0;
                while Instant::now() < end {
                    let req = ChatRequest::new("r").user("hi");
                    if relay.chat(req).await.is_ok() {
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += guarded_long(t).await.unwrap();
    }
    let arrivals: Vec<Instant> = sim
        .requests_for("limited")
        .iter()
        .map(|r| r.at)
        .filter(|&at| at < end)
        .collect();
    let busiest = busiest_window(&arrivals, Duration::from_secs(2));
    let used = arrivals.len() as f64 / (20.0 * run_for.as_secs_f64() / 2.0);
    eprintln!(
        "{} requests in {run_for:?} ({served} served), busiest 2 s window {busiest}, {:.0} % of the limit used",
        arrivals.len(),
        used * 100.0
    );
    assert!(busiest <= 20, "a 2 s window saw {busiest} requests");
    assert!(used >= 0.9, "only {:.0} % of the limit used", used * 100.0);
}

/// As `guarded`, with room for a 10 s run.
async fn guarded_long<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("test took longer than 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_replica_holds_the_limit_for_the_whole_fleet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = sim_one_429().await;
    let fleet = pair(&sim, &redis, "hold", |b| {
        b.rate_limit("sim/primary", RateLimit::new().requests_per_minute(6_000))
    });
    for r in &fleet {
        r.sync_store().await.expect("redis answers");
    }
    // Replica a leases slots, then meets the vendor's 429 with 30 s to wait.
    let ask = || ChatRequest::new("r").user("hi");
    let mut first = guarded(fleet[0].chat(ask())).await.unwrap();
    while sim.requests_for("primary").is_empty() {
        fleet[0].sync_store().await.unwrap();
        first = guarded(fleet[0].chat(ask())).await.unwrap();
    }
    assert_eq!(&*first.meta.served_by.unwrap().model, "fallback");
    fleet[0].sync_store().await.unwrap();
    fleet[1].sync_store().await.unwrap();
    for _ in 0..5 {
        fleet[1].sync_store().await.unwrap();
        let resp = guarded(fleet[1].chat(ask())).await.unwrap();
        assert_eq!(&*resp.meta.served_by.unwrap().model, "fallback");
    }
    assert_eq!(
        sim.requests_for("primary").len(),
        1,
        "replica b held off the primary"
    );
    let held = fleet[1]
        .health()
        .into_iter()
        .find(|h| &*h.target.model == "primary")
        .and_then(|h| h.limiter)
        .and_then(|l| l.held_for)
        .expect("replica b's limiter is held");
    assert!(held > Duration::from_secs(20), "held for {held:?}");
}

/// The simulator: `primary` answers its first request with a 429 asking to wait 30 s, then
/// "ok"; every other model "ok".
async fn sim_one_429() -> Simulator {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let wait = Reply::openai_error(429, "requests", None, "Rate limit reached")
        .header("retry-after", "30");
    sim.script("primary", [wait, Reply::text("ok")]);
    sim
}

/// Two replicas (a, b) on `redis` in namespace `ns`, each built by `with` from [`replica`].
fn pair(
    sim: &Simulator,
    redis: &RedisServer,
    ns: &str,
    with: impl Fn(polyrelay::RelayBuilder) -> polyrelay::RelayBuilder,
) -> Vec<Relay> {
    ["a", "b"]
        .iter()
        .map(|id| {
            with(replica(sim, Duration::from_secs(5)))
                .store(store(redis, ns, id))
                .build()
                .unwrap()
        })
        .collect()
}

/// Calls served by the `limited` target when `fleet` hammers it (4 tasks a replica, for
/// `run_for`, failing over to `fallback` when limited).
async fn served_by_limited(fleet: &[Relay], run_for: Duration) -> usize {
    let end = Instant::now() + run_for;
    let tasks: Vec<_> = fleet
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.clone(), 4))
        .map(|relay| {
            tokio::spawn(async move {
                let mut limited = 0;
                while Instant::now() < end {
                    let req = ChatRequest::new("r").user("hi").max_tokens(40);
                    let resp = relay.chat(req).await.expect("the fallback serves");
                    if &*resp.meta.served_by.unwrap().model == "limited" {
                        limited += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                limited
            })
        })
        .collect();
    let mut limited = 0;
    for t in tasks {
        limited += guarded(t).await.unwrap();
    }
    limited
}

fn tokens_fleet(sim: &Simulator, redis: Option<&RedisServer>, ids: &[&str]) -> Vec<Relay> {
    ids.iter()
        .map(|id| {
            let b = Relay::builder()
                .provider("sim", openai_at(sim, "sk-test"))
                .route("r", Chain::of(["sim/limited", "sim/fallback"]))
                .rate_limit("sim/limited", RateLimit::new().tokens_per_minute(1_200));
            match redis {
                Some(redis) => b.store(store(redis, "tokens", id)),
                None => b,
            }
            .build()
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_tokens_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let run_for = Duration::from_secs(2);
    // One replica alone: what a minute's bucket of 1,200 tokens admits in 2 s.
    let alone = served_by_limited(&tokens_fleet(&sim, None, &["solo"]), run_for).await;
    let fleet = tokens_fleet(&sim, Some(&redis), &["a", "b", "c"]);
    for r in &fleet {
        r.sync_store().await.expect("redis answers");
    }
    let shared = served_by_limited(&fleet, run_for).await;
    eprintln!("one replica alone: {alone} calls on the limited target; three sharing: {shared}");
    assert!(alone > 5, "the limit admits some calls: {alone}");
    // Three replicas on their own would admit three times as many.
    assert!(
        shared as f64 <= alone as f64 * 1.5,
        "{shared} calls for the fleet, {alone} for one replica alone"
    );
    assert!(
        shared as f64 >= alone as f64 * 0.6,
        "the shared limit is used: {shared} of {alone}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_resting_on_one_replica_rests_on_every_replica() {
    use polyrelay::KeyPool;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = sim_one_429().await;
    let fleet = pair(&sim, &redis, "keys", |b| {
        b.key_pool(
            "sim",
            KeyPool::new().key("sk-one").key("sk-two").round_robin(),
        )
    });
    let ask = || ChatRequest::new("r").user("hi");
    // Replica a: the first key meets the 429 and rests; the second key serves.
    guarded(fleet[0].chat(ask())).await.unwrap();
    let first_key = sim.requests()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    fleet[0].sync_store().await.unwrap();
    fleet[1].sync_store().await.unwrap();
    sim.clear();
    for _ in 0..6 {
        guarded(fleet[1].chat(ask())).await.unwrap();
    }
    let used: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 6);
    assert!(
        used.iter().all(|k| *k != first_key),
        "replica b used the key resting on replica a: {used:?}"
    );
}

/// Two replicas sharing `limit` (10 requests a second) through a memory store that then
/// fails: the calls each replica sends to the limited target in one second of calls every
/// 10 ms.
async fn limited_while_the_store_fails(
    when: polyrelay::spend::limiter::WhenStoreFails,
) -> Vec<usize> {
    use polyrelay::store::{MemoryStore, Store};
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let shared = MemoryStore::new();
    let limit = RateLimit::new()
        .requests_per(10, Duration::from_secs(1))
        .when_store_fails(when);
    let fleet: Vec<Relay> = ["a", "b"]
        .iter()
        .map(|id| {
            Relay::builder()
                .provider("sim", openai_at(&sim, "sk-test"))
                .route("r", Chain::of(["sim/limited", "sim/fallback"]))
                .rate_limit("sim/limited", limit.clone())
                .store(
                    Store::new(shared.clone())
                        .replica_id(*id)
                        .sync_interval(SYNC),
                )
                .build()
                .unwrap()
        })
        .collect();
    // Twice: the first replica's first exchange saw only itself.
    for r in fleet.iter().chain(&fleet) {
        r.sync_store().await.unwrap();
    }
    shared.set_available(false);
    for r in &fleet {
        assert!(r.sync_store().await.is_err());
        assert_eq!(r.store_health().unwrap().replicas, 2);
    }
    let mut counts = Vec::new();
    for r in &fleet {
        let end = Instant::now() + Duration::from_secs(1);
        let mut limited = 0;
        while Instant::now() < end {
            let resp = r.chat(ChatRequest::new("r").user("hi")).await.unwrap();
            if &*resp.meta.served_by.unwrap().model == "limited" {
                limited += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        counts.push(limited);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_fails_a_shared_limit_is_an_even_share_or_as_configured() {
    use polyrelay::spend::limiter::WhenStoreFails;
    // Even share: 10 a second over 2 live replicas, 5 each (a first one at once).
    for n in limited_while_the_store_fails(WhenStoreFails::EvenShare).await {
        assert!(
            (4..=7).contains(&n),
            "{n} calls in a second at half of 10/s"
        );
    }
    // Closed: nothing under the limit; open: no limit.
    assert_eq!(
        limited_while_the_store_fails(WhenStoreFails::Closed).await,
        [0, 0]
    );
    for n in limited_while_the_store_fails(WhenStoreFails::Open).await {
        assert!(n > 30, "open: {n} calls in a second");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_for_an_empty_lease_to_refill_instead_of_failing_over() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("r", Chain::of(["sim/limited", "sim/fallback"]))
        // Fails over when limited: yet an empty lease is refilled, not a limit reached.
        .rate_limit("sim/limited", RateLimit::new().requests_per_minute(60_000))
        .store(store(&redis, "dry", "a"))
        .build()
        .unwrap();
    relay.sync_store().await.unwrap();
    for _ in 0..3 {
        // No demand yet, or the last slot just taken: the lease is empty each time.
        let resp = guarded(relay.chat(ChatRequest::new("r").user("hi")))
            .await
            .unwrap();
        assert_eq!(&*resp.meta.served_by.unwrap().model, "limited");
    }
    assert!(sim.requests_for("fallback").is_empty());
}

/// Two replicas, 6 tasks each, calling route `r` for 4 s under `with`'s limits: the
/// arrivals at the simulator, all models.
async fn arrivals_under(
    ns: &str,
    with: impl Fn(polyrelay::RelayBuilder) -> polyrelay::RelayBuilder,
) -> Option<Vec<Instant>> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let fleet: Vec<Relay> = ["a", "b"]
        .iter()
        .map(|id| {
            with(Relay::builder().provider("sim", openai_at(&sim, "sk-test")))
                .route(
                    "r",
                    Chain::of(["sim/one", "sim/two"]).total_timeout(Duration::from_secs(30)),
                )
                .store(store(&redis, ns, id))
                .build()
                .unwrap()
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(4);
    let tasks: Vec<_> = fleet
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.clone(), 6))
        .map(|relay| {
            tokio::spawn(async move {
                while Instant::now() < end {
                    let _ = relay.chat(ChatRequest::new("r").user("hi")).await;
                }
            })
        })
        .collect();
    for t in tasks {
        guarded_long(t).await.unwrap();
    }
    Some(
        sim.requests()
            .iter()
            .map(|r| r.at)
            .filter(|&at| at < end)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_limit_and_a_pool_keys_limit_hold_across_the_fleet() {
    let limit = || {
        RateLimit::new()
            .requests_per(10, Duration::from_secs(1))
            .wait_up_to(Duration::from_secs(30))
    };
    // The provider's own limit, over both its models.
    let Some(arrivals) = arrivals_under("provider", |b| b.rate_limit("sim", limit())).await else {
        return;
    };
    let busiest = busiest_window(&arrivals, Duration::from_secs(1));
    eprintln!(
        "provider limit: {} requests in 4 s, busiest 1 s window {busiest}",
        arrivals.len()
    );
    assert!(
        busiest <= 10,
        "a 1 s window saw {busiest} requests under the provider's limit"
    );
    assert!(
        arrivals.len() >= 30,
        "the limit was used: {}",
        arrivals.len()
    );
    // Each pool key's limit (one key: the key's limit is the whole traffic's).
    let Some(arrivals) = arrivals_under("key", |b| {
        b.key_pool(
            "sim",
            polyrelay::KeyPool::new().key("sk-only").limit_each(limit()),
        )
    })
    .await
    else {
        return;
    };
    let busiest = busiest_window(&arrivals, Duration::from_secs(1));
    eprintln!(
        "key limit: {} requests in 4 s, busiest 1 s window {busiest}",
        arrivals.len()
    );
    assert!(
        busiest <= 10,
        "a 1 s window saw {busiest} requests under the key's limit"
    );
    assert!(
        arrivals.len() >= 30,
        "the limit was used: {}",
        arrivals.len()
    );
}
