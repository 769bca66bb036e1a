//! StreamingLLM (Xiao et al. 2024): the first `sink` tokens (attention
//! sinks) plus the most recent ones, within the budget. The victim is the
//! oldest unprotected entry, known before attending, so a decode step
//! overwrites its slot in place and attention reads exactly the budget.

use super::super::Budget;
use super::scorer::{Protect, Rule, Scorer};

pub(crate) fn scorer(sink: usize, budget: Budget) -> Scorer {
    Scorer {
        rule: Rule::Recency,
        protect: Protect::First(sink),
        budget,
    }
}

#[cfg(test)]
mod tests {
    use super::super::slots::lowest;
    use super::*;

    /// Sinks 0–1 stay; among the rest the oldest goes.
    #[test]
    fn evicts_the_oldest_non_sink() {
        let s = scorer(2, Budget::Tokens { tokens: 4 });
        let pos = [0u32, 1, 7, 5, 6];
        let score: Vec<f32> = pos.iter().map(|&p| s.score(0.0, p, 0.9)).collect();
        assert_eq!(lowest(&score, &pos, s.protected(8), 1), vec![3]);
        assert_eq!(s.keep(8), 4);
    }
}
