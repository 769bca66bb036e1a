//! H2O (Zhang et al. 2023, "Heavy-Hitter Oracle"): keep the `recent` most
//! recent tokens plus the heavy hitters, the entries with the largest
//! attention accumulated over every query so far (the prompt's queries
//! included), within the budget. GQA: weights averaged over the query heads
//! of the KV head. Like TOVA, a step attends over budget + 1 entries, adds
//! the weights, then evicts the lightest unprotected entry. A `recent`
//! window above the budget's floor raises the floor (see
//! [`CachePolicy::resolve`](super::super::CachePolicy::resolve)): the cache
//! always holds at least the recent window, as the reference's heavy +
//! recent budget does.

use super::super::Budget;
use super::scorer::{Protect, Rule, Scorer};

pub(crate) fn scorer(recent: usize, budget: Budget) -> Scorer {
    Scorer {
        rule: Rule::Accumulate,
        protect: Protect::Recent(recent),
        budget,
    }
}

#[cfg(test)]
mod tests {
    use super::super::slots::lowest;
    use super::*;

    /// Accumulated mass decides, and the recent window is never evicted
    /// even when it is light.
    #[test]
    fn keeps_heavy_hitters_and_the_recent_window() {
        let s = scorer(2, Budget::Tokens { tokens: 4 });
        let pos = [0u32, 1, 2, 3, 4];
        let old = [2.0f32, 0.1, 1.0, 0.0, 0.0];
        let now = [0.1f32, 0.1, 0.1, 0.0, 0.0];
        let score: Vec<f32> = (0..5).map(|i| s.score(old[i], pos[i], now[i])).collect();
        // Positions 3 and 4 are the recent window; position 1 is lightest.
        assert_eq!(lowest(&score, &pos, s.protected(5), 1), vec![1]);
        assert_eq!(lowest(&score, &pos, s.protected(5), 3), vec![1, 2, 0]);
    }
}
