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
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    sim.script(
        "primary",
        [
            Reply::openai_error(429, "requests", None, "Rate limit reached")
                .header("retry-after", "30"),
            Reply::text("ok"),
        ],
    );
    let fleet: Vec<Relay> = ["a", "b"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(5))
                .rate_limit("sim/primary", RateLimit::new().requests_per_minute(6_000))
                .store(store(&redis, "hold", id))
                .build()
                .unwrap()
        })
        .collect();
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
