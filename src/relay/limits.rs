//! Reading limits and budgets while they work: `Relay::limits`.
