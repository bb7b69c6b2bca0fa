//! 1, 4. One engine, same decisions in every mode: context overflow.

use super::*;

#[tokio::test]
async fn context_overflow_fails_over_to_a_larger_window_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("smaller", [Reply::openai_text("must not be asked")]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script("large", [Reply::openai_text("fits in 128k")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "smaller").context_window(4_096))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .target(Target::new("sim", "large").context_window(128_000))
                .total_timeout(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{mode:?}: at once"
        );
        assert_eq!(resp.text(), "fits in 128k", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/large", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}: not retried");
        assert!(
            sim.requests_for("smaller").is_empty(),
            "{mode:?}: smaller skipped"
        );
        assert!(
            sim.requests_for("same-size").is_empty(),
            "{mode:?}: same size skipped"
        );
        assert_eq!(sim.requests_for("large").len(), 1, "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", None)
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_eq!(resp.meta.attempts[0].status, Some(400), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_goes_on_to_a_target_of_unknown_window_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script(
            "unknown",
            [Reply::openai_text("no window declared, but it fits")],
        );
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                // Declares no window: not known to be too small, so worth a try.
                .target("sim/unknown")
                .total_timeout(Duration::from_secs(10)),
        );
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "no window declared, but it fits", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/unknown", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}");
        assert!(
            sim.requests_for("same-size").is_empty(),
            "{mode:?}: no request reaches it"
        );
        assert_eq!(sim.requests_for("unknown").len(), 1, "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("unknown", None)
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_stop_returns_the_error_at_once_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("large", [Reply::openai_text("must not be asked")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "large").context_window(128_000))
                .on_context_overflow(ContextOverflow::Stop)
                .total_timeout(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let err = guarded(call(&relay(&sim, chain), mode))
            .await
            .expect_err("Stop returns the overflow");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{mode:?}: at once"
        );
        assert_eq!(
            err.kind(),
            ErrorKind::ContextLengthExceeded,
            "{mode:?}: {err}"
        );
        assert_eq!(err.status(), Some(400), "{mode:?}");
        assert_eq!(err.code(), Some("context_length_exceeded"), "{mode:?}");
        assert!(
            err.message().contains("maximum context length is 8192"),
            "{mode:?}: {err}"
        );
        assert_eq!(
            err.target().map(|t| t.to_string()).as_deref(),
            Some("sim/small")
        );
        assert_eq!(err.attempts().len(), 1, "{mode:?}");
        assert!(sim.requests_for("large").is_empty(), "{mode:?}");
        assert_eq!(sim.requests().len(), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn context_overflow_next_target_goes_to_a_same_size_target_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("tried anyway")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .on_context_overflow(ContextOverflow::NextTarget)
                .total_timeout(Duration::from_secs(10)),
        );
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "tried anyway", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/same-size", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}");
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_with_no_larger_window_returns_the_vendor_reason_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .total_timeout(Duration::from_secs(10)),
        );
        let err = guarded(call(&relay(&sim, chain), mode))
            .await
            .expect_err("nothing larger to try");
        assert_eq!(
            err.kind(),
            ErrorKind::ContextLengthExceeded,
            "{mode:?}: {err}"
        );
        assert!(
            err.message().contains("maximum context length is 8192"),
            "{mode:?}"
        );
        assert_eq!(err.attempts().len(), 1, "{mode:?}");
        assert!(sim.requests_for("same-size").is_empty(), "{mode:?}");
    }
}

/// After an overflow, the hedge too starts only targets that may fit.
#[tokio::test]
async fn after_a_context_overflow_a_hedge_also_skips_windows_no_larger() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script(
            "large",
            [Reply::openai_text("too slow").delay(Duration::from_secs(5))],
        );
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script("unknown", [Reply::openai_text("the hedge wins")]);
        let chain = Chain::new()
            .target(Target::new("sim", "small").context_window(8_192))
            .target(Target::new("sim", "large").context_window(128_000))
            .target(Target::new("sim", "same-size").context_window(8_192))
            .target("sim/unknown")
            .total_timeout(Duration::from_secs(10))
            .hedge(Hedge::after(Duration::from_millis(150)));
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "the hedge wins", "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", Some(ErrorKind::Cancelled)),
                o("unknown", None),
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert!(sim.requests_for("same-size").is_empty(), "{mode:?}");
        assert!(
            resp.meta.attempts[2].started
                >= resp.meta.attempts[1].started + Duration::from_millis(150),
            "{mode:?}: hedged after its delay: {:?}",
            resp.meta.attempts
        );
        assert_truthful(&resp.meta);
        guarded(sim.requests_for("large")[0].closed()).await;
    }
}
