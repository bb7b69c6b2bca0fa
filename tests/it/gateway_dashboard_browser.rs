//! The dashboard in a real headless Chromium (issue 23, point 5): the support bot's shipped
//! configuration behind the gateway on the simulator, a scripted run of tickets (some
//! failing over, some streamed), then `tests/browser/dashboard.mjs` (playwright-core driving
//! the installed Chromium) opens `/dashboard`, types the client key and reads every number
//! the page shows; they must be the gateway's `/stats`, `/health` and `/limits`, with no
//! console error, page error or failed request. More tickets follow with the page still
//! open, and it must show the new numbers. Screenshots are kept in `target/test-artifacts/`:
//! `dashboard.png` (the 1280×800 viewport), `dashboard-full.png` (the whole page) and
//! `dashboard-phone.png` (the whole page 390 px wide).
//!
//! Needs node, `npm ci --prefix tests/browser` and Chromium (`POLYRELAY_CHROMIUM`, default
//! `/usr/bin/chromium`; `POLYRELAY_NODE`, default `node`). Without them the test passes with
//! a note, unless `POLYRELAY_REQUIRE_BROWSER=1` (as in `.ci/run`), when it fails.
#![cfg(all(feature = "config", feature = "language", feature = "sensitive"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use polyrelay::Relay;
use polyrelay::gateway::GatewayOptions;
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::gateway::{Gateway, KEY, gateway, get_json};

/// How long one driver command may take before the test gives up (the driver's own DOM
/// wait is 60 s; Chromium's first start on a cold disk can take several seconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// `examples/support_bot.toml` on the simulator, with a baseline (so the page shows what
/// routing saved), a daily dollar budget and a rate limit on the cheap model (so the budget
/// and headroom tables have rows). Retries as by default: a 500 is tried once more.
fn relay(sim: &Simulator) -> Relay {
    crate::support_bot::builder(sim)
        .baseline("openai/gpt-4o")
        .budget(Budget::usd("daily", 5.0).per(BudgetPeriod::Day))
        .rate_limit(
            "openai/gpt-4o-mini",
            RateLimit::new().requests_per_minute(600).burst(100),
        )
        .build()
        .unwrap()
}

/// One ticket: text, intent header (if any), streamed or not.
struct Ticket {
    text: &'static str,
    intent: Option<&'static str>,
    stream: bool,
}

const fn ticket(text: &'static str, intent: Option<&'static str>, stream: bool) -> Ticket {
    Ticket {
        text,
        intent,
        stream,
    }
}

const ORDER: &str = "Where is my order? The tracking page has not changed since Monday.";

/// The first run: eight tickets over five routes; two of the four order-status tickets fail
/// over from gpt-4o-mini (a 500, and another on its retry) to Claude Haiku; three are
/// streamed.
const FIRST: &[Ticket] = &[
    ticket(ORDER, Some("order_status"), false),
    ticket(ORDER, Some("order_status"), true),
    ticket(ORDER, Some("order_status"), false),
    ticket(ORDER, Some("order_status"), true),
    ticket(
        "Please refund it to my card 4111 1111 1111 1111, it expires 09/28.",
        None,
        false,
    ),
    ticket(
        "Meine Bestellung ist nicht angekommen. Können Sie mir bitte helfen?",
        None,
        false,
    ),
    ticket("我的订单还没有到，请帮我查一下物流。", None, false),
    ticket(
        "I was charged twice and the seller refuses to refund me",
        Some("refund_dispute"),
        true,
    ),
];
/// gpt-4o-mini's answers to the first run's four order-status tickets.
fn first_script() -> Vec<Reply> {
    vec![
        Reply::text("Your order ships today."),
        Reply::error(SimError::Server),
        Reply::error(SimError::Server),
        Reply::text("Your order ships today."),
        Reply::error(SimError::Server),
        Reply::error(SimError::Server),
    ]
}
/// Failovers in the first run.
const FIRST_FAILOVERS: u64 = 2;

