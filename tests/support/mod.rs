//! Test support: the loopback vendor simulator (shipped in the crate behind the `simulator`
//! feature, so examples and users' tests can use it too) and helpers around it.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use futures::StreamExt;
use polyrelay::providers::OpenAi;
pub use polyrelay::simulator::{RecordedRequest, Reply, Simulator};
use polyrelay::{Chain, ChatChunk, ChatStream, Error, Relay};

/// An OpenAI-compatible provider pointed at the simulator.
pub fn openai_at(sim: &Simulator, key: &str) -> OpenAi {
    OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), key)
}

/// A relay with one provider `sim` (the simulator) and one route `r` over `chain`.
pub fn relay(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", chain)
        .build()
        .expect("valid relay")
}

/// A two-target chain on the simulator: `primary` then `fallback`.
pub fn primary_fallback() -> Chain {
    Chain::new()
        .target("sim/primary")
        .target("sim/fallback")
        .total_timeout(Duration::from_secs(10))
}

/// Runs `fut` under a generous guard so a broken test fails instead of hanging.
pub async fn guarded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

/// Reads a stream to its end, leaving it in place (its meta stays readable): the chunks, and
/// the error it ended with.
pub async fn drain(s: &mut ChatStream) -> (Vec<ChatChunk>, Option<Error>) {
    let mut chunks = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

/// The text of the chunks, joined.
pub fn joined(chunks: &[ChatChunk]) -> String {
    chunks.iter().filter_map(|c| c.text()).collect()
}
