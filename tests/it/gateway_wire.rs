//! OpenAI's exact wire from the gateway, whichever dialect serves the answer: every chunk a
//! `chat.completion.chunk` with one id, `created` and `model` for the whole stream; usage
//! only in a final `choices: []` chunk when the client asked for it; answers with `id`,
//! `created` and `model`; and the keys and JSON types at every level those of OpenAI's own
//! recordings (`tests/fixtures/openai/`).

use polyrelay::gateway::GatewayOptions;
use polyrelay::{Chain, Relay, RetryPolicy};
use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::gateway::{Gateway, KEY, gateway};
use crate::support::fixtures::{read_json, read_str};
use crate::support::{Reply, Simulator, guarded};

/// The model of the `<dialect>-tools` routes (scripted with a tool call by the SDK test).
const TOOLS_MODEL: &str = "tools-model";

/// Every dialect, as the route (and provider) names of [`three_dialects_relay`]: the three
/// of [`three_dialects`](crate::support::three_dialects) and the clouds' codecs.
const DIALECTS: [&str; 7] = [
    "openai",
    "anthropic",
    "gemini",
    "bedrock",
    "bedrock_native",
    "vertex",
    "vertex_claude",
];

/// A relay with one provider per dialect (`openai`, `anthropic`, `gemini`, and the clouds:
/// `bedrock` Converse, `bedrock_native` InvokeModel, `vertex` Gemini, `vertex_claude`) on
/// the simulator, a route of the same name on each (a single target, no retries), and a
/// route `<dialect>-tools` on each whose model is [`TOOLS_MODEL`].
fn three_dialects_relay(sim: &Simulator) -> Relay {
    let route = |target: &str| Chain::of([target]).retry(RetryPolicy::no_retries());
    let mut builder = crate::support::clouds::with_clouds(
        crate::support::three_dialects(sim),
        sim,
        polyrelay::providers::vertex::GoogleAuth::access_token("ya29.test"),
    );
    for (d, model) in DIALECTS.iter().zip([
        "gpt-4o",
        "claude-sonnet-4-5",
        "gemini-2.5-flash",
        "amazon.nova-pro-v1:0",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "gemini-2.5-pro",
        "claude-haiku-4-5@20251001",
    ]) {
        builder = builder
            .route(*d, route(&format!("{d}/{model}")))
            .route(format!("{d}-tools"), route(&format!("{d}/{TOOLS_MODEL}")));
    }
    builder.build().expect("relay")
}

/// A gateway on [`three_dialects_relay`].
async fn three_dialects(sim: &Simulator) -> Gateway {
    gateway(
        three_dialects_relay(sim),
        GatewayOptions::new().client_key(KEY),
    )
    .await
}

/// `POST /v1/chat/completions` with `body`: the status and the raw body text.
async fn post(gw: &Gateway, body: &Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("a body"))
}

/// The JSON of every `data:` event of an SSE body before `[DONE]`, and whether `[DONE]` came.
fn events(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            return (out, true);
        }
        out.push(serde_json::from_str(data).expect("each event is JSON"));
    }
    (out, false)
}

/// A plain request for `model`.
fn ask(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "Where is my order?" }] })
}

/// The same request, streamed, with `include_usage` as given (absent for `None`).
fn ask_streamed(model: &str, include_usage: Option<bool>) -> Value {
    let mut body = ask(model);
    body["stream"] = json!(true);
    if let Some(u) = include_usage {
        body["stream_options"] = json!({ "include_usage": u });
    }
    body
}

