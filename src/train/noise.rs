//! The relaxation noise of one training step (`docs/method.md` §4.1): logistic
//! samples, built as the difference of two Gumbel(0, 1) samples, from a
//! stream seeded by `sha256("{seed}_{step}")` (the step's first sequence) or
//! `sha256("{seed}_{step}_{i}")` (its i-th, i ≥ 1, with `--batch`) so a run
//! is reproducible and every sequence of every step differs.

use burn::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The 64-bit seed of step `step` of a run seeded `seed`.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    sample_seed(seed, step, 0)
}

/// The 64-bit seed of the `sample`-th sequence of step `step` (sample 0 is
/// [`step_seed`], so a batch of one is the unbatched run).
pub fn sample_seed(seed: u64, step: usize, sample: usize) -> u64 {
    let text = if sample == 0 {
        format!("{seed}_{step}")
    } else {
        format!("{seed}_{step}_{sample}")
    };
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// `layers` tensors of logistic noise from the stream seeded `stream`
/// ([`sample_seed`]).
///
/// # Shapes
/// Each `[t, kv_heads]`.
pub fn logistic_noise<B: Backend>(
    stream: u64,
    layers: usize,
    t: usize,
    kv_heads: usize,
    device: &B::Device,
) -> Vec<Tensor<B, 2>> {
    let mut rng = ChaCha8Rng::seed_from_u64(stream);
    let mut gumbel = move || {
        let u: f64 = rng.random_range(1e-12..1.0 - 1e-12);
        -(-u.ln()).ln()
    };
    (0..layers)
        .map(|_| {
            let data: Vec<f32> = (0..t * kv_heads)
                .map(|_| (gumbel() - gumbel()) as f32)
                .collect();
            Tensor::from_data(TensorData::new(data, [t, kv_heads]), device)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::Flex;

    /// Logistic(0, 1): mean 0, variance π²/3, P(x > 0) = 1/2; seeded.
    #[test]
    fn noise_is_standard_logistic_and_seeded() {
        let n = logistic_noise::<Flex>(step_seed(7, 3), 1, 20_000, 2, &Default::default());
        let v = n[0].clone().into_data().into_vec::<f32>().unwrap();
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / v.len() as f64;
        let pos = v.iter().filter(|&&x| x > 0.0).count() as f64 / v.len() as f64;
        let want = std::f64::consts::PI.powi(2) / 3.0;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - want).abs() < 0.15, "variance {var} vs {want}");
        assert!((pos - 0.5).abs() < 0.01, "{pos}");
        let again = logistic_noise::<Flex>(step_seed(7, 3), 1, 20_000, 2, &Default::default());
        assert_eq!(v, again[0].clone().into_data().into_vec::<f32>().unwrap());
        let other = logistic_noise::<Flex>(step_seed(7, 4), 1, 4, 2, &Default::default());
        assert_ne!(
            v[..8],
            other[0].clone().into_data().into_vec::<f32>().unwrap()[..]
        );
        assert_eq!(step_seed(7, 3), sample_seed(7, 3, 0));
        assert_ne!(sample_seed(7, 3, 1), sample_seed(7, 3, 0));
        assert_ne!(sample_seed(7, 3, 1), sample_seed(7, 4, 0));
    }
}
