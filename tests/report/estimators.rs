//! Property tests and golden values for the estimators (docs/grading.md §5).

use hyperscale::report::{
    BootstrapConfig, bootstrap_ci, majority_at_k, mean, mean_pass_at_k, pass_at_k, std_err,
};
use proptest::prelude::*;

/// C(n, k) exactly, for the closed form (n ≤ 100 fits in u128).
fn binom(n: u64, k: u64) -> u128 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    (0..k).fold(1u128, |acc, i| acc * u128::from(n - i) / u128::from(i + 1))
}

#[test]
fn pass_at_k_golden_values_from_math_comb() {
    // Python: 1 - comb(n - c, k) / comb(n, k).
    let golden = [
        (64, 5, 8, 0.4990084611316764),
        (16, 3, 4, 0.6071428571428572),
        (200, 17, 100, 0.99999636769084),
        (64, 1, 64, 1.0),
        (8, 7, 2, 1.0),
    ];
    for (n, c, k, want) in golden {
        let got = pass_at_k(n, c, k).expect("valid arguments");
        assert!(
            (got - want).abs() < 1e-12,
            "pass@{k}(n={n}, c={c}) = {got}, want {want}"
        );
    }
}

#[test]
fn mean_pass_at_k_needs_k_samples_everywhere() {
    assert_eq!(mean_pass_at_k(&[(4, 1), (2, 2)], 4), None);
    assert_eq!(mean_pass_at_k(&[(4, 1), (2, 2)], 1), Some(0.625));
    assert_eq!(mean_pass_at_k(&[], 1), None);
}

proptest! {
    #[test]
    fn pass_at_k_equals_the_closed_form((n, c, k) in (1u64..=60).prop_flat_map(|n| (Just(n), 0..=n, 1..=n))) {
        let got = pass_at_k(n, c, k).unwrap();
        let closed = 1.0 - binom(n - c, k) as f64 / binom(n, k) as f64;
        prop_assert!((got - closed).abs() < 1e-9, "got {got}, closed form {closed}");
    }

    #[test]
    fn pass_at_k_is_monotone_in_k_and_c((n, c) in (1u64..=200).prop_flat_map(|n| (Just(n), 0..=n))) {
        let mut prev = 0.0;
        for k in 1..=n {
            let v = pass_at_k(n, c, k).unwrap();
            prop_assert!((0.0..=1.0).contains(&v));
            prop_assert!(v + 1e-12 >= prev, "pass@{k} = {v} < pass@{} = {prev}", k - 1);
            prev = v;
        }
        if c < n {
            for k in 1..=n {
                prop_assert!(pass_at_k(n, c + 1, k).unwrap() + 1e-12 >= pass_at_k(n, c, k).unwrap());
            }
        }
        prop_assert_eq!(pass_at_k(n, c, 1).unwrap(), c as f64 / n as f64);
        prop_assert_eq!(pass_at_k(n, 0, n).unwrap(), 0.0);
        prop_assert_eq!(pass_at_k(n, n, 1).unwrap(), 1.0);
    }

    #[test]
    fn maj_at_k_bounds(samples in prop::collection::vec((prop::option::of(0u8..4), any::<bool>()), 0..20), k in 1usize..24) {
        // A key's correctness is a function of the key, as in real grading.
        let samples: Vec<(Option<u8>, bool)> =
            samples.iter().map(|(a, _)| (*a, a.is_some_and(|a| a == 0))).collect();
        let v = majority_at_k(&samples, k);
        prop_assert!((0.0..=1.0).contains(&v));
        let first: Vec<&(Option<u8>, bool)> = samples.iter().take(k).collect();
        if !first.iter().any(|s| s.1) {
            prop_assert_eq!(v, 0.0);
        }
        let answered: Vec<u8> = first.iter().filter_map(|s| s.0).collect();
        if !answered.is_empty() && answered.iter().all(|&a| a == 0) {
            prop_assert_eq!(v, 1.0);
        }
        // A strict plurality of the right answer wins outright.
        let count = |x: u8| answered.iter().filter(|&&a| a == x).count();
        if (1..4).all(|x| count(0) > count(x)) {
            prop_assert_eq!(v, 1.0);
        }
        // Ties average: the score times the number of tied keys is whole.
        let top = (0..4).map(count).max().unwrap_or(0);
        let tied = (0..4).filter(|&x| count(x) == top && top > 0).count();
        if tied > 0 {
            let scaled = v * tied as f64;
            prop_assert!((scaled - scaled.round()).abs() < 1e-12);
        }
    }

    #[test]
    fn bootstrap_ci_is_seeded_and_within_the_data(values in prop::collection::vec(0.0f64..=1.0, 1..40), seed in any::<u64>()) {
        let cfg = BootstrapConfig { resamples: 200, level: 0.9, seed };
        let (lo, hi) = bootstrap_ci(&values, &cfg).unwrap();
        prop_assert_eq!(Some((lo, hi)), bootstrap_ci(&values, &cfg));
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(min - 1e-12 <= lo && lo <= hi && hi <= max + 1e-12);
    }

    #[test]
    fn std_err_scales_and_is_nonnegative(values in prop::collection::vec(-10.0f64..10.0, 2..30), a in -5.0f64..5.0) {
        let se = std_err(&values).unwrap();
        prop_assert!(se >= 0.0);
        let scaled: Vec<f64> = values.iter().map(|v| a * v).collect();
        prop_assert!((std_err(&scaled).unwrap() - a.abs() * se).abs() < 1e-9);
        let m = mean(&values).unwrap();
        let shifted: Vec<f64> = values.iter().map(|v| v - m).collect();
        prop_assert!((std_err(&shifted).unwrap() - se).abs() < 1e-9);
    }
}
