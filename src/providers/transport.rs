//! The HTTP exchange every vendor provider makes: post a JSON body, turn a failure status
//! into that vendor's typed error, read a whole answer, or open a stream (falling back to a
//! whole JSON answer when a server ignores the stream request).

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{EventHandler, sse_chat_stream};
use crate::error::{Error, ErrorKind};
use crate::http::{self, classify};
use crate::provider::CallContext;
use crate::types::{ChatResponse, ChatStream};

/// Largest error body read to build an error.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Posts `body` to `url`. A non-success status becomes `on_error(status, headers, body)`.
pub(crate) async fn post_json(
    cx: &CallContext,
    url: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
    on_error: impl FnOnce(u16, &HeaderMap, &[u8]) -> Error,
) -> Result<reqwest::Response, Error> {
    let mut builder = cx.http().post(url);
    // Entry by entry: cheaper than cloning the whole map (values are shared, not copied).
    for (name, value) in headers {
        builder = builder.header(name.clone(), value.clone());
    }
    let resp = builder
        .body(body)
        .send()
        .await
        .map_err(http::transport_error)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    // An error body that cannot be read whole is still an error of this status.
    let body = http::read_body(resp, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    Err(on_error(status.as_u16(), &headers, &body))
}

/// Reads a whole successful answer and decodes it, keeping the vendor's request id.
pub(crate) async fn read_response(
    resp: reqwest::Response,
    decode: impl FnOnce(&[u8]) -> Result<ChatResponse, Error>,
) -> Result<ChatResponse, Error> {
    let request_id = classify::request_id(resp.headers());
    let body = http::read_body(resp, http::MAX_BODY_BYTES).await?;
    let mut out = decode(&body)?;
    out.meta.request_id = request_id;
    Ok(out)
}

/// A stream over a successful answer: SSE through `handler`, or — when the server answered
/// JSON instead — `decode_json` of the whole body.
pub(crate) async fn open_stream<H: EventHandler + Unpin>(
    resp: reqwest::Response,
    handler: H,
    decode_json: impl FnOnce(&[u8]) -> Result<ChatStream, Error>,
) -> Result<ChatStream, Error> {
    let request_id = classify::request_id(resp.headers());
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    let mut stream = if is_json {
        let body = http::read_body(resp, http::MAX_BODY_BYTES).await?;
        decode_json(&body)?
    } else {
        sse_chat_stream(resp, handler)
    };
    stream.meta_mut().request_id = request_id;
    Ok(stream)
}

/// A stream of the chunks a whole response would have streamed.
pub(crate) fn stream_of(resp: ChatResponse) -> ChatStream {
    ChatStream::new(futures::stream::iter(
        crate::types::response_to_chunks(resp).into_iter().map(Ok),
    ))
}

/// Adds a caller's header to every request. The value is marked sensitive (it may be a
/// credential), so it never shows in logs.
pub(crate) fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), Error> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
        Error::new(ErrorKind::Config, format!("bad header name {name:?}")).with_source(e)
    })?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|e| Error::new(ErrorKind::Config, "bad header value").with_source(e))?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Sets the JSON content type and, unless `secret` is empty, the credential header. A
/// secret with bytes a header cannot hold is left out: the vendor will refuse the call.
pub(crate) fn auth_headers(headers: &mut HeaderMap, name: HeaderName, secret: &str) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if secret.is_empty() {
        return;
    }
    if let Ok(mut v) = HeaderValue::from_str(secret) {
        v.set_sensitive(true);
        headers.insert(name, v);
    }
}
