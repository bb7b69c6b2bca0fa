//! Token usage, normalised across vendors so one cost formula serves all.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tokens a call consumed, normalised across vendors.
///
/// * `input_tokens` counts every prompt token, cached ones included (OpenAI's
///   `prompt_tokens`; Anthropic's `input_tokens + cache_read + cache_creation`).
/// * `output_tokens` counts every generated token, reasoning included (xAI reports
///   reasoning outside `completion_tokens`; it is added back here).
/// * `cache_read_tokens`, `cache_write_tokens` and `reasoning_tokens` are subsets of
///   the two totals above. Reasoning comes from OpenAI's
///   `completion_tokens_details.reasoning_tokens`, Gemini's `thoughtsTokenCount` and, where a
///   model reports it, Anthropic's `output_tokens_details.thinking_tokens`.
///
/// Serializes as OpenAI's `usage` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Usage {
    /// All prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// All generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens served from the vendor's prompt cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the vendor's prompt cache.
    pub cache_write_tokens: u64,
    /// Generated tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Usage with input and output counts only.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// `input_tokens + output_tokens`.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Prompt tokens billed at the full input rate (neither read from nor written to the cache).
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// Field-wise sum, e.g. for accumulating several calls.
    pub fn add(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_read_tokens: self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens + other.reasoning_tokens,
        }
    }
}

/// OpenAI's usage object as OpenAI-compatible vendors send it (every field optional).
#[derive(Default, Deserialize)]
#[serde(default)]
struct OpenAiUsageWire {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's name for cached prompt tokens.
    prompt_cache_hit_tokens: Option<u64>,
    /// Anthropic-style fields some gateways pass through.
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PromptDetails {
    cached_tokens: Option<u64>,
    /// OpenRouter's cache-write count.
    cache_write_tokens: Option<u64>,
    cache_creation_tokens: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsageWire> for Usage {
    fn from(w: OpenAiUsageWire) -> Self {
        let prompt = w.prompt_tokens.unwrap_or(0);
        let completion = w.completion_tokens.unwrap_or(0);
        let pd = w.prompt_tokens_details.unwrap_or_default();
        let reasoning = w
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        // OpenAI, DeepSeek and Groq count reasoning inside completion_tokens; xAI does not,
        // which shows as total = prompt + completion + reasoning.
        let output = if reasoning > 0 && w.total_tokens == Some(prompt + completion + reasoning) {
            completion + reasoning
        } else {
            completion
        };
        Usage {
            input_tokens: prompt,
            output_tokens: output,
            cache_read_tokens: pd
                .cached_tokens
                .or(w.prompt_cache_hit_tokens)
                .or(w.cache_read_input_tokens)
                .unwrap_or(0),
            cache_write_tokens: pd
                .cache_write_tokens
                .or(pd.cache_creation_tokens)
                .or(w.cache_creation_input_tokens)
                .unwrap_or(0),
            reasoning_tokens: reasoning,
        }
    }
}

impl<'de> Deserialize<'de> for Usage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OpenAiUsageWire::deserialize(d).map(Usage::from)
    }
}

impl Serialize for Usage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire {
            prompt_tokens: u64,
            completion_tokens: u64,
            total_tokens: u64,
            prompt_tokens_details: PromptOut,
            completion_tokens_details: CompletionOut,
        }
        #[derive(Serialize)]
        struct PromptOut {
            cached_tokens: u64,
            cache_write_tokens: u64,
        }
        #[derive(Serialize)]
        struct CompletionOut {
            reasoning_tokens: u64,
        }
        Wire {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: self.total_tokens(),
            prompt_tokens_details: PromptOut {
                cached_tokens: self.cache_read_tokens,
                cache_write_tokens: self.cache_write_tokens,
            },
            completion_tokens_details: CompletionOut {
                reasoning_tokens: self.reasoning_tokens,
            },
        }
        .serialize(s)
    }
}
