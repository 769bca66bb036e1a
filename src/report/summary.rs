//! The values that flow through the report: a configuration's key
//! ([`PointKey`]), one W-batch ([`BatchRow`]), one problem of a configuration
//! ([`ProblemRow`]), one configuration over its problems ([`PointSummary`]),
//! and the budget axes ([`BudgetAxis`]). Plain structs; the dataframe work that
//! fills them lives in `aggregate`.

use serde::{Deserialize, Serialize};

/// One configuration of a run: what the report aggregates over problems.
/// Seeds and repeats are pooled (they are samples of the same
/// configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointKey {
    pub task: String,
    /// Model identity (name and file hash).
    pub model: String,
    /// Method name as configured.
    pub method: String,
    /// Cache policy kind (`dense` marks the reference frontier).
    pub policy: String,
    /// Target compression ratio; `None` for dense.
    pub cr_target: Option<f64>,
    /// W: samples per problem.
    pub width: u32,
    /// L: most new tokens per sample.
    pub max_tokens: u32,
}

impl PointKey {
    /// A stable string identity (`task|model|method|cr|W|L`).
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.task,
            self.model,
            self.method,
            self.cr_label(),
            self.width,
            self.max_tokens
        )
    }

    /// `-` for no CR, else the CR without trailing zeros (`2`, `2.5`).
    pub fn cr_label(&self) -> String {
        self.cr_target.map_or_else(|| "-".into(), fmt_num)
    }

    /// The point label of plots and tables: `W2-L24-CR4` (no CR for dense).
    pub fn label(&self) -> String {
        match self.cr_target {
            Some(cr) => format!("W{}-L{}-CR{}", self.width, self.max_tokens, fmt_num(cr)),
            None => format!("W{}-L{}", self.width, self.max_tokens),
        }
    }

    /// Is this the reference (dense) frontier's configuration?
    pub fn is_dense(&self) -> bool {
        self.policy == "dense"
    }

    /// Sort order of tables: task, method (dense first), CR, W, L.
    pub fn sort_key(&self) -> (String, bool, String, u64, u32, u32) {
        (
            self.task.clone(),
            !self.is_dense(),
            self.method.clone(),
            self.cr_target.map_or(0, |c| (c * 1000.0).round() as u64),
            self.width,
            self.max_tokens,
        )
    }
}

/// A number without trailing zeros: `2`, `2.5`, `0.125`.
pub fn fmt_num(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One W-batch: the `width` samples of one problem in one trial and repeat.
///
/// Budgets of a W-batch (what the W parallel samples cost together):
/// - `kv_reads`: Σ over the W samples of their decode-step KV reads (the
///   prompt's prefill is reported apart in `prefill_reads`, counted once
///   because the W samples share it);
/// - `peak_entries`: the batch's peak resident KV entries (the shared prompt
///   once plus every sample's entries). With nested widths the W samples
///   came from several decoded batches and this is the sum of their peaks,
///   an upper bound (see `SampleRecord::peak_resident_batch`);
/// - `peak_bytes`: `peak_entries` × the bytes of one entry (K and V payload,
///   from the records' `peak_bytes / peak_resident`);
/// - `runtime_s`: wall seconds of prefill + decode of the decoded batches
///   (samples of one decoded batch share their wall time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    pub key: PointKey,
    pub trial: String,
    pub task_version: String,
    pub problem_id: String,
    pub repeat: u32,
    pub seed: u64,
    /// Samples scored (error records left out).
    pub samples: u32,
    pub correct: u32,
    /// maj@W of the batch (NeMo-Skills ties) on the key the report votes on
    /// ([`super::batches::VoteOn`]).
    pub majority: f64,
    /// 1 when any sample is correct (pass@W of this batch).
    pub any_correct: f64,
    /// Samples whose outcome is `no_answer` (code: no program extracted).
    pub no_answer: u32,
    /// Samples that hit the token limit L.
    pub truncated: u32,
    pub generated_tokens: u64,
    pub kv_reads: f64,
    pub prefill_reads: f64,
    /// Σ decode reads dense attention would have made (`kv_reads × achieved CR`).
    pub dense_reads: f64,
    pub peak_entries: f64,
    pub peak_bytes: f64,
    pub runtime_s: f64,
    /// Σ over samples with an occupancy (format 3) of occupancy × decode
    /// steps (generated tokens − 1), and Σ of those steps: the point's
    /// occupancy is their ratio.
    pub occupancy_steps: f64,
    pub decode_steps: f64,
}

/// One problem of one configuration: means over its W-batches (repeats,
/// seeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRow {
    pub key: PointKey,
    pub problem_id: String,
    pub batches: u32,
    pub samples: u32,
    /// The accuracy the frontiers use: maj@W (= pass@1 at W = 1).
    pub accuracy: f64,
    /// c / n over all samples.
    pub pass_at_1: f64,
    pub pass_at_w: f64,
    pub kv_reads: f64,
    pub peak_entries: f64,
    pub peak_bytes: f64,
    pub runtime_s: f64,
}

