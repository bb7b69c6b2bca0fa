//! Gemini streaming (`streamGenerateContent?alt=sse`): `data: {GenerateContentResponse}`
//! events separated by CRLF CRLF, no event names, no `[DONE]`. The answer is whole once every
//! candidate has sent its `finishReason`.
//!
//! The same grammar turns a non-streamed response (one `GenerateContentResponse`) and the
//! JSON-array form of a stream into chunks, so the three forms of one answer fold to the same
//! [`ChatResponse`](crate::ChatResponse) — tool-call ids included.

use std::collections::{BTreeMap, VecDeque};

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::partial::apply_partial_args;

use super::wire::{self, GENERATED_ID_PREFIX, WireCandidate, WireFunctionCall, WireResponse};
use crate::http::sse::SseEvent;
use crate::providers::EventHandler;
use crate::secret::ApiKey;
use crate::types::{
    ChatChunk, ChatResponse, ChunkChoice, Delta, FinishReason, Role, StreamAccumulator,
    ToolCallDelta,
};
use crate::types::{Error, ErrorKind};

/// The Gemini stream grammar.
///
/// * Text parts become content deltas; parts with `thought: true` reasoning deltas.
/// * A `thoughtSignature` on a text or thought part becomes [`Delta::thinking_signature`]
///   (closing a [`ThinkingBlock`](crate::ThinkingBlock) over the reasoning since the previous
///   signature); on a function-call part, [`ToolCallDelta::thought_signature`].
/// * `functionCall` parts arrive whole and become one tool-call delta each, arguments the
///   compact JSON of `args`, index counted per candidate. The id is `functionCall.id` when
///   Gemini sends one, else `gcall_` plus a hash of the response id, candidate, call number,
///   name and arguments: the same answer always gets the same ids, streamed or not.
/// * Vertex's streamed arguments (`functionCall.partialArgs[{jsonPath, stringValue |
///   numberValue | boolValue | nullValue}]` with `willContinue`) are assembled into the
///   arguments object; the call is emitted whole when it ends (`willContinue` absent).
/// * `usageMetadata` (cumulative) goes on every chunk; the finish reason on the candidate's
///   last chunk, `STOP` reported as [`FinishReason::ToolCalls`] when the candidate called tools.
/// * `{"error": {…}}` in place of a response is a typed error; a prompt blocked before any
///   candidate (`promptFeedback.blockReason`) is [`ErrorKind::ContentFiltered`]. The end of the
///   body before every candidate finished is [`ErrorKind::StreamInterrupted`].
#[derive(Debug, Default)]
pub struct GeminiEvents {
    /// Replaced by `[REDACTED]` in the errors this handler builds (vendors echo keys).
    key: Option<ApiKey>,
    id: String,
    model: String,
    created: u64,
    candidates: BTreeMap<u32, CandidateState>,
}

#[derive(Debug, Default)]
struct CandidateState {
    started: bool,
    finished: bool,
    /// Tool calls emitted so far (the next call's index).
    calls: u32,
    /// A Vertex call whose arguments are still streaming.
    pending: Option<PendingCall>,
}

#[derive(Debug)]
struct PendingCall {
    id: Option<String>,
    name: String,
    args: Value,
    /// Bytes the streamed pieces added to `args` (bounded by `partial::MAX_ARGS_BYTES`).
    grown: usize,
    signature: Option<String>,
}

impl GeminiEvents {
    /// A handler for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler that redacts `key` from the errors it reports.
    pub(crate) fn with_key(key: Option<ApiKey>) -> Self {
        GeminiEvents {
            key,
            ..Self::default()
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.redact(text),
            None => text.to_owned(),
        }
    }

    /// Whether every candidate seen has sent its finish reason (and at least one was seen).
    pub(crate) fn is_whole(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.values().all(|c| c.finished)
    }

