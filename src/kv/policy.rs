//! Cache policies as configured: which entries the store keeps. One variant
//! per method; each variant's eviction rule lives in its own file.
//!
//! Training-free methods are parameterised by a [`Budget`]: a target
//! compression ratio CR keeps, after `t` positions, `max(min_tokens,
//! ceil(t / CR))` entries per (layer, KV head) (protected sinks and recent
//! windows counted inside the budget), so they compare with DMS at equal CR;
//! or an absolute token budget. A protected window (the window policy's
//! sinks, H2O's recent tokens) larger than the budget's floor raises the
//! floor to its size: the cache then always holds at least the protected
//! window, as the H2O reference (heavy hitters *plus* the recent window)
//! does.

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
    Tova {
        budget: Budget,
        /// Whose weights decide: the layer's (the reference) or each KV
        /// head's. Default [`TovaGranularity::Layer`].
        #[serde(default)]
        granularity: TovaGranularity,
    },
    /// H2O: heavy hitters by accumulated attention + a recent window.
    H2o { recent: usize, budget: Budget },
    /// Quest: read only the top pages by per-channel key bounds; memory is not
    /// reduced, reads are.
    Quest {
        page_size: usize,
        budget: Budget,
        /// Who selects pages: each query head (the reference) or each KV
        /// head for its query heads. Default [`QuestGranularity::QueryHead`].
        #[serde(default)]
        granularity: QuestGranularity,
        /// The first layers attend densely (no selection, no page bounds).
        /// Default [`QUEST_DENSE_LAYERS`] (the reference's 2).
        #[serde(default = "quest_dense_layers")]
        dense_layers: usize,
    },
}

/// Whose attention weights TOVA scores entries by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TovaGranularity {
    /// The reference (TOVA's `tova_cache.py`, kvpress's `TOVAPress`): the
    /// current query's weights averaged over **all** query heads of the
    /// layer; one set of entries is evicted for the whole layer, so every
    /// KV head of a layer keeps the same positions.
    #[default]
    Layer,
    /// Each KV head scores by the weights averaged over its own query heads
    /// and evicts on its own.
    #[serde(alias = "head")]
    KvHead,
}

/// Who chooses the pages Quest reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestGranularity {
    /// The reference (mit-han-lab/Quest): every query head ranks the pages
    /// of its KV head by its own bound and reads its own top pages.
    #[default]
    QueryHead,
    /// One page set per KV head, ranked by the largest bound over its query
    /// heads.
    KvHead,
}

/// Layers Quest leaves dense by default: the reference skips selection in
/// layers 0 and 1.
pub const QUEST_DENSE_LAYERS: usize = 2;

fn quest_dense_layers() -> usize {
    QUEST_DENSE_LAYERS
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
            | CachePolicy::Tova { budget, .. }
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
    Window {
        sink: usize,
        budget: Budget,
    },
    Tova {
        budget: Budget,
        granularity: TovaGranularity,
    },
    H2o {
        recent: usize,
        budget: Budget,
    },
    Quest {
        page_size: usize,
        budget: Budget,
        granularity: QuestGranularity,
        dense_layers: usize,
    },
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
            | ResolvedPolicy::Tova { budget, .. }
            | ResolvedPolicy::H2o { budget, .. }
            | ResolvedPolicy::Quest { budget, .. } => Some(*budget),
        }
    }

    /// Needs the model's DMS decisions on every prefill and decode call.
    pub fn needs_decisions(&self) -> bool {
        matches!(self, ResolvedPolicy::Dms(_))
    }

    /// Whether rows of `layer` keep Quest page bounds (Quest, past its
    /// dense layers): each page of such a row holds a min and a max key,
    /// `2 × head_dim` floats, the size of one entry's K and V.
    pub fn page_bounds(&self, layer: usize) -> bool {
        matches!(*self, ResolvedPolicy::Quest { dense_layers, .. } if layer >= dense_layers)
    }
}

