//! `cargo run --example reload` — hot reload of a configuration file.
//!
//! Watches a configuration file (with the `notify` crate) and reloads the relay on every
//! change: a valid file is swapped in atomically (breaker state and stats are kept), an
//! invalid one is refused with its line and key while the old table keeps serving.
//!
//! Without arguments it runs a short demonstration on the built-in simulator: it writes a
//! file, serves a request, edits the file twice (a new fallback target, then a typo) and
//! shows what the relay did. `cargo run --example reload -- relay.toml` watches your own
//! file until Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{ChatRequest, Relay};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = std::env::args().nth(1) {
        let path = PathBuf::from(path);
        let relay = Relay::from_config_file(&path)?;
        println!("serving {:?}; watching {}", relay.routes(), path.display());
        let mut changes = watch(&path)?;
        while changes.rx.recv().await.is_some() {
            settle(&mut changes.rx).await;
            reload(&relay, &path);
        }
        return Ok(());
    }

    let sim = Simulator::start().await?;
    sim.script(
        "llama-3.3-70b",
        [Reply::openai_error(
            503,
            "server_error",
            None,
            "GPU node rebooting",
        )],
    );
    sim.set_default(Reply::openai_text("Your order ships today."));
    let dir = std::env::temp_dir().join(format!("polyrelay-reload-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("relay.toml");
    let providers = format!(
        "[providers.gpu]\nkind = \"vllm\"\nbase_url = \"{}/v1\"\n\n",
        sim.base_url()
    );
    let one_target = format!(
        "{providers}[routes.support]\ntargets = [\"gpu/llama-3.3-70b\"]\nretry = {{ max_attempts = 1 }}\n"
    );
    std::fs::write(&path, &one_target)?;
    let relay = Relay::from_config_file(&path)?;
    println!("1. relay built from {}", path.display());
    ask(&relay).await;

    let mut changes = watch(&path)?;
    println!("\n2. editing the file: a fallback target for the route");
    std::fs::write(
        &path,
        format!(
            "{providers}[routes.support]\ntargets = [\"gpu/llama-3.3-70b\", \"gpu/qwen3-32b\"]\nretry = {{ max_attempts = 1 }}\n"
        ),
    )?;
    next_change(&mut changes).await;
    reload(&relay, &path);
    ask(&relay).await;

    println!("\n3. editing the file again, with a typo");
    std::fs::write(
        &path,
        format!("{providers}[routes.support]\ntargetz = [\"gpu/qwen3-32b\"]\n"),
    )?;
    next_change(&mut changes).await;
    reload(&relay, &path);
    ask(&relay).await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// File events for `path`, and the watcher that sends them (dropping it stops them).
struct Changes {
    rx: mpsc::UnboundedReceiver<()>,
    _watcher: notify::RecommendedWatcher,
}

/// Watches `path`'s directory (editors often replace a file rather than write it) for
/// events about `path`.
fn watch(path: &Path) -> notify::Result<Changes> {
    let (tx, rx) = mpsc::unbounded_channel();
    let name = path.file_name().map(|n| n.to_owned());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_modify() || event.kind.is_create())
            && event.paths.iter().any(|p| p.file_name() == name.as_deref())
        {
            let _ = tx.send(());
        }
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(Changes {
        rx,
        _watcher: watcher,
    })
}

/// Waits for the next change (at most 10 s), then for the writes to settle.
async fn next_change(changes: &mut Changes) {
    if tokio::time::timeout(Duration::from_secs(10), changes.rx.recv())
        .await
        .is_err()
    {
        println!("   (no file event within 10 s: reloading anyway)");
    }
    settle(&mut changes.rx).await;
}

/// Swallows the burst of events one save makes.
async fn settle(rx: &mut mpsc::UnboundedReceiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(150), rx.recv()).await {}
}

fn reload(relay: &Relay, path: &Path) {
    match relay.reload_config_file(path) {
        Ok(()) => println!(
            "   reloaded: routes {:?}",
            relay
                .describe()
                .routes
                .iter()
                .map(|r| {
                    let targets: Vec<String> = r
                        .targets
                        .iter()
                        .map(|t| format!("{}/{}", t.provider, t.model))
                        .collect();
                    format!("{} → {}", r.name, targets.join(", "))
                })
                .collect::<Vec<_>>()
        ),
        Err(e) => println!("   rejected, the old table keeps serving: {e}"),
    }
}

async fn ask(relay: &Relay) {
    match relay
        .chat(ChatRequest::new("support").user("Where is my order?"))
        .await
    {
        Ok(resp) => {
            let failed: Vec<String> = resp
                .meta
                .attempts
                .iter()
                .filter(|a| !a.served())
                .map(|a| format!("{} {}", a.target, a.outcome))
                .collect();
            println!(
                "   answered {:?} by {}{}",
                resp.text(),
                resp.meta
                    .served_by
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" (after: {})", failed.join("; "))
                }
            )
        }
        Err(e) => println!("   failed: {e}"),
    }
}
