//! Rotary position embedding in the Hugging Face "rotate-half" layout (NeoX
//! style: dimension `i` is paired with `i + head_dim/2`), with Llama 3.x
//! frequency scaling.
//!
//! Angles are computed in f64 on the host for exactly the positions a forward
//! pass needs, so there is no table sized by `max_position_embeddings` and no
//! precision loss at large positions or large `rope_theta`.

use std::f64::consts::PI;

use burn::prelude::*;

use crate::model::{ModelConfig, RopeScaling};

/// The rotary frequencies of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// `head_dim / 2` inverse frequencies, scaling applied.
    inv_freq: Vec<f64>,
}

/// `cos` and signed `sin` for a list of positions.
///
/// # Shapes
/// `cos`, `sin`: `[n, head_dim]`, one row per position. `sin` carries the
/// sign of rotate-half: its first half is negated, so that
/// `rope(x) = x * cos + swap_halves(x) * sin`.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
}

impl Rope {
    /// Frequencies `theta^(-2i/head_dim)`, then the config's scaling.
    pub fn new(config: &ModelConfig) -> Self {
        let d = config.head_dim;
        let mut inv_freq: Vec<f64> = (0..d / 2)
            .map(|i| config.rope_theta.powf(-((2 * i) as f64) / d as f64))
            .collect();
        if let Some(s) = &config.rope_scaling {
            llama3_scale(&mut inv_freq, s);
        }
        Self { inv_freq }
    }

    /// The inverse frequencies, `head_dim / 2` of them.
    pub fn inv_freq(&self) -> &[f64] {
        &self.inv_freq
    }

    /// Host-side tables for `positions`, row-major `[n, head_dim]` each
    /// (`cos`, signed `sin`).
    pub fn host_tables(&self, positions: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * 2 * half);
        let mut sin = Vec::with_capacity(positions.len() * 2 * half);
        for &p in positions {
            let angles = self.inv_freq.iter().map(|f| p as f64 * f);
            let (c, s): (Vec<f64>, Vec<f64>) = angles.map(|a| (a.cos(), a.sin())).unzip();
            cos.extend(c.iter().chain(&c).map(|&x| x as f32));
            sin.extend(s.iter().map(|&x| -x as f32));
            sin.extend(s.iter().map(|&x| x as f32));
        }
        (cos, sin)
    }

    /// Device tables for `positions`.
    pub fn tables<B: Backend>(&self, positions: &[usize], device: &B::Device) -> RopeTables<B> {
        let shape = [positions.len(), 2 * self.inv_freq.len()];
        let (cos, sin) = self.host_tables(positions);
        crate::profile::upload_to::<B>(4 * cos.len());
        crate::profile::upload_to::<B>(4 * sin.len());
        RopeTables {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }
}

impl<B: Backend> RopeTables<B> {
    /// Rotates `x` in place of position `i` by row `i` of the tables.
    ///
    /// # Shapes
    /// `x`: `[n, heads, head_dim]` with `n` the number of positions of the
    /// tables; returns the same shape.
    pub fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        if let Some(y) = crate::model::kernels::flex_ops::rope(&x, &self.cos, &self.sin) {
            return y;
        }
        if let Some(y) = crate::model::kernels::cube_ops::rope(&x, &self.cos, &self.sin) {
            return y;
        }
        self.apply_ops(x)
    }

    /// [`RopeTables::apply`] in burn ops on every backend (the composition
    /// the fused kernels replace).
    pub fn apply_ops(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, _, head_dim] = x.dims();
        let half = head_dim / 2;
        let swapped = Tensor::cat(
            vec![
                x.clone().narrow(2, half, half),
                x.clone().narrow(2, 0, half),
            ],
            2,
        );
        x * self.cos.clone().unsqueeze_dim(1) + swapped * self.sin.clone().unsqueeze_dim(1)
    }
}

/// Llama 3.x: long wavelengths are slowed by `factor`, short ones kept, and
/// the band between is interpolated (transformers `_compute_llama3_parameters`).
fn llama3_scale(inv_freq: &mut [f64], s: &RopeScaling) {
    let old = s.original_max_position_embeddings as f64;
    let low_freq_wavelen = old / s.low_freq_factor;
    let high_freq_wavelen = old / s.high_freq_factor;
    for f in inv_freq.iter_mut() {
        let wavelen = 2.0 * PI / *f;
        if wavelen > low_freq_wavelen {
            *f /= s.factor;
        } else if wavelen >= high_freq_wavelen {
            let smooth =
                (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    fn config(head_dim: usize, rope_scaling: Option<RopeScaling>) -> ModelConfig {
        ModelConfig {
            arch: Arch::Llama,
            vocab_size: 8,
            hidden_size: head_dim,
            intermediate_size: 8,
            num_layers: 1,
            num_heads: 1,
            num_kv_heads: 1,
            head_dim,
            rms_norm_eps: 1e-5,
            rope_theta: 500_000.0,
            rope_scaling,
            max_position_embeddings: 1024,
            tie_word_embeddings: true,
            attention_bias: false,
            qk_norm: false,
            dms: None,
        }
    }

    #[test]
    fn llama3_scaling_matches_transformers() {
        // Golden values: transformers 5.24 `ROPE_INIT_FUNCTIONS["llama3"]`
        // (f32) for head_dim 64, theta 5e5, factor 32, low 1, high 4,
        // original 8192 (Llama-3.2-1B's settings).
        let s = RopeScaling {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let rope = Rope::new(&config(64, Some(s)));
        let golden = [
            (0, 1.0),
            (8, 0.03760603070259094),
            (12, 0.00729266507551074),
            (14, 0.0032114461064338684),
            (15, 0.0012905480107292533),
            (16, 0.000429556705057621),
            (20, 8.570255886297673e-06),
            (31, 9.418306490260875e-08),
        ];
        for (i, want) in golden {
            let got = rope.inv_freq()[i];
            assert!(
                (got - want).abs() <= 1e-6 * want,
                "inv_freq[{i}] = {got}, want {want}"
            );
        }
    }

    #[test]
    fn rotation_matches_pairwise_formula() {
        type B = burn::backend::flex::Flex;
        let rope = Rope::new(&config(4, None));
        let device = Default::default();
        let x: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 0.25, 2.0];
        let xt = Tensor::<B, 3>::from_data(TensorData::new(x.clone(), [2, 1, 4]), &device);
        let positions = [3usize, 17];
        let got = rope
            .tables::<B>(&positions, &device)
            .apply(xt)
            .into_data()
            .into_vec::<f32>()
            .expect("f32");
        for (r, &p) in positions.iter().enumerate() {
            let v = &x[r * 4..r * 4 + 4];
            for i in 0..2 {
                let a = p as f64 * rope.inv_freq()[i];
                let (c, s) = (a.cos() as f32, a.sin() as f32);
                let (x1, x2) = (v[i], v[i + 2]);
                assert!((got[r * 4 + i] - (x1 * c - x2 * s)).abs() < 1e-6);
                assert!((got[r * 4 + i + 2] - (x2 * c + x1 * s)).abs() < 1e-6);
            }
        }
    }
}
