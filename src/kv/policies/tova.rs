//! TOVA (Oren et al. 2024, "Transformers are Multi-State RNNs"): when the
//! cache is over budget, drop the entry with the lowest attention weight of
//! the current query. GQA: the weight of an entry is averaged over the
//! query heads of its KV head (decisions are per KV head). The new token is
//! a candidate too, so a step attends over budget + 1 entries, then evicts.
//! After prefill the last prompt query's weights choose the survivors.

use super::super::Budget;
use super::scorer::{Protect, Rule, Scorer};

pub(crate) fn scorer(budget: Budget) -> Scorer {
    Scorer {
        rule: Rule::Replace,
        protect: Protect::None,
        budget,
    }
}

#[cfg(test)]
mod tests {
    use super::super::slots::lowest;
    use super::*;

    /// Only the current weights count: an entry that was heavily attended
    /// before but not now goes first.
    #[test]
    fn evicts_the_lowest_current_weight() {
        let s = scorer(Budget::Tokens { tokens: 3 });
        let pos = [0u32, 1, 2, 3];
        let old = [0.9f32, 0.05, 0.05, 0.0];
        let now = [0.01f32, 0.5, 0.3, 0.19];
        let score: Vec<f32> = (0..4).map(|i| s.score(old[i], pos[i], now[i])).collect();
        assert_eq!(lowest(&score, &pos, s.protected(4), 1), vec![0]);
    }
}
