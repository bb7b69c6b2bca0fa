//! Anthropic Messages API (being written).

/// The Anthropic provider (being written).
#[derive(Debug)]
pub struct Anthropic;
