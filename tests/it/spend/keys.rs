//! Key pools.

use super::*;

#[derive(Clone, Default)]
struct KeyLog(Arc<Mutex<Vec<String>>>);

impl Observer for KeyLog {
    fn key_state(&self, e: &polyrelay::accounting::KeyEvent<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {:?} {}", e.key.index, e.state, e.error));
    }
}

fn pooled(sim: &Simulator, log: &KeyLog) -> Relay {
    mini_then_4o(sim)
        .key_pool("sim", KeyPool::new().key("sk-one-AAAA").key("sk-two-BBBB"))
        .observer(log.clone())
        .build()
        .unwrap()
}

fn keys_sent(sim: &Simulator, model: &str) -> Vec<String> {
    sim.requests_for(model)
        .iter()
        .map(|r| r.header("authorization").unwrap_or("-").to_owned())
        .collect()
}

/// OpenAI's answer to a key whose quota is spent (as recorded).
fn out_of_quota() -> Reply {
    Reply::openai_error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota, please check your plan and billing details.",
    )
}

#[tokio::test]
async fn a_key_out_of_quota_is_parked_and_the_next_key_serves() {
    let sim = sim().await;
    sim.script("gpt-4o-mini", [out_of_quota(), Reply::text("ok")]);
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    let first = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(first.text(), "ok");
    // The next key of the same provider, before the next target.
    assert_eq!(first.meta.attempts.len(), 2);
    assert!(
        first
            .meta
            .attempts
            .iter()
            .all(|a| a.target.model.as_ref() == "gpt-4o-mini")
    );
    assert_eq!(
        first.meta.attempts[0].failure(),
        Some(ErrorKind::QuotaExhausted)
    );
    for _ in 0..3 {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    }
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    assert!(sim.requests_for("gpt-4o").is_empty());
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini.keys.len(), 2);
    assert!(
        matches!(mini.keys[0].state, KeyState::Parked { for_ms } if for_ms > 3_000_000),
        "{:?}",
        mini.keys[0]
    );
    assert_eq!(mini.keys[1].state, KeyState::Ready);
    // The key's failure is not the target's: its breaker saw no failure.
    assert_eq!(mini.consecutive_failures, 0);
    let events = log.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("0 Parked"), "{events:?}");
}

#[tokio::test]
async fn a_reload_keeps_the_pool_keys_state() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            out_of_quota(),
            Reply::openai_error(401, "invalid_request_error", Some("invalid_api_key"), "no"),
            Reply::text("ok"),
        ],
    );
    let pool = || {
        KeyPool::new()
            .key("sk-one-AAAA")
            .key("sk-two-BBBB")
            .key("sk-three-CCCC")
    };
    let builder = |pool: KeyPool| mini_then_4o(&sim).key_pool("sim", pool);
    let relay = builder(pool()).build().unwrap();
    // Key 0 is out of quota, key 1 refused, key 2 serves.
    let r = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(r.meta.attempts.len(), 3);
    let states = |relay: &Relay| -> Vec<KeyState> {
        let h = relay.health();
        let mini = h
            .iter()
            .find(|t| &*t.target.model == "gpt-4o-mini")
            .unwrap();
        mini.keys.iter().map(|k| k.state.clone()).collect()
    };
    let before = states(&relay);
    assert!(matches!(before[0], KeyState::Parked { .. }), "{before:?}");
    assert_eq!(before[1..], [KeyState::Invalid, KeyState::Ready]);

    // The same keys, reordered, and a route more: the parked key stays parked, the invalid
    // one gets another chance, the counts go on.
    let reordered = KeyPool::new()
        .key("sk-three-CCCC")
        .key("sk-two-BBBB")
        .key("sk-one-AAAA");
    relay
        .reload(builder(reordered).route("other", Chain::of(["sim/gpt-4o"])))
        .unwrap();
    let after = states(&relay);
    assert_eq!(after[..2], [KeyState::Ready, KeyState::Ready], "{after:?}");
    assert!(matches!(after[2], KeyState::Parked { .. }), "{after:?}");
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!((mini.keys[0].served, mini.keys[2].failures), (1, 1));
    for _ in 0..4 {
        relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    }
    let sent = keys_sent(&sim, "gpt-4o-mini");
    assert!(
        sent[3..].iter().all(|k| k != "Bearer sk-one-AAAA"),
        "the parked key was sent: {sent:?}"
    );
    assert!(
        sent[3..].iter().any(|k| k == "Bearer sk-two-BBBB"),
        "{sent:?}"
    );

    // A new key starts ready; a rebuilt relay forgets everything.
    relay.reload(builder(pool().key("sk-four-DDDD"))).unwrap();
    let after = states(&relay);
    assert!(matches!(after[0], KeyState::Parked { .. }), "{after:?}");
    assert_eq!(after[3], KeyState::Ready);
    let fresh = builder(pool()).build().unwrap();
    assert!(states(&fresh).iter().all(|s| *s == KeyState::Ready));
}

