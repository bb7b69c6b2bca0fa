//! `cargo run --example spend_control --features simulator`
//!
//! Spend control on the built-in vendor simulator — no API keys, no network beyond
//! loopback — in three acts:
//!
//! 1. a budget on route `premium` (gpt-4o) that, once spent, sends requests to route `cheap`
//!    (gpt-4o-mini) instead of refusing them;
//! 2. a vendor that allows 5 requests a minute on gpt-4o-mini: a client-side rate limit keeps
//!    the relay under it, failing over before it sends, so the vendor never answers 429;
//! 3. a key pool whose first key is out of quota: the relay parks it and moves to the next
//!    key on the same target before it tries any other target.
//!
//! Each request prints what the relay did and why, from the response's meta, from
//! `Relay::health()` and from the events an [`Observer`] collected during the call; a closing
//! summary comes from `Relay::budgets()` and `Relay::health()` (keys by label, never by value).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polyrelay::BudgetUnit;
use polyrelay::accounting::{
    BudgetEvent, BudgetEventKind, FailoverEvent, KeyEvent, LimitAction, LimitEvent, Observer,
};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::keys::KeyHealth;
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{Chain, ChatRequest, Relay, ResponseMeta, TargetHealth};
use polyrelay::{KeyPool, KeyState};

type AnyError = Box<dyn std::error::Error>;

/// The premium route's hourly budget, in US dollars: a few gpt-4o answers.
const PREMIUM_HOURLY_USD: f64 = 0.003;
/// The chain of acts 2 and 3: gpt-4o-mini, then DeepSeek.
const MINI_THEN_DEEPSEEK: [&str; 2] = ["sim/gpt-4o-mini", "sim/deepseek-chat"];

const TICKETS: [&str; 10] = [
    "Where is my order #4411? It was due on Monday and tracking has not moved.",
    "I was charged twice for my subscription this month. Please refund one.",
    "The blender I bought arrived with a cracked jar. I'd like a replacement.",
    "How do I change the delivery address on an order that has not shipped?",
    "My code SPRING20 says it is invalid, but the email says it runs to Friday.",
    "Can I return a jacket I bought six weeks ago? The tags are still on.",
    "The app logs me out every time I open it since the last update.",
    "I ordered two lamps but only one arrived. The invoice lists both.",
    "Do you ship to Norway, and if so how long does it usually take?",
    "Please close my account and delete the data you hold about me.",
];

const ANSWER: &str = "Thanks for getting in touch. I have looked into this and opened a case \
    for you: you will get an email with the next steps within the hour, and nothing more is \
    needed from you for now. Reply to that email if anything is still unclear.";

/// What the relay reported through its observer callbacks, as lines to print.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, line: String) {
        self.0.lock().expect("events lock").push(line);
    }

    /// Prints (and forgets) the events collected since the last call.
    fn print(&self) {
        for line in std::mem::take(&mut *self.0.lock().expect("events lock")) {
            println!("       why: {line}");
        }
    }
}

impl Observer for Events {
    fn budget(&self, e: &BudgetEvent<'_>) {
        let route = e.route.unwrap_or("-");
        let what = match e.kind {
            BudgetEventKind::Exhausted => "cannot fit this request's estimate".to_owned(),
            BudgetEventKind::Downgraded => format!("sent the request to route {route}"),
            other => format!("{other:?}"),
        };
        let (used, limit) = (amount(e.unit, e.used), amount(e.unit, e.limit));
        self.push(format!("budget {} {what} ({used} of {limit} used)", e.name));
    }

    fn rate_limited(&self, e: &LimitEvent<'_>) {
        let what = match e.action {
            LimitAction::Wait(d) => format!("waiting {} ms", d.as_millis()),
            LimitAction::FailOver => "failed over without sending".to_owned(),
            other => format!("{other:?}"),
        };
        self.push(format!("{}'s rate limit is reached: {what}", e.target));
    }

    fn key_state(&self, e: &KeyEvent<'_>) {
        let (provider, key, state) = (e.provider, e.key, key_state(e.state));
        self.push(format!("{provider}'s {key} got {}: {state}", e.error));
    }

    fn failover(&self, e: &FailoverEvent<'_>) {
        self.push(format!("{} failed ({}): next target", e.from, e.error));
    }
}

