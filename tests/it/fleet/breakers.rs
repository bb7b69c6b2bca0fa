//! Breakers across replicas: an outage one replica sees keeps the others off the target, and
//! after the cooldown one probe goes for the whole fleet.

use std::time::Duration;

use polyrelay::{BreakerState, ChatRequest, Relay};
use tokio::time::Instant;

use super::*;
use crate::support::redis::RedisServer;

fn primary_state(relay: &Relay) -> Option<BreakerState> {
    relay
        .health()
        .into_iter()
        .find(|h| &*h.target.model == "primary")
        .map(|h| h.state)
}

fn ask() -> ChatRequest {
    ChatRequest::new("r").user("Where is my order?")
}

/// Calls `relay` back to back (paced by 5 ms) until `end`, returning how many failed.
async fn load(relay: Relay, end: Instant) -> usize {
    let mut failed = 0;
    while Instant::now() < end {
        if relay.chat(ask()).await.is_err() {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    failed
}

/// Three replicas on `redis` (namespace `ns`) whose replica a opened the primary's breaker
/// (two failures), every replica knowing it.
async fn fleet_with_primary_open(
    redis: &RedisServer,
    sim: &Simulator,
    ns: &str,
    cooldown: Duration,
) -> Vec<Relay> {
    let fleet: Vec<Relay> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            replica(sim, cooldown)
                .store(store(redis, ns, id))
                .build()
                .unwrap()
        })
        .collect();
    for r in &fleet {
        r.sync_store().await.expect("redis answers");
    }
    for _ in 0..2 {
        guarded(fleet[0].chat(ask()))
            .await
            .expect("the fallback serves");
    }
    for r in &fleet {
        r.sync_store().await.expect("redis answers");
        assert_eq!(primary_state(r), Some(BreakerState::Open));
    }
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_seen_by_one_replica_keeps_the_others_off_the_target() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = sim_primary_down().await;
    let a = replica(&sim, Duration::from_secs(60))
        .store(store(&redis, "outage", "a"))
        .build()
        .unwrap();
    let b = replica(&sim, Duration::from_secs(60))
        .store(store(&redis, "outage", "b"))
        .build()
        .unwrap();
    // Both replicas have used the target, so both know it (and share its breaker).
    b.sync_store().await.expect("redis answers");
    for _ in 0..2 {
        let resp = guarded(a.chat(ask())).await.expect("the fallback serves");
        assert_eq!(&*resp.meta.served_by.unwrap().model, "fallback");
    }
    assert_eq!(primary_state(&a), Some(BreakerState::Open));
    let opened = Instant::now();
    until("replica b holds the breaker open", || {
        primary_state(&b) == Some(BreakerState::Open)
    })
    .await;
    let took = opened.elapsed();
    eprintln!("replica b held the breaker open {took:?} after replica a opened it");
    // Two sync intervals, plus a wide margin for a loaded CI machine.
    assert!(
        took < 2 * SYNC + Duration::from_millis(600),
        "took {took:?}"
    );
    let before = sim.requests_for("primary").len();
    assert_eq!(
        before, 2,
        "only replica a's two failures reached the primary"
    );
    for _ in 0..10 {
        let resp = guarded(b.chat(ask())).await.expect("the fallback serves");
        assert_eq!(&*resp.meta.served_by.unwrap().model, "fallback");
    }
    assert_eq!(
        sim.requests_for("primary").len(),
        2,
        "replica b sent nothing to the primary"
    );
    assert!(b.store_health().unwrap().up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_cooldown_one_probe_goes_for_the_whole_fleet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = sim_primary_down().await;
    let cooldown = Duration::from_millis(400);
    let fleet = fleet_with_primary_open(&redis, &sim, "probe", cooldown).await;
    let opened = Instant::now();
    let end = opened + Duration::from_millis(1_500);
    let runs: Vec<_> = fleet
        .iter()
        .map(|r| tokio::spawn(load(r.clone(), end)))
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap(), 0, "every call was served");
    }
    // After the two failures that opened it, the primary saw only probes: one per cooldown
    // for the whole fleet (three replicas each probing would send three at a time).
    let arrivals: Vec<Instant> = sim
        .requests_for("primary")
        .iter()
        .skip(2)
        .map(|r| r.at)
        .collect();
    assert!(!arrivals.is_empty(), "a probe was sent");
    assert!(
        arrivals.len() <= 4,
        "{} probes in 1.5 s with a 400 ms cooldown",
        arrivals.len()
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1].saturating_duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(300),
            "two probes {gap:?} apart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_probe_closes_the_breaker_everywhere() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    // Down for the two attempts that open the breaker, then back (the last reply stays).
    let down = Reply::text("down").status(500);
    sim.script("primary", [down.clone(), down, Reply::text("ok")]);
    let fleet = fleet_with_primary_open(&redis, &sim, "close", Duration::from_millis(300)).await;
    let end = Instant::now() + Duration::from_millis(1_200);
    let runs: Vec<_> = fleet
        .iter()
        .map(|r| tokio::spawn(load(r.clone(), end)))
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap(), 0);
    }
    for r in &fleet {
        assert_eq!(primary_state(r), Some(BreakerState::Closed));
    }
    // One probe closed it: the primary saw the two failures, then successes only.
    let primary = sim.requests_for("primary");
    assert!(primary.len() > 3);
    // Every replica is back on the primary.
    for r in &fleet {
        let resp = guarded(r.chat(ask())).await.unwrap();
        assert_eq!(&*resp.meta.served_by.unwrap().model, "primary");
    }
}
