//! The one HTTP provider: sends what a [`Codec`] encodes and reads what it decodes — the
//! headers and the key (and another key for key pools), the body bounds, the typed error of
//! a failed status, the rate-limit headers and request id, the stream (or the whole JSON
//! answer a server sent instead).

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use super::codec::{Codec, Redactor, StreamDecoder};
use crate::http::{self, classify, ratelimit};
use crate::provider::{CallContext, Provider};
use crate::secret::ApiKey;
use crate::types::{ChatChunk, ChatRequest, ChatResponse, ChatStream, RateLimitInfo};
use crate::types::{Error, ErrorKind};

/// Largest error body read to build an error.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A [`Provider`] for any vendor with a [`Codec`]: the codec says what the bytes mean, this
/// sends them.
///
/// The built-in vendors are instances: [`OpenAi`](super::OpenAi) is
/// `HttpProvider<OpenAiCodec>`, [`Anthropic`](super::Anthropic) and
/// [`Gemini`](super::Gemini) likewise. A vendor of your own is a codec and
/// [`from_codec`](Self::from_codec):
///
/// ```ignore
/// let echo = HttpProvider::from_codec(EchoCodec::new("https://echo.example/v1"), key)
///     .header("x-team", "support")?;
/// ```
///
/// Every request carries `content-type: application/json`, the key where the codec's
/// [`credential`](Codec::credential) puts it, and the headers added with
/// [`header`](Self::header). [`Provider::with_key`] makes the same provider with another key
/// (key pools). Error bodies are read up to 64 KiB, answers up to
/// [`http::MAX_BODY_BYTES`](crate::http::MAX_BODY_BYTES). A stream request answered with a
/// JSON body (a proxy that ignores streaming) is served as chunks of that answer.
#[derive(Clone)]
pub struct HttpProvider<C> {
    pub(crate) codec: C,
    /// Every request's headers: content type, credential, the caller's own.
    pub(crate) headers: HeaderMap,
    pub(crate) key: ApiKey,
    /// `false` when the key could not be put in its header.
    key_sendable: bool,
}

impl<C: Codec> std::fmt::Debug for HttpProvider<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The codec's own Debug shows no secret; the key is redacted from it anyway, in case
        // it was written into a URL's path.
        let codec = self.key.redact(&format!("{:?}", self.codec));
        f.debug_struct("HttpProvider")
            .field("codec", &format_args!("{codec}"))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> HttpProvider<C> {
    /// A provider speaking `codec`, with `key` where the codec's
    /// [`credential`](Codec::credential) puts it (an empty key: no credential), and no header
    /// of the caller's yet.
    pub fn from_codec(mut codec: C, key: impl Into<ApiKey>) -> Self {
        let key = key.into();
        codec.set_key(&key);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let key_sendable = match codec.credential() {
            Some(header) => {
                let (name, secret) = header.for_key(&key);
                crate::http::auth::auth_headers(&mut headers, name, &secret)
            }
            None => true,
        };
        HttpProvider {
            codec,
            headers,
            key,
            key_sendable,
        }
    }

    /// Adds a header to every request (a gateway's own auth, a team id…). The value is
    /// marked sensitive, so it never shows in logs. A header of the same name
    /// (case-insensitive) replaces the one set before, the built-in credential included;
    /// none is added by default.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        crate::http::auth::insert_header(&mut self.headers, name, value)?;
        Ok(self)
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// The codec, to change a setting of it.
    pub(crate) fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// This provider with `key` where the codec puts it ([`Provider::with_key`]): the
    /// credential header replaced (even one set by hand), every other header kept.
    pub(crate) fn keyed(&self, key: ApiKey) -> Self {
        let mut p = self.clone();
        p.codec.set_key(&key);
        if let Some(header) = p.codec.credential() {
            let (name, secret) = header.for_key(&key);
            p.key_sendable = crate::http::auth::replace_credential(&mut p.headers, name, &secret);
        }
        p.key = key;
        p
    }

    fn redactor(&self) -> Redactor<'_> {
        Redactor::new(&self.key)
    }

    /// The URL a call goes to, or the configuration problem every call reports.
    pub(crate) fn call_url(&self, model: &str, stream: bool) -> Result<reqwest::Url, Error> {
        if !self.key_sendable {
            return Err(crate::http::auth::unsendable_key());
        }
        self.codec.url(model, stream)
    }

    /// Builds and signs the request for `model`: URL, body, headers, then the codec's
    /// signature.
    async fn signed_request(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
        cx: &CallContext,
    ) -> Result<reqwest::Request, Error> {
        let url = self.call_url(model, stream)?;
        let body = self.codec.encode(req, model, stream)?;
        let mut builder = cx.http().post(url);
        // Entry by entry: cheaper than cloning the whole map (values are shared, not copied).
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let mut request = builder.body(body).build().map_err(http::transport_error)?;
        self.codec.sign(&mut request, cx.http()).await?;
        Ok(request)
    }

    /// Posts the encoded request. A non-success status becomes the codec's error — after
    /// one more signed attempt when the codec can cure it ([`Codec::should_resend`]).
    async fn send(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
        cx: &CallContext,
    ) -> Result<reqwest::Response, Error> {
        let mut resent = false;
        loop {
            let request = self.signed_request(req, model, stream, cx).await?;
            let resp = cx
                .http()
                .execute(request)
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
            if !resent && self.codec.should_resend(status.as_u16(), &headers, &body) {
                resent = true;
                tracing::debug!(
                    status = status.as_u16(),
                    "signing again after an answer the codec can cure"
                );
                continue;
            }
            return Err(self.codec.decode_error(
                status.as_u16(),
                &headers,
                &body,
                &self.redactor(),
            ));
        }
    }
}