fn key_state(s: &KeyState) -> String {
    match s {
        KeyState::Ready => "ready".into(),
        KeyState::Resting { for_ms } => format!("resting for {} s", for_ms.div_ceil(1000)),
        KeyState::Parked { for_ms } => format!("parked for {} min", for_ms.div_ceil(60_000)),
        KeyState::Invalid => "invalid, not used again".into(),
        other => format!("{other:?}"),
    }
}

/// A budget amount in its unit.
fn amount(unit: BudgetUnit, v: f64) -> String {
    match unit {
        BudgetUnit::Usd => format!("${v:.6}"),
        other => format!("{v} {other:?}"),
    }
}

/// The simulator as an OpenAI-compatible provider called `sim`.
fn sim_provider(sim: &Simulator) -> OpenAi {
    OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), "sk-simulated")
}

/// The health of `relay`'s target on gpt-4o-mini.
fn mini_health(relay: &Relay) -> Option<TargetHealth> {
    let mut health = relay.health().into_iter();
    health.find(|h| &*h.target.model == "gpt-4o-mini")
}

/// The keys of the pool behind gpt-4o-mini, as health reports them.
fn mini_keys(relay: &Relay) -> Vec<KeyHealth> {
    mini_health(relay).map(|h| h.keys).unwrap_or_default()
}

/// `v` shown, or `-` when there is none.
fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// How much longer a limiter is held by what the vendor said.
fn held(d: Option<Duration>) -> String {
    d.map_or("not held".into(), |d| format!("held {} s", d.as_secs()))
}

/// What a call sent, in order: each attempt's target, outcome and HTTP status.
fn attempts(meta: &ResponseMeta) -> String {
    let shown = (meta.attempts.iter()).map(|a| {
        let status = a.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        format!("{} {}{status}", a.target, a.outcome)
    });
    shown.collect::<Vec<_>>().join(" -> ")
}

async fn budget_downgrade(sim: &Simulator) -> Result<Relay, AnyError> {
    println!("== 1. premium = sim/gpt-4o, ${PREMIUM_HOURLY_USD}/h, then cheap = sim/gpt-4o-mini");
    sim.set_default(Reply::text(ANSWER));
    let events = Events::default();
    let relay = Relay::builder()
        .provider("sim", sim_provider(sim))
        .route("premium", Chain::of(["sim/gpt-4o"]))
        .route("cheap", Chain::of(["sim/gpt-4o-mini"]))
        .budget(
            Budget::usd("premium-hourly", PREMIUM_HOURLY_USD)
                .for_route("premium")
                .per(BudgetPeriod::Hour)
                .downgrade_to("cheap"),
        )
        .observer(events.clone())
        .build()?;
    for (i, ticket) in TICKETS.iter().enumerate() {
        let req = ChatRequest::new("premium").system("You are a concise support agent.");
        let resp = relay.chat(req.user(*ticket).max_tokens(120)).await?;
        let (m, b) = (&resp.meta, &relay.budgets()[0]);
        let cost = m.cost.map_or("cost unknown".into(), |c| format!("${c:.6}"));
        let (route, by) = (or_dash(m.route.as_deref()), or_dash(m.served_by.as_ref()));
        let (spent, limit) = (amount(b.unit, b.spent), amount(b.unit, b.limit));
        let (n, name) = (i + 1, &b.name);
        println!("  #{n:<2} route {route:<7} {by:<16} {cost}  {name}: {spent} of {limit}");
        events.print();
    }
    Ok(relay)
}

