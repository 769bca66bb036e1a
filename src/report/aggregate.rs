//! Aggregation with polars: W-batches → one row per (configuration,
//! problem) → one row per configuration (task, model, method, CR, W, L).
//!
//! Per problem: means over its W-batches (repeats and seeds pooled); pass@1
//! is c/n over all the problem's samples. Per configuration: means over
//! problems, sample standard deviations (ddof 1) over problems, and sums for
//! the rates (truncated, no answer), tokens/s and the achieved CR.

use polars::prelude::*;

use super::ReportError;
use super::summary::{BatchRow, PointKey, PointSummary, ProblemRow};

/// The key columns of a configuration, in sort order.
pub const KEY_COLUMNS: [&str; 7] = [
    "task",
    "model",
    "method",
    "policy",
    "cr_target",
    "width",
    "max_tokens",
];

/// The three tables of a run.
#[derive(Debug, Clone)]
pub struct Aggregates {
    /// One row per W-batch.
    pub batches: DataFrame,
    /// One row per (configuration, problem).
    pub problems: DataFrame,
    /// One row per configuration (`summary.parquet`).
    pub points: DataFrame,
}

/// The W-batches as a dataframe (one column per [`BatchRow`] field, the key
/// flattened, plus `pass_at_1 = correct / samples`).
pub fn batch_frame(rows: &[BatchRow]) -> PolarsResult<DataFrame> {
    let s = |f: fn(&BatchRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let u = |f: fn(&BatchRow) -> u32| rows.iter().map(f).collect::<Vec<u32>>();
    let x = |f: fn(&BatchRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let cols: Vec<Column> = vec![
        Column::new("task".into(), s(|r| &r.key.task)),
        Column::new("model".into(), s(|r| &r.key.model)),
        Column::new("method".into(), s(|r| &r.key.method)),
        Column::new("policy".into(), s(|r| &r.key.policy)),
        Column::new(
            "cr_target".into(),
            rows.iter().map(|r| r.key.cr_target).collect::<Vec<_>>(),
        ),
        Column::new("width".into(), u(|r| r.key.width)),
        Column::new("max_tokens".into(), u(|r| r.key.max_tokens)),
        Column::new("trial".into(), s(|r| &r.trial)),
        Column::new("task_version".into(), s(|r| &r.task_version)),
        Column::new("problem_id".into(), s(|r| &r.problem_id)),
        Column::new("repeat".into(), u(|r| r.repeat)),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
        Column::new("samples".into(), u(|r| r.samples)),
        Column::new("correct".into(), u(|r| r.correct)),
        Column::new("majority".into(), x(|r| r.majority)),
        Column::new("any_correct".into(), x(|r| r.any_correct)),
        Column::new("no_answer".into(), u(|r| r.no_answer)),
        Column::new("truncated".into(), u(|r| r.truncated)),
        Column::new(
            "generated_tokens".into(),
            rows.iter()
                .map(|r| r.generated_tokens)
                .collect::<Vec<u64>>(),
        ),
        Column::new("kv_reads".into(), x(|r| r.kv_reads)),
        Column::new("prefill_reads".into(), x(|r| r.prefill_reads)),
        Column::new("dense_reads".into(), x(|r| r.dense_reads)),
        Column::new("peak_entries".into(), x(|r| r.peak_entries)),
        Column::new("peak_bytes".into(), x(|r| r.peak_bytes)),
        Column::new("runtime_s".into(), x(|r| r.runtime_s)),
        Column::new("occupancy_steps".into(), x(|r| r.occupancy_steps)),
        Column::new("decode_steps".into(), x(|r| r.decode_steps)),
    ];
    DataFrame::new(rows.len(), cols)?
        .lazy()
        .with_column(
            (col("correct").cast(DataType::Float64) / col("samples").cast(DataType::Float64))
                .alias("pass_at_1"),
        )
        .collect()
}

fn keys() -> Vec<Expr> {
    KEY_COLUMNS.iter().map(|c| col(*c)).collect()
}

fn sort_options(n: usize) -> SortMultipleOptions {
    SortMultipleOptions::default()
        .with_order_descending_multi(vec![false; n])
        .with_nulls_last(false)
        .with_maintain_order(true)
}

/// Aggregate W-batch rows into the problem and point tables.
pub fn aggregate(rows: &[BatchRow]) -> Result<Aggregates, ReportError> {
    let batches = batch_frame(rows)?;
    let mut by_problem = keys();
    by_problem.push(col("problem_id"));
    let f64c = |c: &str| col(c).cast(DataType::Float64);
    let problems = batches
        .clone()
        .lazy()
        .group_by(by_problem)
        .agg([
            len().cast(DataType::UInt32).alias("batches"),
            col("samples").sum(),
            col("correct").sum(),
            col("majority").mean().alias("accuracy"),
            col("any_correct").mean().alias("pass_at_w"),
            col("no_answer").sum(),
            col("truncated").sum(),
            col("generated_tokens").sum(),
            col("kv_reads").mean(),
            col("prefill_reads").mean(),
            col("peak_entries").mean(),
            col("peak_bytes").mean(),
            col("runtime_s").mean(),
            col("runtime_s").sum().alias("runtime_total"),
            col("dense_reads").sum(),
            col("kv_reads").sum().alias("kv_reads_total"),
            col("occupancy_steps").sum(),
            col("decode_steps").sum(),
        ])
        .with_column((f64c("correct") / f64c("samples")).alias("pass_at_1"))
        .sort(
            KEY_COLUMNS
                .iter()
                .chain(&["problem_id"])
                .map(|c| PlSmallStr::from(*c))
                .collect::<Vec<_>>(),
            sort_options(KEY_COLUMNS.len() + 1),
        )
        .collect()?;
    let points = problems
        .clone()
        .lazy()
        .group_by(keys())
        .agg([
            len().cast(DataType::UInt32).alias("problems"),
            col("samples").sum(),
            col("pass_at_1").mean(),
            col("pass_at_1").std(1).alias("pass_at_1_sd"),
            col("accuracy").mean(),
            col("accuracy").std(1).alias("accuracy_sd"),
            col("pass_at_w").mean(),
            col("no_answer").sum(),
            col("truncated").sum(),
            col("generated_tokens").sum(),
            col("kv_reads").mean(),
            col("prefill_reads").mean(),
            col("peak_entries").mean(),
            col("peak_bytes").mean(),
            col("runtime_s").mean(),
            col("runtime_total").sum(),
            col("dense_reads").sum(),
            col("kv_reads_total").sum(),
            col("occupancy_steps").sum(),
            col("decode_steps").sum(),
        ])
        .with_columns([
            (col("pass_at_1_sd") / f64c("problems").sqrt()).alias("pass_at_1_se"),
            (col("accuracy_sd") / f64c("problems").sqrt()).alias("accuracy_se"),
            (f64c("generated_tokens") / f64c("samples")).alias("generated_tokens_mean"),
            (f64c("truncated") / f64c("samples")).alias("truncated_rate"),
            (f64c("no_answer") / f64c("samples")).alias("no_answer_rate"),
            when(col("runtime_total").gt(lit(0.0)))
                .then(f64c("generated_tokens") / col("runtime_total"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("tokens_per_s"),
            when(col("kv_reads_total").gt(lit(0.0)))
                .then(col("dense_reads") / col("kv_reads_total"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("cr_achieved"),
            when(col("decode_steps").gt(lit(0.0)))
                .then(col("occupancy_steps") / col("decode_steps"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("occupancy"),
        ])
        .sort(
            KEY_COLUMNS
                .iter()
                .map(|c| PlSmallStr::from(*c))
                .collect::<Vec<_>>(),
            sort_options(KEY_COLUMNS.len()),
        )
        .collect()?;
    Ok(Aggregates {
        batches,
        problems,
        points,
    })
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .as_materialized_series()
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

fn nums(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().collect())
}

fn keys_of(df: &DataFrame) -> PolarsResult<Vec<PointKey>> {
    let (task, model, method, policy) = (
        strs(df, "task")?,
        strs(df, "model")?,
        strs(df, "method")?,
        strs(df, "policy")?,
    );
    let (cr, width, len) = (
        nums(df, "cr_target")?,
        nums(df, "width")?,
        nums(df, "max_tokens")?,
    );
    Ok((0..df.height())
        .map(|i| PointKey {
            task: task[i].clone(),
            model: model[i].clone(),
            method: method[i].clone(),
            policy: policy[i].clone(),
            cr_target: cr[i],
            width: width[i].unwrap_or(0.0) as u32,
            max_tokens: len[i].unwrap_or(0.0) as u32,
        })
        .collect())
}

/// The problem table as structs, in table order.
pub fn problem_rows(problems: &DataFrame) -> PolarsResult<Vec<ProblemRow>> {
    let keys = keys_of(problems)?;
    let ids = strs(problems, "problem_id")?;
    let n = |c: &str| nums(problems, c);
    let (batches, samples, acc, p1, pw) = (
        n("batches")?,
        n("samples")?,
        n("accuracy")?,
        n("pass_at_1")?,
        n("pass_at_w")?,
    );
    let (reads, entries, bytes, runtime) = (
        n("kv_reads")?,
        n("peak_entries")?,
        n("peak_bytes")?,
        n("runtime_s")?,
    );
    let z = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| ProblemRow {
            key,
            problem_id: ids[i].clone(),
            batches: z(batches[i]) as u32,
            samples: z(samples[i]) as u32,
            accuracy: z(acc[i]),
            pass_at_1: z(p1[i]),
            pass_at_w: z(pw[i]),
            kv_reads: z(reads[i]),
            peak_entries: z(entries[i]),
            peak_bytes: z(bytes[i]),
            runtime_s: z(runtime[i]),
        })
        .collect())
}

/// The point table as structs, in table order.
pub fn point_summaries(points: &DataFrame) -> PolarsResult<Vec<PointSummary>> {
    let keys = keys_of(points)?;
    let n = |c: &str| nums(points, c);
    let cols: Vec<Vec<Option<f64>>> = [
        "problems",
        "samples",
        "pass_at_1",
        "pass_at_1_se",
        "accuracy",
        "accuracy_se",
        "pass_at_w",
        "generated_tokens_mean",
        "truncated_rate",
        "no_answer_rate",
        "kv_reads",
        "prefill_reads",
        "peak_entries",
        "peak_bytes",
        "runtime_s",
        "tokens_per_s",
        "cr_achieved",
        "occupancy",
    ]
    .iter()
    .map(|c| n(c))
    .collect::<PolarsResult<_>>()?;
    let z = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let c = |j: usize| cols[j][i];
            PointSummary {
                key,
                problems: z(c(0)) as u32,
                samples: z(c(1)) as u32,
                pass_at_1: z(c(2)),
                pass_at_1_se: c(3).filter(|v| v.is_finite()),
                pass_at_1_se_runs: None,
                accuracy: z(c(4)),
                accuracy_se: c(5).filter(|v| v.is_finite()),
                pass_at_w: z(c(6)),
                generated_tokens: z(c(7)),
                truncated_rate: z(c(8)),
                no_answer_rate: z(c(9)),
                generation_errors: 0,
                kv_reads: z(c(10)),
                prefill_reads: z(c(11)),
                peak_entries: z(c(12)),
                peak_bytes: z(c(13)),
                runtime_s: z(c(14)),
                tokens_per_s: z(c(15)),
                cr_achieved: c(16),
                occupancy: c(17).filter(|v| v.is_finite()),
            }
        })
        .collect())
}
