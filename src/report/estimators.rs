//! Estimators over graded samples, as pure functions (`docs/grading.md` §5).
//!
//! Notation: a problem has `n` samples of which `c` are correct.
//!
//! - pass@1 = mean over problems of `c/n` (R1 paper, NeMo `pass@1[avg-of-n]`).
//! - pass@k = `1 − C(n−c, k) / C(n, k)` (Chen et al. 2021), computed in the
//!   stable product form `1 − Π_{i=n−c+1}^{n} (1 − k/i)`; averaged over
//!   problems only when every problem has `n ≥ k` (as LiveCodeBench does).
//! - maj@k (NeMo-Skills `_compute_majority_at_k`): the **first** `k` samples,
//!   those without an answer dropped; `(answer, correct)` pairs are counted
//!   and the score is the mean correctness of all pairs tied at the top count
//!   (a 1–1 tie of a right and a wrong answer scores 0.5); none left → 0.
//! - standard error over problems = sample standard deviation (ddof 1) / √m
//!   over the m per-problem values (simple-evals' `stderr`, NVIDIA LCB's
//!   `pass@k_stderr`); bootstrap CIs resample problems with a seeded RNG.
//! - standard error across runs (NeMo-Skills `_add_std_metrics`): run i is
//!   the i-th sample of every problem; `std_dev_across_runs` is the sample
//!   standard deviation (ddof 1) of the k run means and
//!   `std_err_across_runs` = that / √k. It measures how much the benchmark
//!   score moves between reruns, not how well the problems pin it down.

use std::collections::HashMap;
use std::hash::Hash;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Unbiased pass@k of one problem. `None` unless `0 < k ≤ n` and `c ≤ n`.
/// For `k = 1` it is exactly `c / n`.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    if k == 1 {
        // Exactly c/n, so that pass@1 equals the mean of c/n bit for bit.
        return Some(c as f64 / n as f64);
    }
    let kf = k as f64;
    let product: f64 = (n - c + 1..=n).map(|i| 1.0 - kf / i as f64).product();
    Some(1.0 - product)
}

/// Mean over problems of pass@k; `None` when there are no problems or some
/// problem has fewer than `k` samples. Input: `(n, c)` per problem.
pub fn mean_pass_at_k(problems: &[(u64, u64)], k: u64) -> Option<f64> {
    let values: Option<Vec<f64>> = problems.iter().map(|&(n, c)| pass_at_k(n, c, k)).collect();
    mean(&values?)
}

/// Majority vote over the first `k` samples of one problem (NeMo-Skills
/// semantics, see the module docs). Input: `(answer, correct)` per sample
/// in sample order; `None` answers are dropped.
pub fn majority_at_k<K: Eq + Hash>(samples: &[(Option<K>, bool)], k: usize) -> f64 {
    let mut counts: HashMap<(&K, bool), usize> = HashMap::new();
    for (answer, correct) in samples.iter().take(k) {
        if let Some(answer) = answer {
            *counts.entry((answer, *correct)).or_default() += 1;
        }
    }
    let Some(&top) = counts.values().max() else {
        return 0.0;
    };
    let tied: Vec<bool> = counts
        .iter()
        .filter(|&(_, &count)| count == top)
        .map(|(&(_, correct), _)| correct)
        .collect();
    tied.iter().filter(|&&c| c).count() as f64 / tied.len() as f64
}

/// Mean of maj@k over the `n / k` disjoint blocks of `k` consecutive samples
/// (a lower-variance maj@k when `k < n`); `None` when `k == 0` or `k > n`.
pub fn majority_at_k_blocks<K: Eq + Hash>(samples: &[(Option<K>, bool)], k: usize) -> Option<f64> {
    if k == 0 || k > samples.len() {
        return None;
    }
    let blocks: Vec<f64> = samples
        .chunks_exact(k)
        .map(|block| majority_at_k(block, k))
        .collect();
    mean(&blocks)
}

/// Arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (ddof = 1); `None` for fewer than two values.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}

/// Standard error of the mean: `std_dev / √m`; `None` for fewer than two values.
pub fn std_err(values: &[f64]) -> Option<f64> {
    Some(std_dev(values)? / (values.len() as f64).sqrt())
}

/// NeMo-Skills' `std_err_across_runs` over per-problem score lists (one
/// list per problem, its samples in order): with k samples per problem, run
/// `i` is sample `i` of every problem, and the result is the sample standard
/// deviation (ddof 1) of the k run means divided by √k. `None` with no
/// problems, fewer than two samples per problem, or problems of unequal
/// sample counts (NeMo asserts equal counts).
pub fn std_err_across_runs(scores: &[Vec<f64>]) -> Option<f64> {
    let k = scores.first()?.len();
    if k < 2 || scores.iter().any(|s| s.len() != k) {
        return None;
    }
    let runs: Vec<f64> = (0..k)
        .map(|i| scores.iter().map(|s| s[i]).sum::<f64>() / scores.len() as f64)
        .collect();
    Some(std_dev(&runs)? / (k as f64).sqrt())
}

/// Settings of a bootstrap over problems.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples (default 1000).
    pub resamples: usize,
    /// Two-sided confidence level in (0, 1) (default 0.95).
    pub level: f64,
    /// Seed of the ChaCha8 RNG (default 0).
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

