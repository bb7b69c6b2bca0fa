#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod http;
pub mod provider;
pub mod providers;
pub mod relay;
mod secret;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod types;

pub use error::{Error, ErrorKind};
pub use provider::{CallContext, Provider};
pub use relay::{
    Chain, ContextOverflow, MidStreamRecovery, Relay, RelayBuilder, RetryPolicy, StreamPolicy,
};
pub use secret::ApiKey;
pub use types::*;
