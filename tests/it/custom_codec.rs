//! A vendor of the user's own, as a `Codec` under the crate's `HttpProvider`, run through the
//! relay over loopback: a whole answer, a stream, an error status the codec maps, failover,
//! another key from a pool, and the signing step on the exact bytes sent.

use std::collections::VecDeque;
use std::time::Duration;

use polyrelay::http::sse::SseEvent;
use polyrelay::providers::{ChunkDecoder, Codec, EventHandler, HttpProvider, KeyHeader, Redactor};
use polyrelay::reqwest::Url;
use polyrelay::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{ApiKey, CallContext, Chain, ChatChunk, ChatRequest, ChatResponse, Choice};
use polyrelay::{ChunkChoice, Error, ErrorKind, FinishReason, Message, Provider, Relay, Usage};
use serde_json::{Value, json};

/// "Acme": `{"query": {"model", "lines": [...]}, "live": bool}` in, `{"out": "…", "cost":
/// {"a": N, "b": N}}` out, `{"oops": {"kind", "after"}}` as its error, and
/// `data: {"bit": "…"}` … `data: {"stop": true}` as its stream.
#[derive(Clone, Debug)]
struct AcmeCodec {
    url: Url,
}

fn acme(sim: &Simulator, key: &str) -> HttpProvider<AcmeCodec> {
    let url = Url::parse(&format!("{}/acme/ask", sim.base_url())).expect("url");
    HttpProvider::from_codec(AcmeCodec { url }, key)
}

impl Codec for AcmeCodec {
    type Decoder = ChunkDecoder<AcmeEvents>;

    fn name(&self) -> &str {
        "acme"
    }

    fn credential(&self) -> Option<KeyHeader> {
        Some(KeyHeader::with_prefix(
            HeaderName::from_static("x-acme-auth"),
            "Key ",
        ))
    }

    fn url(&self, _model: &str, _stream: bool) -> Result<Url, Error> {
        Ok(self.url.clone())
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        let lines: Vec<String> = req.messages.iter().map(|m| m.text().into_owned()).collect();
        let body = json!({ "model": model, "query": { "lines": lines }, "live": stream });
        Ok(body.to_string().into_bytes())
    }

    fn decode(&self, body: &[u8], _key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Error::new(ErrorKind::Decode, "not Acme").with_source(e))?;
        let out = v["out"]
            .as_str()
            .ok_or_else(|| Error::new(ErrorKind::Decode, "no out"))?;
        let mut resp = ChatResponse::default();
        let done = Some(FinishReason::Stop);
        resp.choices
            .push(Choice::new(0, Message::assistant(out), done));
        let n = |k: &str| v["cost"][k].as_u64().unwrap_or(0);
        resp.usage = Some(Usage::new(n("a"), n("b")));
        Ok(resp)
    }

    fn decode_error(
        &self,
        status: u16,
        _headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let what = v["oops"]["kind"].as_str().unwrap_or("?");
        let kind = match what {
            "busy" => ErrorKind::Overloaded,
            "who" => ErrorKind::Auth,
            _ => ErrorKind::InvalidRequest,
        };
        let mut e = Error::new(kind, key.redact(&format!("acme says {what}: {body:?}")))
            .with_status(status)
            .with_code(what);
        if let Some(s) = v["oops"]["after"].as_u64() {
            e = e.with_retry_after(Duration::from_secs(s));
        }
        e
    }

    fn stream_decoder(&self, _key: &Redactor<'_>) -> Self::Decoder {
        ChunkDecoder::new(AcmeEvents { stopped: false })
    }

    /// Signs the exact bytes sent: their length, as a per-call header.
    async fn sign(
        &self,
        request: &mut polyrelay::reqwest::Request,
        _http: &polyrelay::reqwest::Client,
    ) -> Result<(), Error> {
        let len = request
            .body()
            .and_then(|b| b.as_bytes())
            .map_or(0, <[u8]>::len);
        let value = HeaderValue::from_str(&format!("len={len}")).expect("header value");
        request.headers_mut().insert("x-acme-signature", value);
        Ok(())
    }
}

#[derive(Debug)]
struct AcmeEvents {
    stopped: bool,
}

impl EventHandler for AcmeEvents {
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        let v: Value = serde_json::from_str(event.data)
            .map_err(|_| Error::new(ErrorKind::Decode, "not an Acme event"))?;
        let mut choice = ChunkChoice::default();
        choice.delta.content = v["bit"].as_str().map(str::to_owned);
        self.stopped = v["stop"].as_bool() == Some(true);
        if self.stopped {
            choice.finish_reason = Some(FinishReason::Stop);
        }
        let mut chunk = ChatChunk::default();
        chunk.choices.push(choice);
        out.push_back(chunk);
        Ok(self.stopped)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.stopped {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "acme stopped short",
            ))
        }
    }
}

fn relay_over(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("acme", acme(sim, "acme-key-1"))
        .route("r", chain)
        .build()
        .expect("relay")
}

