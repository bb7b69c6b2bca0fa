//! One client connection: raw HTTP/1.1 request parsing and reply writing.
//!
//! Nothing here may panic on client input: every malformed or hostile byte sequence ends in
//! an error response and/or closing the connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::reply::{End, Plan, PlanBody, PlanKind, Response};
use super::{ClosedSignal, Shared};

/// Largest request head accepted (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 128;
/// How many bytes of a pipelined next request are buffered while a reply is being sent.
const PIPELINE_CAP: usize = MAX_HEAD + MAX_BODY;
/// How long a rejected client gets to read the error before the connection is dropped.
const REJECT_LINGER: Duration = Duration::from_secs(1);

/// A request read off the wire, not yet recorded.
pub(crate) struct Incoming {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: serde_json::Value,
    pub(crate) raw_body: Bytes,
}

enum ReadOutcome {
    Request {
        incoming: Incoming,
        keep_alive: bool,
    },
    /// The connection ended (cleanly between requests, or mid-request) or must be dropped.
    Gone,
    /// Answer with this status and close.
    Reject(u16),
}

/// What the connection does once a reply has been written.
enum After {
    KeepAlive,
    Close,
    Reset,
}

/// Serves one connection until it ends, then marks its requests closed.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let (closed_tx, closed) = ClosedSignal::new();
    serve_requests(&shared, stream, &closed).await;
    // The stream has been dropped (closed or reset) by now.
    closed_tx.send_replace(true);
}

async fn serve_requests(shared: &Shared, mut stream: TcpStream, closed: &ClosedSignal) {
    // Frames must go out as they are written.
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let (incoming, keep_alive) = match read_request(&mut stream, &mut buf).await {
            ReadOutcome::Request {
                incoming,
                keep_alive,
            } => (incoming, keep_alive),
            ReadOutcome::Gone => return,
            ReadOutcome::Reject(status) => {
                reject(stream, status).await;
                return;
            }
        };
        let (request, reply) = shared.record(incoming, closed.clone());
        tracing::debug!(
            seq = request.seq,
            method = %request.method,
            path = %request.path,
            model = ?request.model,
            "simulator request"
        );
        let plan = reply.plan(&request);
        let seq = request.seq;
        drop(request);

        let outcome = {
            let (mut rd, mut wr) = stream.split();
            let work = send(&mut wr, plan, seq, !keep_alive);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    biased;
                    done = &mut work => break Some(done),
                    // Watch the socket while the reply is under way: EOF or an error means the
                    // client has gone; bytes are the next (pipelined) request, kept for later.
                    read = read_some(&mut rd, &mut buf), if buf.len() < PIPELINE_CAP => match read {
                        Ok(0) | Err(_) => break None,
                        Ok(_) => {}
                    },
                }
            }
        };
        match outcome {
            None => {
                tracing::debug!(
                    seq,
                    "simulator client closed the connection during the reply"
                );
                return;
            }
            Some(Err(error)) => {
                tracing::debug!(seq, %error, "simulator could not write the reply");
                return;
            }
            Some(Ok(After::KeepAlive)) if keep_alive => {}
            Some(Ok(After::KeepAlive | After::Close)) => {
                let _ = stream.shutdown().await;
                return;
            }
            Some(Ok(After::Reset)) => {
                // SO_LINGER 0 makes the drop below send RST instead of FIN.
                let _ = stream.set_zero_linger();
                return;
            }
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(8 * 1024);
    rd.read_buf(buf).await
}

/// Reads one request (head and Content-Length body) from `stream`, using and keeping any
/// bytes already buffered in `buf`.
async fn read_request(stream: &mut TcpStream, buf: &mut BytesMut) -> ReadOutcome {
    let mut head = None;
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    if head_len > MAX_HEAD {
                        return ReadOutcome::Reject(413);
                    }
                    let method = request.method.unwrap_or_default().to_owned();
                    let path = request.path.unwrap_or_default().to_owned();
                    let version = request.version.unwrap_or(1);
                    let headers: Vec<(String, String)> = request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    head = Some((head_len, method, path, version, headers));
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return ReadOutcome::Reject(413);
                }
                Ok(httparse::Status::Partial) => {}
                Err(error) => {
                    tracing::debug!(%error, "simulator got an unparsable request head");
                    return ReadOutcome::Reject(400);
                }
            }
        }
        if head.is_some() {
            break;
        }
        match read_some(stream, buf).await {
            Ok(0) | Err(_) => return ReadOutcome::Gone,
            Ok(_) => {}
        }
    }
    let Some((head_len, method, path, version, headers)) = head else {
        return ReadOutcome::Gone;
    };

    let header_values = |name: &'static str| header_values(&headers, name);
    if header_values("transfer-encoding").next().is_some() {
        // Only Content-Length framing is supported.
        tracing::debug!("simulator got a request with Transfer-Encoding; closing");
        return ReadOutcome::Gone;
    }
    let mut content_length: Option<usize> = None;
    for value in header_values("content-length") {
        let Ok(n) = value.parse::<usize>() else {
            return ReadOutcome::Reject(400);
        };
        if content_length.is_some_and(|previous| previous != n) {
            return ReadOutcome::Reject(400);
        }
        content_length = Some(n);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return ReadOutcome::Reject(413);
    }
    let connection_tokens: Vec<String> = header_values("connection")
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let keep_alive = if version >= 1 {
        !connection_tokens.iter().any(|t| t == "close")
    } else {
        connection_tokens.iter().any(|t| t == "keep-alive")
    };
    let expects_continue = header_values("expect").any(|v| v.eq_ignore_ascii_case("100-continue"));

    let _ = buf.split_to(head_len);
    if buf.len() < content_length
        && expects_continue
        && stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return ReadOutcome::Gone;
    }
    while buf.len() < content_length {
        buf.reserve((content_length - buf.len()).min(1024 * 1024));
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return ReadOutcome::Gone,
            Ok(_) => {}
        }
    }
    let raw_body = buf.split_to(content_length).freeze();
    let body = serde_json::from_slice(&raw_body).unwrap_or(serde_json::Value::Null);
    ReadOutcome::Request {
        incoming: Incoming {
            method,
            path,
            headers,
            body,
            raw_body,
        },
        keep_alive,
    }
}

