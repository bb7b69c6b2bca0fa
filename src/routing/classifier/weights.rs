//! The weights a trained classifier decides with: each feature row's label weights as
//! 8-bit integers times one scale per row (a quarter of the `f32` size; the logits move by
//! well under 1 % of a row's largest weight).

use super::linear::{Linear, Sparse};

/// One linear score per label, `W·x + b`, with `W` quantised per row.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Weights {
    pub(super) labels: usize,
    /// Per row: its largest absolute weight / 127 (0 for a row of zeros).
    pub(super) scales: Vec<f32>,
    /// Row-major: `weights[row * labels + label]`, the weight being `scale · q`.
    pub(super) weights: Vec<i8>,
    pub(super) bias: Vec<f32>,
}

impl Weights {
    /// Rounds each row of `m` to the nearest multiple of its scale.
    pub(super) fn quantize(m: &Linear) -> Self {
        let k = m.labels.max(1);
        let rows = m.weights.len() / k;
        let mut scales = Vec::with_capacity(rows);
        let mut weights = Vec::with_capacity(rows * k);
        for row in m.weights.chunks_exact(k) {
            let max = row.iter().fold(0.0f32, |a, w| a.max(w.abs()));
            let scale = if max.is_finite() && max > 0.0 {
                max / 127.0
            } else {
                0.0
            };
            scales.push(scale);
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            // In -127..=127 by construction; `as` saturates a NaN to 0.
            weights.extend(
                row.iter()
                    .map(|w| (w * inv).round().clamp(-127.0, 127.0) as i8),
            );
        }
        Weights {
            labels: m.labels,
            scales,
            weights,
            bias: m.bias.clone(),
        }
    }

    /// `out = W·x + b`.
    pub(super) fn logits(&self, x: &Sparse, out: &mut [f32]) {
        let k = self.labels;
        out.fill(0.0);
        for &(row, v) in x {
            let r = row as usize;
            let (Some(&scale), Some(w)) = (self.scales.get(r), self.weights.get(r * k..r * k + k))
            else {
                continue;
            };
            let s = v * scale;
            for (o, &q) in out.iter_mut().zip(w) {
                *o += s * f32::from(q);
            }
        }
        for (o, b) in out.iter_mut().zip(&self.bias) {
            *o += b;
        }
    }
}
