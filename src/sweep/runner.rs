//! `run_sweep`: config file → plan → run directory → pipeline → summary.
//!
//! Generation runs on the calling thread, stream by stream
//! ([`super::streams`]): the batches of trials that may share a decode step
//! are decoded together with up to `max_sequences` sequences in flight
//! (continuous batching, [`SampleGenerator::generate_stream`]), and every
//! request's samples go to the grading pool (a tokio runtime owned by this
//! function) as soon as the request finishes, and are recorded when graded,
//! in finishing order. Generation only waits for grading when
//! `queue_batches` finished requests are waiting for a grader.
//! Must not be called from inside an async runtime. With the `report`
//! feature a session that ends without error also writes
//! `samples.parquet` (all the run's records, not just this session's).
//!
//! A session locks its run directory first ([`RunLock`]: a second sweep on
//! it fails at once), sets the error records of earlier sessions aside to
//! retry them (unless `keep_errors`), and is closed in the manifest however
//! it ends ([`LiveSession`], [`super::signals`]). A session whose every
//! record is an error record fails ([`SweepError::AllFailed`]), and a
//! failure to write the records file is reported before anything that
//! failed after it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::mpsc;

use super::deps::SweepDeps;
use super::dryrun::describe_plan;
use super::expand::{Expanded, expand};
use super::generation::Generation;
use super::options::{
    DEFAULT_MAX_SEQUENCES, PipelineTiming, RunSummary, SkippedGroup, SweepOptions,
};
use super::pipeline::{Job, grade_and_record};
use super::plan::Plan;
use super::progress::{ProgressState, report};
use super::rundir::open_run;
use super::schedule::{Schedule, schedule, take_unsupported};
use super::session::{LiveSession, first_failure};
use super::shard::{restrict_to_shard, shard_dir};
use super::signals;
use super::streams::streams;
use super::{ConfigError, SweepConfig, SweepError};
use crate::generate::SchedulerOptions;
use crate::record::{
    RecordError, ResumeIndex, RunLock, SAMPLES_FILE, SampleWriter, repair_torn_tail,
    set_aside_errors,
};

/// Run (or resume, or `--dry-run`) the sweep of `config_path`:
/// [`SweepConfig::load`] → [`Plan::from_config`] → [`run_plan`].
pub fn run_sweep(
    config_path: &Path,
    options: &SweepOptions,
    deps: SweepDeps<'_>,
) -> Result<RunSummary, SweepError> {
    let config = SweepConfig::load(config_path)?;
    let file = config_path.display().to_string();
    let plan = Plan::from_config(&config, &file, &options.filters)?;
    run_plan(&plan, &file, options, deps)
}

