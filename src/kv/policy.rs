//! Cache policies as configured: which entries the store keeps. One variant
//! per method; each variant's eviction rule lives in its own file.
//!
//! Training-free methods are parameterised by a [`Budget`]: a target
//! compression ratio CR keeps, after `t` positions, `max(min_tokens,
//! ceil(t / CR))` entries per (layer, KV head) (protected sinks and recent
//! windows counted inside the budget), so they compare with DMS at equal CR;
//! or an absolute token budget.

use serde::{Deserialize, Serialize};

use super::KvError;

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

/// DMS parameters of a checkpoint (its `config.json`), as run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmsParams {
    /// `dms_window_size` w: a marked token stays visible to w more queries;
    /// the ring holds w + 1 entries.
    pub window: usize,
    /// The decision emitted at token t + 1 marks token t (NVIDIA's
    /// convention) instead of token t itself (FastDMS).
    pub shifted: bool,
}

/// A cache policy with every parameter resolved and validated: what the
/// store runs. Built by [`CachePolicy::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum ResolvedPolicy {
    Dense,
    Dms(DmsParams),
    Window { sink: usize, budget: Budget },
    Tova { budget: Budget },
    H2o { recent: usize, budget: Budget },
    Quest { page_size: usize, budget: Budget },
}

impl ResolvedPolicy {
    /// Short method name used in records and reports.
    pub fn method(&self) -> &'static str {
        match self {
            ResolvedPolicy::Dense => "dense",
            ResolvedPolicy::Dms(_) => "dms",
            ResolvedPolicy::Window { .. } => "window",
            ResolvedPolicy::Tova { .. } => "tova",
            ResolvedPolicy::H2o { .. } => "h2o",
            ResolvedPolicy::Quest { .. } => "quest",
        }
    }

    /// Keeps every entry and attends with the plain causal mask: the model
    /// may use its own prefill attention and the store's plain decode.
    pub fn is_dense(&self) -> bool {
        matches!(self, ResolvedPolicy::Dense)
    }

    /// The budget of a training-free method (`None` for dense and DMS).
    pub fn budget(&self) -> Option<Budget> {
        match self {
            ResolvedPolicy::Dense | ResolvedPolicy::Dms(_) => None,
            ResolvedPolicy::Window { budget, .. }
            | ResolvedPolicy::Tova { budget }
            | ResolvedPolicy::H2o { budget, .. }
            | ResolvedPolicy::Quest { budget, .. } => Some(*budget),
        }
    }

    /// Needs the model's DMS decisions on every prefill and decode call.
    pub fn needs_decisions(&self) -> bool {
        matches!(self, ResolvedPolicy::Dms(_))
    }
}

impl CachePolicy {
    /// Resolve the policy against the model's DMS parameters (`None` for a
    /// model without them): `Dms` fields left `None` take the checkpoint's
    /// values; budgets and windows are checked.
    ///
    /// # Errors
    /// [`KvError::Policy`] when DMS is asked of a model without DMS
    /// parameters, a window is 0, a ratio is below 1 or not finite, a token
    /// budget is 0, or a protected window (sinks, H2O's recent tokens) is
    /// larger than the budget's floor (`min_tokens`, or `tokens`).
    pub fn resolve(&self, dms: Option<DmsParams>) -> Result<ResolvedPolicy, KvError> {
        let bad = |m: String| Err(KvError::Policy(m));
        let check = |b: &Budget, protected: usize, what: &str| -> Result<(), KvError> {
            let floor = match *b {
                Budget::Ratio { cr, min_tokens } => {
                    if !(cr.is_finite() && cr >= 1.0) {
                        return Err(KvError::Policy(format!(
                            "compression ratio {cr} is not a finite number ≥ 1"
                        )));
                    }
                    min_tokens
                }
                Budget::Tokens { tokens } => {
                    if tokens == 0 {
                        return Err(KvError::Policy("token budget of 0".into()));
                    }
                    tokens
                }
            };
            if protected > floor {
                return Err(KvError::Policy(format!(
                    "{what} of {protected} tokens exceeds the budget's floor of {floor} \
                     (raise min_tokens or tokens)"
                )));
            }
            Ok(())
        };
        Ok(match self {
            CachePolicy::Dense {} => ResolvedPolicy::Dense,
            CachePolicy::Dms { window, shifted } => {
                let Some(model) = dms else {
                    return bad(
                        "policy dms needs a model with DMS parameters (config.json dms_* \
                         fields); this model has none"
                            .into(),
                    );
                };
                let window = window.unwrap_or(model.window);
                if window == 0 {
                    return bad("dms window of 0 (the ring needs window + 1 ≥ 2)".into());
                }
                ResolvedPolicy::Dms(DmsParams {
                    window,
                    shifted: shifted.unwrap_or(model.shifted),
                })
            }
            CachePolicy::Window { sink, budget } => {
                check(budget, *sink, "window sink")?;
                ResolvedPolicy::Window {
                    sink: *sink,
                    budget: *budget,
                }
            }
            CachePolicy::Tova { budget } => {
                check(budget, 0, "")?;
                ResolvedPolicy::Tova { budget: *budget }
            }
            CachePolicy::H2o { recent, budget } => {
                check(budget, *recent, "h2o recent window")?;
                ResolvedPolicy::H2o {
                    recent: *recent,
                    budget: *budget,
                }
            }
            CachePolicy::Quest { page_size, budget } => {
                check(budget, 0, "")?;
                if *page_size == 0 {
                    return bad("quest page size of 0".into());
                }
                ResolvedPolicy::Quest {
                    page_size: *page_size,
                    budget: *budget,
                }
            }
        })
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

    #[test]
    fn dms_resolves_against_the_checkpoint() {
        let model = DmsParams {
            window: 512,
            shifted: true,
        };
        let asked = CachePolicy::Dms {
            window: Some(16),
            shifted: None,
        };
        assert_eq!(
            asked.resolve(Some(model)).unwrap(),
            ResolvedPolicy::Dms(DmsParams {
                window: 16,
                shifted: true
            })
        );
        let err = asked.resolve(None).unwrap_err().to_string();
        assert!(err.contains("no"), "{err}");
    }

    #[test]
    fn protected_windows_must_fit_the_budget_floor() {
        let b = Budget::Ratio {
            cr: 8.0,
            min_tokens: 4,
        };
        assert!(
            CachePolicy::Window { sink: 4, budget: b }
                .resolve(None)
                .is_ok()
        );
        assert!(
            CachePolicy::Window { sink: 5, budget: b }
                .resolve(None)
                .is_err()
        );
        let low = Budget::Ratio {
            cr: 0.5,
            min_tokens: 4,
        };
        assert!(CachePolicy::Tova { budget: low }.resolve(None).is_err());
    }
}
