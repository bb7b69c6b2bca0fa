//! The ledger and the charge: reserving, settling, keeping, scopes, units and events.

use super::*;

#[tokio::test(start_paused = true)]
async fn rejects_at_the_limit_with_the_right_fields() {
    let b = budgets(
        vec![Budget::usd("daily", 1.0).downgrade_to("cheap")],
        utc(2026, 5, 10, 12, 0, 0),
    );
    let c1 = b.reserve(&q("chat"), usd(0.6)).unwrap();
    let r = b.reserve(&q("chat"), usd(0.5)).unwrap_err();
    assert_eq!(r.action, OverBudget::Downgrade("cheap".into()));
    let e = r.exceeded;
    assert_eq!(e.budget, "daily");
    assert_eq!(e.unit, BudgetUnit::Usd);
    assert!(close(e.spent, 0.6) && close(e.limit, 1.0) && close(e.estimate, 0.5));
    assert_eq!(e.resets_at, utc(2026, 5, 11, 0, 0, 0));
    // Exactly at the limit fits; one nano-dollar more does not.
    let c2 = b.reserve(&q("chat"), usd(0.4)).unwrap();
    assert!(b.reserve(&q("chat"), usd(1e-9)).is_err());
    let s = status(&b, "daily");
    assert!(close(s.reserved, 1.0) && close(s.spent, 0.0));
    drop((c1, c2));
}

