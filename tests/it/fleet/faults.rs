//! Redis failing never fails a request: killed, frozen, restarted empty or out of memory
//! under load, the replicas serve on local state, and the fleet's totals are exact again
//! once it is back. A relay built while Redis is down serves at once and joins later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use polyrelay::spend::budget::BudgetPeriod;
use polyrelay::{Budget, ChatRequest, Relay};
use tokio::time::Instant;

use super::*;
use crate::support::redis::RedisServer;

struct Load {
    used: AtomicU64,
    failed: AtomicUsize,
    calls: AtomicUsize,
    slowest_us: AtomicU64,
}

/// Calls every replica from 2 tasks each until `stop` is set.
fn start_load(
    fleet: &[Relay],
    load: &Arc<Load>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    fleet
        .iter()
        .flat_map(|r| [r.clone(), r.clone()])
        .map(|relay| {
            let (load, stop) = (load.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match relay
                        .chat(ChatRequest::new("r").user("hi").max_tokens(5))
                        .await
                    {
                        Ok(resp) => {
                            load.used
                                .fetch_add(resp.usage.unwrap().total_tokens(), Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("failed: {e}");
                            load.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    load.calls.fetch_add(1, Ordering::Relaxed);
                    load.slowest_us
                        .fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect()
}

/// Waits until the load has made `n` more calls (the explicit signal that time passed
/// under load, whatever the machine's speed).
async fn calls_made(load: &Load, n: usize) {
    let target = load.calls.load(Ordering::Relaxed) + n;
    until("calls under load", || {
        load.calls.load(Ordering::Relaxed) >= target
    })
    .await;
}

/// Waits until the fleet sees the store fail, then for 100 calls served meanwhile.
async fn ride_out(fleet: &[Relay], load: &Load) {
    until("the store is seen failing", || {
        !fleet[0].store_health().unwrap().up
    })
    .await;
    calls_made(load, 100).await;
}

/// Waits until every replica reaches the store again, then for 50 calls.
async fn back(fleet: &[Relay], load: &Load) {
    until("the store is back", || {
        fleet.iter().all(|r| r.store_health().unwrap().up)
    })
    .await;
    calls_made(load, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_failing_in_every_way_under_load_fails_no_request_and_totals_come_back_exact() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok").delay(Duration::from_millis(1)));
    let fleet: Vec<Relay> = ["a", "b"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(5))
                .budget(Budget::tokens("day", 1_000_000_000).per(BudgetPeriod::Day))
                // A store timeout far above any call's time, so a call that waited on the
                // store would show.
                .store(store(&redis, "faults", id).timeout(Duration::from_secs(1)))
                .build()
                .unwrap()
        })
        .collect();
    for r in &fleet {
        r.sync_store().await.unwrap();
    }
    let load = Arc::new(Load {
        used: AtomicU64::new(0),
        failed: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
        slowest_us: AtomicU64::new(0),
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = start_load(&fleet, &load, &stop);
    calls_made(&load, 50).await;

    // Frozen: the connection stays open and nothing answers.
    redis.freeze();
    ride_out(&fleet, &load).await;
    redis.thaw();
    back(&fleet, &load).await;
    // Out of memory: every write refused.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    ride_out(&fleet, &load).await;
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    back(&fleet, &load).await;
    // Killed, then restarted empty on the same port.
    redis.kill();
    ride_out(&fleet, &load).await;
    redis.restart();
    back(&fleet, &load).await;

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(load.failed.load(Ordering::Relaxed), 0, "no request failed");
    let slowest = Duration::from_micros(load.slowest_us.load(Ordering::Relaxed));
    // A call never waits on the store: the slowest is the simulator's 1 ms plus scheduling
    // on a busy machine, far below the store's 1 s timeout.
    eprintln!(
        "slowest call {slowest:?}, {} calls",
        load.calls.load(Ordering::Relaxed)
    );
    assert!(
        slowest < Duration::from_millis(500),
        "slowest call {slowest:?}"
    );
    // Both replicas flush their cumulative spend into the restarted, empty store: the total
    // is exact again.
    for r in &fleet {
        r.sync_store().await.unwrap();
    }
    let used = load.used.load(Ordering::Relaxed) as f64;
    for r in &fleet {
        r.sync_store().await.unwrap();
        assert_eq!(r.budgets()[0].fleet_spent, Some(used));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_built_while_redis_is_down_serves_at_once_and_joins_when_it_comes_up() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.kill();
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let relay = replica(&sim, Duration::from_secs(5))
        .store(store(&redis, "late", "a"))
        .build()
        .expect("builds without redis");
    let resp = guarded(relay.chat(ChatRequest::new("r").user("hi")))
        .await
        .unwrap();
    assert_eq!(&*resp.meta.served_by.unwrap().model, "primary");
    assert!(relay.sync_store().await.is_err());
    assert!(!relay.store_health().unwrap().up);
    redis.restart();
    until("the relay joins the fleet", || {
        relay.store_health().unwrap().up
    })
    .await;
    relay.sync_store().await.expect("redis answers");
}

#[tokio::test]
async fn dropping_the_relay_stops_its_sync_task() {
    use polyrelay::store::{MemoryStore, StateStore, Store};
    let sim = Simulator::start().await.expect("simulator starts");
    let backend: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let held = Arc::downgrade(&backend);
    let relay = replica(&sim, Duration::from_secs(5))
        .store(Store::from_arc(backend).sync_interval(SYNC))
        .build()
        .unwrap();
    relay.sync_store().await.unwrap();
    let clone = relay.clone();
    drop(relay);
    // A clone keeps the task (and so the store) alive.
    clone.sync_store().await.unwrap();
    assert!(held.upgrade().is_some());
    drop(clone);
    // The last clone gone, the task is aborted: it drops its link to the store at its next
    // turn on the runtime.
    for _ in 0..100 {
        if held.upgrade().is_none() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        held.upgrade().is_none(),
        "the sync task still holds the store"
    );
}
