#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod accounting;
/// The model catalog: what a model costs, how much it can read and write, and what it can do.
pub mod catalog;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "gateway")]
#[cfg_attr(docsrs, doc(cfg(feature = "gateway")))]
pub mod gateway;
pub mod http;
pub mod provider;
pub mod providers;
pub mod relay;
pub mod routing;
mod secret;
#[cfg(feature = "simulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulator")))]
pub mod simulator;
pub mod spend;
pub mod store;
pub mod telemetry;
pub(crate) mod time;
pub mod types;

pub use accounting::{CallRecord, Observer, StatsRow, StatsSnapshot};
pub use catalog::{Capabilities, Catalog, ModelInfo, PriceTier};
pub use provider::{CallContext, Provider};
pub use relay::{
    BreakerPolicy, Chain, ContextOverflow, Hedge, MAX_ATTEMPTS_PER_CALL, MAX_REQUEST_FALLBACKS,
    MidStreamRecovery, Price, Relay, RelayBuilder, RetryBudget, RetryPolicy, ScopedChain, Strategy,
    Target, TargetHealth, TargetOrder,
};
pub use relay::{BudgetLimits, KeyLimits, KeyPoolLimits, LimitsSnapshot, NamedLimiter};
/// The HTTP client crate the providers use, re-exported so a tuned client
/// ([`http::default_client_builder`]) needs no dependency of its own.
pub use reqwest;
pub use secret::ApiKey;
pub use spend::budget::Budget;
pub use spend::keys::KeyPool;
pub use spend::limiter::RateLimit;
pub use types::*;
