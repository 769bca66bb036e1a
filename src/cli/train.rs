//! Flags of `train-dms` and `eval-dms`, and the training text they share.

use std::path::PathBuf;

use clap::Args;

use super::generate::ModelArgs;

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
