//! Sample records → [`BatchRow`]s: the W samples of one problem in one trial
//! and repeat are one W-batch, scored together (maj@W, pass@W) and costed
//! together (the budgets documented on [`BatchRow`]).
//!
//! Scores count the grader's typed outcome ([`SampleRecord::outcome`]),
//! never whether an answer string was extracted. Before batching,
//! [`prepare`] keeps one record per key (duplicates are counted, not
//! scored twice) and sets aside error records (generation failed), which
//! no accuracy counts.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::estimators::majority_at_k;
use super::summary::{BatchRow, PointKey};
use crate::generate::FinishReason;
use crate::grade::Outcome;
use crate::record::{SampleKey, SampleRecord};

/// What maj@k votes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteOn {
    /// The raw extracted answer (`extracted_answer`), as NeMo-Skills votes:
    /// `073` and `73` are different answers. Default.
    #[default]
    Raw,
    /// The grader's normalised key (`vote_key`: the parsed integer, the
    /// letter, the program digest).
    Normalised,
}

impl VoteOn {
    /// How the report names the choice.
    pub fn describe(self) -> &'static str {
        match self {
            VoteOn::Raw => "the raw extracted answer (NeMo-Skills; code: the program digest)",
            VoteOn::Normalised => {
                "the normalised answer key (`--vote normalised`; code: the program digest)"
            }
        }
    }
}

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

/// The records a report scores, and what was set aside.
#[derive(Debug, Clone, Default)]
pub struct Prepared<'a> {
    /// One record per key (the first in file order), error records left out.
    pub records: Vec<&'a SampleRecord>,
    /// Records whose key an earlier record already had (not scored).
    pub duplicates: usize,
    /// Of those, records that disagree with the kept one (other tokens or
    /// another outcome).
    pub conflicting: usize,
    /// Error records (generation failed) left out of every accuracy, by
    /// configuration id ([`PointKey::id`]).
    pub generation_errors: BTreeMap<String, usize>,
}

impl Prepared<'_> {
    /// Error records left out, over all configurations.
    pub fn excluded(&self) -> usize {
        self.generation_errors.values().sum()
    }

    /// The warnings a reader must see about the records themselves.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.duplicates > 0 {
            out.push(format!(
                "{} duplicate record(s) (a key `trial:problem:repeat:sample` seen before) were left out; each key is scored once, from its first record{}. Two sweeps wrote into one run directory?",
                self.duplicates,
                if self.conflicting > 0 {
                    format!(
                        " ({} of them disagree with the record kept: other tokens or another verdict)",
                        self.conflicting
                    )
                } else {
                    String::new()
                }
            ));
        }
        let errors = self.excluded();
        if errors > 0 {
            out.push(format!(
                "{errors} error record(s) (generation failed: no text) are excluded from every accuracy, in {} configuration(s); resume the sweep to retry them",
                self.generation_errors.len()
            ));
        }
        out
    }
}

/// De-duplicate (first record of each key wins) and set aside error
/// records; see [`Prepared`].
pub fn prepare(records: &[SampleRecord]) -> Prepared<'_> {
    let mut seen: HashMap<SampleKey, usize> = HashMap::new();
    let mut out = Prepared::default();
    let mut kept: Vec<&SampleRecord> = Vec::with_capacity(records.len());
    for r in records {
        if let Some(&i) = seen.get(&r.key()) {
            out.duplicates += 1;
            let first: &SampleRecord = kept[i];
            if first.token_hash != r.token_hash || first.outcome() != r.outcome() {
                out.conflicting += 1;
            }
            continue;
        }
        seen.insert(r.key(), kept.len());
        kept.push(r);
    }
    for r in kept {
        if r.generation_failed() {
            *out.generation_errors.entry(point_key(r).id()).or_default() += 1;
        } else {
            out.records.push(r);
        }
    }
    out
}

/// Group records into W-batches (by trial, problem, repeat), in the order
/// trial, problem, repeat. Records of a batch are taken in sample order.
/// Pass the records through [`prepare`] first: this counts every record
/// it is given.
pub fn batch_rows<'a>(
    records: impl IntoIterator<Item = &'a SampleRecord>,
    vote: VoteOn,
) -> Vec<BatchRow> {
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
            batch_row(&samples, vote)
        })
        .collect()
}

