//! The sweep's boundaries: what it needs from the model, task, prompt,
//! generation and grading stages, as small traits the binary wires to the
//! real implementations and tests wire to mocks.
//!
//! Generation and rendering run on the calling thread (burn is synchronous
//! and need not be `Send`); grading runs on a bounded pool of blocking
//! threads beside it, so [`SampleGrader`] is `Send + Sync`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::BoxError;
use super::plan::TaskPlan;
use super::trial::Trial;
use crate::generate::{Completion, Request, SchedulerOptions, StopCriteria};
use crate::limits::ModelLimits;
use crate::record::BudgetSource;
use crate::task::{Expected, Problem};

/// What the sweep needs to know about a configured model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Stable identity that changes whenever the weights do: a name and a
    /// hash of the weight files (e.g. `SmolLM2-135M-Instruct.Q4_1.gguf@sha256:1f2e…`).
    /// Trial ids are computed from it.
    pub identity: String,
    /// True when the checkpoint carries DMS parameters (eviction decisions).
    pub has_dms: bool,
}

/// Identifies models by their configured path (a file, a directory or a hub id).
pub trait ModelCatalog {
    fn inspect(&self, path: &str) -> Result<ModelInfo, BoxError>;

    /// The model's context length and per-token costs, read from its config
    /// without loading weights, for the check of what a plan asks of the
    /// machine ([`super::resources`]). `None` (the default): unknown, only
    /// the record count is checked.
    fn limits(&self, _path: &str) -> Result<Option<ModelLimits>, BoxError> {
        Ok(None)
    }
}

/// A task's problems and version.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTask {
    /// Changes whenever problems, references or prompt templates change.
    pub version: String,
    /// In the task's canonical order; ids unique.
    pub problems: Vec<Problem>,
}

/// Loads tasks as configured: by name (`task.name`), from `task.data` when
/// given (else the task's own data search), graded under `task.answer_region`
/// when given. The version must change with anything that changes the
/// prompts, references or grading of its problems (the region override
/// included).
pub trait TaskSource {
    fn load(&self, task: &TaskPlan) -> Result<LoadedTask, BoxError>;
}

/// Which sample a prompt is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptContext<'a> {
    pub task: &'a str,
    /// Index of the problem in [`LoadedTask::problems`] (before any limit).
    pub problem_index: usize,
    /// The repeat (`grid.repeats`); a renderer may vary the prompt with it
    /// (GPQA choice order per repeat). The W samples of one repeat share the
    /// prompt, hence its KV.
    pub repeat: u32,
}

/// A prompt ready to decode and what its samples are graded against.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPrompt {
    pub tokens: Vec<u32>,
    pub expected: Expected,
    /// EOS ids and stop strings of the model's chat format.
    pub stop: StopCriteria,
}

/// Problem + sample context → prompt token ids + expected answer.
pub trait PromptRenderer {
    fn render(
        &mut self,
        trial: &Trial,
        problem: &Problem,
        ctx: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, BoxError>;
}

/// One generated batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// One per sample of the request, any order.
    pub completions: Vec<Completion>,
    /// KV rows of the model that decoded them (layers × KV heads).
    pub kv_rows: u64,
    /// The element the store kept K/V in (`peak_bytes` counts its width);
    /// `None` where the generator does not keep them (a remote engine).
    pub kv_dtype: Option<crate::kv::KvDtype>,
}

/// Decodes the W samples of one prompt as one batch.
pub trait SampleGenerator {
    /// Where generation runs, for records and the manifest (e.g. `cpu`).
    fn device(&self) -> String;

    /// Whether this generator can run `trial` (its cache policy on its
    /// device, dtype, …), decided without loading anything. `Err(reason)` skips the trial's
    /// width group with the reason reported, instead of stopping the sweep;
    /// a later session runs it once the generator can. Default: everything.
    fn supports(&self, trial: &Trial) -> Result<(), String> {
        let _ = trial;
        Ok(())
    }

    /// Where the budgets of its completions come from: counted by the KV
    /// store (default) or computed from token counts (remote engines).
    fn budget_source(&self) -> BudgetSource {
        BudgetSource::Measured
    }

