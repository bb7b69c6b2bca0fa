//! 3. A target that went silent is not retried; a reset or a refusal is.

use super::*;

async fn silent_target_is_not_retried(mode: Mode) {
    let sim = Simulator::start().await.unwrap();
    // Accepts the request, says nothing for 2 s, then closes the connection.
    sim.script("primary", [Reply::close().delay(Duration::from_secs(2))]);
    sim.script("fallback", [Reply::openai_text("from the fallback")]);
    let relay = relay(&sim, primary_fallback());
    let close = async {
        sim.wait_for_requests(1).await;
        sim.requests()[0].closed().await;
        Instant::now()
    };
    let (resp, closed_at) = guarded(async { tokio::join!(call(&relay, mode), close) }).await;
    let resp = resp.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert_eq!(resp.text(), "from the fallback", "{mode:?}");
    assert_eq!(served_model(&resp.meta), "sim/fallback", "{mode:?}");
    let primary = sim.requests_for("primary");
    let fallback = sim.requests_for("fallback");
    assert_eq!(primary.len(), 1, "{mode:?}: a silent target is not retried");
    assert_eq!(fallback.len(), 1, "{mode:?}");
    assert!(
        fallback[0].at >= primary[0].at + Duration::from_secs(2),
        "{mode:?}: the relay waited for the close"
    );
    let after_close = fallback[0].at.saturating_duration_since(closed_at);
    assert!(
        after_close < Duration::from_millis(500),
        "{mode:?}: failed over at once, not after a backoff: {after_close:?}"
    );
    assert_eq!(
        outcomes(&resp.meta),
        [o("primary", Some(ErrorKind::Connect)), o("fallback", None)],
        "{mode:?}"
    );
    assert!(
        resp.meta.attempts[0].latency >= Duration::from_secs(2),
        "{mode:?}"
    );
    assert_eq!(resp.meta.attempts[0].status, None, "{mode:?}");
    assert_truthful(&resp.meta);
}

#[tokio::test]
async fn a_target_that_went_silent_is_not_retried() {
    silent_target_is_not_retried(Mode::Plain).await;
}

#[tokio::test]
async fn a_target_that_went_silent_is_not_retried_streamed() {
    silent_target_is_not_retried(Mode::Streamed).await;
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::reset()]);
        sim.script("fallback", [Reply::openai_text("from the fallback")]);
        let resp = guarded(call(&relay(&sim, primary_fallback()), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "from the fallback", "{mode:?}");
        let primary = sim.requests_for("primary");
        assert_eq!(primary.len(), 2, "{mode:?}: default policy, 2 tries");
        let fallback = sim.requests_for("fallback");
        assert!(
            fallback[0].at - primary[0].at < Duration::from_secs(1),
            "{mode:?}"
        );
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (model(a).to_owned(), a.try_number, a.failure(), a.status))
            .collect();
        assert_eq!(
            seen,
            [
                ("primary".to_owned(), 1, Some(ErrorKind::Connect), None),
                ("primary".to_owned(), 2, Some(ErrorKind::Connect), None),
                ("fallback".to_owned(), 1, None, seen[2].3),
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    // A loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("fallback", [Reply::openai_text("from the fallback")]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .provider(
                "down",
                OpenAi::compatible("down", &format!("http://127.0.0.1:{port}/v1"), "sk-test"),
            )
            .route(
                "r",
                Chain::new()
                    .target("down/m")
                    .target("sim/fallback")
                    .total_timeout(Duration::from_secs(10)),
            )
            .build()
            .unwrap();
        let started = Instant::now();
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(started.elapsed() < Duration::from_secs(2), "{mode:?}");
        assert_eq!(resp.text(), "from the fallback", "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("down/m".to_owned(), 1, Some(ErrorKind::Connect)),
                ("down/m".to_owned(), 2, Some(ErrorKind::Connect)),
                ("sim/fallback".to_owned(), 1, None),
            ],
            "{mode:?}"
        );
        let refused = resp.meta.attempts[0].error.as_ref().unwrap();
        assert!(
            refused.is_connect() && refused.is_retryable(),
            "{mode:?}: {refused}"
        );
        assert_eq!(refused.provider(), Some("down"));
        assert_truthful(&resp.meta);
    }
}
