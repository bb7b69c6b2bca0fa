//! The gateway binary as a fleet: three `polyrelay-gateway` processes, each on its own
//! loopback port, built from one file whose `[store]` names one `redis-server`, with the
//! simulator as the vendor. An outage seen through one gateway keeps the two others off the
//! target, and a budget is shared by the three processes; `/health` shows the store.

use std::time::Duration;

use polyrelay::gateway::{self, GatewayOptions};
use polyrelay::store::{MemoryStore, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::*;
use crate::support::redis::RedisServer;

/// One `polyrelay-gateway` process, killed when dropped.
struct GatewayProc {
    url: String,
    _child: Child,
}

/// Starts `polyrelay-gateway --config path` as replica `replica` of the store at `redis_url`,
/// and waits for the line that says where it listens.
async fn spawn_gateway(path: &std::path::Path, redis_url: &str, replica: &str) -> GatewayProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_polyrelay-gateway"))
        .arg("--config")
        .arg(path)
        .env("REDIS_URL", redis_url)
        .env("REPLICA", replica)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("polyrelay-gateway: listening on http://") {
                return rest.trim().to_owned();
            }
            eprintln!("gateway {replica}: {line}");
        }
        panic!("gateway {replica} exited before listening")
    })
    .await
    .expect("the gateway says where it listens");
    // Keep reading its log, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    GatewayProc {
        url: format!("http://{addr}"),
        _child: child,
    }
}

