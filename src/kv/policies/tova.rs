//! TOVA (Oren et al. 2024, "Transformers are Multi-State RNNs"): when the
//! cache is over budget, drop the entry with the lowest attention weight of
//! the current query. The new token is a candidate too, so a step attends
//! over budget + 1 entries, then evicts. After prefill the last prompt
//! query's weights choose the survivors.
//!
//! Whose weights decide ([`TovaGranularity`]):
//! - `Layer` (default, the reference: TOVA's `tova_cache.py` averages
//!   `attn_weights[:, :, -1, :]` over dim 1, every query head, and gathers
//!   one index set for all KV heads; kvpress's `TOVAPress` likewise): an
//!   entry's weight is the mean over **all** query heads of the layer, and
//!   every KV head of the layer evicts the same positions. Rows of a layer
//!   therefore hold the same positions in the same slots, which the
//!   mechanism checks.
//! - `KvHead`: an entry's weight is the mean over the query heads of its KV
//!   head; each KV head evicts on its own.

use std::ops::Range;

use super::super::{Budget, KvError, ResolvedPolicy, TovaGranularity};
use super::book::RowState;
use super::scorer::{Protect, Rule, Scorer};

pub(crate) fn scorer(budget: Budget) -> Scorer {
    Scorer {
        rule: Rule::Replace,
        protect: Protect::None,
        budget,
    }
}

/// Whether `policy` is TOVA scoring by the whole layer's weights.
pub(crate) fn layer_wide(policy: &ResolvedPolicy) -> bool {
    matches!(
        policy,
        ResolvedPolicy::Tova {
            granularity: TovaGranularity::Layer,
            ..
        }
    )
}

/// The layer's weight of each slot: the mean over the layer's rows of
/// their weights (each already the mean over the row's G query heads, so
/// this is the mean over all query heads).
///
/// # Shapes
/// `rows`: `[kv_heads]`, scored rows holding the same positions in the
/// same slots; `weights[spans[h]]`: row `h`'s weights in slot order.
///
/// # Errors
/// [`KvError::Invariant`] when the rows do not hold the same positions.
pub(crate) fn layer_mean(
    rows: &[RowState],
    weights: &[f32],
    spans: &[Range<usize>],
) -> Result<Vec<f32>, KvError> {
    let pos: Vec<&[u32]> = rows
        .iter()
        .map(|r| match r {
            RowState::Scored(s) => Ok(s.pos.as_slice()),
            _ => Err(KvError::Invariant("tova rows are scored".into())),
        })
        .collect::<Result<_, _>>()?;
    let w: Vec<&[f32]> = spans.iter().map(|r| &weights[r.clone()]).collect();
    mean_over_rows(&pos, &w)
}

/// [`layer_mean`] over rows given as positions and weights.
///
/// # Shapes
/// `pos`, `weights`: `[kv_heads][n]`.
pub(crate) fn mean_over_rows(pos: &[&[u32]], weights: &[&[f32]]) -> Result<Vec<f32>, KvError> {
    let Some((&first, rest)) = pos.split_first() else {
        return Ok(Vec::new());
    };
    if rest.iter().any(|p| *p != first) || weights.iter().any(|w| w.len() != first.len()) {
        return Err(KvError::Invariant(
            "layer-wide tova: the KV heads of a layer hold different positions".into(),
        ));
    }
    let n = weights.len() as f32;
    Ok((0..first.len())
        .map(|i| weights.iter().map(|w| w[i]).sum::<f32>() / n)
        .collect())
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

    /// The layer's mean decides for every head: head 1 alone would drop
    /// position 2, the layer drops position 0.
    #[test]
    fn the_layer_mean_decides_for_every_head() {
        let pos = [0u32, 1, 2];
        let h0 = [0.0f32, 0.6, 0.4];
        let h1 = [0.3f32, 0.6, 0.1];
        let mean = mean_over_rows(&[&pos, &pos], &[&h0, &h1]).unwrap();
        assert_eq!(mean, vec![0.15, 0.6, 0.25]);
        assert_eq!(lowest(&mean, &pos, |_| false, 1), vec![0]);
        assert_eq!(lowest(&h1, &pos, |_| false, 1), vec![2]);
        let other = [0u32, 2, 1];
        assert!(mean_over_rows(&[&pos, &other], &[&h0, &h1]).is_err());
    }
}
