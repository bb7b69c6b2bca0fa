//! Rolling windows: spend leaving gradually, settles after the window moved, saturation,
//! windows near the epoch.

use super::*;

#[tokio::test(start_paused = true)]
async fn rolling_window_frees_spend_gradually() {
    let start = utc(2026, 5, 10, 12, 0, 0);
    let b = budgets(
        vec![Budget::usd("r", 1.0).per(BudgetPeriod::Minute).rolling()],
        start,
    );
    b.reserve(&q("chat"), usd(0.5))
        .unwrap()
        .settle(&b, usd(0.5), Instant::now());
    tokio::time::advance(secs(30)).await;
    b.reserve(&q("chat"), usd(0.4))
        .unwrap()
        .settle(&b, usd(0.4), Instant::now());
    // The first spend leaving the window makes room.
    let e = b.reserve(&q("chat"), usd(0.3)).unwrap_err().exceeded;
    assert_eq!(e.resets_at, start + secs(60));
    assert_eq!(status(&b, "r").resets_at, start + secs(60));
    // Only both leaving makes room for 0.95.
    let e = b.reserve(&q("chat"), usd(0.95)).unwrap_err().exceeded;
    assert_eq!(e.resets_at, start + secs(90));
    tokio::time::advance(secs(29)).await;
    assert!(close(status(&b, "r").spent, 0.9));
    tokio::time::advance(secs(1)).await;
    assert!(close(status(&b, "r").spent, 0.4));
    assert_eq!(status(&b, "r").resets_at, start + secs(90));
    b.reserve(&q("chat"), usd(0.3))
        .unwrap()
        .settle(&b, usd(0.3), Instant::now());
    tokio::time::advance(secs(30)).await;
    assert!(close(status(&b, "r").spent, 0.3));
    tokio::time::advance(secs(600)).await;
    let s = status(&b, "r");
    assert!(close(s.spent, 0.0) && close(s.reserved, 0.0));
    assert_eq!(s.resets_at, start + secs(690)); // nothing left: now
}

#[tokio::test(start_paused = true)]
async fn a_settle_after_the_window_rolled_counts_in_the_new_window() {
    let b = budgets(
        vec![
            Budget::usd("cal", 1.0).per(BudgetPeriod::Minute),
            Budget::usd("roll", 1.0).per(BudgetPeriod::Minute).rolling(),
        ],
        utc(2026, 12, 31, 23, 59, 30),
    );
    let c = b.reserve(&q("chat"), usd(0.5)).unwrap();
    tokio::time::advance(secs(40)).await;
    // The calendar window rolled and took the reservation; the rolling slot is still in.
    assert!(close(status(&b, "cal").reserved, 0.0));
    assert!(close(status(&b, "roll").reserved, 0.5));
    c.settle(&b, usd(0.7), Instant::now());
    for s in b.status() {
        assert!(close(s.spent, 0.7) && close(s.reserved, 0.0), "{s:?}");
    }

    let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
    tokio::time::advance(secs(120)).await;
    for s in b.status() {
        assert!(close(s.spent, 0.0) && close(s.reserved, 0.0), "{s:?}");
    }
    // Still in flight: an update charges the current windows.
    c.update(&b, usd(0.1));
    for s in b.status() {
        assert!(close(s.reserved, 0.2), "{s:?}");
    }
    c.settle(&b, usd(0.3), Instant::now());
    for s in b.status() {
        assert!(close(s.spent, 0.3) && close(s.reserved, 0.0), "{s:?}");
    }
    // A dropped charge whose window passed counts its charge in the current one too.
    let c = b.reserve(&q("chat"), usd(0.2)).unwrap();
    tokio::time::advance(secs(120)).await;
    c.keep(&b);
    for s in b.status() {
        assert!(close(s.spent, 0.2), "{s:?}");
    }
}

/// Spend reported far beyond the limit (a vendor's usage is not checked) saturates its
/// slot instead of wrapping it, and leaves the window with it: the limit still holds
/// meanwhile, and a window later the budget is whole again.
#[tokio::test(start_paused = true)]
async fn a_huge_reported_spend_saturates_a_rolling_slot_and_leaves_with_it() {
    for huge in [1u64 << 39, 1 << 41, u64::MAX] {
        let b = budgets(
            vec![
                Budget::tokens("r", 1_000_000)
                    .per(BudgetPeriod::Minute)
                    .rolling(),
            ],
            utc(2026, 5, 10, 12, 0, 0),
        );
        let c = b.reserve(&q("chat"), tokens(1_000)).unwrap();
        let d = b.reserve(&q("chat"), tokens(1_000)).unwrap();
        c.settle(&b, tokens(huge), Instant::now());
        assert!(b.reserve(&q("chat"), tokens(1)).is_err(), "{huge}");
        let c = d;
        c.update(&b, tokens(huge));
        c.settle(&b, tokens(huge), Instant::now());
        assert!(b.reserve(&q("chat"), tokens(1)).is_err(), "{huge}");
        tokio::time::advance(secs(61)).await;
        let s = status(&b, "r");
        assert!(
            close(s.spent, 0.0) && close(s.reserved, 0.0),
            "{huge}: {s:?}"
        );
        b.reserve(&q("chat"), tokens(1_000_000))
            .unwrap()
            .settle(&b, tokens(10), Instant::now());
        assert!(close(status(&b, "r").spent, 10.0), "{huge}");
    }
}

/// A clock near the epoch (a device without a real-time clock) leaves some of a rolling
/// window's slots before it.
#[tokio::test(start_paused = true)]
async fn rolling_windows_starting_near_the_epoch() {
    let start = UNIX_EPOCH + secs(10);
    let periods = [
        BudgetPeriod::Minute,
        BudgetPeriod::Hour,
        BudgetPeriod::Day,
        BudgetPeriod::Month,
    ];
    let list = periods
        .iter()
        .enumerate()
        .map(|(i, p)| Budget::tokens(format!("r{i}"), 100).per(*p).rolling())
        .collect();
    let b = budgets(list, start);
    b.reserve(&q("chat"), tokens(60))
        .unwrap()
        .settle(&b, tokens(50), Instant::now());
    assert!(b.reserve(&q("chat"), tokens(60)).is_err());
    for s in b.status() {
        assert!(close(s.spent, 50.0) && close(s.reserved, 0.0), "{s:?}");
    }
    tokio::time::advance(secs(61)).await;
    assert!(close(status(&b, "r0").spent, 0.0));
    assert!(close(status(&b, "r1").spent, 50.0));
}