/// Three gateways (replicas `gw-1`..`gw-3`) of one file: the simulator as provider `sim`,
/// `routes`, and a `[store]` on `redis` in namespace `ns` syncing every 100 ms.
async fn three_gateways(
    sim: &Simulator,
    redis: &RedisServer,
    ns: &str,
    routes: &str,
) -> Vec<GatewayProc> {
    let dir = std::env::temp_dir().join(format!("polyrelay-fleet-gw-{ns}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{}/v1\"\n\n{routes}\n\
             [store]\nurl = \"${{REDIS_URL}}\"\nnamespace = \"{ns}\"\nsync_interval = \"100ms\"\n\
             timeout = \"200ms\"\nmax_backoff = \"400ms\"\nreplica_id = \"${{REPLICA}}\"\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let mut fleet = Vec::new();
    for i in 1..=3 {
        fleet.push(spawn_gateway(&path, &redis.url(), &format!("gw-{i}")).await);
    }
    fleet
}

async fn get_json(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A completion of route `model` through the gateway at `base`: its status and body.
async fn chat(base: &str, model: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({
            "model": model,
            "messages": [{ "role": "user", "content": "hi" }],
            "max_tokens": 5,
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Polls `probe` every 20 ms until it holds, failing the test after 10 s.
async fn until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: not within 10 s");
}

/// The primary's breaker state in a gateway's `/health`.
async fn primary_state(base: &str) -> String {
    let health = get_json(base, "/health").await;
    health["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "sim/primary")
        .map(|t| t["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_seen_through_one_gateway_process_keeps_the_two_others_off_the_target() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = sim_primary_down().await;
    let fleet = three_gateways(
        &sim,
        &redis,
        "gw-outage",
        "[routes.r]\ntargets = [\"sim/primary\", \"sim/fallback\"]\n\n\
         [breaker]\nconsecutive_failures = 2\ncooldown = \"60s\"\n",
    )
    .await;
    // Every gateway has joined the fleet: its /health shows the store up, under its own id.
    for (i, gw) in fleet.iter().enumerate() {
        let replica = format!("gw-{}", i + 1);
        until_async("the gateway's store is up", || async {
            get_json(&gw.url, "/health").await["store"]["up"] == true
        })
        .await;
        let store = &get_json(&gw.url, "/health").await["store"];
        assert_eq!(store["replica"], replica.as_str(), "{store}");
        assert_eq!(store["namespace"], "gw-outage", "{store}");
        assert_eq!(store["last_error"], Value::Null, "{store}");
    }
    // Gateway 1 sees the outage: the fallback serves while its breaker opens.
    until_async("gateway 1 opens the primary's breaker", || async {
        let (status, body) = chat(&fleet[0].url, "r").await;
        assert_eq!(status, 200, "{body}");
        primary_state(&fleet[0].url).await == "open"
    })
    .await;
    for gw in &fleet[1..] {
        until_async("the open breaker reaches the other gateways", || async {
            primary_state(&gw.url).await == "open"
        })
        .await;
    }
    let seen = sim.requests_for("primary").len();
    assert!(seen >= 2, "gateway 1 met the outage: {seen}");
    // Gateways 2 and 3 never sent the primary anything: their calls go to the fallback.
    for gw in &fleet[1..] {
        for _ in 0..10 {
            let (status, body) = chat(&gw.url, "r").await;
            assert_eq!(status, 200, "{body}");
        }
    }
    assert_eq!(
        sim.requests_for("primary").len(),
        seen,
        "the other gateways stayed off the failing target"
    );
    assert!(sim.requests_for("fallback").len() >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_shared_by_three_gateway_processes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    // 20 ms a call: each gateway's one client makes at most 5 calls a sync interval.
    sim.set_default(Reply::text("ok").delay(Duration::from_millis(20)));
    let per_call = super::budgets::tokens_per_call(&sim).await;
    let calls = 60;
    let limit = calls * per_call;
    let fleet = three_gateways(
        &sim,
        &redis,
        "gw-budget",
        &format!(
            "[routes.r]\ntargets = [\"sim/m\"]\n\n\
             [[budgets]]\nname = \"day\"\ntokens = {limit}\nperiod = \"day\"\n"
        ),
    )
    .await;
    // One client per gateway, each calling until its gateway refuses with the budget.
    let clients: Vec<_> = fleet
        .iter()
        .map(|gw| {
            let url = gw.url.clone();
            tokio::spawn(async move {
                let mut used = 0;
                loop {
                    let (status, body) = chat(&url, "r").await;
                    match status {
                        200 => used += body["usage"]["total_tokens"].as_u64().unwrap(),
                        429 => {
                            assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
                            return used;
                        }
                        _ => panic!("{status}: {body}"),
                    }
                }
            })
        })
        .collect();
    let mut used = 0;
    for c in clients {
        used += tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("the budget refuses within 60 s")
            .unwrap();
    }
    // Alone, each gateway would admit the whole limit: 3 × 60 calls. As a fleet the two
    // others spend at most what they make in a sync interval (plus the exchange's own time,
    // a second interval) and one call in flight each; twice that, for slow machines.
    let per_interval = 100 / 20;
    let bound = limit + 2 * 2 * (2 * per_interval + 1) * per_call;
    eprintln!("admitted {used} tokens: limit {limit}, bound {bound}, {per_call} a call");
    // A call is refused once what it may spend no longer fits: the last few may stay unspent.
    assert!(
        used >= limit * 9 / 10,
        "the budget was used: {used} of {limit}"
    );
    assert!(used <= bound, "admitted {used} tokens, bound {bound}");
    // Quiet: every gateway reads the same fleet total, the sum of what the three served.
    for gw in &fleet {
        until_async("the gateway's fleet total is exact", || async {
            let limits = get_json(&gw.url, "/limits").await;
            limits["budgets"][0]["fleet_spent"].as_f64() == Some(used as f64)
        })
        .await;
    }
}

/// `/health`'s `store`: `null` without one, the link's state with one.
#[tokio::test]
async fn health_shows_the_store_and_null_without_one() {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let shared = MemoryStore::new();
    let with = replica(&sim, Duration::from_secs(5))
        .store(Store::new(shared).namespace("mem").replica_id("one"))
        .build()
        .unwrap();
    with.sync_store().await.unwrap();
    let without = replica(&sim, Duration::from_secs(5)).build().unwrap();
    let mut bodies = Vec::new();
    for relay in [with, without] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(gateway::serve(
            listener,
            relay,
            GatewayOptions::new(),
            std::future::pending(),
        ));
        bodies.push(get_json(&url, "/health").await);
    }
    let store = &bodies[0]["store"];
    assert_eq!(store["up"], true, "{store}");
    assert_eq!(store["replica"], "one");
    assert_eq!(store["namespace"], "mem");
    assert!(store["exchanges"].as_u64().unwrap() >= 1, "{store}");
    assert!(store["last_sync_ago"].is_u64(), "{store}");
    assert!(bodies[1]["store"].is_null(), "{}", bodies[1]);
    assert_eq!(bodies[1]["status"], "ok");
}
