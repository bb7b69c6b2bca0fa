//! The `[store]` table of a configuration file: relays built from one file (the URL from
//! `${REDIS_URL}`, each replica's id from its own environment) share a budget through a real
//! `redis-server`; every mistake is refused with its line and key, a password written out in
//! the URL among them.

use polyrelay::config::{ConfigError, RelayConfig};
use polyrelay::{ChatRequest, Relay};

use super::*;
use crate::support::assert_at;
use crate::support::redis::{RedisCluster, RedisServer};

/// A file with the simulator as provider `sim`, route `r`, a day budget of `limit` tokens,
/// and `store` appended (its `[store]` header on line 12).
fn file(sim_url: &str, limit: u64, store: &str) -> String {
    format!(
        "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{sim_url}/v1\"\n\n\
         [routes.r]\ntargets = [\"sim/primary\"]\n\n\
         [[budgets]]\nname = \"day\"\ntokens = {limit}\n\n\
         {store}"
    )
}

/// The environment of one replica: `REDIS_URL` and `REPLICA`.
fn env_of(url: &str, replica: &str) -> impl Fn(&str) -> Option<String> {
    let (url, replica) = (url.to_owned(), replica.to_owned());
    move |var| match var {
        "REDIS_URL" => Some(url.clone()),
        "REPLICA" => Some(replica.clone()),
        _ => None,
    }
}

const STORE: &str = "[store]\nurl = \"${REDIS_URL}\"\nnamespace = \"from-file\"\n\
                     sync_interval = \"100ms\"\ntimeout = \"200ms\"\nmax_backoff = \"400ms\"\n\
                     replica_id = \"gw-${REPLICA}\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_built_from_one_file_share_a_budget_through_the_store_it_names() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let config = RelayConfig::from_toml_str(&file(&sim.base_url(), 1_000_000, STORE)).unwrap();
    let a = config.build_with_env(env_of(&redis.url(), "a")).unwrap();
    let b = config.build_with_env(env_of(&redis.url(), "b")).unwrap();
    b_counts_what_a_spends(&a, &b).await;
    let health = a
        .store_health()
        .expect("a relay with a [store] has a store");
    assert!(health.up, "{health:?}");
    assert_eq!(health.namespace, "from-file");
    assert_eq!(health.replica, "gw-a");
    assert_eq!(b.store_health().unwrap().replica, "gw-b");
    // The fleet's keys are in the namespace the file names.
    let keys = redis.cli(&["--scan", "--pattern", "polyrelay:v1:from-file:*"]);
    assert!(keys.contains("{b:day}"), "{keys}");
}

/// Both relays exchange with the store; then what `a` spends, `b` counts: the two are one
/// fleet.
async fn b_counts_what_a_spends(a: &Relay, b: &Relay) {
    for relay in [a, b] {
        relay.sync_store().await.expect("the store answers");
    }
    let used = a
        .chat(ChatRequest::new("r").user("hi").max_tokens(5))
        .await
        .unwrap()
        .usage
        .unwrap()
        .total_tokens();
    a.sync_store().await.unwrap();
    b.sync_store().await.unwrap();
    assert_eq!(b.budgets()[0].spent, 0.0, "b itself spent nothing");
    assert_eq!(b.budgets()[0].fleet_spent, Some(used as f64));
}

/// `cluster = ["${REDIS_URL}"]`, the variable holding the nodes' URLs separated by commas:
/// relays built from the file share a budget through the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_built_from_one_file_share_a_budget_through_the_cluster_it_names() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let sim = Simulator::start().await.expect("simulator starts");
    sim.set_default(Reply::text("ok"));
    let store = STORE.replace("url = \"${REDIS_URL}\"", "cluster = [\"${REDIS_URL}\"]");
    let config = RelayConfig::from_toml_str(&file(&sim.base_url(), 1_000_000, &store)).unwrap();
    let nodes = cluster.urls().join(",");
    let a = config.build_with_env(env_of(&nodes, "a")).unwrap();
    let b = config.build_with_env(env_of(&nodes, "b")).unwrap();
    b_counts_what_a_spends(&a, &b).await;
    // The budget's window is on the cluster.
    let on_cluster = cluster.ports().iter().any(|&p| {
        cluster
            .cli(p, &["--scan", "--pattern", "polyrelay:v1:from-file:*"])
            .contains("{b:day}")
    });
    assert!(on_cluster, "no budget key on any node");
}

#[tokio::test]
async fn a_file_without_a_store_table_builds_a_relay_without_a_store() {
    let sim = Simulator::start().await.expect("simulator starts");
    let relay = Relay::from_toml_str(&file(&sim.base_url(), 10, "")).unwrap();
    assert_eq!(relay.store_health(), None);
}