async fn vendor_rate_limit(sim: &Simulator) -> Result<Relay, AnyError> {
    println!("\n== 2. triage = sim/gpt-4o-mini (the vendor allows 5/min), then sim/deepseek-chat");
    sim.set_default(Reply::text("Routed to the billing team."));
    sim.limit_requests("gpt-4o-mini", 5, Duration::from_secs(60));
    let events = Events::default();
    let relay = Relay::builder()
        .provider("sim", sim_provider(sim))
        .route("triage", Chain::of(MINI_THEN_DEEPSEEK))
        .rate_limit(
            "sim/gpt-4o-mini",
            RateLimit::new().requests_per_minute(5).burst(5),
        )
        .observer(events.clone())
        .build()?;
    let (mut on_limited, mut not_sent) = (0, 0);
    for (i, ticket) in TICKETS.iter().cycle().take(12).enumerate() {
        let resp = relay.chat(ChatRequest::new("triage").user(*ticket)).await?;
        // What the vendor's headers said last, as the target's limiter keeps it.
        let limiter = mini_health(&relay).and_then(|h| h.limiter);
        let info = limiter.as_ref().and_then(|l| l.last_vendor_info);
        let left = or_dash(info.and_then(|v| v.remaining_requests));
        let held = held(limiter.and_then(|l| l.held_for));
        let (n, sent) = (i + 1, attempts(&resp.meta));
        println!("  #{n:<2} {sent:<40} vendor: {left} left, limiter {held}");
        let on_mini = |t: &polyrelay::TargetId| &*t.model == "gpt-4o-mini";
        on_limited += usize::from(resp.meta.served_by.as_ref().is_some_and(on_mini));
        not_sent += usize::from(!resp.meta.attempts.iter().any(|a| on_mini(&a.target)));
        events.print();
    }
    println!(
        "  => {on_limited} served by the limited vendor, {not_sent} failed over before sending;\n     \
         the vendor got {} requests for gpt-4o-mini and answered {} with 429",
        sim.requests_for("gpt-4o-mini").len(),
        sim.rate_limited("gpt-4o-mini")
    );
    Ok(relay)
}

async fn key_pool(sim: &Simulator) -> Result<Relay, AnyError> {
    println!("\n== 3. support = sim/gpt-4o-mini, then sim/deepseek-chat; provider sim has 2 keys");
    let answer = Reply::text("Your parcel is with the courier.");
    sim.set_default(answer.clone());
    let quota = "You exceeded your current quota, please check your plan and billing details.";
    let code = Some("insufficient_quota");
    let out_of_quota = Reply::openai_error(429, "insufficient_quota", code, quota);
    sim.script("gpt-4o-mini", [out_of_quota, answer]);
    // Demo strings: they only ever go to the local simulator.
    let pool = KeyPool::new().key("sk-demo-key-one").key("sk-demo-key-two");
    let events = Events::default();
    let relay = Relay::builder()
        .provider("sim", sim_provider(sim))
        .key_pool("sim", pool)
        .route("support", Chain::of(MINI_THEN_DEEPSEEK))
        .observer(events.clone())
        .build()?;
    for i in 1..=4 {
        let before = mini_keys(&relay);
        let req = ChatRequest::new("support").user("Where is my parcel?");
        let resp = relay.chat(req).await?;
        // Which keys the call used: the health counts that moved during it.
        let mut used = Vec::new();
        for (b, k) in before.iter().zip(mini_keys(&relay)) {
            let (s, f) = (k.served - b.served, k.failures - b.failures);
            if s + f > 0 {
                used.push(format!("{} {s} served/{f} failed", k.label));
            }
        }
        println!("  #{i} {}", attempts(&resp.meta));
        println!("       keys: {}", used.join(", "));
        events.print();
    }
    println!(
        "  => requests the vendor got: {} for gpt-4o-mini, {} for deepseek-chat",
        sim.requests_for("gpt-4o-mini").len(),
        sim.requests_for("deepseek-chat").len()
    );
    Ok(relay)
}

#[tokio::main]
async fn main() -> Result<(), AnyError> {
    // One simulator per act, so the scripts and limits of one do not reach the next.
    let budgeted = budget_downgrade(&Simulator::start().await?).await?;
    let limited = vendor_rate_limit(&Simulator::start().await?).await?;
    let pooled = key_pool(&Simulator::start().await?).await?;

    println!("\n== Summary");
    for b in budgeted.budgets() {
        let resets = b.resets_at.duration_since(SystemTime::now());
        let mins = resets.unwrap_or_default().as_secs().div_ceil(60);
        let (name, spent, limit) = (&b.name, amount(b.unit, b.spent), amount(b.unit, b.limit));
        println!("budget {name}: {spent} of {limit} spent, resets in {mins} min");
    }
    for h in limited.health() {
        let Some(l) = h.limiter else { continue };
        let (target, held) = (h.target, held(l.held_for));
        let left = or_dash(l.last_vendor_info.and_then(|v| v.remaining_requests));
        println!("limiter of {target}: {held}; the vendor's last headers: {left} left");
    }
    if let Some(h) = mini_health(&pooled) {
        println!("keys of {} (breaker {:?}):", h.target, h.state);
        for k in &h.keys {
            let (label, state) = (&k.label, key_state(&k.state));
            let (served, failed) = (k.served, k.failures);
            println!("  {label}: {state}; {served} served, {failed} failed");
        }
    }
    Ok(())
}