    /// The KV memory `trial`'s engine gets when none is named (`--kv-memory`,
    /// `[engine] kv_memory`), with its source for the log: on a device,
    /// measured once the trial's weights are loaded
    /// ([`crate::runtime::default_kv_memory`]). Default: half the memory
    /// available, as on the CPU (`None` when that is unknown).
    fn kv_memory_default(
        &mut self,
        trial: &Trial,
    ) -> Result<Option<crate::runtime::KvMemoryDefault>, BoxError> {
        let _ = trial;
        Ok(crate::runtime::default_kv_memory(
            crate::device::DeviceKind::Cpu,
            0,
        ))
    }

    /// Decode `request` with `trial`'s model ([`Trial::model_path`]) under
    /// its cache policy (`trial.spec.policy`). Contract:
    /// - exactly `request.samples` completions, samples
    ///   `first_sample..first_sample + samples`, each a function of
    ///   (model, policy, prompt, sampling, sample index) only, never of the
    ///   batch it ran in;
    /// - `batch_peak_resident` is the peak of this request's batch alone
    ///   (a fresh store per call);
    /// - add each generated token to `tokens` as it is produced (progress).
    ///
    /// An error is a harness failure and stops the sweep; a bad sample
    /// (truncated, garbage) is a normal completion.
    fn generate(
        &mut self,
        trial: &Trial,
        request: &Request,
        tokens: &AtomicU64,
    ) -> Result<Generated, BoxError>;

    /// Decode a stream of requests of trials that may share a batch (the
    /// same model, dtype, device and cache policy as `trial`: see
    /// [`super::streams`]), with at most `options.max_sequences` sequences
    /// in flight and the requests in flight within `options.kv_memory`
    /// (each at its [`crate::generate::request_bound`]), calling `on_done(r, generated)` as request `r` (its index in
    /// the stream) finishes, in finishing order. Pulls the next request
    /// only when it can start it, and stops admitting when `requests` ends.
    /// Each request's completions keep [`Self::generate`]'s contract: a
    /// sample, its counters and `batch_peak_resident` are what `generate`
    /// gives for that request alone; only timings may differ.
    ///
    /// Default: one request at a time through [`Self::generate`] (a remote
    /// engine batches on its side).
    fn generate_stream(
        &mut self,
        trial: &Trial,
        requests: &mut dyn Iterator<Item = Request>,
        options: SchedulerOptions,
        tokens: &AtomicU64,
        on_done: &mut dyn FnMut(usize, Generated),
    ) -> Result<(), BoxError> {
        let _ = options;
        for (r, request) in requests.enumerate() {
            let generated = self.generate(trial, &request, tokens)?;
            on_done(r, generated);
        }
        Ok(())
    }
}

/// The grader's judgement of one sample, typed as the grader gave it; the
/// record stores each field as it is (see [`crate::record::SampleRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradeOutcome {
    pub outcome: crate::grade::Outcome,
    /// Code: why the first failing test failed.
    pub failure: Option<crate::grade::FailureKind>,
    /// The raw extracted answer, if any (code: the program digest).
    pub extracted: Option<String>,
    /// The normalised vote key, if any.
    pub vote_key: Option<String>,
}

impl GradeOutcome {
    /// The judgement a [`crate::grade::Verdict`] holds.
    pub fn of(v: &crate::grade::Verdict) -> Self {
        GradeOutcome {
            outcome: v.outcome,
            failure: v.failure,
            extracted: v.extracted.clone(),
            vote_key: v.vote_key.clone(),
        }
    }

    /// The record's verdict label ([`crate::grade::verdict::label`]).
    pub fn label(&self) -> String {
        crate::grade::verdict::label(self.outcome, self.failure)
    }

    pub fn is_correct(&self) -> bool {
        self.outcome == crate::grade::Outcome::Correct
    }
}

/// Grades a sample's text against its expected answer. Called from a
/// bounded pool of blocking threads; may run sandboxed processes. An error
/// is a harness failure (the grader could not judge), not a wrong answer.
pub trait SampleGrader: Send + Sync {
    fn grade(&self, task: &str, expected: &Expected, text: &str) -> Result<GradeOutcome, BoxError>;
}

/// Everything [`super::run_sweep`] needs from the other stages.
pub struct SweepDeps<'a> {
    pub catalog: &'a dyn ModelCatalog,
    pub tasks: &'a dyn TaskSource,
    pub renderer: &'a mut dyn PromptRenderer,
    pub generator: &'a mut dyn SampleGenerator,
    pub grader: Arc<dyn SampleGrader>,
}
