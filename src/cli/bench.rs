//! Flags of `bench` and its subcommands (`decode`, `parity`, `throughput`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::generate::{ModelArgs, PolicyArgs};

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
    /// (each with its own KV) as the store's measured bytes allow.
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
    /// Prefill a distinct prompt for every sequence [default: prefill one
    /// prompt per side and give every sequence its own copy of its KV].
    #[arg(long)]
    pub distinct_prompts: bool,
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
