//! The integration tests, in one binary: each file is a module, so the crate and its
//! dev-dependencies are linked once instead of once per file (CI builds on two cores).
//! `cargo test --test it gateway::` runs one file's tests.

pub mod support;

mod accounting;
#[cfg(feature = "bedrock")]
mod bedrock;
#[cfg(feature = "bedrock")]
mod bedrock_auth;
mod catalog;
mod chains;
#[cfg(all(feature = "bedrock", feature = "vertex"))]
mod clouds;
mod config;
#[cfg(all(feature = "bedrock", feature = "vertex"))]
mod config_clouds;
mod constraints;
mod continuation_usage;
mod cross_vendor;
mod custom_codec;
mod engine;
mod fixtures_anthropic;
mod fixtures_gemini;
mod fixtures_openai;
mod fleet;
#[cfg(feature = "gateway")]
mod gateway;
#[cfg(feature = "gateway")]
mod gateway_dashboard;
#[cfg(all(feature = "gateway", feature = "language", feature = "sensitive"))]
mod gateway_dashboard_browser;
#[cfg(feature = "gateway")]
mod gateway_hints;
#[cfg(feature = "gateway")]
mod gateway_operator;
#[cfg(feature = "gateway")]
mod gateway_wire;
mod health;
mod limits;
mod metrics;
mod provider_urls;
#[cfg(feature = "gateway")]
mod refusals_gateway;
mod relay_scenarios;
mod relay_streaming;
mod reload;
mod robustness;
mod routing_classifier;
mod routing_language;
mod routing_llm;
mod routing_rules;
mod routing_sensitive;
mod secrets;
mod sim_clouds;
mod sim_rate_limit;
mod simulator;
mod soak;
mod spend;
mod stats_hours;
mod strategy;
mod stream_limits;
#[cfg(all(feature = "config", feature = "language", feature = "sensitive"))]
mod support_bot;
mod telemetry;
mod trust_config;
mod trust_decoders;
#[cfg(feature = "gateway")]
mod trust_gateway;
mod trust_relay;
mod types;
#[cfg(feature = "vertex")]
mod vertex;