/// One configuration over its problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    pub key: PointKey,
    pub problems: u32,
    pub samples: u32,
    /// Mean over problems of c/n, and its standard error over problems
    /// (sample sd of the per-problem c/n, ddof 1, over √m).
    pub pass_at_1: f64,
    pub pass_at_1_se: Option<f64>,
    /// NeMo-Skills' `std_err_across_runs` of pass@1 (run i = the i-th
    /// sample of every problem; sd of the run means over √k); `None` below
    /// two samples per problem or with unequal counts.
    pub pass_at_1_se_runs: Option<f64>,
    /// maj@W, the frontier accuracy, and its standard error over problems.
    pub accuracy: f64,
    pub accuracy_se: Option<f64>,
    /// pass@W: the chance that one of W samples is correct (mean over
    /// W-batches of "any correct", an unbiased estimator).
    pub pass_at_w: f64,
    /// Mean generated tokens per sample.
    pub generated_tokens: f64,
    /// Fraction of samples cut at L.
    pub truncated_rate: f64,
    /// Fraction of samples the grader found no answer in (code: no program).
    pub no_answer_rate: f64,
    /// Error records (generation failed) left out of every number above.
    pub generation_errors: u32,
    /// Budgets per problem (means over problems of the W-batch budgets).
    pub kv_reads: f64,
    pub prefill_reads: f64,
    pub peak_entries: f64,
    pub peak_bytes: f64,
    pub runtime_s: f64,
    /// Generated tokens per wall second, over all of the point's batches.
    pub tokens_per_s: f64,
    /// Mean sequences in flight over the point's decode steps (each step of
    /// each sample counted once); `None` when no record says (format ≤ 2,
    /// remote engines).
    #[serde(default)]
    pub occupancy: Option<f64>,
    /// Achieved CR: Σ dense-equivalent decode reads / Σ decode reads.
    pub cr_achieved: Option<f64>,
}

/// A budget axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetAxis {
    /// Decode-time KV entries read, summed over the W samples.
    KvReads,
    /// Peak resident KV entries of the W-batch.
    PeakEntries,
    /// Peak KV bytes of the W-batch.
    PeakBytes,
    /// Wall seconds of the W-batch.
    Runtime,
}

impl BudgetAxis {
    pub const ALL: [BudgetAxis; 4] = [
        BudgetAxis::KvReads,
        BudgetAxis::PeakEntries,
        BudgetAxis::PeakBytes,
        BudgetAxis::Runtime,
    ];

    /// Short name for files and columns.
    pub fn slug(self) -> &'static str {
        match self {
            BudgetAxis::KvReads => "kv_reads",
            BudgetAxis::PeakEntries => "peak_entries",
            BudgetAxis::PeakBytes => "peak_bytes",
            BudgetAxis::Runtime => "runtime_s",
        }
    }

    /// Axis label with its unit.
    pub fn label(self) -> &'static str {
        match self {
            BudgetAxis::KvReads => "KV reads per problem (entries, decode)",
            BudgetAxis::PeakEntries => "peak KV memory per problem (entries)",
            BudgetAxis::PeakBytes => "peak KV memory per problem (bytes)",
            BudgetAxis::Runtime => "runtime per problem (s)",
        }
    }

    /// Runtime is measured, not counted: it varies across machines.
    pub fn is_wall_clock(self) -> bool {
        matches!(self, BudgetAxis::Runtime)
    }

    pub fn of_point(self, p: &PointSummary) -> f64 {
        match self {
            BudgetAxis::KvReads => p.kv_reads,
            BudgetAxis::PeakEntries => p.peak_entries,
            BudgetAxis::PeakBytes => p.peak_bytes,
            BudgetAxis::Runtime => p.runtime_s,
        }
    }

    pub fn of_problem(self, p: &ProblemRow) -> f64 {
        match self {
            BudgetAxis::KvReads => p.kv_reads,
            BudgetAxis::PeakEntries => p.peak_entries,
            BudgetAxis::PeakBytes => p.peak_bytes,
            BudgetAxis::Runtime => p.runtime_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_trailing_zeros() {
        let k = PointKey {
            task: "t".into(),
            model: "m".into(),
            method: "tova".into(),
            policy: "tova".into(),
            cr_target: Some(2.5),
            width: 2,
            max_tokens: 24,
        };
        assert_eq!(k.label(), "W2-L24-CR2.5");
        assert_eq!(fmt_num(4.0), "4");
        assert_eq!(
            PointKey {
                cr_target: None,
                ..k
            }
            .label(),
            "W2-L24"
        );
    }
}
