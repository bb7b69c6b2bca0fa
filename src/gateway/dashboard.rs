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
//! Failovers are counts from the stats rows (`failovers_out`, and `errors` by kind for the
//! reasons). The list of the latest failovers (`#failover-events`, items carrying
//! `data-route`, `data-from`, `data-to`, `data-count`, `data-reasons`) is what the page sees
//! change between two polls of the since-start rows, so it holds what happened while the
//! page was open, to within a poll: the relay keeps no event log, and a gateway cannot add
//! an observer to a relay already built.
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
