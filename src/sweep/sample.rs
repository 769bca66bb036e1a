//! A generated sample becomes its [`SampleRecord`]: the trial's parameters,
//! the completion's counts and budgets, and (after grading) the verdict.

use super::deps::GradeOutcome;
use super::trial::{BatchPlan, Trial};
use crate::generate::Completion;
use crate::record::{BudgetSource, SampleKey, SampleRecord, token_hash};

/// What a record needs besides the trial and the completion.
#[derive(Debug, Clone, Copy)]
pub struct SampleContext<'a> {
    pub run: &'a str,
    pub task_version: &'a str,
    pub problem_id: &'a str,
    pub repeat: u32,
    pub sample: u32,
    pub batch: &'a BatchPlan,
    pub kv_rows: u64,
    pub device: &'a str,
    pub save_text: bool,
    pub budget_source: BudgetSource,
    /// The element the generator's store kept K/V in (`None`: unknown, a
    /// remote engine).
    pub kv_dtype: Option<crate::kv::KvDtype>,
}

/// The record of `c` in `trial`, not yet graded (`verdict` empty).
pub fn ungraded_record(trial: &Trial, c: &Completion, ctx: &SampleContext<'_>) -> SampleRecord {
    let key = SampleKey {
        trial: trial.id.clone(),
        problem_id: ctx.problem_id.to_string(),
        repeat: ctx.repeat,
        sample: ctx.sample,
    };
    let policy_params = match serde_json::to_value(&trial.spec.policy) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.remove("policy");
            serde_json::Value::Object(m).to_string()
        }
        _ => "{}".to_string(),
    };
    SampleRecord {
        run: ctx.run.to_string(),
        trial: trial.id.clone(),
        group: trial.group.clone(),
        sample_id: key.sample_id(),
        task: trial.spec.task.clone(),
        task_version: ctx.task_version.to_string(),
        problem_id: key.problem_id,
        repeat: ctx.repeat,
        sample: ctx.sample,
        model: trial.spec.model.clone(),
        method: trial.method.clone(),
        policy: trial.spec.policy.method().to_string(),
        policy_params,
        cr_target: trial.spec.cr,
        cr_achieved: achieved_cr(c, ctx.kv_rows),
        width: trial.spec.width as u32,
        max_tokens: trial.spec.max_tokens as u32,
        seed: trial.sampling.seed,
        temperature: trial.sampling.temperature,
        top_p: trial.sampling.top_p,
        top_k: trial.sampling.top_k as u32,
        prompt_tokens: c.prompt_tokens as u64,
        generated_tokens: c.generated_tokens as u64,
        finish_reason: c.finish_reason,
        extracted_answer: None,
        verdict: String::new(),
        is_correct: false,
        kv_reads: c.kv.decode_reads,
        prefill_reads: c.kv.prefill_reads,
        peak_resident: c.kv.peak_resident,
        peak_resident_batch: c.batch_peak_resident,
        batch_first: ctx.batch.first,
        batch_samples: ctx.batch.samples,
        peak_bytes: c.kv.peak_bytes,
        kv_rows: ctx.kv_rows,
        budget_source: ctx.budget_source,
        wall_seconds: c.timing.prefill_seconds + c.timing.decode_seconds,
        prefill_seconds: c.timing.prefill_seconds,
        decode_tokens_per_second: c.timing.decode_tokens_per_second,
        grade_seconds: 0.0,
        device: ctx.device.to_string(),
        token_hash: token_hash(&c.token_ids),
        text: ctx.save_text.then(|| c.text.clone()),
        outcome: None,
        failure: None,
        vote_key: None,
        // Only the local engine's timings are shares of its steps.
        occupancy: (ctx.budget_source == BudgetSource::Measured).then_some(c.timing.occupancy),
        kv_dtype: ctx.kv_dtype.map(|d| d.to_string()),
    }
}

/// Fill in the grader's verdict.
pub fn graded(mut r: SampleRecord, o: &GradeOutcome, seconds: f64) -> SampleRecord {
    r.verdict = o.label();
    r.is_correct = o.is_correct();
    r.extracted_answer = o.extracted.clone();
    r.outcome = Some(o.outcome);
    r.failure = o.failure;
    r.vote_key = o.vote_key.clone();
    r.grade_seconds = seconds;
    r
}

/// Decode reads dense attention would have made over those made.
///
/// A sample of P prompt and g generated tokens feeds g − 1 tokens after
/// prefill; step t reads P + t entries per KV row, so dense reads are
/// `rows · Σ_{t=1}^{g−1} (P + t)`.
pub fn achieved_cr(c: &Completion, rows: u64) -> Option<f64> {
    if c.kv.decode_reads == 0 || rows == 0 {
        return None;
    }
    let p = c.prompt_tokens as u64;
    let steps = (c.generated_tokens as u64).saturating_sub(1);
    let dense = rows * (steps * p + steps * (steps + 1) / 2);
    Some(dense as f64 / c.kv.decode_reads as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{FinishReason, Timing};
    use crate::kv::KvStats;

    fn completion(prompt: usize, generated: usize, reads: u64) -> Completion {
        Completion {
            request: 0,
            sample: 0,
            text: String::new(),
            token_ids: vec![],
            finish_reason: FinishReason::Length,
            prompt_tokens: prompt,
            generated_tokens: generated,
            kv: KvStats {
                decode_reads: reads,
                ..KvStats::default()
            },
            batch_peak_resident: 0,
            timing: Timing::default(),
        }
    }

    #[test]
    fn dense_reads_give_cr_one_and_half_the_reads_give_two() {
        // P = 4, g = 6, 3 rows: steps 1..=5 read 5+6+7+8+9 = 35 per row.
        let dense = 3 * 35;
        assert_eq!(achieved_cr(&completion(4, 6, dense), 3), Some(1.0));
        assert_eq!(
            achieved_cr(&completion(4, 6, dense / 2 + 1), 3).map(|x| x > 1.9),
            Some(true)
        );
        assert_eq!(achieved_cr(&completion(4, 1, 0), 3), None);
    }
}
