//! Error bodies.

use serde_json::{Value, json};

use super::Oai;
use crate::support::fixtures::*;
use polyrelay::ErrorKind;

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_error_401_invalid_api_key_is_auth() {
    // The fixture is only the inner `error` object; the wire body wraps it.
    let rel = "openai/error_401_invalid_api_key.error_object.json";
    let inner = read_json(rel);
    let message = "Incorrect API key provided: kk. You can find your API key at https://platform.openai.com/account/api-keys.";
    let wire = serde_json::to_vec(&json!({ "error": inner })).expect("JSON");
    for body in [wire, read(rel)] {
        let e = Oai::decode_error(401, &reqwest::header::HeaderMap::new(), &body);
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.status(), Some(401));
        assert_eq!(e.code(), Some("invalid_api_key"));
        assert_eq!(e.message(), message);
    }
    assert_eq!(status_from_name(rel), 401);
}

#[test]
fn mistral_error_422_message_object() {
    let rel = "mistral/error_422_message_is_object.json";
    let e = Oai::decode_error_fixture(rel);
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.status(), Some(422));
    assert_eq!(e.code(), Some("invalid_request_error"));
    // The message is the object's JSON text.
    let body = read_json(rel);
    let msg: Value = serde_json::from_str(e.message())
        .unwrap_or_else(|err| panic!("message is not JSON ({err}): {:?}", e.message()));
    assert_eq!(msg, body["message"]);
    assert!(e.message().contains("Extra inputs are not permitted"));
    assert!(e.message().contains("max_completion_tokens"));
}

