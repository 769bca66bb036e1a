//! The sweep: a config file expanded into trials, run as a pipeline —
//! generate on the calling thread, grade on a bounded pool beside it, record
//! each sample as it is graded — and resumable after a crash.
//!
//! ```text
//! configs/*.toml ─parse─▶ SweepConfig ─validate + filters─▶ Plan
//!   ─expand(catalog, tasks)─▶ Expanded (width groups of trials, problems)
//!   ─schedule(records already there)─▶ batches to decode
//!   ─generate─▶ Completion ─grade─▶ SampleRecord ─append─▶ results/<run>/samples.jsonl
//! ```
//!
//! The boundaries to the other stages are the traits in [`deps`]; [`wiring`]
//! implements them with the real model, tasks, prompts and graders (tests
//! use mocks). [`shard`] cuts a plan into N balanced parts for N
//! processes (`--shard I/N`); `hyperscale merge` ([`crate::record::merge_runs`])
//! unions their run directories. A session holds its run directory's lock
//! ([`crate::record::RunLock`]) and is closed in the manifest whatever ends
//! it: its work, an error, or SIGINT/SIGTERM ([`signals`]).

pub mod backend;
pub mod config;
pub mod deps;
pub mod dryrun;
pub mod error;
pub mod expand;
mod generation;
pub mod keypath;
pub mod methods;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod resources;
pub mod rundir;
pub mod runner;
pub mod sample;
pub mod schedule;
pub mod session;
pub mod shard;
pub mod signals;
pub mod streams;
pub mod trial;
pub mod wiring;

pub use backend::{Backend, ModelShape, RemoteSpec};
pub use config::SweepConfig;
pub use deps::{
    Generated, GradeOutcome, LoadedTask, ModelCatalog, ModelInfo, PromptContext, PromptRenderer,
    RenderedPrompt, SampleGenerator, SampleGrader, SweepDeps, TaskSource,
};
pub use error::{BoxError, ConfigError, SweepError};
pub use expand::{Expanded, Group, WorkUnit, expand};
pub use options::{DEFAULT_MAX_SEQUENCES, PipelineTiming, RunSummary, SkippedGroup, SweepOptions};
pub use plan::{Checkpoint, Dtype, Filters, Plan, TaskPlan};
pub use progress::ProgressMode;
pub use runner::{run_plan, run_sweep};
pub use shard::{partition, restrict_to_shard, shard_dir, shard_units};
pub use trial::{Trial, TrialSpec};
