//! What distinguishes the scored policies (window, TOVA, H2O): how an
//! entry's score is updated from the attention weights, which entries are
//! protected, and which weights the prefill must return. The mechanism that
//! acts on scores is shared (`slots.rs`, `prefill.rs`, `decode.rs`).

use super::super::Budget;
use super::super::prefill_kernel::Weights;

/// How an entry's score follows the attention it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Score = position: the oldest unprotected entry goes first; no
    /// weights needed, so the victim is known before attending.
    Recency,
    /// Score = the current query's weight (replaces the old score).
    Replace,
    /// Score += the current query's weight (accumulated attention).
    Accumulate,
}

/// Entries a scored policy never evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protect {
    None,
    /// Positions below `n` (attention sinks).
    First(usize),
    /// The `n` most recent positions.
    Recent(usize),
}

/// A scored policy, fully described.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scorer {
    pub(crate) rule: Rule,
    pub(crate) protect: Protect,
    pub(crate) budget: Budget,
}

impl Scorer {
    /// The weights the prefill attention must return.
    pub(crate) fn weights(&self) -> Weights {
        match self.rule {
            Rule::Recency => Weights::None,
            Rule::Replace => Weights::LastQuery,
            Rule::Accumulate => Weights::ColumnSums,
        }
    }

    /// The new score of an entry at `pos` with score `old` that got weight
    /// `w` (0 for a new entry's `old`).
    pub(crate) fn score(&self, old: f32, pos: u32, w: f32) -> f32 {
        match self.rule {
            Rule::Recency => pos as f32,
            Rule::Replace => w,
            Rule::Accumulate => old + w,
        }
    }

    /// Whether an entry at `pos` is protected once `seen` positions were
    /// seen.
    pub(crate) fn protected(&self, seen: u32) -> impl Fn(u32) -> bool {
        let protect = self.protect;
        move |pos| match protect {
            Protect::None => false,
            Protect::First(n) => (pos as usize) < n,
            Protect::Recent(n) => pos as u64 + n as u64 >= u64::from(seen),
        }
    }

    /// Entries the row may keep once `seen` positions were seen.
    pub(crate) fn keep(&self, seen: u32) -> usize {
        self.budget.allowed(seen as usize)
    }
}