/// The second run, while the page is open: three more order-status tickets, one failing
/// over, one streamed.
const SECOND: &[Ticket] = &[
    ticket(ORDER, Some("order_status"), false),
    ticket(ORDER, Some("order_status"), true),
    ticket(ORDER, Some("order_status"), false),
];
fn second_script() -> Vec<Reply> {
    vec![
        Reply::text("Your order is out for delivery."),
        Reply::error(SimError::Server),
        Reply::error(SimError::Server),
        Reply::text("Your order is out for delivery."),
    ]
}
const SECOND_FAILOVERS: u64 = 1;

/// Sends `tickets` through the gateway as the OpenAI wire does, each answered with 200.
async fn run(gw: &Gateway, tickets: &[Ticket]) {
    let client = reqwest::Client::new();
    for t in tickets {
        let mut body = json!({
            "model": "support",
            "messages": [{ "role": "user", "content": t.text }],
        });
        if t.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        let mut req = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(KEY)
            .json(&body);
        if let Some(intent) = t.intent {
            req = req.header("x-polyrelay-intent", intent);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", t.text);
        let text = resp.text().await.unwrap();
        if t.stream {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        }
    }
}

// --- The driver ---

/// `tests/browser/dashboard.mjs` running, one JSON command a line in, one JSON answer out.
struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every problem the page had (console errors, page errors, failed requests).
    problems: Vec<Value>,
}

impl Driver {
    /// The next answer that is not a problem report (problems are kept in `problems`).
    async fn answer(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(COMMAND_TIMEOUT, self.lines.next_line())
                .await
                .expect("the driver answers within the command timeout")
                .expect("the driver's stdout reads");
            let Some(line) = line else {
                let status = self.child.wait().await;
                panic!(
                    "the driver ended without answering ({status:?}); problems: {:?}",
                    self.problems
                );
            };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the driver printed {line:?}: {e}"));
            if v["event"] == "problem" {
                self.problems.push(v);
                continue;
            }
            assert_ne!(v["event"], "error", "the driver failed: {v:#}");
            return v;
        }
    }

    async fn send(&mut self, cmd: Value) -> Value {
        let line = format!("{cmd}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let v = self.answer().await;
        assert!(
            self.problems.is_empty(),
            "the page had problems: {:#?}",
            self.problems
        );
        v
    }
}

/// What the test needs to drive a browser, or why it cannot.
fn browser_setup() -> Result<(String, String, PathBuf), String> {
    let node = std::env::var("POLYRELAY_NODE").unwrap_or_else(|_| "node".to_owned());
    let chromium =
        std::env::var("POLYRELAY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let has_node = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node {
        return Err(format!(
            "`{node} --version` fails: install Node.js 18 or later"
        ));
    }
    if !Path::new(&chromium).is_file() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium, or set POLYRELAY_CHROMIUM)"
        ));
    }
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Err("no playwright-core in tests/browser (npm ci --prefix tests/browser)".into());
    }
    Ok((node, chromium, dir.join("dashboard.mjs")))
}

/// Where test artifacts go: `target/test-artifacts/` (beside the target's `tmp/`).
fn artifacts() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// --- What the page must show, from the JSON endpoints ---

/// `usd` in nano-dollars, as the relay sums money.
fn nanos(usd: &Value) -> i64 {
    (usd.as_f64().unwrap() * 1e9).round() as i64
}