/// The trimmed values of every header called `name` (lower-case).
fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Answers `status` with a small JSON error, then closes after giving the client a moment to
/// read it (draining what it still sends, so the close is a FIN rather than a RST).
async fn reject(mut stream: TcpStream, status: u16) {
    let body = format!(
        r#"{{"error":{{"message":"polyrelay simulator: {}","type":"invalid_request_error","param":null,"code":null}}}}"#,
        reason(status)
    );
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\nx-request-id: req_sim_rejected\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    if stream.write_all(&out).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = vec![0u8; 16 * 1024];
        let mut drained = 0usize;
        while drained < MAX_BODY {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(REJECT_LINGER, drain).await;
}

/// Writes one planned reply (after its delay). Never returns for hangs and stalls.
async fn send<W: AsyncWrite + Unpin>(
    wr: &mut W,
    plan: Plan,
    seq: usize,
    client_closes: bool,
) -> io::Result<After> {
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let response = match plan.kind {
        PlanKind::Hang => std::future::pending().await,
        PlanKind::Reset => return Ok(After::Reset),
        PlanKind::Close => return Ok(After::Close),
        PlanKind::Respond(response) => response,
    };
    let Response {
        status,
        content_type,
        headers,
        body,
        frame_delay,
        close_delimited,
    } = response;
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\nx-request-id: req_sim_{seq}\r\n",
        reason(status)
    );
    match &body {
        _ if close_delimited => head.push_str("connection: close\r\n"),
        PlanBody::Fixed(pieces) => {
            let len: usize = pieces.iter().map(Bytes::len).sum();
            head.push_str(&format!("content-length: {len}\r\n"));
        }
        PlanBody::Sse { .. } => {
            head.push_str("transfer-encoding: chunked\r\ncache-control: no-cache\r\n")
        }
    }
    if client_closes && !close_delimited {
        head.push_str("connection: close\r\n");
    }
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");

    let end_of_body = |after_ok: After| {
        if close_delimited {
            After::Close
        } else {
            after_ok
        }
    };
    match body {
        PlanBody::Fixed(pieces) => {
            let mut out = head.into_bytes();
            let mut pieces = pieces.into_iter();
            // The head and the first piece go out in one write.
            if let Some(first) = pieces.next() {
                out.extend_from_slice(&first);
            }
            wr.write_all(&out).await?;
            for piece in pieces {
                if let Some(d) = frame_delay {
                    tokio::time::sleep(d).await;
                }
                wr.write_all(&piece).await?;
            }
            wr.flush().await?;
            Ok(end_of_body(After::KeepAlive))
        }
        PlanBody::Sse { chunks, end } => {
            wr.write_all(head.as_bytes()).await?;
            for (i, chunk) in chunks.iter().enumerate() {
                if i > 0
                    && let Some(d) = frame_delay
                {
                    tokio::time::sleep(d).await;
                }
                if close_delimited {
                    wr.write_all(chunk).await?;
                } else {
                    let mut out = Vec::with_capacity(chunk.len() + 16);
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    wr.write_all(&out).await?;
                }
            }
            wr.flush().await?;
            match end {
                End::Cut(_) | End::CutInside(_) => Ok(After::Reset),
                End::Stall(_) => std::future::pending().await,
                End::Normal if close_delimited => Ok(After::Close),
                End::Normal => {
                    wr.write_all(b"0\r\n\r\n").await?;
                    wr.flush().await?;
                    Ok(After::KeepAlive)
                }
            }
        }
    }
}

/// The reason phrase for a status code.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Unknown",
    }
}
