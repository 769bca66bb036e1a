//! Held-out evaluation of a student with its inference decisions
//! (`logit > 0`, no noise): KL to the dense teacher and the compression it
//! achieves, counted two ways.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::forward::{Mode, forward};
use super::loss::kl_student_teacher;
use super::{DecisionParams, DmsTrainConfig, FrozenModel};

/// Averages over held-out sequences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub sequences: usize,
    pub tokens: usize,
    /// Mean KL(student ‖ teacher) per counted position (nats).
    pub kl: f64,
    /// `1 / (1 − fraction of decisions that evict)`, the trained quantity.
    pub decision_cr: f64,
    /// Entries the cache would hold at the end of each sequence (marked
    /// keys older than the window gone) vs dense: positions × heads ×
    /// layers / kept.
    pub cache_cr: f64,
}

/// Entries kept at the end of a `t`-token sequence by one KV head, given
/// its per-token evict flags (shifted: token k + 1 marks token k).
pub fn kept_at_end(evict: &[bool], window: usize) -> usize {
    let t = evict.len();
    (0..t)
        .filter(|&k| !(k + 1 < t && evict[k + 1] && t - 1 - k > window))
        .count()
}

/// Evaluates on `seqs`, positions holding an `excluded` token left out of
/// the KL.
pub fn evaluate<B: Backend>(
    base: &FrozenModel<B>,
    params: &DecisionParams<B>,
    dms: &DmsTrainConfig,
    seqs: &[Vec<u32>],
    excluded: &[u32],
) -> EvalReport {
    let (mut kl_sum, mut kl_n) = (0.0, 0usize);
    let (mut evicted, mut decisions) = (0usize, 0usize);
    let (mut entries, mut kept) = (0usize, 0usize);
    let mut tokens = 0;
    for s in seqs {
        let teacher = forward(base, params, dms, s, &Mode::Teacher);
        let student = forward(base, params, dms, s, &Mode::Hard);
        let mask = super::data::kl_mask(s, excluded);
        let n = mask.iter().filter(|&&m| m).count();
        let kl = kl_student_teacher(student.logits, teacher.logits, &mask);
        kl_sum += f64::from(kl.into_scalar().elem::<f32>()) * n as f64;
        kl_n += n;
        tokens += s.len();
        for z in student.z {
            let [t, kv] = z.dims();
            let v = z
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap_or_default();
            for h in 0..kv {
                let flags: Vec<bool> = (0..t).map(|i| v[i * kv + h] > 0.0).collect();
                evicted += flags.iter().filter(|&&f| f).count();
                decisions += t;
                entries += t;
                kept += kept_at_end(&flags, dms.window);
            }
        }
    }
    EvalReport {
        sequences: seqs.len(),
        tokens,
        kl: kl_sum / kl_n.max(1) as f64,
        decision_cr: 1.0 / (1.0 - evicted as f64 / decisions.max(1) as f64).max(1e-9),
        cache_cr: entries as f64 / kept.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_counts_marked_keys_out_of_the_window() {
        // t = 6, window 2: token 1 marks key 0 (distance 5 > 2: gone);
        // token 4 marks key 3 (distance 2: still visible); token 0's flag
        // marks nothing.
        let evict = [true, true, false, false, true, false];
        assert_eq!(kept_at_end(&evict, 2), 5);
        assert_eq!(kept_at_end(&evict, 10), 6);
    }
}