#[async_trait]
impl<C: Codec> Provider for HttpProvider<C> {
    fn name(&self) -> &str {
        self.codec.name()
    }

    /// Refuses a key no header can hold, then what the codec refuses (a base URL that does
    /// not parse…).
    fn validate(&self) -> Result<(), Error> {
        if !self.key_sendable {
            return Err(crate::http::auth::unsendable_key());
        }
        self.codec.validate()
    }

    /// This provider with `key` where the codec puts it, replacing the old key there, even
    /// in a header of that name set by [`header`](HttpProvider::header); every other header
    /// and setting is kept.
    fn with_key(&self, key: ApiKey) -> Option<Arc<dyn Provider>> {
        Some(Arc::new(self.keyed(key)))
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let resp = self.send(req, model, false, cx).await?;
        let (request_id, rate_limit, status) = answer_meta(&resp);
        let body = http::read_body(resp, http::MAX_BODY_BYTES).await?;
        let mut out = self
            .codec
            .decode(&body, &self.redactor())
            .map_err(|e| with_status(e, status))?;
        out.meta.request_id = request_id;
        out.meta.status = Some(status);
        out.meta.rate_limit = rate_limit;
        Ok(out)
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
        cx: &CallContext,
    ) -> Result<ChatStream, Error> {
        let resp = self.send(req, model, true, cx).await?;
        let (request_id, rate_limit, status) = answer_meta(&resp);
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            // Case-insensitive without a lower-cased copy per streamed call.
            .is_some_and(|ct| {
                ct.as_bytes()
                    .windows(4)
                    .any(|w| w.eq_ignore_ascii_case(b"json"))
            });
        let mut stream = if is_json {
            // A whole answer is served as chunks; an error object is that error, and a body
            // with nothing in it a `Decode` error (the decoders refuse both), before the
            // commit point.
            let body = http::read_body(resp, http::MAX_BODY_BYTES).await?;
            self.codec
                .decode_stream_json(&body, &self.redactor())
                .map_err(|e| with_status(e, status))?
        } else {
            body_stream(resp, self.codec.stream_decoder(&self.redactor()))
        };
        let meta = stream.meta_mut();
        meta.request_id = request_id;
        meta.status = Some(status);
        meta.rate_limit = rate_limit;
        Ok(stream)
    }
}

/// A 2xx body that did not decode keeps its HTTP status (errors read from inside the body
/// keep theirs, or none).
fn with_status(e: Error, status: u16) -> Error {
    if e.kind() == ErrorKind::Decode && e.status().is_none() {
        e.with_status(status)
    } else {
        e
    }
}

/// What an answer's head says for its metadata: the vendor's request id, its rate-limit
/// headers (`None` when it sent none) and the status.
fn answer_meta(resp: &reqwest::Response) -> (Option<String>, Option<Box<RateLimitInfo>>, u16) {
    let info = ratelimit::rate_limit_info(resp.headers());
    let rate_limit = (!info.is_empty()).then(|| Box::new(info));
    let request_id = classify::request_id(resp.headers());
    (request_id, rate_limit, resp.status().as_u16())
}

/// Drives a [`StreamDecoder`] over an HTTP response body. Stops reading (and so releases the
/// connection) at the terminal event; dropping the stream drops the response, which closes
/// the connection.
fn body_stream<D: StreamDecoder>(resp: reqwest::Response, decoder: D) -> ChatStream {
    ChatStream::from_unpin(BodyStream {
        body: resp.bytes_stream().boxed(),
        decoder,
        queue: VecDeque::with_capacity(1),
        error: None,
        ended: false,
    })
}

/// The stream behind [`body_stream`]. Written as a plain `poll_next` (not an `unfold`), so
/// its state stays in place instead of being moved in and out for every chunk.
struct BodyStream<D> {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: D,
    queue: VecDeque<ChatChunk>,
    error: Option<Error>,
    ended: bool,
}

impl<D: StreamDecoder> futures::Stream for BodyStream<D> {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let st = self.get_mut();
        loop {
            if let Some(chunk) = st.queue.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            if let Some(e) = st.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if st.ended {
                return Poll::Ready(None);
            }
            // Buffered events first, one at a time: the queue holds one event's chunks. A
            // malformed event leaves the stream readable (the consumer decides whether to go
            // on); anything else ends it.
            if let Err(e) = st.decoder.decode_some(&mut st.queue) {
                st.ended = st.decoder.is_done();
                st.error = Some(e);
                continue;
            }
            if !st.queue.is_empty() {
                continue;
            }
            if st.decoder.is_done() {
                st.ended = true;
                continue;
            }
            let step = match st.body.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => {
                    st.decoder.buffer(&bytes);
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    let cause = crate::http::transport_error(e);
                    Err(st.decoder.interrupted(cause))
                }
                Poll::Ready(None) => st.decoder.finish_into(&mut st.queue),
            };
            // Chunks decoded before the error go out first, then the error.
            st.ended = true;
            if let Err(e) = step {
                st.error = Some(e);
            }
        }
    }
}
