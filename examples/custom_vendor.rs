//! `cargo run --example custom_vendor --features simulator`
//!
//! A vendor the crate does not ship, added the way a user adds an in-house or brand-new API:
//! one [`Codec`] in one file. "EchoCorp" speaks its own JSON:
//!
//! * request: `POST {base}/v2/generate` with `{"model", "turns": [{"speaker", "words"}],
//!   "stream"}` and the key in `x-echo-key`;
//! * answer: `{"said": "…", "ending": "complete" | "cutoff", "meter": {"heard": N, "said": N}}`;
//! * stream: server-sent events `data: {"piece": "…"}`, closed by `data: {"ending": …,
//!   "meter": …}`;
//! * error: `{"trouble": {"what": "too_fast", "detail": "…", "wait_s": 2}}` with its status.
//!
//! The codec is handed to [`HttpProvider`], which does everything else (sending, bounds,
//! rate-limit headers, key pools, the stream's plumbing); the provider goes into a [`Relay`]
//! beside any other. Runs against the built-in simulator, with no key and no network.

use std::collections::VecDeque;
use std::time::Duration;

use polyrelay::http::sse::SseEvent;
use polyrelay::providers::{ChunkDecoder, Codec, EventHandler, HttpProvider, KeyHeader, Redactor};
use polyrelay::reqwest::Url;
use polyrelay::reqwest::header::{HeaderMap, HeaderName};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{Chain, ErrorKind, FinishReason, Message, Relay, Role, Usage};
use polyrelay::{ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Error};
use serde_json::{Value, json};

/// EchoCorp's wire format.
#[derive(Clone, Debug)]
pub struct EchoCodec {
    /// `{base}/v2/generate`, parsed once.
    url: Url,
}

impl EchoCodec {
    /// EchoCorp at `base` (e.g. `https://api.echocorp.example`).
    pub fn new(base: &str) -> Result<EchoCodec, Error> {
        let url = format!("{}/v2/generate", base.trim_end_matches('/'));
        let url = Url::parse(&url).map_err(|e| {
            Error::new(ErrorKind::Config, "EchoCorp's base URL does not parse").with_source(e)
        })?;
        Ok(EchoCodec { url })
    }
}

/// EchoCorp with `key`, at `base`.
pub fn echo_corp(base: &str, key: &str) -> Result<HttpProvider<EchoCodec>, Error> {
    HttpProvider::from_codec(EchoCodec::new(base)?, key).header("x-echo-version", "2")
}

/// `complete` / `cutoff` → a finish reason.
fn ending(v: &Value) -> Option<FinishReason> {
    match v.as_str()? {
        "complete" => Some(FinishReason::Stop),
        "cutoff" => Some(FinishReason::Length),
        other => Some(FinishReason::Other(other.to_owned())),
    }
}

/// `{"heard": N, "said": N}` → usage.
fn meter(v: &Value) -> Option<Usage> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    Some(Usage::new(n("heard")?, n("said")?))
}

fn not_echo(body: &[u8]) -> Error {
    Error::new(ErrorKind::Decode, "not an EchoCorp answer")
        .with_body(&String::from_utf8_lossy(body))
}

impl Codec for EchoCodec {
    type Decoder = ChunkDecoder<EchoEvents>;

    fn name(&self) -> &str {
        "echocorp"
    }

    fn credential(&self) -> Option<KeyHeader> {
        Some(KeyHeader::new(HeaderName::from_static("x-echo-key")))
    }