/// The cases each test runs: a text answer and a tool call, served by each dialect, as
/// (description, route, the simulator's reply).
fn cases() -> Vec<(String, &'static str, Reply)> {
    let replies = [
        ("text", Reply::text("Your order ships today.")),
        (
            "tool call",
            Reply::tool_call("track_order", r#"{"order":"A-17"}"#),
        ),
    ];
    replies
        .iter()
        .flat_map(|(kind, reply)| {
            DIALECTS.map(|d| (format!("{kind} served by {d}"), d, reply.clone()))
        })
        .collect()
}

/// Streams `body` through the gateway: the events before `[DONE]`, checked to end with it.
async fn stream_events(gw: &Gateway, body: &Value, what: &str) -> Vec<Value> {
    let (status, text) = guarded(post(gw, body)).await;
    assert_eq!(status, 200, "{what}: {text}");
    let (events, done) = events(&text);
    assert!(done, "{what}: the stream ends with [DONE]: {text}");
    assert!(!events.is_empty(), "{what}: {text}");
    events
}

#[tokio::test]
async fn every_chunk_has_one_id_created_and_model_and_usage_comes_last_alone() {
    let sim = Simulator::start().await.unwrap();
    let gw = three_dialects(&sim).await;
    for (what, d, reply) in cases() {
        sim.set_default(reply);
        let events = stream_events(&gw, &ask_streamed(d, Some(true)), &what).await;
        let first = &events[0];
        let id = first["id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{what}: the stream has an id: {first}");
        let created = first["created"].as_u64().unwrap_or_default();
        assert!(
            created > 1_600_000_000,
            "{what}: created is a time: {first}"
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                e["object"], "chat.completion.chunk",
                "{what}: chunk {i}: {e}"
            );
            assert_eq!(
                e["id"], id,
                "{what}: one id for the whole stream: chunk {i}: {e}"
            );
            assert_eq!(e["created"], created, "{what}: one created: chunk {i}: {e}");
            let model = e["model"].as_str().unwrap_or_default();
            assert!(!model.is_empty(), "{what}: a model on chunk {i}: {e}");
        }
        let (last, rest) = events.split_last().expect("chunks");
        assert_eq!(
            last["choices"],
            json!([]),
            "{what}: usage in its own chunk: {last}"
        );
        assert!(
            last["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0,
            "{what}: {last}"
        );
        for (i, e) in rest.iter().enumerate() {
            assert!(
                e.get("usage").is_none_or(Value::is_null),
                "{what}: usage only last, not on chunk {i}: {e}"
            );
            assert_ne!(e["choices"], json!([]), "{what}: chunk {i}: {e}");
        }
    }
}

#[tokio::test]
async fn without_include_usage_no_chunk_carries_usage() {
    let sim = Simulator::start().await.unwrap();
    let gw = three_dialects(&sim).await;
    sim.set_default(Reply::text("Your order ships today."));
    for d in DIALECTS {
        for include in [None, Some(false)] {
            let what = format!("served by {d}, include_usage {include:?}");
            let events = stream_events(&gw, &ask_streamed(d, include), &what).await;
            for (i, e) in events.iter().enumerate() {
                assert!(
                    e.get("usage").is_none_or(Value::is_null),
                    "{what}: chunk {i}: {e}"
                );
                assert_ne!(
                    e["choices"],
                    json!([]),
                    "{what}: no empty chunk: chunk {i}: {e}"
                );
            }
            let last = events.last().expect("chunks");
            assert_eq!(
                last["choices"][0]["finish_reason"], "stop",
                "{what}: {last}"
            );
        }
    }
}

#[tokio::test]
async fn answers_from_every_dialect_carry_id_created_and_model() {
    let sim = Simulator::start().await.unwrap();
    let gw = three_dialects(&sim).await;
    for (what, d, reply) in cases() {
        sim.set_default(reply);
        let (status, text) = guarded(post(&gw, &ask(d))).await;
        assert_eq!(status, 200, "{what}: {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(answer["object"], "chat.completion", "{what}: {answer}");
        assert!(
            !answer["id"].as_str().unwrap_or_default().is_empty(),
            "{what}: {answer}"
        );
        assert!(
            answer["created"].as_u64().unwrap_or(0) > 1_600_000_000,
            "{what}: {answer}"
        );
        assert!(
            !answer["model"].as_str().unwrap_or_default().is_empty(),
            "{what}: {answer}"
        );
    }
}

// --- Field by field against OpenAI's recordings ---

/// Keys OpenAI always sends whose value only OpenAI knows: an answer served elsewhere has
/// none to give (its backend's fingerprint, its service tier, its stream padding, counts of
/// audio and predicted tokens).
const ONLY_OPENAI_KNOWS: [&str; 9] = [
    // A message's `refusal: null` and `annotations: []`: the relay writes a message without
    // them (tests/it/types.rs pins that shape); the Python SDK's types default both.
    "refusal",
    "annotations",
    "system_fingerprint",
    "service_tier",
    "obfuscation",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
    // `usage: null` on every chunk but the last: newer recordings have it, older ones not.
    "usage",
];

/// Keys the relay adds to OpenAI's: the prompt tokens written to a vendor's cache (Anthropic
/// bills them; OpenAI's usage has no place for them).
const RELAY_EXTENSIONS: [&str; 1] = ["cache_write_tokens"];

/// What OpenAI sends at each level of a body: per path (`choices[].message`), the JSON types
/// seen there, and for objects the keys seen and the keys seen in every one of them.
#[derive(Default)]
struct Shape {
    types: BTreeMap<String, BTreeSet<&'static str>>,
    keys: BTreeMap<String, BTreeSet<String>>,
    always: BTreeMap<String, BTreeSet<String>>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Shape {
    /// The shape of OpenAI's bodies `samples`.
    fn of<'a>(samples: impl IntoIterator<Item = &'a Value>) -> Shape {
        let mut shape = Shape::default();
        for s in samples {
            shape.learn("", s);
        }
        shape
    }

    fn learn(&mut self, path: &str, v: &Value) {
        self.types
            .entry(path.to_owned())
            .or_default()
            .insert(type_of(v));
        match v {
            Value::Object(map) => {
                let keys: BTreeSet<String> = map.keys().cloned().collect();
                self.keys
                    .entry(path.to_owned())
                    .or_default()
                    .extend(keys.iter().cloned());
                self.always
                    .entry(path.to_owned())
                    .and_modify(|a| a.retain(|k| keys.contains(k)))
                    .or_insert(keys);
                for (k, x) in map {
                    self.learn(&format!("{path}.{k}"), x);
                }
            }
            Value::Array(items) => {
                for x in items {
                    self.learn(&format!("{path}[]"), x);
                }
            }
            _ => {}
        }
    }

    /// Every difference between `ours` and this shape: a key OpenAI never sends there, a key
    /// it always sends missing, a type it never sends there.
    fn differences(&self, path: &str, ours: &Value, out: &mut Vec<String>) {
        let Some(types) = self.types.get(path) else {
            out.push(format!("{path}: OpenAI sends nothing here"));
            return;
        };
        if !types.contains(type_of(ours)) {
            out.push(format!(
                "{path}: {} where OpenAI sends {types:?}",
                type_of(ours)
            ));
            return;
        }
        match ours {
            Value::Object(map) => {
                let theirs = &self.keys[path];
                for k in map.keys() {
                    if !theirs.contains(k) && !RELAY_EXTENSIONS.contains(&k.as_str()) {
                        out.push(format!("{path}.{k}: a key OpenAI does not send"));
                    }
                }
                for k in &self.always[path] {
                    if !map.contains_key(k) && !ONLY_OPENAI_KNOWS.contains(&k.as_str()) {
                        out.push(format!("{path}.{k}: missing (OpenAI always sends it)"));
                    }
                }
                for (k, x) in map {
                    if theirs.contains(k) {
                        self.differences(&format!("{path}.{k}"), x, out);
                    }
                }
            }
            Value::Array(items) => {
                for x in items {
                    self.differences(&format!("{path}[]"), x, out);
                }
            }
            _ => {}
        }
    }

    fn assert_matches(&self, what: &str, ours: &Value) {
        let mut diffs = Vec::new();
        self.differences("", ours, &mut diffs);
        assert!(
            diffs.is_empty(),
            "{what}: not OpenAI's shape:\n  {}\nin {ours}",
            diffs.join("\n  ")
        );
    }
}

/// OpenAI's recorded `chat.completion.chunk` events (text and tool calls, with usage).
fn recorded_chunks() -> Vec<Value> {
    [
        "openai/chat_stream_text_include_usage_gpt4o.sse",
        "openai/chat_stream_tool_call_include_usage.sse",
        "openai/chat_stream_text_after_tool_include_usage.sse",
        "openai/vercel_chat_stream_text_include_usage.sse",
    ]
    .iter()
    .flat_map(|f| events(&read_str(f)).0)
    .collect()
}

#[tokio::test]
async fn answers_have_the_keys_and_types_of_openai_s_recordings_whichever_dialect_serves() {
    let shape = Shape::of(&[
        read_json("openai/chat_text.json"),
        read_json("openai/chat_tool_calls.json"),
        read_json("openai/vercel_chat_text.json"),
    ]);
    let sim = Simulator::start().await.unwrap();
    let gw = three_dialects(&sim).await;
    for (what, d, reply) in cases() {
        sim.set_default(reply);
        let (status, text) = guarded(post(&gw, &ask(d))).await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        shape.assert_matches(&what, &answer);
    }
}

#[tokio::test]
async fn chunks_have_the_keys_and_types_of_openai_s_recordings_whichever_dialect_serves() {
    let recorded = recorded_chunks();
    // The usage chunk apart: its `choices` is empty, so it teaches nothing about choices.
    let (usage, content): (Vec<&Value>, Vec<&Value>) =
        recorded.iter().partition(|c| c["choices"] == json!([]));
    assert!(!usage.is_empty() && !content.is_empty());
    let content_shape = Shape::of(content);
    let usage_shape = Shape::of(usage);
    let sim = Simulator::start().await.unwrap();
    let gw = three_dialects(&sim).await;
    for (what, d, reply) in cases() {
        sim.set_default(reply);
        let events = stream_events(&gw, &ask_streamed(d, Some(true)), &what).await;
        let (last, rest) = events.split_last().expect("chunks");
        for (i, e) in rest.iter().enumerate() {
            content_shape.assert_matches(&format!("{what}, chunk {i}"), e);
        }
        usage_shape.assert_matches(&format!("{what}, usage chunk"), last);
    }
}

/// A Rust caller of `Relay::chat_stream` gets the same: one id, one `created` and a model on
/// every chunk, whichever dialect serves.
#[tokio::test]
async fn relay_streams_carry_one_id_created_and_model_on_every_chunk() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::text("Your order ships today."));
    let relay = three_dialects_relay(&sim);
    for d in ["anthropic", "gemini"] {
        let mut stream = guarded(relay.chat_stream(polyrelay::ChatRequest::new(d).user("hi")))
            .await
            .expect("opens");
        let mut chunks = Vec::new();
        while let Some(c) = guarded(stream.next()).await {
            chunks.push(c.expect("a chunk"));
        }
        let first = &chunks[0];
        assert!(
            !first.id.is_empty() && first.created > 1_600_000_000,
            "{d}: {first:?}"
        );
        for c in &chunks {
            assert_eq!((&c.id, c.created), (&first.id, first.created), "{d}");
            assert!(!c.model.is_empty(), "{d}: {c:?}");
        }
    }
}

