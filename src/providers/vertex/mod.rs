//! Google Vertex AI: Gemini on Vertex's paths, Claude through `rawPredict` /
//! `streamRawPredict`, and Vertex's OpenAI-compatible endpoint — codecs on the one
//! [`HttpProvider`](super::HttpProvider), with Google OAuth tokens.
