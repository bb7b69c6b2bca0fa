//! Calendar windows: resets at the UTC boundaries, a call straddling a turn, a window left
//! alone for years.

use super::*;

#[test]
fn civil_dates_match_known_epochs() {
    assert_eq!(
        utc(2026, 12, 31, 23, 59, 30),
        UNIX_EPOCH + secs(1_798_761_570)
    );
    assert_eq!(utc(2028, 2, 29, 0, 0, 0), UNIX_EPOCH + secs(1_835_395_200));
    assert_eq!(utc(2028, 3, 1, 0, 0, 0), UNIX_EPOCH + secs(1_835_481_600));
    assert_eq!(utc(2000, 2, 29, 0, 0, 0), UNIX_EPOCH + secs(951_782_400));
    for day in -800_000..800_000 {
        let (y, m, d) = civil_from_days(day);
        assert_eq!(days_from_civil(y, m, d), day);
    }
}

#[tokio::test(start_paused = true)]
async fn calendar_windows_reset_at_the_new_year() {
    let all = |p| Budget::usd(format!("{p:?}"), 1.0).per(p);
    let periods = [
        BudgetPeriod::Minute,
        BudgetPeriod::Hour,
        BudgetPeriod::Day,
        BudgetPeriod::Month,
    ];
    let b = budgets(
        periods.iter().map(|&p| all(p)).collect(),
        utc(2026, 12, 31, 23, 59, 30),
    );
    b.reserve(&q("chat"), usd(0.9))
        .unwrap()
        .settle(&b, usd(0.9), Instant::now());
    for s in b.status() {
        assert!(close(s.spent, 0.9), "{s:?}");
        assert_eq!(s.resets_at, utc(2027, 1, 1, 0, 0, 0), "{s:?}");
    }
    tokio::time::advance(secs(29)).await;
    assert!(b.status().iter().all(|s| close(s.spent, 0.9)));
    tokio::time::advance(secs(1)).await;
    for s in b.status() {
        assert!(close(s.spent, 0.0), "{s:?}");
    }
    let next: Vec<_> = b.status().iter().map(|s| s.resets_at).collect();
    assert_eq!(
        next,
        [
            utc(2027, 1, 1, 0, 1, 0),
            utc(2027, 1, 1, 1, 0, 0),
            utc(2027, 1, 2, 0, 0, 0),
            utc(2027, 2, 1, 0, 0, 0),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn calendar_windows_in_a_leap_february() {
    let b = budgets(
        vec![
            Budget::tokens("minute", 100).per(BudgetPeriod::Minute),
            Budget::tokens("hour", 100).per(BudgetPeriod::Hour),
            Budget::tokens("day", 100).per(BudgetPeriod::Day),
            Budget::tokens("month", 100).per(BudgetPeriod::Month),
        ],
        utc(2028, 2, 28, 23, 59, 59),
    );
    b.reserve(&q("chat"), tokens(60))
        .unwrap()
        .settle(&b, tokens(60), Instant::now());
    assert_eq!(status(&b, "day").resets_at, utc(2028, 2, 29, 0, 0, 0));
    assert_eq!(status(&b, "month").resets_at, utc(2028, 3, 1, 0, 0, 0));
    tokio::time::advance(secs(1)).await;
    let spent: Vec<f64> = b.status().iter().map(|s| s.spent).collect();
    assert_eq!(spent, [0.0, 0.0, 0.0, 60.0]);
    // The month budget still refuses until March.
    assert!(b.reserve(&q("chat"), tokens(50)).is_err());
    tokio::time::advance(secs(86_400 - 1)).await;
    assert_eq!(status(&b, "month").spent, 60.0);
    tokio::time::advance(secs(1)).await;
    assert_eq!(status(&b, "month").spent, 0.0);
    assert_eq!(status(&b, "month").resets_at, utc(2028, 4, 1, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn calendar_windows_mid_month() {
    let b = budgets(
        vec![
            Budget::usd("minute", 1.0).per(BudgetPeriod::Minute),
            Budget::usd("hour", 1.0).per(BudgetPeriod::Hour),
            Budget::usd("day", 1.0),
            Budget::usd("month", 1.0).per(BudgetPeriod::Month),
        ],
        utc(2026, 5, 10, 10, 20, 30),
    );
    let resets: Vec<_> = b.status().iter().map(|s| s.resets_at).collect();
    assert_eq!(
        resets,
        [
            utc(2026, 5, 10, 10, 21, 0),
            utc(2026, 5, 10, 11, 0, 0),
            utc(2026, 5, 11, 0, 0, 0),
            utc(2026, 6, 1, 0, 0, 0),
        ]
    );
}

/// A 100-token minute budget, 90 of them spent, at 12:00:30.
fn minute_budget_with_90_spent() -> Budgets {
    let b = budgets(
        vec![Budget::tokens("m", 100).per(BudgetPeriod::Minute)],
        utc(2026, 5, 10, 12, 0, 30),
    );
    b.reserve(&q("chat"), tokens(90))
        .unwrap()
        .settle(&b, tokens(90), Instant::now());
    b
}

#[tokio::test(start_paused = true)]
async fn a_call_that_started_as_the_window_turned_counts_in_the_new_one() {
    let b = minute_budget_with_90_spent();
    let before = Instant::now();
    tokio::time::advance(secs(30)).await;
    // Another call moved the window; one whose clock read came just before reserves after.
    let c1 = b.reserve(&q("chat"), tokens(40)).unwrap();
    let c2 = b.reserve_at(&q("chat"), tokens(50), before).unwrap();
    let s = status(&b, "m");
    assert_eq!((s.spent, s.reserved), (0.0, 90.0));
    assert!(b.reserve(&q("chat"), tokens(11)).is_err());
    c2.settle(&b, tokens(5), Instant::now());
    c1.settle(&b, tokens(5), Instant::now());
    let s = status(&b, "m");
    assert_eq!((s.spent, s.reserved), (10.0, 0.0));
}

#[tokio::test(start_paused = true)]
async fn a_window_left_alone_for_years_starts_empty() {
    let b = minute_budget_with_90_spent();
    // Eight million minutes (sixteen years) later: half the packed window numbers away.
    tokio::time::advance(secs(60 << 23)).await;
    let s = status(&b, "m");
    assert_eq!((s.spent, s.reserved), (0.0, 0.0));
    b.reserve(&q("chat"), tokens(100))
        .unwrap()
        .settle(&b, tokens(100), Instant::now());
    assert_eq!(status(&b, "m").spent, 100.0);
}
