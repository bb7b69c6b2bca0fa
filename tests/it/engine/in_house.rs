//! 5. A user-defined provider beside an HTTP vendor.

use super::*;

/// An in-house model with no HTTP: answers `answer`, or fails with `Overloaded`.
#[derive(Debug)]
struct InHouse {
    answer: Option<&'static str>,
    calls: AtomicUsize,
}

impl InHouse {
    fn new(answer: Option<&'static str>) -> Arc<InHouse> {
        Arc::new(InHouse {
            answer,
            calls: AtomicUsize::new(0),
        })
    }

    fn answer(&self) -> Result<&'static str, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer
            .ok_or_else(|| Error::new(ErrorKind::Overloaded, "in-house GPU pool is saturated"))
    }
}

fn text_chunk(model: &str, text: Option<&str>, finish: Option<FinishReason>) -> ChatChunk {
    let mut choice = ChunkChoice::default();
    choice.delta.content = text.map(str::to_owned);
    choice.finish_reason = finish;
    let mut c = ChatChunk::default();
    c.id = "inhouse-1".into();
    c.model = model.to_owned();
    c.choices = vec![choice];
    c
}

#[async_trait::async_trait]
impl Provider for InHouse {
    fn name(&self) -> &str {
        "in-house"
    }

    async fn chat(
        &self,
        _req: &ChatRequest,
        model: &str,
        _cx: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let text = self.answer()?;
        let mut resp = ChatResponse::default();
        resp.id = "inhouse-1".into();
        resp.model = model.to_owned();
        resp.choices = vec![Choice::new(
            0,
            Message::assistant(text),
            Some(FinishReason::Stop),
        )];
        Ok(resp)
    }

    async fn chat_stream(
        &self,
        _req: &ChatRequest,
        model: &str,
        _cx: &CallContext,
    ) -> Result<ChatStream, Error> {
        let text = self.answer()?;
        let mut chunks: Vec<Result<ChatChunk, Error>> = text
            .split_inclusive(' ')
            .map(|p| Ok(text_chunk(model, Some(p), None)))
            .collect();
        chunks.push(Ok(text_chunk(model, None, Some(FinishReason::Stop))));
        Ok(ChatStream::new(futures::stream::iter(chunks)))
    }
}

fn mixed_relay(sim: &Simulator, local: &Arc<InHouse>, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .provider_arc("local", local.clone() as Arc<dyn Provider>)
        .route("r", chain.total_timeout(Duration::from_secs(10)))
        .build()
        .expect("valid relay")
}

#[tokio::test]
async fn an_in_house_model_answers_after_the_http_vendor_fails() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "vendor",
            [Reply::openai_error(
                503,
                "server_error",
                None,
                "unavailable",
            )],
        );
        let local = InHouse::new(Some("answered in house"));
        let relay = mixed_relay(&sim, &local, Chain::of(["sim/vendor", "local/gpu-1"]));
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "answered in house", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "local/gpu-1", "{mode:?}");
        assert_eq!(sim.requests_for("vendor").len(), 2, "{mode:?}");
        assert_eq!(local.calls.load(Ordering::SeqCst), 1, "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.failure(), a.status))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "sim/vendor".to_owned(),
                    Some(ErrorKind::Overloaded),
                    Some(503)
                ),
                (
                    "sim/vendor".to_owned(),
                    Some(ErrorKind::Overloaded),
                    Some(503)
                ),
                // Not HTTP: no status.
                ("local/gpu-1".to_owned(), None, None),
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert_eq!(resp.meta.status, None, "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn an_http_vendor_answers_after_the_in_house_model_fails() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("vendor", [Reply::openai_text("answered by the vendor")]);
        let local = InHouse::new(None);
        let relay = mixed_relay(&sim, &local, Chain::of(["local/gpu-1", "sim/vendor"]));
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "answered by the vendor", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/vendor", "{mode:?}");
        // The typed error decides: Overloaded is retried once (default policy), then failover.
        assert_eq!(local.calls.load(Ordering::SeqCst), 2, "{mode:?}");
        assert_eq!(sim.requests_for("vendor").len(), 1, "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("local/gpu-1".to_owned(), 1, Some(ErrorKind::Overloaded)),
                ("local/gpu-1".to_owned(), 2, Some(ErrorKind::Overloaded)),
                ("sim/vendor".to_owned(), 1, None),
            ],
            "{mode:?}"
        );
        for a in &resp.meta.attempts[..2] {
            assert_eq!(a.status, None, "{mode:?}: not HTTP");
            let e = a.error.as_ref().unwrap();
            assert_eq!(e.message(), "in-house GPU pool is saturated");
            assert_eq!(e.provider(), Some("local"));
            assert_eq!(e.status(), None);
        }
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

/// A user-defined provider's typed context overflow is routed like a vendor's: on to a
/// larger window, past one no larger.
#[tokio::test]
async fn an_in_house_context_overflow_goes_to_a_larger_http_window() {
    #[derive(Debug)]
    struct Small;
    #[async_trait::async_trait]
    impl Provider for Small {
        fn name(&self) -> &str {
            "in-house"
        }
        async fn chat(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatResponse, Error> {
            Err(Error::new(
                ErrorKind::ContextLengthExceeded,
                "prompt exceeds 4096 tokens",
            ))
        }
        async fn chat_stream(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatStream, Error> {
            Err(Error::new(
                ErrorKind::ContextLengthExceeded,
                "prompt exceeds 4096 tokens",
            ))
        }
    }
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("same", [Reply::openai_text("must not be asked")]);
        sim.script("large", [Reply::openai_text("fits")]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .provider("local", Small)
            .route(
                "r",
                mode.chain(
                    Chain::new()
                        .target(Target::new("local", "small").context_window(4_096))
                        .target(Target::new("sim", "same").context_window(4_096))
                        .target(Target::new("sim", "large").context_window(32_000))
                        .total_timeout(Duration::from_secs(10)),
                ),
            )
            .build()
            .unwrap();
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "fits", "{mode:?}");
        assert!(sim.requests_for("same").is_empty(), "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", None)
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}
