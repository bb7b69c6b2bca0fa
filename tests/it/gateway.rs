//! The gateway over real HTTP, with a real OpenAI client library (async-openai) in front of
//! it and the vendor simulator behind it.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::CreateChatCompletionRequest;
use futures::StreamExt;
use polyrelay::gateway::{self, GatewayOptions};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{BreakerPolicy, Chain, Relay, RetryPolicy};
use serde_json::{Value, json};

pub(crate) const KEY: &str = "gw-test-key";

/// A gateway on loopback in front of `relay`; dropping it shuts the gateway down.
pub(crate) struct Gateway {
    pub(crate) url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) async fn gateway(relay: Relay, options: GatewayOptions) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(listener, relay, options, async move {
        let _ = stopped.await;
    }));
    Gateway { url, _stop: stop }
}

/// A relay on the simulator: route `support` = primary, then backup.
fn relay(sim: &Simulator) -> Relay {
    let url = format!("{}/v1", sim.base_url());
    Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(&url))
        .route(
            "support",
            Chain::of(["sim/primary", "sim/backup"]).retry(RetryPolicy::no_retries()),
        )
        .route(
            "solo",
            Chain::of(["sim/solo"]).retry(RetryPolicy::no_retries()),
        )
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap()
}

fn client(gw: &Gateway, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", gw.url))
            .with_api_key(key),
    )
}

fn request(model: &str, stream: bool) -> CreateChatCompletionRequest {
    let mut body = json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Where is my order?" }],
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
    }
    serde_json::from_value(body).unwrap()
}

/// A raw `POST /v1/chat/completions` with the test key, to look at the wire.
async fn post(base: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A user message, for raw bodies.
fn hi() -> Value {
    json!([{ "role": "user", "content": "hi" }])
}

/// A raw `GET` of a gateway path, as JSON.
pub(crate) async fn get_json(base: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A plain completion of `model` through the OpenAI client: its text and served model.
async fn complete(gw: &Gateway, model: &str) -> (String, String) {
    let resp = client(gw, KEY)
        .chat()
        .create(request(model, false))
        .await
        .unwrap();
    let text = resp.choices[0].message.content.clone().unwrap_or_default();
    (text, resp.model)
}

/// The error code the OpenAI client reports for a completion of `model` with `key`.
async fn api_error_code(gw: &Gateway, key: &str, model: &str) -> String {
    let err = client(gw, key)
        .chat()
        .create(request(model, false))
        .await
        .unwrap_err();
    let OpenAIError::ApiError(api) = err else {
        panic!("{err:?}")
    };
    api.api_error.code.unwrap_or_default()
}

async fn setup() -> (Simulator, Gateway) {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), GatewayOptions::new().client_key(KEY)).await;
    (sim, gw)
}

#[tokio::test]
async fn a_plain_completion_through_an_openai_client() {
    let (sim, gw) = setup().await;
    sim.script("primary", [Reply::openai_text("Your order ships today.")]);
    let (text, model) = complete(&gw, "support").await;
    assert_eq!(text, "Your order ships today.");
    assert_eq!(model, "primary");
    // The body's own fields reached the vendor, the gateway's did not.
    let sent = &sim.requests_for("primary")[0];
    assert_eq!(sent.body["messages"][0]["content"], "Where is my order?");
}

#[tokio::test]
async fn a_streamed_completion_with_usage_in_the_last_chunk() {
    let (sim, gw) = setup().await;
    sim.script(
        "primary",
        [Reply::openai_stream_text(&["Your ", "order ", "ships."])],
    );
    let mut stream = client(&gw, KEY)
        .chat()
        .create_stream(request("support", true))
        .await
        .unwrap();
    let (mut text, mut usage, mut models) = (String::new(), None, Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        models.push(chunk.model.clone());
        for c in &chunk.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    assert_eq!(text, "Your order ships.");
    assert!(models.iter().all(|m| m == "primary"), "{models:?}");
    assert!(usage.is_some_and(|u| u.total_tokens > 0));
}

#[tokio::test]
async fn a_failing_primary_fails_over_invisibly() {
    let (sim, gw) = setup().await;
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "overloaded")],
    );
    sim.script("backup", [Reply::openai_text("From the backup.")]);
    assert_eq!(
        complete(&gw, "support").await,
        ("From the backup.".to_owned(), "backup".to_owned())
    );
}