impl CachePolicy {
    /// Resolve the policy against the model's DMS parameters (`None` for a
    /// model without them): `Dms` fields left `None` take the checkpoint's
    /// values; budgets and windows are checked.
    ///
    /// # Errors
    /// A protected window (sinks, H2O's recent tokens) larger than the
    /// budget's floor (`min_tokens`, or `tokens`) raises the floor to its
    /// size in the resolved budget.
    ///
    /// # Errors
    /// [`KvError::Policy`] when DMS is asked of a model without DMS
    /// parameters, a window is 0, a ratio is below 1 or not finite, a token
    /// budget is 0, or Quest's page size is 0.
    pub fn resolve(&self, dms: Option<DmsParams>) -> Result<ResolvedPolicy, KvError> {
        let bad = |m: String| Err(KvError::Policy(m));
        let check = |b: &Budget, protected: usize| -> Result<Budget, KvError> {
            match *b {
                Budget::Ratio { cr, min_tokens } => {
                    if !(cr.is_finite() && cr >= 1.0) {
                        return Err(KvError::Policy(format!(
                            "compression ratio {cr} is not a finite number ≥ 1"
                        )));
                    }
                    Ok(Budget::Ratio {
                        cr,
                        min_tokens: min_tokens.max(protected),
                    })
                }
                Budget::Tokens { tokens } => {
                    if tokens == 0 {
                        return Err(KvError::Policy("token budget of 0".into()));
                    }
                    Ok(Budget::Tokens {
                        tokens: tokens.max(protected),
                    })
                }
            }
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
            CachePolicy::Window { sink, budget } => ResolvedPolicy::Window {
                sink: *sink,
                budget: check(budget, *sink)?,
            },
            CachePolicy::Tova {
                budget,
                granularity,
            } => ResolvedPolicy::Tova {
                budget: check(budget, 0)?,
                granularity: *granularity,
            },
            CachePolicy::H2o { recent, budget } => ResolvedPolicy::H2o {
                recent: *recent,
                budget: check(budget, *recent)?,
            },
            CachePolicy::Quest {
                page_size,
                budget,
                granularity,
                dense_layers,
            } => {
                let budget = check(budget, 0)?;
                if *page_size == 0 {
                    return bad("quest page size of 0".into());
                }
                ResolvedPolicy::Quest {
                    page_size: *page_size,
                    budget,
                    granularity: *granularity,
                    dense_layers: *dense_layers,
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
            granularity: TovaGranularity::KvHead,
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

    /// Regression (H2O silently dropped from every paper config): `recent =
    /// 128` above the default floor of 16 was refused, so the sweep skipped
    /// every H2O group. A protected window now raises the floor instead.
    #[test]
    fn h2o_recent_window_above_the_floor_raises_it() {
        let b = Budget::Ratio {
            cr: 8.0,
            min_tokens: 16,
        };
        let h2o = CachePolicy::H2o {
            recent: 128,
            budget: b,
        };
        let want = Budget::Ratio {
            cr: 8.0,
            min_tokens: 128,
        };
        assert_eq!(
            h2o.resolve(None).unwrap(),
            ResolvedPolicy::H2o {
                recent: 128,
                budget: want
            }
        );
        assert_eq!(want.allowed(4096), 512);
        assert_eq!(want.allowed(500), 128);
        let sinks = CachePolicy::Window {
            sink: 5,
            budget: Budget::Tokens { tokens: 4 },
        };
        assert_eq!(
            sinks.resolve(None).unwrap().budget(),
            Some(Budget::Tokens { tokens: 5 })
        );
        // A window within the floor leaves it alone.
        let small = CachePolicy::H2o {
            recent: 8,
            budget: b,
        };
        assert_eq!(small.resolve(None).unwrap().budget(), Some(b));
        let low = Budget::Ratio {
            cr: 0.5,
            min_tokens: 4,
        };
        let tova = CachePolicy::Tova {
            budget: low,
            granularity: TovaGranularity::Layer,
        };
        assert!(tova.resolve(None).is_err());
    }

    #[test]
    fn reference_granularities_are_the_defaults() {
        let tova: CachePolicy =
            toml::from_str("policy = \"tova\"\n[budget]\nkind = \"tokens\"\ntokens = 4").unwrap();
        assert!(matches!(
            tova,
            CachePolicy::Tova {
                granularity: TovaGranularity::Layer,
                ..
            }
        ));
        let quest: CachePolicy = toml::from_str(
            "policy = \"quest\"\npage_size = 4\n[budget]\nkind = \"tokens\"\ntokens = 4",
        )
        .unwrap();
        let CachePolicy::Quest {
            granularity,
            dense_layers,
            ..
        } = quest
        else {
            panic!("{quest:?}")
        };
        assert_eq!(
            (granularity, dense_layers),
            (QuestGranularity::QueryHead, 2)
        );
        let head: TovaGranularity = serde_json::from_str("\"head\"").unwrap();
        assert_eq!(head, TovaGranularity::KvHead);
    }
}
