//! One graded sample as stored: a flat row (no nesting, polars-friendly) that
//! carries everything the report needs, so a results directory is readable
//! without the config that produced it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generate::FinishReason;
use crate::grade::{FailureKind, Outcome};

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
    /// The raw answer the grader extracted, if any (code: the program
    /// digest). Format 1 stored the normalised vote key here instead.
    pub extracted_answer: Option<String>,
    /// The grader's verdict as a label for people (`correct`, `incorrect`,
    /// `no_answer`, `error`, or a code failure: `timeout`, `runtime_error`,
    /// `memory`, `output_limit`); see [`crate::grade::verdict::label`].
    /// Readers use [`SampleRecord::outcome`], not this label.
    pub verdict: String,
    /// `outcome == correct`.
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
    /// Prefill + decode wall time of this sample: its request's prefill
    /// plus, with `occupancy` (format 3), its share of the decode steps it
    /// was in (by bytes moved, docs/batching.md); without, every step's
    /// whole wall time.
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
    /// The grader's typed outcome (format 2; absent in format-1 records,
    /// read through [`SampleRecord::outcome`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Code: why the first failing test failed (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// The normalised vote key (format 2): the parsed integer or normalised
    /// string (math), the letter (choice), the program digest (code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_key: Option<String>,
    /// Mean sequences in flight over the sample's decode steps (format 3;
    /// absent in older records and for remote engines). Present means
    /// `wall_seconds` holds the sample's share of its decode steps
    /// (docs/batching.md), so a batch's runtime is its prefill plus the sum
    /// of its samples' decode shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupancy: Option<f64>,
    /// The element the sample's K/V were stored in, `f32`, `f16` or
    /// `bf16` (format 4): `peak_bytes` counts its width. Absent in older
    /// records (their K/V were f32 on the CPU and on devices alike) and
    /// for remote engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_dtype: Option<String>,
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

    /// The grader's outcome: the stored `outcome`; for a format-1 record,
    /// `correct` when `is_correct` (format 1's one score), else the outcome
    /// its `verdict` label names (`no_answer`, `error`; `incorrect`, a
    /// code failure or an unknown label read as incorrect). Never inferred from
    /// `extracted_answer`.
    pub fn outcome(&self) -> Outcome {
        if let Some(o) = self.outcome {
            return o;
        }
        if self.is_correct {
            return Outcome::Correct;
        }
        match Outcome::from_label(&self.verdict) {
            Some((o, _)) if o != Outcome::Correct => o,
            _ => Outcome::Incorrect,
        }
    }

    /// The code failure: the stored one, or the one a format-1 label names.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self.outcome {
            Some(_) => self.failure,
            None => Outcome::from_label(&self.verdict).and_then(|(_, f)| f),
        }
    }

    /// [`Self::outcome`] is [`Outcome::Correct`].
    pub fn correct(&self) -> bool {
        self.outcome() == Outcome::Correct
    }

    /// Generation failed (a remote engine gave up on this sample): an error
    /// record, with no text to grade. The report leaves these out of every
    /// accuracy and says how many it left out.
    pub fn generation_failed(&self) -> bool {
        self.finish_reason == FinishReason::Error
    }

    /// The key majority voting uses: the raw `extracted_answer` (NeMo-Skills,
    /// the default), or with `normalised` the `vote_key` (format-1 records
    /// have only `extracted_answer`, which then held the normalised key).
    pub fn vote(&self, normalised: bool) -> Option<&str> {
        if normalised {
            self.vote_key
                .as_deref()
                .or(self.extracted_answer.as_deref())
        } else {
            self.extracted_answer.as_deref()
        }
    }

    /// The record with its wall-clock fields zeroed and its batch occupancy
    /// cleared (it depends on `max_sequences`): what two runs of one config
    /// must agree on exactly.
    pub fn deterministic(&self) -> SampleRecord {
        SampleRecord {
            wall_seconds: 0.0,
            prefill_seconds: 0.0,
            decode_tokens_per_second: 0.0,
            grade_seconds: 0.0,
            occupancy: None,
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

    /// A format-1 record (no `outcome`): the grader's verdict comes from its
    /// label, never from `extracted_answer`.
    const FORMAT_1: &str = r#"{"run":"r","trial":"t","group":"g","sample_id":"t:p:0:0","task":"livecodebench","task_version":"1","problem_id":"p","repeat":0,"sample":0,"model":"m","method":"dense","policy":"dense","policy_params":"{}","cr_target":null,"cr_achieved":1.0,"width":1,"max_tokens":8,"seed":0,"temperature":0.6,"top_p":0.95,"top_k":0,"prompt_tokens":5,"generated_tokens":8,"finish_reason":"length","extracted_answer":null,"verdict":"timeout","is_correct":false,"kv_reads":90,"prefill_reads":15,"peak_resident":13,"peak_resident_batch":13,"batch_first":0,"batch_samples":1,"peak_bytes":52,"kv_rows":1,"budget_source":"measured","wall_seconds":0.5,"prefill_seconds":0.1,"decode_tokens_per_second":16.0,"grade_seconds":0.0,"device":"cpu","token_hash":"h","text":null}"#;

    #[test]
    fn format_1_records_read_their_outcome_from_the_label() {
        let mut r: SampleRecord = serde_json::from_str(FORMAT_1).unwrap();
        assert_eq!(r.outcome, None);
        // Format 4's `kv_dtype` is absent before (and stays absent).
        assert_eq!(r.kv_dtype, None);
        assert!(!serde_json::to_string(&r).unwrap().contains("kv_dtype"));
        // A code sample that timed out ran: incorrect, not no_answer.
        assert_eq!(r.outcome(), Outcome::Incorrect);
        assert_eq!(r.failure_kind(), Some(FailureKind::Timeout));
        r.verdict = "incorrect".into();
        assert_eq!(r.outcome(), Outcome::Incorrect);
        r.verdict = "no_answer".into();
        assert_eq!(r.outcome(), Outcome::NoAnswer);
        // Format 2: the stored outcome wins and is written out.
        r.outcome = Some(Outcome::Correct);
        r.is_correct = true;
        r.verdict = "correct".into();
        assert!(r.correct());
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""outcome":"correct""#), "{json}");
        let back: SampleRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
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