    fn url(&self, _model: &str, _stream: bool) -> Result<Url, Error> {
        Ok(self.url.clone())
    }

    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
        let turns: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({ "speaker": m.role.as_str(), "words": m.text() }))
            .collect();
        let body = json!({ "model": model, "turns": turns, "stream": stream });
        serde_json::to_vec(&body)
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, "cannot encode").with_source(e))
    }

    fn decode(&self, body: &[u8], _key: &Redactor<'_>) -> Result<ChatResponse, Error> {
        let v: Value = serde_json::from_slice(body).map_err(|_| not_echo(body))?;
        let said = v
            .get("said")
            .and_then(Value::as_str)
            .ok_or_else(|| not_echo(body))?;
        let mut resp = ChatResponse::default();
        let finish = v.get("ending").and_then(ending);
        resp.choices
            .push(Choice::new(0, Message::assistant(said), finish));
        resp.usage = v.get("meter").and_then(meter);
        Ok(resp)
    }

    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let trouble = &v["trouble"];
        let what = trouble["what"].as_str().unwrap_or("unknown");
        let kind = match (status, what) {
            (_, "too_fast") | (429, _) => ErrorKind::RateLimited,
            (_, "bad_key") | (401 | 403, _) => ErrorKind::Auth,
            (_, "no_such_model") | (404, _) => ErrorKind::NotFound,
            (400..=499, _) => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        };
        let detail = trouble["detail"].as_str().unwrap_or("EchoCorp refused");
        let mut e = Error::new(kind, key.redact(detail))
            .with_status(status)
            .with_code(what);
        if let Some(wait) = trouble["wait_s"].as_u64() {
            e = e.with_retry_after(Duration::from_secs(wait));
        }
        if let Some(id) = headers.get("x-echo-trace").and_then(|v| v.to_str().ok()) {
            e = e.with_request_id(id);
        }
        e
    }

    fn stream_decoder(&self, _key: &Redactor<'_>) -> Self::Decoder {
        ChunkDecoder::new(EchoEvents { ended: false })
    }
}

/// EchoCorp's stream grammar: `{"piece"}` events, then one `{"ending", "meter"}`.
#[derive(Debug)]
pub struct EchoEvents {
    ended: bool,
}

impl EventHandler for EchoEvents {
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        let v: Value = serde_json::from_str(event.data)
            .map_err(|_| Error::new(ErrorKind::Decode, "not an EchoCorp event"))?;
        let mut choice = ChunkChoice::default();
        if let Some(piece) = v.get("piece").and_then(Value::as_str) {
            choice.delta.role = Some(Role::Assistant);
            choice.delta.content = Some(piece.to_owned());
        }
        choice.finish_reason = v.get("ending").and_then(ending);
        self.ended = choice.finish_reason.is_some();
        let mut chunk = ChatChunk::default();
        chunk.choices.push(choice);
        chunk.usage = v.get("meter").and_then(meter);
        out.push_back(chunk);
        Ok(self.ended)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.ended {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "EchoCorp stopped mid-answer",
            ))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start().await?;
    // What EchoCorp would answer: a whole answer, a stream, and a refusal.
    sim.script(
        "echo-1",
        [Reply::json(
            200,
            r#"{"said":"Hello from EchoCorp.","ending":"complete","meter":{"heard":4,"said":5}}"#,
        )],
    );
    sim.script(
        "echo-stream",
        [Reply::sse([
            "data: {\"piece\":\"Hello \"}\n\n",
            "data: {\"piece\":\"in pieces.\"}\n\n",
            "data: {\"ending\":\"complete\",\"meter\":{\"heard\":4,\"said\":3}}\n\n",
        ])],
    );
    sim.script(
        "echo-busy",
        [Reply::json(
            429,
            r#"{"trouble":{"what":"too_fast","detail":"slow down","wait_s":1}}"#,
        )],
    );

    let echo = echo_corp(&sim.base_url(), "echo-key-123")?;
    let relay = Relay::builder()
        .provider("echo", echo)
        .route("chat", Chain::new().target("echo/echo-1"))
        .route(
            "busy",
            Chain::new().target("echo/echo-busy").target("echo/echo-1"),
        )
        .build()?;

    let resp = relay.chat(ChatRequest::new("chat").user("Hello?")).await?;
    println!("plain:    {}  ({:?})", resp.text(), resp.usage);

    let stream = relay
        .chat_stream(ChatRequest::new("echo/echo-stream").user("Hello?"))
        .await?;
    let resp = stream.into_response().await?;
    println!("streamed: {}", resp.text());

    let resp = relay.chat(ChatRequest::new("busy").user("Hello?")).await?;
    let first = &resp.meta.attempts[0];
    println!(
        "failover: {} answered after {} said {:?}",
        resp.meta
            .served_by
            .as_ref()
            .map_or("?".to_owned(), ToString::to_string),
        first.target,
        first.error.as_ref().map(|e| (e.kind(), e.retry_after())),
    );
    let sent = &sim.requests()[0];
    println!(
        "sent:     {} with x-echo-key {:?} and body {}",
        sent.path,
        sent.header("x-echo-key"),
        sent.body
    );
    Ok(())
}
