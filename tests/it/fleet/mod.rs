//! Fleets of relays sharing breakers and budgets through a store: a real `redis-server` per
//! test (support/redis.rs), several relays in one test standing for several replicas, and the
//! simulator counting what reaches each target.

mod breakers;
mod budgets;
mod cluster;
mod config;
mod faults;
#[cfg(feature = "gateway")]
mod gateway;
mod limits;
mod stats;

use std::time::Duration;

use polyrelay::store::Store;
use polyrelay::{BreakerPolicy, Relay, RelayBuilder};

use crate::support::redis::RedisServer;
use crate::support::*;

/// A short sync interval, so tests run in seconds.
pub const SYNC: Duration = Duration::from_millis(100);

/// The store link of one replica: the server at `redis`, namespace `ns`, id `replica`.
pub fn store(redis: &RedisServer, ns: &str, replica: &str) -> Store {
    Store::redis(&redis.url())
        .expect("a valid url")
        .namespace(ns)
        .replica_id(replica)
        .sync_interval(SYNC)
        .timeout(Duration::from_millis(200))
        .max_backoff(Duration::from_millis(400))
}

/// A replica: the simulator as provider `sim`, route `r` = primary then fallback, breakers
/// that open after 2 consecutive failures for `cooldown`.
pub fn replica(sim: &Simulator, cooldown: Duration) -> RelayBuilder {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", primary_fallback())
        .breaker(
            BreakerPolicy::default()
                .consecutive_failures(2)
                .cooldown(cooldown),
        )
}

/// Polls `cond` every 10 ms until it holds, failing the test after 10 s.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: not within 10 s");
}

/// The simulator with `fallback` answering and `primary` failing with 500.
pub async fn sim_primary_down() -> Simulator {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    // A script's last reply answers every later request.
    sim.script("primary", [Reply::text("down").status(500)]);
    sim
}
