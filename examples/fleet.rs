//! `cargo run --example fleet --features redis,simulator`
//!
//! Three replicas of one support bot sharing their state through Redis — no API keys, no
//! network beyond loopback. Each replica is a [`Relay`] with the same [`Store`]; in
//! production they are separate processes behind a load balancer (the gateway binary too,
//! with a `[store]` table in its file), here they are three relays in one process. The
//! example starts its own `redis-server` on a free port (unless `REDIS_URL` names one) and
//! stops it at the end by its process id.
//!
//! 1. **A vendor rate limit.** The vendor (the simulator) allows `VENDOR_RPM` requests a
//!    minute on gpt-4o-mini and answers 429 past it; each replica has a [`RateLimit`] of that
//!    many on the target — with a store, a limit the replicas share, so the fleet as a whole
//!    stays under it — and fails over to DeepSeek when it holds a request back. Shown per
//!    replica and for the fleet: answered on gpt-4o-mini (admitted), held back by the
//!    relay's limiter (limited), refused by the vendor (429, none when the limit holds).
//! 2. **A daily budget** on the `support` route, sized for about `BUDGET_ANSWERS` answers:
//!    the three replicas together stop near it — not at three times it — because each one
//!    admits against the fleet's spend ([`BudgetStatus::fleet_spent`]).
//! 3. **Redis killed.** The fleet keeps serving on local state: `ops` questions are answered,
//!    the spent budget still refuses `support` ones, and [`Relay::store_health`] says the
//!    store is down.
//!
//! [`BudgetStatus::fleet_spent`]: polyrelay::spend::budget::BudgetStatus::fleet_spent

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use polyrelay::accounting::{LimitEvent, Observer};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::store::Store;
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};

type AnyError = Box<dyn std::error::Error>;

/// Requests a minute the vendor takes on gpt-4o-mini.
const VENDOR_RPM: u32 = 12;
/// The daily budget, in answers' worth of dollars.
const BUDGET_ANSWERS: u32 = 40;
/// The replicas.
const REPLICAS: [&str; 3] = ["replica-1", "replica-2", "replica-3"];

const ANSWER: &str = "Thanks for getting in touch: I have opened a case for you, and you will \
    get an email with the next steps within the hour.";

/// Counts, per replica, the requests its own rate limiter held back.
#[derive(Clone, Default)]
struct Limited(Arc<AtomicU64>);

impl Observer for Limited {
    fn rate_limited(&self, _: &LimitEvent<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One replica and what happened on it.
struct Replica {
    name: &'static str,
    relay: Relay,
    limited: Limited,
    on_mini: u64,
    answered: u64,
    over_budget: u64,
}

/// A `redis-server` this example started, stopped by its process id when dropped.
struct LocalRedis {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `redis-server` on a free loopback port, without persistence; its URL.
fn start_redis() -> Result<(LocalRedis, String), AnyError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("polyrelay-fleet-example-{port}"));
    std::fs::create_dir_all(&dir)?;
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("redis-server is not installed: install it (Debian/Ubuntu: \
                        `apt-get install redis-server`, macOS: `brew install redis`) or set \
                        REDIS_URL to a running Redis or Valkey server"
                .into());
        }
        Err(e) => return Err(format!("redis-server did not start: {e}").into()),
    };
    // Ready once it says so; then its log is drained so it never blocks on a full pipe.
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Ready to accept connections"));
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let redis = LocalRedis { child, dir };
    if !ready {
        return Err("redis-server exited before it was ready".into());
    }
    Ok((redis, format!("redis://127.0.0.1:{port}/")))
}

