//! The day's tickets.

use polyrelay::ChatRequest;

use super::models::fill;
use super::text::*;
use super::{TICKETS, VOLUME};

/// `TICKETS` tickets, hour by hour, spread over the day by `VOLUME`.
pub(crate) fn day_of_tickets(rng: &mut fastrand::Rng) -> Vec<Vec<ChatRequest>> {
    let total: f64 = VOLUME.iter().sum();
    let mut per_hour: Vec<usize> = VOLUME
        .iter()
        .map(|v| (v / total * TICKETS as f64).round() as usize)
        .collect();
    // Rounding: the busiest hour takes up the difference.
    let diff = TICKETS as isize - per_hour.iter().sum::<usize>() as isize;
    per_hour[11] = (per_hour[11] as isize + diff) as usize;
    let walk_ins: Vec<String> = include_str!("../../tests/data/support_tickets.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    per_hour
        .iter()
        .map(|&n| (0..n).map(|_| ticket(rng, &walk_ins)).collect())
        .collect()
}

/// One ticket: its intent (or none, for the classifier), language and context.
fn ticket(rng: &mut fastrand::Rng, walk_ins: &[String]) -> ChatRequest {
    let base = ChatRequest::new("support").system(SYSTEM_PROMPT);
    let roll = rng.f64();
    if roll < 0.05 {
        // Sensitive: health, legal or identity data. On-prem only, whatever the language.
        return base
            .system(account_context(rng, 1..3))
            .user(SENSITIVE[rng.usize(..SENSITIVE.len())])
            .intent("sensitive");
    }
    if roll < 0.12 {
        // Chinese: Qwen, by script, whatever the intent.
        let (intent, pool) = if rng.f64() < 0.7 {
            ("order_status", ZH_ORDER)
        } else {
            ("refund_dispute", ZH_REFUND)
        };
        let text = pool[rng.usize(..pool.len())].replace("{n}", &order_number(rng));
        return base
            .system(account_context(rng, 1..4))
            .user(text)
            .intent(intent);
    }
    if roll < 0.47 {
        let pool = if rng.f64() < 0.15 {
            ORDER_OTHER_LANGS
        } else {
            ORDER_EN
        };
        let question = pool[rng.usize(..pool.len())].replace("{n}", &order_number(rng));
        let req = base.system(account_context(rng, 1..7));
        return with_history(req, rng).user(question).intent("order_status");
    }
    if roll < 0.58 {
        // The whole story, and the transactions in question.
        let story = fill(REFUND_STORY, rng.usize(300..2_400), rng);
        let mut tx = String::from("Transactions on the card:\n");
        for _ in 0..rng.usize(2..9) {
            tx.push_str(&format!(
                "- {} 2024-{:02}-{:02} ${}.{:02} ref {}\n",
                ["CHARGE", "CHARGE", "REFUND", "AUTH"][rng.usize(..4)],
                rng.usize(1..13),
                rng.usize(1..29),
                rng.usize(9..480),
                rng.usize(..100),
                rng.u32(100_000..999_999)
            ));
        }
        let req = base.system(account_context(rng, 2..8));
        return with_history(req, rng)
            .user(format!("{story}\n\n{tx}"))
            .intent("refund_dispute");
    }
    if roll < 0.67 {
        let lang = [
            "Spanish",
            "German",
            "French",
            "Portuguese",
            "Japanese",
            "Italian",
        ][rng.usize(..6)];
        let doc = [
            "return policy",
            "shipping FAQ",
            "warranty terms",
            "reply to the customer",
        ][rng.usize(..4)];
        let text = format!(
            "Please translate the following {doc} into {lang}, keeping the formatting:\n\n{}",
            fill(POLICY, rng.usize(200..3_000), rng)
        );
        return base.user(text).intent("translation");
    }
    // A walk-in question with the help-centre articles retrieved for it; the classifier
    // decides where it goes.
    let question = walk_ins[rng.usize(..walk_ins.len())].as_str();
    let mut kb = String::from("Relevant help-centre articles:\n");
    for _ in 0..rng.usize(1..5) {
        kb.push_str(&format!(
            "### {}\n{}\n",
            KB_TITLES[rng.usize(..KB_TITLES.len())],
            fill(POLICY, rng.usize(200..700), rng)
        ));
    }
    base.system(kb).user(question)
}

/// Earlier turns of the conversation, for some tickets.
fn with_history(mut req: ChatRequest, rng: &mut fastrand::Rng) -> ChatRequest {
    if rng.f64() < 0.3 {
        for _ in 0..rng.usize(1..4) {
            req = req
                .user(ORDER_EN[rng.usize(..ORDER_EN.len())].replace("{n}", &order_number(rng)))
                .assistant(fill(ANSWERS_EN, rng.usize(120..500), rng));
        }
    }
    req
}

fn order_number(rng: &mut fastrand::Rng) -> String {
    rng.u32(100_000..999_999).to_string()
}

/// The account and its recent orders, as the bot's back end attaches them (a system message,
/// so that routing by language and the classifier look at the customer's own words).
fn account_context(rng: &mut fastrand::Rng, orders: std::ops::Range<usize>) -> String {
    let mut s = format!(
        "[account C-{} · member since {} · {} orders · tier {}]\nRecent orders:\n",
        rng.u32(10_000..99_999),
        rng.u32(2012..2025),
        rng.u32(1..80),
        ["standard", "plus", "business"][rng.usize(..3)]
    );
    for _ in 0..rng.usize(orders) {
        let items: Vec<&str> = (0..rng.usize(1..4))
            .map(|_| ITEMS[rng.usize(..ITEMS.len())])
            .collect();
        s.push_str(&format!(
            "- #{} placed 2024-{:02}-{:02}: {}; {}; {} tracking {}{:09}\n",
            order_number(rng),
            rng.usize(1..13),
            rng.usize(1..29),
            items.join(", "),
            [
                "processing",
                "shipped",
                "out for delivery",
                "delivered",
                "delayed at customs"
            ][rng.usize(..5)],
            ["DHL", "UPS", "FedEx", "USPS", "La Poste"][rng.usize(..5)],
            ["JD", "1Z", "FX", "94", "LP"][rng.usize(..5)],
            rng.u32(..1_000_000_000)
        ));
    }
    s
}