#[tokio::test]
async fn a_stream_cut_after_its_start_ends_in_an_error_event_without_done() {
    let (sim, gw) = setup().await;
    sim.script(
        "solo",
        [Reply::openai_stream_text(&["Your ", "order ", "ships ", "today."]).cut_after(2)],
    );
    // A raw look at the wire: content, then the error event, and no [DONE].
    let body = post(
        &gw.url,
        &json!({ "model": "solo", "stream": true, "messages": hi() }),
    )
    .await;
    assert_eq!(body.status(), 200);
    let text = body.text().await.unwrap();
    assert!(text.contains("Your "), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    // The in-band error is in OpenAI's error shape, `param` included.
    let event: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.contains("\"error\""))
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let error = event["error"].as_object().cloned().unwrap_or_default();
    assert!(
        ["message", "type", "param", "code"]
            .iter()
            .all(|k| error.contains_key(*k)),
        "{event}"
    );
    // And the OpenAI client sees an error, not a clean end.
    sim.script(
        "solo",
        [Reply::openai_stream_text(&["Your ", "order ", "ships ", "today."]).cut_after(2)],
    );
    let mut stream = client(&gw, KEY)
        .chat()
        .create_stream(request("solo", true))
        .await
        .unwrap();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        if item.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a truncated answer must not end cleanly");
}

#[tokio::test]
async fn a_client_that_disconnects_closes_the_vendor_connection() {
    let (sim, gw) = setup().await;
    sim.script(
        "solo",
        [Reply::openai_stream_text(&["a", "b", "c", "d", "e", "f"])
            .frame_delay(Duration::from_millis(200))],
    );
    let mut stream = client(&gw, KEY)
        .chat()
        .create_stream(request("solo", true))
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    let vendor = sim.requests_for("solo").remove(0);
    tokio::time::timeout(Duration::from_secs(30), vendor.closed())
        .await
        .expect("the vendor connection closes when the client goes away");
    // Counted as cancelled, not as a success (the stream is accounted before its vendor
    // connection closes).
    let stats = get_json(&gw.url, "/stats").await;
    let row = stats["total"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["model"] == "solo"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (row["cancelled"].as_u64(), row["successes"].as_u64()),
        (Some(1), Some(0)),
        "{stats}"
    );
}

#[tokio::test]
async fn a_bad_body_is_a_400_in_openais_shape() {
    let (_sim, gw) = setup().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"model\": \"support\", \"messages\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a chat completion")
    );
}

#[tokio::test]
async fn an_unknown_model_is_a_404() {
    let (_sim, gw) = setup().await;
    assert_eq!(
        api_error_code(&gw, KEY, "no-such-route").await,
        "model_not_found"
    );
    let status = post(
        &gw.url,
        &json!({ "model": "no-such-route", "messages": hi() }),
    )
    .await
    .status();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_wrong_key_is_a_401() {
    let (sim, gw) = setup().await;
    assert_eq!(
        api_error_code(&gw, "not-the-key", "support").await,
        "invalid_api_key"
    );
    assert!(sim.requests().is_empty(), "nothing was sent to a vendor");
}

#[tokio::test]
async fn rate_limited_everywhere_is_a_429_with_retry_after() {
    let (sim, gw) = setup().await;
    let limited = || {
        Reply::openai_error(429, "rate_limit_exceeded", None, "slow down")
            .header("retry-after", "7")
    };
    sim.script("primary", [limited()]);
    sim.script("backup", [limited()]);
    let resp = post(&gw.url, &json!({ "model": "support", "messages": hi() })).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("slow down"),
        "{body}"
    );
}

#[tokio::test]
async fn request_fallbacks_from_the_body() {
    // `sim/rescue` is in no route: a gateway serves it only when told to.
    let sim = Simulator::start().await.unwrap();
    let options = GatewayOptions::new().client_key(KEY).allow_any_target(true);
    let gw = gateway(relay(&sim), options).await;
    sim.script(
        "solo",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    sim.script("rescue", [Reply::openai_text("rescued")]);
    for field in ["models", "fallbacks"] {
        sim.script(
            "solo",
            [Reply::openai_error(500, "server_error", None, "boom")],
        );
        sim.script("rescue", [Reply::openai_text("rescued")]);
        let body = json!({ "model": "solo", field: ["sim/rescue"], "messages": hi() });
        let resp: Value = post(&gw.url, &body).await.json().await.unwrap();
        assert_eq!(resp["model"], "rescue", "{field}: {resp}");
    }
    // The field never reached a vendor.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.body.get("fallbacks").is_none() && r.body.get("models").is_none())
    );
}