/// A replica: the simulator as `sim`; route `support` = gpt-4o-mini, then DeepSeek, under
/// the daily budget; route `ops` = DeepSeek; the vendor's limit on gpt-4o-mini; the store.
fn replica(
    sim: &Simulator,
    store: Store,
    budget_usd: f64,
    limited: &Limited,
) -> Result<Relay, AnyError> {
    Ok(Relay::builder()
        .provider(
            "sim",
            OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), "sk-simulated"),
        )
        .route(
            "support",
            Chain::of(["sim/gpt-4o-mini", "sim/deepseek-chat"]),
        )
        .route("ops", Chain::of(["sim/deepseek-chat"]))
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new()
                .requests_per_minute(VENDOR_RPM)
                .burst(VENDOR_RPM),
        )
        .budget(
            Budget::usd("support-daily", budget_usd)
                .per(BudgetPeriod::Day)
                .for_route("support"),
        )
        .observer(limited.clone())
        .store(store)
        .build()?)
}

/// What one `support` answer costs (from a relay of its own, outside the fleet).
async fn cost_of_an_answer(sim: &Simulator) -> Result<f64, AnyError> {
    let probe = Relay::builder()
        .provider(
            "sim",
            OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), "sk-simulated"),
        )
        .route("support", Chain::of(["sim/deepseek-chat"]))
        .build()?;
    let resp = probe.chat(ticket(0)).await?;
    Ok(resp.meta.cost.unwrap_or(0.0))
}

fn ticket(i: usize) -> ChatRequest {
    ChatRequest::new("support")
        .user(format!(
            "Ticket #{i}: where is my order? Tracking has not moved since Monday."
        ))
        .max_tokens(60)
}

