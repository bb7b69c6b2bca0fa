//! Concurrency: many tasks and threads racing on the windows lose nothing and never
//! overshoot a limit.

use super::*;

/// 64 tasks reserving 0.03 at once on the budgets, released together.
async fn race(b: &Arc<Budgets>) -> Vec<(&'static str, Charge)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (b, barrier) = (Arc::clone(b), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let route = if i % 2 == 0 { "chat" } else { "code" };
                b.reserve(&q(route), usd(0.03)).ok().map(|c| (route, c))
            })
        })
        .collect();
    let mut charges = Vec::new();
    for t in tasks {
        if let Some(c) = t.await.unwrap() {
            charges.push(c);
        }
    }
    charges
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_updates_and_settles_lose_nothing() {
    let start = utc(2026, 6, 15, 12, 0, 0);
    let b = Arc::new(budgets(
        vec![
            // Below 2^38 tokens: counted in single tokens, exactly.
            Budget::tokens("calendar", 100_000_000_000),
            Budget::tokens("rolling", 100_000_000_000).rolling(),
        ],
        start,
    ));
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                let mut settled = 0;
                for i in 0..2_000u64 {
                    let n = 1 + (task * 7 + i * 13) % 97;
                    let c = b.reserve(&q("chat"), tokens(n)).unwrap();
                    if i % 3 == 0 {
                        c.update(&b, tokens(n + 5));
                    }
                    if i % 5 == 0 {
                        // Kept: what is charged becomes spend.
                        settled += if i % 3 == 0 { n + 5 } else { n };
                        c.keep(&b);
                    } else {
                        settled += n / 2;
                        c.settle(&b, tokens(n / 2), Instant::now());
                    }
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                settled
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    for s in b.status() {
        assert_eq!((s.spent, s.reserved), (total as f64, 0.0), "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_at_the_edge_never_overshoot() {
    let start = utc(2026, 6, 15, 12, 0, 0);
    for round in 0..20 {
        let global = if round % 2 == 0 {
            Budget::usd("global", 1.0)
        } else {
            Budget::usd("global", 1.0).rolling()
        };
        let b = Arc::new(budgets(vec![global], start));
        let charges = race(&b).await;
        // floor(1.00 / 0.03)
        assert_eq!(charges.len(), 33, "round {round}");
        let s = &b.status()[0];
        assert!(s.reserved <= 1.0 && close(s.reserved, 0.99), "{s:?}");
        for (_, c) in charges {
            c.keep(&b);
        }
        let s = &b.status()[0];
        assert!(close(s.spent, 0.99) && close(s.reserved, 0.0), "{s:?}");

        // Two budgets: a request the route's budget refuses gives the global one back,
        // and neither is ever over its limit.
        let b = Arc::new(budgets(
            vec![
                Budget::usd("global", 1.0),
                Budget::usd("chat", 0.5).for_route("chat"),
            ],
            start,
        ));
        let charges = race(&b).await;
        let chat = charges.iter().filter(|(r, _)| *r == "chat").count();
        let s = b.status();
        assert!(charges.len() <= 33 && chat <= 16, "round {round}");
        assert!(close(s[0].reserved, 0.03 * charges.len() as f64), "{s:?}");
        assert!(close(s[1].reserved, 0.03 * chat as f64), "{s:?}");
        assert!(s[0].reserved <= 1.0 && s[1].reserved <= 0.5, "{s:?}");
    }
}

fn rolling(b: &Budgets) -> RollingAt<'_> {
    let Window::Rolling(r) = &b.budgets[0].window else {
        unreachable!("a rolling budget")
    };
    b.rolling(r).unwrap()
}

/// Many threads reserving, raising and settling on a rolling window while their clocks
/// cross several windows' worth of slots: whatever the interleaving with the slots'
/// expiry, the total stays the sum of the live slots, and a window later it is empty.
#[test]
fn a_rolling_total_stays_exact_while_slots_expire_under_it() {
    let start = utc(2026, 6, 15, 12, 0, 0);
    let b = Arc::new(budgets(
        vec![
            Budget::tokens("rolling", 100_000_000_000)
                .per(BudgetPeriod::Minute)
                .rolling(),
        ],
        start,
    ));
    let base = b.clock.now();
    // Status and refusals read the slots meanwhile.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (b, done) = (Arc::clone(&b), Arc::clone(&done));
        std::thread::spawn(move || {
            let r = rolling(&b);
            let mut k = 0u64;
            while !done.load(Ordering::Relaxed) {
                let now = base + (k % 200) * NS_PER_SEC;
                let (spent, reserved, _) = r.status(now);
                assert!(spent.saturating_add(reserved) < 1 << 40);
                r.refusal_resets_at(10, now, r.head.load(Ordering::Acquire));
                k += 1;
            }
        })
    };
    let threads: Vec<_> = (0..8u64)
        .map(|thread| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let (t, r) = (&b.budgets[0], rolling(&b));
                let mut none = SmallVec::new();
                for i in 0..4_000u64 {
                    // 40 ms a step, each thread's clock a little off the others': the
                    // head crosses 160 one-second slots, under the threads' feet. Now
                    // and then a clock is behind the head, or more than a window ahead.
                    let step = base + i * 40_000_000 + thread * 7_000_000;
                    let now = match (i * 7 + thread) % 23 {
                        0 => step.saturating_sub(10 * NS_PER_SEC),
                        1 => step + 75 * NS_PER_SEC,
                        _ => step,
                    };
                    let n = 1 + (thread * 7 + i * 13) % 97;
                    let token = r.reserve(t.cap_at(now), n, now, &mut none, 0).ok().unwrap();
                    let (token, charged, _) = match i % 3 {
                        0 => r.update(token, n, n + 5, now + 1_000_000),
                        1 => r.update(token, n, n / 2, now + 1_000_000),
                        _ => (token, n, None),
                    };
                    // Some settle seconds later, after their slot may have left.
                    let late = (i % 7) * 900_000_000;
                    match i % 11 {
                        0 => r.release(token, charged, None),
                        1 => drop(r.put(now + late, n)),
                        _ => drop(r.settle(token, charged, n / 2, now + late)),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let r = rolling(&b);
    let end = base + 4_000 * 40_000_000 + 90 * NS_PER_SEC;
    let head = r.advance(end);
    let live: u64 = r.live(head).map(|(_, used, _)| used).sum();
    assert!(live > 0);
    assert_eq!(r.total.load(Ordering::Relaxed), live);
    r.advance(end + 61 * NS_PER_SEC);
    assert_eq!(r.total.load(Ordering::Relaxed), 0);
    assert_eq!(r.status(end + 61 * NS_PER_SEC).0, 0);
}
