//! The gateway under hostile and careless clients (trust at the boundary): slow heads and
//! bodies, too many connections and requests, names and fallbacks the operator did not
//! configure, and the binary's reload on SIGHUP and start-up errors. Over real loopback TCP
//! with the vendor simulator behind.

use std::time::Duration;

use polyrelay::gateway::{self, GatewayOptions};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{BreakerPolicy, Chain, Relay, RetryPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: only a broken gateway takes this long.
const CAP: Duration = Duration::from_secs(30);

/// A gateway on loopback in front of `relay`; dropping it shuts the gateway down.
struct Gateway {
    url: String,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn gateway(relay: Relay, options: GatewayOptions) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(listener, relay, options, async move {
        let _ = stopped.await;
    }));
    Gateway {
        url: format!("http://{addr}"),
        addr,
        _stop: stop,
    }
}

/// A relay on the simulator: routes `support` (sim/primary), `spare` (sim/spare) and
/// `solo` (sim/solo), no retries, no breaker.
fn relay(sim: &Simulator) -> Relay {
    let url = format!("{}/v1", sim.base_url());
    let mut b = Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(&url))
        .breaker(BreakerPolicy::disabled());
    for (route, target) in [
        ("support", "sim/primary"),
        ("spare", "sim/spare"),
        ("solo", "sim/solo"),
    ] {
        b = b.route(route, Chain::of([target]).retry(RetryPolicy::no_retries()));
    }
    b.build().unwrap()
}

fn hi() -> Value {
    json!([{ "role": "user", "content": "hi" }])
}

/// A raw `POST /v1/chat/completions` to `base`.
async fn post(base: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `POST` of `model` with a user message: the status and the JSON body.
async fn ask(base: &str, model: &str) -> (u16, Value) {
    let resp = post(base, &json!({ "model": model, "messages": hi() })).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Reads until the peer closes (EOF or reset), within [`CAP`]; what was read.
async fn read_to_close(conn: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(CAP, async {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the gateway closes the connection");
    seen
}

/// Reads a response head, within [`CAP`].
async fn read_head(conn: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(CAP, async {
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "closed before answering");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the gateway answers");
    String::from_utf8_lossy(&seen).into_owned()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

/// Slowloris: connections that never finish their head, idle or sending a byte at a time,
/// are closed once the header timeout passes; the gateway keeps serving others.
#[tokio::test]
async fn slow_heads_are_closed_after_the_header_timeout() {
    let sim = Simulator::start().await.unwrap();
    let options = GatewayOptions::new().header_read_timeout(Duration::from_millis(200));
    let gw = gateway(relay(&sim), options).await;
    let mut closed = tokio::task::JoinSet::new();
    for i in 0..20 {
        let conn = TcpStream::connect(gw.addr).await.unwrap();
        let (mut read, mut write) = conn.into_split();
        if i % 2 == 1 {
            // Dribbles its head a byte at a time, forever if let.
            tokio::spawn(async move {
                if write
                    .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nx-slow: ")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                while write.write_all(b"a").await.is_ok() {
                    tick.tick().await;
                }
            });
        } else {
            // Opens and sends nothing.
            tokio::spawn(async move {
                let _keep = write;
                std::future::pending::<()>().await;
            });
        }
        closed.spawn(async move { read_to_close(&mut read).await });
    }
    while let Some(seen) = closed.join_next().await {
        let seen = seen.unwrap();
        // Closed without an answer, or with hyper's 408.
        assert!(
            seen.is_empty() || seen.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&seen)
        );
    }
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(HEALTH).await.unwrap();
    assert!(read_head(&mut conn).await.starts_with("HTTP/1.1 200"));
}

/// A body announced and never sent gets 408 after the body timeout.
#[tokio::test]
async fn a_body_that_never_arrives_is_a_408() {
    let sim = Simulator::start().await.unwrap();
    let options = GatewayOptions::new().body_read_timeout(Duration::from_millis(200));
    let gw = gateway(relay(&sim), options).await;
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\n\r\n{\"model\": ",
    )
    .await
    .unwrap();
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(sim.requests().is_empty());
}

/// Past the concurrency limit a completion is shed at once, 503 with `Retry-After`, in
/// OpenAI's error shape, and never reaches a vendor; `/health` still answers; once the
/// requests holding the limit end, completions are served again.
#[tokio::test]
async fn over_the_concurrency_limit_is_a_503_with_retry_after() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::hang(), Reply::hang(), Reply::openai_text("served")],
    );
    let gw = gateway(
        relay(&sim),
        GatewayOptions::new().max_concurrent_requests(2),
    )
    .await;
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let url = gw.url.clone();
            tokio::spawn(async move { ask(&url, "support").await })
        })
        .collect();
    tokio::time::timeout(CAP, sim.wait_for_requests(2))
        .await
        .expect("both requests reach the vendor");
    let resp = tokio::time::timeout(
        CAP,
        post(&gw.url, &json!({ "model": "support", "messages": hi() })),
    )
    .await
    .expect("the request over the limit is answered at once, not queued");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(sim.requests().len(), 2);
    let health = reqwest::get(format!("{}/health", gw.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    // The holders give up: their vendor connections close, and the limit is free again.
    for h in &holders {
        h.abort();
    }
    for r in sim.requests() {
        tokio::time::timeout(CAP, r.closed())
            .await
            .expect("the vendor connection closes");
    }
    let (status, body) = ask(&gw.url, "support").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "served");
}