/// Sends `n` tickets through each replica (the replicas at once, each one ticket at a time).
async fn traffic(fleet: &mut [Replica], n: usize) {
    let runs: Vec<_> = fleet
        .iter()
        .map(|r| {
            let relay = r.relay.clone();
            tokio::spawn(async move {
                let (mut on_mini, mut answered, mut over) = (0, 0, 0);
                for i in 0..n {
                    match relay.chat(ticket(i)).await {
                        Ok(resp) => {
                            answered += 1;
                            if resp
                                .meta
                                .served_by
                                .is_some_and(|t| &*t.model == "gpt-4o-mini")
                            {
                                on_mini += 1;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::BudgetExceeded => over += 1,
                        Err(e) => eprintln!("  unexpected error: {e}"),
                    }
                }
                (on_mini, answered, over)
            })
        })
        .collect();
    for (r, run) in fleet.iter_mut().zip(runs) {
        if let Ok((on_mini, answered, over)) = run.await {
            r.on_mini += on_mini;
            r.answered += answered;
            r.over_budget += over;
        }
    }
}

/// Prints each replica's counts and the fleet's, from the replicas themselves.
async fn report(fleet: &[Replica], sim: &Simulator) {
    // Each replica's last spend reaches the store, then each reads the fleet's total.
    for r in fleet {
        let _ = r.relay.sync_store().await;
    }
    println!(
        "  {:<10} {:>8} {:>14} {:>8} {:>11} {:>11} {:>13}  store",
        "replica", "answered", "on gpt-4o-mini", "limited", "over budget", "spent", "fleet spent"
    );
    let mut totals = (0, 0, 0, 0, 0.0);
    for r in fleet {
        let _ = r.relay.sync_store().await;
        let budget = r.relay.budgets().into_iter().next();
        let spent = budget.as_ref().map_or(0.0, |b| b.spent);
        let fleet_spent = budget
            .as_ref()
            .and_then(|b| b.fleet_spent)
            .map_or_else(|| "-".to_owned(), |s| format!("${s:.6}"));
        let store = match r.relay.store_health() {
            Some(h) if h.up => "up".to_owned(),
            Some(h) => format!("down ({} failures)", h.failures),
            None => "none".to_owned(),
        };
        let limited = r.limited.0.load(Ordering::Relaxed);
        println!(
            "  {:<10} {:>8} {:>14} {:>8} {:>11} {:>11} {:>13}  {}",
            r.name,
            r.answered,
            r.on_mini,
            limited,
            r.over_budget,
            format!("${spent:.6}"),
            fleet_spent,
            store
        );
        totals.0 += r.answered;
        totals.1 += r.on_mini;
        totals.2 += limited;
        totals.3 += r.over_budget;
        totals.4 += spent;
    }
    println!(
        "  {:<10} {:>8} {:>14} {:>8} {:>11} {:>11}",
        "fleet",
        totals.0,
        totals.1,
        totals.2,
        totals.3,
        format!("${:.6}", totals.4)
    );
    // The vendor's view, and one replica's limiter as Relay::health() shows it.
    println!(
        "  the vendor: {} requests on gpt-4o-mini, {} answered 429 (its limit: {VENDOR_RPM} a minute)",
        sim.requests_for("gpt-4o-mini").len(),
        sim.rate_limited("gpt-4o-mini")
    );
    if let Some(bucket) = fleet[0]
        .relay
        .health()
        .into_iter()
        .find(|h| &*h.target.model == "gpt-4o-mini")
        .and_then(|h| h.limiter)
        .and_then(|l| l.requests)
    {
        println!(
            "  {}'s limiter on gpt-4o-mini: {} of {} requests left",
            fleet[0].name, bucket.remaining, bucket.burst
        );
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet example: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), AnyError> {
    let (local, url) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let (redis, url) = start_redis()?;
            println!("started redis-server (pid {}) at {url}", redis.child.id());
            (Some(redis), url)
        }
    };
    let sim = Simulator::start().await?;
    sim.set_default(Reply::text(ANSWER));
    sim.limit_requests("gpt-4o-mini", VENDOR_RPM as usize, Duration::from_secs(60));
    let per_answer = cost_of_an_answer(&sim).await?;
    let budget_usd = per_answer * f64::from(BUDGET_ANSWERS);
    // A namespace of this run's own, so that runs against one server do not add up.
    let namespace = format!("fleet-example-{}", std::process::id());
    let mut fleet = Vec::new();
    for name in REPLICAS {
        let store = Store::redis(&url)?
            .namespace(namespace.clone())
            .replica_id(name)
            .sync_interval(Duration::from_millis(100));
        let limited = Limited::default();
        let relay = replica(&sim, store, budget_usd, &limited)?;
        fleet.push(Replica {
            name,
            relay,
            limited,
            on_mini: 0,
            answered: 0,
            over_budget: 0,
        });
    }

    println!(
        "\n1. The vendor takes {VENDOR_RPM} requests a minute on gpt-4o-mini; each replica sends it \
         8 tickets"
    );
    traffic(&mut fleet, 8).await;
    report(&fleet, &sim).await;

    println!(
        "\n2. A daily budget of ${budget_usd:.6} on route support (about {BUDGET_ANSWERS} \
         answers): each replica sends 30 more tickets"
    );
    traffic(&mut fleet, 30).await;
    report(&fleet, &sim).await;
    let answered: u64 = fleet.iter().map(|r| r.answered).sum();
    println!(
        "  the fleet answered {answered} tickets for a budget of about {BUDGET_ANSWERS}: alone, \
         each replica would have answered up to {BUDGET_ANSWERS}"
    );

    let Some(mut redis) = local else {
        println!(
            "\n3. (skipped: REDIS_URL names a server this example did not start, so it is not \
             killed)"
        );
        return Ok(());
    };
    println!("\n3. Redis is killed; the fleet keeps serving on local state");
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    println!("  killed redis-server (pid {})", redis.child.id());
    let mut ops_answered = 0;
    for r in &fleet {
        for i in 0..5 {
            let ask =
                ChatRequest::new("ops").user(format!("Ops question #{i}: is the queue draining?"));
            if r.relay.chat(ask).await.is_ok() {
                ops_answered += 1;
            }
        }
    }
    traffic(&mut fleet, 3).await;
    println!("  ops questions answered with Redis down: {ops_answered} of 15");
    report(&fleet, &sim).await;
    if let Some(h) = fleet[0].relay.store_health() {
        println!(
            "  {}'s store: up = {}, {} exchanges, {} failures, last error: {}",
            fleet[0].name,
            h.up,
            h.exchanges,
            h.failures,
            h.last_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
