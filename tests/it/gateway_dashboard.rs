//! The live dashboard (issue 23, point 4): `GET /dashboard` serves one self-contained page,
//! and the JSON endpoints it polls carry every field its script reads.

use polyrelay::gateway::GatewayOptions;
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{Chain, KeyPool, Relay, RetryPolicy};
use serde_json::{Value, json};

use crate::gateway::{Gateway, KEY, gateway, get_json};
use crate::support::openai_at;

/// The page's size bound: small enough to ship in the binary and load on a phone.
const MAX_PAGE_BYTES: usize = 30 * 1024;

/// Every field the page's script reads, by endpoint and object: (endpoint, where, keys).
/// `where` is a path of keys into the JSON, `[]` stepping into an array's first element.
/// Change this list with the page.
const FIELDS: &[(&str, &str, &[&str])] = &[
    (
        "/stats",
        "",
        &[
            "since_secs",
            "window_secs",
            "total",
            "recent",
            "refused",
            "hours",
            "failovers",
        ],
    ),
    ("/stats", "hours[]", &["start", "rows"]),
    (
        "/stats",
        "hours[].rows[]",
        &[
            "route",
            "query_type",
            "provider",
            "model",
            "requests",
            "errors",
            "failovers_out",
            "cost",
            "baseline_cost",
        ],
    ),
    (
        "/stats",
        "failovers[]",
        &[
            "at_ms",
            "route",
            "query_type",
            "from",
            "to",
            "error",
            "status",
            "tries",
        ],
    ),
    (
        "/stats",
        "recent[]",
        &[
            "route",
            "query_type",
            "provider",
            "model",
            "requests",
            "cost",
            "baseline_cost",
            "errors",
            "failovers_out",
            "latency",
        ],
    ),
    ("/stats", "recent[].latency", &["count", "p50_ms", "p95_ms"]),
    (
        "/stats",
        "refused[]",
        &["route", "query_type", "reason", "calls"],
    ),
    (
        "/health",
        "targets[]",
        &["target", "state", "error_rate", "in_flight"],
    ),
    (
        "/limits",
        "",
        &["targets", "providers", "key_pools", "budgets"],
    ),
    (
        "/limits",
        "budgets[]",
        &[
            "name",
            "unit",
            "period",
            "spent",
            "reserved",
            "limit",
            "resets_in_ms",
        ],
    ),
    (
        "/limits",
        "targets[]",
        &[
            "name",
            "requests",
            "tokens",
            "in_flight",
            "max_concurrent",
            "held_for_ms",
        ],
    ),
    (
        "/limits",
        "targets[].requests",
        &["remaining", "per_minute"],
    ),
    ("/limits", "key_pools[]", &["provider", "keys"]),
    (
        "/limits",
        "key_pools[].keys[]",
        &["label", "state", "returns_in_ms"],
    ),
    (
        "/limits",
        "key_pools[].keys[].label",
        &["index", "fingerprint"],
    ),
    ("/limits", "key_pools[].keys[].state", &["state"]),
];

/// Route `support` = `sim/gpt-4o-mini` then `sim/gpt-4o` (no retries), baseline gpt-4o, a
/// dollar budget, a rate limit on the first target (burst 100) and a two-key pool; route `tiny`
/// (`sim/gpt-4o`) has a budget of one token, which refuses every call.
fn relay(sim: &Simulator) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-sim"))
        .route(
            "support",
            Chain::of(["sim/gpt-4o-mini", "sim/gpt-4o"]).retry(RetryPolicy::no_retries()),
        )
        .route("tiny", Chain::of(["sim/gpt-4o"]))
        .baseline("openai/gpt-4o")
        .budget(Budget::usd("daily", 5.0).per(BudgetPeriod::Day))
        .budget(
            Budget::tokens("tiny", 1)
                .per(BudgetPeriod::Hour)
                .for_route("tiny"),
        )
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new().requests_per_minute(600).burst(100),
        )
        .key_pool("sim", KeyPool::new().key("sk-one-AAAA").key("sk-two-BBBB"))
        .build()
        .unwrap()
}

async fn page(gw: &Gateway) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/dashboard", gw.url))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn dashboard_is_one_small_self_contained_html_page_served_without_a_key() {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), GatewayOptions::new().client_key(KEY)).await;
    let resp = page(&gw).await;
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
    let html = resp.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
    assert!(html.len() < MAX_PAGE_BYTES, "{} bytes", html.len());
    // Nothing loaded from elsewhere: no absolute URL at all, no src attribute, and the
    // script polls the endpoints by relative URL (so the page works under a nested prefix).
    let lower = html.to_lowercase();
    for needle in ["http://", "https://", "//cdn", " src=", "@import", "url("] {
        assert!(!lower.contains(needle), "the page holds {needle:?}");
    }
    for endpoint in ["get(\"stats\")", "get(\"limits\")", "get(\"health\")"] {
        assert!(html.contains(endpoint), "the page polls {endpoint}");
    }
    // Phone width, and the key in the tab's session storage sent as a bearer token.
    assert!(html.contains("width=device-width"));
    assert!(html.contains("sessionStorage") && html.contains("\"Bearer \""));
    // The stable ids a browser test reads.
    for id in [
        "total-cost",
        "baseline-cost",
        "saved",
        "requests",
        "failovers",
        "errors",
        "refused",
        "cost-table",
        "targets-table",
        "failovers-table",
        "failover-events",
        "hours-table",
        "hour-detail",
        "budgets-table",
        "limits-table",
        "keys-table",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no element #{id}");
    }
}

