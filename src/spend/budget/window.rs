//! What the ledger and a window say to each other: the cap a reservation is checked
//! against, and what the window answers (a refusal, or a warning it raised).

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