#[tokio::test]
async fn a_plain_call_goes_through_the_users_codec() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        "m1",
        [
            Reply::json(200, r#"{"out":"hi from acme","cost":{"a":3,"b":4}}"#)
                .header("x-ratelimit-remaining-requests", "41"),
        ],
    );
    let relay = relay_over(&sim, Chain::new().target("acme/m1"));
    let resp = relay
        .chat(ChatRequest::new("r").user("Hello?"))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "hi from acme");
    assert_eq!(resp.usage.map(|u| u.output_tokens), Some(4));
    assert_eq!(
        resp.meta.served_by.map(|t| t.to_string()).as_deref(),
        Some("acme/m1")
    );
    // The provider's plumbing: status and rate-limit headers in the metadata.
    assert_eq!(resp.meta.status, Some(200));
    let limits = resp.meta.rate_limit.expect("rate-limit headers read");
    assert_eq!(limits.remaining_requests, Some(41));
    let seen = &sim.requests()[0];
    assert_eq!(seen.path, "/acme/ask");
    assert_eq!(seen.header("x-acme-auth"), Some("Key acme-key-1"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body["query"]["lines"], json!(["Hello?"]));
    assert_eq!(seen.body["live"], json!(false));
    // Signed over the exact bytes that went out.
    let signed = format!("len={}", seen.raw_body.len());
    assert_eq!(seen.header("x-acme-signature"), Some(signed.as_str()));
}

#[tokio::test]
async fn a_streamed_call_goes_through_the_users_stream_grammar() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        "m1",
        [Reply::sse([
            "data: {\"bit\":\"Hel\"}\n\n",
            "data: {\"bit\":\"lo\"}\n\n",
            "data: {\"stop\":true}\n\n",
        ])],
    );
    let relay = relay_over(&sim, Chain::new().target("acme/m1"));
    let stream = relay
        .chat_stream(ChatRequest::new("r").user("Hello?"))
        .await
        .expect("stream");
    let resp = stream.into_response().await.expect("whole stream");
    assert_eq!(resp.text(), "Hello");
    assert_eq!(resp.finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(sim.requests()[0].body["live"], json!(true));

    // A stream cut before the codec's terminal event is an error, not a short success.
    sim.script(
        "m1",
        [Reply::sse([
            "data: {\"bit\":\"Hel\"}\n\n",
            "data: {\"bit\":\"lo\"}\n\n",
        ])],
    );
    let stream = relay
        .chat_stream(ChatRequest::new("r").user("Hello?"))
        .await
        .expect("stream");
    let e = stream.into_response().await.expect_err("cut short");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted, "{e:?}");
}

#[tokio::test]
async fn an_error_status_is_what_the_codec_says_it_is() {
    let sim = Simulator::start().await.expect("simulator");
    // 418 means nothing to the crate; the codec's body says "busy, come back in 7 s".
    let busy = r#"{"oops":{"kind":"busy","after":7,"echo":"acme-key-1"}}"#;
    sim.script("m1", [Reply::json(418, busy)]);
    let p = acme(&sim, "acme-key-1");
    let cx = CallContext::new(polyrelay::reqwest::Client::new());
    let e = p
        .chat(&ChatRequest::new("m1").user("Hello?"), "m1", &cx)
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.status(), Some(418));
    assert_eq!(e.code(), Some("busy"));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(!format!("{e} {e:?}").contains("acme-key-1"), "{e:?}");
    // Through the relay, a codec's `Auth` is the key's fault: the call stops there.
    sim.script("m1", [Reply::json(403, r#"{"oops":{"kind":"who"}}"#)]);
    let relay = relay_over(&sim, Chain::new().target("acme/m1"));
    let e = relay
        .chat(ChatRequest::new("r").user("Hello?"))
        .await
        .expect_err("refused");
    let last = e.last_error().unwrap_or(&e);
    assert_eq!(last.kind(), ErrorKind::Auth, "{e:?}");
    assert_eq!(last.code(), Some("who"));
}

#[tokio::test]
async fn the_relay_fails_over_on_the_codecs_error_and_swaps_pool_keys() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script("m1", [Reply::json(503, r#"{"oops":{"kind":"busy"}}"#)]);
    sim.script(
        "m2",
        [Reply::json(200, r#"{"out":"second","cost":{"a":1,"b":1}}"#)],
    );
    let relay = relay_over(&sim, Chain::new().target("acme/m1").target("acme/m2"));
    let resp = relay
        .chat(ChatRequest::new("r").user("Hello?"))
        .await
        .expect("failover");
    assert_eq!(resp.text(), "second");
    let first = resp.meta.attempts[0].error.as_ref().expect("first failed");
    assert_eq!(first.kind(), ErrorKind::Overloaded);
    assert_eq!(first.code(), Some("busy"));
    assert_eq!(
        resp.meta.served_by.map(|t| t.to_string()).as_deref(),
        Some("acme/m2")
    );

    // Another key (a pool's next one) goes where the codec puts keys, replacing the old one.
    let p = acme(&sim, "acme-key-1")
        .header("x-team", "support")
        .expect("header");
    let swapped = p.with_key(ApiKey::new("acme-key-2")).expect("swappable");
    sim.clear();
    sim.set_default(Reply::json(200, r#"{"out":"again"}"#));
    let cx = CallContext::new(polyrelay::reqwest::Client::new());
    let req = ChatRequest::new("m2").user("Hello?");
    swapped.chat(&req, "m2", &cx).await.expect("answer");
    let seen = &sim.requests()[0];
    assert_eq!(seen.header("x-acme-auth"), Some("Key acme-key-2"));
    assert_eq!(seen.header("x-team"), Some("support"));
    assert!(!format!("{swapped:?}").contains("acme-key"), "{swapped:?}");
}
