//! `cargo run --example prometheus --features metrics,simulator [-- --serve]`
//!
//! The relay's metrics (feature `metrics`) in Prometheus: installs
//! `metrics-exporter-prometheus` with a scrape endpoint on `127.0.0.1:$PORT` (default 9000),
//! sends a few dozen requests through a relay on the built-in vendor simulator, where
//! "OpenAI" fails now and then (so retries, failovers and a circuit breaker opening show),
//! then prints the scrape URL and what a scrape returns. With `--serve` it keeps serving the
//! endpoint until Ctrl-C; without, it exits.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::telemetry::metric;
use polyrelay::{BreakerPolicy, Chain, ChatRequest, Relay, RetryPolicy, Target};

const REQUESTS: usize = 36;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().skip(1).any(|a| a == "--serve");
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p:?}: {e}"))?,
        Err(_) => 9000,
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    // The exporter first, so the recorder is in place before the relay records anything.
    // Explicit buckets turn the histograms into Prometheus histograms (summaries otherwise);
    // recommended naming adds `_total` to counters and `_seconds` to durations.
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .with_recommended_naming(true)
        .set_buckets_for_metric(
            Matcher::Full(metric::TOKEN_USAGE.into()),
            &metric::TOKEN_USAGE_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metric::OPERATION_DURATION.into()),
            &metric::DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metric::TIME_TO_FIRST_CHUNK.into()),
            &metric::DURATION_BUCKETS,
        )?
        .build()
        .map_err(|e| format!("the scrape endpoint on {addr} (set PORT to change it): {e}"))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            eprintln!("the scrape endpoint stopped: {e:?}");
        }
    });

    let sim = Simulator::start().await?;
    script(&sim);
    let url = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .provider("openai", OpenAi::new("sk-simulated").base_url(&url))
        .provider("deepseek", OpenAi::deepseek("sk-simulated").base_url(&url))
        // A model with no price in the catalog: its calls count in `relay_cost_unknown`.
        .provider("local", OpenAi::compatible("local", &url, "sk-simulated"))
        // OpenAI's breaker opens after 3 failures in a row (5 by default).
        .breaker_for(
            "openai/gpt-4o-mini",
            BreakerPolicy::default().consecutive_failures(3),
        )
        .route(
            "support",
            Chain::new()
                .target("openai/gpt-4o-mini")
                .target("deepseek/deepseek-chat")
                .retry(
                    RetryPolicy::default()
                        .max_attempts(2)
                        .backoff(Duration::from_millis(5), Duration::from_millis(20)),
                )
                .total_timeout(Duration::from_secs(10)),
        )
        .route(
            "local",
            Chain::new().target(Target::new("local", "llama-3.1-8b-local")),
        )
        .build()?;

    let (mut answered, mut failed) = (0, 0);
    for i in 0..REQUESTS {
        let route = if i % 6 == 5 { "local" } else { "support" };
        let intent = if i % 2 == 0 { "billing" } else { "shipping" };
        let req = ChatRequest::new(route)
            .user(format!("Question #{i}: where is my order?"))
            .intent(intent);
        let ok = if i % 4 == 3 {
            match relay.chat_stream(&req).await {
                Ok(mut stream) => {
                    let mut ok = true;
                    while let Some(chunk) = stream.next().await {
                        ok &= chunk.is_ok();
                    }
                    ok
                }
                Err(_) => false,
            }
        } else {
            relay.chat(&req).await.is_ok()
        };
        if ok {
            answered += 1;
        } else {
            failed += 1;
        }
    }
    println!("{REQUESTS} requests: {answered} answered, {failed} failed.");
    for h in relay.health() {
        println!("breaker of {}: {:?}", h.target, h.state);
    }

    let scrape_url = format!("http://{addr}/metrics");
    let scraped = polyrelay::reqwest::get(&scrape_url).await?.text().await?;
    println!(
        "\nScrape URL: {scrape_url} (it answered {} bytes)\n",
        scraped.len()
    );
    println!("{}", handle.render());

    if serve {
        println!("Serving {scrape_url} until Ctrl-C.");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// What the simulator answers, attempt by attempt (the last reply repeats).
fn script(sim: &Simulator) {
    let ok = |ms: u64| {
        Reply::text("Your order left the warehouse this morning.").delay(Duration::from_millis(ms))
    };
    let mut openai = Vec::new();
    // A first stretch of answers, one retried after a 500.
    openai.extend((0..6).map(|i| ok(20 + 7 * i)));
    openai.push(Reply::error(SimError::Server));
    openai.extend((0..6).map(|i| ok(30 + 5 * i)));
    // Two 503s in a row: the retry fails too, and the call fails over to DeepSeek.
    openai.push(Reply::error(SimError::Overloaded));
    openai.push(Reply::error(SimError::Overloaded));
    openai.extend((0..6).map(|i| ok(25 + 9 * i)));
    // Then an outage: the breaker opens at the third failure and OpenAI is skipped.
    openai.extend((0..4).map(|_| Reply::error(SimError::Server)));
    openai.push(ok(20));
    sim.script("gpt-4o-mini", openai);
    sim.script(
        "deepseek-chat",
        [Reply::text("DeepSeek here: your order ships today.").delay(Duration::from_millis(60))],
    );
    sim.script(
        "llama-3.1-8b-local",
        [Reply::text("A local model's answer.").delay(Duration::from_millis(10))],
    );
}
