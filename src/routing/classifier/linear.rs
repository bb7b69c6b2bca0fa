//! The linear model: one score per label over sparse TF-IDF vectors, a multinomial logistic
//! regression fitted by averaged SGD ([`Linear::fit`]).

use super::features::fmix;

/// The gradient descent's settings (from [`TrainOptions`](super::TrainOptions), whose
/// setters document them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Sgd {
    pub(super) epochs: usize,
    pub(super) average_from: usize,
    pub(super) l2: f32,
    pub(super) learning_rate: f32,
    pub(super) seed: u64,
}

/// A deterministic generator (splitmix64) for the training shuffle.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        fmix(self.0)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// A sparse vector: (feature row, value) pairs.
pub(super) type Sparse = Vec<(u32, f32)>;

/// One linear score per label: `W·x + b`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Linear {
    pub(super) labels: usize,
    /// Row-major: `weights[row * labels + label]`.
    pub(super) weights: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

impl Linear {
    pub(super) fn zeros(rows: usize, labels: usize) -> Self {
        Linear {
            labels,
            weights: vec![0.0; rows * labels],
            bias: vec![0.0; labels],
        }
    }

    /// `out = scale * W·x + b`.
    pub(super) fn logits(&self, x: &[(u32, f32)], scale: f32, out: &mut [f32]) {
        let k = self.labels;
        out.fill(0.0);
        for &(row, v) in x {
            let start = row as usize * k;
            if let Some(w) = self.weights.get(start..start + k) {
                for (o, w) in out.iter_mut().zip(w) {
                    *o += v * w;
                }
            }
        }
        for (o, b) in out.iter_mut().zip(&self.bias) {
            *o = *o * scale + b;
        }
    }

    /// Multinomial logistic regression by averaged SGD with L2 regularisation. The weights
    /// are kept as `scale * W`, so the decay costs one multiplication per step.
    pub(super) fn fit(rows: usize, labels: usize, data: &[(usize, &Sparse)], o: &Sgd) -> Self {
        let mut m = Linear::zeros(rows, labels);
        let mut avg = Linear::zeros(rows, labels);
        let mut averaged = 0u32;
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = SplitMix(o.seed);
        let mut scale = 1.0f32;
        let mut t = 0.0f32;
        let mut grad = vec![0.0f32; labels];
        for epoch in 0..o.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let Some(&(y, x)) = data.get(i) else { continue };
                let eta = o.learning_rate / (1.0 + o.learning_rate * o.l2 * t);
                t += 1.0;
                m.logits(x, scale, &mut grad);
                softmax(&mut grad);
                // The gradient of the log loss by the logits: p - onehot(y).
                if let Some(g) = grad.get_mut(y) {
                    *g -= 1.0;
                }
                scale *= 1.0 - eta * o.l2;
                if scale < 1e-6 {
                    m.weights.iter_mut().for_each(|w| *w *= scale);
                    scale = 1.0;
                }
                let step = eta / scale;
                for &(row, v) in x.iter() {
                    let start = row as usize * labels;
                    if let Some(w) = m.weights.get_mut(start..start + labels) {
                        for (w, g) in w.iter_mut().zip(&grad) {
                            *w -= step * g * v;
                        }
                    }
                }
                for (b, g) in m.bias.iter_mut().zip(&grad) {
                    *b -= eta * g;
                }
            }
            if epoch >= o.average_from {
                for (a, w) in avg.weights.iter_mut().zip(&m.weights) {
                    *a += w * scale;
                }
                for (a, b) in avg.bias.iter_mut().zip(&m.bias) {
                    *a += b;
                }
                averaged += 1;
            }
        }
        if averaged == 0 {
            m.weights.iter_mut().for_each(|w| *w *= scale);
            return m;
        }
        let n = averaged as f32;
        avg.weights.iter_mut().for_each(|w| *w /= n);
        avg.bias.iter_mut().for_each(|b| *b /= n);
        avg
    }
}

pub(super) fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        for x in v.iter_mut() {
            *x /= sum;
        }
    }
}