/// Error bodies with nothing to check beyond their row.
#[test]
fn openai_family_errors_decode_as_recorded() {
    let rows = [
        // Was `openai_error_429_insufficient_quota_is_quota_exhausted`.
        (
            "openai/error_429_insufficient_quota.json",
            WantErr {
                kind: ErrorKind::QuotaExhausted,
                status: 429,
                code: Some("insufficient_quota"),
                message: Msg::Exact(
                    "You exceeded your current quota, please check your plan and billing details.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_429_rate_limit_exceeded_is_rate_limited`.
        (
            "openai/error_429_rate_limit_exceeded_requests.json",
            WantErr {
                kind: ErrorKind::RateLimited,
                status: 429,
                code: Some("rate_limit_exceeded"),
                message: Msg::Prefix(
                    "Rate limit reached for gpt-4o-mini in organization org-OOhFjD3fpmItZTQAxWOQx11o on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_429_legacy_code_null_is_rate_limited`.
        (
            "openai/error_429_rate_limit_legacy_code_null.json",
            WantErr {
                kind: ErrorKind::RateLimited,
                status: 429,
                // code null: the type ("requests") stands in.
                code: Some("requests"),
                message: Msg::Prefix(
                    "Rate limit reached for default-gpt-3.5-turbo in organization org-C92hO32J0AGzGOmHi6JKDVk2 on requests per min.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_429_request_too_large_is_the_requests_fault`.
        // One request above the key's per-minute tokens: no key is out of quota, the request is
        // too large for this target (it fails over without parking the key).
        (
            "openai/error_429_request_too_large_tokens.json",
            WantErr {
                kind: ErrorKind::RequestTooLarge,
                status: 429,
                code: Some("rate_limit_exceeded"),
                message: Msg::Prefix(
                    "Request too large for gpt-4o in organization org-VDAWofJASuLH0vVz8o9tiQZr on tokens per min (TPM): Limit 30000, Requested 30601.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_404_model_not_found_is_not_found`.
        (
            "openai/error_404_model_not_found.json",
            WantErr {
                kind: ErrorKind::NotFound,
                status: 404,
                code: Some("model_not_found"),
                message: Msg::Exact(
                    "The model `gpt-5.2-proo` does not exist or you do not have access to it.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_404_raw_with_request_id_header`.
        (
            "openai/error_404_model_not_found_raw.json",
            WantErr {
                kind: ErrorKind::NotFound,
                status: 404,
                code: Some("model_not_found"),
                message: Msg::Exact(
                    "The model `non-existent-model` does not exist or you do not have access to it.",
                ),
                request_id: Some("req_9441b7808a504cc8abfc6276fd5c7721"),
                retry_after: None,
            },
        ),
        // Was `openai_error_400_unsupported_value_is_invalid_request`.
        (
            "openai/error_400_unsupported_value.json",
            WantErr {
                kind: ErrorKind::InvalidRequest,
                status: 400,
                code: Some("unsupported_value"),
                message: Msg::Exact(
                    "Unsupported value: 'messages[0].role' does not support 'system' with this model.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_400_code_null_is_invalid_request`.
        (
            "openai/error_400_code_null.json",
            WantErr {
                kind: ErrorKind::InvalidRequest,
                status: 400,
                code: Some("invalid_request_error"),
                message: Msg::Exact("Web search options not supported with this model."),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_500_is_server`.
        (
            "openai/error_500_server_error.json",
            WantErr {
                kind: ErrorKind::Server,
                status: 500,
                code: Some("server_error"),
                message: Msg::Prefix(
                    "The server had an error processing your request. Sorry about that!",
                ),
                // The request id is only inside the message text.
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `azure_error_400_content_filter_is_content_filtered`.
        (
            "openai/azure_error_400_content_filter.json",
            WantErr {
                kind: ErrorKind::ContentFiltered,
                status: 400,
                code: Some("content_filter"),
                message: Msg::Prefix(
                    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `deepseek_error_402_is_quota_exhausted`.
        (
            "deepseek/error_402_insufficient_balance.json",
            WantErr {
                kind: ErrorKind::QuotaExhausted,
                status: 402,
                // DeepSeek's type/code look swapped: code "invalid_request_error".
                code: Some("invalid_request_error"),
                message: Msg::Exact("Insufficient Balance"),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `mistral_error_429_legacy_is_rate_limited`.
        (
            "mistral/error_429_rate_limit_legacy.json",
            WantErr {
                kind: ErrorKind::RateLimited,
                status: 429,
                code: None,
                message: Msg::Exact("Requests rate limit exceeded"),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `mistral_error_429_object_error_is_rate_limited`.
        // Mistral's 2026 shape carries the vendor code as a numeric string, `"code":"1300"`: not the
        // HTTP status, so it is kept.
        (
            "mistral/error_429_rate_limited.json",
            WantErr {
                kind: ErrorKind::RateLimited,
                status: 429,
                code: Some("1300"),
                message: Msg::Exact("Rate limit exceeded"),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `groq_error_400_tool_use_failed_is_invalid_request`.
        (
            "groq/error_400_tool_use_failed.json",
            WantErr {
                kind: ErrorKind::InvalidRequest,
                status: 400,
                code: Some("tool_use_failed"),
                message: Msg::Prefix(
                    "Tool call validation failed: tool call validation failed: parameters for tool get_something_by_name did not match schema",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `groq_error_404_is_not_found`.
        (
            "groq/error_404_model_not_found.json",
            WantErr {
                kind: ErrorKind::NotFound,
                status: 404,
                code: Some("model_not_found"),
                message: Msg::Exact(
                    "The model `llama-3.3-70b-versatlie` does not exist or you do not have access to it.",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openrouter_error_401_is_auth`.
        (
            "openrouter/error_401_no_auth.json",
            WantErr {
                kind: ErrorKind::Auth,
                status: 401,
                // Integer code 401 only repeats the status.
                code: None,
                message: Msg::Exact("No cookie auth credentials found"),
                // Only a Cloudflare CF-RAY header: a CDN trace id, not the vendor's request id.
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openrouter_error_429_is_rate_limited_with_upstream_text`.
        (
            "openrouter/error_429_upstream_rate_limited.json",
            WantErr {
                kind: ErrorKind::RateLimited,
                status: 429,
                code: None,
                message: Msg::Exact(
                    "Provider returned error: google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `vllm_error_400_context_length_is_context_length_exceeded`.
        (
            "vllm/error_400_context_length_v0_16.json",
            WantErr {
                kind: ErrorKind::ContextLengthExceeded,
                status: 400,
                // Integer code 400 repeats the status; the type stands in.
                code: Some("BadRequestError"),
                message: Msg::Prefix(
                    "You passed 1015 input tokens and requested 10 output tokens. However, the model's context length is only 1024 tokens",
                ),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `vllm_error_400_legacy_top_level_is_invalid_request`.
        (
            "vllm/error_400_legacy_top_level.json",
            WantErr {
                kind: ErrorKind::InvalidRequest,
                status: 400,
                code: Some("BadRequestError"),
                message: Msg::Exact("max_tokens must be at least 1, got -186."),
                request_id: None,
                retry_after: None,
            },
        ),
        // Was `openai_error_400_unsupported_parameter_is_invalid_request` (the sidecar's
        // x-ratelimit-* headers are no Retry-After).
        (
            "openai/error_400_unsupported_parameter_raw.json",
            WantErr {
                kind: ErrorKind::InvalidRequest,
                status: 400,
                code: Some("unsupported_parameter"),
                message: Msg::Exact(
                    "Unsupported parameter: 'stop' is not supported with this model.",
                ),
                request_id: Some("req_7be4715c3ee32aa406eacb68c7cc966e"),
                retry_after: None,
            },
        ),
    ];
    Oai::check_error_table(&rows);
}
