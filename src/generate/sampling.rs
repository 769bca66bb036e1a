//! Turning logits into a token: greedy, temperature, top-k, top-p, each sample
//! with its own seeded random stream.
//!
//! A sample's stream is ChaCha8 seeded with the request seed and set to stream
//! number = the sample index, so a sample's tokens never depend on which other
//! samples share its batch.
//!
//! [`filtered_distribution`] defines what a draw means; [`super::draw`]
//! performs it in fewer passes (and a step's rows, or a lone large row, in
//! parallel) with the same tokens bit for bit.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{draw, exp, ranking};

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Nucleus threshold in `(0, 1]`; `1` disables it.
    pub top_p: f32,
    /// Keep only the `k` most likely tokens; `0` disables it.
    pub top_k: usize,
    /// Seed of the request; each sample derives its own stream from it.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

/// A temperature or top-p that sampling cannot use. [`check_sampling`] is
/// the one check behind `generate`'s flags, a sweep config's `[sampling]`
/// and a task file's `[sampling]`; each caller names its flag or field from
/// [`SamplingError::param`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SamplingError {
    #[error("{0} is not a finite temperature >= 0 (0 is greedy)")]
    Temperature(f64),
    #[error("{0} is not a top-p in (0, 1] (1 keeps every token)")]
    TopP(f64),
}

impl SamplingError {
    /// `temperature` or `top_p`: the parameter at fault.
    pub fn param(&self) -> &'static str {
        match self {
            SamplingError::Temperature(_) => "temperature",
            SamplingError::TopP(_) => "top_p",
        }
    }
}

/// Checks a temperature (finite, `>= 0`) and a top-p (in `(0, 1]`; NaN
/// fails), whatever their source. `f32` values widen exactly.
pub fn check_sampling(temperature: f64, top_p: f64) -> Result<(), SamplingError> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(SamplingError::Temperature(temperature));
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(SamplingError::TopP(top_p));
    }
    Ok(())
}

/// The distribution actually sampled from after temperature, top-k and top-p:
/// `(token id, probability)` sorted by probability descending (ties: lower id
/// first), probabilities renormalised to sum to 1. Each weight is
/// `exp((logit − max) / T)` by the sampler's own [`exp::exp`] (glibc's bits
/// on every machine).
pub fn filtered_distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
    let t = f64::from(params.temperature.max(f32::MIN_POSITIVE));
    let order = ranking::ranked(logits, params.top_k);
    let max = f64::from(logits[order[0] as usize]);
    let mut probs: Vec<(u32, f64)> = order
        .iter()
        .map(|&id| (id, exp::exp((f64::from(logits[id as usize]) - max) / t)))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    if params.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p.1;
            if cumulative >= f64::from(params.top_p) {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        let total: f64 = probs.iter().map(|p| p.1).sum();
        probs.iter_mut().for_each(|p| p.1 /= total);
    }
    probs
}

/// The token a uniform draw `u` in `[0, 1)` picks by walking the whole
/// [`filtered_distribution`]: the running sum of its probabilities in order,
/// the first token whose sum exceeds `u` (the last if none does). The
/// reference the sampler's draw (`generate::draw`) equals bit for bit, kept
/// for its tests and the sampling benchmark.
pub fn walk_filtered_distribution(logits: &[f32], params: &SamplingParams, u: f64) -> u32 {
    let dist = filtered_distribution(logits, params);
    let mut cumulative = 0.0;
    for &(id, p) in &dist {
        cumulative += p;
        if u < cumulative {
            return id;
        }
    }
    dist[dist.len() - 1].0
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// One sample's sampler: its parameters and its own random stream.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// The sampler of sample number `sample` of a request.
    pub fn new(params: SamplingParams, sample: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        rng.set_stream(sample);
        Self { params, rng }
    }

    /// Pick the next token from `logits` (`[vocab]`), on this thread: the
    /// token of walking [`filtered_distribution`] with this stream's next
    /// uniform (greedy: [`argmax`], no uniform taken). [`super::sample_rows`]
    /// draws many rows at once, and splits a lone large row where threads
    /// are spare.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.sample_split(logits, 1)
    }

    /// [`Sampler::sample`] with the row split in `split` chunks on rayon's
    /// pool ([`draw::split_for`] picks one): the same token whatever the
    /// split.
    pub fn sample_split(&mut self, logits: &[f32], split: usize) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let u = self.uniform();
        draw::draw(logits, &self.params, u, split)
    }

    /// A uniform draw in `[0, 1)` with 53 bits of precision.
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, top_k: usize) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed: 7,
        }
    }

    #[test]
    fn temperature_one_is_softmax() {
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()];
        let d = filtered_distribution(&logits, &params(1.0, 1.0, 0));
        let expect = [(2, 5.0 / 8.0), (1, 2.0 / 8.0), (0, 1.0 / 8.0)];
        for ((id, p), (eid, ep)) in d.iter().zip(expect) {
            assert_eq!(*id, eid);
            assert!((p - ep).abs() < 1e-7, "{p} vs {ep}");
        }
    }

    #[test]
    fn temperature_sharpens() {
        // p ∝ exp(l / T): with T = 0.5, weights 1, 4, 25.
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()];
        let d = filtered_distribution(&logits, &params(0.5, 1.0, 0));
        assert!((d[0].1 - 25.0 / 30.0).abs() < 1e-6);
        assert!((d[2].1 - 1.0 / 30.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_keeps_the_k_most_likely() {
        let logits = [1.0f32, 3.0, 2.0, 0.0];
        let d = filtered_distribution(&logits, &params(1.0, 1.0, 2));
        let ids: Vec<u32> = d.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2]);
        let e = (1.0f64).exp();
        assert!((d[0].1 - e / (e + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // probabilities 0.5, 0.3, 0.2: p = 0.7 needs the first two (0.8 ≥ 0.7).
        let logits = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let d = filtered_distribution(&logits, &params(1.0, 0.7, 0));
        assert_eq!(d.len(), 2);
        assert!((d[0].1 - 0.5 / 0.8).abs() < 1e-6);
        // p = 0.5 exactly is reached by the first token alone.
        let d = filtered_distribution(&logits, &params(1.0, 0.5, 0));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn draws_follow_the_distribution() {
        let logits = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let mut s = Sampler::new(params(1.0, 1.0, 0), 0);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            counts[s.sample(&logits) as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.5, 0.3, 0.2]) {
            let f = *c as f64 / n as f64;
            // 5 standard errors of a binomial proportion.
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((f - p).abs() < 5.0 * se, "frequency {f} vs {p}");
        }
    }

    #[test]
    fn same_seed_same_tokens_and_streams_differ() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |sample| {
            let mut s = Sampler::new(params(1.0, 0.95, 20), sample);
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn greedy_takes_the_lowest_id_on_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        let mut s = Sampler::new(params(0.0, 1.0, 0), 0);
        assert_eq!(s.sample(&[0.0, 5.0, 1.0]), 1);
    }
}
