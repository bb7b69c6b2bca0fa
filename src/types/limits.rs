//! What the vendors' rate-limit headers said and why a budget refused: data the HTTP layer,
//! errors, responses and the spend layer all share, so it lives at the bottom.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a vendor's rate-limit headers said about the key's remaining allowance
/// (`x-ratelimit-*` from OpenAI and most compatible vendors, `anthropic-ratelimit-*` from
/// Anthropic). Every field is `None` when the vendor did not send it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RateLimitInfo {
    /// Requests allowed per window.
    pub limit_requests: Option<u64>,
    /// Requests left in the current window.
    pub remaining_requests: Option<u64>,
    /// Time until the request allowance is full again.
    pub reset_requests: Option<Duration>,
    /// Tokens allowed per window.
    pub limit_tokens: Option<u64>,
    /// Tokens left in the current window (for Anthropic, the least of its tokens, input and
    /// output allowances).
    pub remaining_tokens: Option<u64>,
    /// Time until the token allowance is full again.
    pub reset_tokens: Option<Duration>,
}

impl RateLimitInfo {
    /// Whether the vendor sent none of the headers.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitInfo::default()
    }
}

/// What a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BudgetUnit {
    /// US dollars, from the catalog's prices.
    Usd,
    /// Tokens (input and output).
    Tokens,
}

/// Why a request was refused by a budget ([`Error::budget`](super::Error::budget)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BudgetExceeded {
    /// The budget's name.
    pub budget: String,
    /// What the budget counts.
    pub unit: BudgetUnit,
    /// Spent (and reserved by requests in flight) in the current window.
    pub spent: f64,
    /// The limit.
    pub limit: f64,
    /// What this request was estimated to add.
    pub estimate: f64,
    /// When the window resets (UTC), so the request may be sent again.
    pub resets_at: SystemTime,
}
