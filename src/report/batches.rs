//! Sample records → [`BatchRow`]s: the W samples of one problem in one trial
//! and repeat are one W-batch, scored together (maj@W, pass@W) and costed
//! together (the budgets documented on [`BatchRow`]).

use std::collections::BTreeMap;

use super::estimators::majority_at_k;
use super::summary::{BatchRow, PointKey};
use crate::generate::FinishReason;
use crate::record::SampleRecord;

/// The point key of a record.
pub fn point_key(r: &SampleRecord) -> PointKey {
    PointKey {
        task: r.task.clone(),
        model: r.model.clone(),
        method: r.method.clone(),
        policy: r.policy.clone(),
        cr_target: r.cr_target,
        width: r.width,
        max_tokens: r.max_tokens,
    }
}

/// Group records into W-batches (by trial, problem, repeat), in the order
/// trial, problem, repeat. Records of a batch are taken in sample order.
pub fn batch_rows(records: &[SampleRecord]) -> Vec<BatchRow> {
    let mut groups: BTreeMap<(&str, &str, u32), Vec<&SampleRecord>> = BTreeMap::new();
    for r in records {
        groups
            .entry((&r.trial, &r.problem_id, r.repeat))
            .or_default()
            .push(r);
    }
    groups
        .into_values()
        .map(|mut samples| {
            samples.sort_by_key(|r| r.sample);
            batch_row(&samples)
        })
        .collect()
}

/// One W-batch's scores and budgets (`samples` non-empty, one trial).
fn batch_row(samples: &[&SampleRecord]) -> BatchRow {
    let first = samples[0];
    let votes: Vec<(Option<&str>, bool)> = samples
        .iter()
        .map(|r| (r.extracted_answer.as_deref(), r.is_correct))
        .collect();
    let correct = samples.iter().filter(|r| r.is_correct).count() as u32;
    // Decoded batches (nested widths: several) by their first sample.
    let mut decoded: BTreeMap<u32, (u64, f64)> = BTreeMap::new();
    for r in samples {
        let e = decoded.entry(r.batch_first).or_insert((0, 0.0));
        e.0 = e.0.max(r.peak_resident_batch);
        e.1 = e.1.max(r.wall_seconds);
    }
    let peak_entries: u64 = decoded.values().map(|(p, _)| p).sum();
    let resident: u64 = samples.iter().map(|r| r.peak_resident).sum();
    let bytes: u64 = samples.iter().map(|r| r.peak_bytes).sum();
    let bytes_per_entry = if resident > 0 {
        bytes as f64 / resident as f64
    } else {
        0.0
    };
    BatchRow {
        key: point_key(first),
        trial: first.trial.clone(),
        task_version: first.task_version.clone(),
        problem_id: first.problem_id.clone(),
        repeat: first.repeat,
        seed: first.seed,
        samples: samples.len() as u32,
        correct,
        majority: majority_at_k(&votes, first.width as usize),
        any_correct: if correct > 0 { 1.0 } else { 0.0 },
        no_answer: samples
            .iter()
            .filter(|r| r.extracted_answer.is_none())
            .count() as u32,
        truncated: samples
            .iter()
            .filter(|r| r.finish_reason == FinishReason::Length)
            .count() as u32,
        generated_tokens: samples.iter().map(|r| r.generated_tokens).sum(),
        kv_reads: samples.iter().map(|r| r.kv_reads as f64).sum(),
        prefill_reads: samples.iter().map(|r| r.prefill_reads).max().unwrap_or(0) as f64,
        dense_reads: samples
            .iter()
            .map(|r| r.kv_reads as f64 * r.cr_achieved.unwrap_or(1.0))
            .sum(),
        peak_entries: peak_entries as f64,
        peak_bytes: peak_entries as f64 * bytes_per_entry,
        runtime_s: decoded.values().map(|(_, w)| w).sum(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::BudgetSource;

    /// A record with the given identity and outcome; budgets settable after.
    pub(crate) fn record(
        method: &str,
        cr: Option<f64>,
        width: u32,
        problem: &str,
        sample: u32,
        answer: Option<&str>,
        correct: bool,
    ) -> SampleRecord {
        let trial = format!("t-{method}-{cr:?}-{width}");
        SampleRecord {
            run: "golden".into(),
            trial: trial.clone(),
            group: "g".into(),
            sample_id: format!("{trial}:{problem}:0:{sample}"),
            task: "arith".into(),
            task_version: "1".into(),
            problem_id: problem.into(),
            repeat: 0,
            sample,
            model: "m".into(),
            method: method.into(),
            policy: if method == "dense" { "dense" } else { "tova" }.into(),
            policy_params: "{}".into(),
            cr_target: cr,
            cr_achieved: Some(cr.unwrap_or(1.0)),
            width,
            max_tokens: 16,
            seed: 0,
            temperature: 0.6,
            top_p: 0.95,
            top_k: 0,
            prompt_tokens: 10,
            generated_tokens: 16,
            finish_reason: FinishReason::Length,
            extracted_answer: answer.map(str::to_string),
            verdict: if correct { "correct" } else { "incorrect" }.into(),
            is_correct: correct,
            kv_reads: 100,
            prefill_reads: 50,
            peak_resident: 10,
            peak_resident_batch: 10 * u64::from(width),
            batch_first: 0,
            batch_samples: width,
            peak_bytes: 40,
            kv_rows: 1,
            budget_source: BudgetSource::Measured,
            wall_seconds: 2.0,
            prefill_seconds: 0.5,
            decode_tokens_per_second: 8.0,
            grade_seconds: 0.0,
            device: "cpu".into(),
            token_hash: "h".into(),
            text: None,
        }
    }

    #[test]
    fn a_batch_votes_and_costs_its_samples_together() {
        let mut rs = vec![
            record("dense", None, 3, "p", 2, Some("7"), true),
            record("dense", None, 3, "p", 0, Some("5"), false),
            record("dense", None, 3, "p", 1, Some("5"), false),
        ];
        // Nested widths: sample 2 came from its own decoded batch.
        rs[0].batch_first = 2;
        rs[0].peak_resident_batch = 12;
        rs[0].wall_seconds = 1.5;
        for r in &mut rs[1..] {
            r.peak_resident_batch = 25;
        }
        let rows = batch_rows(&rs);
        assert_eq!(rows.len(), 1);
        let b = &rows[0];
        // "5" wins 2–1 and is wrong.
        assert_eq!(
            (b.samples, b.correct, b.majority, b.any_correct),
            (3, 1, 0.0, 1.0)
        );
        assert_eq!(b.kv_reads, 300.0);
        assert_eq!(b.prefill_reads, 50.0);
        // Two decoded batches: peaks 25 + 12, walls 2.0 + 1.5; 4 bytes/entry.
        assert_eq!(b.peak_entries, 37.0);
        assert_eq!(b.peak_bytes, 148.0);
        assert_eq!(b.runtime_s, 3.5);
        assert_eq!(b.truncated, 3);
    }
}