/// Run (or resume, or `--dry-run`) `plan`, validated from the config file
/// `file` (named in messages and the manifest) with `options.filters`.
pub fn run_plan(
    plan: &Plan,
    file: &str,
    options: &SweepOptions,
    deps: SweepDeps<'_>,
) -> Result<RunSummary, SweepError> {
    let mut expanded = expand(plan, file, deps.catalog, deps.tasks)?;
    let mut run_dir = options
        .results_dir
        .as_ref()
        .unwrap_or(&plan.results_dir)
        .join(&plan.run_name);
    if let Some(shard) = options.shard {
        if let Some(filters) = options.filters.describe() {
            return Err(SweepError::Config(ConfigError {
                file: "command line".into(),
                key: "--shard".into(),
                message: format!(
                    "cannot be combined with {filters}: a shard is a fixed part of the whole plan"
                ),
            }));
        }
        // Before anything depends on the generator or the records: the
        // partition is a function of the plan alone.
        restrict_to_shard(&mut expanded, shard);
        run_dir = shard_dir(&run_dir, shard);
    }
    let skipped_groups = take_unsupported(&mut expanded, &*deps.generator);
    let samples_path = run_dir.join(SAMPLES_FILE);
    let named = options
        .kv_memory
        .map(|b| (b, "--kv-memory"))
        .or(plan.kv_memory.map(|b| (b, "[engine] kv_memory")));
    let mut engine = SchedulerOptions {
        max_sequences: options
            .max_sequences
            .or(plan.max_sequences)
            .unwrap_or(DEFAULT_MAX_SEQUENCES),
        kv_memory: named.map(|(b, _)| b),
        // Set per stream from its trial's CR (`wiring::model`).
        keep_prior: None,
        prefill_chunk: options.prefill_chunk.or(plan.prefill_chunk),
    };

    if options.dry_run {
        let mut index = ResumeIndex::load(&samples_path)?;
        let retried = if options.keep_errors {
            0
        } else {
            index.errors() as u64
        };
        if !options.keep_errors {
            index = index.without_errors();
        }
        let work = schedule(&expanded, &index);
        let mut summary = summary_of(&run_dir, &expanded, &work);
        summary.errors_retried = retried;
        let mut described = describe_plan(plan, &expanded, &work, &run_dir, &skipped_groups);
        let source = match named {
            Some((_, flag)) => flag.to_string(),
            None => match super::dryrun::default_kv_memory(plan) {
                Ok(d) => {
                    engine.kv_memory = Some(d.bytes);
                    d.source
                }
                Err(why) => why,
            },
        };
        described.push_str(&describe_engine(engine, &expanded, &work, &source));
        described.push_str(&super::dryrun::describe_admission(
            plan, &expanded, engine, &source,
        ));
        summary.plan = Some(described);
        summary.skipped_groups = skipped_groups;
        return Ok(summary);
    }

    for (reason, n) in count_reasons(&skipped_groups) {
        tracing::warn!("skipping {n} width group(s): {reason}");
    }
    let device = deps.generator.device();
    let budget_source = deps.generator.budget_source();
    std::fs::create_dir_all(&run_dir).map_err(|e| RecordError::io("create", &run_dir, e))?;
    let mut lock = RunLock::acquire(&run_dir)?;
    let mut manifest = open_run(&run_dir, plan, &expanded, file, options, &device, &mut lock)?;
    let repaired = if samples_path.exists() {
        repair_torn_tail(&samples_path)?
    } else {
        None
    };
    let retried = if options.keep_errors {
        0
    } else {
        set_aside_errors(&run_dir)?
    };
    if retried > 0 {
        tracing::info!(
            "retrying {retried} error record(s) of earlier sessions (set aside in errors.jsonl)"
        );
        if let Some(s) = manifest.sessions.last_mut() {
            s.errors_retried = retried;
        }
        manifest.write(&run_dir)?;
    }
    let (writer, _) = SampleWriter::open(&samples_path)?;
    let session = Arc::new(LiveSession::new(&run_dir, manifest, writer));
    signals::watch(&session, signals::resume_command());
    if let Some(bytes) = repaired {
        tracing::warn!(
            "`{}`: cut a torn last line ({bytes} bytes) left by an interrupted run",
            samples_path.display()
        );
    }
    let index = Arc::new(ResumeIndex::load(&samples_path)?);
    let work = schedule(&expanded, &index);
    let mut summary = summary_of(&run_dir, &expanded, &work);
    summary.repaired_bytes = repaired;
    summary.errors_retried = retried;
    summary.skipped_groups = skipped_groups;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(options.grade_workers.unwrap_or_else(cpus).max(1) + 2)
        .enable_time()
        .build()
        .map_err(|e| SweepError::Runtime(e.to_string()))?;
    let progress = ProgressState::new(work.records_to_write(), expanded.groups.len());
    let abort = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Vec<Job>>(options.queue_batches.max(1));
    let start = Instant::now();
    let reporter = runtime.spawn(report(options.progress, progress.clone()));
    let pipeline = runtime.spawn(grade_and_record(
        rx,
        session.clone(),
        index,
        deps.grader.clone(),
        options.grade_workers.unwrap_or_else(cpus),
        progress.clone(),
        abort.clone(),
    ));

    let source = kv_memory_source(&mut engine, named, plan, &expanded, &mut *deps.generator);
    tracing::info!(
        "{}",
        describe_engine(engine, &expanded, &work, &source).trim_end()
    );
    let mut generation = Generation {
        plan,
        expanded: &expanded,
        device: &device,
        budget_source,
        progress: &progress,
        abort: &abort,
        tx,
        seq: 0,
        engine,
        timing: PipelineTiming::default(),
        summary: &mut summary,
    };
    let generated = generation.run(&work, deps);
    let mut timing = generation.timing;
    // Closing the queue lets the pipeline grade and record everything
    // generated so far, even after a generation failure, then end.
    drop(generation);
    timing.generation_done = start.elapsed().as_secs_f64();

    let output = runtime
        .block_on(pipeline)
        .map_err(|e| SweepError::Runtime(e.to_string()))?;
    progress.finish();
    let _ = runtime.block_on(reporter);
    timing.wall = output
        .finished_at
        .map_or(start.elapsed(), |t| t.duration_since(start))
        .as_secs_f64();
    timing.grading = output.grading_seconds;
    summary.timing = timing;
    let counts = session.counts();
    summary.written_records = counts.written;
    summary.error_records = counts.errors;

    // The pipeline's error explains a generation stopped by a closed queue.
    let mut result = match (output.error, generated) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(()),
    };
    if result.is_ok() && counts.written > 0 && counts.errors == counts.written {
        result = Err(SweepError::AllFailed {
            dir: run_dir.clone(),
            records: counts.written,
        });
    }
    let complete = result.is_ok()
        && summary.skipped_groups.is_empty()
        && counts.errors == 0
        && summary.skipped_records + counts.written == summary.planned_records;
    let close = session.close(
        complete,
        result.as_ref().err().map(|e| crate::error_chain(e)),
    );
    let result = first_failure(result, close);
    // Parquet for notebooks; samples.jsonl stays the source of truth.
    #[cfg(feature = "report")]
    if result.is_ok() {
        crate::record::consolidate(&run_dir)?;
    }
    drop(lock);
    result.map(|()| summary)
}