/// Past the connection cap the gateway accepts no more: a new connection waits in the
/// backlog, unanswered, until an open one closes.
#[tokio::test]
async fn past_the_connection_cap_a_connection_waits_for_a_free_slot() {
    let sim = Simulator::start().await.unwrap();
    let options = GatewayOptions::new()
        .max_connections(2)
        .header_read_timeout(Duration::from_secs(120));
    let gw = gateway(relay(&sim), options).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(gw.addr).await.unwrap();
        conn.write_all(HEALTH).await.unwrap();
        assert!(read_head(&mut conn).await.starts_with("HTTP/1.1 200"));
        open.push(conn); // kept alive
    }
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    // A negative check: nothing may come while both slots are taken (a window, not a wait).
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered past the connection cap: {early:?}"
    );
    drop(open.pop());
    assert!(read_head(&mut third).await.starts_with("HTTP/1.1 200"));
}

/// By default only configured routes, routers and route targets are served: another
/// `provider/model` of a registered provider is a 404 that reaches no vendor, unless the
/// gateway allows any target; a huge name is never echoed back whole.
#[tokio::test]
async fn an_unconfigured_target_is_refused_unless_allowed() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("anything"));
    let strict = gateway(relay(&sim), GatewayOptions::new()).await;
    let (status, body) = ask(&strict.url, "sim/elsewhere").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sim/elsewhere"),
        "{body}"
    );
    // A configured route's target is served by its name.
    assert_eq!(ask(&strict.url, "sim/primary").await.0, 200);
    // An unconfigured fallback is refused too.
    let resp = post(
        &strict.url,
        &json!({ "model": "support", "fallbacks": ["sim/elsewhere"], "messages": hi() }),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(sim.requests_for("elsewhere").len(), 0);

    let huge = format!("sim/{}", "x".repeat(1 << 20));
    let resp = post(&strict.url, &json!({ "model": huge, "messages": hi() })).await;
    assert_eq!(resp.status(), 404);
    let text = resp.text().await.unwrap();
    assert!(text.len() < 2048, "{} bytes echoed", text.len());

    let open = gateway(relay(&sim), GatewayOptions::new().allow_any_target(true)).await;
    let (status, body) = ask(&open.url, "sim/elsewhere").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.requests_for("elsewhere").len(), 1);
    // Even then, a huge name is refused short.
    let resp = post(&open.url, &json!({ "model": huge, "messages": hi() })).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().len() < 2048);
}

/// A body that is not a request is refused without quoting a huge string of it whole.
#[tokio::test]
async fn a_parse_error_does_not_echo_the_body() {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), GatewayOptions::new()).await;
    let resp = post(
        &gw.url,
        &json!({ "model": "support", "messages": "y".repeat(1 << 20) }),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.len() < 2048, "{} bytes echoed", text.len());
}