#[tokio::test]
async fn models_health_and_stats() {
    let (sim, gw) = setup().await;
    sim.set_default(Reply::openai_text("ok"));
    let c = client(&gw, KEY);
    c.chat().create(request("support", false)).await.unwrap();
    let list = c.models().list().await.unwrap();
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    for id in ["support", "solo", "sim/primary", "sim/backup"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let health = get_json(&gw.url, "/health").await;
    assert!(
        health["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["target"] == "sim/primary")
    );
    let stats = get_json(&gw.url, "/stats").await;
    assert!(stats.to_string().contains("primary"), "{stats}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), GatewayOptions::new().max_body_bytes(1024)).await;
    let big = "x".repeat(4096);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({ "model": "support", "messages": [{ "role": "user", "content": big }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "solo",
        [Reply::openai_stream_text(&["a", "b", "c"]).frame_delay(Duration::from_millis(100))],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::serve(
        listener,
        relay(&sim),
        GatewayOptions::new().shutdown_grace(Duration::from_secs(30)),
        async move {
            let _ = stopped.await;
        },
    ));
    let resp = post(
        &url,
        &json!({ "model": "solo", "stream": true, "messages": hi() }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    stop.send(()).unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops once the stream is done")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_stream_continued_on_another_target_is_seamless_to_the_client() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_stream_text(&["Grüße ", "aus ", "Berlin"]).cut_after(2)],
    );
    sim.script("continuer", [Reply::openai_stream_text(&["Köln!"])]);
    let url = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(&url))
        .route(
            "support",
            Chain::new()
                .target("sim/primary")
                .target(polyrelay::Target::new("sim", "continuer").prefill(true))
                .retry(RetryPolicy::no_retries())
                .mid_stream_recovery(polyrelay::MidStreamRecovery::ContinueOnly),
        )
        .build()
        .unwrap();
    let gw = gateway(relay, GatewayOptions::new()).await;
    let mut stream = client(&gw, "any")
        .chat()
        .create_stream(request("support", true))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for c in &chunk.expect("no error reaches the client").choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
    }
    // The continuation asked the second target to go on from the delivered text, and the
    // client reads one answer: what was delivered, then the continuation.
    let sent = &sim.requests_for("continuer")[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    let delivered = last["content"].as_str().unwrap();
    assert!(delivered.starts_with("Grüße"), "{delivered:?}");
    assert_eq!(text, format!("{delivered}Köln!"));
}

/// The binary itself: `polyrelay-gateway --config FILE`, a request, then SIGTERM.
#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_a_config_file_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("from the binary"));
    let dir = std::env::temp_dir().join(format!("polyrelay-gw-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{}/v1\"\n\n[routes.support]\n\
             targets = [\"sim/m\"]\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
             client_keys_env = [\"POLYRELAY_GW_TEST_KEY\"]\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_polyrelay-gateway"))
        .arg("--config")
        .arg(&path)
        .env("POLYRELAY_GW_TEST_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("polyrelay-gateway: listening on http://") {
                return rest.trim().to_owned();
            }
        }
        panic!("the gateway exited before listening")
    })
    .await
    .expect("the gateway says where it listens");
    let gw = Gateway {
        url: format!("http://{addr}"),
        _stop: tokio::sync::oneshot::channel().0,
    };
    assert_eq!(complete(&gw, "support").await.0, "from the binary");
    let pid = child.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the gateway stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn client_keys_never_show_in_debug_output() {
    let options = GatewayOptions::new().client_key(KEY);
    assert!(!format!("{options:?}").contains(KEY), "{options:?}");
}

#[tokio::test]
async fn upstream_failures_map_to_502_503_and_504() {
    let sim = Simulator::start().await.unwrap();
    let url = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(&url))
        .route("r", Chain::of(["sim/m"]).retry(RetryPolicy::no_retries()))
        .route(
            "slow",
            Chain::new()
                .target(
                    polyrelay::Target::new("sim", "slow")
                        .attempt_timeout(Duration::from_millis(200)),
                )
                .retry(RetryPolicy::no_retries()),
        )
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    let gw = gateway(relay, GatewayOptions::new()).await;
    for (reply, status, code) in [
        (
            Reply::openai_error(500, "server_error", None, "internal boom"),
            502,
            "server_error",
        ),
        (
            Reply::openai_error(503, "server_error", None, "engine overloaded"),
            503,
            "overloaded",
        ),
    ] {
        sim.script("m", [reply]);
        let resp = post(&gw.url, &json!({ "model": "r", "messages": hi() })).await;
        assert_eq!(resp.status(), status);
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("boom") || message.contains("overloaded"),
            "{body}"
        );
        // The code says what happened, and the message reads cleanly.
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(!message.contains(".."), "{message}");
    }
    sim.script("slow", [Reply::hang()]);
    let resp = post(&gw.url, &json!({ "model": "slow", "messages": hi() })).await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout", "{body}");
}

#[tokio::test]
async fn a_spent_budget_is_a_429_with_when_it_resets() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let url = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(&url))
        .route("support", Chain::of(["sim/primary"]))
        .budget(
            polyrelay::Budget::tokens("tiny", 1).per(polyrelay::spend::budget::BudgetPeriod::Hour),
        )
        .build()
        .unwrap();
    let gw = gateway(relay, GatewayOptions::default()).await;
    let resp = post(&gw.url, &json!({ "model": "support", "messages": hi() })).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert!(sim.requests().is_empty());
}

