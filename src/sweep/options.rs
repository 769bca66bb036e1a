//! What the command line passes to a sweep, and what a sweep reports back.

use std::path::PathBuf;

use super::plan::Filters;
use super::progress::ProgressMode;
use crate::record::Shard;

/// Sequences decoded together when neither `--max-sequences` nor `[engine]
/// max_sequences` says: on a 2-core CPU SmolLM2 decodes about 3× the tokens
/// per second with 16 sequences in flight than with one (docs/batching.md).
pub const DEFAULT_MAX_SEQUENCES: usize = 16;

/// Options of one `hyperscale sweep` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// `--tasks`, `--methods`, `--limit`.
    pub filters: Filters,
    /// Print the expanded plan and its token estimate; run nothing.
    pub dry_run: bool,
    /// Start over when the run directory holds another config's run (the old
    /// directory is renamed `<run>.prev-<timestamp>`, nothing is deleted).
    pub new_run: bool,
    /// Overrides `[run].results_dir`.
    pub results_dir: Option<PathBuf>,
    pub progress: ProgressMode,
    /// Concurrent graders. Default: the number of CPUs.
    pub grade_workers: Option<usize>,
    /// Generated batches that may wait for a grader before generation
    /// blocks. Default 256.
    pub queue_batches: usize,
    /// Recorded in the manifest. Default: `git rev-parse HEAD` of the
    /// working directory, `+dirty` if it has changes.
    pub git_revision: Option<String>,
    /// Run only this shard's part of the plan, in
    /// `<run>/shards/I-of-N/` (see [`super::shard`]).
    pub shard: Option<Shard>,
    /// Keep error records as final instead of retrying their samples
    /// (`--keep-errors`). Default false: a session first sets the run's
    /// error records aside ([`crate::record::set_aside_errors`]) and decodes
    /// those samples again.
    pub keep_errors: bool,
    /// `--unsafe-no-sandbox`: grade code even where it cannot be isolated.
    pub unsafe_no_sandbox: bool,
    /// `--max-sequences`: sequences decoded together at most (overrides
    /// `[engine] max_sequences`).
    pub max_sequences: Option<usize>,
    /// `--kv-memory` in bytes (overrides `[engine] kv_memory`).
    pub kv_memory: Option<u64>,
    /// `--prefill-chunk` (overrides `[engine] prefill_chunk`).
    pub prefill_chunk: Option<usize>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            filters: Filters::default(),
            dry_run: false,
            new_run: false,
            results_dir: None,
            progress: ProgressMode::Auto,
            grade_workers: None,
            queue_batches: 256,
            git_revision: None,
            shard: None,
            keep_errors: false,
            unsafe_no_sandbox: false,
            max_sequences: None,
            kv_memory: None,
            prefill_chunk: None,
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub trials: usize,
    /// Records the (filtered) plan has in all.
    pub planned_records: u64,
    /// Of those, already in the run directory when the session began.
    pub skipped_records: u64,
    /// Appended by this session.
    pub written_records: u64,
    /// Of those, error records (a remote engine failed on the sample after
    /// every retry); the next session retries them.
    pub error_records: u64,
    /// Error records of earlier sessions set aside to be retried (or, for a
    /// dry run, that would be).
    pub errors_retried: u64,
    pub batches_generated: u64,
    pub samples_generated: u64,
    pub tokens_generated: u64,
    /// Upper bound on the tokens this session had to generate (every sample to L).
    pub estimated_tokens: u64,
    /// Bytes of a torn last line cut off when the run was resumed.
    pub repaired_bytes: Option<u64>,
    pub timing: PipelineTiming,
    /// Width groups the generator cannot run yet (left out of the plan's
    /// counts; a later session runs them).
    pub skipped_groups: Vec<SkippedGroup>,
    /// The expanded plan, for `--dry-run`.
    pub plan: Option<String>,
}

/// A width group left out because the generator cannot run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedGroup {
    /// `task method crX LM seedS`.
    pub label: String,
    /// Its trials.
    pub trials: Vec<String>,
    /// What the generator said.
    pub reason: String,
}

impl RunSummary {
    /// What the session did, for people: a line per reason width groups
    /// were skipped for, then one line of counts and timing.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (reason, n) in super::runner::count_reasons(&self.skipped_groups) {
            s.push_str(&format!("skipped {n} width group(s): {reason}\n"));
        }
        if self.errors_retried > 0 {
            s.push_str(&format!(
                "retried {} error record(s) of earlier sessions (the old lines are in errors.jsonl)\n",
                self.errors_retried
            ));
        }
        if self.error_records > 0 {
            s.push_str(&format!(
                "warning: {} of the {} records written are error records (the engine failed on those samples); run the same command again to retry them\n",
                self.error_records, self.written_records
            ));
        }
        let t = &self.timing;
        s.push_str(&format!(
            "{}: {} trials; {} records written, {} already there, of {} planned; \
             {} samples / {} tokens generated; {:.1} s wall, {:.1} s generating, \
             {:.1} s grading (summed), {:.1} s waiting for graders{}\n",
            self.run_dir.display(),
            self.trials,
            self.written_records,
            self.skipped_records,
            self.planned_records,
            self.samples_generated,
            self.tokens_generated,
            t.wall,
            t.generating,
            t.grading,
            t.blocked_on_grading,
            match self.skipped_groups.len() {
                0 => String::new(),
                n => format!("; {n} width group(s) skipped"),
            }
        ));
        s
    }
}

/// Where the time went (measured, seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PipelineTiming {
    /// Start of generation to the last record written.
    pub wall: f64,
    /// Start of generation to the last batch generated.
    pub generation_done: f64,
    /// Inside the generator.
    pub generating: f64,
    /// Generation waiting for the grading queue to make room.
    pub blocked_on_grading: f64,
    /// Summed over graders (they run concurrently).
    pub grading: f64,
}
