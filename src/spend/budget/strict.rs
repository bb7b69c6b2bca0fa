//! Strict budgets across a fleet ([`Budget::strict`](super::Budget::strict)): a call
//! reserves its estimate at the store before it is sent, against the whole fleet's spend and
//! reservations (one round trip on the request's path).

use std::sync::atomic::Ordering;

use super::charge::Charge;
use super::ledger::Budgets;
use super::ticket::{StrictGate, StrictTicket};
use crate::store::StrictItem;
use crate::types::{BudgetExceeded, Error, ErrorKind};

impl Budgets {
    /// Lets strict budgets reserve at the fleet's store through `gate` (once).
    pub fn attach_strict(&self, gate: impl FnOnce() -> StrictGate) {
        if self.strict_gate.get().is_none() && self.budgets.iter().any(|t| t.budget.strict) {
            let _ = self.strict_gate.set(gate());
        }
    }

    /// Whether `charge` holds a strict budget that must also reserve at the store now.
    pub fn needs_strict(&self, charge: &Charge) -> bool {
        self.strict_gate
            .get()
            .is_some_and(|g| g.up.load(Ordering::Relaxed))
            && charge.is_strict(self)
    }

    /// Reserves `charge`'s strict budgets at the store (one round trip, within the store's
    /// timeout). A refusal is a `BudgetExceeded` error (the charge is then settled at 0 by
    /// the caller); a store that fails or times out admits the call on local state.
    pub async fn reserve_strict(&self, charge: &mut Charge) -> Result<(), Error> {
        let Some(gate) = self.strict_gate.get() else {
            return Ok(());
        };
        let items = charge.strict_items(self);
        if items.is_empty() {
            return Ok(());
        }
        let reservation = format!("{:016x}", fastrand::u64(..));
        let store_items: Vec<StrictItem> = items.iter().map(|(_, i)| i.clone()).collect();
        let answer = tokio::time::timeout(
            gate.timeout,
            gate.store
                .reserve_strict(&gate.namespace, &reservation, &store_items),
        )
        .await;
        let outcomes = match answer {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "strict budget: the store failed; admitted on local state");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(
                    "strict budget: the store did not answer in time; admitted on local state"
                );
                return Ok(());
            }
        };
        let ticket = StrictTicket::new(reservation, gate.queue.clone(), &items);
        let refused = items
            .iter()
            .zip(&outcomes)
            .find_map(|((i, item), o)| o.map(|used| (*i, item, used)));
        match refused {
            None => {
                charge.hold_strict(ticket);
                Ok(())
            }
            Some((i, item, used)) => {
                // All or nothing: the items reserved before the refusal go back.
                ticket.release();
                Err(self.strict_refusal(i, item, used))
            }
        }
    }
}

impl Budgets {
    /// The error of a call a strict budget refused: the fleet had `used` (raw units) spent
    /// or reserved in the window.
    fn strict_refusal(&self, i: usize, item: &StrictItem, used: u64) -> Error {
        let Some(t) = self.budgets.get(i) else {
            return Error::new(
                ErrorKind::BudgetExceeded,
                "a strict budget refused the call",
            );
        };
        let exceeded = BudgetExceeded {
            budget: t.budget.name.clone(),
            unit: t.budget.unit(),
            spent: t.to_unit(t.units_of_raw(used)),
            limit: t.budget.limit(),
            estimate: t.to_unit(t.units_of_raw(item.amount)),
            resets_at: self
                .status()
                .get(i)
                .map_or(std::time::SystemTime::UNIX_EPOCH, |s| s.resets_at),
        };
        Error::new(
            ErrorKind::BudgetExceeded,
            format!(
                "strict budget {:?}: the fleet has spent or reserved {} of {}; the request was not sent",
                exceeded.budget, exceeded.spent, exceeded.limit
            ),
        )
        .with_budget(exceeded)
    }
}
