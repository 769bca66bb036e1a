//! One graded sample as stored: a flat row (no nesting, polars-friendly) that
//! carries everything the report needs, so a results directory is readable
//! without the config that produced it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generate::FinishReason;

/// Where a record's budgets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    /// Counted by the project's KV store while decoding.
    Measured,
    /// Derived from token counts with a closed form (remote engines).
    Computed,
}

/// The identity of a record: at most one record per key in a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SampleKey {
    pub trial: String,
    pub problem_id: String,
    pub repeat: u32,
    pub sample: u32,
}

impl SampleKey {
    /// `trial:problem_id:repeat:sample`, the `sample_id` column.
    pub fn sample_id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.trial, self.problem_id, self.repeat, self.sample
        )
    }
}

/// One graded sample of one trial.
///
/// Width W is `width`, length L is `max_tokens`. Counts of KV entries are
/// (token × layer × KV head) pairs as counted by [`crate::kv::KvStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Run name (the directory under `results/`).
    pub run: String,
    /// Trial id: stable hash of the trial's resolved parameters.
    pub trial: String,
    /// Width group id: the trial's hash without W (trials that differ only in
    /// W share a group; nested widths share samples within it).
    pub group: String,
    /// `trial:problem_id:repeat:sample`; unique in a run.
    pub sample_id: String,
    pub task: String,
    pub task_version: String,
    pub problem_id: String,
    /// Independent repeat of the W-batch (`grid.repeats`); the prompt may
    /// depend on it (GPQA choice order).
    pub repeat: u32,
    /// Sample index within the repeat, `0..width`.
    pub sample: u32,
    /// Model identity (name and file hash) as given by the model catalog.
    pub model: String,
    /// Method name as configured (`grid.methods[].name`, default the policy).
    pub method: String,
    /// Cache policy kind: dense, dms, window, tova, h2o, quest.
    pub policy: String,
    /// The policy's parameters as a JSON object (the budget included).
    pub policy_params: String,
    /// Target compression ratio (`None` for dense).
    pub cr_target: Option<f64>,
    /// Achieved CR: decode reads dense attention would have made over the
    /// decode reads made (`None` when nothing was decoded).
    pub cr_achieved: Option<f64>,
    /// W: samples per problem in this trial.
    pub width: u32,
    /// L: the most new tokens per sample.
    pub max_tokens: u32,
    pub seed: u64,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    pub finish_reason: FinishReason,
    /// The answer the grader extracted, if any.
    pub extracted_answer: Option<String>,
    /// The grader's verdict label (e.g. `correct`, `wrong`, `no_answer`, `timeout`).
    pub verdict: String,
    pub is_correct: bool,
    /// Σ over decode steps of KV entries read.
    pub kv_reads: u64,
    /// KV entries read during the (shared) prefill.
    pub prefill_reads: u64,
    /// Peak resident KV entries of this sample.
    pub peak_resident: u64,
    /// Peak resident KV entries of the whole batch that decoded this sample
    /// (samples `batch_first..batch_first + batch_samples`, prompt shared).
    /// Without nested widths the batch is the trial's W samples, so this is
    /// the W-batch peak; with nested widths a trial's samples come from
    /// several batches, and the sum of their peaks bounds the W-batch peak
    /// from above.
    pub peak_resident_batch: u64,
    pub batch_first: u32,
    pub batch_samples: u32,
    /// Bytes of K and V payload at this sample's peak.
    pub peak_bytes: u64,
    /// KV rows of the model (layers × KV heads).
    pub kv_rows: u64,
    pub budget_source: BudgetSource,
    /// Prefill + decode wall time of this sample.
    pub wall_seconds: f64,
    pub prefill_seconds: f64,
    pub decode_tokens_per_second: f64,
    /// Time the grader took on this sample.
    pub grade_seconds: f64,
    /// Device the sample was decoded on.
    pub device: String,
    /// [`token_hash`] of the generated ids: equal tokens, equal hash.
    pub token_hash: String,
    /// The generated text (absent when `run.save_text = false`).
    pub text: Option<String>,
}

impl SampleRecord {
    pub fn key(&self) -> SampleKey {
        SampleKey {
            trial: self.trial.clone(),
            problem_id: self.problem_id.clone(),
            repeat: self.repeat,
            sample: self.sample,
        }
    }

    /// The record with its wall-clock fields zeroed: what two runs of one
    /// config must agree on exactly.
    pub fn deterministic(&self) -> SampleRecord {
        SampleRecord {
            wall_seconds: 0.0,
            prefill_seconds: 0.0,
            decode_tokens_per_second: 0.0,
            grade_seconds: 0.0,
            ..self.clone()
        }
    }
}

/// First 32 hex digits of SHA-256 over the ids as little-endian `u32`s.
pub fn token_hash(ids: &[u32]) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.to_le_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_sha256_of_little_endian_ids() {
        // Reference: sha256 of the bytes 01 00 00 00 02 01 00 00.
        let bytes = [1u8, 0, 0, 0, 2, 1, 0, 0];
        let full = hex::encode(Sha256::digest(bytes));
        assert_eq!(token_hash(&[1, 258]), full[..32]);
        assert_ne!(token_hash(&[1, 258]), token_hash(&[258, 1]));
    }

    #[test]
    fn sample_id_joins_the_key() {
        let k = SampleKey {
            trial: "t1".into(),
            problem_id: "aime24-3".into(),
            repeat: 2,
            sample: 5,
        };
        assert_eq!(k.sample_id(), "t1:aime24-3:2:5");
    }
}
