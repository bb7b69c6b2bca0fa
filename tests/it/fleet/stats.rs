//! Stats across replicas: any replica reads the whole fleet's, added up.

use std::time::Duration;

use polyrelay::{ChatRequest, Relay};

use super::*;
use crate::support::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_reads_the_fleets_stats_added_up() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let fleet: Vec<Relay> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            replica(&sim, Duration::from_secs(5))
                .store(store(&redis, "stats", id))
                .build()
                .unwrap()
        })
        .collect();
    // Replica i serves i + 1 calls.
    let mut tokens = 0;
    for (i, r) in fleet.iter().enumerate() {
        for _ in 0..=i {
            let resp = guarded(r.chat(ChatRequest::new("r").user("hi")))
                .await
                .unwrap();
            tokens += resp.usage.unwrap().total_tokens();
        }
        r.sync_store().await.unwrap();
    }
    let stats = fleet[0].fleet_stats().await.expect("redis answers");
    assert_eq!(stats.replicas, ["a", "b", "c"]);
    let row = stats
        .total
        .iter()
        .find(|r| r.model == "primary")
        .expect("a row for the primary");
    assert_eq!(row.requests, 6, "1 + 2 + 3 calls");
    assert_eq!(row.successes, 6);
    assert_eq!(row.input_tokens + row.output_tokens, tokens);
    assert_eq!(row.latency.count, 6);
    // Each replica alone sees only its own.
    let own = fleet[0].stats();
    assert_eq!(
        own.total
            .iter()
            .find(|r| r.model == "primary")
            .unwrap()
            .requests,
        1
    );
}
