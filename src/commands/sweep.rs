//! `hyperscale sweep`: flags into [`SweepOptions`], the run, and whether
//! anything could run.

use std::fmt;

use crate::cli::SweepArgs;
use crate::sweep::{Filters, RunSummary, SweepOptions, wiring};

use super::CommandError;

/// A sweep's outcome: the plan (`--dry-run`, for stdout) or what the
/// session did (for stderr).
#[derive(Debug)]
pub enum SweepOutcome {
    Plan(String),
    Ran(RunSummary),
}

impl SweepOutcome {
    /// A refusal when every trial of the plan was skipped.
    pub fn ran_anything(&self) -> Result<(), CommandError> {
        match self {
            Self::Ran(s) if s.trials == 0 && !s.skipped_groups.is_empty() => Err(
                CommandError::usage("nothing could run: every trial of the plan was skipped"),
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for SweepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plan(plan) => f.write_str(plan),
            Self::Ran(summary) => f.write_str(&summary.describe()),
        }
    }
}

/// Runs (or resumes, or with `--dry-run` plans) a sweep.
pub fn sweep(args: &SweepArgs) -> Result<SweepOutcome, CommandError> {
    let options = SweepOptions {
        filters: Filters {
            tasks: args.tasks.clone(),
            methods: args.methods.clone(),
            limit: args.limit,
        },
        dry_run: args.dry_run,
        new_run: args.new_run,
        results_dir: args.results.clone(),
        progress: args.progress.into(),
        shard: args.shard,
        keep_errors: args.keep_errors,
        unsafe_no_sandbox: args.unsafe_no_sandbox,
        max_sequences: args.max_sequences,
        kv_memory: args.kv_memory,
        prefill_chunk: args.prefill_chunk,
        ..SweepOptions::default()
    };
    let mut summary = wiring::run(&args.config, &options)?;
    Ok(match summary.plan.take() {
        Some(plan) => SweepOutcome::Plan(plan),
        None => SweepOutcome::Ran(summary),
    })
}