/// The numbers of the summary cards, from `/stats`' `recent` rows.
fn cards(stats: &Value) -> BTreeMap<&'static str, f64> {
    let rows = stats["recent"].as_array().unwrap();
    let sum = |f: &dyn Fn(&Value) -> i64| rows.iter().map(f).sum::<i64>();
    let cost = sum(&|r| nanos(&r["cost"]));
    let baseline = sum(&|r| nanos(&r["baseline_cost"]));
    let tried = sum(&|r| r["requests"].as_i64().unwrap());
    let failovers = sum(&|r| r["failovers_out"].as_i64().unwrap());
    let errors = sum(&|r| {
        r["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_i64().unwrap())
            .sum()
    });
    let refused: i64 = stats["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["calls"].as_i64().unwrap())
        .sum();
    BTreeMap::from([
        ("total-cost", cost as f64 / 1e9),
        ("baseline-cost", baseline as f64 / 1e9),
        ("saved", (baseline - cost) as f64 / 1e9),
        // A call that failed over tried two targets: a row each.
        ("requests", (tried - failovers) as f64),
        ("failovers", failovers as f64),
        ("errors", errors as f64),
        ("refused", refused as f64),
    ])
}

/// A cell's raw number.
fn cell(row: &Value, field: &str) -> f64 {
    let raw = &row["cells"][field]["value"];
    raw.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no number in cell {field}: {row}"))
}

/// The text a person reads equals the raw number: `1,234` for counts, `$0.004224` for money
/// (rounded as the page rounds: to 6 decimals under a dollar).
fn shown_as(text: &str, value: f64) -> bool {
    let t = text.replace([',', '$'], "");
    let Ok(n) = t.parse::<f64>() else {
        return false;
    };
    let decimals = t.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    (n - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-12
}

/// Everything the page showed against `/stats`, `/health` and `/limits`.
fn check(snapshot: &Value, stats: &Value, health: &Value, limits: &Value) {
    assert_eq!(snapshot["status"]["state"], "ok", "{}", snapshot["status"]);
    for (id, want) in cards(stats) {
        let card = &snapshot["cards"][id];
        let got = card["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("no card #{id}: {}", snapshot["cards"]));
        assert_eq!(
            got, want,
            "#{id}: the page shows {card}, /stats says {want}"
        );
        let text = card["text"].as_str().unwrap();
        assert!(shown_as(text, want), "#{id} reads {text:?} for {want}");
    }

    // The cost table: one row per stats row, in the same order, with its numbers.
    let rows = stats["recent"].as_array().unwrap();
    let table = snapshot["tables"]["cost-table"].as_array().unwrap();
    assert_eq!(table.len(), rows.len(), "cost rows: {table:#?}");
    for (r, t) in rows.iter().zip(table) {
        let target = format!(
            "{}/{}",
            r["provider"].as_str().unwrap(),
            r["model"].as_str().unwrap()
        );
        assert_eq!(t["attrs"]["route"], r["route"], "{t}");
        assert_eq!(t["attrs"]["target"], target.as_str(), "{t}");
        let q = r["query_type"].as_str().unwrap_or("");
        assert_eq!(t["attrs"]["queryType"], q, "{t}");
        assert_eq!(cell(t, "requests"), r["requests"].as_f64().unwrap(), "{t}");
        assert_eq!(cell(t, "cost"), r["cost"].as_f64().unwrap(), "{t}");
        assert_eq!(
            cell(t, "baseline_cost"),
            r["baseline_cost"].as_f64().unwrap(),
            "{t}"
        );
        for field in ["requests", "cost", "baseline_cost"] {
            let text = t["cells"][field]["text"].as_str().unwrap();
            assert!(
                shown_as(text, cell(t, field)),
                "{field} reads {text:?}: {t}"
            );
        }
    }

    // Targets: each stats target summed, and every target the breakers know, with its state.
    let mut want: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in rows {
        let target = format!(
            "{}/{}",
            r["provider"].as_str().unwrap(),
            r["model"].as_str().unwrap()
        );
        let e = want.entry(target).or_default();
        e.0 += r["requests"].as_f64().unwrap();
        e.1 += r["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_f64().unwrap())
            .sum::<f64>();
    }
    let states: BTreeMap<String, String> = health["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["target"].as_str().unwrap().to_owned(),
                h["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for t in states.keys() {
        want.entry(t.clone()).or_default();
    }
    let table = snapshot["tables"]["targets-table"].as_array().unwrap();
    let shown: Vec<&str> = table
        .iter()
        .map(|t| t["attrs"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        "targets"
    );
    for t in table {
        let name = t["attrs"]["target"].as_str().unwrap();
        let (requests, errors) = want[name];
        assert_eq!(cell(t, "requests"), requests, "{t}");
        assert_eq!(cell(t, "errors"), errors, "{t}");
        assert_eq!(
            t["attrs"]["breaker"],
            states.get(name).map_or("unknown", String::as_str),
            "{t}"
        );
    }

    // Failovers: every row that moved on, with its count and the reason.
    let moved: Vec<&Value> = rows
        .iter()
        .filter(|r| r["failovers_out"].as_u64() > Some(0))
        .collect();
    let table = snapshot["tables"]["failovers-table"].as_array().unwrap();
    assert_eq!(table.len(), moved.len(), "failover rows: {table:#?}");
    for (r, t) in moved.iter().zip(table) {
        assert_eq!(
            cell(t, "failovers_out"),
            r["failovers_out"].as_f64().unwrap(),
            "{t}"
        );
        for kind in r["errors"].as_object().unwrap().keys() {
            let why = t["cells"]["reasons"]["text"].as_str().unwrap();
            assert!(why.contains(kind.as_str()), "{why:?} names no {kind}");
        }
    }

    check_hours(snapshot, stats);
    check_failovers(snapshot, stats);

    // Budgets: the one dollar budget, spent as /limits says.
    let budgets = snapshot["tables"]["budgets-table"].as_array().unwrap();
    let lb = limits["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), lb.len(), "{budgets:#?}");
    for (b, l) in budgets.iter().zip(lb) {
        assert_eq!(b["attrs"]["budget"], l["name"], "{b}");
        let used = l["spent"].as_f64().unwrap() + l["reserved"].as_f64().unwrap();
        assert_eq!(cell(b, "used"), used, "{b}");
        assert_eq!(cell(b, "limit"), l["limit"].as_f64().unwrap(), "{b}");
    }
    let limiters = snapshot["tables"]["limits-table"].as_array().unwrap();
    assert!(
        limiters
            .iter()
            .any(|l| l["attrs"]["limiter"] == "openai/gpt-4o-mini"),
        "{limiters:#?}"
    );

    // Nothing spills sideways at 1280 px.
    let layout = &snapshot["layout"];
    assert!(
        layout["scroll_width"].as_f64() <= layout["viewport"].as_f64()
            && layout["spill"] == json!([]),
        "{layout}"
    );
}

/// The cost by hour: one row per `/stats` hour, newest first, with the hour's cost, calls,
/// errors and baseline; the hours add up to the run's whole cost; the newest hour (picked by
/// default) broken down by route, query type and target as its bucket's rows.
fn check_hours(snapshot: &Value, stats: &Value) {
    let hours = stats["hours"].as_array().unwrap();
    let table = snapshot["tables"]["hours-table"].as_array().unwrap();
    assert_eq!(table.len(), hours.len(), "hours: {table:#?}");
    let sum = |rows: &[Value], f: &dyn Fn(&Value) -> i64| rows.iter().map(f).sum::<i64>();
    let mut all = 0;
    for (h, t) in hours.iter().rev().zip(table) {
        let rows = h["rows"].as_array().unwrap();
        let cost = sum(rows, &|r| nanos(&r["cost"]));
        let calls = sum(rows, &|r| {
            r["requests"].as_i64().unwrap() - r["failovers_out"].as_i64().unwrap()
        });
        all += cost;
        assert_eq!(t["attrs"]["hour"], h["start"].to_string(), "{t}");
        assert_eq!(cell(t, "cost"), cost as f64 / 1e9, "{t}");
        assert_eq!(cell(t, "requests"), calls as f64, "{t}");
        assert_eq!(
            cell(t, "errors"),
            sum(rows, &|r| r["errors"].as_i64().unwrap()) as f64,
            "{t}"
        );
        let text = t["cells"]["cost"]["text"].as_str().unwrap();
        assert!(shown_as(text, cell(t, "cost")), "cost reads {text:?}: {t}");
    }
    let total = stats["total"].as_array().unwrap();
    assert_eq!(all, sum(total, &|r| nanos(&r["cost"])), "the hours add up");
    // The newest hour, broken down.
    let newest = hours.last().expect("an hour with calls");
    let detail = snapshot["tables"]["hour-detail"].as_array().unwrap();
    let rows = newest["rows"].as_array().unwrap();
    assert_eq!(detail.len(), rows.len(), "{detail:#?}");
    for (r, t) in rows.iter().zip(detail) {
        assert_eq!(t["attrs"]["hour"], newest["start"].to_string(), "{t}");
        assert_eq!(t["attrs"]["route"], r["route"], "{t}");
        assert_eq!(
            t["attrs"]["queryType"],
            r["query_type"].as_str().unwrap_or(""),
            "{t}"
        );
        let target = format!(
            "{}/{}",
            r["provider"].as_str().unwrap(),
            r["model"].as_str().unwrap()
        );
        assert_eq!(t["attrs"]["target"], target.as_str(), "{t}");
        assert_eq!(cell(t, "cost"), r["cost"].as_f64().unwrap(), "{t}");
        assert_eq!(cell(t, "requests"), r["requests"].as_f64().unwrap(), "{t}");
    }
}

/// The latest failovers: the relay's log in `/stats`, item for item, newest first.
fn check_failovers(snapshot: &Value, stats: &Value) {
    let log = stats["failovers"].as_array().unwrap();
    let list = snapshot["lists"]["failover-events"].as_array().unwrap();
    assert_eq!(list.len(), log.len(), "{list:#?}");
    for (f, li) in log.iter().zip(list) {
        assert_eq!(li["at"], f["at_ms"].to_string(), "{li}");
        for (attr, field) in [("route", "route"), ("from", "from"), ("reason", "error")] {
            assert_eq!(li[attr], f[field], "{li}");
        }
        assert_eq!(li["to"], f["to"].as_str().unwrap_or(""), "{li}");
        assert_eq!(li["status"], f["status"].to_string(), "{li}");
        assert_eq!(li["tries"], f["tries"].to_string(), "{li}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium_shows_the_support_bots_numbers_and_follows_new_traffic() {
    let (node, chromium, script) = match browser_setup() {
        Ok(setup) => setup,
        Err(why) => {
            let required = std::env::var("POLYRELAY_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(!required, "POLYRELAY_REQUIRE_BROWSER=1 but {why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    let started = Instant::now();
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::text(
        "Thanks for reaching out; here is what I found.",
    ));
    sim.script("gpt-4o-mini", first_script());
    let gw = gateway(relay(&sim), GatewayOptions::new().client_key(KEY)).await;
    run(&gw, FIRST).await;

    let stats = get_json(&gw.url, "/stats").await;
    let want = cards(&stats);
    assert_eq!(want["requests"], FIRST.len() as f64, "{stats:#}");
    assert_eq!(want["failovers"], FIRST_FAILOVERS as f64, "{stats:#}");

    // The page opens after the first run's failovers.
    let opened_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut child = Command::new(&node)
        .arg(&script)
        .arg(format!("{}/dashboard", gw.url))
        .env("POLYRELAY_CHROMIUM", &chromium)
        .env("DASHBOARD_KEY", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut driver = Driver {
        child,
        stdin,
        lines,
        problems: Vec::new(),
    };
    let loaded = driver.answer().await;
    assert_eq!(loaded["event"], "loaded", "{loaded}");
    // Before the key is typed, the page asks for it instead of polling into 401s.
    assert_eq!(loaded["before_key"]["state"], "key", "{loaded}");

    // The first run, as the page shows it.
    let read = driver
        .send(json!({ "cmd": "wait", "values": { "requests": want["requests"], "total-cost": want["total-cost"] } }))
        .await;
    let (health, limits) = (
        get_json(&gw.url, "/health").await,
        get_json(&gw.url, "/limits").await,
    );
    let first = &read["snapshot"];
    check(first, &get_json(&gw.url, "/stats").await, &health, &limits);
    println!("first run, as the page shows it: {}", first["cards"]);
    // The failovers of the first run, from before the page opened, are in its list (the
    // relay logged them; the page did not have to see them happen).
    let events = first["lists"]["failover-events"].as_array().unwrap();
    assert_eq!(events.len() as u64, FIRST_FAILOVERS, "{events:#?}");
    for event in events {
        let at: u64 = event["at"].as_str().unwrap().parse().unwrap();
        assert!(
            at <= opened_ms,
            "{event} after the page opened at {opened_ms}"
        );
        assert_eq!(
            (
                &event["route"],
                &event["from"],
                &event["to"],
                &event["reason"],
                &event["status"],
                &event["tries"]
            ),
            (
                &json!("fast"),
                &json!("openai/gpt-4o-mini"),
                &json!("anthropic/claude-haiku-4-5"),
                &json!("server_error"),
                &json!("500"),
                &json!("2")
            ),
            "{event}"
        );
        // A 500 and the 500 of its retry.
        let text = event["text"].as_str().unwrap();
        assert!(
            text.contains(
                "fast [order_status]: openai/gpt-4o-mini → anthropic/claude-haiku-4-5 \
                 (server_error 500, 2 tries)"
            ),
            "{text}"
        );
    }
    // The hourly table: the run's cost in this hour (the hours add up to it: checked above).
    let hours = first["tables"]["hours-table"].as_array().unwrap();
    assert!(cell(&hours[0], "cost") > 0.0, "{hours:#?}");

    // At a phone's width nothing spills out of the page.
    let png = artifacts().join("dashboard-phone.png");
    let phone = driver
        .send(json!({ "cmd": "phone", "path": png.to_str().unwrap() }))
        .await;
    let layout = &phone["layout"];
    assert!(
        layout["scroll_width"].as_f64() <= layout["viewport"].as_f64()
            && layout["spill"] == json!([]),
        "at 390 px: {layout}"
    );

    // More traffic, the page still open: it follows.
    sim.script("gpt-4o-mini", second_script());
    run(&gw, SECOND).await;
    let stats = get_json(&gw.url, "/stats").await;
    let want = cards(&stats);
    assert_eq!(
        want["requests"],
        (FIRST.len() + SECOND.len()) as f64,
        "{stats:#}"
    );
    assert_eq!(
        want["failovers"],
        (FIRST_FAILOVERS + SECOND_FAILOVERS) as f64,
        "{stats:#}"
    );
    let read = driver
        .send(json!({ "cmd": "wait", "values": { "requests": want["requests"], "total-cost": want["total-cost"] } }))
        .await;
    let second = &read["snapshot"];
    let (health, limits) = (
        get_json(&gw.url, "/health").await,
        get_json(&gw.url, "/limits").await,
    );
    check(second, &stats, &health, &limits);
    assert_ne!(first["cards"], second["cards"]);
    // The failover of the second run joins the first run's, newest first.
    let events = second["lists"]["failover-events"].as_array().unwrap();
    assert_eq!(
        events.len() as u64,
        FIRST_FAILOVERS + SECOND_FAILOVERS,
        "{events:#?}"
    );
    assert!(
        events[0]["at"].as_str().unwrap().parse::<u64>().unwrap() > opened_ms,
        "{events:#?}"
    );
    println!("after more traffic: {}", second["cards"]);

    // The viewport (1280×800, as in the README) and the whole page.
    for (name, full) in [("dashboard.png", false), ("dashboard-full.png", true)] {
        let png = artifacts().join(name);
        let path = png.to_str().unwrap();
        let shot = driver
            .send(json!({ "cmd": "screenshot", "path": path, "full": full }))
            .await;
        assert_eq!(shot["event"], "screenshot");
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{path} is no PNG");
        println!("screenshot: {path}");
    }

    driver
        .stdin
        .write_all(b"{\"cmd\":\"quit\"}\n")
        .await
        .unwrap();
    let done = driver.answer().await;
    assert_eq!(done["event"], "done", "{done}");
    assert_eq!(done["problems"], json!([]), "{done:#}");
    let status = driver.child.wait().await.unwrap();
    assert!(status.success(), "the driver exited with {status}");
    println!(
        "the browser test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
