//! Cache policies as configured: which entries the store keeps. One variant
//! per method; each variant's eviction rule lives in its own file.
//!
//! Training-free methods are parameterised by a [`Budget`]: a target
//! compression ratio CR keeps, after `t` positions, `max(min_tokens,
//! ceil(t / CR))` entries per (layer, KV head) (protected sinks and recent
//! windows counted inside the budget), so they compare with DMS at equal CR;
//! or an absolute token budget.

use serde::{Deserialize, Serialize};

/// How many entries a training-free policy may keep per (layer, KV head).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Budget {
    /// Keep `max(min_tokens, ceil(positions / cr))`.
    Ratio { cr: f64, min_tokens: usize },
    /// Keep at most `tokens`.
    Tokens { tokens: usize },
}

impl Budget {
    /// Entries allowed after `positions` positions.
    pub fn allowed(&self, positions: usize) -> usize {
        match *self {
            Budget::Ratio { cr, min_tokens } => {
                let kept = (positions as f64 / cr).ceil() as usize;
                kept.max(min_tokens).min(positions)
            }
            Budget::Tokens { tokens } => tokens.min(positions),
        }
    }
}

/// A KV cache policy with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum CachePolicy {
    /// Keep everything (the baseline).
    Dense {},
    /// Dynamic Memory Sparsification with the checkpoint's learned decisions.
    /// `None` fields default to the checkpoint's `config.json`.
    Dms {
        window: Option<usize>,
        /// Decisions emitted at t+1 mark token t (NVIDIA) vs mark t itself
        /// (FastDMS).
        shifted: Option<bool>,
    },
    /// StreamingLLM: `sink` first tokens + the most recent ones.
    Window { sink: usize, budget: Budget },
    /// TOVA: evict the lowest attention weight of the current query.
    Tova { budget: Budget },
    /// H2O: heavy hitters by accumulated attention + a recent window.
    H2o { recent: usize, budget: Budget },
    /// Quest: read only the top pages by per-channel key bounds; memory is not
    /// reduced, reads are.
    Quest { page_size: usize, budget: Budget },
}

impl CachePolicy {
    /// Short method name used in records and reports.
    pub fn method(&self) -> &'static str {
        match self {
            CachePolicy::Dense {} => "dense",
            CachePolicy::Dms { .. } => "dms",
            CachePolicy::Window { .. } => "window",
            CachePolicy::Tova { .. } => "tova",
            CachePolicy::H2o { .. } => "h2o",
            CachePolicy::Quest { .. } => "quest",
        }
    }

    /// The budget of a training-free method (`None` for dense and DMS).
    pub fn budget(&self) -> Option<Budget> {
        match self {
            CachePolicy::Dense {} | CachePolicy::Dms { .. } => None,
            CachePolicy::Window { budget, .. }
            | CachePolicy::Tova { budget }
            | CachePolicy::H2o { budget, .. }
            | CachePolicy::Quest { budget, .. } => Some(*budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_budget_is_ceil_of_positions_over_cr() {
        let b = Budget::Ratio {
            cr: 8.0,
            min_tokens: 4,
        };
        assert_eq!(b.allowed(0), 0);
        assert_eq!(b.allowed(3), 3);
        assert_eq!(b.allowed(20), 4);
        assert_eq!(b.allowed(100), 13);
        let one = Budget::Ratio {
            cr: 1.0,
            min_tokens: 0,
        };
        assert_eq!(one.allowed(57), 57);
    }

    #[test]
    fn policies_round_trip_through_toml() {
        let p = CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 4.0,
                min_tokens: 16,
            },
        };
        let s = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<CachePolicy>(&s).unwrap(), p);
        assert!(toml::from_str::<CachePolicy>("policy = \"dense\"\nextra = 1").is_err());
    }
}
