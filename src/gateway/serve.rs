//! The accept loop: a connection cap, hyper's header read timeout, `TCP_NODELAY`, and a
//! graceful shutdown with a grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{GatewayOptions, router};
use crate::Relay;

/// Serves the gateway on `listener` until `shutdown` completes, then gives requests and
/// streams in flight [`shutdown_grace`](GatewayOptions::shutdown_grace) to finish.
///
/// HTTP/1.1, with the bounds of `options`: at most
/// [`max_connections`](GatewayOptions::max_connections) connections open (more wait in the
/// accept backlog), a head within
/// [`header_read_timeout`](GatewayOptions::header_read_timeout) (else the connection is
/// closed), a body within [`body_read_timeout`](GatewayOptions::body_read_timeout) (else
/// 408), and at most [`max_concurrent_requests`](GatewayOptions::max_concurrent_requests)
/// completions at once (more: 503 with `Retry-After`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    relay: Relay,
    options: GatewayOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if options.is_open() {
        tracing::warn!(
            "polyrelay gateway: no client keys configured, anyone who reaches the port may call"
        );
    }
    let grace = options.shutdown_grace;
    let nodelay = options.tcp_nodelay;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let service = TowerToHyperService::new(router(relay, options));
    let (stopping, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The cap: no accept without a free slot, so extra connections wait in the backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        if nodelay && let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "polyrelay gateway: could not set TCP_NODELAY");
        }
        let conn = http
            .serve_connection(TokioIo::new(tcp), service.clone())
            .with_upgrades();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let _slot = permit;
            let mut conn = std::pin::pin!(conn);
            let done = tokio::select! {
                done = conn.as_mut() => done,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    // Finish the request in flight, take no other.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, "polyrelay gateway: connection ended");
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        connections = tasks.len(),
        "polyrelay gateway: shutting down"
    );
    let _ = stopping.send(true);
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("polyrelay gateway: grace period over, closing the connections left");
        tasks.shutdown().await;
    }
    Ok(())
}

/// After a failed accept: a connection's own error is skipped at once; anything else (out
/// of file descriptors, say) waits a little, so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "polyrelay gateway: accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
