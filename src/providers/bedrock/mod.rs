//! AWS Bedrock: Converse and ConverseStream for every model family, Anthropic's own body
//! through InvokeModel, and the OpenAI-compatible Mantle endpoint — codecs on the one
//! [`HttpProvider`](super::HttpProvider), with SigV4 or a Bedrock API key ([`auth`]).

pub mod auth;

pub use auth::AwsAuth;