/// 5,000 request-scoped fallbacks are refused before any vendor call (they were 5,001
/// calls); duplicates count once, and a fallback named thrice is tried once.
#[tokio::test]
async fn fallbacks_from_the_body_are_deduplicated_and_capped() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_error(500, "server_error", None, "boom"));
    let gw = gateway(relay(&sim), GatewayOptions::new().allow_any_target(true)).await;
    let many: Vec<String> = (0..5000).map(|i| format!("sim/m{i}")).collect();
    let resp = post(
        &gw.url,
        &json!({ "model": "solo", "fallbacks": many, "messages": hi() }),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_fallbacks", "{body}");
    assert!(
        sim.requests().is_empty(),
        "{} vendor calls",
        sim.requests().len()
    );

    // Within the cap once deduplicated: the primary, then `spare` once.
    let resp = post(
        &gw.url,
        &json!({ "model": "solo", "models": ["spare", "spare", "solo"],
                 "fallbacks": ["spare"], "messages": hi() }),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert_eq!(sim.requests_for("solo").len(), 1);
    assert_eq!(sim.requests_for("spare").len(), 1);

    // Nine distinct fallbacks, over the default cap of 8.
    let nine: Vec<String> = (0..9).map(|i| format!("sim/n{i}")).collect();
    let resp = post(
        &gw.url,
        &json!({ "model": "solo", "fallbacks": nine, "messages": hi() }),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(sim.requests().len(), 2);
}

#[cfg(unix)]
mod binary {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader, Lines};
    use tokio::process::{Child, ChildStderr, Command};

    /// A scratch directory for one test's config file.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("polyrelay-trust-gw-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("gateway.toml")
    }

    fn provider(sim: &Simulator) -> String {
        format!(
            "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{}/v1\"\n\n",
            sim.base_url()
        )
    }

    fn spawn(path: &std::path::Path) -> (Child, Lines<BufReader<ChildStderr>>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_polyrelay-gateway"))
            .arg("--config")
            .arg(path)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        (child, lines)
    }

    /// Reads stderr until a line containing `needle`; that line.
    async fn line_with(lines: &mut Lines<BufReader<ChildStderr>>, needle: &str) -> String {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("the gateway exited before logging {needle:?}")
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in the gateway's log"))
    }

    fn hangup(child: &Child) {
        let pid = child.id().unwrap() as i32;
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }

    /// SIGHUP reloads the file: a request in flight completes, a new route is served; a
    /// broken file is refused with the reason logged and the previous routes keep serving.
    #[tokio::test]
    async fn sighup_reloads_the_file_and_keeps_requests_in_flight() {
        let sim = Simulator::start().await.unwrap();
        sim.set_default(Reply::openai_text("fine"));
        sim.script(
            "slow",
            [Reply::openai_text("finished").delay(Duration::from_secs(2))],
        );
        let path = scratch("sighup");
        let base = format!(
            "{}[routes.support]\ntargets = [\"sim/m\"]\n\n[routes.slow]\ntargets = [\"sim/slow\"]\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\n\n",
            provider(&sim)
        );
        std::fs::write(&path, &base).unwrap();
        let (child, mut lines) = spawn(&path);
        let listening = line_with(&mut lines, "listening on http://").await;
        let url = listening
            .split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(ask(&url, "fresh").await.0, 404);

        let in_flight = tokio::spawn({
            let url = url.clone();
            async move { ask(&url, "slow").await }
        });
        tokio::time::timeout(CAP, sim.wait_for_requests(1))
            .await
            .expect("the slow request reaches the vendor");
        std::fs::write(
            &path,
            format!("{base}[routes.fresh]\ntargets = [\"sim/fresh\"]\n"),
        )
        .unwrap();
        hangup(&child);
        line_with(&mut lines, "configuration reloaded").await;
        let (status, body) = ask(&url, "fresh").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], "finished");

        // A broken file: refused, logged with its place, the table kept.
        std::fs::write(
            &path,
            format!("{base}[routes.fresh]\ntargets = [\"nowhere/x\"]\n"),
        )
        .unwrap();
        hangup(&child);
        let refused = line_with(&mut lines, "not reloaded").await;
        assert!(refused.contains("ERROR"), "{refused}");
        assert!(refused.contains("nowhere"), "{refused}");
        assert_eq!(ask(&url, "fresh").await.0, 200);
        assert_eq!(ask(&url, "support").await.0, 200);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    /// A `listen` that is no address: the error names the file, its line and the key.
    #[tokio::test]
    async fn a_bad_listen_address_names_the_file_line_and_key() {
        let sim = Simulator::start().await.unwrap();
        let path = scratch("listen");
        let text = format!(
            "{}[routes.support]\ntargets = [\"sim/m\"]\n\n[gateway]\nlisten = \"nonsense\"\n",
            provider(&sim)
        );
        let line = text.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
        std::fs::write(&path, &text).unwrap();
        let (mut child, mut lines) = spawn(&path);
        let expected = format!(
            "{}:{line}: [gateway] listen: \"nonsense\" is not a socket address (host:port)",
            path.display()
        );
        let said = line_with(&mut lines, "nonsense").await;
        assert!(said.contains(&expected), "{said}");
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!status.success());
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
