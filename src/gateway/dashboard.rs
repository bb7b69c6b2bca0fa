//! `GET /dashboard`: a live page of what the relay does, part of
//! [`router`](super::router) (so a Rust service that nests or merges the gateway's axum
//! router serves it too, at the same prefix as `/stats`).
//!
//! The page is one self-contained HTML file (inline CSS and JavaScript, no external URL,
//! under 30 KB) built into the binary. It is static and holds no secret, so it is served
//! without a key; the browser asks for a client key (kept in `sessionStorage`, for the tab
//! only) and sends it as `Authorization: Bearer` to the JSON endpoints it polls every 2 s:
//! `stats`, `limits` and `health`, by relative URL. Over the stats' rolling window (one
//! hour by default) or since start, it shows the cost per model per query type, what
//! routing saved against the baseline, requests, errors, latency and the breaker of each
//! target (a target's rows summed over routes and query types: p50 is their medians
//! weighted by samples, p95 the largest of theirs), failovers by route and target with
//! their reasons, refusals, budgets used, rate-limit headroom and pool keys.
//!
//! The cost by hour (`#hours-table`, rows carrying `data-hour`, the hour's start in Unix
//! seconds) is the stats' last 24 UTC hours ([`StatsSnapshot::hours`]), newest first, each
//! with its cost, calls, failed attempts and baseline cost and a bar scaled to the dearest
//! hour; the hour picked (the newest, until one is tapped) is broken down by route, query
//! type and target in `#hour-detail`. The latest failovers (`#failover-events`, items
//! carrying `data-at` in Unix milliseconds, `data-route`, `data-from`, `data-to` (empty
//! when nothing was left), `data-reason`, `data-status`, `data-tries`) are the relay's own
//! log ([`StatsSnapshot::failovers`], the latest 50), so the page shows those from before it
//! was opened too.
//!
//! [`StatsSnapshot::hours`]: crate::accounting::StatsSnapshot::hours
//! [`StatsSnapshot::failovers`]: crate::accounting::StatsSnapshot::failovers
//!
//! Every number sits in an element with a stable `id` (summary cards: `total-cost`,
//! `baseline-cost`, `saved` with `data-usd`; `requests`, `failovers`, `errors`, `refused`
//! with `data-value`) or in a table cell carrying `data-field` and its raw `data-value`, in
//! rows carrying `data-route`, `data-target`, `data-budget`, `data-limiter`… so a browser
//! test can read them (tests/it/gateway_dashboard_browser.rs does, in Chromium). `requests`
//! counts calls once each (a call that failed over is in two stats rows); money is summed
//! in nano-dollars as the relay sums it, so the cards carry what `/stats` adds up to; the
//! poll's state is `#status[data-state]` (`ok`, `error`, or `key` while it waits for one).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Gateway;

/// The page, built into the binary.
pub(super) const PAGE: &str = include_str!("dashboard.html");

/// The page's `<body>` tag, which says whether the JSON endpoints want a client key.
const BODY: &str = "<body>";

/// `GET /dashboard`: the page, `text/html`, not cached (a new build may serve a new page).
/// Its `<body>` carries `data-key="required"` when the gateway has client keys, so the page
/// asks for one before it polls instead of drawing a `401` (which browsers log as a console
/// error) on a first visit.
pub(super) async fn page(State(gw): State<Arc<Gateway>>) -> Response {
    let mut resp = if gw.options.keys.is_empty() {
        PAGE.into_response()
    } else {
        PAGE.replacen(BODY, "<body data-key=\"required\">", 1)
            .into_response()
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The page loads nothing from elsewhere and is framed by nobody.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
