//! What a charge holds of its strict budgets' reservations at the fleet's store, and the
//! store as those budgets reach it: their end is queued for the relay's sync task (a settle
//! repeated after a timeout changes nothing at the store).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smallvec::SmallVec;

use crate::store::{StateStore, StrictItem, StrictSettle};

/// Strict reservations ended and not yet sent to the store, and the sync task's wake-up
/// (a settle goes out at once: until it does, the store counts the reservation).
#[derive(Clone, Debug, Default)]
pub(crate) struct StrictQueue {
    pub settles: Arc<Mutex<Vec<StrictSettle>>>,
    pub wake: Arc<tokio::sync::Notify>,
}

/// A charge's reservations held at the store: settled there when the charge is.
#[derive(Debug)]
pub(crate) struct StrictTicket {
    reservation: String,
    queue: StrictQueue,
    /// (budget index, budget name, window) of each item reserved.
    items: SmallVec<[(usize, String, u64); 1]>,
}

impl StrictTicket {
    /// A ticket for `items` reserved under `reservation`, settled through `queue`.
    pub fn new(reservation: String, queue: StrictQueue, items: &[(usize, StrictItem)]) -> Self {
        StrictTicket {
            reservation,
            queue,
            items: items
                .iter()
                .map(|(i, item)| (*i, item.budget.clone(), item.window))
                .collect(),
        }
    }

    /// Queues the end of budget `budget`'s reservation with `spent` (raw units).
    pub(crate) fn settle(&self, budget: usize, spent: u64) {
        let Some((_, name, window)) = self.items.iter().find(|(i, _, _)| *i == budget) else {
            return;
        };
        self.queue
            .settles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(StrictSettle {
                budget: name.clone(),
                window: *window,
                reservation: self.reservation.clone(),
                spent,
            });
        self.queue.wake.notify_one();
    }

    /// Gives every reservation back (the call was not sent).
    pub fn release(&self) {
        for (i, _, _) in &self.items {
            self.settle(*i, 0);
        }
    }
}

/// The fleet's store as strict budgets use it on a request's path, set on the budgets by
/// the relay's sync task.
pub(crate) struct StrictGate {
    pub store: Arc<dyn StateStore>,
    pub namespace: String,
    pub timeout: Duration,
    pub queue: StrictQueue,
    /// Whether the store answered the last exchange (while it fails, strict budgets admit
    /// as non-strict ones, without a round trip that would only time out).
    pub up: Arc<AtomicBool>,
}

impl std::fmt::Debug for StrictGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrictGate")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}
