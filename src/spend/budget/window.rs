//! What the ledger and a window say to each other: the cap a reservation is checked
//! against, what the window answers (a refusal, or a warning it raised), and what a budget
//! knows of the other replicas of a fleet.

use std::sync::atomic::AtomicU64;

/// A budget's limit and warning threshold, in its window's counting units.
#[derive(Clone, Copy)]
pub(super) struct Cap {
    pub(super) limit: u64,
    pub(super) warn: Option<u64>,
}

/// A warning a reservation raised, taken back if a later budget refuses the request:
/// (budget, the warning mark before, the mark set, the amount used).
pub(super) type Warned = (usize, u64, u64, u64);

/// Why a window refused a reservation.
pub(super) struct Refused {
    /// Settled and reserved in the window.
    pub(super) used: u64,
    /// When enough of it leaves the window (nanoseconds since the epoch).
    pub(super) resets_at: u64,
    /// The first refusal in the window: it sends the exhaustion event.
    pub(super) first: bool,
}

/// What a budget knows of the other replicas: their spend in a window, and which window
/// (a calendar window's number + 1, or the clock's nanoseconds + 1 when a rolling total was
/// read; 0: nothing known, the common case without a store, read first).
#[derive(Debug, Default)]
pub(super) struct FleetShare {
    pub(super) stamp: AtomicU64,
    pub(super) others: AtomicU64,
}