    /// Handles one `GenerateContentResponse`; `raw` is its JSON text, kept in errors.
    pub(crate) fn on_response(
        &mut self,
        wire: WireResponse,
        raw: &[u8],
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<(), Error> {
        if wire.error.as_ref().is_some_and(|e| !e.is_null()) {
            return Err(wire::error_from_body(None, &HeaderMap::new(), raw, &|s| {
                self.redact(s)
            }));
        }
        if let Some(id) = wire.response_id.filter(|s| !s.is_empty()) {
            self.id = id;
        }
        if let Some(model) = wire.model_version.filter(|s| !s.is_empty()) {
            self.model = model;
        }
        if let Some(t) = wire.create_time.as_deref().and_then(wire::parse_rfc3339) {
            self.created = t;
        }
        let candidates = wire.candidates.unwrap_or_default();
        if candidates.is_empty()
            && let Some(e) = wire
                .prompt_feedback
                .as_ref()
                .and_then(|f| wire::blocked_prompt(f, &self.redact(&String::from_utf8_lossy(raw))))
        {
            return Err(e);
        }
        let usage = wire.usage_metadata.and_then(|u| u.to_usage());

        // Deltas per candidate; one event may need several chunks (see `candidate`).
        let mut per_candidate = Vec::with_capacity(candidates.len());
        for (pos, c) in candidates.into_iter().enumerate() {
            per_candidate.push(self.candidate(c, pos)?);
        }
        let rounds = per_candidate.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for round in 0..rounds {
            let choices: Vec<ChunkChoice> = per_candidate
                .iter_mut()
                .filter_map(|deltas| deltas.get_mut(round).map(std::mem::take))
                .collect();
            out.push_back(ChatChunk {
                id: self.id.clone(),
                created: self.created,
                model: self.model.clone(),
                choices,
                usage: if round + 1 == rounds { usage } else { None },
                ..ChatChunk::default()
            });
        }
        Ok(())
    }

    /// The deltas of one candidate in one event: usually one; more when the event holds two
    /// signatures, or reasoning after a signature (one delta carries one signature, closing
    /// the reasoning before it).
    fn candidate(&mut self, c: WireCandidate, pos: usize) -> Result<Vec<ChunkChoice>, Error> {
        let index = c.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX));
        let response_id = self.id.clone();
        let st = self.candidates.entry(index).or_default();
        let mut deltas = vec![Delta::default()];
        if !st.started {
            st.started = true;
            deltas[0].role = Some(Role::Assistant);
        }
        let parts = c.content.and_then(|c| c.parts).unwrap_or_default();
        for part in parts {
            let signature = part.thought_signature.filter(|s| !s.is_empty());
            if let Some(fc) = part.function_call {
                let calls = st.function_call(fc, signature, index, &response_id)?;
                if let Some(d) = deltas.last_mut() {
                    d.tool_calls.extend(calls);
                }
                continue;
            }
            let thought = part.thought == Some(true);
            let text = part.text.filter(|t| !t.is_empty());
            let must_split = deltas.last().is_some_and(|d| {
                d.thinking_signature.is_some()
                    && ((thought && text.is_some()) || signature.is_some())
            });
            if must_split {
                deltas.push(Delta::default());
            }
            let Some(d) = deltas.last_mut() else {
                continue;
            };
            if let Some(t) = text {
                let slot = if thought {
                    &mut d.reasoning
                } else {
                    &mut d.content
                };
                match slot {
                    Some(s) => s.push_str(&t),
                    None => *slot = Some(t),
                }
            }
            if signature.is_some() {
                d.thinking_signature = signature;
                d.thinking_source = Some(super::wire::SOURCE.to_owned());
            }
            // Other parts (inline images, executable code…) have no place in a chat delta.
        }
        let finish = c.finish_reason.filter(|s| !s.is_empty()).map(|r| {
            if let Some(call) = st.flush(index, &response_id)
                && let Some(d) = deltas.last_mut()
            {
                d.tool_calls.push(call);
            }
            st.finished = true;
            finish_reason(&r, st.calls > 0)
        });
        let last = deltas.len() - 1;
        Ok(deltas
            .into_iter()
            .enumerate()
            .map(|(i, delta)| {
                let finish = if i == last { finish.clone() } else { None };
                choice(index, delta, finish)
            })
            .collect())
    }

    /// Emits the calls still assembling (a body that ended without their end marker but is
    /// otherwise whole, e.g. a non-streamed response).
    pub(crate) fn flush_pending(&mut self, out: &mut VecDeque<ChatChunk>) {
        let response_id = self.id.clone();
        let mut choices = Vec::new();
        for (index, st) in &mut self.candidates {
            if let Some(call) = st.flush(*index, &response_id) {
                let mut delta = Delta::default();
                delta.tool_calls.push(call);
                choices.push(choice(*index, delta, None));
            }
        }
        if !choices.is_empty() {
            out.push_back(ChatChunk {
                id: self.id.clone(),
                created: self.created,
                model: self.model.clone(),
                choices,
                ..ChatChunk::default()
            });
        }
    }

    /// The end of the body: whole when every candidate finished.
    pub(crate) fn end(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.is_whole() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended before a finish reason",
            ))
        }
    }

    fn on_data(&mut self, data: &str, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        let wire: WireResponse = serde_json::from_str(data).map_err(|e| {
            Error::new(ErrorKind::Decode, "malformed stream event")
                .with_body(&self.redact(data))
                .with_source(e)
        })?;
        self.on_response(wire, data.as_bytes(), out)
    }
}