#[tokio::test]
async fn a_429_rests_the_key_not_the_target() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "20"),
            Reply::text("ok"),
        ],
    );
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    let started = std::time::Instant::now();
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    // No 20 s wait: the other key went at once.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(resp.meta.attempts.len(), 2);
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert!(
        matches!(mini.keys[0].state, KeyState::Resting { for_ms } if (15_000..=20_000).contains(&for_ms)),
        "{:?}",
        mini.keys[0]
    );
    assert_eq!(mini.state, polyrelay::BreakerState::Closed);
    assert_eq!(mini.consecutive_failures, 0);
}

#[tokio::test]
async fn an_invalid_key_is_parked_and_reported_and_keys_never_show() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided.",
            ),
            Reply::text("ok"),
        ],
    );
    let log = KeyLog::default();
    let relay = pooled(&sim, &log);
    relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    let h = relay.health();
    let mini = h
        .iter()
        .find(|t| &*t.target.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini.keys[0].state, KeyState::Invalid);
    assert_eq!(log.0.lock().unwrap().len(), 1);
    assert!(log.0.lock().unwrap()[0].starts_with("0 Invalid"));
    // Every key refused: the error names keys by label only.
    sim.script(
        "gpt-4o-mini",
        [Reply::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        )],
    );
    sim.script(
        "gpt-4o",
        [Reply::openai_error(500, "server_error", None, "down")],
    );
    let err = relay
        .chat(ChatRequest::new("r").user("hi"))
        .await
        .unwrap_err();
    let shown = format!(
        "{err} {err:?} {:?} {:?} {}",
        relay.health(),
        relay,
        serde_json::to_string(&mini.keys).unwrap()
    );
    for secret in ["sk-one-AAAA", "sk-two-BBBB", "AAAA", "BBBB"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

#[tokio::test]
async fn a_streams_tokens_are_reconciled_on_its_pool_keys_limit() {
    let sim = sim().await;
    // Key 0's stream reports 2,050 tokens, against each key's 1,000 a minute.
    sim.script(
        "gpt-4o-mini",
        [
            Reply::sse(tokens("s", 0, 50, 2000)),
            Reply::text("two"),
            Reply::text("three"),
        ],
    );
    let relay = mini_then_4o(&sim)
        .key_pool(
            "sim",
            KeyPool::new()
                .key("sk-one-AAAA")
                .key("sk-two-BBBB")
                .limit_each(RateLimit::new().tokens_per_minute(1000)),
        )
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("hi").max_tokens(10);
    let streamed = folded(&relay, &req).await.unwrap();
    assert_eq!(streamed.usage.unwrap().total_tokens(), 2050);
    let key = streamed.meta.attempts[0].key.clone().expect("a pool key");
    assert_eq!(key.index, 0);
    // Round robin: key 1, then key 0 again, except that key 0's minute is spent (and more),
    // so key 1 serves once more, and no request goes over a key's limit.
    for _ in 0..2 {
        let r = relay.chat(&req).await.unwrap();
        assert_eq!(r.meta.attempts.len(), 1);
        assert_eq!(r.meta.attempts[0].key.as_ref().map(|k| k.index), Some(1));
    }
    assert_eq!(
        keys_sent(&sim, "gpt-4o-mini"),
        [
            "Bearer sk-one-AAAA",
            "Bearer sk-two-BBBB",
            "Bearer sk-two-BBBB"
        ]
    );
    // Keys are named, never shown.
    let shown = format!("{:?}", streamed.meta.attempts);
    assert!(
        !shown.contains("sk-one") && shown.contains(&key.fingerprint),
        "{shown}"
    );
}
