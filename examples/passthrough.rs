//! The gateway benchmark's two helpers (`bench/gateway/run.py` starts them), on the
//! gateway's own HTTP stack: hyper's HTTP/1 connection builder in an accept loop,
//! `TCP_NODELAY` on every accepted socket, an axum router, reqwest outbound.
//!
//! - `passthrough --upstream URL [--listen ADDR]`: **the floor.** A byte-passthrough
//!   proxy: it reads the request body, posts the bytes untouched to `URL` + the request's
//!   path with reqwest, and streams the answer's bytes back as they come, with its status
//!   and content type. No JSON, no routing, no failover: the least any gateway built on
//!   axum + hyper + reqwest can cost.
//! - `passthrough --upstream-mode [--listen ADDR]`: **an upstream that answers at once.**
//!   `POST …/chat/completions` answers a fixed OpenAI chat completion, or with
//!   `"stream": true` in the body an SSE stream of 4 content tokens, a finish event with
//!   usage and `[DONE]`. A body naming a model that contains `always-503` gets a 503
//!   OpenAI error (a primary that is always down); one whose model contains `hold-open`
//!   gets its stream's first token and then nothing more until the client closes (for
//!   counting memory per open stream). `GET /count` answers the number of chat
//!   completion requests served so far (upstream calls per request).
//!
//! `--workers N` sets the tokio runtime's worker threads (default: tokio's, one per
//! core). The address listened on (default `127.0.0.1:0`) is printed on stdout as
//! `listening on http://ADDR`.
//!
//! ```text
//! cargo run --release --features gateway --example passthrough -- --upstream-mode
//! cargo run --release --features gateway --example passthrough -- --upstream http://127.0.0.1:PORT
//! ```

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

const USAGE: &str =
    "usage: passthrough (--upstream URL | --upstream-mode) [--listen ADDR] [--workers N]";

/// The largest request body the floor forwards (the gateway's default is 4 MiB too).
const MAX_BODY: usize = 4 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut upstream, mut upstream_mode, mut listen, mut workers) =
        (None, false, "127.0.0.1:0".to_owned(), None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--upstream" => upstream = args.next(),
            "--upstream-mode" => upstream_mode = true,
            "--listen" => listen = args.next().ok_or(USAGE)?,
            "--workers" => workers = Some(args.next().ok_or(USAGE)?.parse::<usize>()?),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let app = match (upstream, upstream_mode) {
        (None, true) => upstream_app(),
        (Some(url), false) => floor_app(url.trim_end_matches('/').to_owned())?,
        _ => return Err(USAGE.into()),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(serve(listen, app))
}

/// The gateway's accept loop without its bounds: one task per connection, `TCP_NODELAY`.
async fn serve(listen: String, app: Router) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on http://{}", listener.local_addr()?)?;
    out.flush()?;
    let service = TowerToHyperService::new(app);
    let http = hyper::server::conn::http1::Builder::new();
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("passthrough: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(tcp), service.clone());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

// ---- the floor ----

struct Floor {
    client: reqwest::Client,
    upstream: String,
}

fn floor_app(upstream: String) -> Result<Router, reqwest::Error> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .build()?;
    let floor = Arc::new(Floor { client, upstream });
    Ok(Router::new().fallback(forward).with_state(floor))
}

async fn forward(State(floor): State<Arc<Floor>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut outbound = floor
        .client
        .post(format!("{}{}", floor.upstream, parts.uri.path()))
        .body(bytes);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        outbound = outbound.header(header::CONTENT_TYPE, ct);
    }
    match outbound.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(ct) = answer.headers().get(header::CONTENT_TYPE) {
                response = response.header(header::CONTENT_TYPE, ct);
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

// ---- the upstream ----

const PLAIN: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}}"#;

const EVENTS: [&str; 6] = [
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" from\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" upstream\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":4,\"total_tokens\":12}}\n\n",
    "data: [DONE]\n\n",
];

const DOWN: &str =
    r#"{"error":{"message":"the primary is down","type":"server_error","code":"unavailable"}}"#;

fn upstream_app() -> Router {
    let served = Arc::new(AtomicU64::new(0));
    Router::new()
        .route("/count", get(count))
        .route("/chat/completions", post(answer))
        .route("/v1/chat/completions", post(answer))
        .with_state(served)
}

async fn count(State(served): State<Arc<AtomicU64>>) -> String {
    served.load(Ordering::Relaxed).to_string()
}

async fn answer(State(served): State<Arc<AtomicU64>>, body: Bytes) -> Response {
    served.fetch_add(1, Ordering::Relaxed);
    let has = |needle: &str| memchr::memmem::find(&body, needle.as_bytes()).is_some();
    if has("always-503") {
        let mut down = (StatusCode::SERVICE_UNAVAILABLE, DOWN).into_response();
        let json = HeaderValue::from_static("application/json");
        down.headers_mut().insert(header::CONTENT_TYPE, json);
        return down;
    }
    if !(has("\"stream\":true") || has("\"stream\": true")) {
        let json = HeaderValue::from_static("application/json");
        return ([(header::CONTENT_TYPE, json)], PLAIN).into_response();
    }
    let events = if has("hold-open") {
        // The first token, then silence until the client goes away.
        futures::stream::iter(EVENTS[..1].iter().map(to_frame))
            .chain(futures::stream::pending())
            .boxed()
    } else {
        futures::stream::iter(EVENTS.iter().map(to_frame)).boxed()
    };
    let sse = HeaderValue::from_static("text/event-stream");
    ([(header::CONTENT_TYPE, sse)], Body::from_stream(events)).into_response()
}

fn to_frame(event: &&'static str) -> Result<Bytes, Infallible> {
    Ok(Bytes::from_static(event.as_bytes()))
}