impl CandidateState {
    /// Handles one `functionCall` part; returns the calls it completes (a call that
    /// interrupts one still assembling completes that one first).
    fn function_call(
        &mut self,
        fc: WireFunctionCall,
        signature: Option<String>,
        index: u32,
        response_id: &str,
    ) -> Result<Vec<ToolCallDelta>, Error> {
        let mut done = Vec::new();
        let more = fc.will_continue == Some(true);
        let partial = fc.partial_args.unwrap_or_default();
        let id = fc.id.filter(|s| !s.is_empty());
        match fc.name.filter(|s| !s.is_empty()) {
            Some(name) => {
                if let Some(call) = self.flush(index, response_id) {
                    done.push(call);
                }
                let mut args = match fc.args {
                    Some(v @ Value::Object(_)) => v,
                    _ => Value::Object(Map::new()),
                };
                let mut grown = 0;
                apply_partial_args(&mut args, &partial, &mut grown)?;
                self.pending = Some(PendingCall {
                    id,
                    name,
                    args,
                    grown,
                    signature,
                });
                if !more && let Some(call) = self.flush(index, response_id) {
                    done.push(call);
                }
            }
            None => match self.pending.as_mut() {
                Some(p) => {
                    if let Err(e) = apply_partial_args(&mut p.args, &partial, &mut p.grown) {
                        // Arguments known to be wrong are never emitted as a call.
                        self.pending = None;
                        return Err(e);
                    }
                    if p.signature.is_none() {
                        p.signature = signature;
                    }
                    if p.id.is_none() {
                        p.id = id;
                    }
                    if !more && let Some(call) = self.flush(index, response_id) {
                        done.push(call);
                    }
                }
                // `{}` or `{willContinue: true}` between calls: nothing to do.
                None if partial.is_empty() && fc.args.is_none() => {}
                None => {
                    return Err(Error::new(
                        ErrorKind::Decode,
                        "functionCall arguments arrived for no function call (no name seen)",
                    ));
                }
            },
        }
        Ok(done)
    }

    /// Completes the call being assembled, if any.
    fn flush(&mut self, index: u32, response_id: &str) -> Option<ToolCallDelta> {
        let p = self.pending.take()?;
        let n = self.calls;
        self.calls += 1;
        let arguments = p.args.to_string();
        let id =
            p.id.unwrap_or_else(|| generated_id(response_id, index, n, &p.name, &arguments));
        let mut d = ToolCallDelta::new(n, Some(id), Some(p.name), Some(arguments));
        d.thought_signature = p.signature;
        Some(d)
    }
}

/// A choice delta, built field by field so that fields added to the shared type later take
/// their defaults here.
#[allow(clippy::field_reassign_with_default)]
fn choice(index: u32, delta: Delta, finish_reason: Option<FinishReason>) -> ChunkChoice {
    let mut c = ChunkChoice::default();
    c.index = index;
    c.delta = delta;
    c.finish_reason = finish_reason;
    c
}

/// A stable id for a call Gemini sent without one.
fn generated_id(response_id: &str, candidate: u32, n: u32, name: &str, args: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and platforms (unlike `DefaultHasher`).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(response_id.as_bytes());
    eat(&candidate.to_le_bytes());
    eat(&n.to_le_bytes());
    eat(name.as_bytes());
    eat(args.as_bytes());
    format!("{GENERATED_ID_PREFIX}{h:016x}")
}

/// Gemini's finish reason in the unified vocabulary.
pub(crate) fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "STOP" if called_tools => FinishReason::ToolCalls,
        // Vertex's Model Armor blocks an answer with no content and this reason.
        "IMAGE_SAFETY" | "IMAGE_PROHIBITED_CONTENT" | "IMAGE_RECITATION" | "MODEL_ARMOR" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::from(other),
    }
}

impl EventHandler for GeminiEvents {
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        self.on_data(data, out)?;
        // No terminal event: a usage-only event may still follow the finish reason.
        Ok(false)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        self.end(out)
    }
}

/// Decodes a successful (HTTP 2xx) `generateContent` body. An error object in the body, or a
/// prompt blocked before any candidate (`promptFeedback.blockReason`), is an `Err`; so is a
/// body with nothing in it (`{}`, no `candidates`, another vendor's dialect, or candidates
/// without parts or `finishReason`), an [`ErrorKind::Decode`] error.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
    decode_response_with(body, None)
}