/// Distinct skip reasons with their group counts, in first-seen order.
pub(crate) fn count_reasons(skipped: &[SkippedGroup]) -> Vec<(&str, usize)> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for g in skipped {
        match out.iter_mut().find(|(r, _)| *r == g.reason) {
            Some((_, n)) => *n += 1,
            None => out.push((&g.reason, 1)),
        }
    }
    out
}

/// The KV memory of a run when `named` (with its flag or field) says
/// none: the generator's default for the plan's first trial (on a device,
/// measured with its weights loaded), set in `engine`. A named budget above
/// a device's default is kept, with a warning. Returns the source for the
/// log.
fn kv_memory_source(
    engine: &mut SchedulerOptions,
    named: Option<(u64, &str)>,
    plan: &Plan,
    expanded: &Expanded,
    generator: &mut dyn super::deps::SampleGenerator,
) -> String {
    let on_device = plan.model.device != crate::device::DeviceKind::Cpu;
    let trial = expanded.trials().next();
    let default = match trial {
        Some(t) if named.is_none() || on_device => {
            generator.kv_memory_default(t).unwrap_or_else(|e| {
                tracing::warn!("KV memory default unknown: {e}");
                None
            })
        }
        _ => None,
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match (named, default) {
        (Some((bytes, flag)), Some(d)) if on_device && bytes > d.bytes => {
            tracing::warn!(
                "{flag} {:.3} GiB exceeds the device's KV memory {:.3} GiB ({}): the pools are \
                 reserved for {flag} and may run out of device memory; lower {flag}",
                gib(bytes),
                gib(d.bytes),
                d.source
            );
            flag.to_string()
        }
        (Some((_, flag)), _) => flag.to_string(),
        (None, Some(d)) => {
            engine.kv_memory = Some(d.bytes);
            d.source
        }
        (None, None) => "available memory unknown".to_string(),
    }
}

/// How generation batches, for the log and the dry run: the admission plan,
/// with where the KV memory came from (`source`).
fn describe_engine(
    engine: SchedulerOptions,
    expanded: &Expanded,
    work: &Schedule,
    source: &str,
) -> String {
    let memory = engine.kv_memory.map_or_else(
        || format!("no KV memory limit ({source})"),
        |b| {
            format!(
                "KV memory {:.3} GiB ({source})",
                b as f64 / (1u64 << 30) as f64
            )
        },
    );
    format!(
        "engine: up to {} sequences decoded together (--max-sequences, [engine] max_sequences; \
         default {DEFAULT_MAX_SEQUENCES}); {memory} for the requests in flight, each reserving its bound \
         (dense and Quest: the prompt once + W × (L + block − 2) entries per KV row; window, \
         TOVA, H2O: their budgets; DMS: a guess at its measured rate, preempted when wrong); \
         {} stream(s) of batches sharing a model and cache policy{}\n",
        engine.max_sequences,
        streams(expanded, &work.batches).len(),
        engine.prefill_chunk.map_or(String::new(), |c| format!(
            "; --prefill-chunk {c} ignored: no cache policy's prefill is bit-identical in pieces \
             yet (docs/batching.md)"
        ))
    )
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn summary_of(run_dir: &Path, expanded: &Expanded, work: &Schedule) -> RunSummary {
    RunSummary {
        run_dir: run_dir.to_path_buf(),
        trials: expanded.trials().count(),
        planned_records: work.planned_records,
        skipped_records: work.skipped_records,
        estimated_tokens: work.tokens,
        ..RunSummary::default()
    }
}