/// Percentile bootstrap CI of the mean of per-problem `values`: resample the
/// problems with replacement, take each resample's mean, and return the
/// `(1 − level)/2` and `(1 + level)/2` quantiles (linear interpolation, as
/// numpy's default). Same seed ⇒ same interval. `None` for no values, no
/// resamples, or a level outside (0, 1).
pub fn bootstrap_ci(values: &[f64], config: &BootstrapConfig) -> Option<(f64, f64)> {
    if values.is_empty() || config.resamples == 0 || !(0.0 < config.level && config.level < 1.0) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let m = values.len();
    let mut means: Vec<f64> = (0..config.resamples)
        .map(|_| (0..m).map(|_| values[rng.random_range(0..m)]).sum::<f64>() / m as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - config.level) / 2.0;
    Some((quantile(&means, alpha), quantile(&means, 1.0 - alpha)))
}

/// Quantile `q` of sorted values with linear interpolation.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_golden_values() {
        // n=10, c=3, k=5: 1 − C(7,5)/C(10,5) = 1 − 21/252.
        let v = pass_at_k(10, 3, 5).unwrap();
        assert!((v - (1.0 - 21.0 / 252.0)).abs() < 1e-12, "{v}");
        assert_eq!(pass_at_k(10, 3, 1), Some(0.3));
        assert_eq!(pass_at_k(10, 0, 4), Some(0.0));
        assert_eq!(pass_at_k(4, 2, 3), Some(1.0));
        assert_eq!(pass_at_k(4, 2, 5), None);
        assert_eq!(pass_at_k(4, 5, 1), None);
        assert_eq!(pass_at_k(4, 2, 0), None);
    }

    #[test]
    fn maj_at_k_follows_nemo_ties() {
        let s = |a: Option<&'static str>, c| (a, c);
        let v = [s(Some("73"), true), s(Some("72"), false)];
        assert_eq!(majority_at_k(&v, 2), 0.5);
        let v = [
            s(Some("72"), false),
            s(Some("73"), true),
            s(Some("73"), true),
        ];
        assert_eq!(majority_at_k(&v, 3), 1.0);
        assert_eq!(majority_at_k(&v, 1), 0.0);
        let v = [s(None, false), s(None, false), s(Some("73"), true)];
        assert_eq!(majority_at_k(&v, 2), 0.0);
        assert_eq!(majority_at_k(&v, 3), 1.0);
        assert_eq!(majority_at_k(&v[..0], 3), 0.0);
        assert_eq!(majority_at_k_blocks(&v, 1), Some(1.0 / 3.0));
        assert_eq!(majority_at_k_blocks(&v, 4), None);
    }

    #[test]
    fn std_err_golden() {
        // values 0, 1: std (ddof 1) = √0.5, se = √0.5/√2 = 0.5.
        assert!((std_err(&[0.0, 1.0]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(std_err(&[1.0]), None);
    }

    /// NeMo-Skills' own example of `_add_std_metrics`: 3 problems × 4
    /// attempts, run means 2/3, 2/3, 2/3, 1/3. Its code (`np.std(...,
    /// ddof=1)` over the run means, then `/ sqrt(k)`) gives 1/6 and 1/12
    /// (the docstring's "≈ 0.1925" is an arithmetic slip; the code is what
    /// NeMo reports).
    #[test]
    fn std_err_across_runs_matches_nemo_skills_example() {
        let s = |v: [f64; 4]| v.to_vec();
        let scores = [
            s([1.0, 0.0, 1.0, 0.0]),
            s([1.0, 1.0, 0.0, 0.0]),
            s([0.0, 1.0, 1.0, 1.0]),
        ];
        let third = 1.0 / 3.0;
        let runs = [2.0 * third, 2.0 * third, 2.0 * third, third];
        let sd = std_dev(&runs).unwrap();
        assert!((sd - 1.0 / 6.0).abs() < 1e-12, "{sd}");
        let se = std_err_across_runs(&scores).unwrap();
        assert!((se - 1.0 / 12.0).abs() < 1e-12, "{se}");
        // The two standard errors measure different spreads: one problem
        // always right and one always wrong do not move between runs (0),
        // but differ as much as problems can (½ over problems).
        let split = [vec![1.0, 1.0], vec![0.0, 0.0]];
        assert_eq!(std_err_across_runs(&split), Some(0.0));
        assert!((std_err(&[1.0, 0.0]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(std_err_across_runs(&[vec![1.0], vec![0.0]]), None);
        assert_eq!(std_err_across_runs(&[vec![1.0, 0.0], vec![0.0]]), None);
        assert_eq!(std_err_across_runs(&[]), None);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let values: Vec<f64> = (0..30).map(|i| f64::from(i % 3) / 2.0).collect();
        let cfg = BootstrapConfig::default();
        let a = bootstrap_ci(&values, &cfg).unwrap();
        assert_eq!(Some(a), bootstrap_ci(&values, &cfg));
        let m = mean(&values).unwrap();
        assert!(a.0 < m && m < a.1, "{a:?} around {m}");
        let other = bootstrap_ci(&values, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a, other);
        assert_eq!(bootstrap_ci(&[0.5; 4], &cfg), Some((0.5, 0.5)));
    }
}
