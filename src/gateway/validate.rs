//! Requests every vendor would refuse for a reason the gateway can see locally get a `400`
//! naming the field (OpenAI's `param`), before anything is sent: a token cap of 0, a
//! temperature or `top_p` out of range, a `tool_choice` or `response_format` that is no form
//! OpenAI accepts, a message without content where one is needed, `stream_options` on a
//! plain call. The ranges are OpenAI's (the widest of the vendors'); narrower ones (e.g.
//! Anthropic's temperature up to 1) are the codecs' to map.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::error_on;
use crate::types::{ChatRequest, ResponseFormat, Role, ToolChoice};

/// The first field of `req` a vendor would refuse, as the `400` the client gets; `None`
/// when every field is acceptable.
pub(super) fn check(req: &ChatRequest) -> Option<Response> {
    fields(req).err().map(|(param, message)| {
        error_on(
            StatusCode::BAD_REQUEST,
            &message,
            "invalid_request_error",
            Some("invalid_value"),
            Some(&param),
        )
    })
}

type Refusal = (String, String);

fn refuse(param: impl Into<String>, message: impl Into<String>) -> Result<(), Refusal> {
    Err((param.into(), message.into()))
}

fn fields(req: &ChatRequest) -> Result<(), Refusal> {
    for (name, cap) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if cap == Some(0) {
            return refuse(name, format!("`{name}` must be at least 1"));
        }
    }
    if req.n == Some(0) {
        return refuse("n", "`n` must be at least 1");
    }
    range("temperature", req.temperature, 0.0, 2.0)?;
    range("top_p", req.top_p, 0.0, 1.0)?;
    for name in ["presence_penalty", "frequency_penalty"] {
        extra_number(req, name, -2.0, 2.0)?;
    }
    extra_number(req, "top_logprobs", 0.0, 20.0)?;
    if req.stream != Some(true) && req.stream_options.is_some() {
        return refuse(
            "stream_options",
            "`stream_options` is only allowed when `stream` is true",
        );
    }
    tool_choice(req)?;
    response_format(req)?;
    messages(req)
}

/// `value` within `min..=max` (and a number: NaN is out of every range).
fn range(name: &str, value: Option<f64>, min: f64, max: f64) -> Result<(), Refusal> {
    match value {
        Some(v) if !(min..=max).contains(&v) => refuse(
            name,
            format!("`{name}` must be from {min} to {max}, not {v}"),
        ),
        _ => Ok(()),
    }
}

/// A field the crate keeps in `extra`: when present, a number within `min..=max`.
fn extra_number(req: &ChatRequest, name: &str, min: f64, max: f64) -> Result<(), Refusal> {
    match req.extra.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) => range(name, n.as_f64(), min, max),
        Some(_) => refuse(name, format!("`{name}` must be a number")),
    }
}

fn tool_choice(req: &ChatRequest) -> Result<(), Refusal> {
    let Some(choice) = &req.tool_choice else {
        return Ok(());
    };
    if let ToolChoice::Other(v) = choice {
        // Newer object forms (`allowed_tools`, `custom`) pass on; anything else is no form.
        if v.get("type").and_then(Value::as_str).is_none() {
            return refuse(
                "tool_choice",
                "`tool_choice` must be \"none\", \"auto\", \"required\" or an object with a \
                 `type` (e.g. {\"type\": \"function\", \"function\": {\"name\": …}})",
            );
        }
    }
    if req.tools.is_empty() && !matches!(choice, ToolChoice::None) {
        return refuse(
            "tool_choice",
            "`tool_choice` is only allowed when `tools` are given",
        );
    }
    if let ToolChoice::Function(name) = choice
        && !req
            .tools
            .iter()
            .any(|t| t.function.as_ref().is_some_and(|f| f.name == *name))
    {
        return refuse(
            "tool_choice",
            format!(
                "`tool_choice` names the function {:?}, which is not among `tools`",
                super::options::clip(name)
            ),
        );
    }
    Ok(())
}

fn response_format(req: &ChatRequest) -> Result<(), Refusal> {
    let Some(ResponseFormat::Other(v)) = &req.response_format else {
        return Ok(());
    };
    match v.get("type").and_then(Value::as_str) {
        Some("json_schema") => refuse(
            "response_format.json_schema",
            "`response_format.json_schema` must be an object with a `name` (and a `schema`)",
        ),
        Some(kind) => refuse(
            "response_format.type",
            format!(
                "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\", \
                 not {:?}",
                super::options::clip(kind)
            ),
        ),
        None => refuse(
            "response_format",
            "`response_format` must be an object with a `type`",
        ),
    }
}

fn messages(req: &ChatRequest) -> Result<(), Refusal> {
    for (i, m) in req.messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        match &m.role {
            Role::Other(role) => {
                return refuse(
                    at("role"),
                    format!(
                        "`messages[{i}].role` must be system, developer, user, assistant or \
                         tool, not {:?}",
                        super::options::clip(role)
                    ),
                );
            }
            Role::Assistant if m.content.is_none() && m.tool_calls.is_empty() => {
                return refuse(
                    at("content"),
                    format!(
                        "`messages[{i}].content` is required unless the assistant turn has \
                         `tool_calls`"
                    ),
                );
            }
            Role::Assistant => {}
            Role::Tool => {
                if m.content.is_none() {
                    return refuse(
                        at("content"),
                        format!("`messages[{i}].content` is required"),
                    );
                }
                if m.tool_call_id.is_none() {
                    return refuse(
                        at("tool_call_id"),
                        format!("`messages[{i}].tool_call_id` is required on a tool message"),
                    );
                }
            }
            _ if m.content.is_none() => {
                return refuse(
                    at("content"),
                    format!("`messages[{i}].content` is required"),
                );
            }
            _ => {}
        }
    }
    Ok(())
}
