//! Google Gemini API (being written).

/// The Gemini provider (being written).
#[derive(Debug)]
pub struct Gemini;
