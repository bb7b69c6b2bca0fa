//! Budgets across replicas: the fleet is admitted within the documented bound, and once
//! quiet its total is the sum of the calls' usage, exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use polyrelay::spend::budget::BudgetPeriod;
use polyrelay::{Budget, ChatRequest, ErrorKind, Relay};

use super::*;
use crate::support::redis::RedisServer;

/// Calls `relay` from `tasks` tasks until the budget refuses; returns the tokens served.
pub async fn spend_until_refused(relay: &Relay, tasks: usize, used: Arc<AtomicU64>) {
    let runs: Vec<_> = (0..tasks)
        .map(|_| {
            let relay = relay.clone();
            let used = used.clone();
            tokio::spawn(async move {
                loop {
                    match relay
                        .chat(ChatRequest::new("r").user("hi").max_tokens(5))
                        .await
                    {
                        Ok(resp) => {
                            used.fetch_add(resp.usage.unwrap().total_tokens(), Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::BudgetExceeded, "{e}");
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for r in runs {
        r.await.unwrap();
    }
}

/// Every replica of `fleet` spends from 4 tasks until its budget refuses; the tokens served.
async fn spend_on_every_replica(fleet: &[Relay]) -> u64 {
    let used = Arc::new(AtomicU64::new(0));
    let runs: Vec<_> = fleet
        .iter()
        .map(|r| {
            let (r, used) = (r.clone(), used.clone());
            tokio::spawn(async move { spend_until_refused(&r, 4, used).await })
        })
        .collect();
    for run in runs {
        guarded(run).await.unwrap();
    }
    used.load(Ordering::Relaxed)
}

/// The tokens one call spends (what the simulator reports for it).
pub async fn tokens_per_call(sim: &Simulator) -> u64 {
    let probe = Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", primary_fallback())
        .build()
        .unwrap();
    let resp = probe
        .chat(ChatRequest::new("r").user("hi").max_tokens(5))
        .await
        .unwrap();
    resp.usage.unwrap().total_tokens()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_shared_by_three_replicas_is_admitted_within_the_bound_and_counted_exactly() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    // 20 ms a call: each of the 4 tasks of a replica makes at most 5 calls a sync interval.
    sim.set_default(Reply::text("ok").delay(Duration::from_millis(20)));
    let per_call = tokens_per_call(&sim).await;
    let limit = 200 * per_call;
    let fleet: Vec<Relay> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(5))
                .budget(Budget::tokens("fleet-day", limit).per(BudgetPeriod::Day))
                .store(store(&redis, "budget", id))
                .build()
                .unwrap()
        })
        .collect();
    let used = spend_on_every_replica(&fleet).await;
    // The documented bound: the two other replicas each spend in one sync interval (plus
    // the exchange's own time, counted as a second interval) and hold their 4 calls in flight.
    let per_interval = 4 * (SYNC.as_millis() as u64 / 20);
    let bound = limit + 2 * (2 * per_interval + 4) * per_call;
    eprintln!("admitted {used} tokens: limit {limit}, bound {bound}, {per_call} a call");
    assert!(used >= limit, "the budget was used: {used} of {limit}");
    assert!(
        used <= bound,
        "admitted {used} tokens, bound {bound} (limit {limit})"
    );
    // Quiet: every replica's last spend reaches the store, and each reads the same total.
    for r in &fleet {
        r.sync_store().await.unwrap();
    }
    for r in &fleet {
        r.sync_store().await.unwrap();
        let status = &r.budgets()[0];
        assert_eq!(
            status.fleet_spent,
            Some(used as f64),
            "replica total = sum of the calls"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_budget_holds_the_fleet_under_its_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok").delay(Duration::from_millis(20)));
    let per_call = tokens_per_call(&sim).await;
    let limit = 200 * per_call;
    let fleet: Vec<Relay> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(5))
                .budget(
                    Budget::tokens("hard-cap", limit)
                        .per(BudgetPeriod::Day)
                        .strict(),
                )
                .store(store(&redis, "strict", id))
                .build()
                .unwrap()
        })
        .collect();
    for r in &fleet {
        r.sync_store().await.unwrap();
    }
    let used = spend_on_every_replica(&fleet).await;
    eprintln!("strict: admitted {used} tokens, limit {limit}");
    // The same load without strict overshoots (the test above); strict does not.
    assert!(
        used <= limit,
        "admitted {used} tokens past the limit {limit}"
    );
    assert!(used >= limit / 2, "the budget was used: {used} of {limit}");
}
