//! Sensitive data found in process (issue 22, being built): [`SensitiveDataRule`].

/// Routes a request whose text holds sensitive data (being built).
#[derive(Debug, Clone, Default)]
pub struct SensitiveDataRule {}

/// A kind of sensitive data (being built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SensitiveKind {
    /// A payment card number.
    Card,
}