#[tokio::test(start_paused = true)]
async fn an_estimate_above_the_whole_limit_is_refused() {
    let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
    let e = b.reserve(&q("chat"), usd(1.5)).unwrap_err().exceeded;
    assert!(close(e.spent, 0.0) && close(e.estimate, 1.5));
    let r = budgets(
        vec![Budget::usd("r", 1.0).per(BudgetPeriod::Minute).rolling()],
        utc(2026, 5, 10, 12, 0, 0),
    );
    let e = r.reserve(&q("chat"), usd(1.5)).unwrap_err().exceeded;
    assert_eq!(e.resets_at, utc(2026, 5, 10, 12, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn settle_below_the_estimate_frees_room() {
    let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
    let c = b.reserve(&q("chat"), usd(0.8)).unwrap();
    assert!(b.reserve(&q("chat"), usd(0.5)).is_err());
    c.settle(&b, usd(0.2), Instant::now());
    let s = status(&b, "d");
    assert!(close(s.spent, 0.2) && close(s.reserved, 0.0));
    b.reserve(&q("chat"), usd(0.8))
        .unwrap()
        .settle(&b, usd(0.8), Instant::now());
    assert!(close(status(&b, "d").spent, 1.0));
}

#[tokio::test(start_paused = true)]
async fn keep_and_drop_keep_the_estimate() {
    for rolling in [false, true] {
        let d = Budget::usd("d", 1.0);
        let d = if rolling { d.rolling() } else { d };
        let b = budgets(vec![d], utc(2026, 5, 10, 12, 0, 0));
        b.reserve(&q("chat"), usd(0.5)).unwrap().keep(&b);
        let s = status(&b, "d");
        assert!(close(s.spent, 0.5) && close(s.reserved, 0.0), "{s:?}");
        // Bound, a charge dropped unsettled keeps itself too.
        drop(BoundCharge::new(
            &b,
            b.reserve(&q("chat"), usd(0.2)).unwrap(),
        ));
        let s = status(&b, "d");
        assert!(close(s.spent, 0.7) && close(s.reserved, 0.0), "{s:?}");
        // Unbound and dropped, it stays reserved: still counted.
        drop(b.reserve(&q("chat"), usd(0.2)).unwrap());
        let s = status(&b, "d");
        assert!(close(s.spent, 0.7) && close(s.reserved, 0.2), "{s:?}");
        assert!(b.reserve(&q("chat"), usd(0.2)).is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn update_raises_the_charge_of_a_stream() {
    let b = budgets(vec![Budget::usd("d", 1.0)], utc(2026, 5, 10, 12, 0, 0));
    let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
    c.update(&b, usd(0.5));
    assert!(close(status(&b, "d").reserved, 0.5));
    c.update(&b, usd(0.3)); // never below what is charged
    assert!(close(status(&b, "d").reserved, 0.5));
    assert!(b.reserve(&q("chat"), usd(0.6)).is_err());
    c.update(&b, usd(0.7));
    c.keep(&b);
    let s = status(&b, "d");
    assert!(close(s.spent, 0.7) && close(s.reserved, 0.0));
    let c = b.reserve(&q("chat"), usd(0.1)).unwrap();
    c.update(&b, usd(0.2));
    c.settle(&b, usd(0.25), Instant::now());
    assert!(close(status(&b, "d").spent, 0.95));
}

#[tokio::test(start_paused = true)]
async fn all_or_nothing_across_budgets() {
    let start = utc(2026, 5, 10, 12, 0, 0);
    // The global budget is taken first, then the route's refuses: the global is given back.
    let b = budgets(
        vec![
            Budget::usd("global", 10.0),
            Budget::usd("chat", 1.0).for_route("chat"),
        ],
        start,
    );
    let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
    assert_eq!(e.budget, "chat");
    assert!(close(status(&b, "global").reserved, 0.0));
    let c = b.reserve(&q("chat"), usd(0.5)).unwrap();
    assert!(close(status(&b, "global").reserved, 0.5));
    assert!(close(status(&b, "chat").reserved, 0.5));
    // Other routes are held by the global budget only.
    let other = b.reserve(&q("code"), usd(5.0)).unwrap();
    assert!(close(status(&b, "chat").reserved, 0.5));
    c.settle(&b, usd(0.5), Instant::now());
    other.settle(&b, usd(5.0), Instant::now());

    // The other order: the route's budget is taken, then the global one refuses.
    let b = budgets(
        vec![
            Budget::usd("chat", 10.0).for_route("chat"),
            Budget::usd("global", 1.0),
        ],
        start,
    );
    let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
    assert_eq!(e.budget, "global");
    assert!(close(status(&b, "chat").reserved, 0.0));
}

#[tokio::test(start_paused = true)]
async fn scopes_match_route_intent_label_and_tag() {
    let b = budgets(
        vec![
            Budget::tokens("route", 1000).for_route("chat"),
            Budget::tokens("intent", 1000).for_intent("code"),
            Budget::tokens("tag", 1000).for_tag("batch"),
        ],
        utc(2026, 5, 10, 12, 0, 0),
    );
    let none = b.reserve(&q("other"), tokens(10)).unwrap();
    assert!(none.is_empty() && !none.held.spilled());

    let reserved = |b: &Budgets| -> Vec<f64> { b.status().iter().map(|s| s.reserved).collect() };
    let c = b.reserve(&q("chat"), tokens(1)).unwrap();
    assert!(!c.is_empty());
    assert_eq!(reserved(&b), [1.0, 0.0, 0.0]);
    c.keep(&b);

    let hint = BudgetQuery {
        intent: Some("code"),
        ..q("other")
    };
    let _c1 = b.reserve(&hint, tokens(2)).unwrap();
    // A request label is a tag (not an intent).
    let labels = ["math".to_owned(), "batch".to_owned(), "code".to_owned()];
    let label = BudgetQuery {
        labels: &labels,
        ..q("other")
    };
    let _c2 = b.reserve(&label, tokens(3)).unwrap();
    let wrong = BudgetQuery {
        intent: Some("chat"),
        labels: &labels[..1],
        ..q("other")
    };
    assert!(b.reserve(&wrong, tokens(100)).unwrap().is_empty());
    assert_eq!(reserved(&b), [0.0, 2.0, 3.0]);

    let tags = ["x".to_owned(), "batch".to_owned()];
    let tagged = BudgetQuery {
        tags: &tags,
        ..q("chat")
    };
    let _c3 = b.reserve(&tagged, tokens(4)).unwrap();
    assert_eq!(reserved(&b), [4.0, 2.0, 7.0]);
    let untagged = BudgetQuery {
        tags: &tags[..1],
        ..q("other")
    };
    assert!(b.reserve(&untagged, tokens(4)).unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn large_limits_count_in_coarser_units() {
    let b = budgets(
        vec![
            Budget::usd("big", 2_000_000.0).per(BudgetPeriod::Month),
            Budget::tokens("huge", u64::MAX / 2),
            Budget::usd("big-rolling", 2_000_000.0)
                .per(BudgetPeriod::Month)
                .rolling(),
        ],
        utc(2026, 5, 10, 12, 0, 0),
    );
    assert!(
        b.budgets
            .iter()
            .all(|t| t.shift > 0 && t.limit <= LIMIT_MAX)
    );
    let big = Spend {
        usd: Some(1_999_999.0),
        tokens: u64::MAX / 4,
    };
    let c = b.reserve(&q("chat"), big).unwrap();
    // A coarser unit is still far below a cent: two dollars more do not fit.
    let e = b.reserve(&q("chat"), usd(2.0)).unwrap_err().exceeded;
    assert_eq!(e.budget, "big");
    assert!((e.spent - 1_999_999.0).abs() < 1e-3, "{e:?}");
    let _small = b.reserve(&q("chat"), usd(0.5)).unwrap();
    c.settle(&b, big, Instant::now());
    let s = b.status();
    assert!((s[0].spent - 1_999_999.0).abs() < 1e-3 && (s[0].reserved - 0.5).abs() < 1e-3);
    assert!(
        (s[1].spent / (u64::MAX / 4) as f64 - 1.0).abs() < 1e-9,
        "{s:?}"
    );
    assert!((s[2].spent - 1_999_999.0).abs() < 1e-3 && (s[2].reserved - 0.5).abs() < 1e-3);
}

#[tokio::test(start_paused = true)]
async fn token_budgets_count_tokens() {
    let b = budgets(
        vec![Budget::tokens("t", 1000).per(BudgetPeriod::Hour)],
        utc(2026, 5, 10, 10, 20, 30),
    );
    let c = b
        .reserve(
            &q("chat"),
            Spend {
                usd: Some(5.0),
                tokens: 600,
            },
        )
        .unwrap();
    let e = b.reserve(&q("chat"), tokens(500)).unwrap_err().exceeded;
    assert_eq!(e.unit, BudgetUnit::Tokens);
    assert_eq!((e.spent, e.limit, e.estimate), (600.0, 1000.0, 500.0));
    assert_eq!(e.resets_at, utc(2026, 5, 10, 11, 0, 0));
    c.settle(&b, tokens(450), Instant::now());
    b.reserve(&q("chat"), tokens(550))
        .unwrap()
        .settle(&b, tokens(550), Instant::now());
    let s = status(&b, "t");
    assert_eq!(
        (s.spent, s.reserved, s.unit),
        (1000.0, 0.0, BudgetUnit::Tokens)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_price_counts_zero_on_a_usd_budget() {
    let b = budgets(
        vec![Budget::usd("usd", 1.0), Budget::tokens("tok", 1000)],
        utc(2026, 5, 10, 12, 0, 0),
    );
    let shared = &b;
    assert!(
        !shared.budgets[0]
            .unknown_price_logged
            .load(Ordering::Relaxed)
    );
    let c = b.reserve(&q("chat"), tokens(100)).unwrap();
    assert!(
        shared.budgets[0]
            .unknown_price_logged
            .load(Ordering::Relaxed)
    );
    assert!(
        !shared.budgets[1]
            .unknown_price_logged
            .load(Ordering::Relaxed)
    );
    c.update(&b, tokens(200));
    c.settle(&b, tokens(300), Instant::now());
    let s = b.status();
    assert_eq!((s[0].spent, s[0].reserved), (0.0, 0.0));
    assert_eq!(s[1].spent, 300.0);
}

#[tokio::test(start_paused = true)]
async fn warning_and_exhausted_events_once_per_window() {
    let (b, log) = recorded(
        vec![Budget::usd("m", 1.0).per(BudgetPeriod::Minute).warn_at(0.5)],
        utc(2026, 5, 10, 12, 0, 0),
    );
    let take = || std::mem::take(&mut *log.lock().unwrap());
    for _ in 0..2 {
        b.reserve(&q("chat"), usd(0.3))
            .unwrap()
            .settle(&b, usd(0.3), Instant::now());
        assert!(take().is_empty());
        b.reserve(&q("chat"), usd(0.3))
            .unwrap()
            .settle(&b, usd(0.3), Instant::now());
        let ev = take();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].1, BudgetEventKind::Warning);
        assert!(close(ev[0].2, 0.6) && close(ev[0].3, 1.0));
        b.reserve(&q("chat"), usd(0.3))
            .unwrap()
            .settle(&b, usd(0.3), Instant::now());
        assert!(take().is_empty());
        assert!(b.reserve(&q("chat"), usd(0.3)).is_err());
        let ev = take();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].0.as_str(), ev[0].1),
            ("m", BudgetEventKind::Exhausted)
        );
        assert!(close(ev[0].2, 0.9));
        assert!(b.reserve(&q("chat"), usd(0.3)).is_err());
        assert!(b.reserve(&q("chat"), usd(0.5)).is_err());
        assert!(take().is_empty());
        tokio::time::advance(secs(60)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_takes_back_its_warning() {
    let (b, log) = recorded(
        vec![
            Budget::usd("global", 1.0).warn_at(0.5),
            Budget::usd("chat", 0.5).for_route("chat"),
        ],
        utc(2026, 5, 10, 12, 0, 0),
    );
    assert!(b.reserve(&q("chat"), usd(0.6)).is_err());
    let ev = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1),
        ("chat", BudgetEventKind::Exhausted)
    );
    let _c = b.reserve(&q("code"), usd(0.6)).unwrap();
    let ev = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1),
        ("global", BudgetEventKind::Warning)
    );
}

/// However the budgets mix, each one's counters sit on one cache line.
#[test]
fn each_budgets_counters_sit_on_one_line() {
    let list = (0..9)
        .map(|i| {
            let b = Budget::tokens(format!("b{i}"), 100);
            if i % 3 == 1 { b.rolling() } else { b }
        })
        .collect();
    let b = Budgets::with_clock_start(list, None, utc(2026, 5, 10, 12, 0, 0)).unwrap();
    let mut seen = HashSet::new();
    for t in b.budgets.iter() {
        let (first, n) = match &t.window {
            Window::Calendar(c) => (c.counters, 2),
            Window::Rolling(r) => (r.counters, 3),
        };
        assert_eq!(first / WORDS_PER_LINE, (first + n - 1) / WORDS_PER_LINE);
        assert!((first..first + n).all(|w| seen.insert(w)), "shared words");
    }
    assert!(b.lines.len() <= 4, "{} lines", b.lines.len());
}
