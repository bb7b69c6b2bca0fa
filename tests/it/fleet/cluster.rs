//! The store on a real three-node Redis Cluster (support/redis.rs): two relays share a
//! breaker and a budget, the keys spread over the nodes, and scripts flushed from every node
//! come back by themselves. On one server an exchange is one pipeline; a cluster's pipeline
//! cannot cross slots, so the store sends one request per key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use polyrelay::spend::budget::BudgetPeriod;
use polyrelay::{BreakerState, Budget, ChatRequest, Relay};

use super::budgets::{spend_until_refused, tokens_per_call};
use super::*;
use crate::support::redis::RedisCluster;

/// The store link of one replica on `cluster`, namespace `ns`, id `replica`.
fn cluster_store(cluster: &RedisCluster, ns: &str, replica: &str) -> Store {
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    Store::redis_cluster(&urls)
        .expect("valid urls")
        .namespace(ns)
        .replica_id(replica)
        .sync_interval(SYNC)
        .timeout(Duration::from_millis(200))
        .max_backoff(Duration::from_millis(400))
}

/// Whether `relay` holds the primary's breaker open.
fn primary_open(relay: &Relay) -> bool {
    relay
        .health()
        .iter()
        .any(|h| &*h.target.model == "primary" && h.state == BreakerState::Open)
}

/// The node ports holding at least one of namespace `ns`'s keys.
fn nodes_with_keys(cluster: &RedisCluster, ns: &str) -> Vec<u16> {
    let pattern = format!("polyrelay:v1:{ns}:*");
    cluster
        .ports()
        .iter()
        .copied()
        .filter(|&p| {
            !cluster
                .cli(p, &["--scan", "--pattern", &pattern])
                .is_empty()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_a_cluster_share_a_breaker_and_a_budget() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let sim = sim_primary_down().await;
    let per_call = tokens_per_call(&sim).await;
    let limit = 60 * per_call;
    let fleet: Vec<Relay> = ["a", "b"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(60))
                .budget(Budget::tokens("cluster-day", limit).per(BudgetPeriod::Day))
                .store(cluster_store(&cluster, "cluster", id))
                .build()
                .unwrap()
        })
        .collect();
    let (a, b) = (&fleet[0], &fleet[1]);
    for r in &fleet {
        r.sync_store().await.expect("the cluster answers");
        assert!(r.store_health().unwrap().up);
    }

    // The breaker: a opens it, b holds it open and sends nothing to the primary.
    let ask = || {
        ChatRequest::new("r")
            .user("Where is my order?")
            .max_tokens(5)
    };
    // The probe call of tokens_per_call reached the primary too.
    let before = sim.requests_for("primary").len();
    let mut spent = 0;
    for _ in 0..2 {
        let resp = guarded(a.chat(ask())).await.expect("the fallback serves");
        spent += resp.usage.unwrap().total_tokens();
    }
    assert!(primary_open(a));
    until("replica b holds the breaker open", || primary_open(b)).await;
    for _ in 0..5 {
        let resp = guarded(b.chat(ask())).await.expect("the fallback serves");
        assert_eq!(&*resp.meta.served_by.as_ref().unwrap().model, "fallback");
        spent += resp.usage.unwrap().total_tokens();
    }
    assert_eq!(
        sim.requests_for("primary").len(),
        before + 2,
        "only replica a's two failures reached the primary"
    );

    // The budget: both spend until refused; once quiet each reads the exact fleet total.
    let used = Arc::new(AtomicU64::new(spent));
    let runs: Vec<_> = fleet
        .iter()
        .map(|r| {
            let (r, used) = (r.clone(), used.clone());
            tokio::spawn(async move { spend_until_refused(&r, 2, used).await })
        })
        .collect();
    for run in runs {
        guarded(run).await.unwrap();
    }
    let used = used.load(Ordering::Relaxed);
    assert!(used >= limit, "the budget was used: {used} of {limit}");
    for r in &fleet {
        r.sync_store().await.unwrap();
    }
    for r in &fleet {
        r.sync_store().await.unwrap();
        assert_eq!(
            r.budgets()[0].fleet_spent,
            Some(used as f64),
            "fleet total = sum of the calls"
        );
    }

    // The keys (breakers, budget window, replicas) landed on more than one node.
    let holding = nodes_with_keys(&cluster, "cluster");
    assert!(holding.len() >= 2, "keys on nodes {holding:?} only");

    // Scripts flushed from every node (a node restarted empty) are loaded again.
    for &p in cluster.ports() {
        assert_eq!(cluster.cli(p, &["SCRIPT", "FLUSH"]), "OK");
    }
    a.sync_store().await.expect("the scripts are reloaded");
    assert!(a.store_health().unwrap().up);
}

/// The cluster connection is made in the background: a relay whose cluster is down builds
/// and serves at once, its exchanges failing within the store's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_built_while_the_cluster_is_down_serves_at_once() {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    // Nothing listens on port 9 (discard) on loopback.
    let store = Store::redis_cluster(&["redis://127.0.0.1:9", "redis://127.0.0.1:9/"])
        .expect("valid urls")
        .sync_interval(SYNC)
        .timeout(Duration::from_millis(200));
    let relay = replica(&sim, Duration::from_secs(5))
        .store(store)
        .build()
        .expect("builds with the cluster down");
    let resp = guarded(relay.chat(ChatRequest::new("r").user("hi")))
        .await
        .expect("served on local state");
    assert_eq!(&*resp.meta.served_by.unwrap().model, "primary");
    let started = tokio::time::Instant::now();
    assert!(relay.sync_store().await.is_err(), "the cluster is down");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a failed exchange took {took:?}"
    );
    assert!(!relay.store_health().unwrap().up);
}
