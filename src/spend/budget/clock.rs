//! The budgets' clock: UTC wall-clock time that moves with tokio's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// UTC wall-clock time that moves with tokio's clock (so a paused clock moves budgets too):
/// a base time plus the tokio time elapsed since.
pub(super) struct Clock {
    base_ns: u64,
    start: Instant,
}

impl Clock {
    pub(super) fn new(base: SystemTime) -> Self {
        let base_ns = base
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            base_ns,
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub(super) fn now(&self) -> u64 {
        self.at(Instant::now())
    }

    /// Nanoseconds since the Unix epoch at tokio instant `t`.
    pub(super) fn at(&self, t: Instant) -> u64 {
        let elapsed = t.saturating_duration_since(self.start).as_nanos();
        self.base_ns
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

pub(super) fn system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or(UNIX_EPOCH)
}
