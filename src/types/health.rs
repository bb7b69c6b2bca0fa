//! A circuit breaker's state: shared by the relay's health, the observers and the metrics.

/// The state of a target's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Requests go through.
    Closed,
    /// Skipped while another target can serve.
    Open,
    /// The cooldown is over: one probe at a time may go through.
    HalfOpen,
}
