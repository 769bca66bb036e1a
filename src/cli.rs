//! Command-line arguments, as typed by the user (clap derive). Nothing here
//! does work; `main.rs` hands each command to the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Re-grade saved completions (`{problem_id, sample, text}` per line) and
    /// print per-problem verdicts and the estimators; no model needed.
    Grade(GradeArgs),
    /// Run (or resume) a sweep: a config's grid of methods × CR × W × L over
    /// its tasks, generate → grade → record into `results/<run>/`.
    Sweep(SweepArgs),
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
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
    /// Relative growth tolerated of KV reads and peak KV memory (counted, so
    /// deterministic: 0.05 = 5%).
    #[arg(long, default_value_t = hyperscale::report::DEFAULT_BUDGET_TOLERANCE)]
    pub budget_tolerance: f64,
    /// Relative runtime growth tolerated. Default: 3.0 (4× slower), and
    /// runtime is gated only when both runs report the same hardware; given
    /// explicitly, it is gated whatever the hardware.
    #[arg(long)]
    pub runtime_tolerance: Option<f64>,
    /// md (for a CI step summary) or json.
    #[arg(long, default_value = "md")]
    pub format: String,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
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
    /// Progress display: auto (bars on a terminal, else a line every 30 s),
    /// bars, log, none.
    #[arg(long, default_value = "auto")]
    pub progress: String,
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
    /// Which text is graded: `strict` (after the last `</think>`; none
    /// without it), `lenient` (after `</think>`, else all), `whole`. Default:
    /// the task file's.
    #[arg(long)]
    pub region: Option<String>,
    /// The multiple-choice order of this repeat is the one graded against.
    #[arg(long, default_value_t = 0)]
    pub repeat: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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
    /// `$HYPERSCALE_DATA/<task>/…`, then `data/<task>/…`.
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
    /// *.safetensors, tokenizer.json), or a `.whl`/zip containing a GGUF.
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub model: PathBuf,
    /// Where to run: cpu, cuda, cuda:N (needs a `--features cuda` build and
    /// a GPU), wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: String,
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
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold. Default: generation_config.json, else 1.
    #[arg(long)]
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
    /// dense, dms (needs a DMS checkpoint), window, tova, h2o or quest.
    #[arg(long, default_value = "dense")]
    pub policy: String,
    /// Target compression ratio of a training-free policy: keep
    /// max(min_tokens, ceil(positions / CR)) entries per (layer, KV head).
    #[arg(long, default_value_t = 1.0)]
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
    pub fn to_policy(&self) -> Result<hyperscale::kv::CachePolicy, String> {
        use hyperscale::kv::{Budget, CachePolicy};
        let budget = match self.budget_tokens {
            Some(tokens) => Budget::Tokens { tokens },
            None => Budget::Ratio {
                cr: self.cr,
                min_tokens: self.min_tokens,
            },
        };
        Ok(match self.policy.as_str() {
            "dense" => CachePolicy::Dense {},
            "dms" => CachePolicy::Dms {
                window: self.window,
                shifted: None,
            },
            "window" => CachePolicy::Window {
                sink: self.sink,
                budget,
            },
            "tova" => CachePolicy::Tova { budget },
            "h2o" => CachePolicy::H2o {
                recent: self.window.unwrap_or(self.min_tokens),
                budget,
            },
            "quest" => CachePolicy::Quest {
                page_size: self.page_size,
                budget,
            },
            other => {
                return Err(format!(
                    "--policy `{other}`: expected dense, dms, window, tova, h2o or quest"
                ));
            }
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Prefill and decode tokens/s per batch × context, with bytes moved per
    /// token and the implied GB/s next to the machine's measured bandwidth.
    Decode(BenchDecodeArgs),
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
    #[command(flatten)]
    pub policy: PolicyArgs,
}