/// One W-batch's scores and budgets (`samples` non-empty, one trial).
fn batch_row(samples: &[&SampleRecord], vote: VoteOn) -> BatchRow {
    let first = samples[0];
    let votes: Vec<(Option<&str>, bool)> = samples
        .iter()
        .map(|r| (r.vote(vote == VoteOn::Normalised), r.correct()))
        .collect();
    let correct = samples.iter().filter(|r| r.correct()).count() as u32;
    // Decoded batches (nested widths: several) by their first sample: peak
    // and runtime. A sample's `wall_seconds` is its prefill plus its share
    // of its decode steps when it has `occupancy` (format 3), so a batch
    // costs its prefill once plus its samples' shares; before, every sample
    // was charged each whole step, and the batch cost its longest sample.
    let mut decoded: BTreeMap<u32, (u64, f64, f64, f64)> = BTreeMap::new();
    for r in samples {
        let e = decoded.entry(r.batch_first).or_insert((0, 0.0, 0.0, 0.0));
        e.0 = e.0.max(r.peak_resident_batch);
        e.1 = e.1.max(r.wall_seconds);
        e.2 = e.2.max(r.prefill_seconds);
        e.3 += (r.wall_seconds - r.prefill_seconds).max(0.0);
    }
    let shares = samples.iter().all(|r| r.occupancy.is_some());
    let runtime_s: f64 = decoded
        .values()
        .map(
            |&(_, longest, prefill, decode)| {
                if shares { prefill + decode } else { longest }
            },
        )
        .sum();
    let peak_entries: u64 = decoded.values().map(|(p, ..)| p).sum();
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
        // The batch's samples, all of them voting (W of them unless error
        // records were set aside).
        majority: majority_at_k(&votes, votes.len()),
        any_correct: if correct > 0 { 1.0 } else { 0.0 },
        no_answer: samples
            .iter()
            .filter(|r| r.outcome() == Outcome::NoAnswer)
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
        runtime_s,
        occupancy_steps: samples
            .iter()
            .filter_map(|r| Some(r.occupancy? * r.generated_tokens.saturating_sub(1) as f64))
            .sum(),
        decode_steps: samples
            .iter()
            .filter(|r| r.occupancy.is_some())
            .map(|r| r.generated_tokens.saturating_sub(1) as f64)
            .sum(),
    }
}

/// NeMo-Skills' `std_err_across_runs` of pass@1 per configuration: run `i`
/// is the `i`-th sample of every problem (samples ordered by seed, repeat,
/// sample), `std_dev_across_runs` is the sample standard deviation (ddof 1)
/// of the k run means, and the standard error is that over √k. `None` for a
/// configuration with fewer than two samples per problem or problems with
/// unequal sample counts (NeMo refuses those). Keyed by [`PointKey::id`].
pub fn std_err_across_runs_by_point<'a>(
    records: impl IntoIterator<Item = &'a SampleRecord>,
) -> HashMap<String, Option<f64>> {
    type Runs<'a> = BTreeMap<&'a str, Vec<(u64, u32, u32, bool)>>;
    let mut by_point: BTreeMap<String, Runs<'a>> = BTreeMap::new();
    for r in records {
        by_point
            .entry(point_key(r).id())
            .or_default()
            .entry(&r.problem_id)
            .or_default()
            .push((r.seed, r.repeat, r.sample, r.correct()));
    }
    by_point
        .into_iter()
        .map(|(id, problems)| {
            let scores: Vec<Vec<f64>> = problems
                .into_values()
                .map(|mut s| {
                    s.sort_by_key(|&(seed, repeat, sample, _)| (seed, repeat, sample));
                    s.iter().map(|x| if x.3 { 1.0 } else { 0.0 }).collect()
                })
                .collect();
            (id, super::estimators::std_err_across_runs(&scores))
        })
        .collect()
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
            outcome: Some(if correct {
                Outcome::Correct
            } else if answer.is_none() {
                Outcome::NoAnswer
            } else {
                Outcome::Incorrect
            }),
            failure: None,
            vote_key: answer.map(str::to_string),
            occupancy: None,
            kv_dtype: None,
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
        let rows = batch_rows(&rs, VoteOn::Raw);
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

    #[test]
    fn a_batch_of_step_shares_costs_its_prefill_once_plus_the_shares() {
        let mut rs = vec![
            record("dense", None, 2, "p", 0, Some("5"), false),
            record("dense", None, 2, "p", 1, Some("5"), false),
        ];
        // Prefill 0.5 s each (shared), decode shares 1.5 s and 0.25 s.
        rs[0].wall_seconds = 2.0;
        rs[1].wall_seconds = 0.75;
        for r in &mut rs {
            r.occupancy = Some(3.0);
        }
        assert_eq!(batch_rows(&rs, VoteOn::Raw)[0].runtime_s, 0.5 + 1.5 + 0.25);
        // Without occupancy (format ≤ 2) the longest sample is the batch.
        rs[1].occupancy = None;
        assert_eq!(batch_rows(&rs, VoteOn::Raw)[0].runtime_s, 2.0);
    }
}