/// `TCP_NODELAY` of the socket the gateway accepted for the connection whose client end is
/// `client` (both ends live in this process: found among its file descriptors).
#[cfg(target_os = "linux")]
fn accepted_socket_nodelay(server: std::net::SocketAddr, client: std::net::SocketAddr) -> bool {
    use std::mem::{size_of, zeroed};
    fn addr_of(sa: &libc::sockaddr_in) -> std::net::SocketAddr {
        let ip = std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
        std::net::SocketAddr::from((ip, u16::from_be(sa.sin_port)))
    }
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: getsockname/getpeername/getsockopt only write into the buffers given, and
        // fail harmlessly on a descriptor that is not an IPv4 socket.
        unsafe {
            let (mut local, mut peer): (libc::sockaddr_in, libc::sockaddr_in) =
                (zeroed(), zeroed());
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getsockname(fd, (&raw mut local).cast(), &mut len) != 0
                || local.sin_family != libc::AF_INET as libc::sa_family_t
            {
                continue;
            }
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getpeername(fd, (&raw mut peer).cast(), &mut len) != 0 {
                continue;
            }
            if addr_of(&local) != server || addr_of(&peer) != client {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            let rc = libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw mut on).cast(),
                &mut len,
            );
            assert_eq!(rc, 0, "getsockopt(TCP_NODELAY)");
            return on != 0;
        }
    }
    panic!("no accepted socket for {client} on {server}")
}

/// Opens a connection to the gateway, has one request answered on it (so the gateway has
/// accepted it), and reads `TCP_NODELAY` on the gateway's end.
#[cfg(target_os = "linux")]
async fn gateway_end_nodelay(options: GatewayOptions) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), options).await;
    let server: std::net::SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    let mut conn = tokio::net::TcpStream::connect(server).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head: once the gateway has answered, it has accepted the socket (kept open:
    // HTTP/1.1 keeps the connection alive).
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "the gateway closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    accepted_socket_nodelay(server, conn.local_addr().unwrap())
}

/// Without `TCP_NODELAY`, every SSE event after the first waits for the client's delayed
/// ACK: a streamed answer stalls tens of milliseconds per event.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn accepted_connections_set_tcp_nodelay_by_default() {
    assert!(gateway_end_nodelay(GatewayOptions::new()).await);
    assert!(!gateway_end_nodelay(GatewayOptions::new().tcp_nodelay(false)).await);
}

/// OpenAI's exact wire: every streamed chunk says `"object": "chat.completion.chunk"`, and a
/// plain answer `"chat.completion"` (chunks built by the relay used to say `""`).
#[tokio::test]
async fn chunks_and_answers_name_their_object() {
    let (sim, gw) = setup().await;
    sim.set_default(Reply::openai_text("Your order ships today."));
    let body = json!({ "model": "support", "messages": hi(), "stream": true });
    let text = post(&gw.url, &body).await.text().await.unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(!chunks.is_empty(), "{text}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
    }
    let body = json!({ "model": "support", "messages": hi() });
    let answer: Value = post(&gw.url, &body).await.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");
}
