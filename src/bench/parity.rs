//! `hyperscale bench parity`: the same model on two devices, logits compared
//! step by step — the check a GPU run starts with (`scripts/gpu-check.sh`).
//!
//! Both models prefill the same prompt into their own dense KV store, then
//! decode greedily, each fed the *reference's* argmax token so one early
//! disagreement cannot derail the rest of the comparison.

use serde::{Deserialize, Serialize};

use crate::generate::{Decoder, sampling::argmax};
use crate::kv::KvStore;

/// One compared position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParityStep {
    /// 0 = the prompt's last position, then each decode step.
    pub step: usize,
    /// `max |reference − candidate|` over the vocabulary.
    pub max_abs_diff: f64,
    /// Largest reference logit magnitude at this step (the scale).
    pub max_abs_logit: f64,
    pub reference_argmax: u32,
    pub candidate_argmax: u32,
}

/// Every compared position and the worst case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityReport {
    pub steps: Vec<ParityStep>,
    pub max_abs_diff: f64,
    /// Steps whose argmax agrees.
    pub argmax_agree: usize,
}

/// Compare `candidate` with `reference` on `prompt` and `decode_steps`
/// greedy steps.
///
/// # Panics
/// If the two models differ in vocabulary size or `prompt` is empty.
pub fn compare_logits<R: Decoder, C: Decoder>(
    reference: &R,
    candidate: &C,
    prompt: &[u32],
    decode_steps: usize,
) -> ParityReport {
    assert_eq!(
        reference.vocab_size(),
        candidate.vocab_size(),
        "vocabularies differ"
    );
    let mut rs = KvStore::new(reference.kv_shape());
    let mut cs = KvStore::new(candidate.kv_shape());
    let (r_seq, c_seq) = (rs.add_sequence(), cs.add_sequence());
    let mut r = reference.prefill(&mut rs, r_seq, prompt);
    let mut c = candidate.prefill(&mut cs, c_seq, prompt);
    let mut steps = Vec::with_capacity(decode_steps + 1);
    for step in 0..=decode_steps {
        let point = ParityStep {
            step,
            max_abs_diff: r
                .iter()
                .zip(&c)
                .map(|(a, b)| f64::from((a - b).abs()))
                .fold(0.0, f64::max),
            max_abs_logit: r.iter().map(|a| f64::from(a.abs())).fold(0.0, f64::max),
            reference_argmax: argmax(&r),
            candidate_argmax: argmax(&c),
        };
        steps.push(point);
        if step == decode_steps {
            break;
        }
        let next = [point.reference_argmax];
        r = reference.decode(&mut rs, &[r_seq], &next);
        c = candidate.decode(&mut cs, &[c_seq], &next);
    }
    ParityReport {
        max_abs_diff: steps.iter().map(|s| s.max_abs_diff).fold(0.0, f64::max),
        argmax_agree: steps
            .iter()
            .filter(|s| s.reference_argmax == s.candidate_argmax)
            .count(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Transformer;
    use crate::model::synthetic::{RandomWeights, SyntheticSpec};
    use burn::backend::flex::Flex;

    fn tiny(seed: u64) -> Transformer<Flex> {
        let mut spec = SyntheticSpec::parse("synthetic:smollm2-135m")
            .unwrap()
            .unwrap();
        spec.config.num_layers = 2;
        spec.config.vocab_size = 300;
        Transformer::load(
            &spec.config,
            &RandomWeights::new(&spec, seed),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn identical_models_agree_and_different_ones_do_not() {
        let (a, b) = (tiny(1), tiny(1));
        let same = compare_logits(&a, &b, &[5, 9, 2], 3);
        assert_eq!(same.steps.len(), 4);
        assert_eq!(same.max_abs_diff, 0.0);
        assert_eq!(same.argmax_agree, 4);
        let other = compare_logits(&a, &tiny(2), &[5, 9, 2], 3);
        assert!(other.max_abs_diff > 1e-3, "{other:?}");
    }
}