/// [`decode_response`], redacting `key` from errors.
pub(crate) fn decode_response_with(
    body: &[u8],
    key: Option<&ApiKey>,
) -> Result<ChatResponse, Error> {
    let mut events = GeminiEvents::with_key(key.cloned());
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| wire::not_a_response(&events.redact(&String::from_utf8_lossy(body)), e))?;
    let mut out = VecDeque::new();
    events.on_response(wire, body, &mut out)?;
    events.flush_pending(&mut out);
    let mut acc = StreamAccumulator::new();
    for c in &out {
        acc.push(c);
    }
    crate::providers::require_answer(
        acc.finish(),
        "no `candidates` (an empty body, or not a GenerateContentResponse)",
        "no candidate has a part or a `finishReason`",
        || events.redact(&String::from_utf8_lossy(body)),
    )
}

/// Decodes the body `streamGenerateContent` returns without `?alt=sse`: a JSON array of
/// `GenerateContentResponse`s (a single object is taken as a one-element array). Gives the
/// chunks the SSE form of the same answer gives; an error element (`[{"error":{…}}]`) or an
/// answer without a finish reason is an `Err`.
pub fn decode_stream_array(body: &[u8]) -> Result<Vec<ChatChunk>, Error> {
    match decode_stream_array_partial(body, None) {
        (chunks, None) => Ok(chunks),
        (_, Some(e)) => Err(e),
    }
}

