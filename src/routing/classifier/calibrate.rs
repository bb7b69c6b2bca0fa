//! Calibration on held-out folds: a temperature for the softmax, then an isotonic map from
//! the best label's probability to the share of such answers that were right, both fitted on
//! out-of-fold predictions of a k-fold cross-validation.

use super::linear::{Linear, Sgd, Sparse, softmax};
use super::weights::Weights;

/// The most points a saved isotonic map may hold.
pub(super) const MAX_POINTS: usize = 256;

/// The points an isotonic map is fitted with (adjacent blocks are merged past it): blocks of
/// at least 1/64 of the examples, so each point's rate rests on enough answers (with 256
/// blocks of ~25 answers, the rates swung by ±10 points between neighbours).
const POINTS: usize = 64;

/// Pseudo-examples at a block's own mean probability added to its observed rate (10
/// before: it kept the raw probability's over-confidence in the middle of the range).
const PRIOR: f64 = 2.0;

/// A nondecreasing piecewise-linear map from a probability to a calibrated confidence:
/// `(probability, confidence)` points, both ascending. Empty: the identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Calibration {
    pub(super) points: Vec<(f32, f32)>,
}

impl Calibration {
    /// The calibrated confidence of probability `p`: linear between points, flat beyond.
    pub(super) fn apply(&self, p: f32) -> f32 {
        let pts = &self.points;
        let (Some(&first), Some(&last)) = (pts.first(), pts.last()) else {
            return p;
        };
        if p <= first.0 {
            return first.1;
        }
        if p >= last.0 {
            return last.1;
        }
        // The first point at or past p (exists: p < last.0).
        let i = pts.partition_point(|q| q.0 < p);
        match (pts.get(i.wrapping_sub(1)), pts.get(i)) {
            (Some(&(x0, y0)), Some(&(x1, y1))) if x1 > x0 => y0 + (y1 - y0) * (p - x0) / (x1 - x0),
            (_, Some(&(_, y))) => y,
            _ => p,
        }
    }

    /// Whether the points are a valid map: finite, in `0..=1`, both coordinates
    /// nondecreasing.
    pub(super) fn is_valid(&self) -> bool {
        let in_unit = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        self.points.iter().all(|&(x, y)| in_unit(x) && in_unit(y))
            && self
                .points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
    }

    /// Isotonic regression (pool adjacent violators) of correctness on probability, over
    /// `(probability, right)` pairs.
    pub(super) fn isotonic(mut pairs: Vec<(f32, bool)>) -> Self {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks: (sum of x, sum of y, count).
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (x, ok) in pairs {
            blocks.push((f64::from(x), f64::from(u8::from(ok)), 1.0));
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.1 / a.2 < b.1 / b.2 {
                    break;
                }
                blocks.truncate(n - 2);
                blocks.push((a.0 + b.0, a.1 + b.1, a.2 + b.2));
            }
        }
        // At most POINTS: merge runs of adjacent blocks (the means stay nondecreasing).
        let total: f64 = blocks.iter().map(|b| b.2).sum();
        let per = (total / POINTS as f64).max(1.0);
        let mut merged: Vec<(f64, f64, f64)> = Vec::new();
        for b in blocks {
            match merged.last_mut() {
                Some(m) if m.2 < per && blocks_small(m.2, b.2, per) => {
                    *m = (m.0 + b.0, m.1 + b.1, m.2 + b.2);
                }
                _ => merged.push(b),
            }
        }
        // Each block's rate shrunk toward its mean probability by PRIOR pseudo-examples, and
        // at most the rule of succession's (right + 1) / (n + 2): a block of all-right
        // answers does not claim certainty. Then kept monotone.
        let mut floor = 0.0f32;
        let points = merged
            .iter()
            .map(|b| {
                let x = b.0 / b.2;
                let y = ((b.1 + PRIOR * x) / (b.2 + PRIOR)).min((b.1 + 1.0) / (b.2 + 2.0)) as f32;
                floor = floor.max(y);
                (x as f32, floor)
            })
            .collect();
        Calibration { points }
    }
}

/// Whether a block of `a` examples may absorb its neighbour of `b` under the cap `per`.
fn blocks_small(a: f64, b: f64, per: f64) -> bool {
    a + b <= 2.0 * per
}

/// The logit multiplier (1 / temperature) that minimises the log loss of out-of-fold
/// predictions (from a grid), and the isotonic map of their best probabilities. No folds
/// (or too few examples a fold): 1 and the identity.
pub(super) fn fit_calibration(
    rows: usize,
    labels: usize,
    data: &[(usize, &Sparse)],
    folds: usize,
    o: &Sgd,
) -> (f32, Calibration) {
    if folds < 2 || data.len() < 4 * folds {
        return (1.0, Calibration::default());
    }
    // Out-of-fold logits of every example.
    let mut oof: Vec<(usize, Vec<f32>)> = Vec::with_capacity(data.len());
    for f in 0..folds {
        let train: Vec<(usize, &Sparse)> = data
            .iter()
            .enumerate()
            .filter(|(i, _)| i % folds != f)
            .map(|(_, d)| *d)
            .collect();
        // Quantised as the final model is, so the scores are alike.
        let m = Weights::quantize(&Linear::fit(rows, labels, &train, o));
        for (_, &(y, x)) in data.iter().enumerate().filter(|(i, _)| i % folds == f) {
            let mut z = vec![0.0; labels];
            m.logits(x, &mut z);
            oof.push((y, z));
        }
    }
    let mut best = (f32::INFINITY, 1.0f32);
    let mut p = vec![0.0f32; labels];
    for step in 0..=40 {
        // 0.25 … 16, log-spaced.
        let tau = 0.25 * 2f32.powf(step as f32 * 6.0 / 40.0);
        let mut loss = 0.0f32;
        for (y, z) in &oof {
            for (p, z) in p.iter_mut().zip(z) {
                *p = z * tau;
            }
            softmax(&mut p);
            loss -= p.get(*y).copied().unwrap_or(0.0).max(1e-12).ln();
        }
        if loss < best.0 {
            best = (loss, tau);
        }
    }
    let tau = best.1;
    let pairs = oof
        .iter()
        .map(|(y, z)| {
            for (p, z) in p.iter_mut().zip(z) {
                *p = z * tau;
            }
            softmax(&mut p);
            let (top, prob) =
                p.iter().enumerate().fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &q)| if q > b.1 { (i, q) } else { b },
                );
            (prob, top == *y)
        })
        .collect();
    (tau, Calibration::isotonic(pairs))
}
