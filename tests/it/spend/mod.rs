//! Spend control over real HTTP on the loopback simulator (and, for the window's reset,
//! tokio's paused clock with an in-process provider): budgets that refuse or downgrade,
//! client-side rate limits that keep the relay under a vendor's limit, and key pools.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polyrelay::BudgetUnit;
use polyrelay::accounting::{BudgetEvent, BudgetEventKind, Observer};
use polyrelay::providers::OpenAi;
use polyrelay::spend::budget::{Budget, BudgetPeriod};
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{Chain, ChatRequest, ErrorKind, Price, Relay, Target};
use polyrelay::{KeyPool, KeyState};
use support::*;

/// Budgets that refuse, downgrade, reset, and count each billed attempt once.
mod budgets;
/// Key pools: parked, rested and reported keys, and their limits.
mod keys;
/// Client-side rate limits that keep the relay under a vendor's limit.
mod limits;

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

/// Collects budget events as "kind name route".
#[derive(Clone, Default)]
struct BudgetLog(Arc<Mutex<Vec<String>>>);

impl Observer for BudgetLog {
    fn budget(&self, e: &BudgetEvent<'_>) {
        let line = format!("{:?} {} {}", e.kind, e.name, e.route.unwrap_or("-"));
        self.0.lock().unwrap().push(line);
    }
}

impl BudgetLog {
    fn kinds(&self, kind: BudgetEventKind) -> usize {
        let k = format!("{kind:?} ");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&k))
            .count()
    }
}

fn premium_and_cheap(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("premium", Chain::of(["sim/gpt-4o"]))
        .route("cheap", Chain::of(["sim/gpt-4o-mini"]))
}

fn ticket() -> ChatRequest {
    ChatRequest::new("premium")
        .user("Where is my order #4411? It was due on Monday.")
        .max_tokens(40)
}

fn mini_then_4o(sim: &Simulator) -> polyrelay::RelayBuilder {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", Chain::of(["sim/gpt-4o-mini", "sim/gpt-4o"]))
}
