//! The models as the simulator plays them: how long and how fast each answers, and
//! OpenAI's outage.

use std::time::Duration;

use polyrelay::simulator::{Reply, SimError};

use super::text::{ANSWERS_EN, ANSWERS_TRANSLATED, ANSWERS_ZH};

pub(crate) const ONPREM_MODEL: &str = "llama-3.3-70b";

#[derive(Clone, Copy, PartialEq)]
enum Voice {
    English,
    Chinese,
    Translation,
}

/// How a simulated model answers: how long (tokens) and how fast.
pub(crate) struct Profile {
    pub(crate) model: &'static str,
    /// Time to the answer before the first token, in ms.
    base_ms: f64,
    /// Generation time per output token, in ms.
    ms_per_token: f64,
    /// Output tokens, uniform in this range.
    out_tokens: (usize, usize),
    voice: Voice,
}

pub(crate) const PROFILES: &[Profile] = &[
    Profile {
        model: "gpt-4o-mini",
        base_ms: 30.0,
        ms_per_token: 0.22,
        out_tokens: (25, 140),
        voice: Voice::English,
    },
    Profile {
        model: "gpt-4o",
        base_ms: 80.0,
        ms_per_token: 0.45,
        out_tokens: (140, 480),
        voice: Voice::English,
    },
    Profile {
        model: "claude-haiku-4-5",
        base_ms: 55.0,
        ms_per_token: 0.30,
        out_tokens: (30, 160),
        voice: Voice::English,
    },
    Profile {
        model: "claude-sonnet-4-5",
        base_ms: 120.0,
        ms_per_token: 0.50,
        out_tokens: (150, 520),
        voice: Voice::English,
    },
    Profile {
        model: "qwen-plus",
        base_ms: 60.0,
        ms_per_token: 0.30,
        out_tokens: (30, 120),
        voice: Voice::Chinese,
    },
    Profile {
        model: "qwen-max",
        base_ms: 100.0,
        ms_per_token: 0.40,
        out_tokens: (120, 600),
        voice: Voice::Translation,
    },
    Profile {
        model: ONPREM_MODEL,
        base_ms: 40.0,
        ms_per_token: 0.35,
        out_tokens: (50, 220),
        voice: Voice::English,
    },
];

/// `n` answers of `p`: lengths and latencies drawn per answer, with the rare 500 (retried)
/// and the rare slow answer (the p99 tail).
pub(crate) fn healthy_replies(p: &Profile, n: usize, rng: &mut fastrand::Rng) -> Vec<Reply> {
    (0..n)
        .map(|_| {
            let roll = rng.f64();
            if roll < 0.004 {
                return Reply::error(SimError::Server);
            }
            let tokens = rng.usize(p.out_tokens.0..=p.out_tokens.1);
            let mut ms = (p.base_ms + p.ms_per_token * tokens as f64) * lognormal(rng, 0.3);
            if roll > 0.995 {
                ms *= 3.0;
            }
            Reply::text(&answer(p.voice, tokens, rng)).delay(Duration::from_secs_f64(ms / 1000.0))
        })
        .collect()
}

/// OpenAI during the outage: overloaded, failing, or silent until the relay gives up.
pub(crate) fn outage_replies(rng: &mut fastrand::Rng) -> Vec<Reply> {
    (0..2_000)
        .map(|_| match rng.f64() {
            r if r < 0.55 => Reply::error(SimError::Overloaded),
            r if r < 0.85 => Reply::error(SimError::Server).delay(Duration::from_millis(40)),
            _ => Reply::hang(),
        })
        .collect()
}

/// exp(N(0, sigma²)): a latency multiplier with median 1.
fn lognormal(rng: &mut fastrand::Rng, sigma: f64) -> f64 {
    let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * z).exp()
}

/// An answer of about `tokens` tokens (4 characters each, as the simulator counts).
fn answer(voice: Voice, tokens: usize, rng: &mut fastrand::Rng) -> String {
    let pool = match voice {
        Voice::English => ANSWERS_EN,
        Voice::Chinese => ANSWERS_ZH,
        Voice::Translation => ANSWERS_TRANSLATED,
    };
    fill(pool, tokens * 4, rng)
}

/// Sentences of `pool`, in random order, up to about `chars` characters.
pub(crate) fn fill(pool: &[&str], chars: usize, rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    while out.chars().count() < chars {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pool[rng.usize(..pool.len())]);
    }
    out
}