/// [`decode_stream_array`] keeping the chunks decoded before an error, and redacting `key`
/// from errors.
pub(crate) fn decode_stream_array_partial(
    body: &[u8],
    key: Option<&ApiKey>,
) -> (Vec<ChatChunk>, Option<Error>) {
    let mut events = GeminiEvents::with_key(key.cloned());
    let root: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let kind = if e.is_eof() {
                ErrorKind::StreamInterrupted
            } else {
                ErrorKind::Decode
            };
            let err = Error::new(kind, "stream body is not a JSON array")
                .with_body(&events.redact(&String::from_utf8_lossy(body)))
                .with_source(e);
            return (Vec::new(), Some(err));
        }
    };
    let items = match root {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out = VecDeque::new();
    for item in items {
        let raw = item.to_string();
        let result = match WireResponse::deserialize(&item) {
            Ok(wire) => events.on_response(wire, raw.as_bytes(), &mut out),
            Err(e) => Err(wire::not_a_response(&events.redact(&raw), e)),
        };
        if let Err(e) = result {
            return (out.into(), Some(e));
        }
    }
    let end = events.end(&mut out).err();
    (out.into(), end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Number, json};

    fn num(n: f64) -> Value {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }

    fn feed(events: &[Value]) -> (Vec<ChatChunk>, Result<(), Error>) {
        let mut h = GeminiEvents::new();
        let mut out = VecDeque::new();
        for e in events {
            let text = e.to_string();
            if let Err(err) = h.on_data(&text, &mut out) {
                return (out.into(), Err(err));
            }
        }
        let end = h.end(&mut out);
        (out.into(), end)
    }

    fn fc_part(fc: Value) -> Value {
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": fc}]}}]})
    }

    #[test]
    fn partial_args_of_every_type_assemble() {
        let events = [
            fc_part(json!({"name": "set", "willContinue": true})),
            fc_part(json!({"partialArgs": [
                {"jsonPath": "$.level", "numberValue": 7},
                {"jsonPath": "$.ratio", "numberValue": 0.5},
                {"jsonPath": "$.on", "boolValue": true},
                {"jsonPath": "$.none", "nullValue": "NULL_VALUE"},
                {"jsonPath": "$.tags[1]", "stringValue": "b", "willContinue": true}
            ], "willContinue": true})),
            fc_part(
                json!({"partialArgs": [{"jsonPath": "$.tags[1]", "stringValue": "ee"}], "willContinue": true}),
            ),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {}}]}, "finishReason": "STOP"}]}),
        ];
        let (chunks, end) = feed(&events);
        end.expect("whole");
        let calls: Vec<&ToolCallDelta> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| &c.delta.tool_calls)
            .collect();
        assert_eq!(calls.len(), 1);
        let args: Value =
            serde_json::from_str(calls[0].function.arguments.as_deref().unwrap_or(""))
                .expect("json");
        assert_eq!(
            args,
            json!({"level": 7, "ratio": num(0.5), "on": true, "none": null, "tags": [null, "bee"]})
        );
        assert_eq!(chunks[3].finish_reason(), Some(&FinishReason::ToolCalls));
    }

    #[test]
    fn orphan_partial_args_and_path_conflicts_are_errors() {
        let (_, r) = feed(&[fc_part(
            json!({"partialArgs": [{"jsonPath": "$.a", "stringValue": "x"}]}),
        )]);
        assert_eq!(r.expect_err("orphan").kind(), ErrorKind::Decode);
        let (_, r) = feed(&[
            fc_part(json!({"name": "f", "willContinue": true})),
            fc_part(
                json!({"partialArgs": [{"jsonPath": "$.a", "stringValue": "x"}], "willContinue": true}),
            ),
            fc_part(
                json!({"partialArgs": [{"jsonPath": "$.a[0]", "stringValue": "y"}], "willContinue": true}),
            ),
        ]);
        assert_eq!(r.expect_err("conflict").kind(), ErrorKind::Decode);
    }

    #[test]
    fn a_new_call_completes_the_one_assembling() {
        let (chunks, end) = feed(&[
            fc_part(json!({"name": "a", "willContinue": true})),
            fc_part(
                json!({"partialArgs": [{"jsonPath": "$.x", "numberValue": 1}], "willContinue": true}),
            ),
            fc_part(json!({"name": "b", "args": {"y": 2}})),
            json!({"candidates": [{"finishReason": "MAX_TOKENS"}]}),
        ]);
        end.expect("whole");
        let calls: Vec<(u32, String, String)> = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .flat_map(|c| &c.delta.tool_calls)
            .map(|t| {
                (
                    t.index.unwrap_or(99),
                    t.function.name.clone().unwrap_or_default(),
                    t.function.arguments.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (0, "a".into(), r#"{"x":1}"#.into()),
                (1, "b".into(), r#"{"y":2}"#.into())
            ]
        );
        // MAX_TOKENS stays Length even with calls.
        assert_eq!(chunks[3].finish_reason(), Some(&FinishReason::Length));
    }

    #[test]
    fn two_signatures_in_one_event_split_into_two_chunks() {
        let (chunks, end) = feed(&[json!({
            "candidates": [{"content": {"parts": [
                {"text": "think A", "thought": true, "thoughtSignature": "S1"},
                {"text": "think B", "thought": true},
                {"text": "answer", "thoughtSignature": "S2"}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 1}
        })]);
        end.expect("whole");
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[0].choices[0].delta.reasoning.as_deref(),
            Some("think A")
        );
        assert_eq!(
            chunks[0].choices[0].delta.thinking_signature.as_deref(),
            Some("S1")
        );
        assert!(chunks[0].usage.is_none() && chunks[0].finish_reason().is_none());
        assert_eq!(
            chunks[1].choices[0].delta.reasoning.as_deref(),
            Some("think B")
        );
        assert_eq!(
            chunks[1].choices[0].delta.content.as_deref(),
            Some("answer")
        );
        assert_eq!(
            chunks[1].choices[0].delta.thinking_signature.as_deref(),
            Some("S2")
        );
        assert!(chunks[1].usage.is_some());
        assert_eq!(chunks[1].finish_reason(), Some(&FinishReason::Stop));
    }

    #[test]
    fn every_candidate_must_finish() {
        let (_, end) = feed(&[json!({"candidates": [
            {"index": 0, "content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
            {"index": 1, "content": {"parts": [{"text": "b"}]}}
        ]})]);
        assert_eq!(
            end.expect_err("cand 1 open").kind(),
            ErrorKind::StreamInterrupted
        );
        let (_, end) = feed(&[json!({"usageMetadata": {"promptTokenCount": 3}})]);
        assert_eq!(
            end.expect_err("no candidate").kind(),
            ErrorKind::StreamInterrupted
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", false), FinishReason::Stop);
        assert_eq!(finish_reason("STOP", true), FinishReason::ToolCalls);
        assert_eq!(finish_reason("MAX_TOKENS", true), FinishReason::Length);
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "MODEL_ARMOR",
        ] {
            assert_eq!(finish_reason(r, false), FinishReason::ContentFilter, "{r}");
        }
        assert_eq!(
            finish_reason("MALFORMED_FUNCTION_CALL", false),
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
        );
    }

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let a = generated_id("r", 0, 0, "f", "{}");
        assert_eq!(a, generated_id("r", 0, 0, "f", "{}"));
        assert!(a.starts_with(GENERATED_ID_PREFIX) && a.len() == GENERATED_ID_PREFIX.len() + 16);
        assert_ne!(a, generated_id("r", 0, 1, "f", "{}"));
        assert_ne!(a, generated_id("r2", 0, 0, "f", "{}"));
        assert_ne!(a, generated_id("r", 1, 0, "f", "{}"));
    }
}