/// Walks `path` (keys, `[]` for an array's first element) into `v`.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        cur = &cur[name];
        if index {
            cur = &cur[0];
        }
        assert!(!cur.is_null(), "nothing at {part} of {path} in {v}");
    }
    cur
}

#[tokio::test]
async fn the_json_the_dashboard_reads_carries_every_field_it_uses() {
    let sim = Simulator::start().await.unwrap();
    // gpt-4o-mini serves the first two calls; the third fails over from it (a 500) to gpt-4o.
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_text("It ships tomorrow."),
            Reply::openai_text("It ships tomorrow."),
            Reply::error(SimError::Server),
        ],
    );
    let gw = gateway(relay(&sim), GatewayOptions::new().client_key(KEY)).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let resp = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(KEY)
            .header("x-polyrelay-intent", "order_status")
            .json(&json!({
                "model": "support",
                "messages": [{ "role": "user", "content": "Where is my order?" }],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // A refusal, so `refused` has a row.
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&json!({ "model": "tiny", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);

    let mut bodies = std::collections::HashMap::new();
    for endpoint in ["/stats", "/health", "/limits"] {
        bodies.insert(endpoint, get_json(&gw.url, endpoint).await);
    }
    let page = page(&gw).await.text().await.unwrap();
    for (endpoint, path, keys) in FIELDS {
        let obj = at(&bodies[endpoint], path);
        for key in *keys {
            assert!(
                obj.get(key).is_some(),
                "{endpoint} {path:?} has no {key:?}: {obj}"
            );
            // The list and the page agree: the page's script names every key it reads.
            assert!(
                page.contains(&format!(".{key}")) || page.contains(&format!("\"{key}\"")),
                "the page reads no {key:?}: update FIELDS with the page"
            );
        }
    }

    // The numbers the page shows are there: cost per query type, the saving against the
    // baseline, the failover and its reason, the breakers, the budget, the headroom.
    let stats = &bodies["/stats"];
    let rows = stats["recent"].as_array().unwrap();
    let mini = rows
        .iter()
        .find(|r| r["model"] == "gpt-4o-mini")
        .unwrap_or_else(|| panic!("a gpt-4o-mini row: {stats}"));
    assert_eq!(mini["query_type"], "order_status", "{mini}");
    assert_eq!(mini["failovers_out"], 1, "{mini}");
    assert_eq!(mini["errors"]["server_error"], 1, "{mini}");
    let (cost, baseline) = rows.iter().fold((0.0, 0.0), |(c, b), r| {
        (
            c + r["cost"].as_f64().unwrap(),
            b + r["baseline_cost"].as_f64().unwrap(),
        )
    });
    assert!(
        cost > 0.0 && baseline > cost,
        "cost {cost}, baseline {baseline}"
    );
    // This hour's bucket holds the three calls, at the same money as the rows; the failover
    // is in the log with its target and reason.
    let hours = stats["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 1, "{hours:#?}");
    assert_eq!(hours[0]["start"].as_u64().unwrap() % 3600, 0);
    let hour_rows = hours[0]["rows"].as_array().unwrap();
    let hour_cost: f64 = hour_rows.iter().map(|r| r["cost"].as_f64().unwrap()).sum();
    assert!(
        (hour_cost - cost).abs() < 1e-12,
        "{hour_cost} against {cost}"
    );
    let failover = &stats["failovers"][0];
    assert_eq!(
        (
            &failover["route"],
            &failover["from"],
            &failover["to"],
            &failover["error"],
            &failover["status"]
        ),
        (
            &json!("support"),
            &json!("sim/gpt-4o-mini"),
            &json!("sim/gpt-4o"),
            &json!("server_error"),
            &json!(500)
        ),
        "{failover}"
    );
    let targets = bodies["/health"]["targets"].as_array().unwrap();
    assert!(
        targets.iter().all(|t| t["state"].is_string()),
        "{targets:?}"
    );
    let refused = &stats["refused"][0];
    assert_eq!(
        (&refused["route"], &refused["reason"]),
        (&json!("tiny"), &json!("budget"))
    );
    let budget = &bodies["/limits"]["budgets"][0];
    assert_eq!(
        (&budget["name"], &budget["unit"]),
        (&json!("daily"), &json!("usd"))
    );
    assert!(budget["spent"].as_f64().unwrap() > 0.0, "{budget}");
    let limiter = &bodies["/limits"]["targets"][0];
    assert_eq!(limiter["name"], "sim/gpt-4o-mini", "{limiter}");
    // Headroom as the page shows it: cells left of the per-minute rate (it refills as the
    // test runs, so only its bounds are sure).
    assert_eq!(limiter["requests"]["per_minute"], 600, "{limiter}");
    assert!(
        limiter["requests"]["remaining"].as_u64().unwrap() <= 100,
        "{limiter}"
    );
}
