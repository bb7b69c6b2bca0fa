//! The budgets' tests: configuration and the ledger here, the windows and the concurrency
//! checks by topic in the submodules. Amounts are checked through the public status and
//! refusals; the lock-free windows also through their counters.

mod calendar;
mod concurrency;
mod ledger;
mod rolling;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;
use tokio::time::Instant;

use super::ledger::Window;
use super::packed::LIMIT_MAX;
use super::packed::WORDS_PER_LINE;
use super::rolling::RollingAt;
use super::*;
use crate::accounting::{BudgetEvent, BudgetEventKind};
use crate::time::{civil_from_days, days_from_civil};
use crate::types::{BudgetUnit, ErrorKind};

type Log = Arc<Mutex<Vec<(String, BudgetEventKind, f64, f64)>>>;

fn utc(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64) -> SystemTime {
    let days = u64::try_from(days_from_civil(y, mo, d)).unwrap();
    UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3_600 + mi * 60 + s)
}

fn usd(v: f64) -> Spend {
    Spend {
        usd: Some(v),
        tokens: 0,
    }
}

fn tokens(n: u64) -> Spend {
    Spend {
        usd: None,
        tokens: n,
    }
}

const NONE: &[String] = &[];

fn q(route: &str) -> BudgetQuery<'_> {
    BudgetQuery {
        route,
        intent: None,
        labels: NONE,
        tags: NONE,
    }
}

fn budgets(list: Vec<Budget>, start: SystemTime) -> Budgets {
    Budgets::with_clock_start(list, None, start).unwrap()
}

fn recorded(list: Vec<Budget>, start: SystemTime) -> (Budgets, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let notify: Notify = Arc::new(move |e: &BudgetEvent<'_>| {
        sink.lock()
            .unwrap()
            .push((e.name.to_owned(), e.kind, e.used, e.limit));
    });
    (
        Budgets::with_clock_start(list, Some(notify), start).unwrap(),
        log,
    )
}

fn status(b: &Budgets, name: &str) -> BudgetStatus {
    b.status().into_iter().find(|s| s.name == name).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn validate_rejects_bad_budgets_and_duplicates() {
    let bad = [
        Budget::usd("", 1.0),
        Budget::usd("a", 0.0),
        Budget::usd("a", -1.0),
        Budget::usd("a", f64::NAN),
        Budget::usd("a", f64::INFINITY),
        Budget::tokens("a", 0),
        Budget::usd("a", 1.0).warn_at(0.0),
        Budget::usd("a", 1.0).warn_at(1.0),
        Budget::usd("a", 1.0).warn_at(f64::NAN),
        Budget::usd("a", 1.0).for_route(""),
        Budget::usd("a", 1.0).for_intent(" "),
        Budget::usd("a", 1.0).for_tag(""),
        Budget::usd("a", 1.0).downgrade_to(""),
    ];
    for b in bad {
        let e = b.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{b:?}");
    }
    assert!(
        Budget::usd("a", 1.0)
            .warn_at(0.8)
            .for_route("chat")
            .downgrade_to("cheap")
            .validate()
            .is_ok()
    );
    let dup = Budgets::new(vec![Budget::usd("a", 1.0), Budget::tokens("a", 5)], None);
    assert_eq!(dup.unwrap_err().kind(), ErrorKind::Config);
    assert!(Budgets::new(vec![], None).unwrap().is_empty());
}

#[test]
fn builder_and_getters() {
    let b = Budget::tokens("t", 500)
        .per(BudgetPeriod::Hour)
        .rolling()
        .for_tag("batch")
        .downgrade_to("cheap")
        .warn_at(0.5);
    assert_eq!(b.name(), "t");
    assert_eq!(b.unit(), BudgetUnit::Tokens);
    assert_eq!(b.limit(), 500.0);
    assert_eq!(b.period(), BudgetPeriod::Hour);
    assert!(b.is_rolling());
    assert!(!b.clone().calendar().is_rolling());
    assert_eq!(b.scope(), &BudgetScope::Tag("batch".into()));
    assert_eq!(b.action(), &OverBudget::Downgrade("cheap".into()));
    assert_eq!(b.warning_at(), Some(0.5));
    let d = Budget::usd("u", 2.5);
    assert_eq!(
        (d.period(), d.is_rolling(), d.scope(), d.action()),
        (
            BudgetPeriod::Day,
            false,
            &BudgetScope::Global,
            &OverBudget::Reject
        )
    );
}
