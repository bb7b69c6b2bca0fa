//! 1, 6. A target named twice: both hedged attempts are recorded, by index. 2. Attempts
//! tell the truth.

use super::*;

#[tokio::test]
async fn a_target_named_twice_records_both_hedged_attempts_plain_and_streamed() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        // Replies per model in arrival order: the first request is slow, the second fast.
        sim.script(
            "m",
            [
                Reply::openai_text("slow").delay(Duration::from_secs(5)),
                Reply::openai_text("fast"),
            ],
        );
        let chain = Chain::of(["sim/m", "sim/m"])
            .total_timeout(Duration::from_secs(10))
            .hedge(Hedge::after(Duration::from_millis(200)));
        let relay = relay(&sim, chain);
        let started = Instant::now();
        let (text, meta) = if mode.streams() {
            let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
            assert_eq!(stream.meta().served, Some(1), "known at the commit point");
            let (chunks, err) = guarded(drain(&mut stream)).await;
            assert!(err.is_none(), "{err:?}");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.target.as_ref().unwrap().to_string() == "sim/m")
            );
            (joined(&chunks), stream.meta().clone())
        } else {
            let resp = guarded(relay.chat(req())).await.unwrap();
            (resp.text().into_owned(), resp.meta)
        };
        let elapsed = started.elapsed();
        assert_eq!(text, "fast", "{mode:?}");
        assert!(
            elapsed < Duration::from_millis(2500),
            "{mode:?}: {elapsed:?}"
        );
        assert_eq!(sim.requests_for("m").len(), 2, "{mode:?}");
        // Both attempts are kept, each in its own slot: the loser (started first) first.
        assert_eq!(
            outcomes(&meta),
            [o("m", Some(ErrorKind::Cancelled)), o("m", None)],
            "{mode:?}"
        );
        assert_eq!(meta.attempts[0].outcome, AttemptOutcome::Cancelled);
        assert_eq!(meta.attempts[1].outcome, AttemptOutcome::Served);
        assert_eq!(meta.served, Some(1), "{mode:?}");
        assert_eq!(served_model(&meta), "sim/m");
        assert!(
            meta.attempts[1].started >= Duration::from_millis(200)
                && meta.attempts[1].started < Duration::from_millis(2000),
            "{mode:?}: the hedge starts after its delay: {:?}",
            meta.attempts[1].started
        );
        assert!(meta.attempts[0].started < meta.attempts[1].started);
        assert_eq!(
            meta.attempts[0].error.as_ref().map(|e| e.kind()),
            Some(ErrorKind::Cancelled)
        );
        assert_truthful(&meta);
        // The loser's connection is closed.
        guarded(sim.requests_for("m")[0].closed()).await;
    }
}

#[tokio::test]
async fn a_hedged_call_lists_the_loser_first_and_indexes_the_winner() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "primary",
            [Reply::openai_text("slow").delay(Duration::from_secs(5))],
        );
        sim.script("fallback", [Reply::openai_text("fast")]);
        let chain = primary_fallback().hedge(Hedge::after(Duration::from_millis(200)));
        let resp = guarded(call(&relay(&sim, chain), mode)).await.unwrap();
        assert_eq!(resp.text(), "fast", "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("primary", Some(ErrorKind::Cancelled)),
                o("fallback", None)
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_eq!(
            resp.meta
                .served_attempt()
                .map(|a| a.target.to_string())
                .as_deref(),
            Some("sim/fallback")
        );
        assert_truthful(&resp.meta);
        guarded(sim.requests_for("primary")[0].closed()).await;
    }
}

// ---------------------------------------------------------------------------------------
// 2. Attempts tell the truth
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn attempts_are_in_start_order_with_offsets_from_the_call_start() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "primary",
            [Reply::openai_error(503, "server_error", None, "down")],
        );
        sim.script(
            "fallback",
            [
                Reply::openai_error(500, "server_error", None, "boom"),
                Reply::openai_text("third time"),
            ],
        );
        let resp = guarded(call(&relay(&sim, mode.chain(primary_fallback())), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "third time", "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (model(a).to_owned(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("primary".to_owned(), 1, Some(ErrorKind::Overloaded)),
                ("primary".to_owned(), 2, Some(ErrorKind::Overloaded)),
                ("fallback".to_owned(), 1, Some(ErrorKind::Server)),
                ("fallback".to_owned(), 2, None),
            ],
            "{mode:?}"
        );
        let statuses: Vec<_> = resp.meta.attempts[..3].iter().map(|a| a.status).collect();
        assert_eq!(statuses, [Some(503), Some(503), Some(500)], "{mode:?}");
        assert_eq!(resp.meta.served, Some(3), "{mode:?}");
        assert!(
            resp.meta.attempts[0].started < Duration::from_millis(500),
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
        // Each offset is where the attempt began: at or after the end of the previous one.
        for w in resp.meta.attempts.windows(2) {
            assert!(
                w[1].started >= w[0].started + w[0].latency,
                "{mode:?}: {w:#?}"
            );
        }
        assert!(resp.meta.latency >= resp.meta.attempts[3].started);
    }
}