// --- The official OpenAI Python SDK ---

/// `tests/python/openai_sdk_check.py` (the official OpenAI Python SDK, its typed models held
/// strictly) against a gateway on the simulator: plain, streamed with and without usage,
/// tools, `response_format` json_schema, an unknown model, a wrong key and `models.retrieve`,
/// for answers served by each dialect. The interpreter is `POLYRELAY_PYTHON` (default
/// `python3`); without the `openai` package the test passes with a note, unless
/// `POLYRELAY_REQUIRE_PYTHON_SDK=1` (as in `.ci/run`), when it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_reads_every_dialect_strictly() {
    let python = std::env::var("POLYRELAY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_sdk = tokio::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        let required = std::env::var("POLYRELAY_REQUIRE_PYTHON_SDK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "POLYRELAY_REQUIRE_PYTHON_SDK=1 but `{python} -c \"import openai\"` fails: install \
             the SDK (python3 -m pip install --user openai) or set POLYRELAY_PYTHON"
        );
        eprintln!("skipped: `{python}` has no `openai` package (pip install openai)");
        return;
    }
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::text(r#"{"order":"A-17","status":"shipped"}"#));
    sim.script(
        TOOLS_MODEL,
        [Reply::tool_call("track_order", r#"{"order":"A-17"}"#)],
    );
    let gw = three_dialects(&sim).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/openai_sdk_check.py"
    );
    let run = tokio::process::Command::new(&python)
        .args([script, gw.url.as_str(), KEY, &DIALECTS.join(",")])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the SDK check ends within 120 s")
        .expect("python runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "the OpenAI SDK check failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("every check passed"),
        "{}",
        text(&out.stdout)
    );
    // Every dialect was asked: the SDK's requests reached each vendor's own wire.
    for path in [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1beta/models/",
        "/model/amazon.nova-pro-v1%3A0/converse",
        "/model/anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke",
        "/v1/projects/p/locations/us-central1/publishers/google/",
        "/v1/projects/p/locations/us-east5/publishers/anthropic/",
    ] {
        assert!(
            sim.requests().iter().any(|r| r.path.starts_with(path)),
            "no request at {path}"
        );
    }
}
