//! Routing hints from clients: the request's intent, labels and required tags, read from the
//! body (top-level fields, as an OpenAI SDK's `extra_body` sends them, or inside
//! `metadata`) and from `x-polyrelay-*` headers, and removed from the body so that no
//! vendor ever receives them.
//!
//! | hint | body | `metadata` | header |
//! |---|---|---|---|
//! | intent | `"intent": "billing"` | `"intent": "billing"` | `x-polyrelay-intent: billing` |
//! | labels | `"labels": ["vip"]` | `"labels": "vip,de"` (or an array) | `x-polyrelay-labels: vip, de` |
//! | required tags | `"require_tags": ["on-prem"]` | `"require_tags": "on-prem"` | `x-polyrelay-require-tags: on-prem` |
//!
//! Labels and tags from every place add up; an intent given in two places must be the same.
//! Required tags only narrow where a request may go: they are added to whatever the
//! operator configured (see [`ChatRequest::require_tags`]), never replace it.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::error_on;
use super::options::clip;
use crate::types::ChatRequest;

/// Header naming the request's intent.
pub const INTENT_HEADER: &str = "x-polyrelay-intent";
/// Header listing the request's labels, comma-separated.
pub const LABELS_HEADER: &str = "x-polyrelay-labels";
/// Header listing the tags every target of the request must carry, comma-separated.
pub const REQUIRE_TAGS_HEADER: &str = "x-polyrelay-require-tags";

/// The most labels (and, apart, the most required tags) a request may carry: routing looks
/// at a handful; more is a client's mistake or memory it should not make the gateway hold.
pub const MAX_HINTS: usize = 32;
/// The longest intent, label or tag, in characters.
pub const MAX_HINT_CHARS: usize = 128;

/// Which hint a value is for, with its body field name.
#[derive(Clone, Copy)]
enum Hint {
    Intent,
    Labels,
    RequireTags,
}

impl Hint {
    const ALL: [Hint; 3] = [Hint::Intent, Hint::Labels, Hint::RequireTags];

    fn field(self) -> &'static str {
        match self {
            Hint::Intent => "intent",
            Hint::Labels => "labels",
            Hint::RequireTags => "require_tags",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Hint::Intent => INTENT_HEADER,
            Hint::Labels => LABELS_HEADER,
            Hint::RequireTags => REQUIRE_TAGS_HEADER,
        }
    }
}

/// The hints gathered from every place, before they go onto the request.
#[derive(Default)]
struct Gathered {
    /// The intent and where it was read (for a conflict's message).
    intent: Option<(String, String)>,
    labels: Vec<String>,
    require_tags: Vec<String>,
}

/// Moves the client's routing hints from `req`'s body and from `headers` onto `req`'s
/// relay hints, or answers `400 invalid_request_error` naming the field or header at fault.
pub(super) fn take(req: &mut ChatRequest, headers: &HeaderMap) -> Result<(), Refusal> {
    let mut got = Gathered::default();
    for hint in Hint::ALL {
        if let Some(value) = req.extra.remove(hint.field()) {
            got.add(
                hint,
                hint.field(),
                values(hint, hint.field(), value, false)?,
            )?;
        }
    }
    if let Some(Value::Object(meta)) = req.extra.get_mut("metadata") {
        take_metadata(meta, &mut got)?;
        if meta.is_empty() {
            req.extra.remove("metadata");
        }
    }
    for hint in Hint::ALL {
        for value in headers.get_all(hint.header()) {
            let Ok(text) = value.to_str() else {
                return Err(invalid(
                    hint.header(),
                    format!("header `{}` is not visible ASCII", hint.header()),
                ));
            };
            let list = split(hint, hint.header(), text)?;
            got.add(hint, hint.header(), list)?;
        }
    }
    if let Some((intent, _)) = got.intent {
        req.relay.intent = Some(intent);
    }
    req.relay.labels.extend(got.labels);
    req.relay.require_tags.extend(got.require_tags);
    Ok(())
}

/// The hints inside a body's `metadata` object (whose values OpenAI's API wants as strings:
/// lists may be comma-separated strings there), removed from it.
fn take_metadata(meta: &mut Map<String, Value>, got: &mut Gathered) -> Result<(), Refusal> {
    for hint in Hint::ALL {
        if let Some(value) = meta.remove(hint.field()) {
            let at = format!("metadata.{}", hint.field());
            got.add(hint, &at, values(hint, &at, value, true)?)?;
        }
    }
    Ok(())
}

