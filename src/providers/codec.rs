//! What a vendor's bytes mean: the [`Codec`] trait, one implementation per wire format, and
//! the [`StreamDecoder`] a codec reads its streams with.
//!
//! A codec is pure: it builds a call's URL, encodes a request, decodes an answer, an error
//! and a stream's bytes, and never sends anything itself. [`HttpProvider`] does the sending
//! for every codec — the headers, the body bounds, the error classification, the rate-limit
//! headers, key pools and streaming — so a new vendor is one codec (see
//! `examples/custom_vendor.rs`).
//!
//! [`HttpProvider`]: super::HttpProvider

use std::collections::VecDeque;
use std::future::Future;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};

use super::{ChunkDecoder, EventHandler};
use crate::secret::ApiKey;
use crate::types::{ChatChunk, ChatRequest, ChatResponse, ChatStream, Error};

/// A vendor's wire format: how a call is addressed, and what its bytes mean.
///
/// [`HttpProvider<C>`](super::HttpProvider) drives a codec for every call:
///
/// 1. [`url`](Self::url) for the model (and whether the call streams), and
///    [`encode`](Self::encode) for the body;
/// 2. the provider's headers: `content-type: application/json`, the key where
///    [`credential`](Self::credential) puts it, and the caller's own headers;
/// 3. [`sign`](Self::sign) on the finished request (by default nothing: the place for a
///    signature over the exact bytes sent, or a token fetched for the call);
/// 4. on a non-2xx status, [`decode_error`](Self::decode_error) of the status, headers and
///    (bounded) body; on success, [`decode`](Self::decode) of the whole (bounded) body, or
///    for a stream, [`stream_decoder`](Self::stream_decoder) fed the body as it arrives — or
///    [`decode_stream_json`](Self::decode_stream_json) when the server answered JSON instead.
///
/// Methods that may put text from the vendor in an [`Error`] get a [`Redactor`] for the
/// provider's key: a vendor that echoes the key back must not leak it.
///
/// Generic, not `dyn`: the provider is monomorphized over its codec, so a codec costs no
/// dynamic dispatch on the request path.
pub trait Codec: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The decoder a streamed answer's body goes through (bytes in, chunks out). The framing
    /// is the codec's choice: [`ChunkDecoder`] over an [`EventHandler`] reads server-sent
    /// events; another decoder can read any other framing.
    type Decoder: StreamDecoder;

    /// The vendor family, used in telemetry as `gen_ai.provider.name` (e.g. `"openai"`).
    fn name(&self) -> &str;

    /// Checks the codec's own configuration (a base URL that parses…); the provider's
    /// [`validate`](crate::Provider::validate) reports it. Every call reports it too, from
    /// [`url`](Self::url). The default accepts everything.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The header the key goes in ([`KeyHeader`]); `None` when the key does not go in a
    /// header (a key in the URL, a signature). The provider puts the key there at
    /// construction and for every key of a key pool, replacing that header — even one of
    /// the same name the caller set by hand. An empty key sends no such header.
    fn credential(&self) -> Option<KeyHeader>;

    /// Tells the codec the key calls are made with, at construction and for every key of a
    /// key pool: for codecs that put the key somewhere else than a header (the URL). The
    /// default does nothing.
    fn set_key(&mut self, key: &ApiKey) {
        let _ = key;
    }

    /// The URL a call for `model` goes to (`stream`: whether the call streams). A
    /// configuration that cannot make one (a base URL refused at construction, a model name
    /// that would change the URL) is an [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    fn url(&self, model: &str, stream: bool) -> Result<Url, Error>;

    /// The request body for `model` (`stream`: whether the call streams).
    fn encode(&self, req: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, Error>;

    /// The answer in a successful (2xx) body. A body with nothing in it, or the vendor's error
    /// object, is an error, not an empty answer.
    fn decode(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatResponse, Error>;

    /// The typed error of a failed call: HTTP status, response headers, and the body (read up
    /// to a bound; empty when it could not be read).
    fn decode_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        key: &Redactor<'_>,
    ) -> Error;

    /// A fresh decoder for one streamed answer.
    fn stream_decoder(&self, key: &Redactor<'_>) -> Self::Decoder;

    /// The stream a server sent as one JSON body (`content-type` naming JSON) although the
    /// call asked for a stream. The default decodes it with [`decode`](Self::decode) and
    /// serves the whole answer as chunks.
    fn decode_stream_json(&self, body: &[u8], key: &Redactor<'_>) -> Result<ChatStream, Error> {
        self.decode(body, key).map(stream_of)
    }

    /// The last step before the request is sent, with the request as it will go out (URL,
    /// headers, body): add a per-call header, sign the exact bytes with credentials the
    /// codec holds, attach a token fetched for the call (`http` is the relay's client, for
    /// a token endpoint). An error here is the call's error, and nothing is sent. The
    /// default does nothing.
    fn sign(
        &self,
        request: &mut reqwest::Request,
        http: &reqwest::Client,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (request, http);
        std::future::ready(Ok(()))
    }

    /// Whether a failed answer (status, headers, bounded body) is one the codec can cure by
    /// signing again: a signature refused for clock skew, an access token that expired.
    /// The codec updates what it holds here (the clock offset, the cached token); the
    /// provider then builds, [`sign`](Self::sign)s and sends the request once more — once
    /// per call, however the second answer ends. The default says no.
    fn should_resend(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
        let _ = (status, headers, body);
        false
    }
}

/// Where a codec's key goes: header `name`, as `{prefix}{key}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHeader {
    name: HeaderName,
    prefix: &'static str,
}

