//! Model hyperparameters, as run. Built from a Hugging Face `config.json`
//! (`ModelConfig::from_hf_json`) or from GGUF metadata
//! (`ModelConfig::from_gguf`), validated once, then read by everything else.

use serde::{Deserialize, Serialize};

use super::layers::dms::DmsConfig;

/// The supported architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama / SmolLM2 / Llama 3.x: no biases, optional rope scaling.
    Llama,
    /// Qwen2 / Qwen2.5 / DeepSeek-R1-Distill-Qwen: q/k/v biases.
    Qwen2,
    /// Qwen3: q/k RMSNorm per head, head_dim from the config.
    Qwen3,
}

/// Llama 3.x frequency scaling of RoPE (`rope_scaling.rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// Hyperparameters of a decoder-only transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry biases (Qwen2).
    pub attention_bias: bool,
    /// Per-head RMSNorm on q and k before RoPE (Qwen3).
    pub qk_norm: bool,
    /// DMS decision parameters of a retrofitted checkpoint (`None`: not a
    /// DMS model).
    #[serde(default)]
    pub dms: Option<DmsConfig>,
}

impl ModelConfig {
    /// Query heads per KV head (the GQA group size).
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }
}