impl Gathered {
    /// Adds `list`, read at `at`, to `hint`'s values.
    fn add(&mut self, hint: Hint, at: &str, list: Vec<String>) -> Result<(), Refusal> {
        match hint {
            Hint::Intent => {
                for intent in list {
                    match &self.intent {
                        Some((seen, where_seen)) if *seen != intent => {
                            return Err(invalid(
                                at,
                                format!(
                                    "the intent is {:?} at `{where_seen}` but {:?} at `{at}`",
                                    clip(seen),
                                    clip(&intent)
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => self.intent = Some((intent, at.to_owned())),
                    }
                }
            }
            Hint::Labels => extend_unique(&mut self.labels, list),
            Hint::RequireTags => extend_unique(&mut self.require_tags, list),
        }
        let count = match hint {
            Hint::Intent => 0,
            Hint::Labels => self.labels.len(),
            Hint::RequireTags => self.require_tags.len(),
        };
        if count > MAX_HINTS {
            return Err(invalid(
                at,
                format!(
                    "a request carries at most {MAX_HINTS} distinct {}",
                    hint.field()
                ),
            ));
        }
        Ok(())
    }
}

fn extend_unique(into: &mut Vec<String>, list: Vec<String>) {
    for item in list {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// The values of a hint written as JSON at `at`: a string (an intent; in `metadata`, or for
/// a list, a comma-separated list) or, for labels and tags, an array of strings.
fn values(hint: Hint, at: &str, value: Value, in_metadata: bool) -> Result<Vec<String>, Refusal> {
    match (hint, value) {
        (Hint::Intent, Value::String(s)) => one(at, s.trim()).map(|s| vec![s]),
        (Hint::Intent, _) => Err(invalid(at, format!("`{at}` must be a string"))),
        (_, Value::String(s)) if in_metadata => split(hint, at, &s),
        (_, Value::String(s)) => one(at, s.trim()).map(|s| vec![s]),
        (_, Value::Array(items)) => {
            if items.len() > MAX_HINTS {
                return Err(invalid(
                    at,
                    format!("`{at}` holds more than {MAX_HINTS} entries"),
                ));
            }
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => one(at, s.trim()),
                    _ => Err(invalid(at, format!("`{at}` must be an array of strings"))),
                })
                .collect()
        }
        _ => Err(invalid(at, format!("`{at}` must be an array of strings"))),
    }
}

/// A header's or a metadata string's values: comma-separated for lists, the whole (trimmed)
/// text for an intent.
fn split(hint: Hint, at: &str, text: &str) -> Result<Vec<String>, Refusal> {
    match hint {
        Hint::Intent => one(at, text.trim()).map(|s| vec![s]),
        Hint::Labels | Hint::RequireTags => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(MAX_HINTS + 1)
            .map(|s| one(at, s))
            .collect(),
    }
}

/// One intent, label or tag: not empty, at most [`MAX_HINT_CHARS`] characters.
fn one(at: &str, value: &str) -> Result<String, Refusal> {
    if value.is_empty() {
        return Err(invalid(at, format!("`{at}` holds an empty value")));
    }
    if value.chars().nth(MAX_HINT_CHARS).is_some() {
        return Err(invalid(
            at,
            format!(
                "`{at}` holds {:?}, longer than {MAX_HINT_CHARS} characters",
                clip(value)
            ),
        ));
    }
    Ok(value.to_owned())
}

/// A hint the gateway refuses: where it was read, and why.
#[derive(Debug)]
pub(super) struct Refusal {
    at: String,
    message: String,
}

impl Refusal {
    /// `400 invalid_request_error`, code `invalid_routing_hint`; `param` names the field or
    /// header at fault.
    pub(super) fn into_response(self) -> Response {
        error_on(
            StatusCode::BAD_REQUEST,
            &self.message,
            "invalid_request_error",
            Some("invalid_routing_hint"),
            Some(&self.at),
        )
    }
}

fn invalid(at: &str, message: String) -> Refusal {
    Refusal {
        at: at.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap_or_else(|e| panic!("a request: {e}"))
    }

    #[test]
    fn hints_from_body_metadata_and_headers_add_up_and_leave_the_body() {
        let mut req = request(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "intent": "billing", "labels": ["vip"],
            "metadata": {"labels": "de, vip", "require_tags": "on-prem", "customer": "42"},
        }));
        let mut headers = HeaderMap::new();
        headers.insert(INTENT_HEADER, HeaderValue::from_static("billing"));
        headers.insert(REQUIRE_TAGS_HEADER, HeaderValue::from_static("eu,on-prem"));
        assert!(take(&mut req, &headers).is_ok());
        assert_eq!(req.relay.intent.as_deref(), Some("billing"));
        assert_eq!(req.relay.labels, ["vip", "de"]);
        assert_eq!(req.relay.require_tags, ["on-prem", "eu"]);
        assert!(!req.extra.contains_key("intent") && !req.extra.contains_key("labels"));
        assert_eq!(req.extra.get("metadata"), Some(&json!({"customer": "42"})));
    }

    #[test]
    fn metadata_left_empty_is_removed() {
        let mut req = request(json!({
            "model": "m", "messages": [], "metadata": {"intent": "refund"},
        }));
        assert!(take(&mut req, &HeaderMap::new()).is_ok());
        assert_eq!(req.relay.intent.as_deref(), Some("refund"));
        assert!(!req.extra.contains_key("metadata"));
    }

    #[test]
    fn bad_hints_are_400s() {
        for body in [
            json!({"model": "m", "messages": [], "intent": 5}),
            json!({"model": "m", "messages": [], "labels": [1]}),
            json!({"model": "m", "messages": [], "labels": [""]}),
            json!({"model": "m", "messages": [], "intent": "x".repeat(MAX_HINT_CHARS + 1)}),
            json!({"model": "m", "messages": [], "require_tags": vec!["t"; MAX_HINTS + 1]}),
            json!({"model": "m", "messages": [], "intent": "a", "metadata": {"intent": "b"}}),
        ] {
            let mut req = request(body.clone());
            let refused = take(&mut req, &HeaderMap::new());
            assert!(
                refused.is_err_and(|r| r.into_response().status() == StatusCode::BAD_REQUEST),
                "{body}"
            );
        }
    }
}
