//! The sensitive-data rule through the relay (issue 22, being built).