/// The error building the file with `store` gives, in a runtime, with `REDIS_URL` set to
/// `url` (when `Some`) and `REDIS_PASSWORD` set.
async fn error_of(store: &str, url: Option<&str>) -> ConfigError {
    let text = file("http://127.0.0.1:9", 10, store);
    let url = url.map(str::to_owned);
    let built = RelayConfig::from_toml_str(&text).and_then(|c| {
        c.build_with_env(|var| match var {
            "REDIS_URL" => url.clone(),
            "REDIS_PASSWORD" => Some("s3cret-from-env".to_owned()),
            _ => None,
        })
    });
    match built {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_password_written_in_the_url_is_refused_and_one_from_the_environment_is_taken() {
    let e = error_of(
        "[store]\nurl = \"redis://:hunter2@127.0.0.1:6379/0\"\n",
        None,
    )
    .await;
    assert_at(&e, 13, "store.url", "literal credential in the URL");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = error_of(
        "[store]\nurl = \"redis+unix:///run/redis.sock?db=1&pass=hunter2\"\n",
        None,
    )
    .await;
    assert_at(&e, 13, "store.url", "query parameter \"pass\"");
    // From the environment, whole or in part: accepted (the server may be down: the
    // connection is lazy).
    let sim = Simulator::start().await.expect("simulator starts");
    for store in [
        "[store]\nurl = \"${REDIS_URL}\"\n",
        "[store]\nurl = \"redis://app:${REDIS_PASSWORD}@127.0.0.1:9/0\"\n",
    ] {
        let text = file(&sim.base_url(), 10, store);
        let relay = RelayConfig::from_toml_str(&text)
            .unwrap()
            .build_with_env(|var| match var {
                "REDIS_URL" => Some("redis://:pw@127.0.0.1:9/".to_owned()),
                "REDIS_PASSWORD" => Some("pw".to_owned()),
                _ => None,
            })
            .unwrap();
        let health = relay.store_health().expect("a store");
        assert_eq!(health.namespace, "default");
    }
}

#[tokio::test]
async fn store_mistakes_are_named_by_line_and_key() {
    let url = Some("redis://127.0.0.1:9/");
    let cases: &[(&str, Option<&str>, usize, &str, &str)] = &[
        (
            "[store]\nurl = \"${REDIS_URL}\"\nsync_intervall = \"1s\"\n",
            url,
            14,
            "store.sync_intervall",
            "unknown field",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\nsync_interval = \"fast\"\n",
            url,
            14,
            "store.sync_interval",
            "",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\nsync_interval = \"5ms\"\n",
            url,
            14,
            "store.sync_interval",
            "from 10 ms to 60 s",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\ntimeout = \"20s\"\n",
            url,
            14,
            "store.timeout",
            "from 1 ms to 10 s",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\nmax_backoff = \"20m\"\n",
            url,
            14,
            "store.max_backoff",
            "at most 600 s",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\nnamespace = \"a:b\"\n",
            url,
            14,
            "store.namespace",
            "without braces",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\nreplica_id = \"${NOT_SET_ANYWHERE}\"\n",
            url,
            14,
            "store.replica_id",
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\n",
            None,
            13,
            "store.url",
            "REDIS_URL is not set",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\n",
            Some("http://127.0.0.1:6379/"),
            13,
            "store.url",
            "starts with redis://",
        ),
        (
            "[store]\nurl = \"127.0.0.1:6379\"\n",
            None,
            13,
            "store.url",
            "not a URL",
        ),
        (
            "[store]\ncluster = [\"redis://127.0.0.1:7000\", \"${REDIS_URL}\"]\n",
            Some("redis://127.0.0.1:7001,http://127.0.0.1:7002"),
            13,
            "store.cluster[1]",
            "starts with redis://",
        ),
        (
            "[store]\ncluster = [\"redis://:hunter2@127.0.0.1:7000\"]\n",
            None,
            13,
            "store.cluster[0]",
            "literal credential in the URL",
        ),
        (
            "[store]\nurl = \"${REDIS_URL}\"\ncluster = [\"redis://127.0.0.1:7000\"]\n",
            url,
            14,
            "store.cluster",
            "not both",
        ),
        (
            "[store]\ncluster = []\n",
            None,
            13,
            "store.cluster",
            "at least one node",
        ),
    ];
    for (store, url, line, key, says) in cases {
        let e = error_of(store, *url).await;
        assert_at(&e, *line, key, says);
    }
    // A table without its url: the table is named.
    let e = error_of("[store]\nnamespace = \"x\"\n", url).await;
    assert_eq!(e.line(), Some(12), "{e}");
    assert!(e.message().contains("url"), "{e}");
}

#[tokio::test]
async fn a_long_sync_interval_raises_the_default_backoff_with_it() {
    let sim = Simulator::start().await.expect("simulator starts");
    let text = file(
        &sim.base_url(),
        10,
        "[store]\nurl = \"redis://127.0.0.1:9/\"\nsync_interval = \"30s\"\n",
    );
    let relay = Relay::from_toml_str(&text).unwrap();
    assert!(relay.store_health().is_some());
}

/// A store's sync task runs on the caller's runtime: built outside one, the error is placed
/// on the `[store]` table.
#[test]
fn a_relay_with_a_store_built_outside_a_runtime_names_the_store_table() {
    let text = file(
        "http://127.0.0.1:9",
        10,
        "[store]\nurl = \"redis://127.0.0.1:9/\"\n",
    );
    let e = match Relay::from_toml_str(&text) {
        Ok(_) => panic!("built outside a runtime"),
        Err(e) => e,
    };
    assert_at(&e, 12, "store", "tokio runtime");
}