impl KeyHeader {
    /// The key in header `name` as it is (no prefix).
    pub fn new(name: HeaderName) -> Self {
        KeyHeader { name, prefix: "" }
    }

    /// The key in header `name` after `prefix` (e.g. `"Token "`).
    pub fn with_prefix(name: HeaderName, prefix: &'static str) -> Self {
        KeyHeader { name, prefix }
    }

    /// `Authorization: Bearer {key}`.
    pub fn bearer() -> Self {
        KeyHeader::with_prefix(AUTHORIZATION, "Bearer ")
    }

    /// The header's name and its value for `key` (empty for an empty key: no header).
    pub(crate) fn for_key(&self, key: &ApiKey) -> (HeaderName, String) {
        let value = if key.is_empty() {
            String::new()
        } else {
            format!("{}{}", self.prefix, key.expose())
        };
        (self.name.clone(), value)
    }
}

/// What a codec may do with the provider's key: take it out of text it puts in an error
/// (a vendor that echoes a key back). The key itself stays out of the codec's reach.
#[derive(Clone, Copy, Debug)]
pub struct Redactor<'a> {
    key: &'a ApiKey,
}

impl<'a> Redactor<'a> {
    pub(crate) fn new(key: &'a ApiKey) -> Self {
        Redactor { key }
    }

    /// `text` with the key replaced by `[REDACTED]` (unchanged for an empty key).
    pub fn redact(&self, text: &str) -> String {
        self.key.redact(text)
    }

    /// The key, for the crate's own codecs (their stream handlers redact as they go).
    pub(crate) fn key(&self) -> &'a ApiKey {
        self.key
    }
}

/// A stream of the chunks a whole answer would have streamed.
pub fn stream_of(resp: ChatResponse) -> ChatStream {
    ChatStream::new(futures::stream::iter(
        crate::types::response_to_chunks(resp).into_iter().map(Ok),
    ))
}

/// Bytes of a streamed answer in, chunks out, whatever the framing: the decoder
/// [`HttpProvider`](super::HttpProvider) feeds a stream's body through. [`ChunkDecoder`]
/// implements it for server-sent events.
///
/// The provider hands over bytes as they arrive ([`buffer`](Self::buffer)), then asks for
/// chunks one event at a time ([`decode_some`](Self::decode_some)) until
/// [`is_done`](Self::is_done), and calls [`finish_into`](Self::finish_into) when the body
/// ends.
pub trait StreamDecoder: Send + Unpin + 'static {
    /// Buffers bytes read from the network, without decoding them.
    fn buffer(&mut self, bytes: &[u8]);

    /// Decodes buffered bytes until one event yields chunks (appended to `out`) or none is
    /// left. An [`ErrorKind::Decode`](crate::ErrorKind::Decode) error (one malformed event)
    /// leaves the decoder usable; any other error ends the stream.
    fn decode_some(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error>;

    /// Whether the vendor's terminal event has been seen (nothing more is read after it).
    fn is_done(&self) -> bool;

    /// The body ended: appends any last chunks, or reports an answer without its end.
    fn finish_into(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error>;

    /// The error for a transport failure mid-body (`cause`), saying how much was delivered.
    fn interrupted(&self, cause: Error) -> Error;
}

impl<H: EventHandler + Unpin> StreamDecoder for ChunkDecoder<H> {
    fn buffer(&mut self, bytes: &[u8]) {
        ChunkDecoder::buffer(self, bytes);
    }

    fn decode_some(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        ChunkDecoder::decode_some(self, out)
    }

    fn is_done(&self) -> bool {
        ChunkDecoder::is_done(self)
    }

    fn finish_into(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        ChunkDecoder::finish_into(self, out)
    }

    fn interrupted(&self, cause: Error) -> Error {
        ChunkDecoder::interrupted(self, cause)
    }
}
