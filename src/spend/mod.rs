//! Spend and quota control: budgets ([`budget`]), client-side rate limits ([`limiter`]) and
//! key pools ([`keys`]). Each keeps its state in atomics or short critical sections, so the
//! bookkeeping on the request path costs nanoseconds; the relay consults them before it sends
//! an attempt and feeds them what the vendor answered.

pub(crate) mod admission;
pub mod budget;
pub(crate) mod fleet_limits;
pub mod keys;
pub mod limiter;