/// `Attempt.status` is the HTTP status the vendor answered with, for an answer too.
#[tokio::test]
async fn a_served_http_attempt_records_status_200() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::openai_text("ok")]);
        let resp = guarded(call(&relay(&sim, mode.chain(primary_fallback())), mode))
            .await
            .unwrap();
        assert_eq!(resp.meta.served, Some(0), "{mode:?}");
        assert_eq!(
            resp.meta.attempts[0].status,
            Some(200),
            "{mode:?}: attempt status"
        );
        assert_eq!(resp.meta.status, Some(200), "{mode:?}: response status");
    }
}

#[tokio::test]
async fn a_restart_names_the_target_that_finished_and_counts_what_was_delivered() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus ", "Köln"];
    sim.script("primary", [reset_after(&first)]);
    sim.script(
        "fallback",
        [Reply::sse(whole(&["Hello ", "from ", "the fallback."]))],
    );
    let chain = primary_fallback().mid_stream_recovery(MidStreamRecovery::Restart);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    assert_eq!(served_model(stream.meta()), "sim/primary");
    assert_eq!(stream.meta().served, Some(0));
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart chunk");
    assert_eq!(joined(&chunks[..restart]), first.concat());
    assert_eq!(joined(&chunks[restart..]), "Hello from the fallback.");
    assert!(
        chunks[..restart]
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "primary")
    );
    assert!(
        chunks[restart + 1..]
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "fallback")
    );
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/fallback");
    assert_eq!(meta.served, Some(1));
    assert_eq!(
        outcomes(meta),
        [
            o("primary", Some(ErrorKind::StreamInterrupted)),
            o("fallback", None)
        ]
    );
    // What the caller got from the interrupted attempt, exactly: 3 chunks, 14 characters
    // (ü and ß are one character each, two bytes).
    let delivered = content_chunks(&chunks[..restart]);
    assert_eq!(delivered, first.len());
    assert_eq!(
        meta.attempts[0].outcome,
        AttemptOutcome::Interrupted {
            content_chunks: 3,
            chars: chars(&first),
        }
    );
    assert_eq!(chars(&first), 14);
    let e = meta.attempts[0].error.as_ref().unwrap();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(
        e.message().contains("3 content chunks (14 characters)"),
        "{e}"
    );
    assert!(!meta.usage_partial, "a restart is a whole answer");
    assert_truthful(meta);
}

#[tokio::test]
async fn a_continuation_names_the_prefill_fallback_that_finished_it() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus "];
    sim.script("primary", [reset_after(&first)]);
    sim.script("fallback", [Reply::sse(whole(&["Köln!"]))]);
    let chain = Chain::new()
        .target("sim/primary")
        .target(Target::new("sim", "fallback").prefill(true))
        .total_timeout(Duration::from_secs(10))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(
        chunks.iter().all(|c| c.kind == ChunkKind::Content),
        "no restart"
    );
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/fallback");
    assert_eq!(meta.served, Some(1));
    assert_eq!(
        meta.attempts[0].outcome,
        AttemptOutcome::Interrupted {
            content_chunks: 2,
            chars: 10,
        }
    );
    assert_eq!(meta.attempts[1].outcome, AttemptOutcome::Served);
    assert!(meta.usage_partial);
    assert_truthful(meta);
    let sent = &sim.requests_for("fallback")[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"role": "assistant", "content": "Grüße aus "}));
}

#[tokio::test]
async fn a_continuation_on_the_same_target_is_its_second_try() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus "];
    sim.script(
        "primary",
        [reset_after(&first), Reply::sse(whole(&["Köln!"]))],
    );
    let chain = Chain::new()
        .target(Target::new("sim", "primary").prefill(true))
        .target("sim/fallback")
        .total_timeout(Duration::from_secs(10))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/primary");
    assert_eq!(meta.served, Some(1));
    let tries: Vec<_> = meta
        .attempts
        .iter()
        .map(|a| (model(a).to_owned(), a.try_number, a.outcome))
        .collect();
    assert_eq!(
        tries,
        [
            (
                "primary".to_owned(),
                1,
                AttemptOutcome::Interrupted {
                    content_chunks: 2,
                    chars: 10
                }
            ),
            ("primary".to_owned(), 2, AttemptOutcome::Served),
        ]
    );
    assert!(sim.requests_for("fallback").is_empty());
    assert_truthful(meta);
}

#[tokio::test]
async fn an_interruption_says_how_many_chunks_and_characters_were_delivered() {
    let pieces = ["Grüße ", "aus ", "Köln"];
    for (how, reply) in [
        ("clean close", closed_after(&pieces)),
        ("reset", reset_after(&pieces)),
    ] {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [reply]);
        let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
            .await
            .unwrap();
        let (chunks, err) = guarded(drain(&mut stream)).await;
        let err = err.unwrap_or_else(|| panic!("{how}: a cut stream ends in an error"));
        assert_eq!(joined(&chunks), pieces.concat(), "{how}");
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{how}");
        assert!(
            err.message()
                .contains("3 content chunks (14 characters) were delivered"),
            "{how}: {err}"
        );
        assert_eq!(err.target().unwrap().model.as_ref(), "primary", "{how}");
        assert_eq!(
            err.attempts().first().map(|a| a.outcome),
            Some(AttemptOutcome::Interrupted {
                content_chunks: 3,
                chars: 14
            }),
            "{how}"
        );
        assert!(
            sim.requests_for("fallback").is_empty(),
            "{how}: no recovery unless asked"
        );
        let meta = stream.meta();
        assert_eq!(meta.served, None, "{how}: nothing served the whole answer");
        assert_truthful(meta);
    }
}
